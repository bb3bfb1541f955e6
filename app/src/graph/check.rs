//! Comparing an environment's projection with Postgres (`ahlt graph check`).
//!
//! The graph is read first (all of this environment's nodes and relationships, their
//! labels, relationship types and real endpoints), then Postgres in keyset pages within
//! one REPEATABLE READ snapshot, with the same loaders a resync uses, and the two are
//! merged by id. Both sides are compared in their projected form: secrets and nulls left
//! out, values as [`PropertyValue::projected`]. Differences name ids, fields and property
//! keys, never values (they may be sensitive).
//!
//! The graph side is loaded whole ([`GraphBackend::nodes`] and [`GraphBackend::edges`]
//! have no paging); fine for tens or hundreds of thousands of items, a paged read on the
//! backend trait would be needed beyond that. Writes made while a check runs can show up
//! as differences: run it again, or after a resync, to tell drift from traffic.

use std::collections::{BTreeMap, HashMap};
use std::fmt;

use serde_json::Value;
use sqlx::PgPool;

use super::resync::{Rows, load_edges, load_nodes, snapshot};
use super::{
    ENTITY_LABEL, GraphBackend, GraphEdge, GraphNode, GraphResult, Param, PropertyValue, is_secret,
    node_label, relationship_type,
};

/// The outcome of [`check`]: counts on both sides and every difference found.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct CheckReport {
    pub postgres_nodes: u64,
    pub postgres_edges: u64,
    pub graph_nodes: u64,
    pub graph_edges: u64,
    /// Nodes first, then relationships, each by id.
    pub differences: Vec<Difference>,
}

impl CheckReport {
    /// Whether the graph holds exactly the projection of Postgres.
    pub fn is_consistent(&self) -> bool {
        self.differences.is_empty()
    }

    /// How many differences are of each kind: (missing, unexpected, differing).
    pub fn counts(&self) -> (usize, usize, usize) {
        let mut counts = (0, 0, 0);
        for difference in &self.differences {
            match difference {
                Difference::Missing { .. } => counts.0 += 1,
                Difference::Unexpected { .. } => counts.1 += 1,
                Difference::Differs { .. } => counts.2 += 1,
            }
        }
        counts
    }
}

/// A node (entity) or a relationship (relation).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Item {
    Node,
    Relationship,
}

impl fmt::Display for Item {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Item::Node => "node",
            Item::Relationship => "relationship",
        })
    }
}

/// One way the graph differs from Postgres.
#[derive(Debug, Clone, PartialEq)]
pub enum Difference {
    /// In Postgres, not in the graph.
    Missing { item: Item, id: i64 },
    /// In the graph, not in Postgres (or a second copy of one that is).
    Unexpected { item: Item, id: i64 },
    /// In both, with these fields differing.
    Differs {
        item: Item,
        id: i64,
        fields: Vec<Field>,
    },
}

impl fmt::Display for Difference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Difference::Missing { item, id } => write!(f, "missing {item} {id}"),
            Difference::Unexpected { item, id } => write!(f, "unexpected {item} {id}"),
            Difference::Differs { item, id, fields } => {
                write!(f, "differing {item} {id}:")?;
                for (i, field) in fields.iter().enumerate() {
                    let sep = if i == 0 { " " } else { ", " };
                    write!(f, "{sep}{field}")?;
                }
                Ok(())
            }
        }
    }
}

/// A differing field of an item present on both sides. Carries names, never values.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Field {
    /// A fixed field (`name`, `label`, `is_active`, `entity_type`, `relation_type`,
    /// `source_id`, `target_id`), or what the graph derives from them: `labels` (node
    /// labels), `type` (relationship type), `endpoints` (the nodes a relationship joins).
    Fixed(&'static str),
    /// A property in Postgres, absent from the graph.
    MissingProperty(String),
    /// A property in the graph, absent from Postgres (or secret or null there).
    UnexpectedProperty(String),
    /// A property on both sides with different values.
    ChangedProperty(String),
}

impl fmt::Display for Field {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Keys are data: Debug-quoted so control characters cannot forge output lines.
        match self {
            Field::Fixed(name) => f.write_str(name),
            Field::MissingProperty(key) => write!(f, "property {key:?} missing"),
            Field::UnexpectedProperty(key) => write!(f, "property {key:?} unexpected"),
            Field::ChangedProperty(key) => write!(f, "property {key:?} changed"),
        }
    }
}

