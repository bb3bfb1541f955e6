//! The graph projection against real servers: FalkorDB, started by the test harness
//! (always), and Neo4j, when `NEO4J_URI` is set (see `ahlt::testing::neo4j_backend`).
//!
//! Every test body is generic over the backend and run once per backend by
//! [`on_every_backend!`]. Neo4j tests all share one database, so every test writes under
//! environment names of its own (`unique_name`) and removes them when it passes.

use std::collections::BTreeMap;

use ::falkordb::{FalkorClientBuilder, FalkorValue};
use ahlt::graph::{
    self, EdgeRef, FalkorBackend, GraphBackend, GraphEdge, GraphError, GraphNode, IfBusy, Param,
};
use ahlt::store::ident::is_valid_ident;
use ahlt::store::{self, NewEntity};
use ahlt::test_app::TestApp;
use ahlt::testing::{falkordb_url, unique_name};
use serde_json::{Value, json};
use sqlx::PgPool;

/// Runs each named `async fn name<B: GraphBackend>(backend: &B)` as `falkordb::name`
/// and `neo4j::name` (skipped, with a message, when `NEO4J_URI` is not set).
macro_rules! on_every_backend {
    ($($test:ident),* $(,)?) => {
        mod falkordb {
            $(
                #[tokio::test]
                async fn $test() {
                    let backend = super::falkor_backend().await;
                    super::$test(&backend).await;
                }
            )*
        }

        mod neo4j {
            $(
                #[tokio::test]
                async fn $test() {
                    let Some(backend) = ahlt::testing::neo4j_backend().await else {
                        eprintln!("skipped: NEO4J_URI is not set");
                        return;
                    };
                    super::$test(&backend).await;
                }
            )*
        }
    };
}

on_every_backend!(
    resync_projects_every_entity_and_relation_without_secrets,
    second_resync_removes_exactly_what_was_deleted,
    environments_with_colliding_ids_stay_separate,
    hostile_text_round_trips_as_data,
    resync_never_empties_the_graph_before_the_sweep,
    delete_nodes_removes_them_with_their_relationships,
    delete_edges_removes_exactly_the_referenced_relationships,
    read_returns_scalars_lists_and_maps_in_column_order,
    sweep_keeps_items_stamped_at_or_after_its_stamp,
    resync_sweep_keeps_live_writes_made_during_the_resync,
    located_ids_of_other_nodes_never_redirect_a_resync_write,
    every_property_shape_round_trips_through_resyncs,
    resync_writes_every_relationship_across_many_batches,
    a_failed_relationship_write_fails_the_resync_without_sweeping,
);

#[tokio::test]
async fn falkordb_test_server_round_trips_a_query() {
    let url = falkordb_url().await;
    let client = FalkorClientBuilder::new_async()
        .with_connection_info(url.as_str().try_into().unwrap())
        .build()
        .await
        .unwrap();
    let mut graph = client.select_graph(unique_name("roundtrip"));
    let result = graph
        .query("CREATE (n:Thing {text: $text}) RETURN n.text")
        .with_param("text", "it's {`MATCH`} ü")
        .execute()
        .await
        .unwrap();
    let rows: Vec<_> = result.data.into_values_lossy().collect();
    assert_eq!(
        rows,
        vec![vec![FalkorValue::String("it's {`MATCH`} ü".into())]]
    );
    graph.delete().await.unwrap();
}

/// A FalkorDB backend on its own graph, so tests running in parallel never share one.
async fn falkor_backend() -> FalkorBackend {
    FalkorBackend::connect(&falkordb_url().await, &unique_name("graph"))
        .await
        .unwrap()
}

/// Removes everything a test wrote under these environments (Neo4j tests share one
/// database; on FalkorDB each test has its own graph, removing is merely tidy).
async fn clean_up<B: GraphBackend>(backend: &B, envs: &[&str]) {
    for env in envs {
        backend.sweep(env, i64::MAX).await.unwrap();
        assert!(backend.nodes(env).await.unwrap().is_empty(), "{env}");
    }
}

/// Properties as the graph holds them: secrets and nulls absent, lists of strings or
/// integers as lists, other arrays and objects as JSON text.
fn projected(properties: BTreeMap<String, Value>) -> BTreeMap<String, Value> {
    properties
        .into_iter()
        .filter(|(k, v)| !graph::is_secret(k, v))
        .filter_map(|(k, v)| Some((k, graph::PropertyValue::projected(&v)?)))
        .collect()
}

async fn properties(pool: &PgPool, query: &str) -> BTreeMap<i64, BTreeMap<String, Value>> {
    let rows: Vec<(i64, String, Value)> = sqlx::query_as(query).fetch_all(pool).await.unwrap();
    let mut out: BTreeMap<i64, BTreeMap<String, Value>> = BTreeMap::new();
    for (id, key, value) in rows {
        out.entry(id).or_default().insert(key, value);
    }
    out
}

