//! Login rate limiting backed by the `login_attempts` table, so every replica sees the same
//! history. Failed attempts inside the window are counted per (lower-cased) username and per
//! client address; at the limit further attempts are refused before any password is checked.
//!
//! Atomic: [`reserve`] checks and records an attempt (as failed) in one transaction holding
//! advisory locks on the username and the address, before the password is verified;
//! [`resolve`] marks it succeeded afterwards. So concurrent attempts are counted one after
//! the other and a burst cannot slip past the limit.

use std::net::{IpAddr, SocketAddr};

use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::HeaderMap;
use axum::http::request::Parts;
use sqlx::{PgConnection, PgExecutor};

use crate::config::LoginLimits;
use crate::http::AppState;
use crate::http::error::AppError;

/// The client address used when the socket peer is unknown (in-process requests).
pub const UNKNOWN_CLIENT: &str = "unknown";
/// Longest username stored for an attempt; longer input is truncated, not rejected.
const MAX_STORED_USERNAME: usize = 128;
/// Attempts older than this are deleted (or the window, if that is longer).
const RETENTION: time::Duration = time::Duration::days(1);
/// One insert in this many also prunes old attempts, spread over all replicas.
const PRUNE_EVERY: i64 = 64;

/// The key attempts are counted under: trimmed, lower-cased, bounded.
pub fn username_key(raw: &str) -> String {
    raw.trim()
        .to_lowercase()
        .chars()
        .take(MAX_STORED_USERNAME)
        .collect()
}

/// The client address: the first `X-Forwarded-For` entry when the proxy is trusted and the
/// entry is an IP address, else the socket peer, else [`UNKNOWN_CLIENT`].
pub fn client_ip(
    headers: &HeaderMap,
    peer: Option<SocketAddr>,
    trust_forwarded_for: bool,
) -> String {
    if trust_forwarded_for {
        let forwarded = headers
            .get("x-forwarded-for")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split(',').next())
            .and_then(|first| first.trim().parse::<IpAddr>().ok());
        if let Some(ip) = forwarded {
            return ip.to_string();
        }
    }
    peer.map_or_else(|| UNKNOWN_CLIENT.to_owned(), |p| p.ip().to_string())
}

/// Extractor for [`client_ip`] with the app's `trust_forwarded_for` setting.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientIp(pub String);

impl FromRequestParts<AppState> for ClientIp {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let peer = parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map(|ConnectInfo(addr)| *addr);
        Ok(ClientIp(client_ip(
            &parts.headers,
            peer,
            state.config.trust_forwarded_for,
        )))
    }
}

/// Refuses with [`AppError::RateLimited`] when the username or the client address is at its
/// failure limit. `Retry-After` is when enough failures have left the window to go below it.
pub async fn check(
    exec: impl PgExecutor<'_>,
    limits: &LoginLimits,
    username: &str,
    client_ip: &str,
) -> Result<(), AppError> {
    // For each key: the limit-th newest failure in the window; once it leaves the window the
    // count is below the limit again. NULL when the key is below its limit.
    let (user_retry, ip_retry): (Option<i64>, Option<i64>) = sqlx::query_as(
        "WITH recent AS ( \
             SELECT lower(username) = $1 AS by_user, client_ip = $2 AS by_ip, attempted_at \
             FROM login_attempts \
             WHERE NOT succeeded AND attempted_at > now() - $3 * interval '1 second' \
               AND (lower(username) = $1 OR client_ip = $2) \
         ) SELECT \
           (SELECT ceil(extract(epoch FROM attempted_at + $3 * interval '1 second' - now()))::bigint \
              FROM recent WHERE by_user ORDER BY attempted_at DESC OFFSET greatest($4 - 1, 0) LIMIT 1), \
           (SELECT ceil(extract(epoch FROM attempted_at + $3 * interval '1 second' - now()))::bigint \
              FROM recent WHERE by_ip ORDER BY attempted_at DESC OFFSET greatest($5 - 1, 0) LIMIT 1)",
    )
    .bind(username_key(username))
    .bind(client_ip)
    .bind(limits.window.whole_seconds())
    .bind(limits.max_failures_per_username)
    .bind(limits.max_failures_per_ip)
    .fetch_one(exec)
    .await?;
    match user_retry.into_iter().chain(ip_retry).max() {
        Some(secs) => {
            tracing::warn!(client_ip, "login refused: too many failed attempts");
            Err(AppError::RateLimited {
                retry_after_secs: secs.max(1) as u64,
            })
        }
        None => Ok(()),
    }
}

