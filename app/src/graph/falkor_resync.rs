//! FalkorDB's resync writes, by the internal node ids the graph returned instead of the
//! `(env, id)` index: looking an endpoint up in the index costs FalkorDB ~40 µs a row (two
//! per relationship), seeking it by id almost nothing (docs/benchmarks.md).
//!
//! FalkorDB reuses the internal id of a deleted node, and other writers (live sync of
//! another replica) may delete nodes while a resync runs. So a located id is only a hint:
//! every statement checks, in the same statement, that the node it found is still the
//! entity's own (`Entity` label, `env`, `id`), and rows whose check fails are written again
//! the old way, by `(env, id)`. Both writes are idempotent (SET of the whole row, MERGE of
//! the relationship), so a batch written partly twice ends up as written once.

use std::collections::{HashMap, HashSet};

use falkordb::FalkorValue;

use super::falkor::{edge_row, node_row, string};
use super::{
    ENTITY_LABEL, FalkorBackend, GraphEdge, GraphError, GraphNode, GraphResult, NodeIds, cypher,
};

/// Updates existing nodes of one label found by their located ids; returns the entity id
/// of each row whose node was still the entity's.
fn update_located_nodes(label: &str) -> String {
    format!(
        "UNWIND $rows AS row WITH row, row.nid AS nid \
         MATCH (n) WHERE id(n) = nid \
         WITH row, n WHERE n:{ENTITY_LABEL} AND n.env = $env AND n.id = row.id \
         SET n:{label} \
         SET n = row.props \
         RETURN row.id"
    )
}

/// Creates the relationships of one type between endpoints found by their located ids, if
/// they are still the entities' own; returns how many rows were written.
fn merge_located_edges(rel_type: &str) -> String {
    format!(
        "UNWIND $rows AS row WITH row, row.s AS sid, row.t AS tid \
         MATCH (s) WHERE id(s) = sid \
         MATCH (t) WHERE id(t) = tid \
         WITH row, s, t \
         WHERE s:{ENTITY_LABEL} AND s.env = $env AND s.id = row.source_id \
         AND t:{ENTITY_LABEL} AND t.env = $env AND t.id = row.target_id \
         MERGE (s)-[r:{rel_type} {{env: $env, id: row.id}}]->(t) \
         SET r = row.props \
         RETURN count(r)"
    )
}

/// `row` (a map) with `key` set to the integer `value`.
fn with(row: &FalkorValue, key: &str, value: i64) -> FalkorValue {
    let mut row = row.clone();
    if let FalkorValue::Map(map) = &mut row {
        map.insert(key.to_string(), FalkorValue::I64(value));
    }
    row
}

fn integer(value: Option<&FalkorValue>) -> GraphResult<i64> {
    match value {
        Some(FalkorValue::I64(i)) => Ok(*i),
        other => Err(GraphError::Backend(format!(
            "expected an integer, got {other:?}"
        ))),
    }
}

/// `(entity id, internal id)` of rows returned as `RETURN row.id, id(n)`.
fn located(rows: &[Vec<FalkorValue>]) -> GraphResult<Vec<(i64, i64)>> {
    rows.iter()
        .map(|row| Ok((integer(row.first())?, integer(row.get(1))?)))
        .collect()
}

impl FalkorBackend {
    /// Every node of `env` with its internal id.
    pub(super) async fn locate(&self, env: &str) -> GraphResult<NodeIds> {
        let (rows, _) = self
            .run(
                format!("MATCH (n:{ENTITY_LABEL} {{env: $env}}) RETURN n.id, id(n)"),
                vec![("env", string(env))],
            )
            .await?;
        Ok(located(&rows)?.into_iter().collect())
    }

    async fn rows(
        &self,
        query: String,
        env: &str,
        rows: Vec<FalkorValue>,
    ) -> GraphResult<Vec<Vec<FalkorValue>>> {
        let (rows, _) = self
            .run(
                query,
                vec![("env", string(env)), ("rows", FalkorValue::Array(rows))],
            )
            .await?;
        Ok(rows)
    }

    /// Nodes located before are updated by their ids; the others (and any whose id turned
    /// out to be another node's) are created when missing or updated by `(env, id)`, with
    /// both labels in the CREATE pattern as in [`cypher::create_missing_nodes`].
    pub(super) async fn write_located_nodes(
        &self,
        env: &str,
        stamp: i64,
        nodes: &[GraphNode],
        ids: &mut NodeIds,
    ) -> GraphResult<()> {
        let batches = cypher::nodes_by_label(nodes, |node| (node.id, node_row(env, stamp, node)))?;
        for (label, rows) in batches {
            let (known, mut unknown): (Vec<_>, Vec<_>) =
                rows.into_iter().partition(|(id, _)| ids.contains_key(id));
            if !known.is_empty() {
                let sent = known
                    .iter()
                    .map(|(id, row)| with(row, "nid", ids[id]))
                    .collect();
                let updated: HashSet<i64> = self
                    .rows(update_located_nodes(&label), env, sent)
                    .await?
                    .iter()
                    .map(|row| integer(row.first()))
                    .collect::<GraphResult<_>>()?;
                unknown.extend(known.into_iter().filter(|(id, _)| !updated.contains(id)));
            }
            if unknown.is_empty() {
                continue;
            }
            let sent = unknown.iter().map(|(_, row)| row.clone()).collect();
            let query = format!(
                "{} RETURN row.id, id(m)",
                cypher::create_missing_nodes(&label)
            );
            let created: HashMap<i64, i64> = located(&self.rows(query, env, sent).await?)?
                .into_iter()
                .collect();
            let existing: Vec<FalkorValue> = unknown
                .iter()
                .filter(|(id, _)| !created.contains_key(id))
                .map(|(_, row)| row.clone())
                .collect();
            ids.extend(created);
            if !existing.is_empty() {
                let query = format!("{} RETURN row.id, id(n)", cypher::update_nodes(&label));
                ids.extend(located(&self.rows(query, env, existing).await?)?);
            }
        }
        Ok(())
    }

    /// Relationships whose endpoints are located are merged between them; a batch in which
    /// any endpoint was not (or no longer) the entity's is merged again by `(env, id)`.
    pub(super) async fn write_located_edges(
        &self,
        env: &str,
        stamp: i64,
        edges: &[GraphEdge],
        ids: &NodeIds,
    ) -> GraphResult<()> {
        let endpoints =
            |edge: &GraphEdge| Some((*ids.get(&edge.source_id)?, *ids.get(&edge.target_id)?));
        let batches =
            cypher::edges_by_type(edges, |edge| (endpoints(edge), edge_row(env, stamp, edge)))?;
        for (rel_type, rows) in batches {
            let seekable: Vec<FalkorValue> = rows
                .iter()
                .filter_map(|(ends, row)| {
                    let (s, t) = (*ends)?;
                    Some(with(&with(row, "s", s), "t", t))
                })
                .collect();
            if seekable.len() == rows.len() {
                let written = self
                    .rows(merge_located_edges(&rel_type), env, seekable)
                    .await?;
                if integer(written.first().and_then(|row| row.first()))? == rows.len() as i64 {
                    continue;
                }
            }
            let all = rows.into_iter().map(|(_, row)| row).collect();
            self.rows(cypher::merge_edges(&rel_type), env, all).await?;
        }
        Ok(())
    }
}
