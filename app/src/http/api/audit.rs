//! The audit log, newest first. `after` is the id of the last entry seen, so the next page
//! holds older entries.

use axum::Router;
use axum::extract::State;
use axum::routing::get;

use super::pagination::PageParams;
use crate::domain::audit::{self, AuditEntry};
use crate::domain::perm;
use crate::http::AppState;
use crate::http::error::AppResult;
use crate::http::extract::{ApiJson, ApiQuery, CurrentUser};
use crate::store::Page;

pub fn router() -> Router<AppState> {
    Router::new().route("/audit", get(list))
}

async fn list(
    State(state): State<AppState>,
    user: CurrentUser,
    ApiQuery(params): ApiQuery<PageParams>,
) -> AppResult<ApiJson<Page<AuditEntry>>> {
    user.require(perm::AUDIT_VIEW)?;
    Ok(ApiJson(audit::recent(&state.db, params.request()?).await?))
}
