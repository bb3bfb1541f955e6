//! Live graph sync against a real PostgreSQL and a real FalkorDB: every kind of change,
//! outage and recovery, queue overflow, concurrent resyncs, and the graph API.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use ahlt::graph::metrics::Failure;
use ahlt::graph::sync::{self, SyncConfig};
use ahlt::graph::{
    self, Backend, EdgeRef, FalkorBackend, GraphBackend, GraphEdge, GraphError, GraphNode,
    GraphResult, IfBusy, Param, Projection,
};
use ahlt::store::{self, EntityPatch, NewEntity};
use ahlt::test_app::{ADMIN_PASSWORD, TestApp};
use ahlt::testing::{FalkorServer, falkordb_url, unique_name};
use axum::http::StatusCode;
use serde_json::{Value, json};
use sqlx::PgPool;
use tokio::sync::{Notify, watch};
use tokio::task::JoinHandle;

/// A safety net against hangs, not a timing assertion.
const CONVERGE: Duration = Duration::from_secs(60);

fn fast_retries() -> SyncConfig {
    SyncConfig {
        batch_size: 500,
        retry_min: Duration::from_millis(10),
        retry_max: Duration::from_millis(200),
    }
}

async fn falkor(url: &str) -> FalkorBackend {
    FalkorBackend::connect(url, &unique_name("sync"))
        .await
        .unwrap()
}

struct Running {
    projection: Projection,
    stop: watch::Sender<bool>,
    task: JoinHandle<()>,
}

impl Running {
    async fn stop(self) {
        self.stop.send(true).unwrap();
        tokio::time::timeout(CONVERGE, self.task)
            .await
            .expect("sync stops")
            .unwrap();
    }
}

fn start(pool: &PgPool, projection: Projection) -> Running {
    let (stop, stop_rx) = watch::channel(false);
    let task = sync::spawn(
        pool.clone(),
        projection.clone(),
        None,
        fast_retries(),
        stop_rx,
    );
    Running {
        projection,
        stop,
        task,
    }
}

async fn flush(pool: &PgPool, projection: &Projection) {
    tokio::time::timeout(CONVERGE, projection.flush(pool))
        .await
        .expect("the graph converges")
        .unwrap();
}

/// The graph holds exactly what a fresh resync of the database writes.
async fn assert_converged(pool: &PgPool, backend: &impl GraphBackend, env: &str) {
    let reference = falkor(&falkordb_url().await).await;
    graph::resync(pool, &reference, env, IfBusy::Wait)
        .await
        .unwrap();
    let expected_nodes = reference.nodes(env).await.unwrap();
    assert!(!expected_nodes.is_empty());
    assert_eq!(backend.nodes(env).await.unwrap(), expected_nodes);
    assert_eq!(
        backend.edges(env).await.unwrap(),
        reference.edges(env).await.unwrap()
    );
}

async fn node(backend: &impl GraphBackend, env: &str, id: i64) -> Option<GraphNode> {
    backend
        .nodes(env)
        .await
        .unwrap()
        .into_iter()
        .find(|n| n.id == id)
}

async fn edge(backend: &impl GraphBackend, env: &str, id: i64) -> Option<GraphEdge> {
    backend
        .edges(env)
        .await
        .unwrap()
        .into_iter()
        .find(|e| e.id == id)
}

