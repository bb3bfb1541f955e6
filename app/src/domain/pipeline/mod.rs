//! The meeting pipeline: suggestions → proposals → the agenda queue → meetings (agenda points,
//! roll call, decisions) → minutes (sections, action items).
//!
//! Every item is an entity with a `status` property; which status may follow which, and the
//! capability each move needs on the item's ToR, is data ([`workflow`], seeded from upstream
//! ahlt's ontology). Each item reaches its ToR through one chain of relations (a suggestion is
//! `suggested_to` a ToR, an agenda point is `agenda_of` a meeting, which is `meeting_of` a
//! ToR, ...), so [`tor_of`] finds the ToR of any item and every check is the ToR's ABAC.
//!
//! Services take the acting [`Actor`] and check its capability inside the caller's
//! transaction; the system actor (seed, CLI) is not checked.

pub mod agenda;
pub mod coa;
pub mod dashboard;
pub mod items;
pub mod meetings;
pub mod minutes;
pub mod workflow;
mod workflow_defaults;

use serde::Serialize;
use serde_json::{Value, json};
use sqlx::{PgConnection, PgExecutor};
use time::OffsetDateTime;

use super::audit::{self, Actor};
use super::{Capability, DomainError, DomainResult, abac, kind, rel};
use crate::store::{self, NewEntity, Page, PageRequest, Properties};

/// Property keys shared by pipeline items.
pub mod key {
    pub const STATUS: &str = "status";
    pub const DESCRIPTION: &str = "description";
    /// Why the last move was made (a rejection's reason, a decision's text).
    pub const OUTCOME: &str = "outcome";
}

/// Relations leading from an item towards its ToR (child -> parent).
const PARENT_RELATIONS: [&str; 10] = [
    rel::SUGGESTED_TO,
    rel::SUBMITTED_TO,
    rel::MEETING_OF,
    rel::AGENDA_OF,
    rel::MINUTES_OF,
    rel::SECTION_OF,
    rel::ACTION_OF,
    rel::DECIDES,
    rel::COA_FOR,
    rel::OPINION_ON,
];

/// One pipeline item as the API and pages show it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Item {
    pub id: i64,
    pub kind: String,
    pub title: String,
    pub status: String,
    pub tor_id: i64,
    pub description: String,
    pub outcome: String,
    /// Type-specific fields (a meeting's date, an action item's due date, ...).
    pub properties: Properties,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
}

impl Item {
    pub fn text(&self, key: &str) -> String {
        text(self.properties.get(key))
    }
}

/// A stored value as text: strings as they are, anything else printed, missing empty.
pub fn text(value: Option<&Value>) -> String {
    match value {
        None | Some(Value::Null) => String::new(),
        Some(Value::String(s)) => s.clone(),
        Some(other) => other.to_string(),
    }
}

/// A long text (description, minutes section): at most 20 000 characters.
pub fn check_text(what: &str, value: &str) -> DomainResult<()> {
    if value.chars().count() > 20_000 || value.contains('\0') {
        return Err(DomainError::Invalid(format!(
            "{what} must be at most 20000 characters"
        )));
    }
    Ok(())
}

/// A title: 1 to 500 characters without control characters.
pub fn check_title(value: &str) -> DomainResult<String> {
    let title = value.trim();
    if title.is_empty() {
        return Err(DomainError::Invalid("a title is required".into()));
    }
    super::check_label("the title", title)?;
    Ok(title.to_owned())
}

/// A unique entity name for a new item (items are known by id and title).
fn new_name(kind: &str) -> String {
    use rand::Rng;
    let n: u64 = rand::thread_rng().r#gen();
    format!("{kind}-{n:016x}")
}

