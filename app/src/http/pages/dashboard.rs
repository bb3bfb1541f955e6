//! `GET /`: greeting, counts, the user's ToR positions and capabilities, recent audit entries.

use std::collections::{BTreeMap, BTreeSet};

use askama::Template;
use axum::Router;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use tower_sessions::Session;

use super::audit::AuditRow;
use super::auth::respond;
use super::layout::{Layout, render};
use crate::domain::abac::GrantSource;
use crate::domain::{audit, perm, tors};
use crate::http::AppState;
use crate::http::error::AppResult;
use crate::http::extract::{CurrentUser, PageUser};
use crate::store::PageRequest;

const RECENT_AUDIT: i64 = 10;

pub fn router() -> Router<AppState> {
    Router::new().route("/", get(dashboard))
}

struct Counts {
    tors: i64,
    users: i64,
    entities: i64,
}

struct Position {
    tor_id: i64,
    tor_label: String,
    function: String,
    capabilities: Vec<&'static str>,
}

#[derive(Template)]
#[template(path = "dashboard.html")]
struct DashboardPage {
    layout: Layout,
    counts: Counts,
    /// Capabilities on every ToR, through roles.
    everywhere: Vec<&'static str>,
    positions: Vec<Position>,
    /// `None` without `audit.view`.
    recent: Option<Vec<AuditRow>>,
    /// Next meetings, open action items, items waiting for the reader's move.
    pipeline: crate::domain::pipeline::dashboard::ReaderPipeline,
}

async fn dashboard(
    State(state): State<AppState>,
    session: Session,
    PageUser(user): PageUser,
) -> Response {
    let result = render_dashboard(&state, &session, &user).await;
    respond(&state, &session, Some(&user), result).await
}

async fn render_dashboard(
    state: &AppState,
    session: &Session,
    user: &CurrentUser,
) -> AppResult<Response> {
    let (tors, users, entities): (i64, i64, i64) = sqlx::query_as(
        "SELECT count(*) FILTER (WHERE entity_type = 'tor'), \
                count(*) FILTER (WHERE entity_type = 'user'), \
                count(*) FROM entities",
    )
    .fetch_one(&state.db)
    .await?;

    let grants = state
        .access
        .grants(&state.db, state.graph.as_ref(), user.id)
        .await?;
    let everywhere: BTreeSet<&'static str> = grants
        .iter()
        .filter(|g| g.tor_id.is_none())
        .map(|g| g.capability.as_str())
        .collect();
    // Every position the user fills, with what it grants (nothing while the ToR or the
    // function is inactive, which `grants` already accounts for).
    let mut by_function: BTreeMap<i64, BTreeSet<&'static str>> = BTreeMap::new();
    for grant in &grants {
        if let GrantSource::Position { function_id, .. } = &grant.via {
            by_function
                .entry(*function_id)
                .or_default()
                .insert(grant.capability.as_str());
        }
    }
    let tor_labels: BTreeMap<i64, String> = tors::list(&state.db)
        .await?
        .into_iter()
        .map(|t| (t.id, t.label))
        .collect();
    let mut positions: Vec<Position> = tors::functions(&state.db, None)
        .await?
        .into_iter()
        .filter(|f| f.holders.iter().any(|h| h.id == user.id))
        .map(|f| Position {
            tor_id: f.tor_id,
            tor_label: tor_labels
                .get(&f.tor_id)
                .cloned()
                .unwrap_or_else(|| format!("ToR {}", f.tor_id)),
            capabilities: by_function
                .remove(&f.id)
                .map(|caps| caps.into_iter().collect())
                .unwrap_or_default(),
            function: f.label,
        })
        .collect();
    positions.sort_by(|a, b| (&a.tor_label, &a.function).cmp(&(&b.tor_label, &b.function)));

    let recent = if user.can(perm::AUDIT_VIEW) {
        let page = audit::recent(&state.db, PageRequest::first(RECENT_AUDIT)).await?;
        Some(page.items.iter().map(AuditRow::from).collect())
    } else {
        None
    };

    let today = crate::domain::outlook::today(&state.config.timezone).to_string();
    let pipeline = {
        let mut conn = state.db.acquire().await?;
        crate::domain::pipeline::dashboard::for_reader(&mut conn, user.id, &today).await?
    };

    let page = DashboardPage {
        layout: Layout::new(state, session, Some(user), "Dashboard", "/").await?,
        pipeline,
        counts: Counts {
            tors,
            users,
            entities,
        },
        everywhere: everywhere.into_iter().collect(),
        positions,
        recent,
    };
    Ok(render(&page)?.into_response())
}
