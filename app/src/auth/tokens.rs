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

fn digest(token: &str) -> Vec<u8> {
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

/// The user a live token belongs to (inactive users are refused by the caller).
pub async fn authenticate(
    exec: impl PgExecutor<'_>,
    token: &str,
) -> Result<Option<i64>, sqlx::Error> {
    if !token.starts_with(PREFIX) || token.len() > 100 {
        return Ok(None);
    }
    sqlx::query_scalar(
        "UPDATE api_tokens SET last_used_at = now() WHERE token_hash = $1 AND revoked_at IS NULL RETURNING user_id",
    )
    .bind(digest(token))
    .fetch_optional(exec)
    .await
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
