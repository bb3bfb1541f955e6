//! A ToR's dependencies (`feeds_into`, `escalates_to`; see [`crate::domain::dependencies`]).
//!
//! Reading needs `tors.view` or `tor.view` on the ToR; writing needs `tors.manage` or
//! `tor.edit` on the dependency's source ToR.

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::get;
use serde::Deserialize;

use super::pagination::Id;
use super::tors::{authorize, authorize_view};
use super::{Items, created};
use crate::domain::Capability;
use crate::domain::dependencies::{
    self, Dependency, DependencyKind, DependencyUpdate, DependencyView, NewDependency,
};
use crate::http::AppState;
use crate::http::error::{AppError, AppResult};
use crate::http::extract::{ApiJson, ApiPath, CurrentUser};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/tors/{id}/dependencies", get(list).post(create_dependency))
        .route(
            "/tors/{id}/dependencies/{dep}",
            get(show).patch(update_dependency).delete(delete_dependency),
        )
}

fn parse_kind(name: &str) -> AppResult<DependencyKind> {
    DependencyKind::parse(name).ok_or_else(|| {
        AppError::Validation(format!(
            "unknown dependency type {name:?}; use feeds_into or escalates_to"
        ))
    })
}

/// Dependency `dep` of ToR `tor_id` (either end); any other is a 404 here.
async fn load(conn: &mut sqlx::PgConnection, tor_id: i64, dep: i64) -> AppResult<Dependency> {
    match dependencies::get(conn, dep).await {
        Ok(d) if d.source_id == tor_id || d.target_id == tor_id => Ok(d),
        Ok(_) | Err(crate::domain::DomainError::NotFound(_)) => Err(AppError::NotFound(format!(
            "ToR {tor_id} has no dependency {dep}"
        ))),
        Err(e) => Err(e.into()),
    }
}

async fn list(
    State(state): State<AppState>,
    user: CurrentUser,
    ApiPath(id): ApiPath<Id>,
) -> AppResult<ApiJson<Items<DependencyView>>> {
    let mut conn = state.db.acquire().await?;
    authorize_view(&mut conn, state.graph.as_ref(), &user, id.0).await?;
    Ok(ApiJson(Items {
        items: dependencies::of_tor(&mut conn, id.0).await?,
    }))
}

async fn show(
    State(state): State<AppState>,
    user: CurrentUser,
    ApiPath((id, dep)): ApiPath<(Id, Id)>,
) -> AppResult<ApiJson<Dependency>> {
    let mut conn = state.db.acquire().await?;
    authorize_view(&mut conn, state.graph.as_ref(), &user, id.0).await?;
    Ok(ApiJson(load(&mut conn, id.0, dep.0).await?))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct NewDependencyBody {
    relation_type: String,
    target_id: Id,
    #[serde(default)]
    output_types: String,
    #[serde(default)]
    description: String,
    #[serde(default)]
    is_blocking: bool,
}

async fn create_dependency(
    State(state): State<AppState>,
    user: CurrentUser,
    ApiPath(id): ApiPath<Id>,
    ApiJson(body): ApiJson<NewDependencyBody>,
) -> AppResult<Response> {
    let kind = parse_kind(&body.relation_type)?;
    let mut tx = state.db.begin().await?;
    authorize(&mut tx, &user, Capability::EditTor, id.0).await?;
    let new = NewDependency {
        kind,
        source_id: id.0,
        target_id: body.target_id.0,
        output_types: body.output_types,
        description: body.description,
        is_blocking: body.is_blocking,
    };
    let dependency = dependencies::create(&mut tx, &user.actor(), &new).await?;
    tx.commit().await?;
    created(
        format!("/api/v1/tors/{}/dependencies/{}", id.0, dependency.id),
        dependency,
    )
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct DependencyPatchBody {
    output_types: Option<String>,
    description: Option<String>,
    is_blocking: Option<bool>,
}

async fn update_dependency(
    State(state): State<AppState>,
    user: CurrentUser,
    ApiPath((id, dep)): ApiPath<(Id, Id)>,
    ApiJson(body): ApiJson<DependencyPatchBody>,
) -> AppResult<ApiJson<Dependency>> {
    let mut tx = state.db.begin().await?;
    let existing = load(&mut tx, id.0, dep.0).await?;
    authorize(&mut tx, &user, Capability::EditTor, existing.source_id).await?;
    let update = DependencyUpdate {
        output_types: body.output_types,
        description: body.description,
        is_blocking: body.is_blocking,
    };
    let dependency = dependencies::update(&mut tx, &user.actor(), dep.0, &update).await?;
    tx.commit().await?;
    Ok(ApiJson(dependency))
}

async fn delete_dependency(
    State(state): State<AppState>,
    user: CurrentUser,
    ApiPath((id, dep)): ApiPath<(Id, Id)>,
) -> AppResult<StatusCode> {
    let mut tx = state.db.begin().await?;
    let existing = load(&mut tx, id.0, dep.0).await?;
    authorize(&mut tx, &user, Capability::EditTor, existing.source_id).await?;
    dependencies::delete(&mut tx, &user.actor(), dep.0).await?;
    tx.commit().await?;
    Ok(StatusCode::NO_CONTENT)
}
