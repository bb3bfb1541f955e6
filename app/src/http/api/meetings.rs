//! Meetings, their agenda and roll call, minutes (sections, action items). See
//! [`crate::domain::pipeline::meetings`] and [`crate::domain::pipeline::minutes`] for who may
//! do what; moves along the workflow go through `POST /items/{id}/transitions`.

use axum::Router;
use axum::extract::State;
use axum::response::Response;
use axum::routing::{get, patch, post, put};
use serde::Deserialize;

use super::created;
use super::outlook::OutlookQuery;
use super::pagination::Id;
use super::pipeline::{ListQuery, list_of_tor, viewable_item};
use super::tors::authorize_view;
use crate::domain::pipeline::agenda::{self, AgendaSource};
use crate::domain::pipeline::meetings::{self, Attendance, MeetingDetail, NewMeeting, Slot};
use crate::domain::pipeline::minutes::{self, MinutesDetail, RefreshReport};
use crate::domain::pipeline::{self, Item};
use crate::domain::{kind, tors};
use crate::http::AppState;
use crate::http::error::{AppError, AppResult};
use crate::http::extract::{ApiJson, ApiPath, ApiQuery, CurrentUser};
use crate::store::Page;

use super::Items;

pub fn router() -> Router<AppState> {
    Router::new()
        .route(
            "/tors/{id}/meetings",
            get(list_meetings).post(create_meeting),
        )
        .route("/tors/{id}/meeting-slots", get(meeting_slots))
        .route("/meetings/{id}", get(show_meeting))
        .route("/meetings/{id}/agenda", post(add_to_agenda))
        .route("/meetings/{id}/attendance/{user_id}", put(set_attendance))
        .route("/meetings/{id}/minutes", post(generate_minutes))
        .route("/minutes/{id}", get(show_minutes))
        .route("/minutes/{id}/sections/{section}", put(edit_section))
        .route("/minutes/{id}/refresh", post(refresh_minutes))
        .route("/minutes/{id}/action-items", post(add_action_item))
        .route("/action-items/{id}", patch(update_action_item))
}

async fn list_meetings(
    State(state): State<AppState>,
    user: CurrentUser,
    ApiPath(id): ApiPath<Id>,
    ApiQuery(query): ApiQuery<ListQuery>,
) -> AppResult<ApiJson<Page<Item>>> {
    list_of_tor(&state, &user, kind::MEETING, id.0, &query).await
}

async fn create_meeting(
    State(state): State<AppState>,
    user: CurrentUser,
    ApiPath(id): ApiPath<Id>,
    ApiJson(body): ApiJson<NewMeeting>,
) -> AppResult<Response> {
    let mut tx = state.db.begin().await?;
    let meeting = meetings::create_meeting(&mut tx, &user.actor(), id.0, &body).await?;
    let detail = meetings::detail(&mut tx, meeting).await?;
    tx.commit().await?;
    created(format!("/api/v1/meetings/{meeting}"), detail)
}

/// The dates the ToR's cadence projects in a window (`?from=&days=`) that no meeting holds.
async fn meeting_slots(
    State(state): State<AppState>,
    user: CurrentUser,
    ApiPath(id): ApiPath<Id>,
    ApiQuery(query): ApiQuery<OutlookQuery>,
) -> AppResult<ApiJson<Items<Slot>>> {
    let (from, days) = query.window(&state.config.timezone)?;
    let mut conn = state.db.acquire().await?;
    authorize_view(&mut conn, state.graph.as_ref(), &user, id.0).await?;
    tors::summary(&mut *conn, id.0).await?;
    Ok(ApiJson(Items {
        items: meetings::slots(&mut conn, id.0, &state.config.timezone, from, days).await?,
    }))
}

