//! Database provisioning against a real PostgreSQL (the `ahlt::testing` server,
//! trust auth) and, for everything about passwords, a private server with
//! scram-sha-256 auth.

use std::collections::BTreeMap;
use std::os::unix::fs::PermissionsExt;
use std::str::FromStr;

use ahlt::local_postgres::{LocalAuth, LocalPostgres, LocalPostgresOptions};
use ahlt::testing::{admin_url, unique_name};
use ahlt_operator::database::{
    self, AdminCredentials, DatabaseError, DatabaseTarget, DropOutcome, EnsureOutcome,
};
use percent_encoding::percent_decode_str;
use sqlx::postgres::{PgConnectOptions, PgSslMode};
use sqlx::{Connection, Executor, PgConnection};
use url::Url;

/// Turns a `postgres://` admin URL into the credentials a Secret would hold.
fn credentials_from_url(url: &str) -> AdminCredentials {
    let url = Url::parse(url).expect("admin URL parses");
    let decode = |s: &str| percent_decode_str(s).decode_utf8().unwrap().into_owned();
    let database = decode(url.path().trim_start_matches('/'));
    AdminCredentials {
        host: url
            .host_str()
            .expect("admin URL has a host")
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_owned(),
        port: url.port().unwrap_or(5432),
        username: decode(url.username()),
        password: url.password().map(decode).unwrap_or_default(),
        sslmode: url
            .query_pairs()
            .find(|(k, _)| k == "sslmode")
            .map(|(_, v)| v.into_owned()),
        database: (!database.is_empty()).then_some(database),
    }
}

async fn shared_admin() -> AdminCredentials {
    credentials_from_url(&admin_url().await)
}

async fn admin_connection() -> PgConnection {
    PgConnection::connect(&admin_url().await)
        .await
        .expect("admin connects")
}

/// The environment the tests provision for, and one colliding with it.
const OWNER: &str = "team-a/dev";
const OTHER_OWNER: &str = "other-ns/dev";

fn new_target() -> DatabaseTarget {
    DatabaseTarget {
        database: unique_name("op_db"),
        role: unique_name("op_role"),
        password: database::generate_password(),
        owner: OWNER.into(),
    }
}

async fn connect_as(
    admin: &AdminCredentials,
    database: &str,
    user: &str,
    password: &str,
) -> Result<PgConnection, sqlx::Error> {
    let mut options = PgConnectOptions::new_without_pgpass()
        .host(&admin.host)
        .port(admin.port)
        .username(user)
        .password(password)
        .database(database);
    if let Some(mode) = &admin.sslmode {
        options = options.ssl_mode(PgSslMode::from_str(mode).unwrap());
    }
    PgConnection::connect_with(&options).await
}

fn sqlstate(error: &sqlx::Error) -> Option<String> {
    error
        .as_database_error()
        .and_then(|e| e.code())
        .map(|c| c.into_owned())
}

/// A port on 127.0.0.1 with nothing listening: bound, then released.
fn closed_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().port()
}

fn unreachable_admin() -> AdminCredentials {
    AdminCredentials {
        host: "127.0.0.1".into(),
        port: closed_port(),
        username: "postgres".into(),
        password: "admin-password-never-shown".into(),
        sslmode: Some("disable".into()),
        database: None,
    }
}

async fn exists(conn: &mut PgConnection, catalog_query: &str, name: &str) -> bool {
    sqlx::query_scalar::<_, bool>(catalog_query)
        .bind(name)
        .fetch_one(conn)
        .await
        .unwrap()
}

async fn database_exists(conn: &mut PgConnection, name: &str) -> bool {
    exists(
        conn,
        "SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)",
        name,
    )
    .await
}

async fn role_exists(conn: &mut PgConnection, name: &str) -> bool {
    exists(
        conn,
        "SELECT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = $1)",
        name,
    )
    .await
}