/// The ToR of each of `ids` (found ones only), following their parent relations (at most
/// four steps), in one query.
async fn tors_of(
    exec: impl PgExecutor<'_>,
    ids: &[i64],
) -> DomainResult<std::collections::HashMap<i64, i64>> {
    let rows: Vec<(i64, i64)> = sqlx::query_as(
        "WITH RECURSIVE up(start, id, depth) AS ( \
             SELECT s, s, 0 FROM unnest($1::bigint[]) AS s \
           UNION ALL \
             SELECT up.start, r.target_id, up.depth + 1 FROM up \
             JOIN relations r ON r.source_id = up.id \
             JOIN entities rt ON rt.id = r.relation_type_id AND rt.name = ANY($2) \
             WHERE up.depth < 4 \
         ) SELECT DISTINCT ON (up.start) up.start, e.id FROM up \
           JOIN entities e ON e.id = up.id AND e.entity_type = 'tor' ORDER BY up.start, up.depth",
    )
    .bind(ids)
    .bind(&PARENT_RELATIONS[..])
    .fetch_all(exec)
    .await?;
    Ok(rows.into_iter().collect())
}

/// The ToR an item belongs to, following its parent relations (at most four steps).
pub async fn tor_of(exec: impl PgExecutor<'_>, id: i64) -> DomainResult<i64> {
    tors_of(exec, &[id])
        .await?
        .remove(&id)
        .ok_or_else(|| DomainError::NotFound(format!("pipeline item {id}")))
}

/// Refuses unless the actor may exercise `capability` on ToR `tor_id` (through a function of
/// that ToR, or a role's permission of the same name). The system actor may do anything.
pub async fn authorize(
    conn: &mut PgConnection,
    actor: &Actor,
    capability: Capability,
    tor_id: i64,
) -> DomainResult<()> {
    let Some(user_id) = actor.user_id else {
        return Ok(());
    };
    if abac::may_in(conn, user_id, capability, tor_id).await? {
        Ok(())
    } else {
        Err(DomainError::Forbidden(format!(
            "this needs the {capability} capability on this ToR"
        )))
    }
}

const ITEM_SELECT: &str = "SELECT e.id, e.entity_type, e.label, e.created_at FROM entities e";

#[derive(sqlx::FromRow)]
struct ItemRow {
    id: i64,
    entity_type: String,
    label: String,
    created_at: OffsetDateTime,
}

async fn hydrate(conn: &mut PgConnection, rows: Vec<ItemRow>) -> DomainResult<Vec<Item>> {
    let ids: Vec<i64> = rows.iter().map(|r| r.id).collect();
    let mut props = store::properties_of(&mut *conn, &ids).await?;
    let tors = tors_of(&mut *conn, &ids).await?;
    let mut items = Vec::with_capacity(rows.len());
    for row in rows {
        // An item outside any ToR (say, imported from elsewhere without its relations) is
        // left out: no one's capabilities cover it.
        let Some(&tor_id) = tors.get(&row.id) else {
            continue;
        };
        let mut properties = props.remove(&row.id).unwrap_or_default();
        let status = text(properties.remove(key::STATUS).as_ref());
        let description = text(properties.remove(key::DESCRIPTION).as_ref());
        let outcome = text(properties.remove(key::OUTCOME).as_ref());
        items.push(Item {
            tor_id,
            id: row.id,
            kind: row.entity_type,
            title: row.label,
            status,
            description,
            outcome,
            properties,
            created_at: row.created_at,
        });
    }
    Ok(items)
}

/// The items with these ids, in the order given (unknown ids are left out).
pub async fn hydrate_ids(conn: &mut PgConnection, ids: &[i64]) -> DomainResult<Vec<Item>> {
    let mut rows: Vec<ItemRow> = sqlx::query_as(&format!(
        "{ITEM_SELECT} WHERE e.id = ANY($1) AND e.entity_type = ANY($2)"
    ))
    .bind(ids)
    .bind(&kind::PIPELINE[..])
    .fetch_all(&mut *conn)
    .await?;
    rows.sort_by_key(|r| ids.iter().position(|i| *i == r.id));
    hydrate(conn, rows).await
}