/// A reserved attempt: recorded as failed until [`resolve`] says otherwise.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Reservation(pub i64);

/// Atomically checks the limits and records the attempt (as failed) for `username` from
/// `client_ip`: concurrent reservations for the same username or address run one after the
/// other (advisory locks), so each sees the ones before it.
pub async fn reserve(
    pool: &sqlx::PgPool,
    limits: &LoginLimits,
    username: &str,
    client_ip: &str,
) -> Result<Reservation, AppError> {
    let key = username_key(username);
    let mut tx = pool.begin().await?;
    // One statement, keys in a fixed order: two requests never wait for each other crosswise.
    sqlx::query(
        "SELECT pg_advisory_xact_lock(k) FROM ( \
             SELECT hashtextextended('ahlt.login.user:' || $1, 0) AS k \
             UNION SELECT hashtextextended('ahlt.login.ip:' || $2, 0) \
         ) keys ORDER BY k",
    )
    .bind(&key)
    .bind(client_ip)
    .execute(&mut *tx)
    .await?;
    check(&mut *tx, limits, &key, client_ip).await?;
    let id = insert(&mut tx, limits, &key, client_ip, false).await?;
    tx.commit().await?;
    Ok(Reservation(id))
}

/// Marks a reserved attempt as succeeded (a failed one stays as reserved).
pub async fn resolve(
    conn: &mut PgConnection,
    reservation: Reservation,
    succeeded: bool,
) -> Result<(), AppError> {
    if succeeded {
        sqlx::query("UPDATE login_attempts SET succeeded = true WHERE id = $1")
            .bind(reservation.0)
            .execute(conn)
            .await?;
    }
    Ok(())
}

/// Records an attempt; now and then also deletes attempts too old to matter.
pub async fn record(
    conn: &mut PgConnection,
    limits: &LoginLimits,
    username: &str,
    client_ip: &str,
    succeeded: bool,
) -> Result<(), AppError> {
    insert(conn, limits, username, client_ip, succeeded).await?;
    Ok(())
}

async fn insert(
    conn: &mut PgConnection,
    limits: &LoginLimits,
    username: &str,
    client_ip: &str,
    succeeded: bool,
) -> Result<i64, AppError> {
    let id: i64 = sqlx::query_scalar(
        "INSERT INTO login_attempts (username, client_ip, succeeded) VALUES ($1, $2, $3) RETURNING id",
    )
    .bind(username_key(username))
    .bind(client_ip)
    .bind(succeeded)
    .fetch_one(&mut *conn)
    .await?;
    if id % PRUNE_EVERY == 0 {
        let keep = RETENTION.max(limits.window);
        sqlx::query(
            "DELETE FROM login_attempts WHERE attempted_at < now() - $1 * interval '1 second'",
        )
        .bind(keep.whole_seconds())
        .execute(&mut *conn)
        .await?;
    }
    Ok(id)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(xff: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert("x-forwarded-for", xff.parse().unwrap());
        h
    }

    #[test]
    fn forwarded_for_is_used_only_when_trusted() {
        let peer: SocketAddr = "10.0.0.7:5000".parse().unwrap();
        let h = headers("203.0.113.9, 10.0.0.1");
        assert_eq!(client_ip(&h, Some(peer), true), "203.0.113.9");
        assert_eq!(client_ip(&h, Some(peer), false), "10.0.0.7");
    }

    #[test]
    fn a_forwarded_for_entry_that_is_not_an_address_falls_back_to_the_peer() {
        let peer: SocketAddr = "[2001:db8::1]:443".parse().unwrap();
        assert_eq!(
            client_ip(&headers("evil'; --"), Some(peer), true),
            "2001:db8::1"
        );
        assert_eq!(client_ip(&HeaderMap::new(), None, true), UNKNOWN_CLIENT);
    }

    #[test]
    fn usernames_are_counted_case_insensitively_and_bounded() {
        assert_eq!(username_key("  Admin "), "admin");
        assert_eq!(username_key(&"x".repeat(1000)).len(), MAX_STORED_USERNAME);
    }
}
