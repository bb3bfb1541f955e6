//! JSON API v1. Authenticated by the session cookie (state-changing requests then need the
//! `X-CSRF-Token` header) or by `Authorization: Bearer <token>`.

use axum::Router;
use axum::extract::State;
use axum::routing::get;
use serde_json::{Value, json};
use tower_sessions::Session;

use super::AppState;
use super::error::AppResult;
use super::extract::{ApiJson, CurrentUser};
use crate::auth::csrf;

pub fn router() -> Router<AppState> {
    Router::new().route("/session", get(session_info))
}

/// Who is logged in, and the CSRF token scripts must send with state-changing requests.
async fn session_info(
    State(_): State<AppState>,
    session: Session,
    user: Option<CurrentUser>,
) -> AppResult<ApiJson<Value>> {
    let token = csrf::token(&session).await?;
    Ok(ApiJson(json!({
        "authenticated": user.is_some(),
        "user": user.map(|u| json!({"id": u.id, "username": u.username, "display_name": u.display_name, "permissions": u.permissions})),
        "csrf_token": token,
    })))
}
