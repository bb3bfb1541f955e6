//! A meeting's page (agenda with decisions, roll call, moves, minutes), the minutes page
//! (sections edited one by one, action items) and the minutes' printable page.

use std::collections::BTreeSet;

use askama::Template;
use axum::Router;
use axum::extract::State;
use axum::response::{IntoResponse, Redirect};
use axum::routing::{get, post};
use tower_sessions::Session;

use super::errors::{PagePath, PageResult};
use super::form::FormFields;
use super::layout::{Layout, flash, render};
use super::pipeline::{Row, rows, view_tor};
use crate::domain::pipeline::agenda::{self, AgendaSource};
use crate::domain::pipeline::coa::{CoaView, OpinionView};
use crate::domain::pipeline::meetings::{self, Attendance, Attendee};
use crate::domain::pipeline::minutes::{self, ActionItem};
use crate::domain::pipeline::{self, Item};
use crate::domain::{Capability, UserRef, kind, tors};
use crate::http::AppState;
use crate::http::error::AppError;
use crate::http::extract::PageUser;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/meetings/{id}", get(meeting_page))
        .route("/meetings/{id}/agenda", post(add_to_agenda))
        .route("/meetings/{id}/attendance", post(set_attendance))
        .route("/meetings/{id}/minutes", post(generate_minutes))
        .route("/minutes/{id}", get(minutes_page))
        .route("/minutes/{id}/print", get(minutes_print))
        .route("/minutes/{id}/sections/{section}", post(edit_section))
        .route("/minutes/{id}/refresh", post(refresh_minutes))
        .route("/minutes/{id}/action-items", post(add_action_item))
        .route("/action-items/{id}/done", post(action_item_done))
}

/// An agenda point with its moves, the proposal it came from, its decision, its courses of
/// action and the opinions on it.
type AgendaRow = (
    Row,
    Option<i64>,
    Option<Item>,
    Vec<CoaView>,
    Vec<OpinionView>,
);

#[derive(Template)]
#[template(path = "pipeline/meeting.html")]
struct MeetingPage {
    layout: Layout,
    meeting: Item,
    /// The meeting with its moves (one row, for the shared moves template).
    meeting_moves: Vec<Row>,
    tor_label: String,
    /// Agenda points with their moves, the proposal they came from and their decision.
    agenda: Vec<AgendaRow>,
    attendance: Vec<Attendee>,
    minutes_id: Option<i64>,
    queue: Vec<Item>,
    can_schedule: bool,
    can_record: bool,
    can_vote: bool,
    can_call: bool,
}

async fn meeting_page(
    State(state): State<AppState>,
    session: Session,
    PageUser(user): PageUser,
    PagePath(id): PagePath<i64>,
) -> PageResult {
    let mut conn = state.db.acquire().await?;
    let tor_id = pipeline::load(&mut conn, id, Some(kind::MEETING))
        .await?
        .tor_id;
    let caps = view_tor(&state, &user, tor_id).await?;
    let detail = meetings::detail(&mut conn, id).await?;
    let tor = tors::summary(&mut *conn, tor_id).await?;
    let meeting_moves = rows(&mut conn, &caps, vec![detail.meeting.clone()]).await?;
    let points: Vec<Item> = detail.agenda.iter().map(|e| e.point.clone()).collect();
    let point_rows = rows(&mut conn, &caps, points).await?;
    let agenda = point_rows
        .into_iter()
        .zip(detail.agenda)
        .map(|(row, e)| (row, e.proposal_id, e.decision, e.coas, e.opinions))
        .collect();
    let queue = pipeline::items::list(
        &mut conn,
        kind::PROPOSAL,
        tor_id,
        &["approved"],
        crate::store::PageRequest::first(100),
    )
    .await?
    .items;
    drop(conn);
    let layout = Layout::new(
        &state,
        &session,
        Some(&user),
        &detail.meeting.title.clone(),
        &format!("/meetings/{id}"),
    )
    .await?;
    let page = MeetingPage {
        layout,
        meeting: detail.meeting,
        meeting_moves,
        tor_label: if tor.label.is_empty() {
            tor.name
        } else {
            tor.label
        },
        agenda,
        attendance: detail.attendance,
        minutes_id: detail.minutes_id,
        queue,
        can_schedule: caps.contains(&Capability::SetAgenda),
        can_record: caps.contains(&Capability::RecordMinutes),
        can_vote: caps.contains(&Capability::Vote),
        can_call: caps.contains(&Capability::CallMeeting),
    };
    Ok(render(&page)?.into_response())
}