/// What the projection of `pool` must look like, read straight from Postgres.
async fn expected(pool: &PgPool, env: &str) -> (Vec<GraphNode>, Vec<GraphEdge>) {
    let mut entity_props =
        properties(pool, "SELECT entity_id, key, value FROM entity_properties").await;
    let mut relation_props = properties(
        pool,
        "SELECT relation_id, key, value FROM relation_properties",
    )
    .await;
    let entities: Vec<(i64, String, String, String, bool)> =
        sqlx::query_as("SELECT id, entity_type, name, label, is_active FROM entities ORDER BY id")
            .fetch_all(pool)
            .await
            .unwrap();
    let relations: Vec<(i64, String, i64, i64)> = sqlx::query_as(
        "SELECT r.id, rt.name, r.source_id, r.target_id FROM relations r \
         JOIN entities rt ON rt.id = r.relation_type_id ORDER BY r.id",
    )
    .fetch_all(pool)
    .await
    .unwrap();
    let nodes = entities
        .into_iter()
        .map(|(id, entity_type, name, label, is_active)| GraphNode {
            env: env.into(),
            id,
            entity_type,
            name,
            label,
            is_active,
            properties: projected(entity_props.remove(&id).unwrap_or_default()),
        })
        .collect();
    let edges = relations
        .into_iter()
        .map(|(id, relation_type, source_id, target_id)| GraphEdge {
            env: env.into(),
            id,
            relation_type,
            source_id,
            target_id,
            properties: projected(relation_props.remove(&id).unwrap_or_default()),
        })
        .collect();
    (nodes, edges)
}

async fn assert_projection<B: GraphBackend>(pool: &PgPool, backend: &B, env: &str) {
    let (nodes, edges) = expected(pool, env).await;
    assert_eq!(backend.nodes(env).await.unwrap(), nodes);
    assert_eq!(backend.edges(env).await.unwrap(), edges);
}

async fn entity(pool: &PgPool, new: NewEntity) -> i64 {
    let mut conn = pool.acquire().await.unwrap();
    store::create_entity(&mut conn, &new)
        .await
        .unwrap()
        .entity
        .id
}

async fn relation(pool: &PgPool, relation_type: &str, source: i64, target: i64) -> i64 {
    let mut conn = pool.acquire().await.unwrap();
    let properties = BTreeMap::from([("since".to_string(), json!(2024))]);
    store::create_relation(&mut conn, relation_type, source, target, &properties)
        .await
        .unwrap()
        .id
}

async fn resync_projects_every_entity_and_relation_without_secrets<B: GraphBackend>(backend: &B) {
    let dev = unique_name("dev");
    let (app, _) = TestApp::with_demo().await;
    let pool = app.pool();
    // A hash that somehow landed in the EAV store is still never projected.
    let planted = entity(
        pool,
        NewEntity::new("note", "planted")
            .property("text", "$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaA")
            .property("nested", json!({"a": [1, 2.5, "x"], "b": null}))
            .property("title", "kept"),
    )
    .await;

    let report = graph::resync(pool, backend, &dev, IfBusy::Fail)
        .await
        .unwrap();

    let (nodes, edges) = expected(pool, &dev).await;
    assert!(edges.len() > 1, "the demo data has relations");
    assert_eq!(report.nodes, nodes.len() as u64);
    assert_eq!(report.edges, edges.len() as u64);
    assert_eq!(report.removed, 0);
    assert_projection(pool, backend, &dev).await;
    let graph_nodes = backend.nodes(&dev).await.unwrap();
    let planted = graph_nodes.iter().find(|n| n.id == planted).unwrap();
    assert_eq!(planted.properties.get("title"), Some(&json!("kept")));
    assert!(!planted.properties.contains_key("text"));
    let credentials: i64 = sqlx::query_scalar("SELECT count(*) FROM user_credentials")
        .fetch_one(pool)
        .await
        .unwrap();
    assert!(credentials > 0, "the demo data has password hashes");
    for node in &graph_nodes {
        let text = format!("{node:?}");
        assert!(!text.contains("$argon2"), "{text}");
    }
    clean_up(backend, &[&dev]).await;
}

async fn second_resync_removes_exactly_what_was_deleted<B: GraphBackend>(backend: &B) {
    let dev = unique_name("dev");
    let app = TestApp::new().await;
    let pool = app.pool();
    let a = entity(pool, NewEntity::new("team", "a").property("size", 3)).await;
    let b = entity(pool, NewEntity::new("team", "b").label("B")).await;
    let c = entity(pool, NewEntity::new("team", "c")).await;
    entity(pool, NewEntity::new("relation_type", "graph_reports_to")).await;
    let ab = relation(pool, "graph_reports_to", a, b).await;
    relation(pool, "graph_reports_to", b, c).await;
    relation(pool, "graph_reports_to", c, a).await;
    let first = graph::resync(pool, backend, &dev, IfBusy::Fail)
        .await
        .unwrap();
    let seeded: i64 = sqlx::query_scalar("SELECT count(*) FROM entities")
        .fetch_one(pool)
        .await
        .unwrap();
    assert_eq!(first.nodes, seeded as u64);
    assert_eq!(first.removed, 0);

    let mut conn = pool.acquire().await.unwrap();
    store::delete_relation(&mut conn, ab).await.unwrap();
    // Deleting an entity also deletes its two relations (b->c, c->a).
    store::delete_entity(&mut conn, c).await.unwrap();
    store::delete_property(&mut conn, a, "size").await.unwrap();
    drop(conn);
    let second = graph::resync(pool, backend, &dev, IfBusy::Fail)
        .await
        .unwrap();

    assert_eq!(second.nodes, first.nodes - 1);
    assert_eq!(second.edges, first.edges - 3);
    assert_eq!(second.removed, 4, "one node and three relationships");
    assert_projection(pool, backend, &dev).await;
    let ids: Vec<i64> = backend
        .nodes(&dev)
        .await
        .unwrap()
        .iter()
        .map(|n| n.id)
        .collect();
    assert!(ids.contains(&a) && ids.contains(&b) && !ids.contains(&c));
    clean_up(backend, &[&dev]).await;
}

