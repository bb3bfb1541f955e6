use std::collections::{BTreeMap, HashMap};

use serde::Serialize;
use serde_json::Value;
use sqlx::{PgConnection, PgExecutor};
use time::OffsetDateTime;

use super::ident::check_ident;
use super::{Page, PageRequest, StoreError, StoreResult};

pub type Properties = BTreeMap<String, Value>;

#[derive(Debug, Clone, PartialEq, Serialize, sqlx::FromRow)]
pub struct Entity {
    pub id: i64,
    pub entity_type: String,
    pub name: String,
    pub label: String,
    pub sort_order: i32,
    pub is_active: bool,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub updated_at: OffsetDateTime,
}

impl Entity {
    /// The label when set, otherwise the name.
    pub fn display(&self) -> &str {
        if self.label.is_empty() {
            &self.name
        } else {
            &self.label
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct EntityWithProperties {
    #[serde(flatten)]
    pub entity: Entity,
    pub properties: Properties,
}

#[derive(Debug, Clone, Default)]
pub struct NewEntity {
    pub entity_type: String,
    pub name: String,
    pub label: String,
    pub sort_order: i32,
    pub properties: Properties,
}

impl NewEntity {
    pub fn new(entity_type: &str, name: &str) -> Self {
        NewEntity {
            entity_type: entity_type.into(),
            name: name.into(),
            ..Default::default()
        }
    }

    pub fn label(mut self, label: &str) -> Self {
        self.label = label.into();
        self
    }

    pub fn property(mut self, key: &str, value: impl Into<Value>) -> Self {
        self.properties.insert(key.into(), value.into());
        self
    }
}

/// A partial update; `properties` maps keys to a new value, or `None` to remove the key.
#[derive(Debug, Clone, Default)]
pub struct EntityPatch {
    pub name: Option<String>,
    pub label: Option<String>,
    pub sort_order: Option<i32>,
    pub is_active: Option<bool>,
    pub properties: BTreeMap<String, Option<Value>>,
}

#[derive(Debug, Clone, Default)]
pub struct EntityFilter {
    pub entity_type: Option<String>,
    /// Case-insensitive substring of name or label.
    pub search: Option<String>,
    pub active_only: bool,
    /// Entity types left out (those the reader may not see).
    pub exclude_types: Vec<String>,
}

const ENTITY_COLUMNS: &str =
    "id, entity_type, name, label, sort_order, is_active, created_at, updated_at";

fn check_name(name: &str) -> StoreResult<()> {
    let len = name.chars().count();
    if len == 0 || len > 200 || name.trim() != name || name.chars().any(char::is_control) {
        return Err(StoreError::Invalid(
            "name must be 1 to 200 characters, without surrounding spaces or control characters"
                .into(),
        ));
    }
    Ok(())
}

fn check_label(label: &str) -> StoreResult<()> {
    if label.chars().count() > 500 || label.chars().any(char::is_control) {
        return Err(StoreError::Invalid(
            "label must be at most 500 characters, without control characters".into(),
        ));
    }
    Ok(())
}

pub async fn create_entity(
    conn: &mut PgConnection,
    new: &NewEntity,
) -> StoreResult<EntityWithProperties> {
    check_ident("entity type", &new.entity_type)?;
    check_name(&new.name)?;
    check_label(&new.label)?;
    for key in new.properties.keys() {
        check_ident("property key", key)?;
    }
    let entity: Entity = sqlx::query_as(&format!(
        "INSERT INTO entities (entity_type, name, label, sort_order) VALUES ($1, $2, $3, $4) \
         RETURNING {ENTITY_COLUMNS}"
    ))
    .bind(&new.entity_type)
    .bind(&new.name)
    .bind(&new.label)
    .bind(new.sort_order)
    .fetch_one(&mut *conn)
    .await
    .map_err(|e| match StoreError::from(e) {
        StoreError::Conflict(_) => StoreError::Conflict(format!(
            "a {} named {:?} already exists",
            new.entity_type, new.name
        )),
        other => other,
    })?;
    for (key, value) in &new.properties {
        put_property(&mut *conn, entity.id, key, value).await?;
    }
    Ok(EntityWithProperties {
        entity,
        properties: new.properties.clone(),
    })
}

async fn put_property(
    conn: &mut PgConnection,
    entity_id: i64,
    key: &str,
    value: &Value,
) -> StoreResult<bool> {
    // IS DISTINCT FROM keeps an unchanged value (and its updated_at) untouched.
    let result = sqlx::query(
        "INSERT INTO entity_properties (entity_id, key, value) VALUES ($1, $2, $3) \
         ON CONFLICT (entity_id, key) DO UPDATE SET value = EXCLUDED.value, updated_at = now() \
         WHERE entity_properties.value IS DISTINCT FROM EXCLUDED.value",
    )
    .bind(entity_id)
    .bind(key)
    .bind(value)
    .execute(conn)
    .await?;
    Ok(result.rows_affected() > 0)
}

pub async fn get_entity(
    db: impl sqlx::Acquire<'_, Database = sqlx::Postgres>,
    id: i64,
) -> StoreResult<Option<EntityWithProperties>> {
    let mut conn = db.acquire().await?;
    get_entity_in(&mut conn, id).await
}

/// [`get_entity`] on a connection the caller holds (e.g. inside a transaction).
pub async fn get_entity_in(
    conn: &mut PgConnection,
    id: i64,
) -> StoreResult<Option<EntityWithProperties>> {
    // One round trip: the properties come aggregated into one JSON object beside the row.
    let row: Option<EntityRowWithProperties> = sqlx::query_as(ENTITY_WITH_PROPERTIES_BY_ID)
        .bind(id)
        .fetch_optional(&mut *conn)
        .await?;
    Ok(row.map(EntityWithProperties::from))
}

/// An entity with its properties as one JSON object (`{}` when it has none), for the
/// entities a `WHERE` clause picks.
macro_rules! entities_with_properties_where {
    ($condition:literal) => {
        concat!(
            "SELECT e.id, e.entity_type, e.name, e.label, \
             e.sort_order, e.is_active, e.created_at, e.updated_at, \
             COALESCE((SELECT jsonb_object_agg(p.key, p.value) FROM entity_properties p \
                       WHERE p.entity_id = e.id), '{}'::jsonb) AS properties \
             FROM entities e WHERE ",
            $condition
        )
    };
}

/// One entity by id: one read alone (`ahlt bench http` runs it with pgbench as the
/// reference for the app's reads, which go through [`super::EntityReads`]).
pub const ENTITY_WITH_PROPERTIES_BY_ID: &str = entities_with_properties_where!("e.id = $1");

/// Many entities by id at once (what coalesced reads run).
pub const ENTITIES_WITH_PROPERTIES_BY_IDS: &str = entities_with_properties_where!("e.id = ANY($1)");

/// The entities among `ids` that exist, with their properties, in no particular order.
pub async fn get_entities_in(
    conn: &mut PgConnection,
    ids: &[i64],
) -> StoreResult<Vec<EntityWithProperties>> {
    let rows: Vec<EntityRowWithProperties> = sqlx::query_as(ENTITIES_WITH_PROPERTIES_BY_IDS)
        .bind(ids)
        .fetch_all(&mut *conn)
        .await?;
    Ok(rows.into_iter().map(EntityWithProperties::from).collect())
}

#[derive(sqlx::FromRow)]
struct EntityRowWithProperties {
    #[sqlx(flatten)]
    entity: Entity,
    properties: sqlx::types::Json<Properties>,
}

impl From<EntityRowWithProperties> for EntityWithProperties {
    fn from(row: EntityRowWithProperties) -> Self {
        EntityWithProperties {
            entity: row.entity,
            properties: row.properties.0,
        }
    }
}

/// Like [`get_entity`] but an absent entity is a [`StoreError::NotFound`].
pub async fn require_entity(
    db: impl sqlx::Acquire<'_, Database = sqlx::Postgres>,
    id: i64,
) -> StoreResult<EntityWithProperties> {
    get_entity(db, id)
        .await?
        .ok_or_else(|| StoreError::NotFound(format!("entity {id}")))
}

/// [`require_entity`] on a connection the caller holds (e.g. inside a transaction).
pub async fn require_entity_in(
    conn: &mut PgConnection,
    id: i64,
) -> StoreResult<EntityWithProperties> {
    get_entity_in(conn, id)
        .await?
        .ok_or_else(|| StoreError::NotFound(format!("entity {id}")))
}

pub async fn find_entity(
    exec: impl PgExecutor<'_>,
    entity_type: &str,
    name: &str,
) -> StoreResult<Option<Entity>> {
    Ok(sqlx::query_as(&format!(
        "SELECT {ENTITY_COLUMNS} FROM entities WHERE entity_type = $1 AND name = $2"
    ))
    .bind(entity_type)
    .bind(name)
    .fetch_optional(exec)
    .await?)
}

pub async fn list_entities(
    exec: impl PgExecutor<'_>,
    filter: &EntityFilter,
    page: PageRequest,
) -> StoreResult<Page<Entity>> {
    if let Some(t) = &filter.entity_type {
        check_ident("entity type", t)?;
    }
    let rows: Vec<Entity> = sqlx::query_as(&format!(
        "SELECT {ENTITY_COLUMNS} FROM entities \
         WHERE ($1::text IS NULL OR entity_type = $1) \
           AND ($2::text IS NULL OR name ILIKE '%' || $2 || '%' OR label ILIKE '%' || $2 || '%') \
           AND (NOT $3 OR is_active) \
           AND ($4::bigint IS NULL OR id > $4) \
           AND NOT (entity_type = ANY($6)) \
         ORDER BY id LIMIT $5"
    ))
    .bind(&filter.entity_type)
    .bind(filter.search.as_deref().map(escape_like))
    .bind(filter.active_only)
    .bind(page.after)
    .bind(page.limit + 1)
    .bind(&filter.exclude_types)
    .fetch_all(exec)
    .await?;
    Ok(Page::from_overfetch(rows, page.limit, |e| e.id))
}

/// All entities of a type, in display order. For small, bounded types (roles, ToRs, ...).
pub async fn entities_of_type(
    exec: impl PgExecutor<'_>,
    entity_type: &str,
) -> StoreResult<Vec<Entity>> {
    Ok(sqlx::query_as(&format!(
        "SELECT {ENTITY_COLUMNS} FROM entities WHERE entity_type = $1 ORDER BY sort_order, name"
    ))
    .bind(entity_type)
    .fetch_all(exec)
    .await?)
}

fn escape_like(s: &str) -> String {
    s.replace('\\', "\\\\")
        .replace('%', "\\%")
        .replace('_', "\\_")
}

pub async fn properties_of(
    exec: impl PgExecutor<'_>,
    ids: &[i64],
) -> StoreResult<HashMap<i64, Properties>> {
    let rows: Vec<(i64, String, Value)> = sqlx::query_as(
        "SELECT entity_id, key, value FROM entity_properties WHERE entity_id = ANY($1) ORDER BY key",
    )
    .bind(ids)
    .fetch_all(exec)
    .await?;
    let mut map: HashMap<i64, Properties> = HashMap::new();
    for (id, key, value) in rows {
        map.entry(id).or_default().insert(key, value);
    }
    Ok(map)
}

/// Attaches properties to a list of entities with one query.
pub async fn with_properties(
    exec: impl PgExecutor<'_>,
    entities: Vec<Entity>,
) -> StoreResult<Vec<EntityWithProperties>> {
    let ids: Vec<i64> = entities.iter().map(|e| e.id).collect();
    let mut props = properties_of(exec, &ids).await?;
    Ok(entities
        .into_iter()
        .map(|entity| EntityWithProperties {
            properties: props.remove(&entity.id).unwrap_or_default(),
            entity,
        })
        .collect())
}

/// Applies a patch; returns the entity as it now is. Only real changes bump `updated_at`.
pub async fn update_entity(
    conn: &mut PgConnection,
    id: i64,
    patch: &EntityPatch,
) -> StoreResult<EntityWithProperties> {
    if let Some(name) = &patch.name {
        check_name(name)?;
    }
    if let Some(label) = &patch.label {
        check_label(label)?;
    }
    for key in patch.properties.keys() {
        check_ident("property key", key)?;
    }
    let exists: Option<i64> =
        sqlx::query_scalar("SELECT id FROM entities WHERE id = $1 FOR UPDATE")
            .bind(id)
            .fetch_optional(&mut *conn)
            .await?;
    if exists.is_none() {
        return Err(StoreError::NotFound(format!("entity {id}")));
    }
    let mut changed = sqlx::query(
        "UPDATE entities SET name = COALESCE($2, name), label = COALESCE($3, label), \
             sort_order = COALESCE($4, sort_order), is_active = COALESCE($5, is_active) \
         WHERE id = $1 AND (($2::text IS NOT NULL AND $2 <> name) OR ($3::text IS NOT NULL AND $3 <> label) \
             OR ($4::int IS NOT NULL AND $4 <> sort_order) OR ($5::bool IS NOT NULL AND $5 <> is_active))",
    )
    .bind(id)
    .bind(&patch.name)
    .bind(&patch.label)
    .bind(patch.sort_order)
    .bind(patch.is_active)
    .execute(&mut *conn)
    .await
    .map_err(|e| match StoreError::from(e) {
        StoreError::Conflict(_) => StoreError::Conflict("another entity of this type has that name".into()),
        other => other,
    })?
    .rows_affected()
        > 0;
    for (key, value) in &patch.properties {
        changed |= match value {
            Some(value) => put_property(&mut *conn, id, key, value).await?,
            None => delete_property(&mut *conn, id, key).await?,
        };
    }
    if changed {
        sqlx::query("UPDATE entities SET updated_at = now() WHERE id = $1")
            .bind(id)
            .execute(&mut *conn)
            .await?;
    }
    require_entity_in(conn, id).await
}

pub async fn set_property(
    conn: &mut PgConnection,
    id: i64,
    key: &str,
    value: &Value,
) -> StoreResult<bool> {
    check_ident("property key", key)?;
    put_property(conn, id, key, value).await
}

pub async fn delete_property(conn: &mut PgConnection, id: i64, key: &str) -> StoreResult<bool> {
    let result = sqlx::query("DELETE FROM entity_properties WHERE entity_id = $1 AND key = $2")
        .bind(id)
        .bind(key)
        .execute(conn)
        .await?;
    Ok(result.rows_affected() > 0)
}

/// Deletes an entity with its properties and relations. Relation types in use cannot be deleted.
pub async fn delete_entity(conn: &mut PgConnection, id: i64) -> StoreResult<Entity> {
    sqlx::query_as::<_, Entity>(&format!(
        "DELETE FROM entities WHERE id = $1 RETURNING {ENTITY_COLUMNS}"
    ))
    .bind(id)
    .fetch_optional(conn)
    .await
    .map_err(|e| match StoreError::from(e) {
        StoreError::Invalid(_) => {
            StoreError::Conflict(format!("entity {id} is a relation type still in use"))
        }
        other => other,
    })?
    .ok_or_else(|| StoreError::NotFound(format!("entity {id}")))
}

/// Entity types with their counts, for the entity browser.
pub async fn entity_type_counts(exec: impl PgExecutor<'_>) -> StoreResult<Vec<(String, i64)>> {
    Ok(sqlx::query_as(
        "SELECT entity_type, count(*) FROM entities GROUP BY entity_type ORDER BY entity_type",
    )
    .fetch_all(exec)
    .await?)
}
