//! Migrations and the base seed against a real PostgreSQL: up, down, idempotence, downgrade
//! detection and the admin password's life cycle.

use ahlt::auth::password;
use ahlt::db::{self, MIGRATOR, MigrateError, SchemaStatus};
use ahlt::domain::users;
use ahlt::seed;
use ahlt::testing::TestDatabase;
use sqlx::PgPool;

/// A version far beyond any real migration, as a newer image would have applied.
const FUTURE_VERSION: i64 = 99_991_231_000_000;

fn known_versions() -> Vec<i64> {
    MIGRATOR
        .iter()
        .filter(|m| !m.migration_type.is_down_migration())
        .map(|m| m.version)
        .collect()
}

/// Our tables and functions in `public`, except sqlx's bookkeeping table.
async fn our_objects(pool: &PgPool) -> Vec<String> {
    sqlx::query_scalar(
        "SELECT 'table ' || table_name FROM information_schema.tables
          WHERE table_schema = 'public' AND table_name <> '_sqlx_migrations'
         UNION ALL
         SELECT 'function ' || routine_name FROM information_schema.routines
          WHERE routine_schema = 'public'
         ORDER BY 1",
    )
    .fetch_all(pool)
    .await
    .unwrap()
}

async fn fake_future_migration(pool: &PgPool) {
    sqlx::query(
        "INSERT INTO _sqlx_migrations (version, description, success, checksum, execution_time)
         VALUES ($1, 'from a newer ahlt', TRUE, '\\x00'::bytea, 0)",
    )
    .bind(FUTURE_VERSION)
    .execute(pool)
    .await
    .unwrap();
}

/// Everything `ahlt migrate` could change, including every `updated_at`.
#[derive(Debug, PartialEq)]
struct Snapshot {
    counts: Vec<(String, i64)>,
    entity_updates: Vec<(i64, String)>,
    property_updates: Vec<(i64, String, String)>,
    credential_updates: Vec<(i64, String)>,
    migrations: Vec<i64>,
}

async fn snapshot(pool: &PgPool) -> Snapshot {
    let mut counts = Vec::new();
    for table in [
        "entities",
        "entity_properties",
        "relations",
        "relation_properties",
        "user_credentials",
        "audit_log",
    ] {
        let count: i64 = sqlx::query_scalar(&format!("SELECT count(*) FROM {table}"))
            .fetch_one(pool)
            .await
            .unwrap();
        counts.push((table.to_owned(), count));
    }
    Snapshot {
        counts,
        entity_updates: sqlx::query_as(
            "SELECT id, updated_at::text FROM entities ORDER BY id",
        )
        .fetch_all(pool)
        .await
        .unwrap(),
        property_updates: sqlx::query_as(
            "SELECT entity_id, key, updated_at::text FROM entity_properties ORDER BY entity_id, key",
        )
        .fetch_all(pool)
        .await
        .unwrap(),
        credential_updates: sqlx::query_as(
            "SELECT user_id, updated_at::text FROM user_credentials ORDER BY user_id",
        )
        .fetch_all(pool)
        .await
        .unwrap(),
        migrations: sqlx::query_scalar("SELECT version FROM _sqlx_migrations ORDER BY version")
            .fetch_all(pool)
            .await
            .unwrap(),
    }
}

async fn admin_password_verifies(pool: &PgPool, candidate: &str) -> bool {
    let admin = users::find_by_username(pool, "admin")
        .await
        .unwrap()
        .expect("admin exists");
    let hash = users::password_hash(pool, admin.id)
        .await
        .unwrap()
        .expect("admin has a password");
    password::verify(candidate, &hash).await.unwrap()
}

#[tokio::test]
async fn every_migration_applies_up_on_an_empty_database() {
    let db = TestDatabase::create().await;
    let applied = db::migrate(db.pool()).await.unwrap();
    assert_eq!(applied, known_versions());
    assert_eq!(
        db::schema_status(db.pool()).await.unwrap(),
        SchemaStatus::Current
    );
    let objects = our_objects(db.pool()).await;
    for table in [
        "table entities",
        "table relations",
        "table sessions",
        "table audit_log",
    ] {
        assert!(objects.iter().any(|o| o == table), "{table} in {objects:?}");
    }
}

#[tokio::test]
async fn migrations_revert_to_zero_leaving_nothing_and_apply_again() {
    let db = TestDatabase::create().await;
    db::migrate(db.pool()).await.unwrap();
    seed::base(db.pool(), Some("first-admin-password"))
        .await
        .unwrap();

    MIGRATOR.undo(db.pool(), 0).await.unwrap();
    assert_eq!(our_objects(db.pool()).await, Vec::<String>::new());
    assert!(matches!(
        db::schema_status(db.pool()).await.unwrap(),
        SchemaStatus::Behind { .. }
    ));

    assert_eq!(db::migrate(db.pool()).await.unwrap(), known_versions());
    assert_eq!(
        db::schema_status(db.pool()).await.unwrap(),
        SchemaStatus::Current
    );
}