async fn environments_with_colliding_ids_stay_separate<B: GraphBackend>(backend: &B) {
    let (dev_env, prod_env) = (unique_name("dev"), unique_name("prod"));
    let dev = TestApp::new().await;
    let prod = TestApp::new().await;
    for app in [&dev, &prod] {
        let x = entity(app.pool(), NewEntity::new("team", "x")).await;
        let y = entity(app.pool(), NewEntity::new("team", "y")).await;
        entity(app.pool(), NewEntity::new("relation_type", "graph_knows")).await;
        relation(app.pool(), "graph_knows", x, y).await;
    }
    entity(prod.pool(), NewEntity::new("team", "prod_only")).await;
    graph::resync(prod.pool(), backend, &prod_env, IfBusy::Fail)
        .await
        .unwrap();
    let prod_nodes = backend.nodes(&prod_env).await.unwrap();
    let prod_edges = backend.edges(&prod_env).await.unwrap();

    graph::resync(dev.pool(), backend, &dev_env, IfBusy::Fail)
        .await
        .unwrap();
    let mut conn = dev.pool().acquire().await.unwrap();
    let x: i64 = sqlx::query_scalar("SELECT id FROM entities WHERE name = 'x'")
        .fetch_one(&mut *conn)
        .await
        .unwrap();
    store::delete_entity(&mut conn, x).await.unwrap();
    drop(conn);
    let report = graph::resync(dev.pool(), backend, &dev_env, IfBusy::Fail)
        .await
        .unwrap();

    assert_eq!(report.removed, 2, "dev's x and its relationship");
    assert_projection(dev.pool(), backend, &dev_env).await;
    assert_eq!(backend.nodes(&prod_env).await.unwrap(), prod_nodes);
    assert_eq!(backend.edges(&prod_env).await.unwrap(), prod_edges);
    assert_projection(prod.pool(), backend, &prod_env).await;
    assert!(prod_nodes.iter().any(|n| n.name == "prod_only"));
    clean_up(backend, &[&dev_env, &prod_env]).await;
}

const HOSTILE: &[&str] = &[
    "`",
    "a`b",
    "'",
    "\"",
    "\\",
    "\\'",
    "{",
    "}",
    "}) DETACH DELETE n //",
    "'}) MATCH (m) DETACH DELETE m RETURN 1 //",
    "` DELETE n //",
    "MATCH (n) DETACH DELETE n",
    "$env",
    "env",
    "id",
    "sync_run",
    "a.b",
    "p_x",
    "%60",
    "ünïcödé ✓ 漢字 🎉",
    "line\nbreak\ttab",
    "CYPHER x=1",
];

/// A note whose property keys are the hostile texts, which Postgres would refuse as keys.
fn hostile_keyed_note(env: &str, id: i64, name: &str) -> GraphNode {
    GraphNode {
        env: env.to_string(),
        id,
        entity_type: "note".into(),
        name: name.into(),
        label: String::new(),
        is_active: true,
        properties: HOSTILE
            .iter()
            .map(|k| (k.to_string(), json!(format!("value of {k}"))))
            .collect(),
    }
}

async fn hostile_text_round_trips_as_data<B: GraphBackend>(backend: &B) {
    let (dev, prod) = (unique_name("dev"), unique_name("prod"));
    let app = TestApp::new().await;
    let pool = app.pool();
    let mut ids = Vec::new();
    for (i, text) in HOSTILE.iter().enumerate() {
        // Names and labels refuse control characters; property values take anything.
        let printable = text.replace(char::is_control, " ");
        let new = NewEntity::new("note", &format!("{i} {printable}"))
            .label(&printable)
            .property("text", *text)
            .property("list", json!([text, {"k": text}]));
        ids.push(entity(pool, new).await);
    }
    entity(pool, NewEntity::new("relation_type", "graph_cites")).await;
    for pair in ids.windows(2) {
        relation(pool, "graph_cites", pair[0], pair[1]).await;
    }
    let report = graph::resync(pool, backend, &dev, IfBusy::Fail)
        .await
        .unwrap();
    let (expected_nodes, expected_edges) = expected(pool, &dev).await;
    assert_eq!(report.nodes, expected_nodes.len() as u64);
    assert_eq!(report.edges, expected_edges.len() as u64);
    assert_projection(pool, backend, &dev).await;

    // Keys never come from Postgres unchecked, but the backend takes any key as data.
    let node = hostile_keyed_note(&dev, 1_000_000, "hostile keys");
    backend
        .upsert_nodes(&dev, 1, std::slice::from_ref(&node))
        .await
        .unwrap();
    let nodes = backend.nodes(&dev).await.unwrap();
    assert_eq!(nodes.len(), expected_nodes.len() + 1);
    assert_eq!(nodes.iter().find(|n| n.id == node.id), Some(&node));
    assert!(backend.nodes(&prod).await.unwrap().is_empty());
    assert_eq!(backend.edges(&dev).await.unwrap(), expected_edges);

    // Hostile labels and relationship types are refused before any query.
    for text in HOSTILE.iter().filter(|t| !is_valid_ident(t)) {
        let bad = GraphNode {
            entity_type: text.to_string(),
            ..node.clone()
        };
        assert!(matches!(
            backend.upsert_nodes(&dev, 1, &[bad]).await,
            Err(GraphError::InvalidIdent(_))
        ));
        let bad = GraphEdge {
            env: dev.clone(),
            id: 7,
            relation_type: text.to_string(),
            source_id: ids[0],
            target_id: ids[1],
            properties: BTreeMap::new(),
        };
        assert!(matches!(
            backend.upsert_edges(&dev, 1, &[bad]).await,
            Err(GraphError::InvalidIdent(_))
        ));
    }
    assert_eq!(backend.nodes(&dev).await.unwrap(), nodes);
    clean_up(backend, &[&dev]).await;
}

