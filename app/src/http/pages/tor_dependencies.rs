//! The ToR page's forms for dependencies (`feeds_into`, `escalates_to`) and the meeting
//! cadence. Both need `tors.manage` or `tor.edit` on the ToR; a dependency is managed from
//! its source ToR's page. Success redirects back with a flash; a mistake shows the page
//! again with the message and what was typed.

use axum::Router;
use axum::extract::State;
use axum::response::{IntoResponse, Redirect};
use axum::routing::post;
use tower_sessions::Session;

use super::errors::{HtmlError, PagePath, PageResult};
use super::form::FormFields;
use super::layout::flash;
use super::tors::{Problem, finish, require_on_tor};
use crate::domain::cadence::{Cadence, CadenceFields};
use crate::domain::dependencies::{self, DependencyKind, DependencyUpdate, NewDependency};
use crate::domain::{Capability, outlook, perm};
use crate::http::AppState;
use crate::http::error::AppError;
use crate::http::extract::PageUser;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/tors/{id}/dependencies", post(add))
        .route("/tors/{id}/dependencies/{dep}", post(update))
        .route("/tors/{id}/dependencies/{dep}/delete", post(delete))
        .route("/tors/{id}/cadence", post(set_cadence))
}

/// What was typed into the "add a dependency" form.
#[derive(Debug, Default)]
pub struct DependencyValues {
    pub kind: String,
    pub target_id: Option<i64>,
    pub output_types: String,
    pub description: String,
    pub is_blocking: bool,
}

async fn add(
    State(state): State<AppState>,
    session: Session,
    PageUser(user): PageUser,
    PagePath(id): PagePath<i64>,
    form: FormFields,
) -> PageResult {
    require_on_tor(&state, &user, id, perm::TORS_MANAGE, Capability::EditTor).await?;
    let mut values = DependencyValues {
        kind: form.get("relation_type").to_owned(),
        target_id: None,
        output_types: form.get("output_types").to_owned(),
        description: form.get("description").to_owned(),
        is_blocking: form.checked("is_blocking"),
    };
    let result = async {
        values.target_id = form.optional_id("target_id", "ToR")?;
        let kind = DependencyKind::parse(&values.kind)
            .ok_or_else(|| AppError::Validation("choose feeds into or escalates to".into()))?;
        let target_id = values
            .target_id
            .ok_or_else(|| AppError::Validation("choose the other ToR".into()))?;
        let new = NewDependency {
            kind,
            source_id: id,
            target_id,
            output_types: values.output_types.clone(),
            description: values.description.clone(),
            is_blocking: values.is_blocking,
        };
        let mut tx = state.db.begin().await?;
        dependencies::create(&mut tx, &user.actor(), &new).await?;
        tx.commit().await?;
        Ok::<_, HtmlError>(format!("Added: {}.", kind.outgoing_phrase()))
    }
    .await;
    finish(&state, &session, &user, id, result, |message| Problem {
        message,
        dependency: Some(values),
        ..Default::default()
    })
    .await
}

/// The dependency `dep` whose source is ToR `id` (the page that manages it); else a 404.
async fn outgoing(
    state: &AppState,
    id: i64,
    dep: i64,
) -> Result<dependencies::Dependency, HtmlError> {
    let mut conn = state.db.acquire().await?;
    match dependencies::get(&mut conn, dep).await? {
        d if d.source_id == id => Ok(d),
        _ => Err(AppError::NotFound(format!("dependency {dep} of ToR {id}")).into()),
    }
}

async fn update(
    State(state): State<AppState>,
    session: Session,
    PageUser(user): PageUser,
    PagePath((id, dep)): PagePath<(i64, i64)>,
    form: FormFields,
) -> PageResult {
    require_on_tor(&state, &user, id, perm::TORS_MANAGE, Capability::EditTor).await?;
    outgoing(&state, id, dep).await?;
    let result = async {
        let change = DependencyUpdate {
            output_types: Some(form.get("output_types").to_owned()),
            description: Some(form.get("description").to_owned()),
            is_blocking: Some(form.checked("is_blocking")),
        };
        let mut tx = state.db.begin().await?;
        let d = dependencies::update(&mut tx, &user.actor(), dep, &change).await?;
        tx.commit().await?;
        Ok::<_, HtmlError>(format!("Saved the {} dependency.", d.relation_type))
    }
    .await;
    finish(&state, &session, &user, id, result, |message| Problem {
        message,
        ..Default::default()
    })
    .await
}

async fn delete(
    State(state): State<AppState>,
    session: Session,
    PageUser(user): PageUser,
    PagePath((id, dep)): PagePath<(i64, i64)>,
) -> PageResult {
    require_on_tor(&state, &user, id, perm::TORS_MANAGE, Capability::EditTor).await?;
    outgoing(&state, id, dep).await?;
    let mut tx = state.db.begin().await?;
    let d = dependencies::delete(&mut tx, &user.actor(), dep).await?;
    tx.commit().await?;
    flash(
        &session,
        "success",
        format!("Removed the {} dependency.", d.relation_type),
    )
    .await?;
    Ok(Redirect::to(&format!("/tors/{id}")).into_response())
}

async fn set_cadence(
    State(state): State<AppState>,
    session: Session,
    PageUser(user): PageUser,
    PagePath(id): PagePath<i64>,
    form: FormFields,
) -> PageResult {
    require_on_tor(&state, &user, id, perm::TORS_MANAGE, Capability::EditTor).await?;
    let duration = form.get("cadence_duration_minutes").trim().to_owned();
    let mut fields = CadenceFields {
        meeting_cadence: form.get("meeting_cadence").to_owned(),
        cadence_day: form.get("cadence_day").to_owned(),
        cadence_week: form.get("cadence_week").to_owned(),
        cadence_time: form.get("cadence_time").to_owned(),
        cadence_duration_minutes: None,
        default_location: form.get("default_location").to_owned(),
    };
    let result = async {
        if !duration.is_empty() {
            fields.cadence_duration_minutes = Some(duration.parse().map_err(|_| {
                AppError::Validation(format!(
                    "the duration is a number of minutes, not {duration:?}"
                ))
            })?);
        }
        let cadence = Cadence::from_fields(&fields).map_err(AppError::Validation)?;
        let mut tx = state.db.begin().await?;
        let info = outlook::set_cadence(&mut tx, &user.actor(), id, cadence.as_ref()).await?;
        tx.commit().await?;
        Ok::<_, HtmlError>(match info {
            Some(info) => format!("Cadence saved: {}.", info.summary),
            None => "Cadence removed.".to_owned(),
        })
    }
    .await;
    finish(&state, &session, &user, id, result, |message| Problem {
        message,
        cadence: Some(fields),
        ..Default::default()
    })
    .await
}
