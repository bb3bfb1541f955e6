//! `ahlt serve`: resolve configuration, connect (or start the embedded PostgreSQL), serve until
//! SIGTERM or Ctrl-C, then drain requests, close the pool and stop PostgreSQL.

use std::ffi::CString;
use std::fs::{self, DirBuilder, OpenOptions};
use std::io::{self, Write};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, bail};
use rand::Rng;
use sha2::{Digest, Sha256};
use sqlx::{Connection, PgConnection, PgPool};
use tokio::net::TcpListener;
use tokio::signal::unix::{Signal, SignalKind, signal};
use tokio::sync::watch;
use tower_sessions::ExpiredDeletion;

use crate::auth::session::{self, SessionKey};
use crate::config::{AppConfig, AppEnv, CommonArgs, LoginLimits, ServeArgs};
use crate::graph::sync::{GraphTarget, SyncConfig};
use crate::graph::{self, Projection};
use crate::http::{AppState, router};
use crate::local_postgres::{LocalAuth, LocalPostgres, LocalPostgresOptions};
use crate::{db, seed};

/// Name of the database the embedded default serves from.
pub const EMBEDDED_DATABASE: &str = "ahlt";
/// The generated cookie-signing key, kept so sessions survive restarts.
pub const SESSION_KEY_FILE: &str = "session.key";
/// The cluster directory inside the data dir (possibly a symlink, see [`cluster_dir`]).
pub const CLUSTER_DIR: &str = "postgres";
/// Where root keeps clusters that the `postgres` user could not reach inside the data dir.
const ROOT_CLUSTERS_DIR: &str = "/var/lib/ahlt";
const SESSION_CLEANUP_PERIOD: Duration = Duration::from_secs(300);

pub async fn serve(common: CommonArgs, args: ServeArgs) -> anyhow::Result<()> {
    match common.database_url.as_deref().filter(|u| !u.is_empty()) {
        Some(url) => serve_external(url, &args).await,
        None => {
            let embedded = EmbeddedDatabase::open(&common.data_dir).await?;
            let served = serve_embedded(&embedded, &common.data_dir, &args).await;
            let stopped = embedded.stop().await;
            served?;
            stopped
        }
    }
}

/// A cluster run by the operator or a platform: it migrates, we only serve.
async fn serve_external(database_url: &str, args: &ServeArgs) -> anyhow::Result<()> {
    let session_key = match (&args.session_key, args.app_env) {
        (Some(secret), _) => SessionKey::from_secret(secret).map_err(anyhow::Error::msg)?,
        (None, AppEnv::Dev) => {
            tracing::warn!(
                "SESSION_KEY is not set: using a random key; sessions end when this process does"
            );
            SessionKey::random()
        }
        (None, _) => bail!("SESSION_KEY must be set (at least 32 bytes) when APP_ENV is not dev"),
    };
    let pool = db::connect(database_url, args.max_connections)
        .await
        .context("connecting to the database")?;
    // `serve` never migrates here: the operator's migration Job does, and /readyz says so until then.
    match db::schema_status(&pool).await {
        Ok(status) if !status.is_current() => {
            tracing::warn!(%status, "database schema is not current")
        }
        Err(e) => tracing::warn!(error = %e, "cannot read the schema status"),
        Ok(_) => {}
    }
    let bind = args.bind.unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED));
    let listener = bind_listener(bind, args.port).await?;
    let shutdown = ShutdownSignal::install()?;
    run(
        listener,
        pool,
        app_config(args),
        &session_key,
        args.graph_target(),
        shutdown,
    )
    .await
}

async fn serve_embedded(
    embedded: &EmbeddedDatabase,
    data_dir: &Path,
    args: &ServeArgs,
) -> anyhow::Result<()> {
    let pool = db::connect(embedded.url(), args.max_connections)
        .await
        .context("connecting to the embedded database")?;
    let prepared = prepare_embedded(&pool, data_dir, args).await;
    let (session_key, admin_created) = match prepared {
        Ok(prepared) => prepared,
        Err(e) => {
            pool.close().await;
            return Err(e);
        }
    };
    let bind = args.bind.unwrap_or(IpAddr::V4(Ipv4Addr::LOCALHOST));
    let listener = match bind_listener(bind, args.port).await {
        Ok(listener) => listener,
        Err(e) => {
            pool.close().await;
            return Err(e);
        }
    };
    // Before announcing: a signal sent as soon as the URL appears must be caught, not fatal.
    let shutdown = ShutdownSignal::install()?;
    let address = listener.local_addr()?;
    let host = if address.ip().is_loopback() || address.ip().is_unspecified() {
        "localhost".to_owned()
    } else {
        address.ip().to_string()
    };
    // On stdout, not in the log: this is the one thing a newcomer needs to see.
    let mut out = io::stdout().lock();
    writeln!(out, "ahlt is running at http://{host}:{}", address.port())?;
    match admin_created {
        Some(AdminCreated::Generated(password)) => writeln!(
            out,
            "Log in as user \"admin\" with password: {password}\n(shown only now; the admin user was just created)"
        )?,
        Some(AdminCreated::FromEnvironment) => writeln!(
            out,
            "Log in as user \"admin\" with the password from ADMIN_PASSWORD"
        )?,
        None => {}
    }
    out.flush()?;
    drop(out);
    run(
        listener,
        pool,
        app_config(args),
        &session_key,
        args.graph_target(),
        shutdown,
    )
    .await
}

