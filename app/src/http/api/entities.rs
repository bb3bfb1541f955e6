//! The generic EAV API: entities with their properties, entity types, and an entity's relations.
//!
//! Types whose invariants live in the domain (users with credentials, roles and permissions,
//! ToRs and their functions) are readable here but written only through their own endpoints,
//! so no one with `entities.manage` can mint a user without a password, rename a permission or
//! slip past the capability checks. Built-in relation types cannot be renamed or deleted.

use std::collections::BTreeMap;

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::get;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::pagination::{Id, non_empty, page_request};
use super::{Items, created};
use crate::domain::audit;
use crate::domain::visibility::Visibility;
use crate::domain::{kind, perm, rel};
use crate::http::AppState;
use crate::http::error::{AppError, AppResult};
use crate::http::extract::{ApiJson, ApiPath, ApiQuery, CurrentUser};
use crate::store::{
    self, Entity, EntityFilter, EntityPatch, EntityWithProperties, Neighbour, NewEntity, Page,
    Properties, ident,
};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/entities", get(list).post(create))
        .route("/entities/{id}", get(show).patch(update).delete(remove))
        .route("/entities/{id}/relations", get(neighbours))
        .route("/entity-types", get(types))
}

/// Where entities of a domain-managed type are written instead, if `entity_type` is one.
pub(crate) fn managed_elsewhere(entity_type: &str) -> Option<&'static str> {
    match entity_type {
        kind::USER => Some("/api/v1/users"),
        kind::TOR | kind::TOR_FUNCTION => Some("/api/v1/tors"),
        kind::ROLE | kind::PERMISSION => Some("the roles administration"),
        t if kind::PIPELINE.contains(&t) => Some("the meeting pipeline's endpoints"),
        _ => None,
    }
}

/// Relation types the code relies on (seeded); their relations are written by the domain.
pub(crate) fn is_builtin_relation_type(name: &str) -> bool {
    rel::ALL.iter().any(|(n, _)| *n == name)
}

fn refuse_managed(entity_type: &str) -> AppResult<()> {
    match managed_elsewhere(entity_type) {
        Some(endpoint) => Err(AppError::Validation(format!(
            "entities of type {entity_type} cannot be written through /entities; use {endpoint}"
        ))),
        None => Ok(()),
    }
}

fn refuse_builtin_relation_type(entity: &Entity) -> AppResult<()> {
    if entity.entity_type == kind::RELATION_TYPE && is_builtin_relation_type(&entity.name) {
        return Err(AppError::Validation(format!(
            "relation type {} is built in and cannot be changed or deleted",
            entity.name
        )));
    }
    Ok(())
}

