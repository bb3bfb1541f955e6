//! The meeting pipeline in the graph projection (FalkorDB): the demo's full cycle is resynced
//! and checks identical to PostgreSQL, and pipeline moves made afterwards reach the graph
//! through the live sync (entities, their status properties and the new relations).

use std::time::Duration;

use ahlt::domain::audit::Actor;
use ahlt::domain::kind;
use ahlt::domain::pipeline::{items, workflow};
use ahlt::graph::sync::{self, SyncConfig};
use ahlt::graph::{self, Backend, FalkorBackend, GraphBackend, IfBusy, Projection};
use ahlt::store;
use ahlt::test_app::TestApp;
use ahlt::testing::{falkordb_url, unique_name};
use tokio::sync::watch;

/// A safety net against hangs, not a timing assertion.
const CONVERGE: Duration = Duration::from_secs(60);

async fn falkor() -> FalkorBackend {
    FalkorBackend::connect(&falkordb_url().await, &unique_name("pipeline"))
        .await
        .unwrap()
}

async fn count_of(pool: &sqlx::PgPool, entity_type: &str) -> i64 {
    sqlx::query_scalar("SELECT count(*) FROM entities WHERE entity_type = $1")
        .bind(entity_type)
        .fetch_one(pool)
        .await
        .unwrap()
}

#[tokio::test]
async fn the_demo_cycle_resyncs_identical_and_later_moves_reach_the_graph() {
    let (app, _) = TestApp::with_demo().await;
    let pool = app.pool();
    // The demo holds a whole cycle, so the comparison below covers every pipeline type.
    for t in [
        kind::SUGGESTION,
        kind::PROPOSAL,
        kind::MEETING,
        kind::AGENDA_POINT,
        kind::DECISION,
        kind::MINUTES,
        kind::MINUTES_SECTION,
        kind::ACTION_ITEM,
        kind::COA,
        kind::COA_SECTION,
        kind::OPINION,
        kind::WORKFLOW_STATUS,
        kind::WORKFLOW_TRANSITION,
    ] {
        assert!(count_of(pool, t).await > 0, "the demo has a {t}");
    }
    let backend = falkor().await;
    graph::resync(pool, &backend, "dev", IfBusy::Fail)
        .await
        .unwrap();
    let report = graph::check(pool, &backend, "dev").await.unwrap();
    assert!(report.is_consistent(), "{report:?}");
    let labels: Vec<String> = backend
        .nodes("dev")
        .await
        .unwrap()
        .into_iter()
        .map(|n| n.entity_type)
        .collect();
    assert!(labels.iter().any(|l| l == kind::MINUTES_SECTION));

    // Live sync: an accepted suggestion (a status change, a new proposal, new relations).
    let env = unique_name("env");
    let live = falkor().await;
    let projection = Projection::new(Backend::Falkor(live.clone()), &env);
    let (stop, stop_rx) = watch::channel(false);
    let task = sync::spawn(
        pool.clone(),
        projection.clone(),
        None,
        SyncConfig {
            batch_size: 500,
            retry_min: Duration::from_millis(10),
            retry_max: Duration::from_millis(200),
        },
        stop_rx,
    );
    tokio::time::timeout(CONVERGE, projection.flush(pool))
        .await
        .expect("converges")
        .unwrap();
    let board = store::find_entity(pool, kind::TOR, "board")
        .await
        .unwrap()
        .unwrap()
        .id;
    let mut tx = pool.begin().await.unwrap();
    let actor = Actor::system();
    let s = items::submit(&mut tx, &actor, kind::SUGGESTION, board, "Graph me", "")
        .await
        .unwrap();
    workflow::apply(&mut tx, &actor, s, "accepted", None)
        .await
        .unwrap();
    let proposal = items::proposal_of(&mut tx, s).await.unwrap().unwrap();
    tx.commit().await.unwrap();
    tokio::time::timeout(CONVERGE, projection.flush(pool))
        .await
        .expect("converges")
        .unwrap();
    let report = graph::check(pool, &live, &env).await.unwrap();
    assert!(report.is_consistent(), "{report:?}");
    let nodes = live.nodes(&env).await.unwrap();
    let suggestion = nodes.iter().find(|n| n.id == s).expect("suggestion node");
    assert_eq!(
        suggestion.properties.get("status"),
        Some(&serde_json::json!("accepted"))
    );
    assert!(nodes.iter().any(|n| n.id == proposal));
    let edges = live.edges(&env).await.unwrap();
    assert!(edges.iter().any(|e| e.relation_type == "spawns_proposal"
        && e.source_id == s
        && e.target_id == proposal));
    stop.send(true).unwrap();
    tokio::time::timeout(CONVERGE, task)
        .await
        .expect("sync stops")
        .unwrap();
}
