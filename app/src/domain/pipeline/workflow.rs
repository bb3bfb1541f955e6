//! The workflow engine: statuses and transitions are entities (`workflow_status`,
//! `workflow_transition`, linked by `transition_from`/`transition_to`), seeded from upstream
//! ahlt's ontology and editable by holders of `workflow.manage`. A transition names the
//! capability it needs on the item's ToR and whether it needs an outcome (a reason, a
//! decision's text). Moves the code makes itself (scheduling, deciding) are not transitions.

use serde::Serialize;
use serde_json::json;
use sqlx::{PgConnection, PgExecutor};

use super::{Item, authorize, load_for_update, set_status};
use crate::domain::audit::{self, Actor};
use crate::domain::{Capability, DomainError, DomainResult, kind};
use crate::store;

/// Property keys, as upstream names them.
pub mod key {
    pub const SCOPE: &str = "entity_type_scope";
    pub const CODE: &str = "status_code";
    pub const IS_INITIAL: &str = "is_initial";
    pub const IS_TERMINAL: &str = "is_terminal";
    pub const FROM: &str = "from_status_code";
    pub const TO: &str = "to_status_code";
    pub const CAPABILITY: &str = "required_capability";
    pub const REQUIRES_OUTCOME: &str = "requires_outcome";
}

pub use super::workflow_defaults::{DEFAULT_STATUSES, DEFAULT_TRANSITIONS, seed};

