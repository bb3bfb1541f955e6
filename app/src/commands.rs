//! What each subcommand does.

use anyhow::{Context, bail};
use sqlx::PgPool;

use crate::cli::{
    AdminCommand, BenchArgs, BenchCommand, Cli, Command, ExitStatusError, GraphArgs, GraphCommand,
};
use crate::seed::SeedReport;
use crate::server::EmbeddedDatabase;
use crate::{db, graph, seed, telemetry};

pub async fn run(cli: Cli) -> anyhow::Result<()> {
    telemetry::init(cli.common.log_format);
    match cli.command {
        Command::Serve(args) => crate::server::serve(cli.common, args).await,
        Command::Migrate { admin_password } => {
            let url = require_database_url(&cli.common.database_url, "migrate")?;
            let pool = db::connect(url, 2)
                .await
                .context("connecting to the database")?;
            let result = migrate_and_seed(&pool, admin_password.as_deref()).await;
            pool.close().await;
            let (applied, report) = result?;
            println!(
                "ahlt migrate: {applied} migration(s) applied, {} seed item(s) created",
                report.created.len()
            );
            if let Some(password) = report.generated_admin_password {
                println!("ahlt migrate: created user 'admin' with generated password: {password}");
            }
            Ok(())
        }
        Command::SeedDemo { admin_password } => match cli.common.database_url.as_deref() {
            Some(url) if !url.is_empty() => {
                let pool = db::connect(url, 2)
                    .await
                    .context("connecting to the database")?;
                let result = seed_demo(&pool).await;
                pool.close().await;
                result
            }
            _ => {
                let embedded = EmbeddedDatabase::open(&cli.common.data_dir).await?;
                let result = seed_demo_embedded(&embedded, admin_password.as_deref()).await;
                let stopped = embedded.stop().await;
                result?;
                stopped
            }
        },
        Command::Graph(GraphCommand::Resync {
            graph: args,
            fail_if_running,
        }) => {
            let url = require_database_url(&cli.common.database_url, "graph resync")?;
            let pool = db::connect(url, 2)
                .await
                .context("connecting to the database")?;
            let if_busy = if fail_if_running {
                graph::IfBusy::Fail
            } else {
                graph::IfBusy::Wait
            };
            let result = graph_resync(&pool, &args, if_busy).await;
            pool.close().await;
            result
        }
        Command::Graph(GraphCommand::Check {
            graph: args,
            max_differences,
        }) => graph_check(&cli.common.database_url, &args, max_differences).await,
        Command::Admin(command) => match cli.common.database_url.as_deref() {
            Some(url) if !url.is_empty() => {
                let pool = db::connect(url, 2)
                    .await
                    .context("connecting to the database")?;
                let result = admin(&pool, &command).await;
                pool.close().await;
                result
            }
            _ => {
                let embedded = EmbeddedDatabase::open(&cli.common.data_dir).await?;
                let result = async {
                    let pool = db::connect(embedded.url(), 2)
                        .await
                        .context("connecting to the embedded database")?;
                    let result = admin(&pool, &command).await;
                    pool.close().await;
                    result
                }
                .await;
                let stopped = embedded.stop().await;
                result?;
                stopped
            }
        },
        Command::Data(command) => {
            let url = require_database_url(&cli.common.database_url, "data")?;
            let pool = db::connect(url, 2)
                .await
                .context("connecting to the database")?;
            let result = crate::data_cli::run(&pool, command).await;
            pool.close().await;
            result
        }
        Command::Graph(GraphCommand::Bench(args)) => {
            let database_url = cli.common.database_url.as_deref().filter(|u| !u.is_empty());
            graph_bench(database_url, &args).await
        }
        Command::Bench(BenchCommand::Http(args)) => {
            let database_url = cli.common.database_url.as_deref().filter(|u| !u.is_empty());
            println!("ahlt bench http: seeding a scratch database, then wrk and pgbench");
            let report = crate::http_bench::run(database_url, &args).await?;
            println!("{report}");
            Ok(())
        }
    }
}