/// The meeting's ToR, after checking the reader may view it.
pub(super) async fn meeting_tor(
    state: &AppState,
    user: &crate::http::extract::CurrentUser,
    id: i64,
    k: &str,
) -> Result<i64, AppError> {
    let mut conn = state.db.acquire().await?;
    let tor_id = pipeline::load(&mut conn, id, Some(k)).await?.tor_id;
    drop(conn);
    view_tor(state, user, tor_id).await?;
    Ok(tor_id)
}

async fn add_to_agenda(
    State(state): State<AppState>,
    session: Session,
    PageUser(user): PageUser,
    PagePath(id): PagePath<i64>,
    form: FormFields,
) -> PageResult {
    meeting_tor(&state, &user, id, kind::MEETING).await?;
    let source = match form.optional_id("proposal_id", "proposal")? {
        Some(p) => AgendaSource::Proposal(p),
        None => AgendaSource::Point {
            title: form.get("title").to_owned(),
            description: form.get("description").to_owned(),
        },
    };
    let mut tx = state.db.begin().await?;
    agenda::schedule(&mut tx, &user.actor(), id, &source).await?;
    tx.commit().await?;
    flash(&session, "success", "Added to the agenda.").await?;
    // Scheduling from the ToR's queue goes back there.
    let back = match form.get("back") {
        "pipeline" => {
            let tor_id = meeting_tor(&state, &user, id, kind::MEETING).await?;
            format!("/tors/{tor_id}/pipeline")
        }
        _ => format!("/meetings/{id}"),
    };
    Ok(Redirect::to(&back).into_response())
}

async fn set_attendance(
    State(state): State<AppState>,
    session: Session,
    PageUser(user): PageUser,
    PagePath(id): PagePath<i64>,
    form: FormFields,
) -> PageResult {
    meeting_tor(&state, &user, id, kind::MEETING).await?;
    let member = form.required_id("user_id", "member")?;
    let attendance = Attendance::parse(form.get("attendance"))
        .ok_or_else(|| AppError::Validation("attendance is present, absent or excused".into()))?;
    let mut tx = state.db.begin().await?;
    meetings::set_attendance(&mut tx, &user.actor(), id, member, attendance).await?;
    tx.commit().await?;
    flash(&session, "success", "Roll call updated.").await?;
    Ok(Redirect::to(&format!("/meetings/{id}")).into_response())
}

async fn generate_minutes(
    State(state): State<AppState>,
    session: Session,
    PageUser(user): PageUser,
    PagePath(id): PagePath<i64>,
) -> PageResult {
    meeting_tor(&state, &user, id, kind::MEETING).await?;
    let mut tx = state.db.begin().await?;
    let minutes = minutes::generate(&mut tx, &user.actor(), id).await?;
    tx.commit().await?;
    flash(&session, "success", "Minutes drafted from the meeting.").await?;
    Ok(Redirect::to(&format!("/minutes/{minutes}")).into_response())
}

#[derive(Template)]
#[template(path = "pipeline/minutes.html")]
struct MinutesPage {
    layout: Layout,
    minutes: Item,
    /// The minutes with their moves (one row, for the shared moves template).
    minutes_moves: Vec<Row>,
    meeting_id: i64,
    sections: Vec<Item>,
    action_items: Vec<ActionItem>,
    members: Vec<UserRef>,
    editable: bool,
}

#[derive(Template)]
#[template(path = "pipeline/minutes_print.html")]
struct MinutesPrint {
    title: String,
    meeting: Item,
    tor_label: String,
    status: String,
    sections: Vec<Item>,
    action_items: Vec<ActionItem>,
}

async fn minutes_page(
    State(state): State<AppState>,
    session: Session,
    PageUser(user): PageUser,
    PagePath(id): PagePath<i64>,
) -> PageResult {
    let tor_id = meeting_tor(&state, &user, id, kind::MINUTES).await?;
    let caps: BTreeSet<Capability> = view_tor(&state, &user, tor_id).await?;
    let mut conn = state.db.acquire().await?;
    let detail = minutes::detail(&mut conn, id).await?;
    let members = meetings::members(&mut conn, tor_id).await?;
    let minutes_moves = rows(&mut conn, &caps, vec![detail.minutes.clone()]).await?;
    drop(conn);
    let layout = Layout::new(
        &state,
        &session,
        Some(&user),
        &detail.minutes.title,
        &format!("/minutes/{id}"),
    )
    .await?;
    let page = MinutesPage {
        layout,
        editable: detail.minutes.status == "draft" && caps.contains(&Capability::RecordMinutes),
        minutes: detail.minutes,
        minutes_moves,
        meeting_id: detail.meeting_id,
        sections: detail.sections,
        action_items: detail.action_items,
        members,
    };
    Ok(render(&page)?.into_response())
}

