//! What the dashboard shows a reader of the pipeline: their next meetings, their open action
//! items, and the items waiting for a move they may make.

use std::collections::btree_map::Entry;
use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;
use sqlx::PgConnection;

use super::workflow::{self, Transition};
use super::{Item, hydrate_ids};
use crate::domain::{Capability, DomainResult, abac};

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ReaderPipeline {
    /// Meetings not yet ended of the ToRs where the reader fills a position, by date.
    pub next_meetings: Vec<Item>,
    /// Open action items the reader owns.
    pub action_items: Vec<Item>,
    /// Suggestions and proposals with a transition the reader may make.
    pub waiting: Vec<Item>,
}

/// At most this many of each.
const LIMIT: i64 = 20;

pub async fn for_reader(
    conn: &mut PgConnection,
    user_id: i64,
    today: &str,
) -> DomainResult<ReaderPipeline> {
    let meeting_ids: Vec<i64> = sqlx::query_scalar(
        "SELECT DISTINCT m.id, m.sort_order FROM entities m \
         JOIN relations mo ON mo.source_id = m.id \
         JOIN entities mot ON mot.id = mo.relation_type_id AND mot.name = 'meeting_of' \
         JOIN relations bt ON bt.target_id = mo.target_id \
         JOIN entities btt ON btt.id = bt.relation_type_id AND btt.name = 'belongs_to_tor' \
         JOIN relations fp ON fp.target_id = bt.source_id AND fp.source_id = $1 \
         JOIN entities fpt ON fpt.id = fp.relation_type_id AND fpt.name = 'fills_position' \
         JOIN entity_properties s ON s.entity_id = m.id AND s.key = 'status' \
         JOIN entity_properties d ON d.entity_id = m.id AND d.key = 'meeting_date' \
         WHERE m.entity_type = 'meeting' \
           AND s.value #>> '{}' IN ('projected', 'confirmed', 'in_progress') \
           AND d.value #>> '{}' >= $2 \
         ORDER BY m.sort_order, m.id LIMIT $3",
    )
    .bind(user_id)
    .bind(today)
    .bind(LIMIT)
    .fetch_all(&mut *conn)
    .await?;
    let action_ids: Vec<i64> = sqlx::query_scalar(
        "SELECT a.id FROM entities a \
         JOIN relations x ON x.source_id = a.id AND x.target_id = $1 \
         JOIN entities xt ON xt.id = x.relation_type_id AND xt.name = 'assigned_to' \
         JOIN entity_properties s ON s.entity_id = a.id AND s.key = 'status' \
         WHERE a.entity_type = 'action_item' AND s.value #>> '{}' = 'open' \
         ORDER BY a.id LIMIT $2",
    )
    .bind(user_id)
    .bind(LIMIT)
    .fetch_all(&mut *conn)
    .await?;
    // Candidates: items in a status some transition leaves; kept when the reader holds
    // that transition's capability on the item's ToR.
    let transitions: Vec<Transition> = workflow::transitions(&mut *conn)
        .await?
        .into_iter()
        .filter(|t| t.scope == "suggestion" || t.scope == "proposal")
        .collect();
    let candidate_ids: Vec<i64> = sqlx::query_scalar(
        "SELECT e.id FROM entities e \
         JOIN entity_properties s ON s.entity_id = e.id AND s.key = 'status' \
         WHERE (e.entity_type = 'suggestion' AND s.value #>> '{}' = 'open') \
            OR (e.entity_type = 'proposal' AND s.value #>> '{}' IN ('submitted', 'under_review')) \
         ORDER BY e.id LIMIT 500",
    )
    .fetch_all(&mut *conn)
    .await?;
    let mut capabilities: BTreeMap<i64, BTreeSet<Capability>> = BTreeMap::new();
    let mut waiting = Vec::new();
    for item in hydrate_ids(conn, &candidate_ids).await? {
        if let Entry::Vacant(slot) = capabilities.entry(item.tor_id) {
            slot.insert(abac::capabilities_on_pg(&mut *conn, user_id, item.tor_id).await?);
        }
        let caps = &capabilities[&item.tor_id];
        let movable = transitions.iter().any(|t| {
            t.scope == item.kind
                && t.from == item.status
                && t.required_capability != Capability::ViewTor
                && caps.contains(&t.required_capability)
        });
        if movable && (waiting.len() as i64) < LIMIT {
            waiting.push(item);
        }
    }
    Ok(ReaderPipeline {
        next_meetings: hydrate_ids(conn, &meeting_ids).await?,
        action_items: hydrate_ids(conn, &action_ids).await?,
        waiting,
    })
}
