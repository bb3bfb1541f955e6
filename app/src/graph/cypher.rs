//! Write statements both backends run, and the batching they share. Labels and
//! relationship types reach the text only from [`node_label`] and [`relationship_type`]
//! (validated identifiers); everything else is a parameter (`$env`, `$rows`).

use std::collections::BTreeMap;

use super::{ENTITY_LABEL, GraphEdge, GraphNode, GraphResult, node_label, relationship_type};

/// Rows per node label, in the backend's value type: one UNWIND statement each.
pub(super) fn nodes_by_label<'a, R>(
    nodes: &'a [GraphNode],
    row: impl Fn(&'a GraphNode) -> R,
) -> GraphResult<BTreeMap<String, Vec<R>>> {
    let mut batches: BTreeMap<String, Vec<R>> = BTreeMap::new();
    for node in nodes {
        batches
            .entry(node_label(&node.entity_type)?)
            .or_default()
            .push(row(node));
    }
    Ok(batches)
}

/// Rows per relationship type, in the backend's value type: one UNWIND statement each.
pub(super) fn edges_by_type<'a, R>(
    edges: &'a [GraphEdge],
    row: impl Fn(&'a GraphEdge) -> R,
) -> GraphResult<BTreeMap<String, Vec<R>>> {
    let mut batches: BTreeMap<String, Vec<R>> = BTreeMap::new();
    for edge in edges {
        batches
            .entry(relationship_type(&edge.relation_type)?)
            .or_default()
            .push(row(edge));
    }
    Ok(batches)
}

/// Creates or replaces the nodes of one label in one statement.
pub(super) fn merge_nodes(label: &str) -> String {
    format!(
        "UNWIND $rows AS row \
         MERGE (n:{ENTITY_LABEL} {{env: $env, id: row.id}}) \
         SET n:{label} \
         SET n = row.props"
    )
}

/// Replaces the existing nodes of one label (with [`create_missing_nodes`] after it).
pub(super) fn update_nodes(label: &str) -> String {
    format!(
        "UNWIND $rows AS row \
         MATCH (n:{ENTITY_LABEL} {{env: $env, id: row.id}}) \
         SET n:{label} \
         SET n = row.props"
    )
}

/// Creates the nodes of one label that do not exist yet, with both labels in the CREATE
/// pattern.
pub(super) fn create_missing_nodes(label: &str) -> String {
    format!(
        "UNWIND $rows AS row \
         OPTIONAL MATCH (n:{ENTITY_LABEL} {{env: $env, id: row.id}}) \
         WITH row, n WHERE n IS NULL \
         CREATE (m:{ENTITY_LABEL}:{label}) \
         SET m = row.props"
    )
}

/// Creates or replaces the relationships of one type between existing nodes.
pub(super) fn merge_edges(rel_type: &str) -> String {
    format!(
        "UNWIND $rows AS row \
         MATCH (s:{ENTITY_LABEL} {{env: $env, id: row.source_id}}) \
         MATCH (t:{ENTITY_LABEL} {{env: $env, id: row.target_id}}) \
         MERGE (s)-[r:{rel_type} {{env: $env, id: row.id}}]->(t) \
         SET r = row.props"
    )
}
