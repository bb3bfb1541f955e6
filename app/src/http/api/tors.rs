//! ToRs, their functions (positions with capability flags), who fills them, and ABAC queries.
//!
//! ToRs themselves need `tors.manage`. Functions and holders also accept the ToR-scoped
//! capabilities (`tor.edit`, `members.manage`) from a role or a position; someone acting only
//! through such a capability cannot grant capabilities they do not hold on that ToR.

use std::collections::BTreeSet;

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::{get, post, put};
use serde::{Deserialize, Serialize};
use sqlx::PgConnection;

use super::pagination::Id;
use super::{Items, created, nullable, require_self_or};
use crate::domain::abac;
use crate::domain::tors::{
    self, FunctionUpdate, NewFunction, NewTor, TorDetail, TorFunction, TorSummary, TorUpdate,
};
use crate::domain::{Capability, perm, users};
use crate::graph::Projection;
use crate::http::AppState;
use crate::http::error::{AppError, AppResult};
use crate::http::extract::{ApiJson, ApiPath, ApiQuery, CurrentUser};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/tors", get(list).post(create))
        .route("/tors/{id}", get(show).patch(update).delete(remove))
        .route("/tors/{id}/capabilities", get(capabilities))
        .route("/tors/{id}/functions", post(add_function))
        .route(
            "/tors/{id}/functions/{fid}",
            get(show_function)
                .patch(update_function)
                .delete(delete_function),
        )
        .route(
            "/tors/{id}/functions/{fid}/holders/{user_id}",
            put(assign).delete(vacate),
        )
        .route("/abac/check", get(check))
}

fn parse_capability(name: &str) -> AppResult<Capability> {
    name.parse::<Capability>().map_err(|_| {
        let known: Vec<&str> = Capability::ALL.iter().map(|c| c.as_str()).collect();
        AppError::Validation(format!(
            "unknown capability {name:?}; known capabilities: {}",
            known.join(", ")
        ))
    })
}

fn parse_capabilities(names: &[String]) -> AppResult<BTreeSet<Capability>> {
    names.iter().map(|n| parse_capability(n)).collect()
}

/// How the caller is allowed to act on a ToR.
pub(super) enum Authority {
    /// `tors.manage`: anything.
    Manager,
    /// Through ToR-scoped capabilities only: these, and no more.
    Scoped(BTreeSet<Capability>),
}

impl Authority {
    /// Refuses to grant capabilities beyond the caller's own on this ToR.
    fn check_grants(&self, granted: &BTreeSet<Capability>) -> AppResult<()> {
        let Authority::Scoped(own) = self else {
            return Ok(());
        };
        let beyond: Vec<&str> = granted.difference(own).map(|c| c.as_str()).collect();
        if beyond.is_empty() {
            Ok(())
        } else {
            Err(AppError::Forbidden(format!(
                "you cannot grant capabilities you do not hold on this ToR: {}",
                beyond.join(", ")
            )))
        }
    }
}

/// `tors.manage`, or `capability` on ToR `tor_id`; an unknown ToR is a 404.
pub(super) async fn authorize(
    conn: &mut PgConnection,
    user: &CurrentUser,
    capability: Capability,
    tor_id: i64,
) -> AppResult<Authority> {
    tors::summary(&mut *conn, tor_id).await?;
    if user.can(perm::TORS_MANAGE) {
        return Ok(Authority::Manager);
    }
    // Inside the write's transaction: decided in Postgres, in the state the write will see.
    let own = abac::capabilities_on_pg(&mut *conn, user.id, tor_id).await?;
    if own.contains(&capability) {
        Ok(Authority::Scoped(own))
    } else {
        Err(AppError::Forbidden(format!(
            "this needs the {} permission or the {capability} capability on this ToR",
            perm::TORS_MANAGE
        )))
    }
}

/// `tors.view`, or `tor.view` on this ToR.
pub(super) async fn authorize_view(
    conn: &mut PgConnection,
    graph: Option<&Projection>,
    user: &CurrentUser,
    tor_id: i64,
) -> AppResult<()> {
    tors::summary(&mut *conn, tor_id).await?;
    if user.can(perm::TORS_VIEW)
        || abac::capabilities_on(&mut *conn, graph, user.id, tor_id)
            .await?
            .contains(&Capability::ViewTor)
    {
        Ok(())
    } else {
        Err(AppError::Forbidden(format!(
            "this needs the {} permission or the {} capability on this ToR",
            perm::TORS_VIEW,
            Capability::ViewTor
        )))
    }
}

/// The function `fid` of ToR `tor_id`; a function of another ToR is not found here.
async fn load_function(conn: &mut PgConnection, tor_id: i64, fid: i64) -> AppResult<TorFunction> {
    match tors::function_in(conn, fid).await {
        Ok(f) if f.tor_id == tor_id => Ok(f),
        Ok(_) | Err(crate::domain::DomainError::NotFound(_)) => Err(AppError::NotFound(format!(
            "ToR {tor_id} has no function {fid}"
        ))),
        Err(e) => Err(e.into()),
    }
}

