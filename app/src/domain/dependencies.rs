//! ToR dependencies: typed, directed edges between ToRs, next to the `reports_to` hierarchy.
//!
//! - `feeds_into`: the source ToR's outputs are inputs of the target ToR. Cycles are allowed:
//!   iterative processes feed back into themselves (planning → review → retrospective →
//!   planning), and upstream ahlt's own data has such loops.
//! - `escalates_to`: what the source ToR cannot decide goes to the target ToR. Cycles are
//!   refused: an escalation must end somewhere.
//!
//! Each is a relation between two `tor` entities with the relation properties `output_types`
//! (text), `description` (text) and `is_blocking` (`"true"`/`"false"`, as upstream writes
//! it; JSON `true` is read too: the target cannot proceed without it). A ToR never depends
//! on itself.

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use sqlx::{PgConnection, PgExecutor};

use super::audit::{self, Actor};
use super::{DomainError, DomainResult, kind, rel};
use crate::store::{self, Properties};

/// The two kinds of dependency.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DependencyKind {
    FeedsInto,
    EscalatesTo,
}

impl DependencyKind {
    pub const ALL: [DependencyKind; 2] = [DependencyKind::FeedsInto, DependencyKind::EscalatesTo];

    /// The relation type's name.
    pub fn relation_type(self) -> &'static str {
        match self {
            DependencyKind::FeedsInto => rel::FEEDS_INTO,
            DependencyKind::EscalatesTo => rel::ESCALATES_TO,
        }
    }

    pub fn parse(name: &str) -> Option<DependencyKind> {
        Self::ALL.into_iter().find(|k| k.relation_type() == name)
    }

    /// How the source's page names the edge ("feeds into", "escalates to").
    pub fn outgoing_phrase(self) -> &'static str {
        match self {
            DependencyKind::FeedsInto => "feeds into",
            DependencyKind::EscalatesTo => "escalates to",
        }
    }

    /// How the target's page names the edge ("receives from", "receives escalations from").
    pub fn incoming_phrase(self) -> &'static str {
        match self {
            DependencyKind::FeedsInto => "receives from",
            DependencyKind::EscalatesTo => "receives escalations from",
        }
    }
}

impl std::fmt::Display for DependencyKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.relation_type())
    }
}

/// One dependency edge with its properties.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub struct Dependency {
    /// The relation's id.
    pub id: i64,
    pub relation_type: DependencyKind,
    pub source_id: i64,
    pub target_id: i64,
    pub output_types: String,
    pub description: String,
    pub is_blocking: bool,
}

/// A dependency seen from one ToR, with the ToR at the other end.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DependencyView {
    #[serde(flatten)]
    pub dependency: Dependency,
    /// `outgoing` when the ToR asked about is the source.
    pub direction: Direction,
    pub other: OtherTor,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Direction {
    Outgoing,
    Incoming,
}

#[derive(Debug, Clone, PartialEq, Serialize, sqlx::FromRow)]
pub struct OtherTor {
    pub id: i64,
    pub name: String,
    pub label: String,
}

impl DependencyView {
    pub fn is_outgoing(&self) -> bool {
        self.direction == Direction::Outgoing
    }

    /// "feeds into", "receives from", ... from the point of view of the ToR asked about.
    pub fn phrase(&self) -> &'static str {
        match self.direction {
            Direction::Outgoing => self.dependency.relation_type.outgoing_phrase(),
            Direction::Incoming => self.dependency.relation_type.incoming_phrase(),
        }
    }
}

/// What a new dependency says.
#[derive(Debug, Clone)]
pub struct NewDependency {
    pub kind: DependencyKind,
    pub source_id: i64,
    pub target_id: i64,
    pub output_types: String,
    pub description: String,
    pub is_blocking: bool,
}

/// A change to a dependency's properties; `None` leaves one alone.
#[derive(Debug, Clone, Default)]
pub struct DependencyUpdate {
    pub output_types: Option<String>,
    pub description: Option<String>,
    pub is_blocking: Option<bool>,
}

