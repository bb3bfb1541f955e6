//! `graph::check` and the bench's code path against real FalkorDB and PostgreSQL servers.

use std::collections::BTreeMap;

use ahlt::graph::bench::{self, BenchOptions, GraphTarget};
use ahlt::graph::{
    self, CheckReport, Credentials, Difference, FalkorBackend, Field, GraphBackend, GraphNode,
    IfBusy, Item,
};
use ahlt::store::{self, NewEntity};
use ahlt::test_app::TestApp;
use ahlt::testing::{falkordb_url, unique_name};
use serde_json::json;
use sqlx::PgPool;

/// A backend on its own graph, so tests running in parallel never share one.
async fn backend() -> (FalkorBackend, String) {
    let name = unique_name("check");
    let backend = FalkorBackend::connect(&falkordb_url().await, &name)
        .await
        .unwrap();
    (backend, name)
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

async fn execute(pool: &PgPool, sql: &str, id: i64) {
    sqlx::query(sql).bind(id).execute(pool).await.unwrap();
}

async fn count(pool: &PgPool, table: &str) -> u64 {
    sqlx::query_scalar::<_, i64>(&format!("SELECT count(*) FROM {table}"))
        .fetch_one(pool)
        .await
        .unwrap() as u64
}

/// Three teams in a cycle of `graph_reports_to`, one holding a secret; ids returned.
async fn teams(pool: &PgPool) -> ([i64; 3], [i64; 3]) {
    let a = entity(
        pool,
        NewEntity::new("team", "a")
            .property("size", 3)
            .property("api_token", "never projected")
            .property("tags", json!(["x", "y"])),
    )
    .await;
    let b = entity(pool, NewEntity::new("team", "b").label("B")).await;
    let c = entity(pool, NewEntity::new("team", "c")).await;
    entity(pool, NewEntity::new("relation_type", "graph_reports_to")).await;
    let ab = relation(pool, "graph_reports_to", a, b).await;
    let bc = relation(pool, "graph_reports_to", b, c).await;
    let ca = relation(pool, "graph_reports_to", c, a).await;
    ([a, b, c], [ab, bc, ca])
}

#[tokio::test]
async fn a_fresh_resync_checks_identical() {
    let (app, _) = TestApp::with_demo().await;
    let pool = app.pool();
    teams(pool).await;
    let (backend, _) = backend().await;
    graph::resync(pool, &backend, "dev", IfBusy::Fail)
        .await
        .unwrap();

    let report = graph::check(pool, &backend, "dev").await.unwrap();

    let (nodes, edges) = (
        count(pool, "entities").await,
        count(pool, "relations").await,
    );
    assert_eq!(
        report,
        CheckReport {
            postgres_nodes: nodes,
            postgres_edges: edges,
            graph_nodes: nodes,
            graph_edges: edges,
            differences: Vec::new(),
        }
    );
    assert!(report.is_consistent());
}

#[tokio::test]
async fn an_empty_graph_misses_everything() {
    let app = TestApp::new().await;
    let pool = app.pool();
    teams(pool).await;
    let (backend, _) = backend().await;

    let report = graph::check(pool, &backend, "dev").await.unwrap();

    let (nodes, edges) = (
        count(pool, "entities").await,
        count(pool, "relations").await,
    );
    assert_eq!((report.graph_nodes, report.graph_edges), (0, 0));
    assert_eq!(report.counts(), ((nodes + edges) as usize, 0, 0));
}

#[tokio::test]
async fn every_kind_of_drift_in_postgres_is_reported() {
    let app = TestApp::new().await;
    let pool = app.pool();
    let ([a, b, c], [ab, bc, ca]) = teams(pool).await;
    let (backend, _) = backend().await;
    graph::resync(pool, &backend, "dev", IfBusy::Fail)
        .await
        .unwrap();

    // Changed without a resync: a's fixed fields and properties ...
    execute(
        pool,
        "UPDATE entities SET name = 'a2', is_active = FALSE WHERE id = $1",
        a,
    )
    .await;
    execute(
        pool,
        "UPDATE entity_properties SET value = '4' WHERE entity_id = $1 AND key = 'size'",
        a,
    )
    .await;
    execute(
        pool,
        "DELETE FROM entity_properties WHERE entity_id = $1 AND key = 'tags'",
        a,
    )
    .await;
    execute(
        pool,
        "INSERT INTO entity_properties (entity_id, key, value) VALUES ($1, 'motto', '\"go\"')",
        a,
    )
    .await;
    // ... a secret and a null added (neither is projected, so neither differs) ...
    execute(
        pool,
        "INSERT INTO entity_properties (entity_id, key, value) VALUES ($1, 'password', '\"p\"')",
        b,
    )
    .await;
    execute(
        pool,
        "INSERT INTO entity_properties (entity_id, key, value) VALUES ($1, 'empty', 'null')",
        b,
    )
    .await;
    // ... a relation's property, a relation and an entity (with its relations) deleted ...
    execute(
        pool,
        "UPDATE relation_properties SET value = '1999' WHERE relation_id = $1",
        ab,
    )
    .await;
    execute(pool, "DELETE FROM relations WHERE id = $1", ca).await;
    execute(pool, "DELETE FROM entities WHERE id = $1", c).await;
    // ... and an entity and a relation added.
    let d = entity(pool, NewEntity::new("team", "d")).await;
    let da = relation(pool, "graph_reports_to", d, a).await;

    let report = graph::check(pool, &backend, "dev").await.unwrap();

    let node = Item::Node;
    let rel = Item::Relationship;
    assert_eq!(
        report.differences,
        vec![
            Difference::Differs {
                item: node,
                id: a,
                fields: vec![
                    Field::Fixed("name"),
                    Field::Fixed("is_active"),
                    Field::MissingProperty("motto".into()),
                    Field::ChangedProperty("size".into()),
                    Field::UnexpectedProperty("tags".into()),
                ],
            },
            Difference::Unexpected { item: node, id: c },
            Difference::Missing { item: node, id: d },
            Difference::Differs {
                item: rel,
                id: ab,
                fields: vec![Field::ChangedProperty("since".into())],
            },
            Difference::Unexpected { item: rel, id: bc },
            Difference::Unexpected { item: rel, id: ca },
            Difference::Missing { item: rel, id: da },
        ]
    );
    assert_eq!(report.counts(), (2, 3, 2));
    assert!(!report.is_consistent());
    // Values never reach the report, only ids, fields and keys.
    let text: String = report
        .differences
        .iter()
        .map(|d| format!("{d}\n"))
        .collect();
    for value in ["a2", "1999", "go", "never projected"] {
        assert!(!text.contains(value), "{text}");
    }

    // A resync brings them back together.
    graph::resync(pool, &backend, "dev", IfBusy::Fail)
        .await
        .unwrap();
    assert!(
        graph::check(pool, &backend, "dev")
            .await
            .unwrap()
            .is_consistent()
    );
}

#[tokio::test]
async fn drift_in_the_graph_itself_is_reported() {
    let app = TestApp::new().await;
    let pool = app.pool();
    let ([a, _, _], _) = teams(pool).await;
    let (backend, _) = backend().await;
    graph::resync(pool, &backend, "dev", IfBusy::Fail)
        .await
        .unwrap();
    let mut node: GraphNode = backend
        .nodes("dev")
        .await
        .unwrap()
        .into_iter()
        .find(|n| n.id == a)
        .unwrap();
    // Rewritten as another type: the old type label stays next to the new one.
    node.entity_type = "note".into();
    backend.upsert_nodes("dev", 1, &[node]).await.unwrap();

    let report = graph::check(pool, &backend, "dev").await.unwrap();

    assert_eq!(
        report.differences,
        vec![Difference::Differs {
            item: Item::Node,
            id: a,
            fields: vec![Field::Fixed("entity_type"), Field::Fixed("labels")],
        }]
    );
}

#[tokio::test]
async fn other_environments_in_the_same_graph_are_ignored() {
    let dev = TestApp::new().await;
    let prod = TestApp::new().await;
    teams(dev.pool()).await;
    teams(prod.pool()).await;
    entity(prod.pool(), NewEntity::new("team", "prod_only")).await;
    let (backend, _) = backend().await;
    graph::resync(dev.pool(), &backend, "dev", IfBusy::Fail)
        .await
        .unwrap();
    graph::resync(prod.pool(), &backend, "prod", IfBusy::Fail)
        .await
        .unwrap();

    // Ids collide across the two databases; each environment still checks identical.
    assert!(
        graph::check(dev.pool(), &backend, "dev")
            .await
            .unwrap()
            .is_consistent()
    );
    assert!(
        graph::check(prod.pool(), &backend, "prod")
            .await
            .unwrap()
            .is_consistent()
    );
    // Checking an environment against the other's database does find differences.
    let crossed = graph::check(dev.pool(), &backend, "prod").await.unwrap();
    assert_eq!(crossed.counts(), (0, 1, 0), "{:?}", crossed.differences);
}

#[tokio::test]
async fn bench_seeds_resyncs_compares_and_cleans_up() {
    let app = TestApp::new().await;
    let pool = app.pool();
    let (base_entities, base_relations) = (
        count(pool, "entities").await,
        count(pool, "relations").await,
    );
    let (backend, graph_name) = backend().await;
    let options = BenchOptions {
        entities: 50,
        relations: 80,
        env: bench::fresh_env_name(),
        baseline_relations: 30,
        skip_baseline: false,
    };
    let target = GraphTarget {
        uri: falkordb_url().await,
        graph_name,
        credentials: Credentials::default(),
    };

    let report = bench::run(pool, &backend, &target, &options).await.unwrap();

    let entities = base_entities + 50;
    let relations = base_relations + 80;
    assert_eq!(
        (report.seeded_entities, report.seeded_relations),
        (entities, relations)
    );
    assert!(count(pool, "entity_properties").await >= 100);
    assert_eq!(
        sqlx::query_scalar::<_, i64>(
            "SELECT count(*) FROM relation_properties rp JOIN relations r ON r.id = rp.relation_id \
             JOIN entities s ON s.id = r.source_id WHERE s.entity_type = 'bench_item'"
        )
        .fetch_one(pool)
        .await
        .unwrap(),
        80
    );
    assert_eq!(report.ours.nodes.items, entities);
    assert_eq!(report.ours.edges.items, relations);
    assert_eq!(report.ours.sweep.items, 0, "a fresh environment");
    assert_eq!(report.ours.check_differences, 0);
    let baseline = report.baseline.as_ref().expect("FalkorDB has a baseline");
    assert_eq!(baseline.nodes.items, entities);
    assert_eq!(baseline.edges.items, 30);
    assert_eq!(baseline.relations_total, relations);
    assert!(baseline.is_sampled());
    assert_eq!(report.left_behind, 0);
    assert!(backend.nodes(&options.env).await.unwrap().is_empty());

    let text = report.to_string();
    for expected in [
        "entities (nodes)",
        "relations (edges)",
        "EXTRAPOLATED",
        "graph check after our resync: identical to PostgreSQL",
        "target >= 20000 entities/s",
        "target >= 20x",
    ] {
        assert!(text.contains(expected), "{expected:?} in\n{text}");
    }
}