/// A write of a resync, as a [`Hook`] sees it before the backend does it.
enum Write<'w> {
    Schema,
    Nodes,
    Edges { env: &'w str, stamp: i64 },
    Sweep,
}

/// What a test does before each write a [`Hooked`] backend forwards; an error fails the
/// write.
trait Hook: Send + Sync {
    fn before<B: GraphBackend>(
        &self,
        inner: &B,
        write: Write<'_>,
    ) -> impl Future<Output = graph::GraphResult<()>> + Send;
}

/// A backend that forwards everything to `inner`, calling `hook` before each write.
struct Hooked<'a, B, H> {
    inner: &'a B,
    hook: H,
}

impl<B: GraphBackend, H: Hook> GraphBackend for Hooked<'_, B, H> {
    async fn ensure_schema(&self) -> graph::GraphResult<()> {
        self.hook.before(self.inner, Write::Schema).await?;
        self.inner.ensure_schema().await
    }

    async fn upsert_nodes(
        &self,
        env: &str,
        stamp: i64,
        nodes: &[GraphNode],
    ) -> graph::GraphResult<()> {
        self.hook.before(self.inner, Write::Nodes).await?;
        self.inner.upsert_nodes(env, stamp, nodes).await
    }

    async fn upsert_edges(
        &self,
        env: &str,
        stamp: i64,
        edges: &[GraphEdge],
    ) -> graph::GraphResult<()> {
        self.hook
            .before(self.inner, Write::Edges { env, stamp })
            .await?;
        self.inner.upsert_edges(env, stamp, edges).await
    }

    async fn delete_nodes(&self, env: &str, ids: &[i64]) -> graph::GraphResult<u64> {
        self.inner.delete_nodes(env, ids).await
    }

    async fn delete_edges(&self, env: &str, edges: &[EdgeRef]) -> graph::GraphResult<u64> {
        self.inner.delete_edges(env, edges).await
    }

    async fn sweep(&self, env: &str, stamp: i64) -> graph::GraphResult<u64> {
        self.hook.before(self.inner, Write::Sweep).await?;
        self.inner.sweep(env, stamp).await
    }

    async fn read(
        &self,
        cypher: &'static str,
        params: Vec<(&'static str, Param)>,
    ) -> graph::GraphResult<Vec<Vec<Value>>> {
        self.inner.read(cypher, params).await
    }

    async fn nodes(&self, env: &str) -> graph::GraphResult<Vec<GraphNode>> {
        self.inner.nodes(env).await
    }

    async fn edges(&self, env: &str) -> graph::GraphResult<Vec<GraphEdge>> {
        self.inner.edges(env).await
    }
}

/// Checks before every write of a resync that the previous projection is still whole.
struct Intact {
    env: String,
    before: Vec<GraphNode>,
    checks: std::sync::atomic::AtomicUsize,
}

impl Hook for Intact {
    async fn before<B: GraphBackend>(&self, inner: &B, _: Write<'_>) -> graph::GraphResult<()> {
        let now = inner.nodes(&self.env).await.unwrap();
        for node in &self.before {
            assert!(
                now.iter().any(|n| n.id == node.id),
                "node {} vanished mid-resync",
                node.id
            );
        }
        self.checks
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        Ok(())
    }
}

async fn resync_never_empties_the_graph_before_the_sweep<B: GraphBackend>(backend: &B) {
    let dev = unique_name("dev");
    let (app, _) = TestApp::with_demo().await;
    let pool = app.pool();
    graph::resync(pool, backend, &dev, IfBusy::Fail)
        .await
        .unwrap();
    let before = backend.nodes(&dev).await.unwrap();
    assert!(!before.is_empty());

    let observed = Hooked {
        inner: backend,
        hook: Intact {
            env: dev.clone(),
            before,
            checks: Default::default(),
        },
    };
    let report = graph::resync(pool, &observed, &dev, IfBusy::Fail)
        .await
        .unwrap();

    // ensure_schema, at least one node batch and one edge batch, and the sweep.
    assert!(observed.hook.checks.into_inner() >= 4);
    assert_eq!(report.removed, 0);
    assert_projection(pool, backend, &dev).await;
    clean_up(backend, &[&dev]).await;
}

fn node(env: &str, id: i64, name: &str, properties: Value) -> GraphNode {
    GraphNode {
        env: env.into(),
        id,
        entity_type: "team".into(),
        name: name.into(),
        label: name.to_uppercase(),
        is_active: id % 2 == 1,
        properties: serde_json::from_value(properties).unwrap(),
    }
}

fn edge(env: &str, id: i64, source_id: i64, target_id: i64) -> GraphEdge {
    GraphEdge {
        env: env.into(),
        id,
        relation_type: "graph_links".into(),
        source_id,
        target_id,
        properties: BTreeMap::from([("weight".to_string(), json!(id))]),
    }
}