#[tokio::test]
async fn every_kind_of_change_reaches_the_graph() {
    let (app, _) = TestApp::with_demo().await;
    let pool = app.pool();
    let env = unique_name("env");
    let backend = falkor(&falkordb_url().await).await;
    let running = start(
        pool,
        Projection::new(Backend::Falkor(backend.clone()), &env),
    );
    let projection = running.projection.clone();
    flush(pool, &projection).await;
    assert_converged(pool, &backend, &env).await;
    let mut conn = pool.acquire().await.unwrap();

    // A new entity with properties, and a secret that must not be projected.
    let mut new = NewEntity::new("note", "minutes");
    new.properties = BTreeMap::from([
        ("title".to_string(), json!("First")),
        ("api_token".to_string(), json!("t0ps3cret")),
    ]);
    let a = store::create_entity(&mut conn, &new)
        .await
        .unwrap()
        .entity
        .id;
    let b = store::create_entity(&mut conn, &NewEntity::new("note", "agenda"))
        .await
        .unwrap()
        .entity
        .id;
    flush(pool, &projection).await;
    let projected = node(&backend, &env, a).await.expect("new entity projected");
    assert_eq!(
        projected.properties,
        BTreeMap::from([("title".to_string(), json!("First"))])
    );

    // Property set, changed and deleted; entity fields updated.
    store::set_property(&mut conn, a, "tags", &json!(["x", "y"]))
        .await
        .unwrap();
    store::set_property(&mut conn, a, "title", &json!("Second"))
        .await
        .unwrap();
    store::delete_property(&mut conn, b, "nothing")
        .await
        .unwrap();
    let patch = EntityPatch {
        label: Some("Agenda".into()),
        is_active: Some(false),
        ..EntityPatch::default()
    };
    store::update_entity(&mut conn, b, &patch).await.unwrap();
    flush(pool, &projection).await;
    let a_node = node(&backend, &env, a).await.unwrap();
    assert_eq!(a_node.properties["title"], json!("Second"));
    assert_eq!(a_node.properties["tags"], json!(["x", "y"]));
    let b_node = node(&backend, &env, b).await.unwrap();
    assert_eq!((b_node.label.as_str(), b_node.is_active), ("Agenda", false));
    store::delete_property(&mut conn, a, "tags").await.unwrap();
    flush(pool, &projection).await;
    assert!(
        !node(&backend, &env, a)
            .await
            .unwrap()
            .properties
            .contains_key("tags")
    );

    // Relations: created with a property, property changed, deleted.
    store::create_entity(&mut conn, &NewEntity::new("relation_type", "cites"))
        .await
        .unwrap();
    let props = BTreeMap::from([("since".to_string(), json!(2024))]);
    let r = store::create_relation(&mut conn, "cites", a, b, &props)
        .await
        .unwrap()
        .id;
    let keep = store::create_relation(&mut conn, "cites", b, a, &BTreeMap::new())
        .await
        .unwrap()
        .id;
    flush(pool, &projection).await;
    let projected = edge(&backend, &env, r).await.expect("relation projected");
    assert_eq!((projected.source_id, projected.target_id), (a, b));
    store::set_relation_property(&mut conn, r, "since", &json!(2025))
        .await
        .unwrap();
    flush(pool, &projection).await;
    assert_eq!(
        edge(&backend, &env, r).await.unwrap().properties["since"],
        json!(2025)
    );
    store::delete_relation(&mut conn, r).await.unwrap();
    flush(pool, &projection).await;
    assert!(edge(&backend, &env, r).await.is_none());
    assert!(edge(&backend, &env, keep).await.is_some());

    // Deleting an entity removes its node and (cascading in Postgres) its relationships.
    store::delete_entity(&mut conn, a).await.unwrap();
    flush(pool, &projection).await;
    assert!(node(&backend, &env, a).await.is_none());
    assert!(edge(&backend, &env, keep).await.is_none());

    // A rolled-back write never reaches the graph.
    {
        use sqlx::Connection;
        let mut tx = conn.begin().await.unwrap();
        store::create_entity(&mut tx, &NewEntity::new("note", "never"))
            .await
            .unwrap();
        tx.rollback().await.unwrap();
    }
    flush(pool, &projection).await;
    assert_converged(pool, &backend, &env).await;
    assert!(projection.current().is_some());
    assert_eq!(projection.metrics().failures(Failure::Write), 0);
    running.stop().await;
}

