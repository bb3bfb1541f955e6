//! Upstream's suggestions and proposals name their author by `submitted_by_id` (the user's
//! entity id in upstream's database, which its export writes as each entity's `id`) and a
//! rejection's reason by `rejection_reason`; this app records the author as an `authored_by`
//! relation and the reason as `outcome`. Importing adds this app's form next to upstream's
//! (nothing is removed, so the file goes back to upstream intact); exporting writes a
//! rejected item's `outcome` as its `rejection_reason`.

use std::collections::{BTreeMap, HashMap, HashSet};

use serde_json::Value;
use sqlx::PgConnection;

use super::{Document, ImportReport};
use crate::domain::pipeline::key::{OUTCOME, STATUS};
use crate::domain::{DomainResult, kind, rel};
use crate::store::{self, Properties};

const AUTHOR_ID: &str = "submitted_by_id";
const REJECTION_REASON: &str = "rejection_reason";

fn authored(entity_type: &str) -> bool {
    entity_type == kind::SUGGESTION || entity_type == kind::PROPOSAL
}

/// On import: a rejection's reason becomes the item's outcome too.
pub fn adapt_properties(entity_type: &str, properties: &mut BTreeMap<String, Value>) {
    if !authored(entity_type) || properties.contains_key(OUTCOME) {
        return;
    }
    if let Some(reason) = properties.get(REJECTION_REASON).cloned() {
        properties.insert(OUTCOME.to_owned(), reason);
    }
}

/// On export: a rejected item's outcome is upstream's rejection reason (the outcome is the
/// truth here).
pub fn add_rejection_reason(entity_type: &str, properties: &mut BTreeMap<String, Value>) {
    let rejected = properties.get(STATUS).and_then(Value::as_str) == Some("rejected");
    if !authored(entity_type) || !rejected {
        return;
    }
    if let Some(outcome) = properties.get(OUTCOME).cloned() {
        properties.insert(REJECTION_REASON.to_owned(), outcome);
    }
}

/// After the entities: the author of each suggestion and proposal this import created,
/// found through the files' `id`s. An author the files do not hold is reported.
pub(super) async fn link_authors(
    conn: &mut PgConnection,
    report: &mut ImportReport,
    documents: &[Document],
    created: &HashSet<String>,
) -> DomainResult<()> {
    let users_by_upstream_id: HashMap<i64, &str> = documents
        .iter()
        .flat_map(|d| &d.entities)
        .filter(|e| e.entity_type == kind::USER)
        .filter_map(|e| Some((e.id?, e.name.as_str())))
        .collect();
    for record in documents.iter().flat_map(|d| &d.entities) {
        let reference = format!("{}:{}", record.entity_type, record.name);
        if !authored(&record.entity_type) || !created.contains(&reference) {
            continue;
        }
        let Some(raw) = record.properties.get(AUTHOR_ID) else {
            continue;
        };
        let upstream_id = match raw {
            Value::String(s) => s.trim().parse::<i64>().ok(),
            Value::Number(n) => n.as_i64(),
            _ => None,
        };
        let username = upstream_id.and_then(|id| users_by_upstream_id.get(&id));
        let user = match username {
            Some(name) => store::find_entity(&mut *conn, kind::USER, name).await?,
            None => None,
        };
        let (Some(user), Some(item)) = (
            user,
            store::find_entity(&mut *conn, &record.entity_type, &record.name).await?,
        ) else {
            report.not_mapped.push(format!(
                "{reference}: its author ({AUTHOR_ID} {raw}) is no user in the files; imported without an author"
            ));
            continue;
        };
        if store::targets_of(&mut *conn, rel::AUTHORED_BY, item.id)
            .await?
            .contains(&user.id)
        {
            continue;
        }
        store::relate(conn, rel::AUTHORED_BY, item.id, user.id, &Properties::new()).await?;
        report.relations.created += 1;
        report.changes.push(format!(
            "create {} {reference} → user:{} (from {AUTHOR_ID})",
            rel::AUTHORED_BY,
            user.name
        ));
    }
    Ok(())
}

