//! The generic relation API. Relations of the built-in types (roles, permissions, positions,
//! ToR structure) are read here but written only through the domain endpoints that guard them;
//! otherwise `entities.manage` would be enough to hand oneself the admin role.

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::get;
use serde::{Deserialize, Serialize};
use serde_json::json;
use sqlx::PgConnection;

use super::created;
use super::entities::is_builtin_relation_type;
use super::pagination::{Id, non_empty, page_request};
use crate::domain::{audit, perm};
use crate::http::AppState;
use crate::http::error::{AppError, AppResult};
use crate::http::extract::{ApiJson, ApiPath, ApiQuery, CurrentUser};
use crate::store::{self, Page, Properties, Relation, RelationFilter, ident};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/relations", get(list).post(create))
        .route("/relations/{id}", get(show).delete(remove))
}

#[derive(Debug, Serialize)]
struct RelationWithProperties {
    #[serde(flatten)]
    relation: Relation,
    properties: Properties,
}

fn refuse_builtin(relation_type: &str) -> AppResult<()> {
    if is_builtin_relation_type(relation_type) {
        return Err(AppError::Validation(format!(
            "{relation_type} relations are managed by the domain; use the users or ToR endpoints"
        )));
    }
    Ok(())
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ListQuery {
    #[serde(rename = "type")]
    relation_type: Option<String>,
    source_id: Option<Id>,
    target_id: Option<Id>,
    limit: Option<i64>,
    after: Option<Id>,
}

async fn list(
    State(state): State<AppState>,
    user: CurrentUser,
    ApiQuery(query): ApiQuery<ListQuery>,
) -> AppResult<ApiJson<Page<Relation>>> {
    user.require(perm::ENTITIES_VIEW)?;
    let page = page_request(query.limit, query.after)?;
    let relation_type = non_empty(query.relation_type);
    if let Some(t) = &relation_type
        && !ident::is_valid_ident(t)
    {
        return Err(AppError::BadRequest(format!(
            "type {t:?} is not a valid relation type"
        )));
    }
    let filter = RelationFilter {
        relation_type,
        source_id: query.source_id.map(|i| i.0),
        target_id: query.target_id.map(|i| i.0),
    };
    Ok(ApiJson(
        store::list_relations(&state.db, &filter, page).await?,
    ))
}

async fn load(conn: &mut PgConnection, id: i64) -> AppResult<RelationWithProperties> {
    let relation = store::require_relation(&mut *conn, id).await?;
    let properties = store::relation_properties(&mut *conn, id).await?;
    Ok(RelationWithProperties {
        relation,
        properties,
    })
}

async fn show(
    State(state): State<AppState>,
    user: CurrentUser,
    ApiPath(id): ApiPath<Id>,
) -> AppResult<ApiJson<RelationWithProperties>> {
    user.require(perm::ENTITIES_VIEW)?;
    let mut conn = state.db.acquire().await?;
    Ok(ApiJson(load(&mut conn, id.0).await?))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct NewRelationBody {
    relation_type: String,
    source_id: Id,
    target_id: Id,
    #[serde(default)]
    properties: Properties,
}

async fn create(
    State(state): State<AppState>,
    user: CurrentUser,
    ApiJson(body): ApiJson<NewRelationBody>,
) -> AppResult<Response> {
    user.require(perm::ENTITIES_MANAGE)?;
    refuse_builtin(&body.relation_type)?;
    if let Some((key, _)) = body.properties.iter().find(|(_, v)| v.is_null()) {
        return Err(AppError::Validation(format!(
            "property {key}: null is not a value"
        )));
    }
    if body.source_id == body.target_id {
        return Err(AppError::Validation(format!(
            "an entity cannot be related to itself ({} -> {})",
            body.source_id.0, body.target_id.0
        )));
    }
    let mut tx = state.db.begin().await?;
    // Unknown type first (422), then the ends: they are named in the body, not the URL, so a
    // missing one is a 422 as well; 404 is kept for the resource the URL names.
    store::relation_type_id(&mut *tx, &body.relation_type).await?;
    for (end, id) in [("source", body.source_id), ("target", body.target_id)] {
        if store::get_entity_in(&mut tx, id.0).await?.is_none() {
            return Err(AppError::Validation(format!(
                "{end} entity {} does not exist",
                id.0
            )));
        }
    }
    let relation = store::create_relation(
        &mut tx,
        &body.relation_type,
        body.source_id.0,
        body.target_id.0,
        &body.properties,
    )
    .await?;
    audit::record(
        &mut tx,
        &user.actor(),
        "relation.create",
        Some(("relation", relation.id)),
        json!({"relation_type": relation.relation_type, "source_id": relation.source_id, "target_id": relation.target_id}),
    )
    .await?;
    let view = load(&mut tx, relation.id).await?;
    tx.commit().await?;
    created(format!("/api/v1/relations/{}", relation.id), view)
}

async fn remove(
    State(state): State<AppState>,
    user: CurrentUser,
    ApiPath(id): ApiPath<Id>,
) -> AppResult<StatusCode> {
    user.require(perm::ENTITIES_MANAGE)?;
    let mut tx = state.db.begin().await?;
    let relation = store::require_relation(&mut *tx, id.0).await?;
    refuse_builtin(&relation.relation_type)?;
    store::delete_relation(&mut tx, id.0).await?;
    audit::record(
        &mut tx,
        &user.actor(),
        "relation.delete",
        Some(("relation", id.0)),
        json!({"relation_type": relation.relation_type, "source_id": relation.source_id, "target_id": relation.target_id}),
    )
    .await?;
    tx.commit().await?;
    Ok(StatusCode::NO_CONTENT)
}