#[tokio::test]
async fn two_environments_with_colliding_ids_sync_apart() {
    // Two databases: ids collide (both start from the same seed).
    let (dev, _) = TestApp::with_demo().await;
    let (prod, _) = TestApp::with_demo().await;
    let url = falkordb_url().await;
    let graph_name = unique_name("shared");
    let shared = || async { FalkorBackend::connect(&url, &graph_name).await.unwrap() };
    let (dev_env, prod_env) = (unique_name("dev"), unique_name("prod"));
    let dev_sync = start(
        dev.pool(),
        Projection::new(Backend::Falkor(shared().await), &dev_env),
    );
    let prod_sync = start(
        prod.pool(),
        Projection::new(Backend::Falkor(shared().await), &prod_env),
    );
    flush(dev.pool(), &dev_sync.projection).await;
    flush(prod.pool(), &prod_sync.projection).await;

    let mut conn = dev.pool().acquire().await.unwrap();
    let id = store::create_entity(&mut conn, &NewEntity::new("note", "dev only"))
        .await
        .unwrap()
        .entity
        .id;
    let victim: i64 = sqlx::query_scalar("SELECT min(id) FROM entities")
        .fetch_one(dev.pool())
        .await
        .unwrap();
    sqlx::query("DELETE FROM relations WHERE source_id = $1 OR target_id = $1")
        .bind(victim)
        .execute(dev.pool())
        .await
        .unwrap();
    flush(dev.pool(), &dev_sync.projection).await;

    let backend = shared().await;
    assert!(node(&backend, &dev_env, id).await.is_some());
    assert!(
        node(&backend, &prod_env, id).await.is_none() || {
            // prod may have its own entity with this id; it must not be dev's.
            node(&backend, &prod_env, id).await.unwrap().name != "dev only"
        }
    );
    assert_converged(dev.pool(), &backend, &dev_env).await;
    assert_converged(prod.pool(), &backend, &prod_env).await;
    dev_sync.stop().await;
    prod_sync.stop().await;
}

#[tokio::test]
async fn an_outage_marks_the_projection_stale_and_it_converges_after_recovery() {
    let (app, _) = TestApp::with_demo().await;
    let pool = app.pool();
    let mut server = FalkorServer::start().await;
    let env = unique_name("env");
    let graph_name = unique_name("outage");
    let backend = FalkorBackend::connect(&server.url(), &graph_name)
        .await
        .unwrap();
    let running = start(
        pool,
        Projection::new(Backend::Falkor(backend.clone()), &env),
    );
    let projection = running.projection.clone();
    flush(pool, &projection).await;
    let mut conn = pool.acquire().await.unwrap();
    let before = store::create_entity(&mut conn, &NewEntity::new("note", "before"))
        .await
        .unwrap()
        .entity
        .id;
    flush(pool, &projection).await;
    assert!(node(&backend, &env, before).await.is_some());

    server.stop();
    let during = store::create_entity(&mut conn, &NewEntity::new("note", "during"))
        .await
        .unwrap()
        .entity
        .id;
    store::delete_entity(&mut conn, before).await.unwrap();
    // The write fails: reads switch to Postgres and a resync is scheduled.
    tokio::time::timeout(
        CONVERGE,
        projection.wait_until(|p| p.metrics().failures(Failure::Write) > 0),
    )
    .await
    .expect("the failed write is noticed");
    assert!(projection.is_stale());
    assert!(projection.current().is_none());

    // The server comes back empty; the resync rebuilds everything.
    server.restart().await;
    flush(pool, &projection).await;
    assert!(!projection.is_stale());
    assert!(node(&backend, &env, during).await.is_some());
    assert!(node(&backend, &env, before).await.is_none());
    assert_converged(pool, &backend, &env).await;
    running.stop().await;
}

#[tokio::test]
async fn a_full_queue_is_replaced_by_a_resync() {
    let (app, _) = TestApp::with_demo().await;
    let pool = app.pool();
    let env = unique_name("env");
    let backend = falkor(&falkordb_url().await).await;
    let projection = Projection::unconnected(&env, 3);
    projection.set_backend(Backend::Falkor(backend.clone()));
    let (stop, stop_rx) = watch::channel(false);
    // The listener alone: nothing drains the queue yet.
    let listener = sync::spawn_listener(
        pool.clone(),
        projection.clone(),
        fast_retries(),
        stop_rx.clone(),
    );
    tokio::time::timeout(CONVERGE, projection.wait_until(Projection::is_listening))
        .await
        .expect("the listener starts");
    // Ten entities in one transaction overflow three slots.
    let mut tx = pool.begin().await.unwrap();
    for i in 0..10 {
        store::create_entity(&mut tx, &NewEntity::new("note", &format!("n{i}")))
            .await
            .unwrap();
    }
    tx.commit().await.unwrap();
    tokio::time::timeout(
        CONVERGE,
        projection.wait_until(|p| p.metrics().failures(Failure::Overflow) > 0),
    )
    .await
    .expect("the queue overflows");
    // Changes notified after the overflow queue up again; the resync is due either way.
    assert!(projection.pending().1);
    assert!(projection.is_stale());

    let worker = sync::spawn_worker(
        pool.clone(),
        projection.clone(),
        None,
        fast_retries(),
        stop_rx,
    );
    flush(pool, &projection).await;
    assert_converged(pool, &backend, &env).await;
    stop.send(true).unwrap();
    listener.await.unwrap();
    worker.await.unwrap();
}

