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
