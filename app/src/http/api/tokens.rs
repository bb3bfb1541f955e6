//! The caller's own API tokens. A token's secret is returned once, at creation; only its hash
//! is stored, and neither ever reaches a listing or the audit log.

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::{delete, get};
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::pagination::Id;
use super::{Items, created};
use crate::auth::tokens::{self, ApiToken};
use crate::domain::audit;
use crate::http::AppState;
use crate::http::error::{AppError, AppResult};
use crate::http::extract::{ApiJson, ApiPath, CurrentUser};

const MAX_NAME_CHARS: usize = 100;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/tokens", get(list).post(create))
        .route("/tokens/{id}", delete(revoke))
}

async fn list(
    State(state): State<AppState>,
    user: CurrentUser,
) -> AppResult<ApiJson<Items<ApiToken>>> {
    Ok(ApiJson(Items {
        items: tokens::list(&state.db, user.id).await?,
    }))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct NewTokenBody {
    name: String,
}

#[derive(Serialize)]
struct CreatedToken {
    #[serde(flatten)]
    token: ApiToken,
    /// Shown only in this response.
    secret: String,
}

async fn create(
    State(state): State<AppState>,
    user: CurrentUser,
    ApiJson(body): ApiJson<NewTokenBody>,
) -> AppResult<Response> {
    let name = body.name.trim();
    if name.is_empty()
        || name.chars().count() > MAX_NAME_CHARS
        || name.chars().any(char::is_control)
    {
        return Err(AppError::Validation(format!(
            "name must be 1 to {MAX_NAME_CHARS} characters without control characters"
        )));
    }
    let mut tx = state.db.begin().await?;
    let (token, secret) = tokens::create(&mut *tx, user.id, name).await?;
    audit::record(
        &mut tx,
        &user.actor(),
        "token.create",
        Some(("api_token", token.id)),
        json!({"name": token.name}),
    )
    .await?;
    tx.commit().await?;
    created(
        format!("/api/v1/tokens/{}", token.id),
        CreatedToken { token, secret },
    )
}

async fn revoke(
    State(state): State<AppState>,
    user: CurrentUser,
    ApiPath(id): ApiPath<Id>,
) -> AppResult<StatusCode> {
    let mut tx = state.db.begin().await?;
    // Another user's token is "not found" too: its existence is none of the caller's business.
    if !tokens::revoke(&mut *tx, user.id, id.0).await? {
        return Err(AppError::NotFound(format!("token {}", id.0)));
    }
    audit::record(
        &mut tx,
        &user.actor(),
        "token.revoke",
        Some(("api_token", id.0)),
        json!({}),
    )
    .await?;
    tx.commit().await?;
    Ok(StatusCode::NO_CONTENT)
}
