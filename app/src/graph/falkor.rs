//! FalkorDB backend (`falkor://host:port`).

use std::collections::{BTreeMap, HashMap};

use falkordb::{AsyncGraph, FalkorClientBuilder, FalkorConnectionInfo, FalkorValue};
use serde_json::Value;

use super::cypher;
use super::model::RUN_FIELD;
use super::{
    ENTITY_LABEL, EdgeRef, GraphBackend, GraphEdge, GraphError, GraphNode, GraphResult, NodeIds,
    Param, PropertyValue, decode_property_key, projected_properties,
};

/// The graph (FalkorDB key) holding every environment's projection.
pub const DEFAULT_GRAPH_NAME: &str = "ahlt";

/// A FalkorDB graph. Cheap to clone handles are taken per call.
#[derive(Clone)]
pub struct FalkorBackend {
    graph: AsyncGraph,
}

impl std::fmt::Debug for FalkorBackend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FalkorBackend")
            .field("graph", &self.graph.graph_name())
            .finish()
    }
}

fn backend_err(e: impl std::fmt::Display) -> GraphError {
    GraphError::Backend(e.to_string())
}

impl FalkorBackend {
    /// Connects to `uri` (`falkor://[user:password@]host:port`) and selects `graph_name`.
    pub async fn connect(uri: &str, graph_name: &str) -> GraphResult<FalkorBackend> {
        if !uri.starts_with("falkor://") && !uri.starts_with("falkors://") {
            return Err(GraphError::UnsupportedUri(uri.to_string()));
        }
        let info: FalkorConnectionInfo = uri.try_into().map_err(backend_err)?;
        let client = FalkorClientBuilder::new_async()
            .with_connection_info(info)
            .build()
            .await
            .map_err(backend_err)?;
        Ok(FalkorBackend {
            graph: client.select_graph(graph_name),
        })
    }

    pub(super) async fn run(
        &self,
        query: String,
        params: Vec<(&str, FalkorValue)>,
    ) -> GraphResult<(Vec<Vec<FalkorValue>>, Vec<String>)> {
        let mut graph = self.graph.clone();
        let result = graph
            .query(query)
            .with_params(params)
            .execute()
            .await
            .map_err(backend_err)?;
        let stats = result.stats.clone();
        Ok((result.data.into_values_lossy().collect(), stats))
    }
}

pub(super) fn to_falkor(value: PropertyValue) -> FalkorValue {
    match value {
        PropertyValue::Bool(b) => FalkorValue::Bool(b),
        PropertyValue::Int(i) => FalkorValue::I64(i),
        PropertyValue::Float(f) => FalkorValue::F64(f),
        PropertyValue::Str(s) | PropertyValue::Json(s) => FalkorValue::String(s),
        PropertyValue::StrList(items) => {
            FalkorValue::Array(items.into_iter().map(FalkorValue::String).collect())
        }
        PropertyValue::IntList(items) => ints(&items),
    }
}

fn from_falkor(value: &FalkorValue) -> Value {
    match value {
        FalkorValue::Bool(b) => Value::Bool(*b),
        FalkorValue::I64(i) => Value::from(*i),
        FalkorValue::F64(f) => Value::from(*f),
        FalkorValue::String(s) => Value::String(s.clone()),
        FalkorValue::Array(items) => Value::Array(items.iter().map(from_falkor).collect()),
        FalkorValue::Map(map) => Value::Object(
            map.iter()
                .map(|(k, v)| (k.clone(), from_falkor(v)))
                .collect(),
        ),
        _ => Value::Null,
    }
}

/// Fixed fields plus the projected (non-secret, non-null) properties.
fn property_map(
    mut fixed: HashMap<String, FalkorValue>,
    properties: &BTreeMap<String, Value>,
) -> FalkorValue {
    for (key, value) in projected_properties(properties) {
        fixed.insert(key, to_falkor(value));
    }
    FalkorValue::Map(fixed)
}

pub(super) fn string(s: &str) -> FalkorValue {
    FalkorValue::String(s.to_string())
}

fn ints(ids: &[i64]) -> FalkorValue {
    FalkorValue::Array(ids.iter().copied().map(FalkorValue::I64).collect())
}

fn param(value: Param) -> FalkorValue {
    match value {
        Param::Str(s) => FalkorValue::String(s),
        Param::Int(i) => FalkorValue::I64(i),
        Param::Bool(b) => FalkorValue::Bool(b),
        Param::Ints(items) => ints(&items),
        Param::Strs(items) => {
            FalkorValue::Array(items.into_iter().map(FalkorValue::String).collect())
        }
    }
}

pub(super) fn node_row(env: &str, stamp: i64, node: &GraphNode) -> FalkorValue {
    let fixed = HashMap::from([
        ("env".to_string(), string(env)),
        ("id".to_string(), FalkorValue::I64(node.id)),
        ("entity_type".to_string(), string(&node.entity_type)),
        ("name".to_string(), string(&node.name)),
        ("label".to_string(), string(&node.label)),
        ("is_active".to_string(), FalkorValue::Bool(node.is_active)),
        (RUN_FIELD.to_string(), FalkorValue::I64(stamp)),
    ]);
    FalkorValue::Map(HashMap::from([
        ("id".to_string(), FalkorValue::I64(node.id)),
        ("props".to_string(), property_map(fixed, &node.properties)),
    ]))
}