/// A backend that records calls and can hold a resync inside its first node batch.
struct Gate {
    inner: FalkorBackend,
    name: &'static str,
    log: Arc<Mutex<Vec<String>>>,
    entered: Arc<Notify>,
    release: Arc<Notify>,
    hold: bool,
}

impl Gate {
    fn record(&self, what: &str) {
        self.log
            .lock()
            .unwrap()
            .push(format!("{}:{what}", self.name));
    }
}

impl GraphBackend for Gate {
    async fn ensure_schema(&self) -> GraphResult<()> {
        self.record("start");
        self.inner.ensure_schema().await
    }

    async fn upsert_nodes(&self, env: &str, stamp: i64, nodes: &[GraphNode]) -> GraphResult<()> {
        if self.hold {
            self.entered.notify_one();
            self.release.notified().await;
        }
        self.inner.upsert_nodes(env, stamp, nodes).await
    }

    async fn upsert_edges(&self, env: &str, stamp: i64, edges: &[GraphEdge]) -> GraphResult<()> {
        self.inner.upsert_edges(env, stamp, edges).await
    }

    async fn delete_nodes(&self, env: &str, ids: &[i64]) -> GraphResult<u64> {
        self.inner.delete_nodes(env, ids).await
    }

    async fn delete_edges(&self, env: &str, edges: &[EdgeRef]) -> GraphResult<u64> {
        self.inner.delete_edges(env, edges).await
    }

    async fn sweep(&self, env: &str, stamp: i64) -> GraphResult<u64> {
        let removed = self.inner.sweep(env, stamp).await;
        self.record("swept");
        removed
    }

    async fn nodes(&self, env: &str) -> GraphResult<Vec<GraphNode>> {
        self.inner.nodes(env).await
    }

    async fn edges(&self, env: &str) -> GraphResult<Vec<GraphEdge>> {
        self.inner.edges(env).await
    }

