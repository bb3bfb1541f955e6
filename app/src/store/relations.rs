use serde::Serialize;
use serde_json::Value;
use sqlx::{PgConnection, PgExecutor};
use time::OffsetDateTime;

use super::ident::check_ident;
use super::{Page, PageRequest, Properties, StoreError, StoreResult};

/// The entity type whose entities name relation types.
pub const RELATION_TYPE: &str = "relation_type";

#[derive(Debug, Clone, PartialEq, Serialize, sqlx::FromRow)]
pub struct Relation {
    pub id: i64,
    pub relation_type: String,
    pub source_id: i64,
    pub target_id: i64,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
}

/// A relation seen from one of its ends, with the entity at the other end.
#[derive(Debug, Clone, PartialEq, Serialize, sqlx::FromRow)]
pub struct Neighbour {
    pub relation_id: i64,
    pub relation_type: String,
    pub outgoing: bool,
    pub other_id: i64,
    pub other_type: String,
    pub other_name: String,
    pub other_label: String,
}

#[derive(Debug, Clone, Default)]
pub struct RelationFilter {
    pub relation_type: Option<String>,
    pub source_id: Option<i64>,
    pub target_id: Option<i64>,
}

const RELATION_SELECT: &str = "SELECT r.id, rt.name AS relation_type, r.source_id, r.target_id, r.created_at \
     FROM relations r JOIN entities rt ON rt.id = r.relation_type_id";

pub async fn relation_type_id(exec: impl PgExecutor<'_>, name: &str) -> StoreResult<i64> {
    check_ident("relation type", name)?;
    sqlx::query_scalar("SELECT id FROM entities WHERE entity_type = 'relation_type' AND name = $1")
        .bind(name)
        .fetch_optional(exec)
        .await?
        .ok_or_else(|| StoreError::Invalid(format!("unknown relation type {name:?}")))
}

/// Creates a relation (idempotent: an existing identical relation is returned unchanged).
pub async fn relate(
    conn: &mut PgConnection,
    relation_type: &str,
    source_id: i64,
    target_id: i64,
    properties: &Properties,
) -> StoreResult<Relation> {
    for key in properties.keys() {
        check_ident("property key", key)?;
    }
    let type_id = relation_type_id(&mut *conn, relation_type).await?;
    let ends: i64 = sqlx::query_scalar("SELECT count(*) FROM entities WHERE id = ANY($1)")
        .bind([source_id, target_id])
        .fetch_one(&mut *conn)
        .await?;
    let expected = if source_id == target_id { 1 } else { 2 };
    if ends != expected {
        return Err(StoreError::NotFound(format!(
            "entity {source_id} or {target_id}"
        )));
    }
    let id = insert_or_find(conn, type_id, source_id, target_id).await?;
    for (key, value) in properties {
        set_relation_property(&mut *conn, id, key, value).await?;
    }
    require_relation(&mut *conn, id).await
}

/// The id of the relation, inserted unless it exists. Each step is its own statement, so
/// the lookup sees a row a concurrent transaction committed while the insert waited for it
/// (one statement's snapshot would not, and found no row at all).
/// Inserts the relation unless an identical one exists; its id when this call inserted it.
/// One statement, so concurrent identical inserts cannot both succeed.
async fn try_insert(
    conn: &mut PgConnection,
    type_id: i64,
    source_id: i64,
    target_id: i64,
) -> StoreResult<Option<i64>> {
    Ok(sqlx::query_scalar(
        "INSERT INTO relations (relation_type_id, source_id, target_id) VALUES ($1, $2, $3) \
         ON CONFLICT (relation_type_id, source_id, target_id) DO NOTHING RETURNING id",
    )
    .bind(type_id)
    .bind(source_id)
    .bind(target_id)
    .fetch_optional(&mut *conn)
    .await?)
}

async fn insert_or_find(
    conn: &mut PgConnection,
    type_id: i64,
    source_id: i64,
    target_id: i64,
) -> StoreResult<i64> {
    for _ in 0..3 {
        let inserted = try_insert(&mut *conn, type_id, source_id, target_id).await?;
        if let Some(id) = inserted {
            return Ok(id);
        }
        let existing: Option<i64> = sqlx::query_scalar(
            "SELECT id FROM relations WHERE relation_type_id = $1 AND source_id = $2 AND target_id = $3",
        )
        .bind(type_id)
        .bind(source_id)
        .bind(target_id)
        .fetch_optional(&mut *conn)
        .await?;
        if let Some(id) = existing {
            return Ok(id);
        }
        // Deleted between the two statements: try again.
    }
    Err(StoreError::Conflict(
        "the relation changed concurrently; try again".into(),
    ))
}

/// Inserts the relation unless it exists (atomically); `true` when this call inserted it, so
/// callers write their audit entry exactly once however many requests race.
pub async fn relate_if_absent(
    conn: &mut PgConnection,
    relation_type: &str,
    source_id: i64,
    target_id: i64,
) -> StoreResult<bool> {
    let type_id = relation_type_id(&mut *conn, relation_type).await?;
    let inserted = try_insert(&mut *conn, type_id, source_id, target_id).await?;
    Ok(inserted.is_some())
}