enum AdminCreated {
    Generated(String),
    FromEnvironment,
}

/// Migrations, base seed and session key of the embedded default.
async fn prepare_embedded(
    pool: &PgPool,
    data_dir: &Path,
    args: &ServeArgs,
) -> anyhow::Result<(SessionKey, Option<AdminCreated>)> {
    let applied = db::migrate(pool).await?;
    let report = seed::base(pool, args.admin_password.as_deref())
        .await
        .context("seeding the embedded database")?;
    tracing::info!(
        migrations = applied.len(),
        seeded = report.created.len(),
        "embedded database ready"
    );
    let admin_created = match report.generated_admin_password {
        Some(password) => Some(AdminCreated::Generated(password)),
        None if report.created.iter().any(|c| c == "user:admin") => {
            Some(AdminCreated::FromEnvironment)
        }
        None => None,
    };
    let session_key = match &args.session_key {
        Some(secret) => SessionKey::from_secret(secret).map_err(anyhow::Error::msg)?,
        None => persistent_session_key(&data_dir.join(SESSION_KEY_FILE))?,
    };
    Ok((session_key, admin_created))
}

fn app_config(args: &ServeArgs) -> AppConfig {
    AppConfig {
        app_env: args.app_env,
        env_name: args.env_name.clone(),
        cookie_secure: args.cookie_secure.unwrap_or(args.app_env != AppEnv::Dev),
        trust_forwarded_for: args.trust_forwarded_for,
        login_limits: LoginLimits::default(),
        timezone: args.timezone.clone(),
    }
}

async fn bind_listener(ip: IpAddr, port: u16) -> anyhow::Result<TcpListener> {
    TcpListener::bind((ip, port))
        .await
        .with_context(|| format!("listening on {ip}:{port}"))
}

/// Serves until a shutdown signal, then drains in-flight requests, stops the session cleanup
/// and closes the pool.
async fn run(
    listener: TcpListener,
    pool: PgPool,
    config: AppConfig,
    session_key: &SessionKey,
    graph: Option<GraphTarget>,
    shutdown: ShutdownSignal,
) -> anyhow::Result<()> {
    let (stop_tx, stop_rx) = watch::channel(false);
    let cleanup = tokio::spawn(delete_expired_sessions(pool.clone(), stop_rx.clone()));
    let mut state = AppState::new(pool.clone(), config);
    let access_listener = state.access.spawn_listener(pool.clone(), stop_rx.clone());
    let mut graph_sync = None;
    if let Some(target) = graph {
        tracing::info!(graph = %graph::redact(&target.uri), env = %state.config.env_name, "graph projection enabled");
        let projection = Projection::unconnected(&state.config.env_name, target.queue_capacity);
        graph_sync = Some(graph::sync::spawn(
            pool.clone(),
            projection.clone(),
            Some(target),
            SyncConfig::default(),
            stop_rx,
        ));
        state = state.with_graph(projection);
    }
    let app = router(state, session_key);
    tracing::info!(address = %listener.local_addr()?, "serving");
    let served = axum::serve(
        listener,
        app.into_make_service_with_connect_info::<SocketAddr>(),
    )
    .with_graceful_shutdown(async move {
        let name = shutdown.recv().await;
        tracing::info!(signal = name, "shutting down: draining in-flight requests");
    })
    .await;
    let _ = stop_tx.send(true);
    if let Err(e) = cleanup.await {
        tracing::warn!(error = %e, "session cleanup task failed");
    }
    if let Err(e) = access_listener.await {
        tracing::warn!(error = %e, "access cache listener failed");
    }
    if let Some(sync) = graph_sync
        && let Err(e) = sync.await
    {
        tracing::warn!(error = %e, "graph sync task failed");
    }
    pool.close().await;
    served.context("serving HTTP")?;
    tracing::info!("stopped");
    Ok(())
}