/// Exit status 0 when the graph matches Postgres, 1 when it differs (listing the first
/// `max_differences`), 2 when the two could not be compared.
async fn graph_check(
    database_url: &Option<String>,
    args: &GraphArgs,
    max_differences: usize,
) -> anyhow::Result<()> {
    let report = compare_graph(database_url, args)
        .await
        .map_err(|error| ExitStatusError {
            status: 2,
            error: error.context("cannot check the graph"),
        })?;
    let sizes = format!(
        "PostgreSQL {} node(s) and {} relationship(s), graph {} and {}",
        report.postgres_nodes, report.postgres_edges, report.graph_nodes, report.graph_edges
    );
    if report.is_consistent() {
        println!(
            "ahlt graph check: environment {:?}: the graph matches PostgreSQL ({sizes})",
            args.env_name
        );
        return Ok(());
    }
    let (missing, unexpected, differing) = report.counts();
    println!(
        "ahlt graph check: environment {:?}: the graph DIFFERS from PostgreSQL: {missing} missing, \
         {unexpected} unexpected, {differing} differing ({sizes})",
        args.env_name
    );
    for difference in report.differences.iter().take(max_differences) {
        println!("  {difference}");
    }
    if report.differences.len() > max_differences {
        println!(
            "  ... and {} more",
            report.differences.len() - max_differences
        );
    }
    bail!(
        "the graph of environment {:?} differs from PostgreSQL in {} item(s); `ahlt graph resync` rewrites it",
        args.env_name,
        report.differences.len()
    )
}

async fn compare_graph(
    database_url: &Option<String>,
    args: &GraphArgs,
) -> anyhow::Result<graph::CheckReport> {
    let url = require_database_url(database_url, "graph check")?;
    if args.env_name.is_empty() {
        bail!("AHLT_ENV_NAME must not be empty: it namespaces the graph");
    }
    let pool = db::connect(url, 2)
        .await
        .context("connecting to the database")?;
    let result = async {
        let status = db::schema_status(&pool).await?;
        if !status.is_current() {
            bail!("{status}");
        }
        let backend = args.connect().await?;
        graph::check(&pool, &backend, &args.env_name)
            .await
            .context("comparing the graph with PostgreSQL")
    }
    .await;
    pool.close().await;
    result
}

/// Seeds a scratch database (never DATABASE_URL's own), runs the bench, removes both.
async fn graph_bench(database_url: Option<&str>, args: &BenchArgs) -> anyhow::Result<()> {
    use graph::bench::{self, BenchOptions, GraphTarget, ScratchDatabase};
    let env = args.env_name.clone().unwrap_or_else(bench::fresh_env_name);
    let graph_args = args.graph_args(env.clone());
    // Before creating any database: an unreachable graph fails fast.
    let backend = graph_args.connect().await?;
    let target = GraphTarget {
        uri: args.graph_uri.clone(),
        graph_name: args.graph_name.clone(),
        credentials: graph_args.credentials(),
    };
    let options = BenchOptions {
        entities: args.entities,
        relations: args.relations,
        env,
        baseline_relations: args.baseline_relations,
        skip_baseline: args.skip_baseline,
    };
    let scratch = ScratchDatabase::create(database_url).await?;
    println!(
        "ahlt graph bench: scratch database {}, graph {:?} at {}",
        scratch.name(),
        args.graph_name,
        graph::redact(&args.graph_uri)
    );
    let result = async {
        let pool = db::connect(scratch.url(), 4)
            .await
            .context("connecting to the scratch database")?;
        let result = async {
            scratch.prepare(&pool).await?;
            bench::run(&pool, &backend, &target, &options).await
        }
        .await;
        pool.close().await;
        result
    }
    .await;
    let removed = scratch.remove().await;
    let report = result?;
    removed?;
    print!("{report}");
    Ok(())
}

