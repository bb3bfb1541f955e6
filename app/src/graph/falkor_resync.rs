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
//!
//! Looking before writing is what costs: a resync excludes the environment's other
//! writers (`resync`), so a node it did not locate does not exist and is created
//! outright, and a relationship touching a node it created cannot exist either. Their ids
//! are located again after the node phase, in one statement: returning each created
//! node's id from its CREATE costs FalkorDB more than the CREATE.
//!
//! Rows travel as lists, read by position: FalkorDB finds a map's keys by comparing
//! strings and copies each row at every `WITH`, and building maps cost the client as much
//! (docs/benchmarks.md). The entity's own properties follow the fixed fields inline, or as one
//! map added with `+=` ([`super::falkor_shape`]).

use std::collections::{HashMap, HashSet};

use falkordb::FalkorValue;

use super::falkor::{edge_row, node_row, string};
use super::falkor_shape::{Own, by_own};
use super::model::RUN_FIELD;
use super::{
    ENTITY_LABEL, FalkorBackend, GraphEdge, GraphError, GraphNode, GraphResult, NodeIds, cypher,
};

/// A node's fixed fields from a row `[internal id, id, entity_type, name, label,
/// is_active, own properties…]` ([`node_list`]).
fn node_fields(own: &Own) -> String {
    format!(
        "env: $env, id: row[1], entity_type: row[2], name: row[3], label: row[4], \
         is_active: row[5], {RUN_FIELD}: $stamp{}",
        own.fields(OWN)
    )
}

/// Where a row's own properties start ([`falkor_shape`]).
const OWN: usize = 6;

fn node_list(internal_id: i64, node: &GraphNode, own: Vec<FalkorValue>) -> FalkorValue {
    let mut row = vec![
        FalkorValue::I64(internal_id),
        FalkorValue::I64(node.id),
        string(&node.entity_type),
        string(&node.name),
        string(&node.label),
        FalkorValue::Bool(node.is_active),
    ];
    row.extend(own);
    FalkorValue::Array(row)
}

/// A relationship's fixed fields from a row `[source's internal id, target's internal id,
/// id, source_id, target_id, relation_type, own properties…]` ([`edge_list`]).
fn edge_fields(own: &Own) -> String {
    format!(
        "env: $env, id: row[2], relation_type: row[5], source_id: row[3], target_id: row[4], \
         {RUN_FIELD}: $stamp{}",
        own.fields(OWN)
    )
}

fn edge_list((source, target): (i64, i64), edge: &GraphEdge, own: Vec<FalkorValue>) -> FalkorValue {
    let mut row = vec![
        FalkorValue::I64(source),
        FalkorValue::I64(target),
        FalkorValue::I64(edge.id),
        FalkorValue::I64(edge.source_id),
        FalkorValue::I64(edge.target_id),
        string(&edge.relation_type),
    ];
    row.extend(own);
    FalkorValue::Array(row)
}

/// Creates nodes of one label that nothing has created (see the module's comment); the
/// rows' internal ids are unused.
fn create_nodes(label: &str, own: &Own) -> String {
    format!(
        "UNWIND $rows AS row \
         CREATE (n:{ENTITY_LABEL}:{label} {{{fields}}}) \
         {add}",
        fields = node_fields(own),
        add = own.add("n", OWN),
    )
}

/// Replaces existing nodes of one label found by their located ids; returns the entity id
/// of each row whose node was still the entity's.
fn update_located_nodes(label: &str, own: &Own) -> String {
    format!(
        "UNWIND $rows AS row WITH row, row[0] AS nid \
         MATCH (n) WHERE id(n) = nid \
         WITH row, n WHERE n:{ENTITY_LABEL} AND n.env = $env AND n.id = row[1] \
         SET n:{label} \
         SET n = {{{fields}}} \
         {add} \
         RETURN row[1]",
        fields = node_fields(own),
        add = own.add("n", OWN),
    )
}

/// How a relationship between located endpoints is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum EdgeWrite {
    /// Where none can exist yet: an endpoint was created by this resync.
    Create,
    /// Where one may exist: found by `(env, id)` between the endpoints, or created.
    Merge,
}

