//! Bearer tokens for the JSON API. The token is shown once at creation; only its SHA-256
//! is stored, so a database leak does not leak usable tokens.

use base64::Engine;
use rand::RngCore;
use serde::Serialize;
use sha2::{Digest, Sha256};
use sqlx::PgExecutor;
use time::OffsetDateTime;

pub const PREFIX: &str = "ahlt_";

#[derive(Debug, Clone, PartialEq, Serialize, sqlx::FromRow)]
pub struct ApiToken {
    pub id: i64,
    pub user_id: i64,
    pub name: String,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339::option")]
    pub last_used_at: Option<OffsetDateTime>,
    #[serde(with = "time::serde::rfc3339::option")]
    pub revoked_at: Option<OffsetDateTime>,
}

pub(crate) fn digest(token: &str) -> Vec<u8> {
    Sha256::digest(token.as_bytes()).to_vec()
}

/// Creates a token for `user_id`; returns the record and the secret (shown once).
pub async fn create(
    exec: impl PgExecutor<'_>,
    user_id: i64,
    name: &str,
) -> Result<(ApiToken, String), sqlx::Error> {
    let mut bytes = [0u8; 32];
    rand::thread_rng().fill_bytes(&mut bytes);
    let secret = format!(
        "{PREFIX}{}",
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
    );
    let token = sqlx::query_as(
        "INSERT INTO api_tokens (user_id, name, token_hash) VALUES ($1, $2, $3) \
         RETURNING id, user_id, name, created_at, last_used_at, revoked_at",
    )
    .bind(user_id)
    .bind(name)
    .bind(digest(&secret))
    .fetch_one(exec)
    .await?;
    Ok((token, secret))
}

/// How often `last_used_at` is written for a token in steady use: a read authenticated by a
/// token writes nothing more often, so GETs do not queue on the token's row and the WAL.
pub const LAST_USED_PRECISION_SECONDS: i32 = 60;

/// A live token and the user it belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Authenticated {
    pub token_id: i64,
    pub user_id: i64,
}

/// The user a live token belongs to (inactive users are refused by the caller). Records the
/// use in `last_used_at`, at most once per [`LAST_USED_PRECISION_SECONDS`].
pub async fn authenticate(
    exec: impl PgExecutor<'_> + Copy,
    token: &str,
) -> Result<Option<Authenticated>, sqlx::Error> {
    if !token.starts_with(PREFIX) || token.len() > 100 {
        return Ok(None);
    }
    let found: Option<(i64, i64, bool)> = sqlx::query_as(
        "SELECT id, user_id, last_used_at IS NULL \
                OR last_used_at < now() - make_interval(secs => $2) \
           FROM api_tokens WHERE token_hash = $1 AND revoked_at IS NULL",
    )
    .bind(digest(token))
    .bind(LAST_USED_PRECISION_SECONDS)
    .fetch_optional(exec)
    .await?;
    let Some((token_id, user_id, stale)) = found else {
        return Ok(None);
    };
    if stale {
        record_use(exec, token_id).await?;
    }
    Ok(Some(Authenticated { token_id, user_id }))
}

/// Sets `last_used_at` to now unless it is already within [`LAST_USED_PRECISION_SECONDS`].
/// Concurrent first uses write once: the condition is checked again under the row lock.
pub async fn record_use(exec: impl PgExecutor<'_>, token_id: i64) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE api_tokens SET last_used_at = now() \
          WHERE id = $1 AND (last_used_at IS NULL \
                             OR last_used_at < now() - make_interval(secs => $2))",
    )
    .bind(token_id)
    .bind(LAST_USED_PRECISION_SECONDS)
    .execute(exec)
    .await?;
    Ok(())
}

pub async fn list(exec: impl PgExecutor<'_>, user_id: i64) -> Result<Vec<ApiToken>, sqlx::Error> {
    sqlx::query_as(
        "SELECT id, user_id, name, created_at, last_used_at, revoked_at FROM api_tokens WHERE user_id = $1 ORDER BY id",
    )
    .bind(user_id)
    .fetch_all(exec)
    .await
}

/// Revokes one of the user's tokens; returns whether a live token was revoked.
pub async fn revoke(
    exec: impl PgExecutor<'_>,
    user_id: i64,
    token_id: i64,
) -> Result<bool, sqlx::Error> {
    let result = sqlx::query("UPDATE api_tokens SET revoked_at = now() WHERE id = $1 AND user_id = $2 AND revoked_at IS NULL")
        .bind(token_id)
        .bind(user_id)
        .execute(exec)
        .await?;
    Ok(result.rows_affected() > 0)
}
