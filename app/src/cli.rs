//! The `ahlt` command line: `serve`, `migrate`, `seed-demo`, `graph resync|check|bench`,
//! `admin grant|reset-password`, `data import|export`.
//!
//! Exit status: 0 on success, 1 on any failure (message on stderr), 2 for usage errors.
//! `graph check` follows diff(1): 0 identical, 1 different, 2 could not compare.

use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};

use crate::config::{CommonArgs, ServeArgs};

// No `Debug`: the arguments hold secrets.
#[derive(Parser)]
#[command(name = "ahlt", version, about = "ahlt governance web app")]
pub struct Cli {
    #[command(flatten)]
    pub common: CommonArgs,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand)]
pub enum Command {
    /// Serve the web app. Without DATABASE_URL, runs a private local PostgreSQL (migrated and seeded).
    Serve(ServeArgs),
    /// Apply migrations and the base seed, then exit. Needs DATABASE_URL; fails on a downgrade.
    Migrate {
        /// Initial admin password, used only when the admin user is first created.
        #[arg(long, env = "ADMIN_PASSWORD", hide_env_values = true)]
        admin_password: Option<String>,
    },
    /// Add demo ToRs, functions and users (idempotent). Without DATABASE_URL, into the
    /// embedded database (migrated and base-seeded first).
    SeedDemo {
        /// Initial admin password for the embedded database, used only when the admin user is first created.
        #[arg(long, env = "ADMIN_PASSWORD", hide_env_values = true)]
        admin_password: Option<String>,
    },
    /// The graph projection of this environment.
    #[command(subcommand)]
    Graph(GraphCommand),
    /// Recovery for operators locked out of user management (audit-logged).
    #[command(subcommand)]
    Admin(AdminCommand),
    /// Import and export data in upstream ahlt's JSON format. Needs DATABASE_URL.
    #[command(subcommand)]
    Data(DataCommand),
    /// Benchmarks (not tests) that print numbers for docs/benchmarks.md.
    #[command(subcommand)]
    Bench(BenchCommand),
}

#[derive(Subcommand)]
pub enum BenchCommand {
    /// Authenticated reads through the app (wrk) next to pgbench of the same SQL on a
    /// scratch database, an ABAC decision's latency, and the WAL written by reads. Without
    /// DATABASE_URL it runs a throwaway local PostgreSQL; with it, a scratch database
    /// `ahlt_bench_<random>` on that server (needs CREATEDB). Needs `wrk` and `pgbench`.
    Http(crate::http_bench::HttpBenchArgs),
}

#[derive(Subcommand)]
pub enum AdminCommand {
    /// Makes USERNAME an active administrator (role `admin`, which grants `users.manage`).
    Grant { username: String },
    /// Sets a new generated password for USERNAME and prints it once.
    ResetPassword { username: String },
}

#[derive(Subcommand)]
pub enum DataCommand {
    /// Import one or more files (in order) in one transaction: all or nothing. Prints what
    /// changed (or, with --dry-run, what would); exits 1 and changes nothing on any error.
    Import {
        /// Files in upstream's format (`{entities: [...], relations: [...]}`), e.g. its
        /// data/seed/ontology.json followed by data/seed/staging.json; `-` reads stdin.
        #[arg(required = true)]
        files: Vec<std::path::PathBuf>,
        /// What to do with an entity or relation that already exists.
        #[arg(long, value_enum, default_value = "skip")]
        mode: crate::domain::data::ConflictMode,
        /// What to do with entity types this app has no pages for and undeclared relation types.
        #[arg(long, value_enum, default_value = "import")]
        unknown: crate::domain::data::UnknownPolicy,
        /// Report what would change, then roll back.
        #[arg(long)]
        dry_run: bool,
        /// Print the report as JSON instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Write every entity and relation (never password hashes or other secrets) as JSON.
    Export {
        /// Write to this file instead of stdout.
        #[arg(long, short)]
        output: Option<std::path::PathBuf>,
    },
}

#[derive(Subcommand)]
pub enum GraphCommand {
    /// Rewrite this environment's graph projection from PostgreSQL (mark and sweep: the
    /// graph is never empty meanwhile). Needs DATABASE_URL and GRAPH_URI. Waits for a
    /// resync of the same environment that is already running, unless --fail-if-running.
    Resync {
        #[command(flatten)]
        graph: GraphArgs,
        /// Exit with an error instead of waiting when another resync of this environment runs.
        #[arg(long)]
        fail_if_running: bool,
    },
    /// Compare this environment's graph projection with PostgreSQL and list the differences
    /// (ids, fields and property keys; never values). Needs DATABASE_URL and GRAPH_URI.
    /// Exit status: 0 identical, 1 different, 2 could not compare (e.g. a server unreachable).
    Check {
        #[command(flatten)]
        graph: GraphArgs,
        /// How many differences to list (all are counted).
        #[arg(long, default_value_t = 20)]
        max_differences: usize,
    },
    /// Benchmark the resync (not a test): seed a scratch database with generated entities
    /// and relations, time a full resync against an upstream-style per-entity one, print
    /// both side by side, and remove everything it wrote. Needs GRAPH_URI. Without
    /// DATABASE_URL it runs a throwaway local PostgreSQL; with it, it creates and drops a
    /// scratch database `ahlt_bench_<random>` on that server (needs CREATEDB), never
    /// touching DATABASE_URL's own database.
    Bench(BenchArgs),
}

#[derive(Clone, Args)]
pub struct BenchArgs {
    /// Entities to generate (two properties each).
    #[arg(long, default_value_t = 100_000)]
    pub entities: u64,