async fn show_meeting(
    State(state): State<AppState>,
    user: CurrentUser,
    ApiPath(id): ApiPath<Id>,
) -> AppResult<ApiJson<MeetingDetail>> {
    let mut conn = state.db.acquire().await?;
    viewable_item(
        &mut conn,
        state.graph.as_ref(),
        &user,
        id.0,
        Some(kind::MEETING),
    )
    .await?;
    Ok(ApiJson(meetings::detail(&mut conn, id.0).await?))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct AgendaBody {
    proposal_id: Option<Id>,
    title: Option<String>,
    #[serde(default)]
    description: String,
}

async fn add_to_agenda(
    State(state): State<AppState>,
    user: CurrentUser,
    ApiPath(id): ApiPath<Id>,
    ApiJson(body): ApiJson<AgendaBody>,
) -> AppResult<Response> {
    let source = match (body.proposal_id, body.title) {
        (Some(p), None) => AgendaSource::Proposal(p.0),
        (None, Some(title)) => AgendaSource::Point {
            title,
            description: body.description,
        },
        _ => {
            return Err(AppError::Validation(
                "give either proposal_id (from the agenda queue) or a title".into(),
            ));
        }
    };
    let mut tx = state.db.begin().await?;
    viewable_item(&mut tx, None, &user, id.0, Some(kind::MEETING)).await?;
    let point = agenda::schedule(&mut tx, &user.actor(), id.0, &source).await?;
    let item = pipeline::load(&mut tx, point, None).await?;
    tx.commit().await?;
    created(format!("/api/v1/items/{point}"), item)
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct AttendanceBody {
    attendance: Attendance,
}

async fn set_attendance(
    State(state): State<AppState>,
    user: CurrentUser,
    ApiPath((id, user_id)): ApiPath<(Id, Id)>,
    ApiJson(body): ApiJson<AttendanceBody>,
) -> AppResult<ApiJson<MeetingDetail>> {
    let mut tx = state.db.begin().await?;
    viewable_item(&mut tx, None, &user, id.0, Some(kind::MEETING)).await?;
    meetings::set_attendance(&mut tx, &user.actor(), id.0, user_id.0, body.attendance).await?;
    let detail = meetings::detail(&mut tx, id.0).await?;
    tx.commit().await?;
    Ok(ApiJson(detail))
}

async fn generate_minutes(
    State(state): State<AppState>,
    user: CurrentUser,
    ApiPath(id): ApiPath<Id>,
) -> AppResult<Response> {
    let mut tx = state.db.begin().await?;
    viewable_item(&mut tx, None, &user, id.0, Some(kind::MEETING)).await?;
    let minutes = minutes::generate(&mut tx, &user.actor(), id.0).await?;
    let detail = minutes::detail(&mut tx, minutes).await?;
    tx.commit().await?;
    created(format!("/api/v1/minutes/{minutes}"), detail)
}

async fn show_minutes(
    State(state): State<AppState>,
    user: CurrentUser,
    ApiPath(id): ApiPath<Id>,
) -> AppResult<ApiJson<MinutesDetail>> {
    let mut conn = state.db.acquire().await?;
    viewable_item(
        &mut conn,
        state.graph.as_ref(),
        &user,
        id.0,
        Some(kind::MINUTES),
    )
    .await?;
    Ok(ApiJson(minutes::detail(&mut conn, id.0).await?))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct SectionBody {
    body: String,
}

async fn edit_section(
    State(state): State<AppState>,
    user: CurrentUser,
    ApiPath((id, section)): ApiPath<(Id, Id)>,
    ApiJson(body): ApiJson<SectionBody>,
) -> AppResult<ApiJson<Item>> {
    let mut tx = state.db.begin().await?;
    viewable_item(&mut tx, None, &user, id.0, Some(kind::MINUTES)).await?;
    let section =
        minutes::edit_section(&mut tx, &user.actor(), id.0, section.0, &body.body).await?;
    tx.commit().await?;
    Ok(ApiJson(section))
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
struct RefreshBody {
    overwrite_edited: bool,
}

async fn refresh_minutes(
    State(state): State<AppState>,
    user: CurrentUser,
    ApiPath(id): ApiPath<Id>,
    ApiJson(body): ApiJson<RefreshBody>,
) -> AppResult<ApiJson<RefreshReport>> {
    let mut tx = state.db.begin().await?;
    viewable_item(&mut tx, None, &user, id.0, Some(kind::MINUTES)).await?;
    let report = minutes::refresh(&mut tx, &user.actor(), id.0, body.overwrite_edited).await?;
    tx.commit().await?;
    Ok(ApiJson(report))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ActionItemBody {
    description: String,
    owner_id: Id,
    #[serde(default)]
    due_date: String,
}

async fn add_action_item(
    State(state): State<AppState>,
    user: CurrentUser,
    ApiPath(id): ApiPath<Id>,
    ApiJson(body): ApiJson<ActionItemBody>,
) -> AppResult<Response> {
    let mut tx = state.db.begin().await?;
    viewable_item(&mut tx, None, &user, id.0, Some(kind::MINUTES)).await?;
    let item = minutes::add_action_item(
        &mut tx,
        &user.actor(),
        id.0,
        &body.description,
        body.owner_id.0,
        &body.due_date,
    )
    .await?;
    let loaded = pipeline::load(&mut tx, item, None).await?;
    tx.commit().await?;
    created(format!("/api/v1/items/{item}"), loaded)
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ActionItemPatch {
    done: bool,
}

async fn update_action_item(
    State(state): State<AppState>,
    user: CurrentUser,
    ApiPath(id): ApiPath<Id>,
    ApiJson(body): ApiJson<ActionItemPatch>,
) -> AppResult<ApiJson<Item>> {
    let mut tx = state.db.begin().await?;
    let actor = user.actor();
    // The owner needs no view of the ToR for their own item; anyone else does.
    if !minutes::owns_action_item(&mut tx, &actor, id.0).await? {
        viewable_item(&mut tx, None, &user, id.0, Some(kind::ACTION_ITEM)).await?;
    }
    let item = minutes::set_action_done(&mut tx, &actor, id.0, body.done).await?;
    tx.commit().await?;
    Ok(ApiJson(item))
}
