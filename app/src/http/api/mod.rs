//! JSON API v1. Authenticated by the session cookie (state-changing requests then need the
//! `X-CSRF-Token` header) or by `Authorization: Bearer <token>`. Every response, including
//! unknown paths and wrong methods, is JSON; errors carry a stable code (see `docs/api.md`).

pub mod audit;
pub mod coa;
pub mod entities;
pub mod governance;
pub mod graph;
pub mod meetings;
pub mod outlook;
pub mod pagination;
pub mod pipeline;
pub mod relations;
pub mod tokens;
pub mod tor_dependencies;
pub mod tors;
pub mod users;

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde::{Deserialize, Deserializer, Serialize};
use serde_json::{Value, json};
use tower_sessions::Session;

use super::AppState;
use super::error::{AppError, AppResult};
use super::extract::{ApiJson, CurrentUser};
use crate::auth::csrf;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/session", get(session_info))
        .merge(entities::router())
        .merge(relations::router())
        .merge(users::router())
        .merge(tors::router())
        .merge(tor_dependencies::router())
        .merge(outlook::router())
        .merge(pipeline::router())
        .merge(meetings::router())
        .merge(coa::router())
        .merge(governance::router())
        .merge(graph::router())
        .merge(tokens::router())
        .merge(audit::router())
        .fallback(not_found)
        // Last: it applies to the routes registered so far.
        .method_not_allowed_fallback(method_not_allowed)
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

async fn not_found() -> AppError {
    AppError::NotFound("no such API endpoint".into())
}

/// `AppError` has no 405 variant (handlers never produce one); same body shape, own code.
async fn method_not_allowed() -> Response {
    (
        StatusCode::METHOD_NOT_ALLOWED,
        axum::Json(json!({"error": {
            "code": "method_not_allowed",
            "message": "this endpoint does not support that HTTP method",
        }})),
    )
        .into_response()
}

/// A list that is not paginated (small, bounded collections).
#[derive(Debug, Serialize)]
pub(crate) struct Items<T> {
    pub items: Vec<T>,
}

/// 201 Created with a `Location` header pointing at the new resource.
pub(crate) fn created(location: String, body: impl Serialize) -> AppResult<Response> {
    let location = HeaderValue::try_from(location).map_err(AppError::internal)?;
    Ok((
        StatusCode::CREATED,
        [(header::LOCATION, location)],
        axum::Json(body),
    )
        .into_response())
}

/// For PATCH fields where `null` means "clear" and absence means "leave alone":
/// use with `#[serde(default, deserialize_with = "nullable")]` on an `Option<Option<T>>`.
pub(crate) fn nullable<'de, D, T>(d: D) -> Result<Option<Option<T>>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    Option::<T>::deserialize(d).map(Some)
}

/// `Ok` when the caller is `user_id` themself or holds `permission`.
pub(crate) fn require_self_or(user: &CurrentUser, user_id: i64, permission: &str) -> AppResult<()> {
    if user.id == user_id {
        Ok(())
    } else {
        user.require(permission)
    }
}