/// On export: upstream's proposals end at `approved` (on an agenda or not); this app's
/// `scheduled` and `decided` are written as `approved` (the import derives them back from
/// the proposal's agenda points).
pub fn export_proposal_status(entity_type: &str, properties: &mut BTreeMap<String, Value>) {
    let on_agenda = matches!(
        properties.get(STATUS).and_then(Value::as_str),
        Some("scheduled" | "decided")
    );
    if entity_type == kind::PROPOSAL && on_agenda {
        properties.insert(STATUS.to_owned(), Value::from("approved"));
    }
}

/// After the relations: an `approved` proposal of the files that an agenda point took up
/// is `decided` when a point decided it, else `scheduled` while a point is still open
/// (points deferred put it back in the queue, `approved`).
pub(super) async fn derive_proposal_statuses(
    conn: &mut PgConnection,
    report: &mut ImportReport,
    documents: &[Document],
    left_out: &HashSet<String>,
) -> DomainResult<()> {
    for record in documents.iter().flat_map(|d| &d.entities) {
        let reference = format!("{}:{}", record.entity_type, record.name);
        if record.entity_type != kind::PROPOSAL || left_out.contains(&reference) {
            continue;
        }
        let Some(proposal) = store::find_entity(&mut *conn, kind::PROPOSAL, &record.name).await?
        else {
            continue;
        };
        let statuses: Vec<Option<String>> = sqlx::query_scalar(
            "SELECT (SELECT value #>> '{}' FROM entity_properties WHERE entity_id = e.id AND key = 'status') \
             FROM entities e WHERE e.id = $1 \
             UNION ALL \
             SELECT (SELECT value #>> '{}' FROM entity_properties WHERE entity_id = r.target_id AND key = 'status') \
             FROM relations r JOIN entities rt ON rt.id = r.relation_type_id AND rt.name = $2 \
             WHERE r.source_id = $1",
        )
        .bind(proposal.id)
        .bind(rel::SPAWNS_AGENDA_POINT)
        .fetch_all(&mut *conn)
        .await?;
        let Some((own, points)) = statuses.split_first() else {
            continue;
        };
        if own.as_deref() != Some("approved") || points.is_empty() {
            continue;
        }
        let derived = if points.iter().any(|s| s.as_deref() == Some("decided")) {
            "decided"
        } else if points.iter().any(|s| s.as_deref() != Some("deferred")) {
            "scheduled"
        } else {
            continue;
        };
        store::set_property(conn, proposal.id, STATUS, &Value::from(derived)).await?;
        report.changes.push(format!(
            "status {reference}: approved → {derived} (from its agenda points)"
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn reasons_travel_both_ways_and_only_for_rejections() {
        let mut upstream = BTreeMap::from([
            (STATUS.to_owned(), json!("rejected")),
            (REJECTION_REASON.to_owned(), json!("no budget")),
        ]);
        adapt_properties("suggestion", &mut upstream);
        assert_eq!(upstream.get(OUTCOME), Some(&json!("no budget")));

        let mut ours = BTreeMap::from([
            (STATUS.to_owned(), json!("rejected")),
            (OUTCOME.to_owned(), json!("duplicate")),
        ]);
        add_rejection_reason("proposal", &mut ours);
        assert_eq!(ours.get(REJECTION_REASON), Some(&json!("duplicate")));

        let mut decided = BTreeMap::from([
            (STATUS.to_owned(), json!("decided")),
            (OUTCOME.to_owned(), json!("buy it")),
        ]);
        add_rejection_reason("proposal", &mut decided);
        assert!(!decided.contains_key(REJECTION_REASON));
        let mut meeting = upstream.clone();
        meeting.remove(OUTCOME);
        adapt_properties("meeting", &mut meeting);
        assert!(!meeting.contains_key(OUTCOME));
    }
}