/// The minutes as a document: no navigation or forms, styled for paper by
/// `/static/print.css`.
async fn minutes_print(
    State(state): State<AppState>,
    PageUser(user): PageUser,
    PagePath(id): PagePath<i64>,
) -> PageResult {
    let tor_id = meeting_tor(&state, &user, id, kind::MINUTES).await?;
    let mut conn = state.db.acquire().await?;
    let detail = minutes::detail(&mut conn, id).await?;
    let meeting = pipeline::load(&mut conn, detail.meeting_id, Some(kind::MEETING)).await?;
    let tor = tors::summary(&mut *conn, tor_id).await?;
    let page = MinutesPrint {
        title: detail.minutes.title.clone(),
        meeting,
        tor_label: if tor.label.is_empty() {
            tor.name
        } else {
            tor.label
        },
        status: detail.minutes.status.clone(),
        sections: detail.sections,
        action_items: detail.action_items,
    };
    Ok(render(&page)?.into_response())
}

async fn edit_section(
    State(state): State<AppState>,
    session: Session,
    PageUser(user): PageUser,
    PagePath((id, section)): PagePath<(i64, i64)>,
    form: FormFields,
) -> PageResult {
    meeting_tor(&state, &user, id, kind::MINUTES).await?;
    let mut tx = state.db.begin().await?;
    let saved =
        minutes::edit_section(&mut tx, &user.actor(), id, section, form.get("body")).await?;
    tx.commit().await?;
    flash(&session, "success", format!("Saved {}.", saved.title)).await?;
    Ok(Redirect::to(&format!("/minutes/{id}")).into_response())
}

async fn refresh_minutes(
    State(state): State<AppState>,
    session: Session,
    PageUser(user): PageUser,
    PagePath(id): PagePath<i64>,
    form: FormFields,
) -> PageResult {
    meeting_tor(&state, &user, id, kind::MINUTES).await?;
    let mut tx = state.db.begin().await?;
    let report =
        minutes::refresh(&mut tx, &user.actor(), id, form.checked("overwrite_edited")).await?;
    tx.commit().await?;
    let mut message = if report.refreshed.is_empty() {
        "Nothing to refresh: the generated sections already match the meeting.".to_owned()
    } else {
        format!(
            "Refreshed from the meeting: {}.",
            report.refreshed.join(", ")
        )
    };
    if !report.kept_edited.is_empty() {
        message.push_str(&format!(
            " Kept because edited by hand: {} (tick \"also replace edited sections\" to replace them).",
            report.kept_edited.join(", ")
        ));
    }
    flash(&session, "success", message).await?;
    Ok(Redirect::to(&format!("/minutes/{id}")).into_response())
}

async fn add_action_item(
    State(state): State<AppState>,
    session: Session,
    PageUser(user): PageUser,
    PagePath(id): PagePath<i64>,
    form: FormFields,
) -> PageResult {
    meeting_tor(&state, &user, id, kind::MINUTES).await?;
    let owner = form.required_id("owner_id", "owner")?;
    let mut tx = state.db.begin().await?;
    minutes::add_action_item(
        &mut tx,
        &user.actor(),
        id,
        form.get("description"),
        owner,
        form.get("due_date"),
    )
    .await?;
    tx.commit().await?;
    flash(&session, "success", "Action item added.").await?;
    Ok(Redirect::to(&format!("/minutes/{id}")).into_response())
}

async fn action_item_done(
    State(state): State<AppState>,
    session: Session,
    PageUser(user): PageUser,
    PagePath(id): PagePath<i64>,
    form: FormFields,
) -> PageResult {
    pipeline::load(&mut *state.db.acquire().await?, id, Some(kind::ACTION_ITEM)).await?;
    let mut tx = state.db.begin().await?;
    let item =
        minutes::set_action_done(&mut tx, &user.actor(), id, form.get("done") != "false").await?;
    tx.commit().await?;
    flash(
        &session,
        "success",
        format!("{} is {}.", item.title, item.status),
    )
    .await?;
    // Owners mark their items done from the dashboard.
    Ok(Redirect::to("/").into_response())
}
