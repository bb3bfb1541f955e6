//! PostgreSQL provisioning for one environment: its login role and database.
//!
//! No Kubernetes here: the reconciler reads the admin Secret and passes its data in.
//! Identifiers are validated before anything connects and quoted when formatted into
//! DDL. Passwords never appear in SQL text: they travel as bind parameters and the
//! server formats them into `ALTER ROLE ... PASSWORD` itself (`format('%L')`).
//!
//! Every operation is bounded (connect timeout, server-side statement and lock
//! timeouts, and an overall deadline) so a vanished server fails the reconcile
//! instead of hanging it.

use std::collections::BTreeMap;
use std::fmt;
use std::future::Future;
use std::str::FromStr;
use std::time::Duration;

use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
use rand::distributions::{Alphanumeric, DistString};
use rand::rngs::OsRng;
use sqlx::postgres::{PgConnectOptions, PgSslMode};
use sqlx::{Connection, PgConnection};

/// How long establishing one connection may take.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// Deadline for a whole [`ensure`] or [`drop`]. The server-side timeouts below
/// cannot fire when the network itself is gone, this one always does.
pub const OPERATION_TIMEOUT: Duration = Duration::from_secs(60);
/// Server-side `statement_timeout` (ms); CREATE DATABASE copies a template, so not tiny.
const STATEMENT_TIMEOUT_MS: u32 = 30_000;
/// Server-side `lock_timeout` (ms): don't queue forever behind someone's long transaction.
const LOCK_TIMEOUT_MS: u32 = 10_000;
/// Maintenance database used when the admin Secret names none.
pub const DEFAULT_MAINTENANCE_DATABASE: &str = "postgres";
/// Length of [`generate_password`] output: 40 of 62 symbols, ~238 bits.
const PASSWORD_LEN: usize = 40;
/// Transaction-local settings that carry an identifier and a literal into a DO block
/// (see [`execute_quoted`]).
const IDENT_SETTING: &str = "ahlt_operator.ident";
const LITERAL_SETTING: &str = "ahlt_operator.literal";
/// Database comment prefix naming the environment (`<namespace>/<name>`) that owns it.
/// The default database name is derived from the environment's name alone, so two
/// namespaces can collide on it; this marker is what tells them apart.
pub const OWNER_MARKER_PREFIX: &str = "managed by ahlt-operator for ";
/// First key of the advisory lock that serialises ensure/drop per database name,
/// so the ownership check and the password change cannot interleave with a
/// colliding environment's ("ahlt" in ASCII).
const LOCK_CLASS: i32 = 0x61_68_6c_74;

/// Connection details of a PostgreSQL role allowed to create roles and databases.
#[derive(Clone, PartialEq, Eq)]
pub struct AdminCredentials {
    pub host: String,
    pub port: u16,
    pub username: String,
    pub password: String,
    /// libpq `sslmode`; `None` means `prefer`.
    pub sslmode: Option<String>,
    /// Maintenance database to connect to; `None` means [`DEFAULT_MAINTENANCE_DATABASE`].
    pub database: Option<String>,
}

impl fmt::Debug for AdminCredentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AdminCredentials")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("username", &self.username)
            .field("password", &"[redacted]")
            .field("sslmode", &self.sslmode)
            .field("database", &self.database)
            .finish()
    }
}

impl AdminCredentials {
    /// Reads the admin Secret's `data`: keys `host`, `port`, `username`, `password`,
    /// and optionally `sslmode` and `database`. Errors name the key, never its value.
    pub fn from_secret_data(data: &BTreeMap<String, Vec<u8>>) -> Result<Self, DatabaseError> {
        let host = required_setting(data, "host")?;
        if !is_valid_host(&host) {
            return Err(invalid_secret(
                "host",
                "not a valid host name or IP address",
            ));
        }
        let port = required_setting(data, "port")?
            .parse::<u16>()
            .ok()
            .filter(|port| *port != 0)
            .ok_or_else(|| invalid_secret("port", "not a port number (1-65535)"))?;
        let username = required_setting(data, "username")?;
        // Kept byte for byte: whitespace may be part of a password.
        let password = utf8(data, "password")?
            .ok_or_else(|| invalid_secret("password", "missing"))?
            .to_owned();
        let sslmode = optional_setting(data, "sslmode")?;
        if let Some(mode) = &sslmode {
            parse_sslmode(mode)?;
        }
        let database = optional_setting(data, "database")?;
        Ok(AdminCredentials {
            host,
            port,
            username,
            password,
            sslmode,
            database,
        })
    }

    /// The database the admin connects to for role and database DDL.
    pub fn maintenance_database(&self) -> &str {
        self.database
            .as_deref()
            .unwrap_or(DEFAULT_MAINTENANCE_DATABASE)
    }

    fn endpoint(&self) -> String {
        format!("{}:{}", url_host(&self.host), self.port)
    }
}

/// Non-secret Secret values: surrounding whitespace (a file's trailing newline) dropped.
fn optional_setting(
    data: &BTreeMap<String, Vec<u8>>,
    key: &'static str,
) -> Result<Option<String>, DatabaseError> {
    Ok(utf8(data, key)?
        .map(str::trim)
        .filter(|value| !value.is_empty())
        .map(str::to_owned))
}

