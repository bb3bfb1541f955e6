//! The meeting pipeline's items: suggestions and proposals of a ToR, the agenda queue, any
//! item by id (read, edit, delete, move along the workflow), the workflow itself and the
//! reader's own pipeline. See [`crate::domain::pipeline`].
//!
//! Reading needs `tors.view` or `tor.view` on the item's ToR; each write needs the capability
//! the domain names (checked in the write's transaction), else 403.

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::{get, patch, post};
use serde::{Deserialize, Serialize};
use sqlx::PgConnection;

use super::created;
use super::pagination::{Id, page_request};
use super::tors::authorize_view;
use crate::domain::pipeline::workflow::{self, Status, Transition, TransitionUpdate};
use crate::domain::pipeline::{self, Item, dashboard, items};
use crate::domain::{kind, outlook, perm};
use crate::graph::Projection;
use crate::http::AppState;
use crate::http::error::{AppError, AppResult};
use crate::http::extract::{ApiJson, ApiPath, ApiQuery, CurrentUser};
use crate::store::Page;

pub fn router() -> Router<AppState> {
    Router::new()
        .route(
            "/tors/{id}/suggestions",
            get(list_suggestions).post(create_suggestion),
        )
        .route(
            "/tors/{id}/proposals",
            get(list_proposals).post(create_proposal),
        )
        .route("/tors/{id}/agenda-queue", get(agenda_queue))
        .route(
            "/items/{id}",
            get(show_item).patch(edit_item).delete(delete_item),
        )
        .route("/items/{id}/transitions", post(move_item))
        .route("/workflow", get(show_workflow))
        .route("/workflow/transitions/{id}", patch(update_transition))
        .route("/me/pipeline", get(my_pipeline))
}

/// `?status=a,b&limit=&after=`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct ListQuery {
    status: Option<String>,
    limit: Option<i64>,
    after: Option<Id>,
}

impl ListQuery {
    fn statuses(&self) -> Vec<&str> {
        self.status
            .as_deref()
            .map(|s| {
                s.split(',')
                    .map(str::trim)
                    .filter(|s| !s.is_empty())
                    .collect()
            })
            .unwrap_or_default()
    }
}

/// Lists `item_kind` of ToR `tor_id` after checking the reader may view the ToR.
pub(super) async fn list_of_tor(
    state: &AppState,
    user: &CurrentUser,
    item_kind: &str,
    tor_id: i64,
    query: &ListQuery,
) -> AppResult<ApiJson<Page<Item>>> {
    let page = page_request(query.limit, query.after)?;
    let mut conn = state.db.acquire().await?;
    authorize_view(&mut conn, state.graph.as_ref(), user, tor_id).await?;
    let statuses = query.statuses();
    Ok(ApiJson(
        items::list(&mut conn, item_kind, tor_id, &statuses, page).await?,
    ))
}

async fn list_suggestions(
    State(state): State<AppState>,
    user: CurrentUser,
    ApiPath(id): ApiPath<Id>,
    ApiQuery(query): ApiQuery<ListQuery>,
) -> AppResult<ApiJson<Page<Item>>> {
    list_of_tor(&state, &user, kind::SUGGESTION, id.0, &query).await
}

async fn list_proposals(
    State(state): State<AppState>,
    user: CurrentUser,
    ApiPath(id): ApiPath<Id>,
    ApiQuery(query): ApiQuery<ListQuery>,
) -> AppResult<ApiJson<Page<Item>>> {
    list_of_tor(&state, &user, kind::PROPOSAL, id.0, &query).await
}

