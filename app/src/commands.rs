//! What each subcommand does.

use anyhow::{Context, bail};

use crate::cli::{Cli, Command};
use crate::{db, seed, telemetry};

pub async fn run(cli: Cli) -> anyhow::Result<()> {
    telemetry::init(cli.common.log_format);
    match cli.command {
        Command::Serve(args) => crate::server::serve(cli.common, args).await,
        Command::Migrate { admin_password } => {
            let url = require_database_url(&cli.common.database_url, "migrate")?;
            let pool = db::connect(url, 2)
                .await
                .context("connecting to the database")?;
            let applied = db::migrate(&pool).await?;
            let report = seed::base(&pool, admin_password.as_deref()).await?;
            tracing::info!(applied = ?applied, seeded = report.created.len(), "migrations and base seed applied");
            println!(
                "ahlt migrate: {} migration(s) applied, {} seed item(s) created",
                applied.len(),
                report.created.len()
            );
            if let Some(password) = report.generated_admin_password {
                println!("ahlt migrate: created user 'admin' with generated password: {password}");
            }
            Ok(())
        }
        Command::SeedDemo => {
            let url = require_database_url(&cli.common.database_url, "seed-demo")?;
            let pool = db::connect(url, 2)
                .await
                .context("connecting to the database")?;
            let status = db::schema_status(&pool).await?;
            if !status.is_current() {
                bail!("{status}");
            }
            let report = seed::demo(&pool).await?;
            println!("ahlt seed-demo: {} item(s) created", report.created.len());
            if let Some(password) = report.generated_admin_password {
                println!(
                    "ahlt seed-demo: demo users alice, bob, carol, dave share the password: {password}"
                );
            }
            Ok(())
        }
    }
}

fn require_database_url<'a>(url: &'a Option<String>, command: &str) -> anyhow::Result<&'a str> {
    match url.as_deref() {
        Some(url) if !url.is_empty() => Ok(url),
        _ => bail!("DATABASE_URL must be set for `ahlt {command}`"),
    }
}