/// Item `id` of type `kind` (any pipeline type with `None`); anything else is a 404.
pub async fn load(conn: &mut PgConnection, id: i64, kind: Option<&str>) -> DomainResult<Item> {
    let row: Option<ItemRow> = sqlx::query_as(&format!(
        "{ITEM_SELECT} WHERE e.id = $1 AND e.entity_type = ANY($2)"
    ))
    .bind(id)
    .bind(match kind {
        Some(k) => vec![k],
        None => kind::PIPELINE.to_vec(),
    })
    .fetch_optional(&mut *conn)
    .await?;
    let what = kind.unwrap_or("pipeline item").replace('_', " ");
    let row = row.ok_or_else(|| DomainError::NotFound(format!("{what} {id}")))?;
    hydrate(conn, vec![row])
        .await?
        .pop()
        .ok_or_else(|| DomainError::NotFound(format!("{what} {id} (it belongs to no ToR)")))
}

/// [`load`] after locking the item's row, so concurrent moves of one item serialise.
pub async fn load_for_update(
    conn: &mut PgConnection,
    id: i64,
    kind: Option<&str>,
) -> DomainResult<Item> {
    sqlx::query("SELECT 1 FROM entities WHERE id = $1 FOR UPDATE")
        .bind(id)
        .execute(&mut *conn)
        .await?;
    load(conn, id, kind).await
}

/// Items of `kind` whose parent (by `relation`) is `parent_id`, optionally in one of
/// `statuses`, oldest first, paginated by id.
pub async fn children(
    conn: &mut PgConnection,
    kind: &str,
    relation: &str,
    parent_id: i64,
    statuses: &[&str],
    page: PageRequest,
) -> DomainResult<Page<Item>> {
    let rows: Vec<ItemRow> = sqlx::query_as(&format!(
        "{ITEM_SELECT} JOIN relations r ON r.source_id = e.id AND r.target_id = $2 \
         JOIN entities rt ON rt.id = r.relation_type_id AND rt.name = $3 \
         LEFT JOIN entity_properties s ON s.entity_id = e.id AND s.key = 'status' \
         WHERE e.entity_type = $1 AND (cardinality($4::text[]) = 0 OR s.value #>> '{{}}' = ANY($4)) \
           AND ($5::bigint IS NULL OR e.id > $5) \
         ORDER BY e.sort_order, e.id LIMIT $6"
    ))
    .bind(kind)
    .bind(parent_id)
    .bind(relation)
    .bind(statuses)
    .bind(page.after)
    .bind(page.limit + 1)
    .fetch_all(&mut *conn)
    .await?;
    let page = Page::from_overfetch(rows, page.limit, |r| r.id);
    Ok(Page {
        items: hydrate(conn, page.items).await?,
        next_after: page.next_after,
    })
}

/// All children (bounded collections: a meeting's agenda, a minutes' sections).
pub async fn all_children(
    conn: &mut PgConnection,
    kind: &str,
    relation: &str,
    parent_id: i64,
) -> DomainResult<Vec<Item>> {
    Ok(children(
        conn,
        kind,
        relation,
        parent_id,
        &[],
        PageRequest::first(PageRequest::MAX_LIMIT),
    )
    .await?
    .items)
}