/// Deletes expired sessions now and then every few minutes until `stop`.
/// A loop of its own instead of `continuously_delete_expired`, which ends at the first
/// database error: one failed run must not stop the cleanup for the life of the process.
async fn delete_expired_sessions(pool: PgPool, mut stop: watch::Receiver<bool>) {
    let store = session::store(pool);
    let mut interval = tokio::time::interval(SESSION_CLEANUP_PERIOD);
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = interval.tick() => {}
            _ = stop.wait_for(|stopped| *stopped) => return,
        }
        if let Err(e) = store.delete_expired().await {
            tracing::warn!(error = %e, "deleting expired sessions failed");
        }
    }
}

/// SIGTERM (Kubernetes) and SIGINT (Ctrl-C), registered when created.
pub struct ShutdownSignal {
    terminate: Signal,
    interrupt: Signal,
}

impl ShutdownSignal {
    pub fn install() -> anyhow::Result<Self> {
        Ok(ShutdownSignal {
            terminate: signal(SignalKind::terminate()).context("installing the SIGTERM handler")?,
            interrupt: signal(SignalKind::interrupt()).context("installing the SIGINT handler")?,
        })
    }

    /// Waits for either signal; returns its name.
    pub async fn recv(mut self) -> &'static str {
        tokio::select! {
            _ = self.terminate.recv() => "SIGTERM",
            _ = self.interrupt.recv() => "SIGINT",
        }
    }
}

/// The embedded default: a private PostgreSQL under the data dir with an `ahlt` database.
pub struct EmbeddedDatabase {
    server: LocalPostgres,
    url: String,
}

impl EmbeddedDatabase {
    /// Starts (initialising on first use) the cluster and creates the database if missing.
    /// Migrating and seeding are left to the caller.
    pub async fn open(data_dir: &Path) -> anyhow::Result<Self> {
        DirBuilder::new()
            .recursive(true)
            // Traversable (not listable) by the `postgres` user when we run as root.
            .mode(0o711)
            .create(data_dir)
            .with_context(|| format!("creating the data directory {}", data_dir.display()))?;
        let cluster = cluster_dir(data_dir)?;
        let server = LocalPostgres::start(LocalPostgresOptions {
            data_dir: cluster,
            port: None,
            auth: LocalAuth::Password,
        })
        .await
        .context("starting the embedded PostgreSQL")?;
        let url = server.url(EMBEDDED_DATABASE);
        if let Err(e) = create_database_if_missing(&server).await {
            if let Err(stop) = server.stop().await {
                tracing::warn!(error = %stop, "stopping the embedded PostgreSQL");
            }
            return Err(e);
        }
        Ok(EmbeddedDatabase { server, url })
    }

    /// Superuser URL of the `ahlt` database (holds a password: never log it).
    pub fn url(&self) -> &str {
        &self.url
    }

    pub fn port(&self) -> u16 {
        self.server.port()
    }

    /// Fast shutdown, waiting for PostgreSQL to exit.
    pub async fn stop(self) -> anyhow::Result<()> {
        self.server
            .stop()
            .await
            .context("stopping the embedded PostgreSQL")?;
        tracing::info!("embedded PostgreSQL stopped");
        Ok(())
    }
}

