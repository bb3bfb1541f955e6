//! Coalesced single-entity reads (`store::EntityReads`, behind `GET /api/v1/entities/{id}`)
//! against a real PostgreSQL: each read gets its own entity, reads wait behind the running
//! statements instead of taking a connection each, and a failed statement costs its reads
//! nothing but a retry of their own.

use std::time::Duration;

use ahlt::store::{self, EntityReads, NewEntity, READS_IN_FLIGHT};
use ahlt::test_app::TestApp;
use serde_json::json;
use sqlx::PgPool;

async fn notes(pool: &PgPool, count: usize) -> Vec<i64> {
    let mut conn = pool.acquire().await.unwrap();
    let mut ids = Vec::new();
    for n in 0..count {
        let new = NewEntity::new("note", &format!("coalesced-{n}"))
            .label(&format!("Note {n}"))
            .property("rank", n as i64)
            .property("tags", json!(["a", n.to_string()]));
        ids.push(
            store::create_entity(&mut conn, &new)
                .await
                .unwrap()
                .entity
                .id,
        );
    }
    ids
}

/// Statements of `EntityReads` waiting for a lock, as PostgreSQL sees them.
async fn blocked_reads(pool: &PgPool) -> i64 {
    sqlx::query_scalar(
        "SELECT count(*) FROM pg_stat_activity \
         WHERE wait_event_type = 'Lock' AND query LIKE '%WHERE e.id = ANY($1)%'",
    )
    .fetch_one(pool)
    .await
    .unwrap()
}

/// Waits until `done` holds, checking every few milliseconds; fails after 30 s.
async fn until<F, Fut>(what: &str, mut done: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    for _ in 0..3000 {
        if done().await {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("timed out waiting until {what}");
}

#[tokio::test]
async fn concurrent_reads_each_get_their_own_entity() {
    let app = TestApp::new().await;
    let pool = app.pool();
    let mut ids = notes(pool, 40).await;
    let gone = ids.pop().unwrap();
    store::delete_entity(&mut pool.acquire().await.unwrap(), gone)
        .await
        .unwrap();
    let reads = std::sync::Arc::new(EntityReads::new(pool.clone()));

    // Every id several times over, and one that no longer exists, all at once.
    let asked: Vec<i64> = (0..400)
        .map(|n| {
            if n % 50 == 7 {
                gone
            } else {
                ids[n % ids.len()]
            }
        })
        .collect();
    let answers = futures_util::future::join_all(asked.iter().map(|&id| {
        let reads = reads.clone();
        tokio::spawn(async move { reads.get(id).await.unwrap() })
    }))
    .await;

    for (id, answer) in asked.iter().zip(answers) {
        let expected = store::get_entity(pool, *id).await.unwrap();
        assert_eq!(answer.unwrap(), expected, "entity {id}");
    }
    assert!(matches!(
        reads.require(gone).await,
        Err(store::StoreError::NotFound(_))
    ));
    assert_eq!(reads.waiting(), 0);
}

#[tokio::test]
async fn reads_wait_behind_the_running_statements_and_a_failed_one_is_retried_per_read() {
    let app = TestApp::new().await;
    let pool = app.pool();
    let ids = notes(pool, 12).await;
    let reads = std::sync::Arc::new(EntityReads::new(pool.clone()));

    // Nothing reads entities while this transaction holds the table.
    let mut lock = pool.begin().await.unwrap();
    sqlx::query("LOCK TABLE entities IN ACCESS EXCLUSIVE MODE")
        .execute(&mut *lock)
        .await
        .unwrap();
    let read = |n: usize| {
        let reads = reads.clone();
        let id = ids[n % ids.len()];
        tokio::spawn(async move { (id, reads.get(id).await) })
    };
    // Each of the first reads finds a slot free and runs at once, alone.
    let mut pending = Vec::new();
    for n in 0..READS_IN_FLIGHT {
        pending.push(read(n));
        until("the read is sent", || async move {
            blocked_reads(pool).await == n as i64 + 1
        })
        .await;
    }
    // The others wait for them in the app, not on connections of their own.
    pending.extend((READS_IN_FLIGHT..50).map(read));
    let waiting = {
        let reads = reads.clone();
        move || {
            let reads = reads.clone();
            async move { reads.waiting() == 50 - READS_IN_FLIGHT }
        }
    };
    until("the other reads are queued", waiting).await;
    assert_eq!(blocked_reads(pool).await, READS_IN_FLIGHT as i64);

    // The two running statements fail: their reads run again, each on its own.
    let killed: i64 = sqlx::query_scalar(
        "SELECT count(*) FILTER (WHERE pg_terminate_backend(pid)) FROM pg_stat_activity \
         WHERE wait_event_type = 'Lock' AND query LIKE '%WHERE e.id = ANY($1)%'",
    )
    .fetch_one(pool)
    .await
    .unwrap();
    assert_eq!(killed, READS_IN_FLIGHT as i64);
    lock.rollback().await.unwrap();

    for read in pending {
        let (id, answer) = read.await.unwrap();
        let expected = store::get_entity(pool, id).await.unwrap();
        assert_eq!(answer.unwrap(), expected, "entity {id}");
    }
    assert_eq!(reads.waiting(), 0);
}

#[tokio::test]
async fn a_closed_pool_fails_every_read_as_a_lost_database() {
    let app = TestApp::new().await;
    let ids = notes(app.pool(), 3).await;
    let pool = ahlt::db::connect(app.db.url(), 2).await.unwrap();
    let reads = std::sync::Arc::new(EntityReads::new(pool.clone()));
    assert!(reads.get(ids[0]).await.unwrap().is_some());

    pool.close().await;
    let answers = futures_util::future::join_all(ids.iter().map(|&id| {
        let reads = reads.clone();
        tokio::spawn(async move { reads.get(id).await })
    }))
    .await;
    for answer in answers {
        assert!(
            matches!(
                answer.unwrap(),
                Err(store::StoreError::Database(sqlx::Error::PoolClosed))
            ),
            "a closed pool is the error every read reports"
        );
    }
}