    async fn read(
        &self,
        cypher: &'static str,
        params: Vec<(&'static str, Param)>,
    ) -> GraphResult<Vec<Vec<Value>>> {
        self.inner.read(cypher, params).await
    }
}

#[tokio::test]
async fn concurrent_resyncs_of_one_environment_run_one_at_a_time() {
    let (app, _) = TestApp::with_demo().await;
    let pool = app.pool().clone();
    let env = unique_name("env");
    let backend = falkor(&falkordb_url().await).await;
    let log = Arc::new(Mutex::new(Vec::new()));
    let (entered, release) = (Arc::new(Notify::new()), Arc::new(Notify::new()));
    let gate = |name, hold| Gate {
        inner: backend.clone(),
        name,
        log: log.clone(),
        entered: entered.clone(),
        release: release.clone(),
        hold,
    };

    let first = {
        let (pool, env, gate) = (pool.clone(), env.clone(), gate("first", true));
        tokio::spawn(async move { graph::resync(&pool, &gate, &env, IfBusy::Fail).await })
    };
    entered.notified().await;

    // While the first holds the lock: one that must not wait is refused ...
    let refused = graph::resync(&pool, &gate("refused", false), &env, IfBusy::Fail).await;
    assert!(matches!(refused, Err(GraphError::ResyncInProgress(ref e)) if *e == env));
    // ... and one that may wait starts only after the first has swept.
    let second = {
        let (pool, env, gate) = (pool.clone(), env.clone(), gate("second", false));
        tokio::spawn(async move { graph::resync(&pool, &gate, &env, IfBusy::Wait).await })
    };
    // Another environment is not blocked.
    graph::resync(
        &pool,
        &gate("other", false),
        &unique_name("env"),
        IfBusy::Fail,
    )
    .await
    .unwrap();
    release.notify_one();
    let first = first.await.unwrap().unwrap();
    let second = second.await.unwrap().unwrap();
    assert_eq!((first.nodes, first.edges), (second.nodes, second.edges));
    let log = log.lock().unwrap().clone();
    let at = |entry: &str| {
        log.iter()
            .position(|e| e == entry)
            .unwrap_or_else(|| panic!("{entry} in {log:?}"))
    };
    assert!(at("first:swept") < at("second:start"), "{log:?}");
    assert!(!log.iter().any(|e| e.starts_with("refused:")), "{log:?}");
    assert_converged(&pool, &backend, &env).await;
}

/// A resync creates what it did not find without looking for it, so nothing else may
/// write the environment meanwhile: a live sync batch waits for the resync's end, then
/// writes.
#[tokio::test]
async fn a_live_sync_batch_waits_for_a_running_resync() {
    let (app, _) = TestApp::with_demo().await;
    let pool = app.pool().clone();
    let env = unique_name("env");
    let backend = falkor(&falkordb_url().await).await;
    let (entered, release) = (Arc::new(Notify::new()), Arc::new(Notify::new()));
    let gate = Gate {
        inner: backend.clone(),
        name: "resync",
        log: Default::default(),
        entered: entered.clone(),
        release: release.clone(),
        hold: true,
    };
    let resync = {
        let (pool, env) = (pool.clone(), env.clone());
        tokio::spawn(async move { graph::resync(&pool, &gate, &env, IfBusy::Fail).await })
    };
    entered.notified().await;

    let mut conn = pool.acquire().await.unwrap();
    let late = store::create_entity(&mut conn, &NewEntity::new("note", "late"))
        .await
        .unwrap()
        .entity
        .id;
    drop(conn);
    let batch = {
        let (pool, backend, env) = (pool.clone(), backend.clone(), env.clone());
        tokio::spawn(async move {
            sync::apply(&pool, &backend, &env, &[graph::Change::Entity(late)]).await
        })
    };
    // PostgreSQL says when the batch waits for the environment's writer lock.
    tokio::time::timeout(CONVERGE, async {
        loop {
            let waiting: i64 = sqlx::query_scalar(
                "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted \
                 AND objid = hashtext($1)::oid",
            )
            .bind(&env)
            .fetch_one(&pool)
            .await
            .unwrap();
            if waiting > 0 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await
    .expect("the batch waits for the lock");
    assert!(!batch.is_finished());
    assert_eq!(node(&backend, &env, late).await, None);

    release.notify_one();
    resync.await.unwrap().unwrap();
    batch.await.unwrap().unwrap();
    assert_eq!(node(&backend, &env, late).await.unwrap().name, "late");
    assert_converged(&pool, &backend, &env).await;
}

#[tokio::test]
async fn the_graph_api_reports_state_and_resyncs_with_counts() {
    let (app, _) = TestApp::with_demo().await;
    let env = app.state.config.env_name.clone();
    let backend = falkor(&falkordb_url().await).await;
    let projection = Projection::new(Backend::Falkor(backend.clone()), &env);
    let app = app.with_graph(projection.clone());
    let mut admin = app.client();
    admin.login("admin", ADMIN_PASSWORD).await;

    let status = admin.get("/api/v1/graph").await;
    assert_eq!(status.status, StatusCode::OK);
    let body = status.json();
    assert_eq!(body["configured"], json!(true));
    assert_eq!(body["current"], json!(false), "{body}");
    assert_eq!(body["stale"], json!(true), "{body}");

    let resync = admin.post_json("/api/v1/graph/resync", &json!({})).await;
    assert_eq!(resync.status, StatusCode::OK, "{}", resync.text());
    let report = resync.json();
    let nodes = backend.nodes(&env).await.unwrap().len() as u64;
    assert_eq!(report["nodes"], json!(nodes));
    assert_eq!(report["env"], json!(env));
    assert!(report["edges"].as_u64().unwrap() > 0);
    assert_converged(app.pool(), &backend, &env).await;
    let body = admin.get("/api/v1/graph").await.json();
    assert_eq!(
        (body["current"].clone(), body["stale"].clone()),
        (json!(true), json!(false))
    );

    // While another resync of this environment runs, the API refuses with 409.
    let (entered, release) = (Arc::new(Notify::new()), Arc::new(Notify::new()));
    let held = {
        let gate = Gate {
            inner: backend.clone(),
            name: "held",
            log: Arc::default(),
            entered: entered.clone(),
            release: release.clone(),
            hold: true,
        };
        let (pool, env) = (app.pool().clone(), env.clone());
        tokio::spawn(async move { graph::resync(&pool, &gate, &env, IfBusy::Fail).await })
    };
    entered.notified().await;
    let busy = admin.post_json("/api/v1/graph/resync", &json!({})).await;
    assert_eq!(busy.status, StatusCode::CONFLICT);
    assert_eq!(busy.error_code(), "conflict");
    release.notify_one();
    held.await.unwrap().unwrap();

    // The audit log names the resync; other users may not run one.
    let audit = admin.get("/api/v1/audit").await.json();
    assert!(audit.to_string().contains("graph.resync"), "{audit}");
    let mut nobody = app.client();
    assert_eq!(
        nobody
            .post_json("/api/v1/graph/resync", &json!({}))
            .await
            .status,
        StatusCode::UNAUTHORIZED
    );
}

#[tokio::test]
async fn without_a_graph_the_api_says_so_and_readiness_ignores_the_graph() {
    let app = TestApp::new().await;
    let mut admin = app.client();
    admin.login("admin", ADMIN_PASSWORD).await;
    let body = admin.get("/api/v1/graph").await.json();
    assert_eq!(body["configured"], json!(false));
    let resync = admin.post_json("/api/v1/graph/resync", &json!({})).await;
    assert_eq!(resync.status, StatusCode::CONFLICT);
    assert!(resync.text().contains("GRAPH_URI"), "{}", resync.text());

    // A graph that never connects: ready all the same, and the graph metrics say stale.
    let app = app.with_graph(Projection::unconnected("local", 10));
    let mut client = app.client();
    assert_eq!(client.get("/readyz").await.status, StatusCode::OK);
    let metrics = client.get("/metrics").await.text();
    assert!(metrics.contains("ahlt_graph_stale 1"), "{metrics}");
    assert!(metrics.contains("ahlt_graph_sync_queue_depth"), "{metrics}");
}

#[tokio::test]
async fn dependencies_and_their_property_changes_reach_the_graph_live() {
    use ahlt::domain::audit::Actor;
    use ahlt::domain::dependencies::{self, DependencyKind, DependencyUpdate, NewDependency};
    use ahlt::domain::{governance, kind};
    use ahlt::graph::queries;

    let (app, _) = TestApp::with_demo().await;
    let pool = app.pool();
    let env = unique_name("env");
    let backend = falkor(&falkordb_url().await).await;
    let running = start(
        pool,
        Projection::new(Backend::Falkor(backend.clone()), &env),
    );
    let projection = running.projection.clone();
    flush(pool, &projection).await;
    let tor = |name: &'static str| async move {
        store::find_entity(pool, kind::TOR, name)
            .await
            .unwrap()
            .unwrap()
            .id
    };
    let (board, finance) = (tor("board").await, tor("finance").await);
    let mut conn = pool.acquire().await.unwrap();
    let new = NewDependency {
        kind: DependencyKind::EscalatesTo,
        source_id: finance,
        target_id: board,
        output_types: "overspends".into(),
        description: "beyond the committee's limit".into(),
        is_blocking: false,
    };
    let dep = dependencies::create(&mut conn, &Actor::system(), &new)
        .await
        .unwrap();
    flush(pool, &projection).await;
    let projected = edge(&backend, &env, dep.id).await.expect("projected");
    assert_eq!(projected.relation_type, "escalates_to");
    assert_eq!((projected.source_id, projected.target_id), (finance, board));
    assert_eq!(projected.properties["output_types"], json!("overspends"));
    assert_eq!(projected.properties["is_blocking"], json!("false"));

    let change = DependencyUpdate {
        is_blocking: Some(true),
        ..Default::default()
    };
    dependencies::update(&mut conn, &Actor::system(), dep.id, &change)
        .await
        .unwrap();
    flush(pool, &projection).await;
    let projected = edge(&backend, &env, dep.id).await.unwrap();
    assert_eq!(projected.properties["is_blocking"], json!("true"));
    // The graph-backed map agrees with Postgres, the new edge included.
    let from_graph = queries::governance_map(&backend, &env)
        .await
        .unwrap()
        .sorted();
    let from_postgres = governance::map_pg(pool).await.unwrap().sorted();
    assert_eq!(from_graph, from_postgres);
    assert!(
        from_graph
            .dependencies
            .iter()
            .any(|d| d.id == dep.id && d.is_blocking)
    );

    dependencies::delete(&mut conn, &Actor::system(), dep.id)
        .await
        .unwrap();
    flush(pool, &projection).await;
    assert!(edge(&backend, &env, dep.id).await.is_none());
    drop(conn);
    running.stop().await;
}
