//! The workflow admin page (`workflow.manage`): every status and transition, and a form per
//! transition to change the capability it needs and whether it needs an outcome.

use askama::Template;
use axum::Router;
use axum::extract::State;
use axum::response::{IntoResponse, Redirect};
use axum::routing::{get, post};
use tower_sessions::Session;

use super::errors::{PagePath, PageResult};
use super::form::FormFields;
use super::layout::{Layout, flash, render};
use crate::domain::pipeline::workflow::{self, Status, Transition, TransitionUpdate};
use crate::domain::{Capability, perm};
use crate::http::AppState;
use crate::http::error::AppError;
use crate::http::extract::PageUser;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/workflow", get(workflow_page))
        .route("/workflow/transitions/{id}", post(update_transition))
}

#[derive(Template)]
#[template(path = "pipeline/workflow.html")]
struct WorkflowPage {
    layout: Layout,
    statuses: Vec<Status>,
    transitions: Vec<Transition>,
    capabilities: Vec<&'static str>,
}

async fn workflow_page(
    State(state): State<AppState>,
    session: Session,
    PageUser(user): PageUser,
) -> PageResult {
    user.require(perm::WORKFLOW_MANAGE)?;
    let mut conn = state.db.acquire().await?;
    let statuses = workflow::statuses(&mut *conn).await?;
    let transitions = workflow::transitions(&mut *conn).await?;
    drop(conn);
    let layout = Layout::new(&state, &session, Some(&user), "Workflow", "/workflow").await?;
    let page = WorkflowPage {
        layout,
        statuses,
        transitions,
        capabilities: Capability::ALL.iter().map(|c| c.as_str()).collect(),
    };
    Ok(render(&page)?.into_response())
}

async fn update_transition(
    State(state): State<AppState>,
    session: Session,
    PageUser(user): PageUser,
    PagePath(id): PagePath<i64>,
    form: FormFields,
) -> PageResult {
    user.require(perm::WORKFLOW_MANAGE)?;
    let capability = form
        .get("required_capability")
        .parse()
        .map_err(|e: crate::domain::UnknownCapability| AppError::Validation(e.to_string()))?;
    let update = TransitionUpdate {
        required_capability: Some(capability),
        requires_outcome: Some(form.checked("requires_outcome")),
        is_active: None,
    };
    let mut tx = state.db.begin().await?;
    workflow::update_transition(&mut tx, &user.actor(), id, &update).await?;
    tx.commit().await?;
    flash(&session, "success", "Transition saved.").await?;
    Ok(Redirect::to("/workflow").into_response())
}