pub(super) fn edge_row(env: &str, stamp: i64, edge: &GraphEdge) -> FalkorValue {
    let fixed = HashMap::from([
        ("env".to_string(), string(env)),
        ("id".to_string(), FalkorValue::I64(edge.id)),
        ("relation_type".to_string(), string(&edge.relation_type)),
        ("source_id".to_string(), FalkorValue::I64(edge.source_id)),
        ("target_id".to_string(), FalkorValue::I64(edge.target_id)),
        (RUN_FIELD.to_string(), FalkorValue::I64(stamp)),
    ]);
    FalkorValue::Map(HashMap::from([
        ("id".to_string(), FalkorValue::I64(edge.id)),
        ("source_id".to_string(), FalkorValue::I64(edge.source_id)),
        ("target_id".to_string(), FalkorValue::I64(edge.target_id)),
        ("props".to_string(), property_map(fixed, &edge.properties)),
    ]))
}

/// Fixed fields and decoded properties of a graph property map.
fn split_properties(
    map: &HashMap<String, FalkorValue>,
) -> (HashMap<&str, &FalkorValue>, BTreeMap<String, Value>) {
    let mut fixed = HashMap::new();
    let mut properties = BTreeMap::new();
    for (key, value) in map {
        match decode_property_key(key) {
            Some(decoded) => {
                properties.insert(decoded, from_falkor(value));
            }
            None => {
                fixed.insert(key.as_str(), value);
            }
        }
    }
    (fixed, properties)
}

fn get_str(fixed: &HashMap<&str, &FalkorValue>, key: &str) -> GraphResult<String> {
    match fixed.get(key) {
        Some(FalkorValue::String(s)) => Ok(s.clone()),
        other => Err(GraphError::Backend(format!(
            "graph item field {key}: expected a string, got {other:?}"
        ))),
    }
}

fn get_i64(fixed: &HashMap<&str, &FalkorValue>, key: &str) -> GraphResult<i64> {
    match fixed.get(key) {
        Some(FalkorValue::I64(i)) => Ok(*i),
        other => Err(GraphError::Backend(format!(
            "graph item field {key}: expected an integer, got {other:?}"
        ))),
    }
}

fn stat(stats: &[String], name: &str) -> u64 {
    stats
        .iter()
        .filter_map(|line| line.strip_prefix(name)?.strip_prefix(':'))
        .filter_map(|n| n.trim().parse::<u64>().ok())
        .sum()
}

fn the_map(row: &[FalkorValue]) -> GraphResult<&HashMap<String, FalkorValue>> {
    match row.first() {
        Some(FalkorValue::Map(map)) => Ok(map),
        other => Err(GraphError::Backend(format!(
            "expected a map, got {other:?}"
        ))),
    }
}