/// Text of a property as stored by us (a string) or upstream (a string too); anything else
/// is printed as JSON, a missing one is empty.
pub fn text_property(value: Option<&Value>) -> String {
    match value {
        None | Some(Value::Null) => String::new(),
        Some(Value::String(s)) => s.clone(),
        Some(other) => other.to_string(),
    }
}

/// `is_blocking` as stored by us (`true`) or by upstream (`"true"`); anything else is false.
pub fn blocking_property(value: Option<&Value>) -> bool {
    match value {
        Some(Value::Bool(b)) => *b,
        Some(Value::String(s)) => s.eq_ignore_ascii_case("true"),
        _ => false,
    }
}

#[derive(sqlx::FromRow)]
struct DependencyRow {
    id: i64,
    relation_type: String,
    source_id: i64,
    target_id: i64,
    output_types: Option<Value>,
    description: Option<Value>,
    is_blocking: Option<Value>,
}

impl DependencyRow {
    fn into_dependency(self) -> Option<Dependency> {
        Some(Dependency {
            id: self.id,
            relation_type: DependencyKind::parse(&self.relation_type)?,
            source_id: self.source_id,
            target_id: self.target_id,
            output_types: text_property(self.output_types.as_ref()),
            description: text_property(self.description.as_ref()),
            is_blocking: blocking_property(self.is_blocking.as_ref()),
        })
    }
}

/// Every dependency between two ToRs (`$1` null), or those touching ToR `$1`, ordered by id.
const DEPENDENCY_SELECT: &str = "SELECT r.id, rt.name AS relation_type, r.source_id, r.target_id, \
       (SELECT p.value FROM relation_properties p WHERE p.relation_id = r.id AND p.key = 'output_types') AS output_types, \
       (SELECT p.value FROM relation_properties p WHERE p.relation_id = r.id AND p.key = 'description') AS description, \
       (SELECT p.value FROM relation_properties p WHERE p.relation_id = r.id AND p.key = 'is_blocking') AS is_blocking \
     FROM relations r \
     JOIN entities rt ON rt.id = r.relation_type_id AND rt.name IN ('feeds_into', 'escalates_to') \
     JOIN entities s ON s.id = r.source_id AND s.entity_type = 'tor' \
     JOIN entities t ON t.id = r.target_id AND t.entity_type = 'tor' \
     WHERE ($1::bigint IS NULL OR r.source_id = $1 OR r.target_id = $1) \
     ORDER BY r.id";

/// Every dependency between ToRs, ordered by id.
pub async fn all(exec: impl PgExecutor<'_>) -> DomainResult<Vec<Dependency>> {
    let rows: Vec<DependencyRow> = sqlx::query_as(DEPENDENCY_SELECT)
        .bind(None::<i64>)
        .fetch_all(exec)
        .await?;
    Ok(rows
        .into_iter()
        .filter_map(DependencyRow::into_dependency)
        .collect())
}

/// The dependencies of one ToR, both directions: outgoing first, then by kind and the other
/// ToR's label.
pub async fn of_tor(conn: &mut PgConnection, tor_id: i64) -> DomainResult<Vec<DependencyView>> {
    let rows: Vec<DependencyRow> = sqlx::query_as(DEPENDENCY_SELECT)
        .bind(Some(tor_id))
        .fetch_all(&mut *conn)
        .await?;
    let deps: Vec<Dependency> = rows
        .into_iter()
        .filter_map(DependencyRow::into_dependency)
        .collect();
    let other_ids: Vec<i64> = deps
        .iter()
        .map(|d| {
            if d.source_id == tor_id {
                d.target_id
            } else {
                d.source_id
            }
        })
        .collect();
    let others: Vec<OtherTor> =
        sqlx::query_as("SELECT id, name, label FROM entities WHERE id = ANY($1)")
            .bind(&other_ids)
            .fetch_all(&mut *conn)
            .await?;
    let mut views: Vec<DependencyView> = deps
        .into_iter()
        .zip(other_ids)
        .filter_map(|(dependency, other_id)| {
            let other = others.iter().find(|o| o.id == other_id)?.clone();
            let direction = if dependency.source_id == tor_id {
                Direction::Outgoing
            } else {
                Direction::Incoming
            };
            Some(DependencyView {
                dependency,
                direction,
                other,
            })
        })
        .collect();
    views.sort_by(|a, b| {
        let key = |v: &DependencyView| {
            (
                v.direction == Direction::Incoming,
                v.dependency.relation_type,
                v.other.label.clone(),
                v.dependency.id,
            )
        };
        key(a).cmp(&key(b))
    });
    Ok(views)
}

