//! Live sync: Postgres NOTIFY (sent by triggers on commit) → the projection's bounded,
//! coalescing queue → batched graph writes by one background worker.
//!
//! Request handlers never wait on the graph: they only commit to Postgres. Anything that
//! may lose a change (lost LISTEN connection, full queue, failed write, graph outage)
//! marks the projection stale and schedules a resync, retried with backoff until the
//! graph is back; reads use Postgres meanwhile.

use std::collections::BTreeSet;
use std::time::Duration;

use sqlx::PgPool;
use sqlx::postgres::PgListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use super::metrics::Failure;
use super::projection::{Change, Notification, Projection};
use super::resync::{Rows, load_edges, load_nodes, postgres_stamp, writing};
use super::{Backend, Credentials, EdgeRef, GraphBackend, GraphResult};

/// The channel the graph_notify migration's triggers notify.
pub const CHANNEL: &str = "ahlt_graph";

/// How the worker batches and retries.
#[derive(Debug, Clone)]
pub struct SyncConfig {
    /// Changes written per batch.
    pub batch_size: usize,
    /// First retry delay after a failure; doubles up to `retry_max`.
    pub retry_min: Duration,
    pub retry_max: Duration,
}

impl Default for SyncConfig {
    fn default() -> Self {
        SyncConfig {
            batch_size: 500,
            retry_min: Duration::from_millis(500),
            retry_max: Duration::from_secs(60),
        }
    }
}

/// Where the worker connects when the projection has no backend yet.
#[derive(Debug, Clone)]
pub struct GraphTarget {
    pub uri: String,
    pub graph_name: String,
    pub credentials: Credentials,
    /// See [`super::DEFAULT_QUEUE_CAPACITY`].
    pub queue_capacity: usize,
}

/// Starts the listener and the worker; both stop when `stop` turns true.
pub fn spawn(
    pool: PgPool,
    projection: Projection,
    target: Option<GraphTarget>,
    config: SyncConfig,
    stop: watch::Receiver<bool>,
) -> JoinHandle<()> {
    let listener = spawn_listener(
        pool.clone(),
        projection.clone(),
        config.clone(),
        stop.clone(),
    );
    let worker = spawn_worker(pool, projection, target, config, stop);
    tokio::spawn(async move {
        let _ = tokio::join!(listener, worker);
    })
}

/// Only the listener, which feeds the projection's queue.
pub fn spawn_listener(
    pool: PgPool,
    projection: Projection,
    config: SyncConfig,
    stop: watch::Receiver<bool>,
) -> JoinHandle<()> {
    tokio::spawn(listen(pool, projection, config, stop))
}

/// Only the worker, which connects (if needed) and drains the projection's queue.
pub fn spawn_worker(
    pool: PgPool,
    projection: Projection,
    target: Option<GraphTarget>,
    config: SyncConfig,
    stop: watch::Receiver<bool>,
) -> JoinHandle<()> {
    tokio::spawn(work(pool, projection, target, config, stop))
}

/// Exponential backoff between `retry_min` and `retry_max`.
struct Retry {
    next: Duration,
    min: Duration,
    max: Duration,
}

impl Retry {
    fn new(config: &SyncConfig) -> Retry {
        Retry {
            next: config.retry_min,
            min: config.retry_min,
            max: config.retry_max,
        }
    }

    fn reset(&mut self) {
        self.next = self.min;
    }

    /// Waits the current delay (or until stopped; then returns false) and doubles it.
    async fn wait(&mut self, stop: &mut watch::Receiver<bool>) -> bool {
        let delay = self.next;
        self.next = (self.next * 2).min(self.max);
        tokio::select! {
            _ = tokio::time::sleep(delay) => true,
            _ = stopped(stop) => false,
        }
    }
}

async fn stopped(stop: &mut watch::Receiver<bool>) {
    let _ = stop.wait_for(|stop| *stop).await;
}

/// Feeds notifications into the queue. Every (re)connection opens a gap: changes
/// committed while nobody listened are unknown, so a resync follows.
async fn listen(
    pool: PgPool,
    projection: Projection,
    config: SyncConfig,
    mut stop: watch::Receiver<bool>,
) {
    let mut retry = Retry::new(&config);
    loop {
        if *stop.borrow() {
            return;
        }
        let mut listener = match connect_listener(&pool).await {
            Ok(listener) => listener,
            Err(e) => {
                tracing::warn!(error = %e, "graph sync: cannot LISTEN; retrying");
                projection.listener_lost();
                if !retry.wait(&mut stop).await {
                    return;
                }
                continue;
            }
        };
        retry.reset();
        projection.request_resync();
        projection.listener_started();
        loop {
            let received = tokio::select! {
                received = listener.try_recv() => received,
                _ = stopped(&mut stop) => return,
            };
            match received {
                Ok(Some(notification)) => match Notification::parse(notification.payload()) {
                    Some(Notification::Change(change)) => projection.enqueue(change),
                    Some(Notification::Barrier(token)) => projection.barrier_arrived(token),
                    None => {
                        tracing::warn!(
                            payload = notification.payload(),
                            "graph sync: unexpected notification"
                        );
                        projection.gap(Failure::Listen);
                    }
                },
                // The connection dropped; the next call reconnects and listens again, but
                // whatever was notified in between is lost.
                Ok(None) => {
                    tracing::warn!("graph sync: LISTEN connection lost; scheduling a resync");
                    projection.listener_lost();
                    projection.listener_started();
                }
                Err(e) => {
                    tracing::warn!(error = %e, "graph sync: LISTEN failed; reconnecting");
                    projection.listener_lost();
                    if !retry.wait(&mut stop).await {
                        return;
                    }
                    break;
                }
            }
        }
    }
}