    /// Relations to generate between random pairs of the generated entities.
    #[arg(long, default_value_t = 200_000)]
    pub relations: u64,

    /// Relations the per-entity baseline writes (it writes every entity); its time for
    /// all relations is extrapolated from these, and the output says so.
    #[arg(long, default_value_t = 2_000)]
    pub baseline_relations: u64,

    /// Skip the per-entity baseline (minutes for the defaults): our resync only.
    #[arg(long)]
    pub skip_baseline: bool,

    /// Environment to write to; must start with `bench-`. Default: a fresh `bench-<random>`.
    /// (AHLT_ENV_NAME is deliberately not read: the bench never writes a real environment.)
    #[arg(long, value_parser = parse_bench_env)]
    pub env_name: Option<String>,

    /// Graph server: falkor://host:6379 (FalkorDB) or bolt:// / neo4j:// (Neo4j, ours only).
    #[arg(long, env = "GRAPH_URI", hide_env_values = true)]
    pub graph_uri: String,

    /// Graph user (unless the URI carries credentials).
    #[arg(long, env = "GRAPH_USERNAME")]
    pub graph_username: Option<String>,

    /// Graph password (unless the URI carries credentials).
    #[arg(long, env = "GRAPH_PASSWORD", hide_env_values = true)]
    pub graph_password: Option<String>,

    /// Graph (key) on the server for our run; the baseline uses a fresh one of its own.
    #[arg(long, env = "GRAPH_NAME", default_value = crate::graph::DEFAULT_GRAPH_NAME)]
    pub graph_name: String,
}

fn parse_bench_env(name: &str) -> Result<String, String> {
    if name.starts_with("bench-") && name.len() > "bench-".len() {
        Ok(name.to_string())
    } else {
        Err("must start with `bench-` (the bench never writes a real environment)".to_string())
    }
}

impl BenchArgs {
    /// Graph arguments for environment `env_name`.
    pub fn graph_args(&self, env_name: String) -> GraphArgs {
        GraphArgs {
            graph_uri: self.graph_uri.clone(),
            graph_username: self.graph_username.clone(),
            graph_password: self.graph_password.clone(),
            graph_name: self.graph_name.clone(),
            env_name,
        }
    }
}

#[derive(Clone, Args)]
pub struct GraphArgs {
    /// Graph server: bolt://host:7687 or neo4j://host:7687 (Neo4j), falkor://host:6379 (FalkorDB).
    #[arg(long, env = "GRAPH_URI", hide_env_values = true)]
    pub graph_uri: String,

    /// Graph user (unless the URI carries credentials).
    #[arg(long, env = "GRAPH_USERNAME")]
    pub graph_username: Option<String>,

    /// Graph password (unless the URI carries credentials).
    #[arg(long, env = "GRAPH_PASSWORD", hide_env_values = true)]
    pub graph_password: Option<String>,

    /// Graph (key) on the server; environments share it, namespaced by --env-name.
    #[arg(long, env = "GRAPH_NAME", default_value = crate::graph::DEFAULT_GRAPH_NAME)]
    pub graph_name: String,

    /// Name of this environment: the namespace of its nodes and relationships.
    #[arg(long, env = "AHLT_ENV_NAME", default_value = "local")]
    pub env_name: String,
}

impl GraphArgs {
    pub fn credentials(&self) -> crate::graph::Credentials {
        crate::graph::Credentials {
            username: self.graph_username.clone(),
            password: self.graph_password.clone(),
        }
    }

    /// Connects to the graph server these arguments name.
    pub async fn connect(&self) -> anyhow::Result<crate::graph::Backend> {
        use anyhow::Context;
        crate::graph::Backend::connect(&self.graph_uri, &self.graph_name, &self.credentials())
            .await
            .with_context(|| {
                format!(
                    "connecting to the graph at {}",
                    crate::graph::redact(&self.graph_uri)
                )
            })
    }
}

pub fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("ahlt: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(crate::commands::run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!(error = format!("{e:#}"), "ahlt failed");
            eprintln!("ahlt: {e:#}");
            let status = e.downcast_ref::<ExitStatusError>().map_or(1, |e| e.status);
            ExitCode::from(status)
        }
    }
}

/// A failure that ends the process with `status` instead of 1.
#[derive(Debug)]
pub struct ExitStatusError {
    pub status: u8,
    pub error: anyhow::Error,
}

impl std::fmt::Display for ExitStatusError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:#}", self.error)
    }
}

impl std::error::Error for ExitStatusError {}