/// One dependency by its relation id (404 for any other relation).
pub async fn get(conn: &mut PgConnection, id: i64) -> DomainResult<Dependency> {
    let rows: Vec<DependencyRow> = sqlx::query_as(&format!(
        "SELECT * FROM ({DEPENDENCY_SELECT}) d WHERE d.id = $2"
    ))
    .bind(None::<i64>)
    .bind(id)
    .fetch_all(&mut *conn)
    .await?;
    rows.into_iter()
        .find_map(DependencyRow::into_dependency)
        .ok_or_else(|| DomainError::NotFound(format!("dependency {id}")))
}

fn properties(output_types: &str, description: &str, is_blocking: bool) -> Properties {
    Properties::from([
        ("output_types".to_string(), json!(output_types.trim())),
        ("description".to_string(), json!(description.trim())),
        // As upstream writes it, so an export reads back into upstream.
        (
            "is_blocking".to_string(),
            json!(if is_blocking { "true" } else { "false" }),
        ),
    ])
}

fn check_text(what: &str, text: &str) -> DomainResult<()> {
    if text.chars().count() > 2000 {
        return Err(DomainError::Invalid(format!(
            "{what} must be at most 2000 characters"
        )));
    }
    Ok(())
}

/// The label of ToR `id`, or a 422 naming `role` when it is no ToR.
async fn tor_label(conn: &mut PgConnection, id: i64, role: &str) -> DomainResult<String> {
    match store::get_entity_in(&mut *conn, id).await? {
        Some(e) if e.entity.entity_type == kind::TOR => Ok(e.entity.display().to_owned()),
        _ => Err(DomainError::Invalid(format!("{role} {id} is not a ToR"))),
    }
}

/// Refuses an `escalates_to` edge from `source` to `target` when `target` already escalates,
/// directly or through others, to `source`; names the path.
async fn check_escalation_cycle(
    conn: &mut PgConnection,
    source: i64,
    target: i64,
) -> DomainResult<()> {
    let path: Option<Vec<String>> = sqlx::query_scalar(
        "WITH RECURSIVE up(id, path) AS ( \
             SELECT $2::bigint, ARRAY[$2::bigint] \
           UNION ALL \
             SELECT x.target_id, up.path || x.target_id FROM up \
             JOIN relations x ON x.source_id = up.id \
             JOIN entities rt ON rt.id = x.relation_type_id AND rt.name = 'escalates_to' \
             WHERE NOT x.target_id = ANY(up.path) \
         ) \
         SELECT (SELECT array_agg(CASE WHEN e.label = '' THEN e.name ELSE e.label END ORDER BY o.n) \
                 FROM unnest(up.path) WITH ORDINALITY AS o(id, n) JOIN entities e ON e.id = o.id) \
         FROM up WHERE up.id = $1 LIMIT 1",
    )
    .bind(source)
    .bind(target)
    .fetch_optional(&mut *conn)
    .await?;
    match path {
        Some(path) => Err(DomainError::Invalid(format!(
            "escalations cannot go round in a circle: the escalation chain {} already exists",
            path.join(" → ")
        ))),
        None => Ok(()),
    }
}

