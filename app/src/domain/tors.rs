//! ToRs (terms of reference: committees, boards), their functions (positions with capability
//! flags) and the users who fill them.
//!
//! A ToR is an entity of type `tor` (name = slug, label = title, property `description`), with an
//! optional `reports_to` relation to a parent ToR. A function is a `tor_function` entity named
//! `<tor slug>/<function slug>` with properties `capabilities` (JSON array) and `description`,
//! linked `belongs_to_tor` its ToR. Users are linked `fills_position` to functions.

use std::collections::BTreeSet;

use serde::Serialize;
use serde_json::json;
use sqlx::{PgConnection, PgExecutor};

use super::audit::{self, Actor};
use super::{Capability, DomainError, DomainResult, UserRef, kind, rel};
use crate::store::{self, EntityPatch, NewEntity};

#[derive(Debug, Clone, PartialEq, Serialize, sqlx::FromRow)]
pub struct TorSummary {
    pub id: i64,
    pub name: String,
    pub label: String,
    pub description: String,
    pub is_active: bool,
    pub parent_id: Option<i64>,
    pub function_count: i64,
    pub member_count: i64,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TorFunction {
    pub id: i64,
    pub tor_id: i64,
    /// The slug within its ToR.
    pub slug: String,
    pub label: String,
    pub description: String,
    pub capabilities: Vec<Capability>,
    pub holders: Vec<UserRef>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TorDetail {
    #[serde(flatten)]
    pub tor: TorSummary,
    pub functions: Vec<TorFunction>,
}

#[derive(Debug, Clone, Default)]
pub struct NewTor {
    pub name: String,
    pub label: String,
    pub description: String,
    pub parent_id: Option<i64>,
}

#[derive(Debug, Clone, Default)]
pub struct TorUpdate {
    pub label: Option<String>,
    pub description: Option<String>,
    /// `Some(None)` detaches the ToR from its parent.
    pub parent_id: Option<Option<i64>>,
    pub is_active: Option<bool>,
}

#[derive(Debug, Clone, Default)]
pub struct NewFunction {
    pub slug: String,
    pub label: String,
    pub description: String,
    pub capabilities: BTreeSet<Capability>,
}

#[derive(Debug, Clone, Default)]
pub struct FunctionUpdate {
    pub label: Option<String>,
    pub description: Option<String>,
    pub capabilities: Option<BTreeSet<Capability>>,
}

/// ToR and function slugs: `[a-z0-9][a-z0-9_-]{0,62}`.
pub fn check_slug(what: &str, slug: &str) -> DomainResult<()> {
    let mut chars = slug.chars();
    let ok = matches!(chars.next(), Some('a'..='z' | '0'..='9'))
        && slug.len() <= 63
        && chars.all(|c| matches!(c, 'a'..='z' | '0'..='9' | '_' | '-'));
    if ok {
        Ok(())
    } else {
        Err(DomainError::Invalid(format!(
            "{what} {:?} must be lowercase letters, digits, '-' or '_' (at most 63, starting with a letter or digit)",
            crate::text::clip(slug)
        )))
    }
}

const TOR_SELECT: &str = "SELECT t.id, t.name, t.label, \
       COALESCE((SELECT p.value #>> '{}' FROM entity_properties p WHERE p.entity_id = t.id AND p.key = 'description'), '') AS description, \
       t.is_active, \
       (SELECT x.target_id FROM relations x JOIN entities rt ON rt.id = x.relation_type_id AND rt.name = 'reports_to' \
          WHERE x.source_id = t.id LIMIT 1) AS parent_id, \
       (SELECT count(*) FROM relations x JOIN entities rt ON rt.id = x.relation_type_id AND rt.name = 'belongs_to_tor' \
          WHERE x.target_id = t.id) AS function_count, \
       (SELECT count(DISTINCT fp.source_id) FROM relations x \
          JOIN entities rt ON rt.id = x.relation_type_id AND rt.name = 'belongs_to_tor' \
          JOIN relations fp ON fp.target_id = x.source_id \
          JOIN entities ft ON ft.id = fp.relation_type_id AND ft.name = 'fills_position' \
          WHERE x.target_id = t.id) AS member_count \
     FROM entities t WHERE t.entity_type = 'tor'";

pub async fn list(exec: impl PgExecutor<'_>) -> DomainResult<Vec<TorSummary>> {
    Ok(sqlx::query_as(&format!(
        "{TOR_SELECT} ORDER BY t.sort_order, t.label, t.name"
    ))
    .fetch_all(exec)
    .await?)
}

pub async fn summary(exec: impl PgExecutor<'_>, id: i64) -> DomainResult<TorSummary> {
    sqlx::query_as(&format!("{TOR_SELECT} AND t.id = $1"))
        .bind(id)
        .fetch_optional(exec)
        .await?
        .ok_or_else(|| DomainError::NotFound(format!("ToR {id}")))
}

#[derive(sqlx::FromRow)]
struct FunctionRow {
    id: i64,
    tor_id: i64,
    name: String,
    label: String,
    description: String,
    capabilities: serde_json::Value,
}

#[derive(sqlx::FromRow)]
struct HolderRow {
    function_id: i64,
    id: i64,
    username: String,
    display_name: String,
}

/// Functions of the given ToRs (all ToRs when `tor_ids` is `None`), with their holders.
pub async fn functions(
    db: impl sqlx::Acquire<'_, Database = sqlx::Postgres>,
    tor_ids: Option<&[i64]>,
) -> DomainResult<Vec<TorFunction>> {
    let mut conn = db.acquire().await?;
    functions_in(&mut conn, tor_ids).await
}

/// [`functions`] on a connection the caller holds (e.g. inside a transaction).
pub async fn functions_in(
    conn: &mut PgConnection,
    tor_ids: Option<&[i64]>,
) -> DomainResult<Vec<TorFunction>> {
    let rows: Vec<FunctionRow> = sqlx::query_as(
        "SELECT f.id, x.target_id AS tor_id, f.name, f.label, \
           COALESCE((SELECT p.value #>> '{}' FROM entity_properties p WHERE p.entity_id = f.id AND p.key = 'description'), '') AS description, \
           COALESCE((SELECT p.value FROM entity_properties p WHERE p.entity_id = f.id AND p.key = 'capabilities'), '[]'::jsonb) AS capabilities \
         FROM entities f \
         JOIN relations x ON x.source_id = f.id \
         JOIN entities rt ON rt.id = x.relation_type_id AND rt.name = 'belongs_to_tor' \
         WHERE f.entity_type = 'tor_function' AND ($1::bigint[] IS NULL OR x.target_id = ANY($1)) \
         ORDER BY x.target_id, f.sort_order, f.label, f.id",
    )
    .bind(tor_ids)
    .fetch_all(&mut *conn)
    .await?;
    let ids: Vec<i64> = rows.iter().map(|r| r.id).collect();
    let holders: Vec<HolderRow> = sqlx::query_as(
        "SELECT x.target_id AS function_id, u.id, u.name AS username, \
                CASE WHEN u.label = '' THEN u.name ELSE u.label END AS display_name \
         FROM relations x JOIN entities rt ON rt.id = x.relation_type_id AND rt.name = 'fills_position' \
         JOIN entities u ON u.id = x.source_id \
         WHERE x.target_id = ANY($1) ORDER BY u.name",
    )
    .bind(&ids)
    .fetch_all(&mut *conn)
    .await?;
    Ok(rows
        .into_iter()
        .map(|r| {
            let slug = r
                .name
                .rsplit_once('/')
                .map_or(r.name.as_str(), |(_, s)| s)
                .to_owned();
            // Unknown names (e.g. written by hand through the generic API) grant nothing.
            let capabilities = r
                .capabilities
                .as_array()
                .map(|a| {
                    a.iter()
                        .filter_map(|v| v.as_str()?.parse().ok())
                        .collect::<BTreeSet<Capability>>()
                })
                .unwrap_or_default()
                .into_iter()
                .collect();
            TorFunction {
                id: r.id,
                tor_id: r.tor_id,
                slug,
                label: r.label,
                description: r.description,
                capabilities,
                holders: holders
                    .iter()
                    .filter(|h| h.function_id == r.id)
                    .map(|h| UserRef {
                        id: h.id,
                        username: h.username.clone(),
                        display_name: h.display_name.clone(),
                    })
                    .collect(),
            }
        })
        .collect())
}

pub async fn detail(
    db: impl sqlx::Acquire<'_, Database = sqlx::Postgres>,
    id: i64,
) -> DomainResult<TorDetail> {
    let mut conn = db.acquire().await?;
    detail_in(&mut conn, id).await
}

/// [`detail`] on a connection the caller holds (e.g. inside a transaction).
pub async fn detail_in(conn: &mut PgConnection, id: i64) -> DomainResult<TorDetail> {
    let tor = summary(&mut *conn, id).await?;
    let functions = functions_in(&mut *conn, Some(&[id])).await?;
    Ok(TorDetail { tor, functions })
}

async fn check_parent(
    conn: &mut PgConnection,
    tor_id: Option<i64>,
    parent_id: i64,
) -> DomainResult<()> {
    let parent = store::get_entity_in(&mut *conn, parent_id).await?;
    if parent.is_none_or(|p| p.entity.entity_type != kind::TOR) {
        return Err(DomainError::Invalid(format!(
            "parent {parent_id} is not a ToR"
        )));
    }
    if let Some(tor_id) = tor_id {
        super::lock_hierarchy(conn, rel::REPORTS_TO).await?;
        let cyclic: bool = sqlx::query_scalar(
            "WITH RECURSIVE up(id) AS (SELECT $2::bigint UNION \
               SELECT x.target_id FROM up JOIN relations x ON x.source_id = up.id \
               JOIN entities rt ON rt.id = x.relation_type_id AND rt.name = 'reports_to') \
             SELECT EXISTS (SELECT 1 FROM up WHERE id = $1)",
        )
        .bind(tor_id)
        .bind(parent_id)
        .fetch_one(&mut *conn)
        .await?;
        if cyclic {
            return Err(DomainError::Invalid(
                "a ToR cannot report to itself or to one below it".into(),
            ));
        }
    }
    Ok(())
}

pub async fn create(
    conn: &mut PgConnection,
    actor: &Actor,
    new: &NewTor,
) -> DomainResult<TorSummary> {
    check_slug("ToR name", &new.name)?;
    // The title is required, as on edit; callers that have none pass the name.
    let label = new.label.trim().to_owned();
    if label.is_empty() {
        return Err(DomainError::Invalid("the title must not be empty".into()));
    }
    super::check_label("the title", &label)?;
    if let Some(parent) = new.parent_id {
        check_parent(conn, None, parent).await?;
    }
    let entity = NewEntity::new(kind::TOR, &new.name)
        .label(&label)
        .property("description", new.description.trim());
    let created = store::create_entity(conn, &entity)
        .await
        .map_err(|e| match e {
            store::StoreError::Conflict(_) => {
                DomainError::Conflict(format!("a ToR named {:?} already exists", new.name))
            }
            other => other.into(),
        })?;
    let id = created.entity.id;
    if let Some(parent) = new.parent_id {
        store::relate(conn, rel::REPORTS_TO, id, parent, &Default::default()).await?;
    }
    audit::record(
        conn,
        actor,
        "tor.create",
        Some((kind::TOR, id)),
        json!({"name": new.name, "label": label}),
    )
    .await?;
    summary(&mut *conn, id).await
}

pub async fn update(
    conn: &mut PgConnection,
    actor: &Actor,
    id: i64,
    update: &TorUpdate,
) -> DomainResult<TorSummary> {
    let before = summary(&mut *conn, id).await?;
    if let Some(label) = &update.label {
        if label.trim().is_empty() {
            return Err(DomainError::Invalid("the title must not be empty".into()));
        }
        super::check_label("the title", label.trim())?;
    }
    let mut patch = EntityPatch {
        label: update.label.as_ref().map(|l| l.trim().to_owned()),
        is_active: update.is_active,
        ..Default::default()
    };
    if let Some(d) = &update.description {
        patch
            .properties
            .insert("description".into(), Some(json!(d.trim())));
    }
    store::update_entity(conn, id, &patch).await?;
    if let Some(parent) = update.parent_id {
        if let Some(p) = parent {
            check_parent(conn, Some(id), p).await?;
        }
        if parent != before.parent_id {
            if let Some(old) = before.parent_id {
                store::unrelate(conn, rel::REPORTS_TO, id, old).await?;
            }
            if let Some(p) = parent {
                store::relate(conn, rel::REPORTS_TO, id, p, &Default::default()).await?;
            }
        }
    }
    let after = summary(&mut *conn, id).await?;
    if after != before {
        audit::record(conn, actor, "tor.update", Some((kind::TOR, id)), json!({"label": after.label, "parent_id": after.parent_id, "is_active": after.is_active}))
            .await?;
    }
    Ok(after)
}

/// Deletes a ToR and its functions (and so who filled them).
pub async fn delete(conn: &mut PgConnection, actor: &Actor, id: i64) -> DomainResult<()> {
    let tor = summary(&mut *conn, id).await?;
    let items = super::pipeline::tor_item_count(&mut *conn, id).await?;
    if items > 0 {
        return Err(DomainError::Conflict(format!(
            "this ToR has {items} suggestions, proposals or meetings; delete them first (held meetings are part of the record: deactivate the ToR instead)"
        )));
    }
    let function_ids: Vec<i64> = functions_in(&mut *conn, Some(&[id]))
        .await?
        .into_iter()
        .map(|f| f.id)
        .collect();
    sqlx::query("DELETE FROM entities WHERE id = ANY($1)")
        .bind(&function_ids)
        .execute(&mut *conn)
        .await?;
    store::delete_entity(conn, id).await?;
    audit::record(
        conn,
        actor,
        "tor.delete",
        Some((kind::TOR, id)),
        json!({"name": tor.name, "functions": function_ids.len()}),
    )
    .await?;
    Ok(())
}

pub async fn function(
    db: impl sqlx::Acquire<'_, Database = sqlx::Postgres>,
    function_id: i64,
) -> DomainResult<TorFunction> {
    let mut conn = db.acquire().await?;
    function_in(&mut conn, function_id).await
}

/// [`function`] on a connection the caller holds (e.g. inside a transaction).
pub async fn function_in(conn: &mut PgConnection, function_id: i64) -> DomainResult<TorFunction> {
    let tor_id: Option<i64> = sqlx::query_scalar(
        "SELECT x.target_id FROM relations x JOIN entities rt ON rt.id = x.relation_type_id AND rt.name = 'belongs_to_tor' \
         JOIN entities f ON f.id = x.source_id AND f.entity_type = 'tor_function' WHERE x.source_id = $1",
    )
    .bind(function_id)
    .fetch_optional(&mut *conn)
    .await?;
    let tor_id = tor_id.ok_or_else(|| DomainError::NotFound(format!("function {function_id}")))?;
    functions_in(&mut *conn, Some(&[tor_id]))
        .await?
        .into_iter()
        .find(|f| f.id == function_id)
        .ok_or_else(|| DomainError::NotFound(format!("function {function_id}")))
}

fn capabilities_json(caps: &BTreeSet<Capability>) -> serde_json::Value {
    json!(caps.iter().map(|c| c.as_str()).collect::<Vec<_>>())
}

pub async fn add_function(
    conn: &mut PgConnection,
    actor: &Actor,
    tor_id: i64,
    new: &NewFunction,
) -> DomainResult<TorFunction> {
    let tor = summary(&mut *conn, tor_id).await?;
    check_slug("function name", &new.slug)?;
    let label = if new.label.trim().is_empty() {
        new.slug.clone()
    } else {
        new.label.trim().to_owned()
    };
    super::check_label("the function's label", &label)?;
    let entity = NewEntity::new(kind::TOR_FUNCTION, &format!("{}/{}", tor.name, new.slug))
        .label(&label)
        .property("description", new.description.trim())
        .property("capabilities", capabilities_json(&new.capabilities));
    let created = store::create_entity(conn, &entity)
        .await
        .map_err(|e| match e {
            store::StoreError::Conflict(_) => DomainError::Conflict(format!(
                "{} already has a function {:?}",
                tor.label, new.slug
            )),
            other => other.into(),
        })?;
    let id = created.entity.id;
    store::relate(conn, rel::BELONGS_TO_TOR, id, tor_id, &Default::default()).await?;
    audit::record(
        conn,
        actor,
        "tor.function.create",
        Some((kind::TOR_FUNCTION, id)),
        json!({"tor_id": tor_id, "slug": new.slug, "capabilities": new.capabilities}),
    )
    .await?;
    function_in(&mut *conn, id).await
}

pub async fn update_function(
    conn: &mut PgConnection,
    actor: &Actor,
    function_id: i64,
    update: &FunctionUpdate,
) -> DomainResult<TorFunction> {
    let before = function_in(&mut *conn, function_id).await?;
    let mut patch = EntityPatch {
        label: update.label.as_ref().map(|l| l.trim().to_owned()),
        ..Default::default()
    };
    if let Some(d) = &update.description {
        patch
            .properties
            .insert("description".into(), Some(json!(d.trim())));
    }
    if let Some(caps) = &update.capabilities {
        patch
            .properties
            .insert("capabilities".into(), Some(capabilities_json(caps)));
    }
    store::update_entity(conn, function_id, &patch).await?;
    let after = function_in(&mut *conn, function_id).await?;
    if after != before {
        audit::record(
            conn,
            actor,
            "tor.function.update",
            Some((kind::TOR_FUNCTION, function_id)),
            json!({"label": after.label, "capabilities": after.capabilities}),
        )
        .await?;
    }
    Ok(after)
}

pub async fn delete_function(
    conn: &mut PgConnection,
    actor: &Actor,
    function_id: i64,
) -> DomainResult<()> {
    let f = function_in(&mut *conn, function_id).await?;
    store::delete_entity(conn, function_id).await?;
    audit::record(
        conn,
        actor,
        "tor.function.delete",
        Some((kind::TOR_FUNCTION, function_id)),
        json!({"tor_id": f.tor_id, "slug": f.slug}),
    )
    .await?;
    Ok(())
}

/// Puts a user into a position; assigning twice is a no-op.
pub async fn assign(
    conn: &mut PgConnection,
    actor: &Actor,
    function_id: i64,
    user_id: i64,
) -> DomainResult<TorFunction> {
    function_in(&mut *conn, function_id).await?;
    let user = super::users::require(&mut *conn, user_id).await?;
    // Atomic: of concurrent identical assignments one inserts and audits, the rest no-op.
    if store::relate_if_absent(conn, rel::FILLS_POSITION, user_id, function_id).await? {
        audit::record(
            conn,
            actor,
            "tor.position.assign",
            Some((kind::TOR_FUNCTION, function_id)),
            json!({"user_id": user_id, "username": user.username}),
        )
        .await?;
    }
    function_in(&mut *conn, function_id).await
}

pub async fn vacate(
    conn: &mut PgConnection,
    actor: &Actor,
    function_id: i64,
    user_id: i64,
) -> DomainResult<TorFunction> {
    function_in(&mut *conn, function_id).await?;
    if store::unrelate(conn, rel::FILLS_POSITION, user_id, function_id).await? {
        audit::record(
            conn,
            actor,
            "tor.position.vacate",
            Some((kind::TOR_FUNCTION, function_id)),
            json!({"user_id": user_id}),
        )
        .await?;
    }
    function_in(&mut *conn, function_id).await
}