/// Nodes 1, 2, 3 and relationships 10: 1->2, 11: 2->3, 12: 3->1, 13: 3->3 (a self-loop)
/// under `env`, stamped `stamp`.
async fn seed<B: GraphBackend>(
    backend: &B,
    env: &str,
    stamp: i64,
) -> (Vec<GraphNode>, Vec<GraphEdge>) {
    let nodes = vec![
        node(env, 1, "a", json!({"roles": ["vote", "chair"], "size": 3})),
        node(env, 2, "b", json!({"ratio": 0.5, "meta": {"k": [1, "x"]}})),
        node(env, 3, "c", json!({})),
    ];
    let edges = vec![
        edge(env, 10, 1, 2),
        edge(env, 11, 2, 3),
        edge(env, 12, 3, 1),
        edge(env, 13, 3, 3),
    ];
    backend.upsert_nodes(env, stamp, &nodes).await.unwrap();
    backend.upsert_edges(env, stamp, &edges).await.unwrap();
    let stored = |items: Vec<GraphNode>| -> Vec<GraphNode> {
        items
            .into_iter()
            .map(|n| GraphNode {
                properties: projected(n.properties),
                ..n
            })
            .collect()
    };
    let nodes = stored(nodes);
    assert_eq!(backend.nodes(env).await.unwrap(), nodes);
    assert_eq!(backend.edges(env).await.unwrap(), edges);
    (nodes, edges)
}

fn ids<T>(items: &[T], id: impl Fn(&T) -> i64) -> Vec<i64> {
    items.iter().map(id).collect()
}

async fn delete_nodes_removes_them_with_their_relationships<B: GraphBackend>(backend: &B) {
    let (dev, prod) = (unique_name("dev"), unique_name("prod"));
    let (prod_nodes, prod_edges) = seed(backend, &prod, 1).await;
    seed(backend, &dev, 1).await;

    assert_eq!(backend.delete_nodes(&dev, &[]).await.unwrap(), 0);
    // Node 2 with 1->2 and 2->3; an unknown id is no error.
    assert_eq!(backend.delete_nodes(&dev, &[2, 99]).await.unwrap(), 3);
    assert_eq!(ids(&backend.nodes(&dev).await.unwrap(), |n| n.id), [1, 3]);
    assert_eq!(ids(&backend.edges(&dev).await.unwrap(), |e| e.id), [12, 13]);
    // Nodes 1 and 3 with 3->1 (between both) and the self-loop 3->3, each counted once.
    assert_eq!(backend.delete_nodes(&dev, &[1, 3]).await.unwrap(), 4);
    assert!(backend.nodes(&dev).await.unwrap().is_empty());
    assert!(backend.edges(&dev).await.unwrap().is_empty());
    assert_eq!(backend.delete_nodes(&dev, &[1]).await.unwrap(), 0);

    // The same ids in another environment are untouched.
    assert_eq!(backend.nodes(&prod).await.unwrap(), prod_nodes);
    assert_eq!(backend.edges(&prod).await.unwrap(), prod_edges);
    clean_up(backend, &[&dev, &prod]).await;
}

async fn delete_edges_removes_exactly_the_referenced_relationships<B: GraphBackend>(backend: &B) {
    let (dev, prod) = (unique_name("dev"), unique_name("prod"));
    let (prod_nodes, prod_edges) = seed(backend, &prod, 1).await;
    let (nodes, _) = seed(backend, &dev, 1).await;

    assert_eq!(backend.delete_edges(&dev, &[]).await.unwrap(), 0);
    let refs = [
        EdgeRef {
            id: 10,
            source_id: 1,
        },
        // Wrong source: relationships are found through their source node.
        EdgeRef {
            id: 11,
            source_id: 1,
        },
        // Unknown id.
        EdgeRef {
            id: 99,
            source_id: 2,
        },
        EdgeRef {
            id: 13,
            source_id: 3,
        },
    ];
    assert_eq!(backend.delete_edges(&dev, &refs).await.unwrap(), 2);
    assert_eq!(ids(&backend.edges(&dev).await.unwrap(), |e| e.id), [11, 12]);
    assert_eq!(
        backend
            .delete_edges(
                &dev,
                &[EdgeRef {
                    id: 11,
                    source_id: 2
                }]
            )
            .await
            .unwrap(),
        1
    );
    assert_eq!(ids(&backend.edges(&dev).await.unwrap(), |e| e.id), [12]);
    // Nodes stay.
    assert_eq!(backend.nodes(&dev).await.unwrap(), nodes);
    assert_eq!(backend.nodes(&prod).await.unwrap(), prod_nodes);
    assert_eq!(backend.edges(&prod).await.unwrap(), prod_edges);
    clean_up(backend, &[&dev, &prod]).await;
}

async fn read_returns_scalars_lists_and_maps_in_column_order<B: GraphBackend>(backend: &B) {
    let (dev, prod) = (unique_name("dev"), unique_name("prod"));
    seed(backend, &dev, 1).await;
    seed(backend, &prod, 1).await;

    // Column names deliberately not in alphabetical order.
    let rows = backend
        .read(
            "MATCH (n:Entity {env: $env}) WHERE n.id IN $ids AND n.name <> $skip \
             RETURN n.id AS zeta, n.p_roles AS roles, \
             {name: n.name, active: n.is_active, tags: $tags, ratio: n.p_ratio} AS info, \
             n.p_missing AS missing \
             ORDER BY n.id",
            vec![
                ("env", Param::Str(dev.clone())),
                ("ids", Param::Ints(vec![1, 2, 3])),
                ("skip", Param::Str("c".into())),
                ("tags", Param::Strs(vec!["x".into(), "it's `y`".into()])),
            ],
        )
        .await
        .unwrap();
    assert_eq!(
        rows,
        vec![
            vec![
                json!(1),
                json!(["vote", "chair"]),
                json!({"name": "a", "active": true, "tags": ["x", "it's `y`"], "ratio": null}),
                Value::Null,
            ],
            vec![
                json!(2),
                Value::Null,
                json!({"name": "b", "active": false, "tags": ["x", "it's `y`"], "ratio": 0.5}),
                Value::Null,
            ],
        ]
    );

    let rows = backend
        .read(
            "MATCH (n:Entity {env: $env}) WHERE n.is_active = $active \
             WITH n ORDER BY n.id \
             RETURN count(n) AS total, collect(n.name) AS names, $cap AS cap",
            vec![
                ("env", Param::Str(dev.clone())),
                ("active", Param::Bool(true)),
                ("cap", Param::Int(-5)),
            ],
        )
        .await
        .unwrap();
    assert_eq!(rows, vec![vec![json!(2), json!(["a", "c"]), json!(-5)]]);

    // No rows.
    let rows = backend
        .read(
            "MATCH (n:Entity {env: $env}) RETURN n.id AS id",
            vec![("env", Param::Str(unique_name("nobody")))],
        )
        .await
        .unwrap();
    assert!(rows.is_empty());
    clean_up(backend, &[&dev, &prod]).await;
}