/// The item types with a workflow.
pub const SCOPES: [&str; 5] = [
    kind::SUGGESTION,
    kind::PROPOSAL,
    kind::MEETING,
    kind::AGENDA_POINT,
    kind::MINUTES,
];

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Status {
    pub id: i64,
    pub scope: String,
    pub code: String,
    pub label: String,
    pub is_initial: bool,
    pub is_terminal: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Transition {
    pub id: i64,
    pub scope: String,
    pub from: String,
    pub to: String,
    pub label: String,
    pub required_capability: Capability,
    pub requires_outcome: bool,
}

/// Upstream writes booleans as `"true"`; we write JSON booleans. Both read as true.
pub(super) fn flag(value: Option<serde_json::Value>) -> bool {
    match value {
        Some(serde_json::Value::Bool(b)) => b,
        Some(serde_json::Value::String(s)) => s.eq_ignore_ascii_case("true"),
        _ => false,
    }
}

type PropRow = (
    i64,
    String,
    Option<String>,
    Option<String>,
    Option<String>,
    Option<serde_json::Value>,
    Option<serde_json::Value>,
);

const PROPS_SELECT: &str = "SELECT e.id, e.label, \
       (SELECT value #>> '{}' FROM entity_properties WHERE entity_id = e.id AND key = $2), \
       (SELECT value #>> '{}' FROM entity_properties WHERE entity_id = e.id AND key = $3), \
       (SELECT value #>> '{}' FROM entity_properties WHERE entity_id = e.id AND key = $4), \
       (SELECT value FROM entity_properties WHERE entity_id = e.id AND key = $5), \
       (SELECT value FROM entity_properties WHERE entity_id = e.id AND key = $6) \
     FROM entities e WHERE e.entity_type = $1 AND e.is_active ORDER BY e.sort_order, e.id";

/// Every active status, in order.
pub async fn statuses(exec: impl PgExecutor<'_>) -> DomainResult<Vec<Status>> {
    let rows: Vec<PropRow> = sqlx::query_as(PROPS_SELECT)
        .bind(kind::WORKFLOW_STATUS)
        .bind(key::SCOPE)
        .bind(key::CODE)
        .bind(key::CODE)
        .bind(key::IS_INITIAL)
        .bind(key::IS_TERMINAL)
        .fetch_all(exec)
        .await?;
    Ok(rows
        .into_iter()
        .filter_map(|(id, label, scope, code, _, initial, terminal)| {
            Some(Status {
                id,
                scope: scope?,
                code: code?,
                label,
                is_initial: flag(initial),
                is_terminal: flag(terminal),
            })
        })
        .collect())
}

/// Every active transition whose capability is known, in order.
pub async fn transitions(exec: impl PgExecutor<'_>) -> DomainResult<Vec<Transition>> {
    let rows: Vec<PropRow> = sqlx::query_as(PROPS_SELECT)
        .bind(kind::WORKFLOW_TRANSITION)
        .bind(key::SCOPE)
        .bind(key::FROM)
        .bind(key::TO)
        .bind(key::CAPABILITY)
        .bind(key::REQUIRES_OUTCOME)
        .fetch_all(exec)
        .await?;
    Ok(rows
        .into_iter()
        .filter_map(|(id, label, scope, from, to, capability, outcome)| {
            let capability = capability?.as_str()?.parse().ok()?;
            Some(Transition {
                id,
                scope: scope?,
                from: from?,
                to: to?,
                label,
                required_capability: capability,
                requires_outcome: flag(outcome),
            })
        })
        .collect())
}

/// The transitions out of an item's current status.
pub async fn available(exec: impl PgExecutor<'_>, item: &Item) -> DomainResult<Vec<Transition>> {
    Ok(transitions(exec)
        .await?
        .into_iter()
        .filter(|t| t.scope == item.kind && t.from == item.status)
        .collect())
}

/// Moves item `id` to status `to` along a transition: in the caller's transaction, with the
/// item locked, after checking the transition exists from the current status (409), the
/// actor's capability on the item's ToR (403) and the outcome when one is required (422).
/// The move's consequences (a proposal for an accepted suggestion, a decision for a decided
/// agenda point, ...) happen in the same transaction.
pub async fn apply(
    conn: &mut PgConnection,
    actor: &Actor,
    id: i64,
    to: &str,
    outcome: Option<&str>,
) -> DomainResult<Item> {
    let item = load_for_update(conn, id, None).await?;
    if !SCOPES.contains(&item.kind.as_str()) {
        return Err(DomainError::Invalid(format!(
            "a {} has no workflow",
            item.kind.replace('_', " ")
        )));
    }
    let options = available(&mut *conn, &item).await?;
    let Some(transition) = options.iter().find(|t| t.to == to) else {
        let possible: Vec<&str> = options.iter().map(|t| t.to.as_str()).collect();
        return Err(DomainError::Conflict(format!(
            "a {} in status {} cannot move to {to}{}",
            item.kind.replace('_', " "),
            item.status,
            if possible.is_empty() {
                String::from(" (it cannot move at all)")
            } else {
                format!("; it can move to {}", possible.join(", "))
            }
        )));
    };
    authorize(conn, actor, transition.required_capability, item.tor_id).await?;
    let outcome = outcome.map(str::trim).filter(|o| !o.is_empty());
    if transition.requires_outcome && outcome.is_none() {
        return Err(DomainError::Invalid(format!(
            "\"{}\" needs an outcome (a reason or the decision's text)",
            transition.label
        )));
    }
    super::items::before_move(conn, &item, to).await?;
    set_status(conn, actor, &item, to, outcome).await?;
    super::items::after_move(conn, actor, &item, to, outcome).await?;
    super::load(conn, id, None).await
}

/// What an administrator may change on a transition.
#[derive(Debug, Clone, Default)]
pub struct TransitionUpdate {
    pub required_capability: Option<Capability>,
    pub requires_outcome: Option<bool>,
    pub is_active: Option<bool>,
}

/// Changes a transition's gate; audit-logged as `workflow.transition.update`.
pub async fn update_transition(
    conn: &mut PgConnection,
    actor: &Actor,
    id: i64,
    update: &TransitionUpdate,
) -> DomainResult<()> {
    let entity = store::get_entity_in(&mut *conn, id).await?;
    if entity
        .as_ref()
        .is_none_or(|e| e.entity.entity_type != kind::WORKFLOW_TRANSITION)
    {
        return Err(DomainError::NotFound(format!("workflow transition {id}")));
    }
    let mut patch = store::EntityPatch {
        is_active: update.is_active,
        ..Default::default()
    };
    if let Some(c) = update.required_capability {
        patch
            .properties
            .insert(key::CAPABILITY.into(), Some(json!(c.as_str())));
    }
    if let Some(o) = update.requires_outcome {
        patch
            .properties
            .insert(key::REQUIRES_OUTCOME.into(), Some(json!(o)));
    }
    store::update_entity(conn, id, &patch).await?;
    audit::record(
        conn,
        actor,
        "workflow.transition.update",
        Some((kind::WORKFLOW_TRANSITION, id)),
        json!({"required_capability": update.required_capability, "requires_outcome": update.requires_outcome, "is_active": update.is_active}),
    )
    .await?;
    Ok(())
}