async fn connect_listener(pool: &PgPool) -> Result<PgListener, sqlx::Error> {
    let mut listener = PgListener::connect_with(pool).await?;
    listener.listen(CHANNEL).await?;
    Ok(listener)
}

/// Connects (if needed), then runs resyncs and batches until stopped.
async fn work(
    pool: PgPool,
    projection: Projection,
    target: Option<GraphTarget>,
    config: SyncConfig,
    mut stop: watch::Receiver<bool>,
) {
    let mut retry = Retry::new(&config);
    while projection.backend().is_none() {
        let Some(target) = &target else {
            tracing::error!("graph sync: no graph backend and nothing to connect to");
            return;
        };
        match Backend::connect(&target.uri, &target.graph_name, &target.credentials).await {
            Ok(backend) => projection.set_backend(backend),
            Err(e) => {
                tracing::warn!(error = %e, "graph sync: cannot connect to the graph; retrying");
                projection.metrics().failed(Failure::Connect);
                if !retry.wait(&mut stop).await {
                    return;
                }
            }
        }
    }
    retry.reset();
    loop {
        tokio::select! {
            _ = projection.work_available() => {}
            _ = stopped(&mut stop) => return,
        }
        if projection.take_resync_request() {
            match projection.resync(&pool).await {
                Ok(report) => {
                    retry.reset();
                    tracing::info!(
                        env = projection.env(),
                        nodes = report.nodes,
                        edges = report.edges,
                        removed = report.removed,
                        duration_ms = report.duration.as_millis() as u64,
                        "graph resync finished"
                    );
                }
                Err(e) => {
                    tracing::warn!(env = projection.env(), error = %e, "graph resync failed; retrying");
                    if !retry.wait(&mut stop).await {
                        return;
                    }
                }
            }
            continue;
        }
        let batch = projection.take_batch(config.batch_size);
        if batch.is_empty() {
            continue;
        }
        let changes: Vec<Change> = batch.iter().map(|(change, _)| *change).collect();
        let result = match projection.backend() {
            Some(backend) => apply(&pool, backend, projection.env(), &changes).await,
            None => unreachable!("connected above"),
        };
        match result {
            Ok(()) => {
                retry.reset();
                let metrics = projection.metrics();
                metrics.batches.inc();
                metrics.changes.inc_by(batch.len() as u64);
                for (_, queued) in &batch {
                    metrics.lag.observe(queued.elapsed().as_secs_f64());
                }
                projection.batch_done();
            }
            Err(e) => {
                // The batch is not retried on its own: the resync this schedules covers it.
                tracing::warn!(env = projection.env(), error = %e, "graph sync: writing a batch failed; scheduling a resync");
                projection.gap(Failure::Write);
                projection.batch_done();
                if !retry.wait(&mut stop).await {
                    return;
                }
            }
        }
    }
}

/// Writes the current Postgres state of `changes`: upserts what exists, deletes what is
/// gone. One REPEATABLE READ snapshot, so relationships find their nodes.
pub async fn apply<B: GraphBackend>(
    pool: &PgPool,
    backend: &B,
    env: &str,
    changes: &[Change],
) -> GraphResult<()> {
    let mut entity_ids = BTreeSet::new();
    let mut relations = Vec::new();
    for change in changes {
        match change {
            Change::Entity(id) => {
                entity_ids.insert(*id);
            }
            Change::Relation(edge) => relations.push(*edge),
        }
    }
    let entity_ids: Vec<i64> = entity_ids.into_iter().collect();
    let relation_ids: Vec<i64> = relations.iter().map(|edge| edge.id).collect();

    // Held until the batch is written: a resync of the environment waits for it, and it
    // for a resync.
    let mut tx = writing(pool, env).await?;
    let stamp = postgres_stamp(&mut tx).await?;
    let nodes = load_nodes(&mut tx, env, Rows::Ids(&entity_ids)).await?;
    let edges = load_edges(&mut tx, env, Rows::Ids(&relation_ids)).await?;

    let gone_nodes: Vec<i64> = entity_ids
        .iter()
        .copied()
        .filter(|id| nodes.binary_search_by_key(id, |n| n.id).is_err())
        .collect();
    let gone_edges: Vec<EdgeRef> = relations
        .into_iter()
        .filter(|edge| edges.binary_search_by_key(&edge.id, |e| e.id).is_err())
        .collect();

    backend.upsert_nodes(env, stamp, &nodes).await?;
    backend.upsert_edges(env, stamp, &edges).await?;
    backend.delete_edges(env, &gone_edges).await?;
    backend.delete_nodes(env, &gone_nodes).await?;
    tx.commit().await?;
    Ok(())
}