async fn sweep_keeps_items_stamped_at_or_after_its_stamp<B: GraphBackend>(backend: &B) {
    let (dev, prod) = (unique_name("dev"), unique_name("prod"));
    let (prod_nodes, prod_edges) = seed(backend, &prod, 100).await;
    let (nodes, edges) = seed(backend, &dev, 100).await;
    // Rewritten later: node 1, node 3 and the relationship 3->1 between them, and the
    // relationship 2->3 whose source node 2 stays old.
    backend
        .upsert_nodes(&dev, 300, &[nodes[0].clone(), nodes[2].clone()])
        .await
        .unwrap();
    backend
        .upsert_edges(&dev, 300, &[edges[1].clone(), edges[2].clone()])
        .await
        .unwrap();
    // At exactly the stamp: kept.
    backend
        .upsert_edges(&dev, 200, &[edges[3].clone()])
        .await
        .unwrap();

    // Node 2 (with 2->3, new but hanging on it) and 1->2.
    assert_eq!(backend.sweep(&dev, 200).await.unwrap(), 3);
    assert_eq!(ids(&backend.nodes(&dev).await.unwrap(), |n| n.id), [1, 3]);
    assert_eq!(ids(&backend.edges(&dev).await.unwrap(), |e| e.id), [12, 13]);
    assert_eq!(backend.sweep(&dev, 200).await.unwrap(), 0);
    assert_eq!(backend.nodes(&prod).await.unwrap(), prod_nodes);
    assert_eq!(backend.edges(&prod).await.unwrap(), prod_edges);
    clean_up(backend, &[&dev, &prod]).await;
}

/// Writes a live change, stamped on the Postgres clock, in the middle of a resync (before
/// its first relationship batch), as a concurrent sync would.
struct LiveWriter<'a> {
    pool: &'a PgPool,
    live: GraphNode,
    written: std::sync::atomic::AtomicBool,
}

impl Hook for LiveWriter<'_> {
    async fn before<B: GraphBackend>(&self, inner: &B, write: Write<'_>) -> graph::GraphResult<()> {
        let Write::Edges { env, stamp } = write else {
            return Ok(());
        };
        if !self
            .written
            .swap(true, std::sync::atomic::Ordering::Relaxed)
        {
            let now: i64 = sqlx::query_scalar(
                "SELECT (extract(epoch FROM clock_timestamp()) * 1000000)::bigint",
            )
            .fetch_one(self.pool)
            .await
            .unwrap();
            assert!(now > stamp, "the live write comes after the resync's stamp");
            inner
                .upsert_nodes(env, now, std::slice::from_ref(&self.live))
                .await?;
        }
        Ok(())
    }
}

async fn resync_sweep_keeps_live_writes_made_during_the_resync<B: GraphBackend>(backend: &B) {
    let dev = unique_name("dev");
    let app = TestApp::new().await;
    let pool = app.pool();
    let a = entity(pool, NewEntity::new("team", "a")).await;
    let b = entity(pool, NewEntity::new("team", "b")).await;
    entity(pool, NewEntity::new("relation_type", "graph_reports_to")).await;
    relation(pool, "graph_reports_to", a, b).await;
    // Written before the resync and gone from Postgres since: swept.
    let stale = node(&dev, 1_000_001, "stale", json!({}));
    backend
        .upsert_nodes(&dev, 1, std::slice::from_ref(&stale))
        .await
        .unwrap();
    // Written while the resync runs, after its stamp: kept.
    let live = node(&dev, 1_000_002, "live", json!({"note": "live"}));
    let writer = Hooked {
        inner: backend,
        hook: LiveWriter {
            pool,
            live: live.clone(),
            written: Default::default(),
        },
    };

    let report = graph::resync(pool, &writer, &dev, IfBusy::Fail)
        .await
        .unwrap();

    assert!(writer.hook.written.into_inner());
    assert_eq!(report.removed, 1, "only the stale node");
    let (mut expected_nodes, expected_edges) = expected(pool, &dev).await;
    expected_nodes.push(live);
    assert_eq!(backend.nodes(&dev).await.unwrap(), expected_nodes);
    assert_eq!(backend.edges(&dev).await.unwrap(), expected_edges);
    clean_up(backend, &[&dev]).await;
}