#[tokio::test]
async fn migrating_and_seeding_twice_changes_nothing_the_second_time() {
    let db = TestDatabase::create().await;
    db::migrate(db.pool()).await.unwrap();
    let first = seed::base(db.pool(), Some("first-admin-password"))
        .await
        .unwrap();
    assert!(first.changed());
    let before = snapshot(db.pool()).await;

    assert_eq!(db::migrate(db.pool()).await.unwrap(), Vec::<i64>::new());
    let second = seed::base(db.pool(), Some("first-admin-password"))
        .await
        .unwrap();
    assert_eq!(second.created, Vec::<String>::new());
    assert_eq!(second.generated_admin_password, None);
    assert_eq!(snapshot(db.pool()).await, before);
}

#[tokio::test]
async fn a_migration_unknown_to_this_binary_is_a_downgrade() {
    let db = TestDatabase::create().await;
    db::migrate(db.pool()).await.unwrap();
    fake_future_migration(db.pool()).await;

    match db::migrate(db.pool()).await {
        Err(MigrateError::Downgrade { unknown }) => assert_eq!(unknown, vec![FUTURE_VERSION]),
        other => panic!("expected a downgrade error, got {other:?}"),
    }
    assert_eq!(
        db::schema_status(db.pool()).await.unwrap(),
        SchemaStatus::Ahead {
            unknown: vec![FUTURE_VERSION]
        }
    );
}

#[tokio::test]
async fn schema_is_behind_on_an_empty_database_and_current_after_migrate() {
    let db = TestDatabase::create().await;
    assert_eq!(
        db::schema_status(db.pool()).await.unwrap(),
        SchemaStatus::Behind {
            pending: known_versions()
        }
    );
    db::migrate(db.pool()).await.unwrap();
    assert_eq!(
        db::schema_status(db.pool()).await.unwrap(),
        SchemaStatus::Current
    );
}

#[tokio::test]
async fn a_second_seed_never_resets_the_admin_password() {
    let db = TestDatabase::create().await;
    db::migrate(db.pool()).await.unwrap();
    seed::base(db.pool(), Some("first-admin-password"))
        .await
        .unwrap();
    let second = seed::base(db.pool(), Some("second-admin-password"))
        .await
        .unwrap();

    assert!(!second.created.iter().any(|c| c == "user:admin"));
    assert!(admin_password_verifies(db.pool(), "first-admin-password").await);
    assert!(!admin_password_verifies(db.pool(), "second-admin-password").await);
}

#[tokio::test]
async fn seeding_without_a_password_generates_one_that_verifies() {
    let db = TestDatabase::create().await;
    db::migrate(db.pool()).await.unwrap();
    let report = seed::base(db.pool(), None).await.unwrap();
    let generated = report
        .generated_admin_password
        .expect("a generated admin password");

    assert!(generated.len() >= password::MIN_PASSWORD_LEN);
    assert!(admin_password_verifies(db.pool(), &generated).await);
    assert!(!admin_password_verifies(db.pool(), "not-the-password").await);
}

#[tokio::test]
async fn pools_run_in_utc_whatever_the_server_default() {
    let db = ahlt::testing::TestDatabase::create().await;
    sqlx::query(&format!(
        "ALTER DATABASE \"{}\" SET timezone = 'America/New_York'",
        db.name()
    ))
    .execute(db.pool())
    .await
    .unwrap();
    let pool = ahlt::db::connect(db.url(), 1).await.unwrap();
    let tz: String = sqlx::query_scalar("SHOW timezone")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(tz, "UTC");
}

/// `q=` search (`ILIKE '%q%'` on name and label) can be answered from the trigram indexes
/// instead of a scan of every entity (pg_trgm ships with the PostgreSQL server packages).
#[tokio::test]
async fn entity_search_is_served_by_trigram_indexes() {
    let db = TestDatabase::create().await;
    db::migrate(db.pool()).await.unwrap();
    let indexes: Vec<String> = sqlx::query_scalar(
        "SELECT indexname::text FROM pg_indexes WHERE tablename = 'entities' \
          AND indexdef LIKE '%gin_trgm_ops%' ORDER BY 1",
    )
    .fetch_all(db.pool())
    .await
    .unwrap();
    assert_eq!(indexes, ["entities_label_trgm", "entities_name_trgm"]);

    let mut conn = db.pool().acquire().await.unwrap();
    sqlx::query("SET enable_seqscan = off")
        .execute(&mut *conn)
        .await
        .unwrap();
    let plan: serde_json::Value = sqlx::query_scalar(
        "EXPLAIN (FORMAT JSON) SELECT id FROM entities \
          WHERE name ILIKE '%' || 'committee' || '%' OR label ILIKE '%' || 'committee' || '%'",
    )
    .fetch_one(&mut *conn)
    .await
    .unwrap();
    let plan = plan.to_string();
    assert!(
        plan.contains("entities_name_trgm") && plan.contains("entities_label_trgm"),
        "{plan}"
    );
}