/// Writes the relationships of one type between endpoints found by their located ids, if
/// they are still the entities' own; returns how many rows were written.
fn write_located_edges(write: EdgeWrite, rel_type: &str, own: &Own) -> String {
    let fields = edge_fields(own);
    let write = match write {
        EdgeWrite::Create => format!("CREATE (s)-[r:{rel_type} {{{fields}}}]->(t)"),
        EdgeWrite::Merge => {
            format!("MERGE (s)-[r:{rel_type} {{env: $env, id: row[2]}}]->(t) SET r = {{{fields}}}")
        }
    };
    format!(
        "UNWIND $rows AS row WITH row, row[0] AS sid, row[1] AS tid \
         MATCH (s) WHERE id(s) = sid \
         MATCH (t) WHERE id(t) = tid \
         WITH row, s, t \
         WHERE s:{ENTITY_LABEL} AND s.env = $env AND s.id = row[3] \
         AND t:{ENTITY_LABEL} AND t.env = $env AND t.id = row[4] \
         {write} \
         {add} \
         RETURN count(r)",
        add = own.add("r", OWN),
    )
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
        stamp: i64,
        rows: Vec<FalkorValue>,
    ) -> GraphResult<Vec<Vec<FalkorValue>>> {
        let (rows, _) = self
            .run(
                query,
                vec![
                    ("env", string(env)),
                    ("stamp", FalkorValue::I64(stamp)),
                    ("rows", FalkorValue::Array(rows)),
                ],
            )
            .await?;
        Ok(rows)
    }

    /// Nodes located before are updated by their ids; the others are created (and marked
    /// `created`, their ids located after the node phase). Any whose id turned out to be
    /// another node's is created when missing or updated by `(env, id)`, with both labels
    /// in the CREATE pattern as in [`cypher::create_missing_nodes`].
    pub(super) async fn write_located_nodes(
        &self,
        env: &str,
        stamp: i64,
        nodes: &[GraphNode],
        ids: &mut NodeIds,
    ) -> GraphResult<()> {
        for (label, nodes) in cypher::nodes_by_label(nodes, |node| node)? {
            let (known, new): (Vec<&GraphNode>, Vec<&GraphNode>) = nodes
                .into_iter()
                .partition(|node| ids.contains_key(&node.id));
            ids.created.extend(new.iter().map(|node| node.id));
            for (own, nodes) in by_own(&new, |node| &node.properties) {
                let rows = nodes
                    .into_iter()
                    .map(|(node, values)| node_list(0, node, values))
                    .collect();
                self.rows(create_nodes(&label, &own), env, stamp, rows)
                    .await?;
            }
            if known.is_empty() {
                continue;
            }
            let mut updated = HashSet::new();
            for (own, nodes) in by_own(&known, |node| &node.properties) {
                let rows = nodes
                    .into_iter()
                    .map(|(node, values)| node_list(ids[&node.id], node, values))
                    .collect();
                let written = self
                    .rows(update_located_nodes(&label, &own), env, stamp, rows)
                    .await?;
                for row in &written {
                    updated.insert(integer(row.first())?);
                }
            }
            let unknown: Vec<&GraphNode> = known
                .into_iter()
                .filter(|node| !updated.contains(&node.id))
                .collect();
            if unknown.is_empty() {
                continue;
            }
            let map_rows = |nodes: &[&GraphNode]| -> Vec<FalkorValue> {
                nodes
                    .iter()
                    .map(|node| node_row(env, stamp, node))
                    .collect()
            };
            let query = format!(
                "{} RETURN row.id, id(m)",
                cypher::create_missing_nodes(&label)
            );
            let created: HashMap<i64, i64> =
                located(&self.rows(query, env, stamp, map_rows(&unknown)).await?)?
                    .into_iter()
                    .collect();
            let existing = map_rows(
                &unknown
                    .into_iter()
                    .filter(|node| !created.contains_key(&node.id))
                    .collect::<Vec<_>>(),
            );
            ids.extend(created);
            if !existing.is_empty() {
                let query = format!("{} RETURN row.id, id(n)", cypher::update_nodes(&label));
                ids.extend(located(&self.rows(query, env, stamp, existing).await?)?);
            }
        }
        Ok(())
    }

    /// Relationships whose endpoints are located are written between them (created where
    /// an endpoint is new, merged otherwise); a batch in which any endpoint was not (or no
    /// longer) the entity's is merged again by `(env, id)`.
    pub(super) async fn write_located_edges(
        &self,
        env: &str,
        stamp: i64,
        edges: &[GraphEdge],
        ids: &NodeIds,
    ) -> GraphResult<()> {
        let new = |edge: &GraphEdge| {
            ids.created.contains(&edge.source_id) || ids.created.contains(&edge.target_id)
        };
        for (rel_type, edges) in cypher::edges_by_type(edges, |edge| edge)? {
            let (created, merged): (Vec<&GraphEdge>, Vec<&GraphEdge>) =
                edges.into_iter().partition(|edge| new(edge));
            for (write, edges) in [(EdgeWrite::Create, created), (EdgeWrite::Merge, merged)] {
                for (own, edges) in by_own(&edges, |edge| &edge.properties) {
                    self.write_edge_batch(env, stamp, (write, &rel_type, &own), edges, ids)
                        .await?;
                }
            }
        }
        Ok(())
    }

    /// One batch by located ids; if any row's endpoints were not (or no longer) the
    /// entities', the whole batch is merged again by `(env, id)`, which finds the rows
    /// already written.
    async fn write_edge_batch(
        &self,
        env: &str,
        stamp: i64,
        (write, rel_type, own): (EdgeWrite, &str, &Own),
        edges: Vec<(&GraphEdge, Vec<FalkorValue>)>,
        ids: &NodeIds,
    ) -> GraphResult<()> {
        let endpoints =
            |edge: &GraphEdge| Some((*ids.get(&edge.source_id)?, *ids.get(&edge.target_id)?));
        let count = edges.len();
        let all: Vec<&GraphEdge> = edges.iter().map(|(edge, _)| *edge).collect();
        let seekable: Vec<FalkorValue> = edges
            .into_iter()
            .filter_map(|(edge, values)| Some(edge_list(endpoints(edge)?, edge, values)))
            .collect();
        if seekable.len() == count {
            let written = self
                .rows(
                    write_located_edges(write, rel_type, own),
                    env,
                    stamp,
                    seekable,
                )
                .await?;
            if integer(written.first().and_then(|row| row.first()))? == count as i64 {
                return Ok(());
            }
        }
        let all = all.iter().map(|edge| edge_row(env, stamp, edge)).collect();
        self.rows(cypher::merge_edges(rel_type), env, stamp, all)
            .await?;
        Ok(())
    }
}
