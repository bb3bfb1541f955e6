//! The graph projection against a real FalkorDB server started by the test harness.

use std::collections::BTreeMap;

use ahlt::graph::{self, FalkorBackend, GraphBackend, GraphEdge, GraphError, GraphNode, IfBusy};
use ahlt::store::ident::is_valid_ident;
use ahlt::store::{self, NewEntity};
use ahlt::test_app::TestApp;
use ahlt::testing::{falkordb_url, unique_name};
use falkordb::{FalkorClientBuilder, FalkorValue};
use serde_json::{Value, json};
use sqlx::PgPool;

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

/// A backend on its own graph, so tests running in parallel never share one.
async fn backend() -> FalkorBackend {
    FalkorBackend::connect(&falkordb_url().await, &unique_name("graph"))
        .await
        .unwrap()
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

async fn assert_projection(pool: &PgPool, backend: &FalkorBackend, env: &str) {
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

#[tokio::test]
async fn resync_projects_every_entity_and_relation_without_secrets() {
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
    let backend = backend().await;

    let report = graph::resync(pool, &backend, "dev", IfBusy::Fail)
        .await
        .unwrap();

    let (nodes, edges) = expected(pool, "dev").await;
    assert!(edges.len() > 1, "the demo data has relations");
    assert_eq!(report.nodes, nodes.len() as u64);
    assert_eq!(report.edges, edges.len() as u64);
    assert_eq!(report.removed, 0);
    assert_projection(pool, &backend, "dev").await;
    let graph_nodes = backend.nodes("dev").await.unwrap();
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
}

#[tokio::test]
async fn second_resync_removes_exactly_what_was_deleted() {
    let app = TestApp::new().await;
    let pool = app.pool();
    let a = entity(pool, NewEntity::new("team", "a").property("size", 3)).await;
    let b = entity(pool, NewEntity::new("team", "b").label("B")).await;
    let c = entity(pool, NewEntity::new("team", "c")).await;
    entity(pool, NewEntity::new("relation_type", "graph_reports_to")).await;
    let ab = relation(pool, "graph_reports_to", a, b).await;
    relation(pool, "graph_reports_to", b, c).await;
    relation(pool, "graph_reports_to", c, a).await;
    let backend = backend().await;
    let first = graph::resync(pool, &backend, "dev", IfBusy::Fail)
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
    let second = graph::resync(pool, &backend, "dev", IfBusy::Fail)
        .await
        .unwrap();

    assert_eq!(second.nodes, first.nodes - 1);
    assert_eq!(second.edges, first.edges - 3);
    assert_eq!(second.removed, 4, "one node and three relationships");
    assert_projection(pool, &backend, "dev").await;
    let ids: Vec<i64> = backend
        .nodes("dev")
        .await
        .unwrap()
        .iter()
        .map(|n| n.id)
        .collect();
    assert!(ids.contains(&a) && ids.contains(&b) && !ids.contains(&c));
}

#[tokio::test]
async fn environments_with_colliding_ids_stay_separate() {
    let dev = TestApp::new().await;
    let prod = TestApp::new().await;
    for app in [&dev, &prod] {
        let x = entity(app.pool(), NewEntity::new("team", "x")).await;
        let y = entity(app.pool(), NewEntity::new("team", "y")).await;
        entity(app.pool(), NewEntity::new("relation_type", "graph_knows")).await;
        relation(app.pool(), "graph_knows", x, y).await;
    }
    entity(prod.pool(), NewEntity::new("team", "prod_only")).await;
    let backend = backend().await;
    graph::resync(prod.pool(), &backend, "prod", IfBusy::Fail)
        .await
        .unwrap();
    let prod_nodes = backend.nodes("prod").await.unwrap();
    let prod_edges = backend.edges("prod").await.unwrap();

    graph::resync(dev.pool(), &backend, "dev", IfBusy::Fail)
        .await
        .unwrap();
    let mut conn = dev.pool().acquire().await.unwrap();
    let x: i64 = sqlx::query_scalar("SELECT id FROM entities WHERE name = 'x'")
        .fetch_one(&mut *conn)
        .await
        .unwrap();
    store::delete_entity(&mut conn, x).await.unwrap();
    drop(conn);
    let report = graph::resync(dev.pool(), &backend, "dev", IfBusy::Fail)
        .await
        .unwrap();

    assert_eq!(report.removed, 2, "dev's x and its relationship");
    assert_projection(dev.pool(), &backend, "dev").await;
    assert_eq!(backend.nodes("prod").await.unwrap(), prod_nodes);
    assert_eq!(backend.edges("prod").await.unwrap(), prod_edges);
    assert_projection(prod.pool(), &backend, "prod").await;
    assert!(prod_nodes.iter().any(|n| n.name == "prod_only"));
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

#[tokio::test]
async fn hostile_text_round_trips_as_data() {
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
    let backend = backend().await;
    let report = graph::resync(pool, &backend, "dev", IfBusy::Fail)
        .await
        .unwrap();
    let (expected_nodes, expected_edges) = expected(pool, "dev").await;
    assert_eq!(report.nodes, expected_nodes.len() as u64);
    assert_eq!(report.edges, expected_edges.len() as u64);
    assert_projection(pool, &backend, "dev").await;

    // Keys never come from Postgres unchecked, but the backend takes any key as data.
    let node = GraphNode {
        env: "dev".into(),
        id: 1_000_000,
        entity_type: "note".into(),
        name: "hostile keys".into(),
        label: String::new(),
        is_active: true,
        properties: HOSTILE
            .iter()
            .map(|k| (k.to_string(), json!(format!("value of {k}"))))
            .collect(),
    };
    backend
        .upsert_nodes("dev", 1, std::slice::from_ref(&node))
        .await
        .unwrap();
    let nodes = backend.nodes("dev").await.unwrap();
    assert_eq!(nodes.len(), expected_nodes.len() + 1);
    assert_eq!(nodes.iter().find(|n| n.id == node.id), Some(&node));
    assert!(backend.nodes("prod").await.unwrap().is_empty());
    assert_eq!(backend.edges("dev").await.unwrap(), expected_edges);

    // Hostile labels and relationship types are refused before any query.
    for text in HOSTILE.iter().filter(|t| !is_valid_ident(t)) {
        let bad = GraphNode {
            entity_type: text.to_string(),
            ..node.clone()
        };
        assert!(matches!(
            backend.upsert_nodes("dev", 1, &[bad]).await,
            Err(GraphError::InvalidIdent(_))
        ));
        let bad = GraphEdge {
            env: "dev".into(),
            id: 7,
            relation_type: text.to_string(),
            source_id: ids[0],
            target_id: ids[1],
            properties: BTreeMap::new(),
        };
        assert!(matches!(
            backend.upsert_edges("dev", 1, &[bad]).await,
            Err(GraphError::InvalidIdent(_))
        ));
    }
    assert_eq!(backend.nodes("dev").await.unwrap(), nodes);
}

/// Checks before every write of a resync that the previous projection is still whole.
struct Observed<'a> {
    inner: &'a FalkorBackend,
    env: &'static str,
    before: Vec<GraphNode>,
    checks: std::sync::atomic::AtomicUsize,
}

impl Observed<'_> {
    async fn assert_previous_projection_intact(&self) {
        let now = self.inner.nodes(self.env).await.unwrap();
        for node in &self.before {
            assert!(
                now.iter().any(|n| n.id == node.id),
                "node {} vanished mid-resync",
                node.id
            );
        }
        self.checks
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    }
}

impl GraphBackend for Observed<'_> {
    async fn ensure_schema(&self) -> graph::GraphResult<()> {
        self.assert_previous_projection_intact().await;
        self.inner.ensure_schema().await
    }

    async fn upsert_nodes(
        &self,
        env: &str,
        stamp: i64,
        nodes: &[GraphNode],
    ) -> graph::GraphResult<()> {
        self.assert_previous_projection_intact().await;
        self.inner.upsert_nodes(env, stamp, nodes).await
    }

    async fn upsert_edges(
        &self,
        env: &str,
        stamp: i64,
        edges: &[GraphEdge],
    ) -> graph::GraphResult<()> {
        self.assert_previous_projection_intact().await;
        self.inner.upsert_edges(env, stamp, edges).await
    }

    async fn delete_nodes(&self, env: &str, ids: &[i64]) -> graph::GraphResult<u64> {
        self.inner.delete_nodes(env, ids).await
    }

    async fn delete_edges(&self, env: &str, edges: &[graph::EdgeRef]) -> graph::GraphResult<u64> {
        self.inner.delete_edges(env, edges).await
    }

    async fn sweep(&self, env: &str, stamp: i64) -> graph::GraphResult<u64> {
        self.assert_previous_projection_intact().await;
        self.inner.sweep(env, stamp).await
    }

    async fn read(
        &self,
        cypher: &'static str,
        params: Vec<(&'static str, graph::Param)>,
    ) -> graph::GraphResult<Vec<Vec<serde_json::Value>>> {
        self.inner.read(cypher, params).await
    }

    async fn nodes(&self, env: &str) -> graph::GraphResult<Vec<GraphNode>> {
        self.inner.nodes(env).await
    }

    async fn edges(&self, env: &str) -> graph::GraphResult<Vec<GraphEdge>> {
        self.inner.edges(env).await
    }
}

#[tokio::test]
async fn resync_never_empties_the_graph_before_the_sweep() {
    let (app, _) = TestApp::with_demo().await;
    let pool = app.pool();
    let backend = backend().await;
    graph::resync(pool, &backend, "dev", IfBusy::Fail)
        .await
        .unwrap();
    let before = backend.nodes("dev").await.unwrap();
    assert!(!before.is_empty());

    let observed = Observed {
        inner: &backend,
        env: "dev",
        before,
        checks: Default::default(),
    };
    let report = graph::resync(pool, &observed, "dev", IfBusy::Fail)
        .await
        .unwrap();

    // ensure_schema, at least one node batch and one edge batch, and the sweep.
    assert!(observed.checks.into_inner() >= 4);
    assert_eq!(report.removed, 0);
    assert_projection(pool, &backend, "dev").await;
}