async fn list(
    State(state): State<AppState>,
    user: CurrentUser,
) -> AppResult<ApiJson<Items<TorSummary>>> {
    user.require(perm::TORS_VIEW)?;
    Ok(ApiJson(Items {
        items: tors::list(&state.db).await?,
    }))
}

async fn show(
    State(state): State<AppState>,
    user: CurrentUser,
    ApiPath(id): ApiPath<Id>,
) -> AppResult<ApiJson<TorDetail>> {
    let mut conn = state.db.acquire().await?;
    authorize_view(&mut conn, state.graph.as_ref(), &user, id.0).await?;
    Ok(ApiJson(tors::detail_in(&mut conn, id.0).await?))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct NewTorBody {
    name: String,
    /// The title; absent means the name, but present it must not be blank.
    label: Option<String>,
    #[serde(default)]
    description: String,
    parent_id: Option<Id>,
}

async fn create(
    State(state): State<AppState>,
    user: CurrentUser,
    ApiJson(body): ApiJson<NewTorBody>,
) -> AppResult<Response> {
    user.require(perm::TORS_MANAGE)?;
    let new = NewTor {
        label: body.label.unwrap_or_else(|| body.name.clone()),
        name: body.name,
        description: body.description,
        parent_id: body.parent_id.map(|p| p.0),
    };
    let mut tx = state.db.begin().await?;
    let tor = tors::create(&mut tx, &user.actor(), &new).await?;
    let detail = tors::detail_in(&mut tx, tor.id).await?;
    tx.commit().await?;
    created(format!("/api/v1/tors/{}", tor.id), detail)
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct TorPatchBody {
    label: Option<String>,
    description: Option<String>,
    /// `null` detaches the ToR from its parent.
    #[serde(default, deserialize_with = "nullable")]
    parent_id: Option<Option<Id>>,
    is_active: Option<bool>,
}

async fn update(
    State(state): State<AppState>,
    user: CurrentUser,
    ApiPath(id): ApiPath<Id>,
    ApiJson(body): ApiJson<TorPatchBody>,
) -> AppResult<ApiJson<TorDetail>> {
    user.require(perm::TORS_MANAGE)?;
    let update = TorUpdate {
        label: body.label,
        description: body.description,
        parent_id: body.parent_id.map(|p| p.map(|p| p.0)),
        is_active: body.is_active,
    };
    let mut tx = state.db.begin().await?;
    tors::update(&mut tx, &user.actor(), id.0, &update).await?;
    let detail = tors::detail_in(&mut tx, id.0).await?;
    tx.commit().await?;
    Ok(ApiJson(detail))
}

async fn remove(
    State(state): State<AppState>,
    user: CurrentUser,
    ApiPath(id): ApiPath<Id>,
) -> AppResult<StatusCode> {
    user.require(perm::TORS_MANAGE)?;
    let mut tx = state.db.begin().await?;
    tors::delete(&mut tx, &user.actor(), id.0).await?;
    tx.commit().await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct NewFunctionBody {
    slug: String,
    #[serde(default)]
    label: String,
    #[serde(default)]
    description: String,
    #[serde(default)]
    capabilities: Vec<String>,
}

async fn add_function(
    State(state): State<AppState>,
    user: CurrentUser,
    ApiPath(id): ApiPath<Id>,
    ApiJson(body): ApiJson<NewFunctionBody>,
) -> AppResult<Response> {
    let capabilities = parse_capabilities(&body.capabilities)?;
    let mut tx = state.db.begin().await?;
    let authority = authorize(&mut tx, &user, Capability::EditTor, id.0).await?;
    authority.check_grants(&capabilities)?;
    let new = NewFunction {
        slug: body.slug,
        label: body.label,
        description: body.description,
        capabilities,
    };
    let function = tors::add_function(&mut tx, &user.actor(), id.0, &new).await?;
    tx.commit().await?;
    created(
        format!("/api/v1/tors/{}/functions/{}", id.0, function.id),
        function,
    )
}

async fn show_function(
    State(state): State<AppState>,
    user: CurrentUser,
    ApiPath((id, fid)): ApiPath<(Id, Id)>,
) -> AppResult<ApiJson<TorFunction>> {
    let mut conn = state.db.acquire().await?;
    authorize_view(&mut conn, state.graph.as_ref(), &user, id.0).await?;
    Ok(ApiJson(load_function(&mut conn, id.0, fid.0).await?))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct FunctionPatchBody {
    label: Option<String>,
    description: Option<String>,
    capabilities: Option<Vec<String>>,
}

async fn update_function(
    State(state): State<AppState>,
    user: CurrentUser,
    ApiPath((id, fid)): ApiPath<(Id, Id)>,
    ApiJson(body): ApiJson<FunctionPatchBody>,
) -> AppResult<ApiJson<TorFunction>> {
    let capabilities = body
        .capabilities
        .as_deref()
        .map(parse_capabilities)
        .transpose()?;
    let mut tx = state.db.begin().await?;
    let authority = authorize(&mut tx, &user, Capability::EditTor, id.0).await?;
    let before = load_function(&mut tx, id.0, fid.0).await?;
    if let Some(caps) = &capabilities {
        let held: BTreeSet<Capability> = before.capabilities.iter().copied().collect();
        authority.check_grants(&caps.difference(&held).copied().collect())?;
    }
    let update = FunctionUpdate {
        label: body.label,
        description: body.description,
        capabilities,
    };
    let function = tors::update_function(&mut tx, &user.actor(), fid.0, &update).await?;
    tx.commit().await?;
    Ok(ApiJson(function))
}

async fn delete_function(
    State(state): State<AppState>,
    user: CurrentUser,
    ApiPath((id, fid)): ApiPath<(Id, Id)>,
) -> AppResult<StatusCode> {
    let mut tx = state.db.begin().await?;
    authorize(&mut tx, &user, Capability::EditTor, id.0).await?;
    load_function(&mut tx, id.0, fid.0).await?;
    tors::delete_function(&mut tx, &user.actor(), fid.0).await?;
    tx.commit().await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn assign(
    State(state): State<AppState>,
    user: CurrentUser,
    ApiPath((id, fid, user_id)): ApiPath<(Id, Id, Id)>,
) -> AppResult<ApiJson<TorFunction>> {
    let mut tx = state.db.begin().await?;
    let authority = authorize(&mut tx, &user, Capability::ManageMembers, id.0).await?;
    let function = load_function(&mut tx, id.0, fid.0).await?;
    authority.check_grants(&function.capabilities.iter().copied().collect())?;
    let function = tors::assign(&mut tx, &user.actor(), fid.0, user_id.0).await?;
    tx.commit().await?;
    Ok(ApiJson(function))
}

async fn vacate(
    State(state): State<AppState>,
    user: CurrentUser,
    ApiPath((id, fid, user_id)): ApiPath<(Id, Id, Id)>,
) -> AppResult<StatusCode> {
    let mut tx = state.db.begin().await?;
    authorize(&mut tx, &user, Capability::ManageMembers, id.0).await?;
    load_function(&mut tx, id.0, fid.0).await?;
    users::require(&mut *tx, user_id.0).await?;
    tors::vacate(&mut tx, &user.actor(), fid.0, user_id.0).await?;
    tx.commit().await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct CapabilitiesQuery {
    user_id: Option<Id>,
}

#[derive(Debug, Serialize)]
struct TorCapabilities {
    tor_id: i64,
    user_id: i64,
    capabilities: BTreeSet<Capability>,
}

async fn capabilities(
    State(state): State<AppState>,
    user: CurrentUser,
    ApiPath(id): ApiPath<Id>,
    ApiQuery(query): ApiQuery<CapabilitiesQuery>,
) -> AppResult<ApiJson<TorCapabilities>> {
    let user_id = query.user_id.map_or(user.id, |u| u.0);
    require_self_or(&user, user_id, perm::USERS_VIEW)?;
    let mut conn = state.db.acquire().await?;
    tors::summary(&mut *conn, id.0).await?;
    users::require(&mut *conn, user_id).await?;
    Ok(ApiJson(TorCapabilities {
        tor_id: id.0,
        user_id,
        capabilities: abac::capabilities_on(&mut *conn, state.graph.as_ref(), user_id, id.0)
            .await?,
    }))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct CheckQuery {
    user_id: Option<Id>,
    capability: String,
    tor_id: Id,
}

#[derive(Debug, Serialize)]
struct CheckAnswer {
    allowed: bool,
}

async fn check(
    State(state): State<AppState>,
    user: CurrentUser,
    ApiQuery(query): ApiQuery<CheckQuery>,
) -> AppResult<ApiJson<CheckAnswer>> {
    let user_id = query.user_id.map_or(user.id, |u| u.0);
    require_self_or(&user, user_id, perm::USERS_VIEW)?;
    let capability = parse_capability(&query.capability)?;
    if state
        .access
        .principal(&state.db, user_id)
        .await?
        .user
        .is_none()
    {
        return Err(crate::domain::DomainError::NotFound(format!("user {user_id}")).into());
    }
    let allowed = state
        .access
        .may(
            &state.db,
            state.graph.as_ref(),
            user_id,
            capability,
            query.tor_id.0,
        )
        .await?;
    Ok(ApiJson(CheckAnswer { allowed }))
}