/// `(source, relationship, target)` ids of every relationship of `env`, by the nodes it
/// actually connects (not the ids it carries as properties).
async fn connections<B: GraphBackend>(backend: &B, env: &str) -> Vec<(i64, i64, i64)> {
    let rows = backend
        .read(
            "MATCH (s:Entity {env: $env})-[r]->(t:Entity) WHERE r.env = $env \
             RETURN s.id AS s, r.id AS r, t.id AS t ORDER BY r",
            vec![("env", Param::Str(env.to_owned()))],
        )
        .await
        .unwrap();
    rows.iter()
        .map(|row| {
            let id = |i: usize| row[i].as_i64().unwrap();
            (id(0), id(1), id(2))
        })
        .collect()
}

/// A resync finds nodes by where they were located; a location that is by now another
/// node's (ids are reused after deletes; here: swapped, and one in another environment)
/// must never receive the entity's properties or relationships.
async fn located_ids_of_other_nodes_never_redirect_a_resync_write<B: GraphBackend>(backend: &B) {
    let (dev, prod) = (unique_name("dev"), unique_name("prod"));
    let (prod_nodes, prod_edges) = seed(backend, &prod, 1).await;
    seed(backend, &dev, 1).await;
    let located = backend.locate_nodes(&dev).await.unwrap();
    let elsewhere = backend.locate_nodes(&prod).await.unwrap();
    let mut wrong = graph::NodeIds::new();
    if !located.is_empty() {
        wrong.insert(1, located[&2]);
        wrong.insert(2, located[&1]);
        wrong.insert(3, elsewhere[&3]);
        assert_eq!(located.len(), 3);
    }

    let renamed: Vec<GraphNode> = [1, 2, 3]
        .into_iter()
        .map(|id| node(&dev, id, &format!("renamed-{id}"), json!({"round": 2})))
        .collect();
    backend
        .resync_nodes(&dev, 2, &renamed, &mut wrong)
        .await
        .unwrap();
    let names: Vec<(i64, String)> = backend
        .nodes(&dev)
        .await
        .unwrap()
        .into_iter()
        .map(|n| (n.id, n.name))
        .collect();
    assert_eq!(
        names,
        [1, 2, 3].map(|id| (id, format!("renamed-{id}"))).to_vec()
    );
    // Where the nodes really are is known again.
    assert_eq!(wrong, backend.locate_nodes(&dev).await.unwrap());

    let mut misplaced = graph::NodeIds::new();
    if !located.is_empty() {
        misplaced.insert(1, located[&2]);
        misplaced.insert(2, located[&1]);
        misplaced.insert(3, elsewhere[&1]);
    }
    let edges = vec![
        edge(&dev, 20, 1, 2),
        edge(&dev, 21, 2, 3),
        edge(&dev, 22, 3, 3),
    ];
    backend
        .resync_edges(&dev, 2, &edges, &misplaced)
        .await
        .unwrap();
    let connected = connections(backend, &dev).await;
    for expected in [(1, 20, 2), (2, 21, 3), (3, 22, 3)] {
        assert!(
            connected.contains(&expected),
            "{expected:?} in {connected:?}"
        );
    }
    assert_eq!(backend.nodes(&prod).await.unwrap(), prod_nodes);
    assert_eq!(backend.edges(&prod).await.unwrap(), prod_edges);
    clean_up(backend, &[&dev, &prod]).await;
}

/// FalkorDB writes the properties of a shape many rows share inline and rare shapes or
/// keys no identifier can carry as maps: every way round-trips, and a later resync
/// replaces the properties (a removed key is gone) whichever way a row went.
async fn every_property_shape_round_trips_through_resyncs<B: GraphBackend>(backend: &B) {
    let dev = unique_name("dev");
    let app = TestApp::new().await;
    let pool = app.pool();
    let mut shared = Vec::new();
    for i in 0..40 {
        let new = NewEntity::new("team", &format!("team {i}"))
            .property("size", i)
            .property("tags", json!([]))
            .property("motto", format!("motto {i}"));
        shared.push(entity(pool, new).await);
    }
    let rare = entity(
        pool,
        NewEntity::new("team", "rare")
            .property("plan", json!({"a": [1, "x"]}))
            .property("size", 1),
    )
    .await;
    entity(pool, NewEntity::new("relation_type", "graph_supports")).await;
    for pair in shared.windows(2) {
        relation(pool, "graph_supports", pair[0], pair[1]).await;
    }
    let mut conn = pool.acquire().await.unwrap();
    let odd_edge = relation(pool, "graph_supports", rare, shared[0]).await;
    store::set_relation_property(&mut conn, odd_edge, "note", &json!("only here"))
        .await
        .unwrap();
    graph::resync(pool, backend, &dev, IfBusy::Fail)
        .await
        .unwrap();
    assert_projection(pool, backend, &dev).await;

    store::delete_property(&mut conn, shared[3], "motto")
        .await
        .unwrap();
    store::set_property(&mut conn, shared[4], "size", &json!(99))
        .await
        .unwrap();
    store::set_property(&mut conn, rare, "size", &json!(2))
        .await
        .unwrap();
    drop(conn);
    let second = graph::resync(pool, backend, &dev, IfBusy::Fail)
        .await
        .unwrap();
    assert_eq!(second.removed, 0);
    assert_projection(pool, backend, &dev).await;
    let nodes = backend.nodes(&dev).await.unwrap();
    let third = nodes.iter().find(|n| n.id == shared[3]).unwrap();
    assert!(!third.properties.contains_key("motto"), "{third:?}");

    // Keys Postgres would refuse still reach the graph as data, many rows at once.
    let hostile: Vec<GraphNode> = (0..20)
        .map(|i| hostile_keyed_note(&dev, 2_000_000 + i, &format!("hostile {i}")))
        .collect();
    let mut located = backend.locate_nodes(&dev).await.unwrap();
    backend
        .resync_nodes(&dev, 1, &hostile, &mut located)
        .await
        .unwrap();
    let nodes = backend.nodes(&dev).await.unwrap();
    for node in &hostile {
        assert_eq!(nodes.iter().find(|n| n.id == node.id), Some(node));
    }
    clean_up(backend, &[&dev]).await;
}