impl GraphBackend for FalkorBackend {
    async fn ensure_schema(&self) -> GraphResult<()> {
        for field in ["env", "id"] {
            let query = format!("CREATE INDEX FOR (n:{ENTITY_LABEL}) ON (n.{field})");
            match self.run(query, Vec::new()).await {
                Ok(_) => {}
                Err(GraphError::Backend(e)) if e.contains("already indexed") => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    async fn upsert_nodes(&self, env: &str, stamp: i64, nodes: &[GraphNode]) -> GraphResult<()> {
        for (label, rows) in cypher::nodes_by_label(nodes, |node| node_row(env, stamp, node))? {
            let rows = FalkorValue::Array(rows);
            // Not MERGE then `SET n:<label>`: adding a label to a node after creating it is
            // two orders of magnitude slower in FalkorDB than creating it with the label.
            for query in [
                cypher::update_nodes(&label),
                cypher::create_missing_nodes(&label),
            ] {
                self.run(query, vec![("env", string(env)), ("rows", rows.clone())])
                    .await?;
            }
        }
        Ok(())
    }

    async fn upsert_edges(&self, env: &str, stamp: i64, edges: &[GraphEdge]) -> GraphResult<()> {
        for (rel_type, rows) in cypher::edges_by_type(edges, |edge| edge_row(env, stamp, edge))? {
            self.run(
                cypher::merge_edges(&rel_type),
                vec![("env", string(env)), ("rows", FalkorValue::Array(rows))],
            )
            .await?;
        }
        Ok(())
    }

    async fn locate_nodes(&self, env: &str) -> GraphResult<NodeIds> {
        self.locate(env).await
    }

    async fn resync_nodes(
        &self,
        env: &str,
        stamp: i64,
        nodes: &[GraphNode],
        located: &mut NodeIds,
    ) -> GraphResult<()> {
        self.write_located_nodes(env, stamp, nodes, located).await
    }

    async fn resync_edges(
        &self,
        env: &str,
        stamp: i64,
        edges: &[GraphEdge],
        located: &NodeIds,
    ) -> GraphResult<()> {
        self.write_located_edges(env, stamp, edges, located).await
    }

    async fn delete_nodes(&self, env: &str, ids: &[i64]) -> GraphResult<u64> {
        if ids.is_empty() {
            return Ok(0);
        }
        let (_, stats) = self
            .run(
                format!(
                    "UNWIND $ids AS id MATCH (n:{ENTITY_LABEL} {{env: $env, id: id}}) \
                     DETACH DELETE n"
                ),
                vec![("env", string(env)), ("ids", ints(ids))],
            )
            .await?;
        Ok(stat(&stats, "Relationships deleted") + stat(&stats, "Nodes deleted"))
    }

    async fn delete_edges(&self, env: &str, edges: &[EdgeRef]) -> GraphResult<u64> {
        if edges.is_empty() {
            return Ok(0);
        }
        let rows = edges
            .iter()
            .map(|edge| {
                FalkorValue::Map(HashMap::from([
                    ("id".to_string(), FalkorValue::I64(edge.id)),
                    ("source_id".to_string(), FalkorValue::I64(edge.source_id)),
                ]))
            })
            .collect();
        let (_, stats) = self
            .run(
                format!(
                    "UNWIND $rows AS row \
                     MATCH (:{ENTITY_LABEL} {{env: $env, id: row.source_id}})-[r]->() \
                     WHERE r.env = $env AND r.id = row.id \
                     DELETE r"
                ),
                vec![("env", string(env)), ("rows", FalkorValue::Array(rows))],
            )
            .await?;
        Ok(stat(&stats, "Relationships deleted"))
    }

    async fn sweep(&self, env: &str, stamp: i64) -> GraphResult<u64> {
        let params = || vec![("env", string(env)), ("stamp", FalkorValue::I64(stamp))];
        let (_, edge_stats) = self
            .run(
                format!(
                    "MATCH (:{ENTITY_LABEL} {{env: $env}})-[r]->() \
                     WHERE r.env = $env AND r.{RUN_FIELD} < $stamp DELETE r"
                ),
                params(),
            )
            .await?;
        let (_, node_stats) = self
            .run(
                format!(
                    "MATCH (n:{ENTITY_LABEL} {{env: $env}}) \
                     WHERE n.{RUN_FIELD} < $stamp DETACH DELETE n"
                ),
                params(),
            )
            .await?;
        Ok(stat(&edge_stats, "Relationships deleted")
            + stat(&node_stats, "Relationships deleted")
            + stat(&node_stats, "Nodes deleted"))
    }

    async fn nodes(&self, env: &str) -> GraphResult<Vec<GraphNode>> {
        let (rows, _) = self
            .run(
                format!(
                    "MATCH (n:{ENTITY_LABEL} {{env: $env}}) RETURN properties(n) ORDER BY n.id"
                ),
                vec![("env", string(env))],
            )
            .await?;
        rows.iter()
            .map(|row| {
                let (fixed, properties) = split_properties(the_map(row)?);
                Ok(GraphNode {
                    env: get_str(&fixed, "env")?,
                    id: get_i64(&fixed, "id")?,
                    entity_type: get_str(&fixed, "entity_type")?,
                    name: get_str(&fixed, "name")?,
                    label: get_str(&fixed, "label")?,
                    is_active: matches!(fixed.get("is_active"), Some(FalkorValue::Bool(true))),
                    properties,
                })
            })
            .collect()
    }

    async fn edges(&self, env: &str) -> GraphResult<Vec<GraphEdge>> {
        let (rows, _) = self
            .run(
                format!(
                    "MATCH (:{ENTITY_LABEL} {{env: $env}})-[r]->(:{ENTITY_LABEL} {{env: $env}}) \
                     WHERE r.env = $env RETURN properties(r) ORDER BY r.id"
                ),
                vec![("env", string(env))],
            )
            .await?;
        rows.iter()
            .map(|row| {
                let (fixed, properties) = split_properties(the_map(row)?);
                Ok(GraphEdge {
                    env: get_str(&fixed, "env")?,
                    id: get_i64(&fixed, "id")?,
                    relation_type: get_str(&fixed, "relation_type")?,
                    source_id: get_i64(&fixed, "source_id")?,
                    target_id: get_i64(&fixed, "target_id")?,
                    properties,
                })
            })
            .collect()
    }

    async fn read(
        &self,
        cypher: &'static str,
        params: Vec<(&'static str, Param)>,
    ) -> GraphResult<Vec<Vec<Value>>> {
        let params = params
            .into_iter()
            .map(|(name, value)| (name, param(value)))
            .collect();
        let (rows, _) = self.run(cypher.to_string(), params).await?;
        Ok(rows
            .iter()
            .map(|row| row.iter().map(from_falkor).collect())
            .collect())
    }
}
