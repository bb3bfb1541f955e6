//! The ToR's pipeline page (suggestions, proposals, the agenda queue, meetings) and the forms
//! that move any item along the workflow or delete it. Every form posts, the domain checks the capability in the write's transaction, and success
//! redirects with a flash; a refusal is an error page saying why.

use std::collections::BTreeSet;

use askama::Template;
use axum::Router;
use axum::extract::State;
use axum::response::{IntoResponse, Redirect};
use axum::routing::{get, post};
use sqlx::PgConnection;
use tower_sessions::Session;

use super::confirm;
use super::errors::{PagePath, PageResult};
use super::form::FormFields;
use super::layout::{Layout, flash, render};
use crate::domain::pipeline::meetings::{self, NewMeeting, Slot};
use crate::domain::pipeline::workflow::{self, Transition};
use crate::domain::pipeline::{self, Item, items};
use crate::domain::{Capability, abac, kind, outlook, perm, rel, tors};
use crate::http::AppState;
use crate::http::error::AppError;
use crate::http::extract::{CurrentUser, PageUser};
use crate::store::{self, PageRequest};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/tors/{id}/pipeline", get(tor_pipeline))
        .route("/tors/{id}/suggestions", post(new_suggestion))
        .route("/tors/{id}/proposals", post(new_proposal))
        .route("/tors/{id}/meetings", post(new_meeting))
        .route("/items/{id}/move", post(move_item))
        .route("/items/{id}/delete", post(delete_item))
        .route("/items/{id}/edit", post(edit_item))
}

/// An item with the moves the reader may make.
pub struct Row {
    pub item: Item,
    pub moves: Vec<Transition>,
}

/// The capabilities the reader has on a ToR, after checking they may view it (else 403).
pub(super) async fn view_tor(
    state: &AppState,
    user: &CurrentUser,
    tor_id: i64,
) -> Result<BTreeSet<Capability>, AppError> {
    tors::summary(&state.db, tor_id).await?;
    let caps = abac::capabilities_on(&state.db, state.graph.as_ref(), user.id, tor_id).await?;
    if user.can(perm::TORS_VIEW) || caps.contains(&Capability::ViewTor) {
        Ok(caps)
    } else {
        Err(AppError::Forbidden(format!(
            "this needs the {} permission or the {} capability on this ToR",
            perm::TORS_VIEW,
            Capability::ViewTor
        )))
    }
}

/// Items with the transitions out of their status that `caps` allow.
pub(super) async fn rows(
    conn: &mut PgConnection,
    caps: &BTreeSet<Capability>,
    items: Vec<Item>,
) -> Result<Vec<Row>, AppError> {
    let transitions = workflow::transitions(&mut *conn).await?;
    Ok(items
        .into_iter()
        .map(|item| Row {
            moves: transitions
                .iter()
                .filter(|t| {
                    t.scope == item.kind
                        && t.from == item.status
                        && caps.contains(&t.required_capability)
                })
                .cloned()
                .collect(),
            item,
        })
        .collect())
}

#[derive(Template)]
#[template(path = "pipeline/tor.html")]
struct TorPipelinePage {
    layout: Layout,
    tor_id: i64,
    tor_label: String,
    suggestions: Vec<Row>,
    proposals: Vec<Row>,
    queue: Vec<Row>,
    meetings: Vec<Row>,
    /// Meetings whose agenda is open, for the queue's "schedule into" select.
    open_meetings: Vec<Item>,
    slots: Vec<Slot>,
    can_schedule: bool,
    can_call: bool,
    can_edit: bool,
    /// Open suggestions and draft proposals the reader may edit (theirs, or all with
    /// `tor.edit`).
    editable: Vec<i64>,
}