/// Creates a login role on the shared server for the duration of a test.
async fn create_role(conn: &mut PgConnection, attributes: &str) -> String {
    let name = unique_name("op_other");
    conn.execute(format!(r#"CREATE ROLE "{name}" WITH LOGIN {attributes}"#).as_str())
        .await
        .unwrap();
    name
}

async fn database_comment(conn: &mut PgConnection, name: &str) -> Option<String> {
    sqlx::query_scalar(
        "SELECT shobj_description(oid, 'pg_database') FROM pg_database WHERE datname = $1",
    )
    .bind(name)
    .fetch_one(conn)
    .await
    .unwrap()
}

/// The stored (hashed) password: what a password reset would change.
async fn password_hash(conn: &mut PgConnection, role: &str) -> Option<String> {
    sqlx::query_scalar("SELECT rolpassword FROM pg_authid WHERE rolname = $1")
        .bind(role)
        .fetch_one(conn)
        .await
        .unwrap()
}

async fn cleanup(admin: &AdminCredentials, target: &DatabaseTarget) {
    database::drop(admin, &target.database, &target.role, &target.owner)
        .await
        .expect("cleanup drop");
}

#[tokio::test]
async fn ensure_creates_a_private_database_owned_by_a_restricted_role() {
    let admin = shared_admin().await;
    let target = new_target();

    let outcome = database::ensure(&admin, &target).await.unwrap();
    assert_eq!(
        outcome,
        EnsureOutcome {
            role_created: true,
            database_created: true
        }
    );

    let mut check = admin_connection().await;
    let (login, superuser, createdb, createrole): (bool, bool, bool, bool) = sqlx::query_as(
        "SELECT rolcanlogin, rolsuper, rolcreatedb, rolcreaterole FROM pg_roles WHERE rolname = $1",
    )
    .bind(&target.role)
    .fetch_one(&mut check)
    .await
    .unwrap();
    assert!(login && !superuser && !createdb && !createrole);
    let owner: String = sqlx::query_scalar(
        "SELECT pg_get_userbyid(datdba)::text FROM pg_database WHERE datname = $1",
    )
    .bind(&target.database)
    .fetch_one(&mut check)
    .await
    .unwrap();
    assert_eq!(owner, target.role);
    assert_eq!(
        database_comment(&mut check, &target.database)
            .await
            .as_deref(),
        Some("managed by ahlt-operator for team-a/dev")
    );
    let public_may_connect: bool =
        sqlx::query_scalar("SELECT has_database_privilege('public', $1, 'CONNECT')")
            .bind(&target.database)
            .fetch_one(&mut check)
            .await
            .unwrap();
    assert!(!public_may_connect);

    // The role can log in to its database and create tables in `public`.
    let mut app = connect_as(&admin, &target.database, &target.role, &target.password)
        .await
        .unwrap();
    app.execute("CREATE TABLE public.t (id int PRIMARY KEY); INSERT INTO t VALUES (1)")
        .await
        .unwrap();
    let schema_owner: String = sqlx::query_scalar(
        "SELECT pg_get_userbyid(nspowner)::text FROM pg_namespace WHERE nspname = 'public'",
    )
    .fetch_one(&mut app)
    .await
    .unwrap();
    assert_eq!(schema_owner, target.role);
    app.close().await.unwrap();

    // Any other (non-superuser) role is refused at connect time.
    let other = create_role(&mut check, "").await;
    let error = connect_as(&admin, &target.database, &other, "irrelevant")
        .await
        .expect_err("another role must not connect");
    assert_eq!(sqlstate(&error).as_deref(), Some("42501"), "{error}");

    cleanup(&admin, &target).await;
    check
        .execute(format!(r#"DROP ROLE "{other}""#).as_str())
        .await
        .unwrap();
}

#[tokio::test]
async fn ensure_is_idempotent() {
    let admin = shared_admin().await;
    let target = new_target();
    database::ensure(&admin, &target).await.unwrap();

    let again = database::ensure(&admin, &target).await.unwrap();
    assert_eq!(again, EnsureOutcome::default());
    let third = database::ensure(&admin, &target).await.unwrap();
    assert_eq!(third, EnsureOutcome::default());

    cleanup(&admin, &target).await;
}

#[tokio::test]
async fn drop_removes_database_and_role_even_with_sessions_and_is_idempotent() {
    let admin = shared_admin().await;
    let target = new_target();
    database::ensure(&admin, &target).await.unwrap();
    let mut session = connect_as(&admin, &target.database, &target.role, &target.password)
        .await
        .unwrap();
    session.execute("SELECT 1").await.unwrap();

    let dropped = database::drop(&admin, &target.database, &target.role, &target.owner)
        .await
        .unwrap();
    assert_eq!(
        dropped,
        DropOutcome {
            database_dropped: true,
            role_dropped: true
        }
    );
    let mut check = admin_connection().await;
    assert!(!database_exists(&mut check, &target.database).await);
    assert!(!role_exists(&mut check, &target.role).await);
    // FORCE terminated the open session.
    assert!(session.execute("SELECT 1").await.is_err());

    let again = database::drop(&admin, &target.database, &target.role, &target.owner)
        .await
        .unwrap();
    assert_eq!(again, DropOutcome::default());
}

#[tokio::test]
async fn hostile_names_are_rejected_before_connecting() {
    // Nothing listens here: an attempted connection would report Unreachable.
    let admin = unreachable_admin();
    let long = "a".repeat(64);
    let hostile = [
        r#"x"; DROP DATABASE postgres; --"#,
        "Robert'); DROP TABLE students; --",
        "ünïcødé",
        long.as_str(),
        "",
        "1starts_with_digit",
        "Upper",
        "has space",
        "semi;colon",
        "dash-ed",
        "nul\0byte",
    ];
    for name in hostile {
        let as_database = DatabaseTarget {
            database: name.to_owned(),
            role: "app".into(),
            password: "pw".into(),
            owner: OWNER.into(),
        };
        let as_role = DatabaseTarget {
            database: "app".into(),
            role: name.to_owned(),
            password: "pw".into(),
            owner: OWNER.into(),
        };
        for target in [&as_database, &as_role] {
            let error = database::ensure(&admin, target).await.unwrap_err();
            assert!(
                matches!(error, DatabaseError::InvalidIdentifier { .. }),
                "{name:?}: {error}"
            );
            assert!(!error.is_transient());
            let error = database::drop(&admin, &target.database, &target.role, &target.owner)
                .await
                .unwrap_err();
            assert_eq!(error.reason(), "InvalidIdentifier", "{name:?}: {error}");
        }
    }
    // The longest valid name is fine up to the connection attempt.
    let longest = DatabaseTarget {
        database: "a".repeat(63),
        role: "b".repeat(63),
        password: "pw".into(),
        owner: OWNER.into(),
    };
    let error = database::ensure(&admin, &longest).await.unwrap_err();
    assert_eq!(error.reason(), "Unreachable", "{error}");
}

#[tokio::test]
async fn reserved_names_are_rejected_before_connecting() {
    let admin = unreachable_admin();
    for (db, role) in [
        ("postgres", "app"),
        ("template0", "app"),
        ("template1", "app"),
        ("app", "pg_read_all_data"),
        ("app", "public"),
        ("app", "postgres"), // the admin itself
    ] {
        let error = database::drop(&admin, db, role, OWNER).await.unwrap_err();
        assert_eq!(error.reason(), "InvalidIdentifier", "{db}/{role}: {error}");
    }
}

#[tokio::test]
async fn empty_password_is_rejected_before_connecting() {
    let admin = unreachable_admin();
    let target = DatabaseTarget {
        password: String::new(),
        ..new_target()
    };
    let error = database::ensure(&admin, &target).await.unwrap_err();
    assert_eq!(error.reason(), "InvalidPassword", "{error}");
}

#[tokio::test]
async fn unreachable_server_is_a_transient_error_without_secrets() {
    let admin = unreachable_admin();
    let target = new_target();
    let error = database::ensure(&admin, &target).await.unwrap_err();
    assert!(
        matches!(error, DatabaseError::Unreachable { .. }),
        "{error}"
    );
    assert!(error.is_transient());
    assert_eq!(error.reason(), "Unreachable");
    let text = error.to_string();
    assert!(
        text.contains(&format!("127.0.0.1:{}", admin.port)),
        "{text}"
    );
    assert!(!text.contains(&admin.password) && !text.contains(&target.password));

    let error = database::drop(&admin, &target.database, &target.role, &target.owner)
        .await
        .unwrap_err();
    assert!(error.is_transient(), "{error}");
}

#[tokio::test]
async fn unknown_admin_role_is_an_authentication_failure() {
    // Even trust auth refuses a role that does not exist (SQLSTATE 28000).
    let mut admin = shared_admin().await;
    admin.username = unique_name("op_nobody");
    admin.password = "not-the-admin-password".into();
    let error = database::ensure(&admin, &new_target()).await.unwrap_err();
    assert!(
        matches!(error, DatabaseError::AuthenticationFailed { .. }),
        "{error}"
    );
    assert!(!error.is_transient());
    assert!(!error.to_string().contains("not-the-admin-password"));
}

#[tokio::test]
async fn admin_without_createrole_is_permission_denied() {
    let mut check = admin_connection().await;
    let weak = create_role(&mut check, "CREATEDB NOCREATEROLE").await;
    let mut admin = shared_admin().await;
    admin.username = weak.clone();
    let target = new_target();

    let error = database::ensure(&admin, &target).await.unwrap_err();
    assert!(
        matches!(error, DatabaseError::PermissionDenied { .. }),
        "{error}"
    );
    assert!(!error.is_transient());
    assert!(!role_exists(&mut check, &target.role).await);
    assert!(!database_exists(&mut check, &target.database).await);

    check
        .execute(format!(r#"DROP ROLE "{weak}""#).as_str())
        .await
        .unwrap();
}

#[tokio::test]
async fn non_superuser_admin_with_createrole_and_createdb_provisions_and_drops() {
    // The managed-PostgreSQL shape: the admin is no superuser.
    let mut check = admin_connection().await;
    let manager = create_role(&mut check, "CREATEDB CREATEROLE").await;
    let mut admin = shared_admin().await;
    admin.username = manager.clone();
    let target = new_target();

    let created = database::ensure(&admin, &target).await.unwrap();
    assert_eq!(
        created,
        EnsureOutcome {
            role_created: true,
            database_created: true
        }
    );
    assert_eq!(
        database::ensure(&admin, &target).await.unwrap(),
        EnsureOutcome::default()
    );
    let mut app = connect_as(&admin, &target.database, &target.role, &target.password)
        .await
        .unwrap();
    app.execute("CREATE TABLE t (id int)").await.unwrap();
    app.close().await.unwrap();

    let dropped = database::drop(&admin, &target.database, &target.role, &target.owner)
        .await
        .unwrap();
    assert_eq!(
        dropped,
        DropOutcome {
            database_dropped: true,
            role_dropped: true
        }
    );
    assert!(!database_exists(&mut check, &target.database).await);
    assert!(!role_exists(&mut check, &target.role).await);

    check
        .execute(format!(r#"DROP ROLE "{manager}""#).as_str())
        .await
        .unwrap();
}

#[tokio::test]
async fn non_superuser_admin_drops_what_another_admin_created() {
    // E.g. the admin Secret was rotated to another role between create and delete.
    let superuser = shared_admin().await;
    let target = new_target();
    database::ensure(&superuser, &target).await.unwrap();
    let mut check = admin_connection().await;
    let manager = create_role(&mut check, "CREATEDB CREATEROLE").await;
    let admin = AdminCredentials {
        username: manager.clone(),
        ..superuser
    };

    let dropped = database::drop(&admin, &target.database, &target.role, &target.owner)
        .await
        .unwrap();
    assert_eq!(
        dropped,
        DropOutcome {
            database_dropped: true,
            role_dropped: true
        }
    );
    assert!(!database_exists(&mut check, &target.database).await);
    assert!(!role_exists(&mut check, &target.role).await);

    check
        .execute(format!(r#"DROP ROLE "{manager}""#).as_str())
        .await
        .unwrap();
}

#[tokio::test]
async fn privileged_existing_role_is_neither_taken_over_nor_dropped() {
    let admin = shared_admin().await;
    let mut check = admin_connection().await;
    let powerful = create_role(&mut check, "CREATEROLE").await;
    let target = DatabaseTarget {
        role: powerful.clone(),
        ..new_target()
    };

    let error = database::ensure(&admin, &target).await.unwrap_err();
    assert_eq!(error.reason(), "Conflict", "{error}");
    assert!(!error.is_transient());
    assert!(!database_exists(&mut check, &target.database).await);
    let error = database::drop(&admin, &target.database, &target.role, &target.owner)
        .await
        .unwrap_err();
    assert_eq!(error.reason(), "Conflict", "{error}");
    assert!(role_exists(&mut check, &powerful).await);

    check
        .execute(format!(r#"DROP ROLE "{powerful}""#).as_str())
        .await
        .unwrap();
}

#[tokio::test]
async fn database_of_another_role_is_neither_adopted_nor_dropped() {
    let admin = shared_admin().await;
    let mut check = admin_connection().await;
    let owner = create_role(&mut check, "").await;
    let target = new_target();
    check
        .execute(format!(r#"CREATE DATABASE "{}" OWNER "{owner}""#, target.database).as_str())
        .await
        .unwrap();

    let error = database::ensure(&admin, &target).await.unwrap_err();
    assert_eq!(error.reason(), "Conflict", "{error}");
    let error = database::drop(&admin, &target.database, &target.role, &target.owner)
        .await
        .unwrap_err();
    assert_eq!(error.reason(), "Conflict", "{error}");
    assert!(database_exists(&mut check, &target.database).await);

    check
        .execute(format!(r#"DROP DATABASE "{}""#, target.database).as_str())
        .await
        .unwrap();
    // ensure created the role before it met the foreign database.
    database::drop(&admin, &target.database, &target.role, &target.owner)
        .await
        .unwrap();
    check
        .execute(format!(r#"DROP ROLE "{owner}""#).as_str())
        .await
        .unwrap();
}

/// Two environments whose names map to the same database and role (`dev` in two
/// namespaces): the second is refused before it can reset the password, and cannot
/// drop the first one's database.
#[tokio::test]
async fn another_environment_can_neither_take_over_nor_drop_a_marked_database() {
    let admin = shared_admin().await;
    let mut check = admin_connection().await;
    let first = new_target();
    database::ensure(&admin, &first).await.unwrap();
    let hash_before = password_hash(&mut check, &first.role).await;
    assert!(hash_before.is_some());

    let second = DatabaseTarget {
        password: database::generate_password(),
        owner: OTHER_OWNER.into(),
        ..first.clone()
    };
    let error = database::ensure(&admin, &second).await.unwrap_err();
    assert_eq!(error.reason(), "Conflict", "{error}");
    assert!(!error.is_transient());
    let text = error.to_string();
    assert!(text.contains(OWNER) && text.contains(OTHER_OWNER), "{text}");
    assert!(
        !text.contains(&first.password) && !text.contains(&second.password),
        "{text}"
    );
    assert_eq!(password_hash(&mut check, &first.role).await, hash_before);
    assert_eq!(
        database_comment(&mut check, &first.database).await,
        Some(database::owner_marker(OWNER))
    );

    let error = database::drop(&admin, &second.database, &second.role, &second.owner)
        .await
        .unwrap_err();
    assert_eq!(error.reason(), "Conflict", "{error}");
    assert!(database_exists(&mut check, &first.database).await);
    assert!(role_exists(&mut check, &first.role).await);

    // The rightful owner is unaffected and still converges idempotently. (Its own
    // re-run re-salts the hash, so the hash is compared only across the refusals.)
    assert_eq!(
        database::ensure(&admin, &first).await.unwrap(),
        EnsureOutcome::default()
    );
    assert_eq!(
        database_comment(&mut check, &first.database).await,
        Some(database::owner_marker(OWNER))
    );

    cleanup(&admin, &first).await;
    assert!(!database_exists(&mut check, &first.database).await);
}

/// A database made before the marker existed (or by hand) for the role is adopted;
/// from then on it is this environment's alone.
#[tokio::test]
async fn unmarked_database_owned_by_the_role_is_adopted_and_marked() {
    let admin = shared_admin().await;
    let mut check = admin_connection().await;
    let target = new_target();
    check
        .execute(format!(r#"CREATE ROLE "{}" WITH LOGIN"#, target.role).as_str())
        .await
        .unwrap();
    check
        .execute(
            format!(
                r#"CREATE DATABASE "{}" OWNER "{}""#,
                target.database, target.role
            )
            .as_str(),
        )
        .await
        .unwrap();
    assert_eq!(database_comment(&mut check, &target.database).await, None);

    assert_eq!(
        database::ensure(&admin, &target).await.unwrap(),
        EnsureOutcome::default()
    );
    assert_eq!(
        database_comment(&mut check, &target.database).await,
        Some(database::owner_marker(OWNER))
    );
    connect_as(&admin, &target.database, &target.role, &target.password)
        .await
        .expect("adopted role logs in with the target password")
        .close()
        .await
        .unwrap();

    let colliding = DatabaseTarget {
        owner: OTHER_OWNER.into(),
        ..target.clone()
    };
    let error = database::ensure(&admin, &colliding).await.unwrap_err();
    assert_eq!(error.reason(), "Conflict", "{error}");

    cleanup(&admin, &target).await;
}

/// Passwords only matter where the server checks them: a private scram-sha-256 server.
#[tokio::test]
async fn passwords_are_authoritative_on_a_password_authenticating_server() {
    let dir = tempfile::Builder::new()
        .prefix("ahlt-op-db-scram-")
        .tempdir()
        .unwrap();
    // As root the server runs as `postgres`, which must reach the data dir.
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o711)).unwrap();
    let server = LocalPostgres::start(LocalPostgresOptions {
        data_dir: dir.path().join("data"),
        port: None,
        auth: LocalAuth::Password,
    })
    .await
    .expect("password-auth PostgreSQL starts");
    let admin = credentials_from_url(&server.url("postgres"));
    assert!(!admin.password.is_empty());

    // Wrong admin password: SQLSTATE 28P01.
    let wrong_admin = AdminCredentials {
        password: "definitely-not-the-admin-password".into(),
        ..admin.clone()
    };
    let error = database::ensure(&wrong_admin, &new_target())
        .await
        .unwrap_err();
    assert!(
        matches!(error, DatabaseError::AuthenticationFailed { .. }),
        "{error}"
    );
    assert!(!error.is_transient());
    assert!(
        !error
            .to_string()
            .contains("definitely-not-the-admin-password")
    );

    // Characters that need quoting in SQL and encoding in URLs.
    let mut target = DatabaseTarget {
        password: r#"p@ss:w/rd?#%&'"\ é;--"#.into(),
        ..new_target()
    };
    database::ensure(&admin, &target).await.unwrap();
    let url = database::database_url(&admin, &target);
    let mut app = PgConnection::connect(&url)
        .await
        .expect("DATABASE_URL logs in");
    app.execute("CREATE TABLE t (id int)").await.unwrap();
    app.close().await.unwrap();
    let error = connect_as(&admin, &target.database, &target.role, "wrong")
        .await
        .expect_err("wrong password refused");
    assert_eq!(sqlstate(&error).as_deref(), Some("28P01"));

    // A re-run keeps the given password.
    assert_eq!(
        database::ensure(&admin, &target).await.unwrap(),
        EnsureOutcome::default()
    );
    connect_as(&admin, &target.database, &target.role, &target.password)
        .await
        .expect("same password still works")
        .close()
        .await
        .unwrap();

    // A changed password takes over: the ALTER path.
    let old = std::mem::replace(&mut target.password, database::generate_password());
    assert_eq!(
        database::ensure(&admin, &target).await.unwrap(),
        EnsureOutcome::default()
    );
    connect_as(&admin, &target.database, &target.role, &target.password)
        .await
        .expect("new password works")
        .close()
        .await
        .unwrap();
    let error = connect_as(&admin, &target.database, &target.role, &old)
        .await
        .expect_err("old password refused");
    assert_eq!(sqlstate(&error).as_deref(), Some("28P01"));

    database::drop(&admin, &target.database, &target.role, &target.owner)
        .await
        .unwrap();
    server.stop().await.unwrap();
}

fn secret(pairs: &[(&str, &[u8])]) -> BTreeMap<String, Vec<u8>> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), v.to_vec()))
        .collect()
}

const FULL: &[(&str, &[u8])] = &[
    ("host", b"db.internal\n"),
    ("port", b"6432"),
    ("username", b"admin"),
    ("password", b" s3cret value\n"),
    ("sslmode", b"verify-full"),
    ("database", b"defaultdb"),
];

#[test]
fn from_secret_data_reads_all_keys() {
    let admin = AdminCredentials::from_secret_data(&secret(FULL)).unwrap();
    assert_eq!(
        admin,
        AdminCredentials {
            host: "db.internal".into(),
            port: 6432,
            username: "admin".into(),
            // Passwords are taken byte for byte.
            password: " s3cret value\n".into(),
            sslmode: Some("verify-full".into()),
            database: Some("defaultdb".into()),
        }
    );
    assert_eq!(admin.maintenance_database(), "defaultdb");
}

#[test]
fn from_secret_data_defaults_optional_keys() {
    let minimal = secret(&FULL[..4]);
    let admin = AdminCredentials::from_secret_data(&minimal).unwrap();
    assert_eq!(admin.sslmode, None);
    assert_eq!(admin.database, None);
    assert_eq!(admin.maintenance_database(), "postgres");
}

#[test]
fn from_secret_data_names_the_bad_key_but_never_its_value() {
    let without = |key: &str| {
        secret(
            &FULL
                .iter()
                .copied()
                .filter(|(k, _)| *k != key)
                .collect::<Vec<_>>(),
        )
    };
    let with = |key: &str, value: &'static [u8]| {
        let mut data = secret(FULL);
        data.insert(key.to_owned(), value.to_vec());
        data
    };
    let cases: Vec<(BTreeMap<String, Vec<u8>>, &str)> = vec![
        (without("host"), "host"),
        (without("port"), "port"),
        (without("username"), "username"),
        (without("password"), "password"),
        (with("host", b"  "), "host"),
        (with("host", b"evil.example/x?y@z"), "host"),
        (with("port", b"0"), "port"),
        (with("port", b"70000"), "port"),
        (with("port", b"fivefourthreetwo"), "port"),
        (with("username", b""), "username"),
        (with("password", b"\xff\xfe-secret-bytes"), "password"),
        (with("sslmode", b"sometimes-secret"), "sslmode"),
        (with("database", b"\xc3"), "database"),
    ];
    for (data, key) in cases {
        let error = AdminCredentials::from_secret_data(&data).unwrap_err();
        let DatabaseError::InvalidAdminSecret { key: named, .. } = &error else {
            panic!("{key}: expected InvalidAdminSecret, got {error}");
        };
        assert_eq!(*named, key);
        assert_eq!(error.reason(), "InvalidAdminSecret");
        assert!(!error.is_transient());
        let text = error.to_string();
        assert!(text.contains(key), "{text}");
        for leaked in ["secret", "evil", "70000", "fivefour", "s3cret"] {
            assert!(!text.contains(leaked), "{text}");
        }
    }
}

#[test]
fn database_url_percent_encodes_and_parses_back() {
    let admin = AdminCredentials {
        host: "db.internal".into(),
        port: 6432,
        username: "admin".into(),
        password: "admin-pw".into(),
        sslmode: Some("require".into()),
        database: None,
    };
    let target = DatabaseTarget {
        database: "ahlt_dev".into(),
        role: "ahlt_dev".into(),
        password: r#"p@ss:w/rd?#%&'"\ é+="#.into(),
        owner: OWNER.into(),
    };
    let text = database::database_url(&admin, &target);
    assert!(!text.contains("admin-pw"));

    let url = Url::parse(&text).unwrap();
    assert_eq!(url.scheme(), "postgres");
    assert_eq!(url.username(), "ahlt_dev");
    let password = percent_decode_str(url.password().unwrap())
        .decode_utf8()
        .unwrap();
    assert_eq!(password, target.password);
    assert_eq!(url.host_str(), Some("db.internal"));
    assert_eq!(url.port(), Some(6432));
    assert_eq!(url.path(), "/ahlt_dev");
    assert_eq!(
        url.query_pairs().collect::<Vec<_>>(),
        [("sslmode".into(), "require".into())]
    );

    // The app parses it with sqlx.
    let options = PgConnectOptions::from_str(&text).unwrap();
    assert_eq!(options.get_username(), "ahlt_dev");
    assert_eq!(options.get_database(), Some("ahlt_dev"));
    assert_eq!(options.get_host(), "db.internal");
    assert_eq!(options.get_port(), 6432);
    assert!(matches!(options.get_ssl_mode(), PgSslMode::Require));

    let without_sslmode = AdminCredentials {
        sslmode: None,
        ..admin
    };
    assert!(
        Url::parse(&database::database_url(&without_sslmode, &target))
            .unwrap()
            .query()
            .is_none()
    );
}

#[test]
fn generated_passwords_are_long_url_safe_and_distinct() {
    let a = database::generate_password();
    let b = database::generate_password();
    assert!(a.len() >= 32, "{a}");
    assert!(a.bytes().all(|c| c.is_ascii_alphanumeric()), "{a}");
    assert_ne!(a, b);
}

/// A role is marked like its database: another environment sharing only the role (with a
/// database of its own) can neither reset the role's password nor drop it.
#[tokio::test]
async fn another_environment_cannot_take_over_a_marked_role_through_another_database() {
    let admin = shared_admin().await;
    let mut check = admin_connection().await;
    let first = new_target();
    database::ensure(&admin, &first).await.unwrap();
    assert_eq!(
        role_comment(&mut check, &first.role).await,
        Some(database::owner_marker(OWNER))
    );
    let hash_before = password_hash(&mut check, &first.role).await;

    let second = DatabaseTarget {
        database: ahlt::testing::unique_name("ahlt_other"),
        password: database::generate_password(),
        owner: OTHER_OWNER.into(),
        ..first.clone()
    };
    let error = database::ensure(&admin, &second).await.unwrap_err();
    assert_eq!(error.reason(), "Conflict", "{error}");
    let text = error.to_string();
    assert!(
        text.contains(&first.role) && text.contains(OWNER) && text.contains(OTHER_OWNER),
        "{text}"
    );
    assert!(!text.contains(&second.password), "{text}");
    assert_eq!(
        password_hash(&mut check, &first.role).await,
        hash_before,
        "password untouched"
    );
    assert!(
        !database_exists(&mut check, &second.database).await,
        "nothing created for the intruder"
    );

    let error = database::drop(&admin, &second.database, &second.role, &second.owner)
        .await
        .unwrap_err();
    assert_eq!(error.reason(), "Conflict", "{error}");
    assert!(role_exists(&mut check, &first.role).await);

    cleanup(&admin, &first).await;
}

async fn role_comment(conn: &mut PgConnection, role: &str) -> Option<String> {
    sqlx::query_scalar(
        "SELECT shobj_description(oid, 'pg_authid') FROM pg_roles WHERE rolname = $1",
    )
    .bind(role)
    .fetch_optional(conn)
    .await
    .unwrap()
    .flatten()
}