fn required_setting(
    data: &BTreeMap<String, Vec<u8>>,
    key: &'static str,
) -> Result<String, DatabaseError> {
    match utf8(data, key)? {
        None => Err(invalid_secret(key, "missing")),
        Some(value) if value.trim().is_empty() => Err(invalid_secret(key, "empty")),
        Some(value) => Ok(value.trim().to_owned()),
    }
}

fn utf8<'a>(
    data: &'a BTreeMap<String, Vec<u8>>,
    key: &'static str,
) -> Result<Option<&'a str>, DatabaseError> {
    data.get(key)
        .map(|bytes| std::str::from_utf8(bytes).map_err(|_| invalid_secret(key, "not UTF-8")))
        .transpose()
}

fn invalid_secret(key: &'static str, problem: &'static str) -> DatabaseError {
    DatabaseError::InvalidAdminSecret { key, problem }
}

/// DNS names, IPv4 and IPv6 literals (bare or bracketed): nothing that could
/// reshape a connection URL.
fn is_valid_host(host: &str) -> bool {
    let bare = host
        .strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(host);
    !bare.is_empty()
        && bare.len() <= 253
        && bare
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_' | b':'))
}

fn parse_sslmode(mode: &str) -> Result<PgSslMode, DatabaseError> {
    PgSslMode::from_str(mode).map_err(|_| {
        invalid_secret(
            "sslmode",
            "not one of disable, allow, prefer, require, verify-ca, verify-full",
        )
    })
}

/// What one environment gets: a login role owning one database.
#[derive(Clone, PartialEq, Eq)]
pub struct DatabaseTarget {
    pub database: String,
    pub role: String,
    pub password: String,
    /// The owning environment, `<namespace>/<name>`; recorded on the database.
    pub owner: String,
}

impl fmt::Debug for DatabaseTarget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DatabaseTarget")
            .field("database", &self.database)
            .field("role", &self.role)
            .field("password", &"[redacted]")
            .field("owner", &self.owner)
            .finish()
    }
}

/// What [`ensure`] created this time (for events); all false on a converged re-run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct EnsureOutcome {
    pub role_created: bool,
    pub database_created: bool,
}

/// What [`drop`] removed this time; all false when there was nothing left.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct DropOutcome {
    pub database_dropped: bool,
    pub role_dropped: bool,
}

/// Provisioning failures. Variant names are condition reasons (see [`Self::reason`]);
/// messages never contain passwords.
#[derive(Debug, thiserror::Error)]
pub enum DatabaseError {
    /// No connection (refused, DNS, TLS, timeout) or the server went away mid-operation.
    #[error("PostgreSQL at {endpoint} is unreachable: {detail}")]
    Unreachable { endpoint: String, detail: String },
    /// The server rejected the admin credentials (SQLSTATE 28P01/28000).
    #[error("PostgreSQL rejected the admin credentials of {username:?}: {detail}")]
    AuthenticationFailed { username: String, detail: String },
    /// The admin role lacks a privilege, e.g. CREATEROLE (SQLSTATE 42501).
    #[error("the admin role lacks a privilege: {detail}")]
    PermissionDenied { detail: String },
    /// A database or role name that must not reach SQL; rejected before connecting.
    #[error("invalid {kind} name: {problem}")]
    InvalidIdentifier { kind: &'static str, problem: String },
    /// The target password cannot be set (rejected before connecting).
    #[error("invalid role password: {problem}")]
    InvalidPassword { problem: &'static str },
    /// A key of the admin Secret is missing or malformed.
    #[error("admin Secret key {key:?} is {problem}")]
    InvalidAdminSecret {
        key: &'static str,
        problem: &'static str,
    },
    /// The name is taken by something this environment must not manage or drop: a
    /// privileged role, a database owned by another role, or a database marked as
    /// another environment's.
    #[error("{detail}")]
    Conflict { detail: String },
    /// Any other server or protocol error.
    #[error("PostgreSQL error: {detail}")]
    Database { detail: String },
}

impl DatabaseError {
    /// The condition reason / metric label: the variant name.
    /// Every reason [`Self::reason`] returns (plus `Database` for an unclassified failure of
    /// the provisioning task itself).
    pub const REASONS: [&'static str; 8] = [
        "Unreachable",
        "AuthenticationFailed",
        "PermissionDenied",
        "InvalidIdentifier",
        "InvalidPassword",
        "InvalidAdminSecret",
        "Conflict",
        "Database",
    ];

    pub fn reason(&self) -> &'static str {
        match self {
            DatabaseError::Unreachable { .. } => "Unreachable",
            DatabaseError::AuthenticationFailed { .. } => "AuthenticationFailed",
            DatabaseError::PermissionDenied { .. } => "PermissionDenied",
            DatabaseError::InvalidIdentifier { .. } => "InvalidIdentifier",
            DatabaseError::InvalidPassword { .. } => "InvalidPassword",
            DatabaseError::InvalidAdminSecret { .. } => "InvalidAdminSecret",
            DatabaseError::Conflict { .. } => "Conflict",
            DatabaseError::Database { .. } => "Database",
        }
    }

    /// Whether retrying unchanged input may succeed. Unclassified server errors
    /// count as transient (lock timeouts, restarts, cancellations); bad credentials,
    /// missing privileges and bad input need a human and are retried only slowly.
    pub fn is_transient(&self) -> bool {
        matches!(
            self,
            DatabaseError::Unreachable { .. } | DatabaseError::Database { .. }
        )
    }
}

/// Classifies a server error by SQLSTATE.
fn from_sqlstate(code: &str, message: String, admin: &AdminCredentials) -> DatabaseError {
    match code {
        // invalid_password, invalid_authorization_specification (unknown role,
        // NOLOGIN, no pg_hba.conf entry).
        "28P01" | "28000" => DatabaseError::AuthenticationFailed {
            username: admin.username.clone(),
            detail: message,
        },
        "42501" => DatabaseError::PermissionDenied { detail: message },
        // Shutting down, starting up, out of connection slots, connection exceptions.
        "57P01" | "57P02" | "57P03" | "53300" => DatabaseError::Unreachable {
            endpoint: admin.endpoint(),
            detail: message,
        },
        c if c.starts_with("08") => DatabaseError::Unreachable {
            endpoint: admin.endpoint(),
            detail: message,
        },
        _ => DatabaseError::Database {
            detail: format!("{message} (SQLSTATE {code})"),
        },
    }
}

/// Maps a sqlx error, scrubbing any password that might have been echoed back.
struct ErrorContext<'a> {
    admin: &'a AdminCredentials,
    target_password: Option<&'a str>,
}

