//! Configuration from flags and environment variables (the operator sets the variables).

use std::net::IpAddr;
use std::path::PathBuf;

use clap::{Args, ValueEnum};

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum AppEnv {
    Dev,
    Staging,
    Prod,
    Preview,
}

impl AppEnv {
    pub fn as_str(self) -> &'static str {
        match self {
            AppEnv::Dev => "dev",
            AppEnv::Staging => "staging",
            AppEnv::Prod => "prod",
            AppEnv::Preview => "preview",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    Json,
    Text,
}

/// Settings shared by every subcommand.
#[derive(Clone, Args)]
pub struct CommonArgs {
    /// PostgreSQL URL. Unset for `serve`: start a private local PostgreSQL under --data-dir.
    #[arg(long, env = "DATABASE_URL", hide_env_values = true, global = true)]
    pub database_url: Option<String>,

    /// Log format: json (default, for clusters) or text.
    #[arg(
        long,
        env = "LOG_FORMAT",
        value_enum,
        default_value = "json",
        global = true
    )]
    pub log_format: LogFormat,

    /// Where the embedded default keeps its PostgreSQL cluster and generated session key.
    #[arg(long, env = "AHLT_DATA_DIR", default_value = ".ahlt", global = true)]
    pub data_dir: PathBuf,
}

#[derive(Clone, Args)]
pub struct ServeArgs {
    /// Port to listen on.
    #[arg(long, env = "PORT", default_value_t = 8080)]
    pub port: u16,

    /// Address to listen on. Default: 0.0.0.0 with DATABASE_URL; 127.0.0.1 for the embedded
    /// default, which is a single-user development setup.
    #[arg(long, env = "BIND_ADDRESS")]
    pub bind: Option<IpAddr>,

    /// Environment profile.
    #[arg(long, env = "APP_ENV", value_enum, default_value = "dev")]
    pub app_env: AppEnv,

    /// Name of this environment (namespaces the graph; shown in the UI).
    #[arg(long, env = "AHLT_ENV_NAME", default_value = "local")]
    pub env_name: String,

    /// Key that signs session cookies (at least 32 bytes). Generated and kept under --data-dir
    /// for the embedded default; required when DATABASE_URL is set, except with APP_ENV=dev.
    #[arg(long, env = "SESSION_KEY", hide_env_values = true)]
    pub session_key: Option<String>,

    /// Send cookies only over HTTPS. Default: true except with APP_ENV=dev.
    #[arg(long, env = "COOKIE_SECURE")]
    pub cookie_secure: Option<bool>,

    /// Initial admin password, used only when the admin user is first created (embedded default).
    #[arg(long, env = "ADMIN_PASSWORD", hide_env_values = true)]
    pub admin_password: Option<String>,

    /// Size of the database connection pool.
    #[arg(long, env = "DATABASE_MAX_CONNECTIONS", default_value_t = 10)]
    pub max_connections: u32,

    /// Take the client address for login rate limiting from X-Forwarded-For (behind an ingress).
    #[arg(long, env = "TRUST_FORWARDED_FOR", default_value_t = false)]
    pub trust_forwarded_for: bool,

    /// Graph server for the live projection: bolt:// or neo4j:// (Neo4j), falkor://
    /// (FalkorDB). Without it, graph queries are answered from PostgreSQL.
    #[arg(long, env = "GRAPH_URI", hide_env_values = true)]
    pub graph_uri: Option<String>,

    /// Graph user (unless the URI carries credentials).
    #[arg(long, env = "GRAPH_USERNAME")]
    pub graph_username: Option<String>,

    /// Graph password (unless the URI carries credentials).
    #[arg(long, env = "GRAPH_PASSWORD", hide_env_values = true)]
    pub graph_password: Option<String>,

    /// Graph (key) on a FalkorDB server; environments share it, namespaced by AHLT_ENV_NAME.
    #[arg(long, env = "GRAPH_NAME", default_value = crate::graph::DEFAULT_GRAPH_NAME)]
    pub graph_name: String,