/// Like [`relate`] but an existing identical relation is a conflict. Atomic: one
/// `INSERT ... ON CONFLICT DO NOTHING RETURNING`, so of concurrent identical creates exactly
/// one succeeds and the others get [`StoreError::Conflict`].
pub async fn create_relation(
    conn: &mut PgConnection,
    relation_type: &str,
    source_id: i64,
    target_id: i64,
    properties: &Properties,
) -> StoreResult<Relation> {
    for key in properties.keys() {
        check_ident("property key", key)?;
    }
    let type_id = relation_type_id(&mut *conn, relation_type).await?;
    let inserted = try_insert(&mut *conn, type_id, source_id, target_id).await?;
    let Some(id) = inserted else {
        return Err(StoreError::Conflict(format!(
            "relation {relation_type} from {source_id} to {target_id} already exists"
        )));
    };
    for (key, value) in properties {
        set_relation_property(&mut *conn, id, key, value).await?;
    }
    require_relation(&mut *conn, id).await
}

pub async fn set_relation_property(
    conn: &mut PgConnection,
    relation_id: i64,
    key: &str,
    value: &Value,
) -> StoreResult<()> {
    check_ident("property key", key)?;
    sqlx::query(
        "INSERT INTO relation_properties (relation_id, key, value) VALUES ($1, $2, $3) \
         ON CONFLICT (relation_id, key) DO UPDATE SET value = EXCLUDED.value, updated_at = now() \
         WHERE relation_properties.value IS DISTINCT FROM EXCLUDED.value",
    )
    .bind(relation_id)
    .bind(key)
    .bind(value)
    .execute(conn)
    .await?;
    Ok(())
}

pub async fn get_relation(exec: impl PgExecutor<'_>, id: i64) -> StoreResult<Option<Relation>> {
    Ok(
        sqlx::query_as(&format!("{RELATION_SELECT} WHERE r.id = $1"))
            .bind(id)
            .fetch_optional(exec)
            .await?,
    )
}

pub async fn require_relation(exec: impl PgExecutor<'_>, id: i64) -> StoreResult<Relation> {
    get_relation(exec, id)
        .await?
        .ok_or_else(|| StoreError::NotFound(format!("relation {id}")))
}

pub async fn relation_properties(exec: impl PgExecutor<'_>, id: i64) -> StoreResult<Properties> {
    let rows: Vec<(String, Value)> = sqlx::query_as(
        "SELECT key, value FROM relation_properties WHERE relation_id = $1 ORDER BY key",
    )
    .bind(id)
    .fetch_all(exec)
    .await?;
    Ok(rows.into_iter().collect())
}

pub async fn list_relations(
    exec: impl PgExecutor<'_>,
    filter: &RelationFilter,
    page: PageRequest,
) -> StoreResult<Page<Relation>> {
    if let Some(t) = &filter.relation_type {
        check_ident("relation type", t)?;
    }
    let rows: Vec<Relation> = sqlx::query_as(&format!(
        "{RELATION_SELECT} WHERE ($1::text IS NULL OR rt.name = $1) \
           AND ($2::bigint IS NULL OR r.source_id = $2) AND ($3::bigint IS NULL OR r.target_id = $3) \
           AND ($4::bigint IS NULL OR r.id > $4) ORDER BY r.id LIMIT $5"
    ))
    .bind(&filter.relation_type)
    .bind(filter.source_id)
    .bind(filter.target_id)
    .bind(page.after)
    .bind(page.limit + 1)
    .fetch_all(exec)
    .await?;
    Ok(Page::from_overfetch(rows, page.limit, |r| r.id))
}

/// Every relation touching an entity, both directions, with the entity at the other end.
pub async fn neighbours(exec: impl PgExecutor<'_>, entity_id: i64) -> StoreResult<Vec<Neighbour>> {
    Ok(sqlx::query_as(
        "SELECT r.id AS relation_id, rt.name AS relation_type, r.source_id = $1 AS outgoing, \
                o.id AS other_id, o.entity_type AS other_type, o.name AS other_name, o.label AS other_label \
         FROM relations r JOIN entities rt ON rt.id = r.relation_type_id \
         JOIN entities o ON o.id = CASE WHEN r.source_id = $1 THEN r.target_id ELSE r.source_id END \
         WHERE r.source_id = $1 OR r.target_id = $1 \
         ORDER BY rt.name, NOT (r.source_id = $1), o.entity_type, o.name",
    )
    .bind(entity_id)
    .fetch_all(exec)
    .await?)
}

pub async fn delete_relation(conn: &mut PgConnection, id: i64) -> StoreResult<Relation> {
    let relation = require_relation(&mut *conn, id).await?;
    sqlx::query("DELETE FROM relations WHERE id = $1")
        .bind(id)
        .execute(conn)
        .await?;
    Ok(relation)
}

/// Removes a relation by its ends; returns whether one existed.
pub async fn unrelate(
    conn: &mut PgConnection,
    relation_type: &str,
    source_id: i64,
    target_id: i64,
) -> StoreResult<bool> {
    let type_id = relation_type_id(&mut *conn, relation_type).await?;
    let result = sqlx::query(
        "DELETE FROM relations WHERE relation_type_id = $1 AND source_id = $2 AND target_id = $3",
    )
    .bind(type_id)
    .bind(source_id)
    .bind(target_id)
    .execute(conn)
    .await?;
    Ok(result.rows_affected() > 0)
}

/// Ids at the far end of `relation_type` relations leaving `source_id`.
pub async fn targets_of(
    exec: impl PgExecutor<'_>,
    relation_type: &str,
    source_id: i64,
) -> StoreResult<Vec<i64>> {
    Ok(sqlx::query_scalar(
        "SELECT r.target_id FROM relations r JOIN entities rt ON rt.id = r.relation_type_id \
         WHERE rt.entity_type = 'relation_type' AND rt.name = $1 AND r.source_id = $2 ORDER BY r.target_id",
    )
    .bind(relation_type)
    .bind(source_id)
    .fetch_all(exec)
    .await?)
}
