//! Password login shared by the login page and the JSON API: rate limiting, constant-shape
//! verification (unknown users cost the same as known ones), attempt history and audit.

use serde_json::json;

use super::{password, rate_limit};
use crate::domain::audit::{self, Actor};
use crate::domain::{kind, users};
use crate::http::AppState;
use crate::http::error::AppError;

/// Why a login failed; recorded in the audit log, never shown to the client.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Failure {
    UnknownUser,
    BadPassword,
    Inactive,
}

impl Failure {
    fn as_str(self) -> &'static str {
        match self {
            Failure::UnknownUser => "unknown_user",
            Failure::BadPassword => "bad_password",
            Failure::Inactive => "inactive",
        }
    }
}

/// Every hashing slot stayed taken: 503 with `Retry-After`.
pub fn busy(_: password::Busy) -> AppError {
    AppError::Busy {
        message: "the server is busy checking passwords".into(),
        retry_after_secs: password::BUSY_RETRY_AFTER_SECS,
    }
}

/// Checks `username`/`password` from `client_ip`. Every failure (unknown user, wrong password,
/// inactive account) is the same [`AppError::BadCredentials`]; too many recent failures are
/// [`AppError::RateLimited`] without looking at the password.
pub async fn attempt(
    state: &AppState,
    username: &str,
    password: &str,
    client_ip: &str,
) -> Result<users::User, AppError> {
    let limits = state.config.login_limits;
    let key = rate_limit::username_key(username);
    // Counted before the password is looked at: a burst cannot outrun the limit.
    let reservation = rate_limit::reserve(&state.db, &limits, &key, client_ip).await?;

    let user = users::find_by_username(&state.db, &key).await?;
    let hash = match &user {
        Some(u) => users::password_hash(&state.db, u.id).await?,
        None => None,
    };
    // Always verify (a dummy hash for unknown users) so timing says nothing; bounded and
    // off the runtime (see `password::verify`).
    let verified = password::verify(password, hash.as_deref().unwrap_or(password::dummy_hash()))
        .await
        .map_err(busy)?;

    let outcome = match user {
        None => Err((Failure::UnknownUser, None)),
        Some(u) if !verified => Err((Failure::BadPassword, Some(u.id))),
        Some(u) if !u.is_active => Err((Failure::Inactive, Some(u.id))),
        Some(u) => Ok(u),
    };

    let mut tx = state.db.begin().await?;
    rate_limit::resolve(&mut tx, reservation, outcome.is_ok()).await?;
    match &outcome {
        Ok(u) => {
            let actor = Actor {
                user_id: Some(u.id),
                name: u.username.clone(),
                request_id: None,
            };
            audit::record(
                &mut tx,
                &actor,
                "auth.login",
                Some((kind::USER, u.id)),
                json!({"client_ip": client_ip}),
            )
            .await?;
        }
        Err((reason, user_id)) => {
            let actor = Actor {
                user_id: None,
                name: "anonymous".into(),
                request_id: None,
            };
            audit::record(
                &mut tx,
                &actor,
                "auth.login_failed",
                user_id.map(|id| (kind::USER, id)),
                json!({"username": key, "client_ip": client_ip, "reason": reason.as_str()}),
            )
            .await?;
        }
    }
    tx.commit().await?;
    outcome.map_err(|_| AppError::BadCredentials)
}