impl ErrorContext<'_> {
    fn map(&self, error: sqlx::Error) -> DatabaseError {
        let mapped = match error {
            sqlx::Error::Database(db) => {
                let code = db.code().map(|c| c.into_owned()).unwrap_or_default();
                from_sqlstate(&code, db.message().to_owned(), self.admin)
            }
            sqlx::Error::Io(e) => DatabaseError::Unreachable {
                endpoint: self.admin.endpoint(),
                detail: e.to_string(),
            },
            sqlx::Error::Tls(e) => DatabaseError::Unreachable {
                endpoint: self.admin.endpoint(),
                detail: format!("TLS: {e}"),
            },
            other => DatabaseError::Database {
                detail: other.to_string(),
            },
        };
        self.redact(mapped)
    }

    fn redact(&self, error: DatabaseError) -> DatabaseError {
        let secrets: Vec<&str> = [Some(self.admin.password.as_str()), self.target_password]
            .into_iter()
            .flatten()
            .filter(|s| !s.is_empty())
            .collect();
        let scrub = |text: String| {
            secrets
                .iter()
                .fold(text, |text, secret| text.replace(secret, "[redacted]"))
        };
        match error {
            DatabaseError::Unreachable { endpoint, detail } => DatabaseError::Unreachable {
                endpoint,
                detail: scrub(detail),
            },
            DatabaseError::AuthenticationFailed { username, detail } => {
                DatabaseError::AuthenticationFailed {
                    username,
                    detail: scrub(detail),
                }
            }
            DatabaseError::PermissionDenied { detail } => DatabaseError::PermissionDenied {
                detail: scrub(detail),
            },
            DatabaseError::Conflict { detail } => DatabaseError::Conflict {
                detail: scrub(detail),
            },
            DatabaseError::Database { detail } => DatabaseError::Database {
                detail: scrub(detail),
            },
            other => other,
        }
    }

    fn sqlstate(error: &sqlx::Error) -> Option<String> {
        match error {
            sqlx::Error::Database(db) => db.code().map(|c| c.into_owned()),
            _ => None,
        }
    }
}

/// Checks a database or role name against `^[a-z_][a-z0-9_]{0,62}$`: lowercase so
/// it means the same quoted and unquoted, and within PostgreSQL's 63-byte limit.
pub fn validate_identifier(kind: &'static str, name: &str) -> Result<(), DatabaseError> {
    let invalid = |problem: &str| DatabaseError::InvalidIdentifier {
        kind,
        problem: problem.to_owned(),
    };
    let bytes = name.as_bytes();
    match bytes.first() {
        None => return Err(invalid("empty")),
        Some(b'a'..=b'z' | b'_') => {}
        Some(_) => return Err(invalid("must start with a lowercase letter or underscore")),
    }
    if bytes.len() > 63 {
        return Err(invalid("longer than 63 characters"));
    }
    if !bytes
        .iter()
        .all(|b| matches!(b, b'a'..=b'z' | b'0'..=b'9' | b'_'))
    {
        return Err(invalid(
            "may contain only lowercase letters, digits and underscores",
        ));
    }
    Ok(())
}

/// Validates names and refuses the ones that belong to the server or the admin,
/// so neither [`ensure`] nor [`drop`] can touch them.
fn check_names(admin: &AdminCredentials, database: &str, role: &str) -> Result<(), DatabaseError> {
    validate_identifier("database", database)?;
    validate_identifier("role", role)?;
    let reserved = |kind, what: &str| DatabaseError::InvalidIdentifier {
        kind,
        problem: format!("{what} is reserved"),
    };
    if ["postgres", "template0", "template1"].contains(&database)
        || database == admin.maintenance_database()
    {
        return Err(reserved("database", database));
    }
    // PostgreSQL reserves pg_* and these names for roles.
    if role.starts_with("pg_")
        || [
            "public",
            "none",
            "current_user",
            "session_user",
            "current_role",
        ]
        .contains(&role)
    {
        return Err(reserved("role", role));
    }
    if role == admin.username {
        return Err(DatabaseError::InvalidIdentifier {
            kind: "role",
            problem: format!("{role} is the admin role"),
        });
    }
    Ok(())
}