async fn tor_pipeline(
    State(state): State<AppState>,
    session: Session,
    PageUser(user): PageUser,
    PagePath(id): PagePath<i64>,
) -> PageResult {
    let caps = view_tor(&state, &user, id).await?;
    let tor = tors::summary(&state.db, id).await?;
    let mut conn = state.db.acquire().await?;
    let page = PageRequest::first(100);
    let mut list = async |k: &str, statuses: &[&str]| -> Result<Vec<Row>, AppError> {
        let found = items::list(&mut conn, k, id, statuses, page).await?.items;
        rows(&mut conn, &caps, found).await
    };
    let suggestions = list(kind::SUGGESTION, &["open"]).await?;
    let proposals = list(
        kind::PROPOSAL,
        &["draft", "submitted", "under_review", "scheduled"],
    )
    .await?;
    let queue = list(kind::PROPOSAL, &["approved"]).await?;
    let meetings = list(kind::MEETING, &[]).await?;
    let open_meetings = meetings
        .iter()
        .filter(|m| {
            matches!(
                m.item.status.as_str(),
                "projected" | "confirmed" | "in_progress"
            )
        })
        .map(|m| m.item.clone())
        .collect();
    let drafts: Vec<i64> = suggestions
        .iter()
        .chain(proposals.iter().filter(|p| p.item.status == "draft"))
        .map(|r| r.item.id)
        .collect();
    let editable = if caps.contains(&Capability::EditTor) {
        drafts
    } else {
        pipeline::authored_by(&mut *conn, user.id, &drafts).await?
    };
    let tz = &state.config.timezone;
    let slots = meetings::slots(&mut conn, id, tz, outlook::today(tz), 60).await?;
    drop(conn);
    let label = if tor.label.is_empty() {
        tor.name.clone()
    } else {
        tor.label.clone()
    };
    let path = format!("/tors/{id}/pipeline");
    let layout = Layout::new(
        &state,
        &session,
        Some(&user),
        &format!("{label}: pipeline"),
        &path,
    )
    .await?;
    let page = TorPipelinePage {
        layout,
        tor_id: id,
        tor_label: label,
        suggestions,
        proposals,
        queue,
        meetings,
        open_meetings,
        slots: slots.into_iter().take(6).collect(),
        can_schedule: caps.contains(&Capability::SetAgenda),
        can_call: caps.contains(&Capability::CallMeeting),
        can_edit: caps.contains(&Capability::EditTor),
        editable,
    };
    Ok(render(&page)?.into_response())
}

async fn submit(
    state: &AppState,
    session: &Session,
    user: &CurrentUser,
    item_kind: &str,
    tor_id: i64,
    form: &FormFields,
) -> PageResult {
    let mut tx = state.db.begin().await?;
    items::submit(
        &mut tx,
        &user.actor(),
        item_kind,
        tor_id,
        form.get("title"),
        form.get("description"),
    )
    .await?;
    tx.commit().await?;
    flash(session, "success", format!("Your {item_kind} was added.")).await?;
    Ok(Redirect::to(&format!("/tors/{tor_id}/pipeline")).into_response())
}

async fn new_suggestion(
    State(state): State<AppState>,
    session: Session,
    PageUser(user): PageUser,
    PagePath(id): PagePath<i64>,
    form: FormFields,
) -> PageResult {
    submit(&state, &session, &user, kind::SUGGESTION, id, &form).await
}

async fn new_proposal(
    State(state): State<AppState>,
    session: Session,
    PageUser(user): PageUser,
    PagePath(id): PagePath<i64>,
    form: FormFields,
) -> PageResult {
    submit(&state, &session, &user, kind::PROPOSAL, id, &form).await
}

async fn new_meeting(
    State(state): State<AppState>,
    session: Session,
    PageUser(user): PageUser,
    PagePath(id): PagePath<i64>,
    form: FormFields,
) -> PageResult {
    let duration = form.get("duration_minutes").trim();
    let new = NewMeeting {
        date: form.get("date").to_owned(),
        time: form.get("time").to_owned(),
        duration_minutes: match duration {
            "" => None,
            d => Some(d.parse().map_err(|_| {
                AppError::Validation(format!("the duration is a number of minutes, not {d:?}"))
            })?),
        },
        location: form.get("location").to_owned(),
        title: form.get("title").to_owned(),
    };
    let mut tx = state.db.begin().await?;
    let meeting = meetings::create_meeting(&mut tx, &user.actor(), id, &new).await?;
    tx.commit().await?;
    flash(&session, "success", "Meeting created.").await?;
    Ok(Redirect::to(&format!("/meetings/{meeting}")).into_response())
}

async fn edit_item(
    State(state): State<AppState>,
    session: Session,
    PageUser(user): PageUser,
    PagePath(id): PagePath<i64>,
    form: FormFields,
) -> PageResult {
    let mut tx = state.db.begin().await?;
    let item = pipeline::load(&mut tx, id, None).await?;
    view_tor(&state, &user, item.tor_id).await?;
    let item = items::edit(
        &mut tx,
        &user.actor(),
        id,
        Some(form.get("title")),
        Some(form.get("description")),
    )
    .await?;
    tx.commit().await?;
    flash(&session, "success", format!("Saved {}.", item.title)).await?;
    Ok(Redirect::to(&format!("/tors/{}/pipeline", item.tor_id)).into_response())
}