/// Relations enough for three batches of one type (written in halves, two writes in
/// flight across batches), between `entities` notes; returns the relation type's name.
async fn bulk_relations(pool: &PgPool, entities: i64, relations: i64) -> &'static str {
    let rel_type = "graph_bulk_link";
    entity(pool, NewEntity::new("relation_type", rel_type)).await;
    sqlx::query(
        "INSERT INTO entities (entity_type, name, label) \
         SELECT 'note', 'bulk-' || g, '' FROM generate_series(1, $1::bigint) g",
    )
    .bind(entities)
    .execute(pool)
    .await
    .unwrap();
    // Every (source, target) pair once: target = the `step`-th note after the source.
    sqlx::query(
        "WITH notes AS (SELECT id, row_number() OVER (ORDER BY id) - 1 AS n \
                        FROM entities WHERE name LIKE 'bulk-%'), \
              rt AS (SELECT id FROM entities WHERE entity_type = 'relation_type' AND name = $1) \
         INSERT INTO relations (relation_type_id, source_id, target_id) \
         SELECT rt.id, s.id, t.id FROM generate_series(0, $3::bigint - 1) g \
         CROSS JOIN rt \
         JOIN notes s ON s.n = g % $2 \
         JOIN notes t ON t.n = (g % $2 + 1 + g / $2) % $2",
    )
    .bind(rel_type)
    .bind(entities)
    .bind(relations)
    .execute(pool)
    .await
    .unwrap();
    sqlx::query(
        "INSERT INTO relation_properties (relation_id, key, value) \
         SELECT id, 'weight', to_jsonb(id % 7) FROM relations",
    )
    .execute(pool)
    .await
    .unwrap();
    rel_type
}

async fn resync_writes_every_relationship_across_many_batches<B: GraphBackend>(backend: &B) {
    let dev = unique_name("dev");
    let app = TestApp::new().await;
    let pool = app.pool();
    bulk_relations(pool, 1000, 12_001).await;
    let relations: i64 = sqlx::query_scalar("SELECT count(*) FROM relations")
        .fetch_one(pool)
        .await
        .unwrap();
    assert!(relations >= 12_001, "three batches of 5000: {relations}");

    let first = graph::resync(pool, backend, &dev, IfBusy::Fail)
        .await
        .unwrap();
    assert_eq!(first.edges, relations as u64);
    assert_projection(pool, backend, &dev).await;

    // The second resync finds every node and merges every relationship; the ones
    // deleted meanwhile are swept.
    let deleted = sqlx::query("DELETE FROM relations WHERE id % 1000 = 0")
        .execute(pool)
        .await
        .unwrap()
        .rows_affected();
    assert!(deleted > 0);
    let second = graph::resync(pool, backend, &dev, IfBusy::Fail)
        .await
        .unwrap();
    assert_eq!(second.edges, relations as u64 - deleted);
    assert_eq!(second.removed, deleted);
    assert_projection(pool, backend, &dev).await;
    clean_up(backend, &[&dev]).await;
}

/// Fails the `fail_at`-th relationship write of a resync (counting from 1).
struct FailingEdges {
    fail_at: usize,
    writes: std::sync::atomic::AtomicUsize,
}

impl Hook for FailingEdges {
    async fn before<B: GraphBackend>(&self, _: &B, write: Write<'_>) -> graph::GraphResult<()> {
        match write {
            Write::Edges { .. } => {
                let write = 1 + self
                    .writes
                    .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                match write == self.fail_at {
                    true => Err(GraphError::Backend("the graph went away".to_string())),
                    false => Ok(()),
                }
            }
            Write::Sweep => panic!("a failed resync never sweeps"),
            Write::Schema | Write::Nodes => Ok(()),
        }
    }
}

async fn a_failed_relationship_write_fails_the_resync_without_sweeping<B: GraphBackend>(
    backend: &B,
) {
    let dev = unique_name("dev");
    let app = TestApp::new().await;
    let pool = app.pool();
    bulk_relations(pool, 500, 12_001).await;
    graph::resync(pool, backend, &dev, IfBusy::Fail)
        .await
        .unwrap();
    let before = backend.edges(&dev).await.unwrap();

    // The fourth of six halves fails while others are in flight or still to come.
    let failing = Hooked {
        inner: backend,
        hook: FailingEdges {
            fail_at: 4,
            writes: Default::default(),
        },
    };
    let error = graph::resync(pool, &failing, &dev, IfBusy::Fail)
        .await
        .unwrap_err();
    assert!(
        matches!(&error, GraphError::Backend(m) if m == "the graph went away"),
        "{error:?}"
    );
    // Nothing was swept: every relationship of the previous projection is still there.
    let after = backend.edges(&dev).await.unwrap();
    assert_eq!(
        after.iter().map(|e| e.id).collect::<Vec<_>>(),
        before.iter().map(|e| e.id).collect::<Vec<_>>()
    );
    // And the environment is not left locked.
    graph::resync(pool, backend, &dev, IfBusy::Fail)
        .await
        .unwrap();
    assert_projection(pool, backend, &dev).await;
    clean_up(backend, &[&dev]).await;
}