/// Checks an owner identity: `<namespace>/<name>` in Kubernetes name characters,
/// so the marker stays unambiguous and parseable.
pub fn validate_owner(owner: &str) -> Result<(), DatabaseError> {
    let invalid = |problem: &str| DatabaseError::InvalidIdentifier {
        kind: "owner",
        problem: problem.to_owned(),
    };
    let Some((namespace, name)) = owner.split_once('/') else {
        return Err(invalid("must be <namespace>/<name>"));
    };
    let valid_part = |part: &str| {
        !part.is_empty()
            && part.len() <= 253
            && part
                .bytes()
                .all(|b| matches!(b, b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.'))
    };
    if !valid_part(namespace) || !valid_part(name) {
        return Err(invalid(
            "namespace and name must be non-empty lowercase letters, digits, '-' or '.'",
        ));
    }
    Ok(())
}

/// An environment's identity as recorded on its database: `<namespace>/<name>`.
/// Namespaced, because the default database name derives from the name alone.
pub fn environment_owner(namespace: &str, name: &str) -> String {
    format!("{namespace}/{name}")
}

/// The database comment recording `owner`.
pub fn owner_marker(owner: &str) -> String {
    format!("{OWNER_MARKER_PREFIX}{owner}")
}

/// The owner a database comment names, if it is an ahlt-operator marker.
fn marked_owner(comment: &str) -> Option<&str> {
    comment.strip_prefix(OWNER_MARKER_PREFIX)
}

/// `"name"` with embedded quotes doubled; names are validated first, this keeps
/// DDL correct even if that ever changes.
fn quote_identifier(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// Creates the role and database if missing and makes them match the target:
/// the role logs in with `target.password` and owns the database and its `public`
/// schema; only the role may connect. Idempotent.
pub async fn ensure(
    admin: &AdminCredentials,
    target: &DatabaseTarget,
) -> Result<EnsureOutcome, DatabaseError> {
    check_names(admin, &target.database, &target.role)?;
    validate_owner(&target.owner)?;
    if target.password.is_empty() {
        return Err(DatabaseError::InvalidPassword { problem: "empty" });
    }
    if target.password.contains('\0') {
        return Err(DatabaseError::InvalidPassword {
            problem: "contains a NUL byte",
        });
    }
    let ctx = ErrorContext {
        admin,
        target_password: Some(&target.password),
    };
    bounded(&ctx, async {
        let mut conn = connect(&ctx, admin.maintenance_database()).await?;
        lock_database_name(&ctx, &mut conn, &target.database).await?;
        // Refuse someone else's database before the role (and its password) changes.
        if let Some(existing) = existing_database(&ctx, &mut conn, &target.database).await? {
            existing.refuse_if_foreign(&target.database, &target.role, &target.owner)?;
        }
        let role_created = ensure_role(&ctx, &mut conn, target).await?;
        ensure_admin_membership(&ctx, &mut conn, &target.role).await?;
        let database_created = ensure_database(&ctx, &mut conn, target).await?;
        close(conn).await;

        let mut conn = connect(&ctx, &target.database).await?;
        ensure_schema_owner(&ctx, &mut conn, &target.role).await?;
        close(conn).await;
        Ok(EnsureOutcome {
            role_created,
            database_created,
        })
    })
    .await
}

/// Drops the database (terminating its sessions) and the role. Idempotent. Refuses
/// a database owned by another role, a database marked as another environment's
/// (`owner` is `<namespace>/<name>`) and a privileged role: those are not ours.
pub async fn drop(
    admin: &AdminCredentials,
    database: &str,
    role: &str,
    owner: &str,
) -> Result<DropOutcome, DatabaseError> {
    check_names(admin, database, role)?;
    validate_owner(owner)?;
    let ctx = ErrorContext {
        admin,
        target_password: None,
    };
    bounded(&ctx, async {
        let mut conn = connect(&ctx, admin.maintenance_database()).await?;
        lock_database_name(&ctx, &mut conn, database).await?;
        // Refuse before dropping anything: nothing is half-deleted on a conflict.
        let existing = existing_database(&ctx, &mut conn, database).await?;
        if let Some(existing) = &existing {
            existing.refuse_if_foreign(database, role, owner)?;
        }
        let role_exists = match role_privileges(&ctx, &mut conn, role).await? {
            Some(privileges) => {
                privileges.refuse_if_privileged(role)?;
                privileges.refuse_if_foreign(role, owner)?;
                true
            }
            None => false,
        };
        if role_exists {
            // A non-superuser admin drops the database as a member of its owner.
            ensure_admin_membership(&ctx, &mut conn, role).await?;
        }
        let database_dropped = existing.is_some();
        if database_dropped {
            let sql = format!(
                "DROP DATABASE IF EXISTS {} WITH (FORCE)",
                quote_identifier(database)
            );
            execute(&ctx, &mut conn, &sql).await?;
        }
        if role_exists {
            let sql = format!("DROP ROLE IF EXISTS {}", quote_identifier(role));
            execute(&ctx, &mut conn, &sql).await?;
        }
        let role_dropped = role_exists;
        close(conn).await;
        Ok(DropOutcome {
            database_dropped,
            role_dropped,
        })
    })
    .await
}

/// The app's `DATABASE_URL`: `postgres://role:password@host:port/database[?sslmode=..]`
/// with every component percent-encoded.
pub fn database_url(admin: &AdminCredentials, target: &DatabaseTarget) -> String {
    let mut url = format!(
        "postgres://{}:{}@{}:{}/{}",
        encode(&target.role),
        encode(&target.password),
        url_host(&admin.host),
        admin.port,
        encode(&target.database),
    );
    if let Some(mode) = &admin.sslmode {
        url.push_str("?sslmode=");
        url.push_str(&encode(mode));
    }
    url
}

/// A fresh role password: 40 alphanumerics from the OS RNG (~238 bits), safe
/// unencoded in URLs, shells and YAML.
pub fn generate_password() -> String {
    Alphanumeric.sample_string(&mut OsRng, PASSWORD_LEN)
}

/// Everything but RFC 3986 unreserved characters.
const COMPONENT: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

fn encode(component: &str) -> String {
    utf8_percent_encode(component, COMPONENT).to_string()
}

/// IPv6 literals need brackets in URLs.
fn url_host(host: &str) -> String {
    if host.contains(':') && !host.starts_with('[') {
        format!("[{host}]")
    } else {
        host.to_owned()
    }
}

async fn bounded<T>(
    ctx: &ErrorContext<'_>,
    operation: impl Future<Output = Result<T, DatabaseError>>,
) -> Result<T, DatabaseError> {
    tokio::time::timeout(OPERATION_TIMEOUT, operation)
        .await
        .unwrap_or_else(|_| {
            Err(DatabaseError::Unreachable {
                endpoint: ctx.admin.endpoint(),
                detail: format!("no answer within {}s", OPERATION_TIMEOUT.as_secs()),
            })
        })
}

async fn connect(ctx: &ErrorContext<'_>, database: &str) -> Result<PgConnection, DatabaseError> {
    let admin = ctx.admin;
    let ssl_mode = match &admin.sslmode {
        Some(mode) => parse_sslmode(mode)?,
        None => PgSslMode::Prefer,
    };
    // Explicit everything: no PG* environment defaults or pgpass sneak in.
    let options = PgConnectOptions::new_without_pgpass()
        .host(&admin.host)
        .port(admin.port)
        .username(&admin.username)
        .password(&admin.password)
        .database(database)
        .ssl_mode(ssl_mode)
        .application_name("ahlt-operator")
        .options([
            ("statement_timeout", STATEMENT_TIMEOUT_MS),
            ("lock_timeout", LOCK_TIMEOUT_MS),
        ]);
    match tokio::time::timeout(CONNECT_TIMEOUT, PgConnection::connect_with(&options)).await {
        Ok(result) => result.map_err(|e| ctx.map(e)),
        Err(_) => Err(DatabaseError::Unreachable {
            endpoint: admin.endpoint(),
            detail: format!("no connection within {}s", CONNECT_TIMEOUT.as_secs()),
        }),
    }
}

async fn close(conn: PgConnection) {
    // The work is done; a failed goodbye changes nothing.
    let _ = conn.close().await;
}

async fn execute(
    ctx: &ErrorContext<'_>,
    conn: &mut PgConnection,
    sql: &str,
) -> Result<(), DatabaseError> {
    sqlx::raw_sql(sql)
        .execute(conn)
        .await
        .map(|_| ())
        .map_err(|e| ctx.map(e))
}

/// Role attributes that make a role too powerful to hand to an environment.
struct RolePrivileges {
    superuser: bool,
    create_role: bool,
    replication: bool,
    bypass_rls: bool,
    /// The role's comment: our owner marker, when an environment created or adopted it.
    comment: Option<String>,
}

impl RolePrivileges {
    fn refuse_if_privileged(&self, role: &str) -> Result<(), DatabaseError> {
        if self.superuser || self.create_role || self.replication || self.bypass_rls {
            return Err(DatabaseError::Conflict {
                detail: format!(
                    "role {role} already exists with SUPERUSER, CREATEROLE, REPLICATION or BYPASSRLS; \
                     an environment may not manage it, choose another role name"
                ),
            });
        }
        Ok(())
    }

    /// A role marked for another environment is not ours: sharing it would let one
    /// environment reset the other's password (or drop the role).
    fn refuse_if_foreign(&self, role: &str, owner: &str) -> Result<(), DatabaseError> {
        match self.comment.as_deref().and_then(marked_owner) {
            Some(other) if other != owner => Err(DatabaseError::Conflict {
                detail: format!(
                    "role {role} belongs to environment {other}, not {owner}; \
                     give one of them another role name"
                ),
            }),
            _ => Ok(()),
        }
    }
}

async fn role_privileges(
    ctx: &ErrorContext<'_>,
    conn: &mut PgConnection,
    role: &str,
) -> Result<Option<RolePrivileges>, DatabaseError> {
    let row: Option<(bool, bool, bool, bool, Option<String>)> = sqlx::query_as(
        "SELECT rolsuper, rolcreaterole, rolreplication, rolbypassrls, \
                pg_catalog.shobj_description(oid, 'pg_authid') \
         FROM pg_catalog.pg_roles WHERE rolname = $1",
    )
    .bind(role)
    .fetch_optional(&mut *conn)
    .await
    .map_err(|e| ctx.map(e))?;
    Ok(row.map(
        |(superuser, create_role, replication, bypass_rls, comment)| RolePrivileges {
            superuser,
            create_role,
            replication,
            bypass_rls,
            comment,
        },
    ))
}

/// Creates or updates the role; true when created. One transaction, so a failed
/// password step never leaves a half-made role behind.
async fn ensure_role(
    ctx: &ErrorContext<'_>,
    conn: &mut PgConnection,
    target: &DatabaseTarget,
) -> Result<bool, DatabaseError> {
    let role = quote_identifier(&target.role);
    // Second pass only after losing a creation race to a concurrent ensure.
    for _ in 0..2 {
        let existing = role_privileges(ctx, conn, &target.role).await?;
        if let Some(privileges) = &existing {
            privileges.refuse_if_privileged(&target.role)?;
            privileges.refuse_if_foreign(&target.role, &target.owner)?;
        }
        let mut tx = conn.begin().await.map_err(|e| ctx.map(e))?;
        // Password-less DDL first: privilege errors surface here, not in the
        // statement whose text holds the password (which the server would log).
        let ddl = if existing.is_some() {
            format!("ALTER ROLE {role} WITH LOGIN NOCREATEDB")
        } else {
            format!("CREATE ROLE {role} WITH LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE")
        };
        match sqlx::raw_sql(&ddl).execute(&mut *tx).await {
            Ok(_) => {}
            Err(e)
                if existing.is_none() && ErrorContext::sqlstate(&e).as_deref() == Some("42710") =>
            {
                // duplicate_object: created concurrently; re-check it and alter.
                continue;
            }
            Err(e) => return Err(ctx.map(e)),
        }
        set_password(ctx, &mut tx, target).await?;
        // Created or adopted (an unmarked role, e.g. from an older operator): mark it ours.
        if existing
            .as_ref()
            .is_none_or(|r| r.comment.as_deref().and_then(marked_owner).is_none())
        {
            mark_role(ctx, &mut tx, target).await?;
        }
        tx.commit().await.map_err(|e| ctx.map(e))?;
        return Ok(existing.is_none());
    }
    Err(DatabaseError::Database {
        detail: format!("role {} keeps appearing and disappearing", target.role),
    })
}

/// Records `target.owner` as the role's comment.
async fn mark_role(
    ctx: &ErrorContext<'_>,
    conn: &mut PgConnection,
    target: &DatabaseTarget,
) -> Result<(), DatabaseError> {
    let marker = owner_marker(&target.owner);
    execute_quoted(ctx, conn, "COMMENT ON ROLE %I IS %L", &target.role, &marker).await
}

async fn set_password(
    ctx: &ErrorContext<'_>,
    conn: &mut PgConnection,
    target: &DatabaseTarget,
) -> Result<(), DatabaseError> {
    let sql = "ALTER ROLE %I WITH PASSWORD %L";
    execute_quoted(ctx, conn, sql, &target.role, &target.password).await
}

/// Runs `template` (a constant with one `%I` and one `%L`) for `ident` and `literal`
/// without splicing either into SQL text: both travel as bind parameters in
/// transaction-local settings and the server quotes them with `format()`. Passwords
/// and markers go this way because DDL takes no parameters. Its own transaction (a
/// savepoint when nested) keeps the settings visible to the DO block.
async fn execute_quoted(
    ctx: &ErrorContext<'_>,
    conn: &mut PgConnection,
    template: &'static str,
    ident: &str,
    literal: &str,
) -> Result<(), DatabaseError> {
    let mut tx = conn.begin().await.map_err(|e| ctx.map(e))?;
    sqlx::query("SELECT set_config($1, $2, true), set_config($3, $4, true)")
        .bind(IDENT_SETTING)
        .bind(ident)
        .bind(LITERAL_SETTING)
        .bind(literal)
        .execute(&mut *tx)
        .await
        .map_err(|e| ctx.map(e))?;
    let sql = format!(
        "DO $$ BEGIN EXECUTE format('{template}', \
         current_setting('{IDENT_SETTING}'), current_setting('{LITERAL_SETTING}')); END $$"
    );
    execute(ctx, &mut tx, &sql).await?;
    tx.commit().await.map_err(|e| ctx.map(e))
}

/// A non-superuser admin (typical on managed PostgreSQL) must be able to act as
/// the role to create a database it owns, hand it the schema and drop it later.
async fn ensure_admin_membership(
    ctx: &ErrorContext<'_>,
    conn: &mut PgConnection,
    role: &str,
) -> Result<(), DatabaseError> {
    // PostgreSQL 16 split membership into SET and INHERIT options; older servers
    // know neither the 'SET' privilege nor the WITH options.
    let (has_role, pg16): (bool, bool) = sqlx::query_as(
        "SELECT CASE WHEN current_setting('server_version_num')::int >= 160000 \
                THEN pg_has_role(current_user, $1, 'SET') AND pg_has_role(current_user, $1, 'USAGE') \
                ELSE pg_has_role(current_user, $1, 'USAGE') END, \
                current_setting('server_version_num')::int >= 160000",
    )
    .bind(role)
    .fetch_one(&mut *conn)
    .await
    .map_err(|e| ctx.map(e))?;
    if has_role {
        return Ok(());
    }
    let options = if pg16 {
        " WITH INHERIT TRUE, SET TRUE"
    } else {
        ""
    };
    let sql = format!("GRANT {} TO CURRENT_USER{options}", quote_identifier(role));
    execute(ctx, conn, &sql).await
}

/// Holds a session-level advisory lock on `database` until the connection closes
/// (or drops on error), serialising concurrent ensure/drop of the same name.
/// `lock_timeout` bounds the wait.
async fn lock_database_name(
    ctx: &ErrorContext<'_>,
    conn: &mut PgConnection,
    database: &str,
) -> Result<(), DatabaseError> {
    sqlx::query("SELECT pg_catalog.pg_advisory_lock($1, pg_catalog.hashtext($2))")
        .bind(LOCK_CLASS)
        .bind(database)
        .execute(&mut *conn)
        .await
        .map(|_| ())
        .map_err(|e| ctx.map(e))
}

/// An existing database: its owning role and its comment.
struct ExistingDatabase {
    owner_role: String,
    comment: Option<String>,
}

impl ExistingDatabase {
    /// Ours when owned by `role` and either marked for `owner` or unmarked.
    fn refuse_if_foreign(
        &self,
        database: &str,
        role: &str,
        owner: &str,
    ) -> Result<(), DatabaseError> {
        if self.owner_role != role {
            return Err(DatabaseError::Conflict {
                detail: format!(
                    "database {database} already exists and is owned by role {}, \
                     not by this environment's role",
                    self.owner_role
                ),
            });
        }
        match self.marked_owner() {
            Some(other) if other != owner => Err(DatabaseError::Conflict {
                detail: format!(
                    "database {database} belongs to environment {other}, not {owner}; \
                     give one of them another database and role name"
                ),
            }),
            _ => Ok(()),
        }
    }

    fn marked_owner(&self) -> Option<&str> {
        self.comment.as_deref().and_then(marked_owner)
    }
}

async fn existing_database(
    ctx: &ErrorContext<'_>,
    conn: &mut PgConnection,
    database: &str,
) -> Result<Option<ExistingDatabase>, DatabaseError> {
    let row: Option<(String, Option<String>)> = sqlx::query_as(
        "SELECT pg_catalog.pg_get_userbyid(datdba)::text, \
                pg_catalog.shobj_description(oid, 'pg_database') \
         FROM pg_catalog.pg_database WHERE datname = $1",
    )
    .bind(database)
    .fetch_optional(&mut *conn)
    .await
    .map_err(|e| ctx.map(e))?;
    Ok(row.map(|(owner_role, comment)| ExistingDatabase {
        owner_role,
        comment,
    }))
}

/// Records `target.owner` as the database comment.
async fn mark_database(
    ctx: &ErrorContext<'_>,
    conn: &mut PgConnection,
    target: &DatabaseTarget,
) -> Result<(), DatabaseError> {
    let marker = owner_marker(&target.owner);
    execute_quoted(
        ctx,
        conn,
        "COMMENT ON DATABASE %I IS %L",
        &target.database,
        &marker,
    )
    .await
}

/// Creates the database if missing (true when created) and limits CONNECT to the role.
async fn ensure_database(
    ctx: &ErrorContext<'_>,
    conn: &mut PgConnection,
    target: &DatabaseTarget,
) -> Result<bool, DatabaseError> {
    let database = quote_identifier(&target.database);
    let role = quote_identifier(&target.role);
    let (created, marked) = match existing_database(ctx, conn, &target.database).await? {
        Some(existing) => {
            existing.refuse_if_foreign(&target.database, &target.role, &target.owner)?;
            (false, existing.marked_owner().is_some())
        }
        // Not parameterisable and not allowed in a transaction: check, then create.
        None => match sqlx::raw_sql(&format!("CREATE DATABASE {database} OWNER {role}"))
            .execute(&mut *conn)
            .await
        {
            Ok(_) => (true, false),
            // duplicate_database: created by someone not holding our lock (by hand,
            // or an operator without it); it must still be ours.
            Err(e) if ErrorContext::sqlstate(&e).as_deref() == Some("42P04") => {
                match existing_database(ctx, conn, &target.database).await? {
                    Some(existing) => {
                        existing.refuse_if_foreign(
                            &target.database,
                            &target.role,
                            &target.owner,
                        )?;
                        (false, existing.marked_owner().is_some())
                    }
                    None => (false, false),
                }
            }
            Err(e) => return Err(ctx.map(e)),
        },
    };
    // An unmarked database already owned by the role (made by an operator predating
    // the marker, or by hand for this environment) is adopted: marking it now means
    // a colliding environment is refused from here on. Any other comment is replaced.
    if !marked {
        mark_database(ctx, conn, target).await?;
    }
    execute(
        ctx,
        conn,
        &format!(
            "REVOKE CONNECT ON DATABASE {database} FROM PUBLIC; \
             GRANT CONNECT ON DATABASE {database} TO {role}"
        ),
    )
    .await?;
    Ok(created)
}

/// Since PostgreSQL 15 `public` belongs to `pg_database_owner` and only the
/// owner may create in it; owning it outright lets migrations create tables.
async fn ensure_schema_owner(
    ctx: &ErrorContext<'_>,
    conn: &mut PgConnection,
    role: &str,
) -> Result<(), DatabaseError> {
    let owner: Option<String> = sqlx::query_scalar(
        "SELECT pg_catalog.pg_get_userbyid(nspowner)::text \
         FROM pg_catalog.pg_namespace WHERE nspname = 'public'",
    )
    .fetch_optional(&mut *conn)
    .await
    .map_err(|e| ctx.map(e))?;
    match owner {
        Some(owner) if owner != role => {
            let sql = format!("ALTER SCHEMA public OWNER TO {}", quote_identifier(role));
            execute(ctx, conn, &sql).await
        }
        // Already the role's, or dropped on purpose by someone: leave it.
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn admin() -> AdminCredentials {
        AdminCredentials {
            host: "db.example".into(),
            port: 5432,
            username: "admin".into(),
            password: "admin-secret".into(),
            sslmode: None,
            database: None,
        }
    }

    #[test]
    fn sqlstates_map_to_reasons() {
        let admin = admin();
        let reason = |code: &str| from_sqlstate(code, "m".into(), &admin).reason();
        assert_eq!(reason("28P01"), "AuthenticationFailed");
        assert_eq!(reason("28000"), "AuthenticationFailed");
        assert_eq!(reason("42501"), "PermissionDenied");
        assert_eq!(reason("57P03"), "Unreachable");
        assert_eq!(reason("53300"), "Unreachable");
        assert_eq!(reason("08006"), "Unreachable");
        assert_eq!(reason("42601"), "Database");
        assert!(!from_sqlstate("28P01", "m".into(), &admin).is_transient());
        assert!(!from_sqlstate("42501", "m".into(), &admin).is_transient());
        assert!(from_sqlstate("57P03", "m".into(), &admin).is_transient());
    }

    #[test]
    fn echoed_passwords_are_redacted() {
        let admin = admin();
        let ctx = ErrorContext {
            admin: &admin,
            target_password: Some("role-secret"),
        };
        let error = ctx.redact(DatabaseError::Database {
            detail: "saw admin-secret and role-secret".into(),
        });
        let text = error.to_string();
        assert!(
            !text.contains("admin-secret") && !text.contains("role-secret"),
            "{text}"
        );
        assert!(text.contains("[redacted]"), "{text}");
    }

    #[test]
    fn identifiers_are_quoted_with_doubled_quotes() {
        assert_eq!(quote_identifier("plain"), "\"plain\"");
        assert_eq!(quote_identifier("a\"b"), "\"a\"\"b\"");
    }

    #[test]
    fn reserved_and_admin_names_are_refused() {
        let admin = admin();
        for (database, role) in [
            ("postgres", "app"),
            ("template1", "app"),
            ("app", "pg_monitor"),
            ("app", "public"),
            ("app", "admin"),
        ] {
            let error = check_names(&admin, database, role).unwrap_err();
            assert_eq!(error.reason(), "InvalidIdentifier", "{database}/{role}");
        }
        let mut custom = admin.clone();
        custom.database = Some("defaultdb".into());
        assert!(check_names(&custom, "defaultdb", "app").is_err());
        assert!(check_names(&admin, "app", "app").is_ok());
    }

    #[test]
    fn debug_output_redacts_passwords() {
        let target = DatabaseTarget {
            database: "d".into(),
            role: "r".into(),
            password: "role-secret".into(),
            owner: "team-a/dev".into(),
        };
        let text = format!("{:?} {target:?}", admin());
        assert!(
            !text.contains("admin-secret") && !text.contains("role-secret"),
            "{text}"
        );
    }

    #[test]
    fn owners_are_namespace_slash_name() {
        assert!(validate_owner("team-a/dev").is_ok());
        assert!(validate_owner("a.b/c-1").is_ok());
        for bad in [
            "", "dev", "/dev", "ns/", "ns/a/b", "ns/Dev", "ns/a'b", "ns/a b",
        ] {
            let error = validate_owner(bad).unwrap_err();
            assert_eq!(error.reason(), "InvalidIdentifier", "{bad:?}");
        }
    }

    #[test]
    fn markers_round_trip_and_foreign_markers_conflict() {
        let marker = owner_marker("team-a/dev");
        assert_eq!(marked_owner(&marker), Some("team-a/dev"));
        assert_eq!(marked_owner("hand-written note"), None);
        let existing = ExistingDatabase {
            owner_role: "ahlt_dev".into(),
            comment: Some(marker),
        };
        assert!(
            existing
                .refuse_if_foreign("ahlt_dev", "ahlt_dev", "team-a/dev")
                .is_ok()
        );
        let error = existing
            .refuse_if_foreign("ahlt_dev", "ahlt_dev", "team-b/dev")
            .unwrap_err();
        assert_eq!(error.reason(), "Conflict");
        let text = error.to_string();
        assert!(
            text.contains("team-a/dev") && text.contains("team-b/dev"),
            "{text}"
        );
        let unmarked = ExistingDatabase {
            owner_role: "ahlt_dev".into(),
            comment: None,
        };
        assert!(
            unmarked
                .refuse_if_foreign("ahlt_dev", "ahlt_dev", "team-b/dev")
                .is_ok()
        );
        assert!(
            unmarked
                .refuse_if_foreign("ahlt_dev", "other", "team-b/dev")
                .is_err()
        );
    }

    #[test]
    fn ipv6_hosts_are_bracketed() {
        let mut admin = admin();
        admin.host = "::1".into();
        let target = DatabaseTarget {
            database: "d".into(),
            role: "r".into(),
            password: "p".into(),
            owner: "team-a/dev".into(),
        };
        assert_eq!(database_url(&admin, &target), "postgres://r:p@[::1]:5432/d");
    }
}