    /// Time zone of this environment (IANA name, e.g. Europe/Oslo): meeting cadences are
    /// wall-clock times in it, and the outlook projects them there.
    #[arg(long, env = "AHLT_TIMEZONE", default_value = "UTC", value_parser = parse_timezone)]
    pub timezone: jiff::tz::TimeZone,

    /// Changes the live graph sync keeps queued at most; beyond, it resyncs instead.
    #[arg(long, env = "GRAPH_QUEUE_CAPACITY", default_value_t = crate::graph::DEFAULT_QUEUE_CAPACITY)]
    pub graph_queue_capacity: usize,
}

/// An IANA time zone name from the bundled time zone database.
pub fn parse_timezone(name: &str) -> Result<jiff::tz::TimeZone, String> {
    jiff::tz::TimeZone::get(name.trim()).map_err(|e| {
        format!("unknown time zone {name:?} (use an IANA name such as Europe/Oslo): {e}")
    })
}

impl ServeArgs {
    /// The graph the live sync writes to, if configured.
    pub fn graph_target(&self) -> Option<crate::graph::sync::GraphTarget> {
        let uri = self.graph_uri.as_ref().filter(|uri| !uri.is_empty())?;
        Some(crate::graph::sync::GraphTarget {
            uri: uri.clone(),
            graph_name: self.graph_name.clone(),
            credentials: crate::graph::Credentials {
                username: self.graph_username.clone(),
                password: self.graph_password.clone(),
            },
            queue_capacity: self.graph_queue_capacity,
        })
    }
}

/// Stands in for secrets in `Debug` output.
fn redacted(secret: &Option<String>) -> Option<&'static str> {
    secret.as_ref().map(|_| "<redacted>")
}

// Hand-written so that secrets never reach a log line through `{:?}`.
impl std::fmt::Debug for CommonArgs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CommonArgs")
            .field("database_url", &redacted(&self.database_url))
            .field("log_format", &self.log_format)
            .field("data_dir", &self.data_dir)
            .finish()
    }
}

impl std::fmt::Debug for ServeArgs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServeArgs")
            .field("port", &self.port)
            .field("bind", &self.bind)
            .field("app_env", &self.app_env)
            .field("env_name", &self.env_name)
            .field("session_key", &redacted(&self.session_key))
            .field("cookie_secure", &self.cookie_secure)
            .field("admin_password", &redacted(&self.admin_password))
            .field("max_connections", &self.max_connections)
            .field("trust_forwarded_for", &self.trust_forwarded_for)
            .field("timezone", &self.timezone.iana_name())
            .finish()
    }
}

/// Settings the running server needs, resolved from [`ServeArgs`].
#[derive(Debug, Clone)]
pub struct AppConfig {
    pub app_env: AppEnv,
    pub env_name: String,
    pub cookie_secure: bool,
    pub trust_forwarded_for: bool,
    pub login_limits: LoginLimits,
    /// The environment's time zone (AHLT_TIMEZONE).
    pub timezone: jiff::tz::TimeZone,
}

impl AppConfig {
    /// Defaults for tests and tools: dev profile, insecure cookies.
    pub fn for_tests() -> Self {
        AppConfig {
            app_env: AppEnv::Dev,
            env_name: "test".into(),
            cookie_secure: false,
            trust_forwarded_for: false,
            login_limits: LoginLimits::default(),
            timezone: jiff::tz::TimeZone::UTC,
        }
    }
}

/// Failed logins allowed per window before further attempts are refused.
#[derive(Debug, Clone, Copy)]
pub struct LoginLimits {
    pub window: time::Duration,
    pub max_failures_per_username: i64,
    pub max_failures_per_ip: i64,
}

impl Default for LoginLimits {
    fn default() -> Self {
        LoginLimits {
            window: time::Duration::minutes(15),
            max_failures_per_username: 5,
            max_failures_per_ip: 20,
        }
    }
}
