//! `GET /audit`: the audit log, newest first, in keyset pages with an "older" link.

use askama::Template;
use axum::Router;
use axum::extract::{RawQuery, State};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use time::UtcOffset;
use time::macros::format_description;
use tower_sessions::Session;

use super::auth::respond;
use super::layout::{Layout, render};
use crate::domain::audit::{self, AuditEntry};
use crate::domain::perm;
use crate::http::AppState;
use crate::http::error::{AppError, AppResult};
use crate::http::extract::{CurrentUser, PageUser};
use crate::store::PageRequest;

const PAGE_SIZE: i64 = 50;

pub fn router() -> Router<AppState> {
    Router::new().route("/audit", get(audit_log))
}

/// An audit entry as shown in tables (here and on the dashboard).
pub struct AuditRow {
    pub id: i64,
    pub when: String,
    pub actor: String,
    pub action: String,
    pub target: String,
    pub details: String,
}

impl From<&AuditEntry> for AuditRow {
    fn from(e: &AuditEntry) -> Self {
        let when = e
            .occurred_at
            .to_offset(UtcOffset::UTC)
            .format(format_description!(
                "[year]-[month]-[day] [hour]:[minute]:[second] UTC"
            ))
            .unwrap_or_else(|_| e.occurred_at.to_string());
        let target = match (&e.target_type, e.target_id) {
            (Some(t), Some(id)) => format!("{t} {id}"),
            (Some(t), None) => t.clone(),
            _ => String::new(),
        };
        let details = match &e.details {
            serde_json::Value::Object(m) if m.is_empty() => String::new(),
            other => other.to_string(),
        };
        AuditRow {
            id: e.id,
            when,
            actor: e.actor_name.clone(),
            action: e.action.clone(),
            target,
            details,
        }
    }
}

#[derive(Template)]
#[template(path = "audit.html")]
struct AuditPage {
    layout: Layout,
    rows: Vec<AuditRow>,
    older: Option<i64>,
    is_first_page: bool,
}

async fn audit_log(
    State(state): State<AppState>,
    session: Session,
    PageUser(user): PageUser,
    RawQuery(query): RawQuery,
) -> Response {
    let result = render_audit(&state, &session, &user, query.as_deref()).await;
    respond(&state, &session, Some(&user), result).await
}

async fn render_audit(
    state: &AppState,
    session: &Session,
    user: &CurrentUser,
    query: Option<&str>,
) -> AppResult<Response> {
    user.require(perm::AUDIT_VIEW)?;
    let after = match form_urlencoded::parse(query.unwrap_or_default().as_bytes())
        .find(|(k, _)| k == "after")
    {
        None => None,
        Some((_, v)) if v.is_empty() => None,
        Some((_, v)) => Some(
            v.parse::<i64>()
                .map_err(|_| AppError::BadRequest(format!("invalid cursor {v:?}")))?,
        ),
    };
    let page = audit::recent(
        &state.db,
        PageRequest {
            after,
            limit: PAGE_SIZE,
        },
    )
    .await?;
    let view = AuditPage {
        layout: Layout::new(state, session, Some(user), "Audit log", "/audit").await?,
        rows: page.items.iter().map(AuditRow::from).collect(),
        older: page.next_after,
        is_first_page: after.is_none(),
    };
    Ok(render(&view)?.into_response())
}