/// Creates a dependency after checking both ends are distinct ToRs, that it does not exist
/// yet (409) and that an escalation would not close a cycle.
pub async fn create(
    conn: &mut PgConnection,
    actor: &Actor,
    new: &NewDependency,
) -> DomainResult<Dependency> {
    check_text("output types", &new.output_types)?;
    check_text("the description", &new.description)?;
    let source = tor_label(conn, new.source_id, "source").await?;
    let target = tor_label(conn, new.target_id, "target").await?;
    if new.source_id == new.target_id {
        let verb = match new.kind {
            DependencyKind::FeedsInto => "feed into",
            DependencyKind::EscalatesTo => "escalate to",
        };
        return Err(DomainError::Invalid(format!("a ToR cannot {verb} itself")));
    }
    if new.kind == DependencyKind::EscalatesTo {
        check_escalation_cycle(conn, new.source_id, new.target_id).await?;
    }
    let relation = store::create_relation(
        conn,
        new.kind.relation_type(),
        new.source_id,
        new.target_id,
        &properties(&new.output_types, &new.description, new.is_blocking),
    )
    .await
    .map_err(|e| match e {
        store::StoreError::Conflict(_) => DomainError::Conflict(format!(
            "{source} already {} {target}",
            new.kind.outgoing_phrase()
        )),
        other => other.into(),
    })?;
    audit::record(
        conn,
        actor,
        "tor.dependency.create",
        Some((kind::TOR, new.source_id)),
        json!({"relation_id": relation.id, "relation_type": new.kind, "target_id": new.target_id, "is_blocking": new.is_blocking}),
    )
    .await?;
    get(conn, relation.id).await
}

/// Changes a dependency's properties.
pub async fn update(
    conn: &mut PgConnection,
    actor: &Actor,
    id: i64,
    update: &DependencyUpdate,
) -> DomainResult<Dependency> {
    let before = get(conn, id).await?;
    let output_types = update
        .output_types
        .as_deref()
        .unwrap_or(&before.output_types);
    let description = update.description.as_deref().unwrap_or(&before.description);
    check_text("output types", output_types)?;
    check_text("the description", description)?;
    let is_blocking = update.is_blocking.unwrap_or(before.is_blocking);
    for (key, value) in properties(output_types, description, is_blocking) {
        store::set_relation_property(conn, id, &key, &value).await?;
    }
    let after = get(conn, id).await?;
    if after != before {
        audit::record(
            conn,
            actor,
            "tor.dependency.update",
            Some((kind::TOR, after.source_id)),
            json!({"relation_id": id, "is_blocking": after.is_blocking}),
        )
        .await?;
    }
    Ok(after)
}

pub async fn delete(conn: &mut PgConnection, actor: &Actor, id: i64) -> DomainResult<Dependency> {
    let dependency = get(conn, id).await?;
    store::delete_relation(conn, id).await?;
    audit::record(
        conn,
        actor,
        "tor.dependency.delete",
        Some((kind::TOR, dependency.source_id)),
        json!({"relation_id": id, "relation_type": dependency.relation_type, "target_id": dependency.target_id}),
    )
    .await?;
    Ok(dependency)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn properties_are_read_as_we_and_upstream_write_them() {
        assert!(blocking_property(Some(&json!(true))));
        assert!(blocking_property(Some(&json!("true"))));
        assert!(!blocking_property(Some(&json!("false"))));
        assert!(!blocking_property(Some(&json!(1))));
        assert!(!blocking_property(None));
        assert_eq!(text_property(Some(&json!("a, b"))), "a, b");
        assert_eq!(text_property(Some(&json!(["a"]))), r#"["a"]"#);
        assert_eq!(text_property(None), "");
    }

    #[test]
    fn kinds_round_trip_their_relation_types() {
        for kind in DependencyKind::ALL {
            assert_eq!(DependencyKind::parse(kind.relation_type()), Some(kind));
            assert_eq!(
                serde_json::to_value(kind).unwrap(),
                json!(kind.relation_type())
            );
        }
        assert_eq!(DependencyKind::parse("reports_to"), None);
    }
}
