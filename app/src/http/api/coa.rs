//! Courses of action of an agenda point (with sections) and the members' opinions on it; see
//! [`crate::domain::pipeline::coa`]. They are read with the meeting (`GET /meetings/{id}`).

use axum::Router;
use axum::extract::State;
use axum::response::Response;
use axum::routing::{post, put};
use serde::Deserialize;

use super::created;
use super::pagination::Id;
use super::pipeline::viewable_item;
use crate::domain::kind;
use crate::domain::pipeline::coa::{self, NewSection};
use crate::domain::pipeline::{self, Item};
use crate::http::AppState;
use crate::http::error::AppResult;
use crate::http::extract::{ApiJson, ApiPath, CurrentUser};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/items/{id}/coas", post(add_coa))
        .route("/items/{id}/opinions", post(give_opinion))
        .route("/coas/{id}/sections/{section}", put(edit_section))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct CoaBody {
    title: String,
    #[serde(default)]
    description: String,
    #[serde(default)]
    sections: Vec<NewSection>,
}

async fn add_coa(
    State(state): State<AppState>,
    user: CurrentUser,
    ApiPath(id): ApiPath<Id>,
    ApiJson(body): ApiJson<CoaBody>,
) -> AppResult<Response> {
    let mut tx = state.db.begin().await?;
    viewable_item(&mut tx, None, &user, id.0, Some(kind::AGENDA_POINT)).await?;
    let coa = coa::add_coa(
        &mut tx,
        &user.actor(),
        id.0,
        &body.title,
        &body.description,
        &body.sections,
    )
    .await?;
    let item = pipeline::load(&mut tx, coa, None).await?;
    tx.commit().await?;
    created(format!("/api/v1/items/{coa}"), item)
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct OpinionBody {
    preferred_coa_id: Option<Id>,
    #[serde(default)]
    text: String,
}

async fn give_opinion(
    State(state): State<AppState>,
    user: CurrentUser,
    ApiPath(id): ApiPath<Id>,
    ApiJson(body): ApiJson<OpinionBody>,
) -> AppResult<ApiJson<Item>> {
    let mut tx = state.db.begin().await?;
    viewable_item(&mut tx, None, &user, id.0, Some(kind::AGENDA_POINT)).await?;
    let opinion = coa::give_opinion(
        &mut tx,
        &user.actor(),
        id.0,
        user.id,
        body.preferred_coa_id.map(|c| c.0),
        &body.text,
    )
    .await?;
    let item = pipeline::load(&mut tx, opinion, None).await?;
    tx.commit().await?;
    Ok(ApiJson(item))
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
    viewable_item(&mut tx, None, &user, id.0, Some(kind::COA)).await?;
    let section = coa::edit_section(&mut tx, &user.actor(), id.0, section.0, &body.body).await?;
    tx.commit().await?;
    Ok(ApiJson(section))
}