/// Compares this environment's projection with Postgres. Read-only on both sides.
pub async fn check<B: GraphBackend>(
    pool: &PgPool,
    backend: &B,
    env: &str,
) -> GraphResult<CheckReport> {
    let mut graph_nodes = backend.nodes(env).await?;
    graph_nodes.sort_by_key(|n| n.id);
    let mut graph_edges = backend.edges(env).await?;
    graph_edges.sort_by_key(|e| e.id);
    let labels = node_labels(backend, env).await?;
    let shapes = edge_shapes(backend, env).await?;

    let mut report = CheckReport {
        graph_nodes: graph_nodes.len() as u64,
        graph_edges: graph_edges.len() as u64,
        ..CheckReport::default()
    };

    let mut tx = snapshot(pool).await?;

    let mut nodes = Merge::new(Item::Node, graph_nodes);
    let mut after = 0;
    loop {
        let page = load_nodes(&mut tx, env, Rows::After(after)).await?;
        let Some(last) = page.last() else { break };
        after = last.id;
        report.postgres_nodes += page.len() as u64;
        for node in &page {
            nodes.visit(node.id, |graph| node_fields(node, graph, &labels));
        }
    }
    report.differences.extend(nodes.finish());

    let mut edges = Merge::new(Item::Relationship, graph_edges);
    let mut after = 0;
    loop {
        let page = load_edges(&mut tx, env, Rows::After(after)).await?;
        let Some(last) = page.last() else { break };
        after = last.id;
        report.postgres_edges += page.len() as u64;
        for edge in &page {
            edges.visit(edge.id, |graph| edge_fields(edge, graph, &shapes));
        }
    }
    report.differences.extend(edges.finish());
    tx.commit().await?;
    Ok(report)
}

/// Graph items with an id, sorted by it.
trait HasId {
    fn id(&self) -> i64;
}

impl HasId for GraphNode {
    fn id(&self) -> i64 {
        self.id
    }
}

impl HasId for GraphEdge {
    fn id(&self) -> i64 {
        self.id
    }
}

/// A merge join of the graph's items (in memory, by id) with Postgres rows visited in
/// ascending id order.
struct Merge<T> {
    item: Item,
    graph: std::iter::Peekable<std::vec::IntoIter<T>>,
    differences: Vec<Difference>,
}

impl<T: HasId> Merge<T> {
    fn new(item: Item, graph: Vec<T>) -> Self {
        Merge {
            item,
            graph: graph.into_iter().peekable(),
            differences: Vec::new(),
        }
    }

    /// The Postgres row `id` (ids ascending across calls); `compare` lists the fields in
    /// which the graph's item differs.
    fn visit(&mut self, id: i64, compare: impl FnOnce(&T) -> Vec<Field>) {
        let item = self.item;
        while let Some(extra) = self.graph.next_if(|g| g.id() < id) {
            self.differences.push(Difference::Unexpected {
                item,
                id: extra.id(),
            });
        }
        match self.graph.next_if(|g| g.id() == id) {
            Some(graph) => {
                let fields = compare(&graph);
                if !fields.is_empty() {
                    self.differences
                        .push(Difference::Differs { item, id, fields });
                }
            }
            None => self.differences.push(Difference::Missing { item, id }),
        }
        // A second copy of the same id is one too many.
        while self.graph.next_if(|g| g.id() == id).is_some() {
            self.differences.push(Difference::Unexpected { item, id });
        }
    }

    /// The differences, including graph items beyond the last Postgres row.
    fn finish(mut self) -> Vec<Difference> {
        let item = self.item;
        for extra in self.graph {
            self.differences.push(Difference::Unexpected {
                item,
                id: extra.id(),
            });
        }
        self.differences
    }
}

fn node_fields(
    postgres: &GraphNode,
    graph: &GraphNode,
    labels: &HashMap<i64, Vec<String>>,
) -> Vec<Field> {
    let mut fields = Vec::new();
    let fixed = [
        ("entity_type", postgres.entity_type == graph.entity_type),
        ("name", postgres.name == graph.name),
        ("label", postgres.label == graph.label),
        ("is_active", postgres.is_active == graph.is_active),
    ];
    fields.extend(
        fixed
            .iter()
            .filter(|(_, same)| !same)
            .map(|(f, _)| Field::Fixed(f)),
    );
    let expected_labels = node_label(&postgres.entity_type).map(|label| {
        let mut expected = vec![ENTITY_LABEL.to_string(), label];
        expected.sort();
        expected
    });
    if expected_labels.ok().as_ref() != labels.get(&postgres.id) {
        fields.push(Field::Fixed("labels"));
    }
    fields.extend(property_fields(&postgres.properties, &graph.properties));
    fields
}

fn edge_fields(
    postgres: &GraphEdge,
    graph: &GraphEdge,
    shapes: &HashMap<i64, EdgeShape>,
) -> Vec<Field> {
    let mut fields = Vec::new();
    let fixed = [
        (
            "relation_type",
            postgres.relation_type == graph.relation_type,
        ),
        ("source_id", postgres.source_id == graph.source_id),
        ("target_id", postgres.target_id == graph.target_id),
    ];
    fields.extend(
        fixed
            .iter()
            .filter(|(_, same)| !same)
            .map(|(f, _)| Field::Fixed(f)),
    );
    let shape = shapes.get(&postgres.id);
    let expected_type = relationship_type(&postgres.relation_type).ok();
    if shape.map(|s| &s.rel_type) != expected_type.as_ref() {
        fields.push(Field::Fixed("type"));
    }
    if shape.map(|s| s.endpoints) != Some((postgres.source_id, postgres.target_id)) {
        fields.push(Field::Fixed("endpoints"));
    }
    fields.extend(property_fields(&postgres.properties, &graph.properties));
    fields
}