/// Relation types are used as identifiers (and graph labels), so their names must be ones.
fn check_relation_type_name(entity_type: &str, name: &str) -> AppResult<()> {
    if entity_type == kind::RELATION_TYPE {
        ident::check_ident("relation type name", name)?;
    }
    Ok(())
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ListQuery {
    #[serde(rename = "type")]
    entity_type: Option<String>,
    q: Option<String>,
    active: Option<bool>,
    limit: Option<i64>,
    after: Option<Id>,
}

async fn list(
    State(state): State<AppState>,
    user: CurrentUser,
    ApiQuery(query): ApiQuery<ListQuery>,
) -> AppResult<ApiJson<Page<EntityWithProperties>>> {
    user.require(perm::ENTITIES_VIEW)?;
    let page = page_request(query.limit, query.after)?;
    let entity_type = non_empty(query.entity_type);
    if let Some(t) = &entity_type
        && !ident::is_valid_ident(t)
    {
        return Err(AppError::BadRequest(format!(
            "type {t:?} is not a valid entity type"
        )));
    }
    let view = visible(&user);
    if let Some(t) = &entity_type {
        require_type(&view, t)?;
    }
    let filter = EntityFilter {
        entity_type,
        search: non_empty(query.q),
        active_only: query.active.unwrap_or(false),
        exclude_types: view.hidden_types().to_vec(),
    };
    let mut conn = state.db.acquire().await?;
    let found = store::list_entities(&mut *conn, &filter, page).await?;
    let mut items = store::with_properties(&mut *conn, found.items).await?;
    items.iter_mut().for_each(|e| view.redact(e));
    Ok(ApiJson(Page {
        items,
        next_after: found.next_after,
    }))
}

/// What `user` may see of entities (see [`crate::domain::visibility`]).
pub(crate) fn visible(user: &CurrentUser) -> Visibility {
    Visibility::for_permissions(&user.permissions)
}

/// 403 when the reader may not see entities of `entity_type`.
pub(crate) fn require_type(view: &Visibility, entity_type: &str) -> AppResult<()> {
    view.require_type(entity_type).map_err(|permission| {
        AppError::Forbidden(format!(
            "entities of type {entity_type} need the {permission} permission"
        ))
    })
}

async fn show(
    State(state): State<AppState>,
    user: CurrentUser,
    ApiPath(id): ApiPath<Id>,
) -> AppResult<ApiJson<EntityWithProperties>> {
    user.require(perm::ENTITIES_VIEW)?;
    let view = visible(&user);
    let mut entity = state.entity_reads.require(id.0).await?;
    require_type(&view, &entity.entity.entity_type)?;
    view.redact(&mut entity);
    Ok(ApiJson(entity))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct NewEntityBody {
    entity_type: String,
    name: String,
    #[serde(default)]
    label: String,
    #[serde(default)]
    sort_order: i32,
    #[serde(default)]
    properties: Properties,
}

async fn create(
    State(state): State<AppState>,
    user: CurrentUser,
    ApiJson(body): ApiJson<NewEntityBody>,
) -> AppResult<Response> {
    user.require(perm::ENTITIES_MANAGE)?;
    refuse_managed(&body.entity_type)?;
    check_relation_type_name(&body.entity_type, &body.name)?;
    if let Some((key, _)) = body.properties.iter().find(|(_, v)| v.is_null()) {
        return Err(AppError::Validation(format!(
            "property {key}: null is not a value (in PATCH it removes the key)"
        )));
    }
    let new = NewEntity {
        entity_type: body.entity_type,
        name: body.name,
        label: body.label,
        sort_order: body.sort_order,
        properties: body.properties,
    };
    let mut tx = state.db.begin().await?;
    let entity = store::create_entity(&mut tx, &new).await?;
    audit::record(
        &mut tx,
        &user.actor(),
        "entity.create",
        Some((&entity.entity.entity_type, entity.entity.id)),
        json!({"name": entity.entity.name, "properties": entity.properties.keys().collect::<Vec<_>>()}),
    )
    .await?;
    tx.commit().await?;
    created(format!("/api/v1/entities/{}", entity.entity.id), entity)
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct EntityPatchBody {
    name: Option<String>,
    label: Option<String>,
    sort_order: Option<i32>,
    is_active: Option<bool>,
    /// A key mapped to `null` is removed.
    #[serde(default)]
    properties: BTreeMap<String, Option<Value>>,
}

async fn update(
    State(state): State<AppState>,
    user: CurrentUser,
    ApiPath(id): ApiPath<Id>,
    ApiJson(body): ApiJson<EntityPatchBody>,
) -> AppResult<ApiJson<EntityWithProperties>> {
    user.require(perm::ENTITIES_MANAGE)?;
    let mut tx = state.db.begin().await?;
    let before = store::require_entity_in(&mut tx, id.0).await?;
    refuse_managed(&before.entity.entity_type)?;
    refuse_builtin_relation_type(&before.entity)?;
    if let Some(name) = &body.name {
        check_relation_type_name(&before.entity.entity_type, name)?;
    }
    let mut fields: Vec<String> = [
        ("name", body.name.is_some()),
        ("label", body.label.is_some()),
        ("sort_order", body.sort_order.is_some()),
        ("is_active", body.is_active.is_some()),
    ]
    .into_iter()
    .filter(|(_, present)| *present)
    .map(|(f, _)| f.to_owned())
    .collect();
    fields.extend(body.properties.keys().map(|k| format!("properties.{k}")));
    let patch = EntityPatch {
        name: body.name,
        label: body.label,
        sort_order: body.sort_order,
        is_active: body.is_active,
        properties: body.properties,
    };
    let after = store::update_entity(&mut tx, id.0, &patch).await?;
    if after != before {
        audit::record(
            &mut tx,
            &user.actor(),
            "entity.update",
            Some((&after.entity.entity_type, id.0)),
            json!({"fields": fields}),
        )
        .await?;
    }
    tx.commit().await?;
    Ok(ApiJson(after))
}

async fn remove(
    State(state): State<AppState>,
    user: CurrentUser,
    ApiPath(id): ApiPath<Id>,
) -> AppResult<StatusCode> {
    user.require(perm::ENTITIES_MANAGE)?;
    let mut tx = state.db.begin().await?;
    let entity = store::require_entity_in(&mut tx, id.0).await?.entity;
    refuse_managed(&entity.entity_type)?;
    refuse_builtin_relation_type(&entity)?;
    store::delete_entity(&mut tx, id.0).await?;
    audit::record(
        &mut tx,
        &user.actor(),
        "entity.delete",
        Some((&entity.entity_type, id.0)),
        json!({"name": entity.name}),
    )
    .await?;
    tx.commit().await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn neighbours(
    State(state): State<AppState>,
    user: CurrentUser,
    ApiPath(id): ApiPath<Id>,
) -> AppResult<ApiJson<Items<Neighbour>>> {
    user.require(perm::ENTITIES_VIEW)?;
    let view = visible(&user);
    let mut conn = state.db.acquire().await?;
    let entity = store::require_entity_in(&mut conn, id.0).await?;
    require_type(&view, &entity.entity.entity_type)?;
    Ok(ApiJson(Items {
        items: view.neighbours(store::neighbours(&mut *conn, id.0).await?),
    }))
}

#[derive(Debug, Serialize)]
struct TypeCount {
    entity_type: String,
    count: i64,
}

async fn types(
    State(state): State<AppState>,
    user: CurrentUser,
) -> AppResult<ApiJson<Items<TypeCount>>> {
    user.require(perm::ENTITIES_VIEW)?;
    let view = visible(&user);
    let counts = store::entity_type_counts(&state.db).await?;
    Ok(ApiJson(Items {
        items: counts
            .into_iter()
            .filter(|(t, _)| view.can_see_type(t))
            .map(|(entity_type, count)| TypeCount { entity_type, count })
            .collect(),
    }))
}