/// Resyncs a database someone else migrates: refuse unless the schema is current.
async fn graph_resync(
    pool: &PgPool,
    args: &GraphArgs,
    if_busy: graph::IfBusy,
) -> anyhow::Result<()> {
    let status = db::schema_status(pool).await?;
    if !status.is_current() {
        bail!("{status}");
    }
    if args.env_name.is_empty() {
        bail!("AHLT_ENV_NAME must not be empty: it namespaces the graph");
    }
    let backend = args.connect().await?;
    let report = graph::resync(pool, &backend, &args.env_name, if_busy)
        .await
        .context("resyncing the graph")?;
    tracing::info!(
        env = %args.env_name,
        nodes = report.nodes,
        edges = report.edges,
        removed = report.removed,
        duration_ms = report.duration.as_millis() as u64,
        "graph resync finished"
    );
    println!(
        "ahlt graph resync: environment {:?}: {} node(s) and {} relationship(s) written, {} stale item(s) removed in {:.2}s",
        args.env_name,
        report.nodes,
        report.edges,
        report.removed,
        report.duration.as_secs_f64()
    );
    Ok(())
}

async fn migrate_and_seed(
    pool: &PgPool,
    admin_password: Option<&str>,
) -> anyhow::Result<(usize, SeedReport)> {
    let applied = db::migrate(pool).await?;
    let report = seed::base(pool, admin_password)
        .await
        .context("applying the base seed")?;
    tracing::info!(applied = ?applied, seeded = report.created.len(), "migrations and base seed applied");
    Ok((applied.len(), report))
}

/// Into a database someone else migrates: refuse unless the schema is current.
async fn seed_demo(pool: &PgPool) -> anyhow::Result<()> {
    let status = db::schema_status(pool).await?;
    if !status.is_current() {
        bail!("{status}");
    }
    let report = seed::demo(pool).await.context("applying the demo seed")?;
    print_demo_report(report);
    Ok(())
}

/// The embedded database is ours: bring it up to date first, as `serve` would.
async fn seed_demo_embedded(
    embedded: &EmbeddedDatabase,
    admin_password: Option<&str>,
) -> anyhow::Result<()> {
    let pool = db::connect(embedded.url(), 2)
        .await
        .context("connecting to the embedded database")?;
    let result = async {
        let (_, base) = migrate_and_seed(&pool, admin_password).await?;
        if let Some(password) = base.generated_admin_password {
            println!("ahlt seed-demo: created user 'admin' with generated password: {password}");
        }
        let report = seed::demo(&pool).await.context("applying the demo seed")?;
        print_demo_report(report);
        Ok(())
    }
    .await;
    pool.close().await;
    result
}

fn print_demo_report(report: SeedReport) {
    println!("ahlt seed-demo: {} item(s) created", report.created.len());
    if let Some(password) = report.generated_admin_password {
        println!(
            "ahlt seed-demo: demo users alice, bob, carol, dave share the password: {password}"
        );
    }
}

/// `ahlt admin grant|reset-password`.
async fn admin(pool: &PgPool, command: &AdminCommand) -> anyhow::Result<()> {
    use crate::domain::recovery;
    match command {
        AdminCommand::Grant { username } => {
            let user = recovery::grant_admin(pool, username)
                .await
                .with_context(|| format!("granting admin to {username:?}"))?;
            println!(
                "ahlt admin grant: {} is an active administrator (roles: {})",
                user.username,
                user.roles.join(", ")
            );
        }
        AdminCommand::ResetPassword { username } => {
            let password = recovery::reset_password(pool, username)
                .await
                .with_context(|| format!("resetting the password of {username:?}"))?;
            println!("ahlt admin reset-password: new password for {username}: {password}");
        }
    }
    Ok(())
}

fn require_database_url<'a>(url: &'a Option<String>, command: &str) -> anyhow::Result<&'a str> {
    match url.as_deref() {
        Some(url) if !url.is_empty() => Ok(url),
        _ => bail!(
            "DATABASE_URL must be set for `ahlt {command}` (e.g. postgres://user:password@host:5432/ahlt)"
        ),
    }
}
