//! The meeting page's forms for an agenda point's courses of action and the members'
//! opinions; both go back to the meeting page.

use axum::Router;
use axum::extract::State;
use axum::response::{IntoResponse, Redirect};
use axum::routing::post;
use tower_sessions::Session;

use super::errors::{PagePath, PageResult};
use super::form::FormFields;
use super::layout::flash;
use super::meetings::meeting_tor;
use crate::domain::kind;
use crate::domain::pipeline::agenda::meeting_of_point;
use crate::domain::pipeline::coa::{self, NewSection};
use crate::http::AppState;
use crate::http::extract::PageUser;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/items/{id}/coas", post(add_coa))
        .route("/items/{id}/opinions", post(give_opinion))
}

async fn add_coa(
    State(state): State<AppState>,
    session: Session,
    PageUser(user): PageUser,
    PagePath(id): PagePath<i64>,
    form: FormFields,
) -> PageResult {
    meeting_tor(&state, &user, id, kind::AGENDA_POINT).await?;
    // The form offers one section; the API takes any number.
    let sections: Vec<NewSection> = match form.get("section_title").trim() {
        "" => Vec::new(),
        title => vec![NewSection {
            title: title.to_owned(),
            body: form.get("section_body").to_owned(),
        }],
    };
    let mut tx = state.db.begin().await?;
    coa::add_coa(
        &mut tx,
        &user.actor(),
        id,
        form.get("title"),
        form.get("description"),
        &sections,
    )
    .await?;
    let meeting = meeting_of_point(&mut tx, id).await?.id;
    tx.commit().await?;
    flash(&session, "success", "Course of action added.").await?;
    Ok(Redirect::to(&format!("/meetings/{meeting}")).into_response())
}

async fn give_opinion(
    State(state): State<AppState>,
    session: Session,
    PageUser(user): PageUser,
    PagePath(id): PagePath<i64>,
    form: FormFields,
) -> PageResult {
    meeting_tor(&state, &user, id, kind::AGENDA_POINT).await?;
    let preferred = form.optional_id("preferred_coa_id", "course of action")?;
    let mut tx = state.db.begin().await?;
    coa::give_opinion(
        &mut tx,
        &user.actor(),
        id,
        user.id,
        preferred,
        form.get("text"),
    )
    .await?;
    let meeting = meeting_of_point(&mut tx, id).await?.id;
    tx.commit().await?;
    flash(&session, "success", "Your opinion is recorded.").await?;
    Ok(Redirect::to(&format!("/meetings/{meeting}")).into_response())
}