/// Postgres properties (raw) against graph properties (as stored), by key.
fn property_fields(
    postgres: &BTreeMap<String, Value>,
    graph: &BTreeMap<String, Value>,
) -> Vec<Field> {
    let expected: BTreeMap<&String, Value> = postgres
        .iter()
        .filter(|(key, value)| !is_secret(key, value))
        .filter_map(|(key, value)| Some((key, PropertyValue::projected(value)?)))
        .collect();
    let mut fields = Vec::new();
    for (key, value) in &expected {
        match graph.get(*key) {
            None => fields.push(Field::MissingProperty((*key).clone())),
            Some(stored) if stored != value => fields.push(Field::ChangedProperty((*key).clone())),
            Some(_) => {}
        }
    }
    for key in graph.keys() {
        if !expected.contains_key(key) {
            fields.push(Field::UnexpectedProperty(key.clone()));
        }
    }
    fields
}

/// Each node's labels, sorted, by id.
async fn node_labels<B: GraphBackend>(
    backend: &B,
    env: &str,
) -> GraphResult<HashMap<i64, Vec<String>>> {
    let rows = backend
        .read(
            "MATCH (n:Entity {env: $env}) RETURN n.id, labels(n)",
            vec![("env", Param::Str(env.to_string()))],
        )
        .await?;
    let mut out = HashMap::with_capacity(rows.len());
    for row in rows {
        let (Some(id), Some(Value::Array(labels))) =
            (row.first().and_then(Value::as_i64), row.get(1))
        else {
            continue;
        };
        let mut labels: Vec<String> = labels
            .iter()
            .map(|l| l.as_str().unwrap_or_default().to_string())
            .collect();
        labels.sort();
        out.insert(id, labels);
    }
    Ok(out)
}

/// What the graph itself says about a relationship: its type and the nodes it joins.
#[derive(Debug, PartialEq)]
struct EdgeShape {
    rel_type: String,
    endpoints: (i64, i64),
}

async fn edge_shapes<B: GraphBackend>(
    backend: &B,
    env: &str,
) -> GraphResult<HashMap<i64, EdgeShape>> {
    let rows = backend
        .read(
            "MATCH (s:Entity {env: $env})-[r]->(t:Entity {env: $env}) WHERE r.env = $env \
             RETURN r.id, type(r), s.id, t.id",
            vec![("env", Param::Str(env.to_string()))],
        )
        .await?;
    let mut out = HashMap::with_capacity(rows.len());
    for row in rows {
        let int = |i: usize| row.get(i).and_then(Value::as_i64);
        let (Some(id), Some(rel_type), Some(source), Some(target)) =
            (int(0), row.get(1).and_then(Value::as_str), int(2), int(3))
        else {
            continue;
        };
        out.insert(
            id,
            EdgeShape {
                rel_type: rel_type.to_string(),
                endpoints: (source, target),
            },
        );
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn property_differences_name_keys_never_values() {
        let postgres = BTreeMap::from([
            ("same".to_string(), json!("x")),
            ("changed".to_string(), json!("old secret-ish value")),
            ("gone".to_string(), json!(1)),
            ("password_hash".to_string(), json!("never projected")),
            ("nothing".to_string(), Value::Null),
            ("nested".to_string(), json!({"a": 1})),
        ]);
        let graph = BTreeMap::from([
            ("same".to_string(), json!("x")),
            ("changed".to_string(), json!("new value")),
            ("extra".to_string(), json!(true)),
            ("nested".to_string(), json!("{\"a\":1}")),
        ]);
        let fields = property_fields(&postgres, &graph);
        assert_eq!(
            fields,
            vec![
                Field::ChangedProperty("changed".into()),
                Field::MissingProperty("gone".into()),
                Field::UnexpectedProperty("extra".into()),
            ]
        );
        let text = Difference::Differs {
            item: Item::Node,
            id: 7,
            fields,
        }
        .to_string();
        assert_eq!(
            text,
            "differing node 7: property \"changed\" changed, property \"gone\" missing, \
             property \"extra\" unexpected"
        );
        assert!(!text.contains("value"), "{text}");
    }

    struct Row(i64);
    impl HasId for Row {
        fn id(&self) -> i64 {
            self.0
        }
    }

    #[test]
    fn merge_finds_missing_unexpected_duplicated_and_differing_ids() {
        let mut merge = Merge::new(Item::Node, vec![Row(1), Row(2), Row(2), Row(4), Row(9)]);
        for id in [2, 3, 4] {
            merge.visit(id, |row| {
                if row.0 == 4 {
                    vec![Field::Fixed("name")]
                } else {
                    Vec::new()
                }
            });
        }
        let node = Item::Node;
        assert_eq!(
            merge.finish(),
            vec![
                Difference::Unexpected { item: node, id: 1 },
                Difference::Unexpected { item: node, id: 2 },
                Difference::Missing { item: node, id: 3 },
                Difference::Differs {
                    item: node,
                    id: 4,
                    fields: vec![Field::Fixed("name")]
                },
                Difference::Unexpected { item: node, id: 9 },
            ]
        );
    }
}