/// What a new item holds.
pub struct NewItem<'a> {
    pub kind: &'a str,
    /// The entity name; a random one when `None`. A fixed name makes duplicates a conflict.
    pub name: Option<String>,
    pub title: &'a str,
    pub status: &'a str,
    pub description: &'a str,
    pub sort_order: i32,
    pub properties: Vec<(&'a str, Value)>,
    /// (relation, parent id): the relation that ties it into the pipeline.
    pub parent: (&'a str, i64),
}

/// The item types whose author is recorded (they may edit and delete their own).
const AUTHORED: [&str; 2] = [kind::SUGGESTION, kind::PROPOSAL];

/// Creates an item and its parent relation; the author (when a user acts) is `authored_by`.
pub async fn create(conn: &mut PgConnection, actor: &Actor, new: NewItem<'_>) -> DomainResult<i64> {
    let title = check_title(new.title)?;
    check_text("the description", new.description)?;
    let name = new.name.unwrap_or_else(|| new_name(new.kind));
    let mut entity = NewEntity::new(new.kind, &name).label(&title);
    if !new.status.is_empty() {
        entity = entity.property(key::STATUS, new.status);
    }
    entity.sort_order = new.sort_order;
    if !new.description.trim().is_empty() {
        entity = entity.property(key::DESCRIPTION, new.description.trim());
    }
    for (k, v) in new.properties {
        entity = entity.property(k, v);
    }
    let id = store::create_entity(conn, &entity).await?.entity.id;
    let (relation, parent) = new.parent;
    store::relate(conn, relation, id, parent, &Properties::new()).await?;
    if let Some(user_id) = actor.user_id.filter(|_| AUTHORED.contains(&new.kind)) {
        store::relate(conn, rel::AUTHORED_BY, id, user_id, &Properties::new()).await?;
    }
    audit::record(
        conn,
        actor,
        &format!("{}.create", new.kind),
        Some((new.kind, id)),
        json!({"title": title, "parent_id": parent, "status": new.status}),
    )
    .await?;
    Ok(id)
}

/// Sets an item's status (and outcome, when given) and writes the audit entry
/// `<kind>.<status>`. Callers have checked that the move is allowed.
pub async fn set_status(
    conn: &mut PgConnection,
    actor: &Actor,
    item: &Item,
    to: &str,
    outcome: Option<&str>,
) -> DomainResult<()> {
    store::set_property(conn, item.id, key::STATUS, &json!(to)).await?;
    if let Some(outcome) = outcome.map(str::trim).filter(|o| !o.is_empty()) {
        check_text("the outcome", outcome)?;
        store::set_property(conn, item.id, key::OUTCOME, &json!(outcome)).await?;
    }
    sqlx::query("UPDATE entities SET updated_at = now() WHERE id = $1")
        .bind(item.id)
        .execute(&mut *conn)
        .await?;
    audit::record(
        conn,
        actor,
        &format!("{}.{to}", item.kind),
        Some((&item.kind, item.id)),
        json!({"from": item.status, "to": to, "tor_id": item.tor_id}),
    )
    .await?;
    Ok(())
}

/// The ids of the users who wrote an item.
pub async fn authors(exec: impl PgExecutor<'_>, id: i64) -> DomainResult<Vec<i64>> {
    Ok(store::targets_of(exec, rel::AUTHORED_BY, id).await?)
}

/// Which of `ids` `user_id` wrote.
pub async fn authored_by(
    exec: impl PgExecutor<'_>,
    user_id: i64,
    ids: &[i64],
) -> DomainResult<Vec<i64>> {
    Ok(sqlx::query_scalar(
        "SELECT r.source_id FROM relations r JOIN entities rt ON rt.id = r.relation_type_id \
         WHERE rt.name = 'authored_by' AND r.target_id = $1 AND r.source_id = ANY($2)",
    )
    .bind(user_id)
    .bind(ids)
    .fetch_all(exec)
    .await?)
}

/// Whether a ToR still has pipeline items (its deletion is then refused).
pub async fn tor_item_count(exec: impl PgExecutor<'_>, tor_id: i64) -> DomainResult<i64> {
    Ok(sqlx::query_scalar(
        "SELECT count(*) FROM relations r JOIN entities rt ON rt.id = r.relation_type_id \
         WHERE r.target_id = $1 AND rt.name IN ('suggested_to', 'submitted_to', 'meeting_of')",
    )
    .bind(tor_id)
    .fetch_one(exec)
    .await?)
}
