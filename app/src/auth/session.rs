//! Sessions: stored in PostgreSQL (they survive restarts and work across replicas) through
//! tower-sessions, with cookies signed by a key derived from `SESSION_KEY`.

use sha2::{Digest, Sha512};
use sqlx::PgPool;
use tower_sessions::cookie::{Key, SameSite};
use tower_sessions::service::SignedCookie;
use tower_sessions::{Expiry, Session, SessionManagerLayer};
use tower_sessions_sqlx_store::PostgresStore;

use crate::http::error::AppError;

pub const COOKIE_NAME: &str = "ahlt_session";
pub const USER_ID: &str = "user_id";
pub const MIN_SESSION_KEY_LEN: usize = 32;

/// A cookie-signing key; build it with [`SessionKey::from_secret`].
#[derive(Clone)]
pub struct SessionKey(Key);

impl std::fmt::Debug for SessionKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SessionKey(..)")
    }
}

impl SessionKey {
    /// Derives the 64-byte signing key from a secret of at least 32 bytes.
    pub fn from_secret(secret: &str) -> Result<Self, String> {
        if secret.len() < MIN_SESSION_KEY_LEN {
            return Err(format!(
                "SESSION_KEY must be at least {MIN_SESSION_KEY_LEN} bytes"
            ));
        }
        Ok(SessionKey(Key::from(&Sha512::digest(secret.as_bytes()))))
    }

    pub fn random() -> Self {
        SessionKey(Key::generate())
    }
}

pub fn store(pool: PgPool) -> PostgresStore {
    PostgresStore::new(pool)
        .with_schema_name("public")
        .expect("valid schema name")
        .with_table_name("sessions")
        .expect("valid table name")
}

pub fn layer(
    pool: PgPool,
    key: &SessionKey,
    secure: bool,
) -> SessionManagerLayer<PostgresStore, SignedCookie> {
    SessionManagerLayer::new(store(pool))
        .with_name(COOKIE_NAME)
        .with_http_only(true)
        .with_same_site(SameSite::Lax)
        .with_secure(secure)
        .with_expiry(Expiry::OnInactivity(time::Duration::hours(8)))
        .with_signed(key.0.clone())
}

/// Marks the session as logged in; a new session id defeats session fixation.
pub async fn log_in(session: &Session, user_id: i64) -> Result<(), AppError> {
    session.cycle_id().await?;
    session.insert(USER_ID, user_id).await?;
    Ok(())
}

pub async fn log_out(session: &Session) -> Result<(), AppError> {
    session.flush().await?;
    Ok(())
}

pub async fn user_id(session: &Session) -> Result<Option<i64>, AppError> {
    Ok(session.get::<i64>(USER_ID).await?)
}