/// Approved proposals waiting to be scheduled into a meeting.
async fn agenda_queue(
    State(state): State<AppState>,
    user: CurrentUser,
    ApiPath(id): ApiPath<Id>,
    ApiQuery(mut query): ApiQuery<ListQuery>,
) -> AppResult<ApiJson<Page<Item>>> {
    query.status = Some("approved".into());
    list_of_tor(&state, &user, kind::PROPOSAL, id.0, &query).await
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct NewItemBody {
    title: String,
    #[serde(default)]
    description: String,
}

async fn submit(
    state: &AppState,
    user: &CurrentUser,
    item_kind: &str,
    tor_id: i64,
    body: NewItemBody,
) -> AppResult<Response> {
    let mut tx = state.db.begin().await?;
    let id = items::submit(
        &mut tx,
        &user.actor(),
        item_kind,
        tor_id,
        &body.title,
        &body.description,
    )
    .await?;
    let item = pipeline::load(&mut tx, id, None).await?;
    tx.commit().await?;
    created(format!("/api/v1/items/{id}"), item)
}

async fn create_suggestion(
    State(state): State<AppState>,
    user: CurrentUser,
    ApiPath(id): ApiPath<Id>,
    ApiJson(body): ApiJson<NewItemBody>,
) -> AppResult<Response> {
    submit(&state, &user, kind::SUGGESTION, id.0, body).await
}

async fn create_proposal(
    State(state): State<AppState>,
    user: CurrentUser,
    ApiPath(id): ApiPath<Id>,
    ApiJson(body): ApiJson<NewItemBody>,
) -> AppResult<Response> {
    submit(&state, &user, kind::PROPOSAL, id.0, body).await
}

/// Item `id` after checking the reader may view its ToR.
pub(super) async fn viewable_item(
    conn: &mut PgConnection,
    graph: Option<&Projection>,
    user: &CurrentUser,
    id: i64,
    item_kind: Option<&str>,
) -> AppResult<Item> {
    let item = pipeline::load(conn, id, item_kind).await?;
    authorize_view(conn, graph, user, item.tor_id).await?;
    Ok(item)
}

#[derive(Debug, Serialize)]
struct ItemView {
    #[serde(flatten)]
    item: Item,
    /// The moves out of the current status.
    transitions: Vec<Transition>,
}

async fn show_item(
    State(state): State<AppState>,
    user: CurrentUser,
    ApiPath(id): ApiPath<Id>,
) -> AppResult<ApiJson<ItemView>> {
    let mut conn = state.db.acquire().await?;
    let item = viewable_item(&mut conn, state.graph.as_ref(), &user, id.0, None).await?;
    let transitions = workflow::available(&mut *conn, &item).await?;
    Ok(ApiJson(ItemView { item, transitions }))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct EditBody {
    title: Option<String>,
    description: Option<String>,
}

async fn edit_item(
    State(state): State<AppState>,
    user: CurrentUser,
    ApiPath(id): ApiPath<Id>,
    ApiJson(body): ApiJson<EditBody>,
) -> AppResult<ApiJson<Item>> {
    let mut tx = state.db.begin().await?;
    viewable_item(&mut tx, None, &user, id.0, None).await?;
    let item = items::edit(
        &mut tx,
        &user.actor(),
        id.0,
        body.title.as_deref(),
        body.description.as_deref(),
    )
    .await?;
    tx.commit().await?;
    Ok(ApiJson(item))
}

async fn delete_item(
    State(state): State<AppState>,
    user: CurrentUser,
    ApiPath(id): ApiPath<Id>,
) -> AppResult<StatusCode> {
    let mut tx = state.db.begin().await?;
    viewable_item(&mut tx, None, &user, id.0, None).await?;
    items::delete(&mut tx, &user.actor(), id.0).await?;
    tx.commit().await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct MoveBody {
    to: String,
    #[serde(default)]
    outcome: Option<String>,
}

async fn move_item(
    State(state): State<AppState>,
    user: CurrentUser,
    ApiPath(id): ApiPath<Id>,
    ApiJson(body): ApiJson<MoveBody>,
) -> AppResult<ApiJson<Item>> {
    let mut tx = state.db.begin().await?;
    viewable_item(&mut tx, None, &user, id.0, None).await?;
    let item = workflow::apply(
        &mut tx,
        &user.actor(),
        id.0,
        body.to.trim(),
        body.outcome.as_deref(),
    )
    .await?;
    tx.commit().await?;
    Ok(ApiJson(item))
}

#[derive(Debug, Serialize)]
struct WorkflowView {
    statuses: Vec<Status>,
    transitions: Vec<Transition>,
}

/// The workflow: readable by anyone logged in (it says who may do what).
async fn show_workflow(
    State(state): State<AppState>,
    _user: CurrentUser,
) -> AppResult<ApiJson<WorkflowView>> {
    let mut conn = state.db.acquire().await?;
    Ok(ApiJson(WorkflowView {
        statuses: workflow::statuses(&mut *conn).await?,
        transitions: workflow::transitions(&mut *conn).await?,
    }))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct TransitionPatch {
    required_capability: Option<String>,
    requires_outcome: Option<bool>,
    is_active: Option<bool>,
}

async fn update_transition(
    State(state): State<AppState>,
    user: CurrentUser,
    ApiPath(id): ApiPath<Id>,
    ApiJson(body): ApiJson<TransitionPatch>,
) -> AppResult<StatusCode> {
    user.require(perm::WORKFLOW_MANAGE)?;
    let required_capability = match body.required_capability.as_deref() {
        None => None,
        Some(name) => Some(
            name.parse()
                .map_err(|e: crate::domain::UnknownCapability| {
                    AppError::Validation(e.to_string())
                })?,
        ),
    };
    let update = TransitionUpdate {
        required_capability,
        requires_outcome: body.requires_outcome,
        is_active: body.is_active,
    };
    let mut tx = state.db.begin().await?;
    workflow::update_transition(&mut tx, &user.actor(), id.0, &update).await?;
    tx.commit().await?;
    Ok(StatusCode::NO_CONTENT)
}

/// The reader's next meetings, open action items, and items waiting for their move.
async fn my_pipeline(
    State(state): State<AppState>,
    user: CurrentUser,
) -> AppResult<ApiJson<dashboard::ReaderPipeline>> {
    let today = outlook::today(&state.config.timezone).to_string();
    let mut conn = state.db.acquire().await?;
    Ok(ApiJson(
        dashboard::for_reader(&mut conn, user.id, &today).await?,
    ))
}
