//! Connection pool, the embedded migrator and schema status.

use std::collections::BTreeSet;
use std::str::FromStr;
use std::time::Duration;

use sqlx::PgPool;
use sqlx::migrate::Migrator;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};

/// The migrations in `migrations/`, embedded in the binary.
pub static MIGRATOR: Migrator = sqlx::migrate!("../migrations");

pub async fn connect(url: &str, max_connections: u32) -> Result<PgPool, sqlx::Error> {
    // tower-sessions' expiry cleanup compares against `now() at time zone 'utc'`, which is
    // only right when the session time zone is UTC; pin it instead of trusting the server.
    let options = PgConnectOptions::from_str(url)?.options([("timezone", "UTC")]);
    PgPoolOptions::new()
        .max_connections(max_connections)
        .acquire_timeout(Duration::from_secs(5))
        // No ping before every acquire: it was a round trip per query. A connection the
        // server dropped fails its query (the request answers 503, see `AppError::from`) and
        // is discarded; idle connections are replaced before servers' idle limits bite.
        .test_before_acquire(false)
        .idle_timeout(Duration::from_secs(5 * 60))
        .connect_with(options)
        .await
}

/// How the database's schema relates to the migrations this binary knows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SchemaStatus {
    Current,
    /// Migrations this binary knows have not been applied (run `ahlt migrate`).
    Behind {
        pending: Vec<i64>,
    },
    /// The database holds migrations this binary does not know: it is older than the schema.
    Ahead {
        unknown: Vec<i64>,
    },
    /// A migration failed half-way and needs a human.
    Dirty {
        version: i64,
    },
}

impl SchemaStatus {
    pub fn is_current(&self) -> bool {
        matches!(self, SchemaStatus::Current)
    }
}

impl std::fmt::Display for SchemaStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SchemaStatus::Current => f.write_str("schema current"),
            SchemaStatus::Behind { pending } => {
                write!(
                    f,
                    "schema behind: {} pending migration(s) {pending:?}; run `ahlt migrate`",
                    pending.len()
                )
            }
            SchemaStatus::Ahead { unknown } => write!(
                f,
                "schema ahead: the database has migration(s) {unknown:?} that this binary does not know (downgrade?)"
            ),
            SchemaStatus::Dirty { version } => {
                write!(f, "schema dirty: migration {version} failed part-way")
            }
        }
    }
}

fn known_versions() -> BTreeSet<i64> {
    MIGRATOR
        .iter()
        .filter(|m| !m.migration_type.is_down_migration())
        .map(|m| m.version)
        .collect()
}

pub async fn schema_status(pool: &PgPool) -> Result<SchemaStatus, sqlx::Error> {
    let table_exists: bool =
        sqlx::query_scalar("SELECT to_regclass('_sqlx_migrations') IS NOT NULL")
            .fetch_one(pool)
            .await?;
    let known = known_versions();
    if !table_exists {
        return Ok(SchemaStatus::Behind {
            pending: known.into_iter().collect(),
        });
    }
    let applied: Vec<(i64, bool)> =
        sqlx::query_as("SELECT version, success FROM _sqlx_migrations ORDER BY version")
            .fetch_all(pool)
            .await?;
    if let Some((version, _)) = applied.iter().find(|(_, success)| !success) {
        return Ok(SchemaStatus::Dirty { version: *version });
    }
    let applied: BTreeSet<i64> = applied.into_iter().map(|(v, _)| v).collect();
    let unknown: Vec<i64> = applied.difference(&known).copied().collect();
    if !unknown.is_empty() {
        return Ok(SchemaStatus::Ahead { unknown });
    }
    let pending: Vec<i64> = known.difference(&applied).copied().collect();
    if !pending.is_empty() {
        return Ok(SchemaStatus::Behind { pending });
    }
    Ok(SchemaStatus::Current)
}

#[derive(Debug, thiserror::Error)]
pub enum MigrateError {
    #[error(
        "refusing to migrate: the database has migration(s) {unknown:?} that this ahlt binary does not know; \
         it is older than the schema (a downgrade). Deploy an image at least as new as the database."
    )]
    Downgrade { unknown: Vec<i64> },
    #[error(
        "refusing to migrate: migration {version} failed part-way earlier and needs manual repair"
    )]
    Dirty { version: i64 },
    #[error("migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
}

/// Applies pending migrations under sqlx's advisory lock. Returns the versions applied.
pub async fn migrate(pool: &PgPool) -> Result<Vec<i64>, MigrateError> {
    let before = schema_status(pool).await?;
    match before {
        SchemaStatus::Ahead { unknown } => return Err(MigrateError::Downgrade { unknown }),
        SchemaStatus::Dirty { version } => return Err(MigrateError::Dirty { version }),
        SchemaStatus::Current => return Ok(Vec::new()),
        SchemaStatus::Behind { .. } => {}
    }
    // Another replica may migrate concurrently; the migrator's lock serialises us and the
    // loser applies nothing, so we re-read the status instead of trusting `before`.
    let applied_before: BTreeSet<i64> = applied_versions(pool).await?;
    MIGRATOR.run(pool).await.map_err(|e| match e {
        sqlx::migrate::MigrateError::VersionMissing(v) => {
            MigrateError::Downgrade { unknown: vec![v] }
        }
        other => MigrateError::Migrate(other),
    })?;
    let applied_after = applied_versions(pool).await?;
    Ok(applied_after.difference(&applied_before).copied().collect())
}

async fn applied_versions(pool: &PgPool) -> Result<BTreeSet<i64>, sqlx::Error> {
    let exists: bool = sqlx::query_scalar("SELECT to_regclass('_sqlx_migrations') IS NOT NULL")
        .fetch_one(pool)
        .await?;
    if !exists {
        return Ok(BTreeSet::new());
    }
    let rows: Vec<i64> = sqlx::query_scalar("SELECT version FROM _sqlx_migrations WHERE success")
        .fetch_all(pool)
        .await?;
    Ok(rows.into_iter().collect())
}