async fn create_database_if_missing(server: &LocalPostgres) -> anyhow::Result<()> {
    let mut conn = PgConnection::connect(&server.url("postgres"))
        .await
        .context("connecting to the embedded PostgreSQL")?;
    let exists: bool =
        sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)")
            .bind(EMBEDDED_DATABASE)
            .fetch_one(&mut conn)
            .await?;
    if !exists {
        // A constant identifier: nothing user-supplied reaches this SQL.
        sqlx::query(&format!(r#"CREATE DATABASE "{EMBEDDED_DATABASE}""#))
            .execute(&mut conn)
            .await
            .context("creating the ahlt database")?;
        tracing::info!(database = EMBEDDED_DATABASE, "database created");
    }
    conn.close().await?;
    Ok(())
}

/// `<data_dir>/postgres`, or, for root when the `postgres` user (which the server runs as)
/// cannot reach that path, e.g. a checkout under a 0700 `/root`: a cluster under
/// `/var/lib/ahlt` that `<data_dir>/postgres` links to, so later runs find it again.
pub fn cluster_dir(data_dir: &Path) -> anyhow::Result<PathBuf> {
    let link = data_dir.join(CLUSTER_DIR);
    if let Ok(target) = fs::read_link(&link) {
        return Ok(data_dir.join(target));
    }
    if !nix::unistd::Uid::effective().is_root() || link.exists() {
        return Ok(link);
    }
    let Ok(Some(postgres)) = nix::unistd::User::from_name("postgres") else {
        // LocalPostgres explains that it needs a postgres user.
        return Ok(link);
    };
    let data_dir = std::path::absolute(data_dir)
        .with_context(|| format!("resolving {}", data_dir.display()))?;
    let groups = CString::new(postgres.name.as_str())
        .ok()
        .and_then(|name| nix::unistd::getgrouplist(&name, postgres.gid).ok())
        .unwrap_or_else(|| vec![postgres.gid]);
    if reachable(&data_dir, postgres.uid.as_raw(), &groups) {
        return Ok(link);
    }
    DirBuilder::new()
        .recursive(true)
        .mode(0o711)
        .create(ROOT_CLUSTERS_DIR)
        .with_context(|| format!("creating {ROOT_CLUSTERS_DIR}"))?;
    let digest = hex::encode(Sha256::digest(data_dir.as_os_str().as_encoded_bytes()));
    let target = Path::new(ROOT_CLUSTERS_DIR).join(format!("postgres-{}", &digest[..16]));
    std::os::unix::fs::symlink(&target, &link)
        .with_context(|| format!("linking {} to {}", link.display(), target.display()))?;
    tracing::info!(
        data_dir = %data_dir.display(),
        cluster = %target.display(),
        "the postgres user cannot reach the data directory; keeping the cluster outside it"
    );
    Ok(target)
}

/// Whether a user may traverse every directory down to and including `path` (mode bits only).
fn reachable(path: &Path, uid: u32, groups: &[nix::unistd::Gid]) -> bool {
    path.ancestors().all(|dir| {
        let Ok(meta) = fs::metadata(dir) else {
            return false;
        };
        let mode = meta.mode();
        if meta.uid() == uid {
            mode & 0o100 != 0
        } else if groups.iter().any(|g| g.as_raw() == meta.gid()) {
            mode & 0o010 != 0
        } else {
            mode & 0o001 != 0
        }
    })
}

/// Reads the key file, creating it (0600) with a random key on first use.
pub fn persistent_session_key(path: &Path) -> anyhow::Result<SessionKey> {
    match fs::read_to_string(path) {
        Ok(text) => {
            let meta = fs::metadata(path)?;
            if meta.mode() & 0o077 != 0 {
                fs::set_permissions(path, fs::Permissions::from_mode(0o600))
                    .with_context(|| format!("restricting {}", path.display()))?;
            }
            SessionKey::from_secret(text.trim_end())
                .map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            let secret: String = rand::rngs::OsRng
                .sample_iter(&rand::distributions::Alphanumeric)
                .take(64)
                .map(char::from)
                .collect();
            // Written aside and renamed, so a crash never leaves half a key.
            let tmp = path.with_extension("key.tmp");
            let mut file = OpenOptions::new()
                .write(true)
                .create(true)
                .truncate(true)
                .mode(0o600)
                .open(&tmp)
                .with_context(|| format!("creating {}", tmp.display()))?;
            file.set_permissions(fs::Permissions::from_mode(0o600))?;
            file.write_all(secret.as_bytes())?;
            file.sync_all()?;
            fs::rename(&tmp, path).with_context(|| format!("creating {}", path.display()))?;
            tracing::info!(path = %path.display(), "generated a session key");
            SessionKey::from_secret(&secret).map_err(anyhow::Error::msg)
        }
        Err(e) => Err(e).with_context(|| format!("reading {}", path.display())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_generated_session_key_is_private_and_reused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(SESSION_KEY_FILE);
        persistent_session_key(&path).unwrap();
        let first = fs::read_to_string(&path).unwrap();
        assert_eq!(fs::metadata(&path).unwrap().mode() & 0o777, 0o600);
        persistent_session_key(&path).unwrap();
        assert_eq!(fs::read_to_string(&path).unwrap(), first);
    }

    #[test]
    fn a_too_short_session_key_file_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(SESSION_KEY_FILE);
        fs::write(&path, "short").unwrap();
        let err = persistent_session_key(&path).unwrap_err().to_string();
        assert!(err.contains("at least 32 bytes"), "{err}");
    }

    #[test]
    fn reachability_needs_search_permission_on_every_ancestor() {
        let dir = tempfile::tempdir().unwrap();
        let inner = dir.path().join("a/b");
        fs::create_dir_all(&inner).unwrap();
        let nobody = u32::MAX - 1;
        fs::set_permissions(dir.path(), fs::Permissions::from_mode(0o711)).unwrap();
        fs::set_permissions(dir.path().join("a"), fs::Permissions::from_mode(0o700)).unwrap();
        // Only when every ancestor of the temp dir is world-searchable is the answer clear.
        if reachable(dir.path(), nobody, &[]) {
            assert!(!reachable(&inner, nobody, &[]));
            fs::set_permissions(dir.path().join("a"), fs::Permissions::from_mode(0o701)).unwrap();
            assert!(reachable(&inner, nobody, &[]));
        } else {
            assert!(!reachable(&inner, nobody, &[]));
        }
    }
}