/// The page an item is shown on.
pub(super) async fn page_of(conn: &mut PgConnection, item: &Item) -> Result<String, AppError> {
    Ok(match item.kind.as_str() {
        kind::MEETING => format!("/meetings/{}", item.id),
        kind::MINUTES => format!("/minutes/{}", item.id),
        kind::AGENDA_POINT => format!(
            "/meetings/{}",
            crate::domain::pipeline::agenda::meeting_of_point(conn, item.id)
                .await?
                .id
        ),
        kind::ACTION_ITEM | kind::MINUTES_SECTION => {
            let relation = if item.kind == kind::ACTION_ITEM {
                rel::ACTION_OF
            } else {
                rel::SECTION_OF
            };
            let parent = store::targets_of(&mut *conn, relation, item.id).await?;
            format!("/minutes/{}", parent.first().copied().unwrap_or_default())
        }
        _ => format!("/tors/{}/pipeline", item.tor_id),
    })
}

async fn move_item(
    State(state): State<AppState>,
    session: Session,
    PageUser(user): PageUser,
    PagePath(id): PagePath<i64>,
    form: FormFields,
) -> PageResult {
    let mut tx = state.db.begin().await?;
    let before = pipeline::load(&mut tx, id, None).await?;
    view_tor(&state, &user, before.tor_id).await?;
    let outcome = form.get("outcome");
    let item = workflow::apply(
        &mut tx,
        &user.actor(),
        id,
        form.get("to").trim(),
        Some(outcome),
    )
    .await?;
    let target = page_of(&mut tx, &item).await?;
    tx.commit().await?;
    flash(
        &session,
        "success",
        format!("{} is now {}.", item.title, item.status.replace('_', " ")),
    )
    .await?;
    Ok(Redirect::to(&target).into_response())
}

/// What deleting an item takes along, for the confirmation page.
fn consequences(item: &Item) -> Vec<String> {
    match item.kind.as_str() {
        kind::MEETING => vec![
            "Its agenda points, with their courses of action and opinions.".into(),
            "Their proposals go back to the agenda queue.".into(),
        ],
        kind::MINUTES => vec!["Their sections and action items.".into()],
        kind::COA => vec!["Its sections.".into()],
        _ => Vec::new(),
    }
}

async fn delete_item(
    State(state): State<AppState>,
    session: Session,
    PageUser(user): PageUser,
    PagePath(id): PagePath<i64>,
    form: FormFields,
) -> PageResult {
    let mut tx = state.db.begin().await?;
    let item = pipeline::load(&mut tx, id, None).await?;
    view_tor(&state, &user, item.tor_id).await?;
    // Where to go afterwards: the parent's page (the item's own page is gone).
    let target = match item.kind.as_str() {
        kind::MEETING | kind::SUGGESTION | kind::PROPOSAL => {
            format!("/tors/{}/pipeline", item.tor_id)
        }
        kind::MINUTES => {
            let meeting = store::targets_of(&mut *tx, rel::MINUTES_OF, id).await?;
            format!("/meetings/{}", meeting.first().copied().unwrap_or_default())
        }
        _ => page_of(&mut tx, &item).await?,
    };
    let cancel = page_of(&mut tx, &item).await?;
    items::delete(&mut tx, &user.actor(), id).await?;
    // Deleted inside the transaction first, so a refusal (403, 409) shows before the
    // question; unconfirmed, the transaction is rolled back.
    if !confirm::confirmed(&form) {
        tx.rollback().await?;
        let what = item.kind.replace('_', " ");
        return Ok(confirm::page(
            &state,
            &session,
            &user,
            confirm::Confirmation {
                question: format!("Delete the {what} {}?", item.title),
                consequences: consequences(&item),
                action: format!("/items/{id}/delete"),
                button: format!("Delete the {what}"),
                cancel,
            },
        )
        .await?);
    }
    tx.commit().await?;
    flash(&session, "success", format!("Deleted {}.", item.title)).await?;
    Ok(Redirect::to(&target).into_response())
}
