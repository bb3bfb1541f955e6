//! The live projection of this process's environment: its backend, the queue of changes
//! not yet written, and whether graph reads can be trusted right now.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, PoisonError};
use std::time::Instant;

use sqlx::PgPool;
use tokio::sync::Notify;

use super::metrics::{Failure, GraphMetrics};
use super::{Backend, EdgeRef, GraphResult, IfBusy, ResyncReport, resync};

/// Changes kept at most; beyond this a resync replaces them.
pub const DEFAULT_QUEUE_CAPACITY: usize = 10_000;

/// One object whose graph copy may be out of date. Repeated changes to the same object
/// coalesce into one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Change {
    Entity(i64),
    Relation(EdgeRef),
}

/// A notification on the sync channel.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Notification {
    Change(Change),
    /// Sent by [`Projection::flush`]: every change committed before it has been notified.
    Barrier(u64),
}

impl Notification {
    /// Parses a payload: `e:<id>` or `r:<id>:<source id>` (see the graph_notify
    /// migration), or `b:<token>`.
    pub fn parse(payload: &str) -> Option<Notification> {
        let mut parts = payload.split(':');
        let notification = match (parts.next()?, parts.next()?, parts.next()) {
            ("e", id, None) => Notification::Change(Change::Entity(id.parse().ok()?)),
            ("r", id, Some(source)) => Notification::Change(Change::Relation(EdgeRef {
                id: id.parse().ok()?,
                source_id: source.parse().ok()?,
            })),
            ("b", token, None) => Notification::Barrier(token.parse().ok()?),
            _ => return None,
        };
        parts.next().is_none().then_some(notification)
    }
}

/// A handle on the projection; cheap to clone.
#[derive(Clone)]
pub struct Projection {
    inner: Arc<Inner>,
}

struct Inner {
    backend: OnceLock<Backend>,
    env: String,
    capacity: usize,
    /// Some change may be missing from the graph (queue overflow, lost notifications,
    /// failed writes, or no resync yet); only a resync clears it.
    stale: AtomicBool,
    /// Bumped whenever the projection becomes stale, so a resync that started before
    /// the gap cannot clear it.
    gaps: AtomicU64,
    queue: Mutex<Queue>,
    /// The sync listener is LISTENing.
    listening: AtomicBool,
    /// Barrier tokens [`Projection::flush`] waits for, and whether each has arrived.
    barriers: Mutex<HashMap<u64, bool>>,
    /// Wakes the sync worker.
    wake: Notify,
    /// Wakes whoever waits in [`Projection::wait_until`].
    changed: Notify,
    metrics: GraphMetrics,
}

#[derive(Default)]
struct Queue {
    /// Each change with the time it was first queued (for the lag metric).
    changes: HashMap<Change, Instant>,
    /// Changes taken by the worker and not yet written.
    in_flight: usize,
    resync_requested: bool,
}

impl std::fmt::Debug for Projection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Projection")
            .field("backend", &self.inner.backend.get())
            .field("env", &self.inner.env)
            .field("stale", &self.is_stale())
            .finish()
    }
}

impl Projection {
    /// A projection of `env` on `backend`. It starts stale: nothing proves the graph
    /// matches Postgres until a resync finishes.
    pub fn new(backend: Backend, env: impl Into<String>) -> Projection {
        let projection = Projection::unconnected(env, DEFAULT_QUEUE_CAPACITY);
        let _ = projection.inner.backend.set(backend);
        projection
    }

    /// A projection whose backend the sync worker connects later (the graph server may
    /// be down when the app starts).
    pub fn unconnected(env: impl Into<String>, capacity: usize) -> Projection {
        let metrics = GraphMetrics::default();
        metrics.stale.set(1);
        Projection {
            inner: Arc::new(Inner {
                backend: OnceLock::new(),
                env: env.into(),
                capacity: capacity.max(1),
                stale: AtomicBool::new(true),
                gaps: AtomicU64::new(1),
                queue: Mutex::new(Queue {
                    resync_requested: true,
                    ..Queue::default()
                }),
                listening: AtomicBool::new(false),
                barriers: Mutex::new(HashMap::new()),
                wake: Notify::new(),
                changed: Notify::new(),
                metrics,
            }),
        }
    }

    pub fn env(&self) -> &str {
        &self.inner.env
    }

    pub fn metrics(&self) -> &GraphMetrics {
        &self.inner.metrics
    }

    /// The backend, once connected.
    pub fn backend(&self) -> Option<&Backend> {
        self.inner.backend.get()
    }

    /// Sets the backend of an [`Self::unconnected`] projection (once; later calls are
    /// ignored).
    pub fn set_backend(&self, backend: Backend) {
        let _ = self.inner.backend.set(backend);
    }

    /// The backend when graph reads give the same answers as Postgres: connected, not
    /// stale, and no change waiting to be written. `None` means "ask Postgres".
    pub fn current(&self) -> Option<&Backend> {
        if !self.is_current() {
            return None;
        }
        self.inner.backend.get()
    }

    pub fn is_stale(&self) -> bool {
        self.inner.stale.load(Ordering::Acquire)
    }

    /// Changes waiting to be written, and whether a resync is due.
    pub fn pending(&self) -> (usize, bool) {
        let queue = self.queue();
        (
            queue.changes.len() + queue.in_flight,
            queue.resync_requested,
        )
    }

    /// Records a failed graph-backed read of `query` (answered from Postgres instead).
    pub fn read_failed(&self, query: &'static str, error: &super::GraphError) {
        tracing::warn!(query, env = %self.inner.env, %error, "graph read failed; answered from PostgreSQL");
        self.inner.metrics.failed(Failure::Read);
    }

    /// Records that some change may be missing from the graph and asks for a resync.
    pub fn gap(&self, failure: Failure) {
        self.inner.metrics.failed(failure);
        self.mark_stale();
    }

    /// Stops graph-backed reads until a resync finishes, and asks for one.
    pub fn mark_stale(&self) {
        self.inner.gaps.fetch_add(1, Ordering::AcqRel);
        self.inner.stale.store(true, Ordering::Release);
        self.inner.metrics.stale.set(1);
        self.queue().resync_requested = true;
        self.inner.wake.notify_one();
        self.inner.changed.notify_waiters();
    }

    /// Asks the worker for a resync without marking the projection stale.
    pub fn request_resync(&self) {
        self.queue().resync_requested = true;
        self.inner.wake.notify_one();
    }

    /// Queues a change for the worker. When the queue is full the changes are dropped
    /// and a resync (which covers them all) is scheduled instead.
    pub fn enqueue(&self, change: Change) {
        let mut queue = self.queue();
        let len = queue.changes.len();
        if len >= self.inner.capacity && !queue.changes.contains_key(&change) {
            queue.changes.clear();
            drop(queue);
            self.inner.metrics.queue_depth.set(0);
            tracing::warn!(env = %self.inner.env, capacity = self.inner.capacity, "graph sync queue full; scheduling a resync");
            self.gap(Failure::Overflow);
            return;
        }
        queue.changes.entry(change).or_insert_with(Instant::now);
        self.inner
            .metrics
            .queue_depth
            .set(queue.changes.len() as i64);
        drop(queue);
        self.inner.wake.notify_one();
    }

    /// Waits until the worker has something to do.
    pub(crate) async fn work_available(&self) {
        loop {
            let notified = self.inner.wake.notified();
            {
                let queue = self.queue();
                if queue.resync_requested || !queue.changes.is_empty() {
                    return;
                }
            }
            notified.await;
        }
    }

    /// Takes the resync request, if any; the queued changes are dropped with it because
    /// the resync's snapshot covers every change notified so far.
    pub(crate) fn take_resync_request(&self) -> bool {
        let mut queue = self.queue();
        if !queue.resync_requested {
            return false;
        }
        queue.resync_requested = false;
        queue.changes.clear();
        self.inner.metrics.queue_depth.set(0);
        true
    }

    /// Takes up to `max` changes, entities first: a relationship needs its nodes.
    pub(crate) fn take_batch(&self, max: usize) -> Vec<(Change, Instant)> {
        let mut queue = self.queue();
        let mut keys: Vec<Change> = queue.changes.keys().copied().collect();
        keys.sort_by_key(|change| match change {
            Change::Entity(id) => (0, *id),
            Change::Relation(edge) => (1, edge.id),
        });
        keys.truncate(max);
        let batch: Vec<(Change, Instant)> = keys
            .into_iter()
            .filter_map(|k| queue.changes.remove(&k).map(|t| (k, t)))
            .collect();
        queue.in_flight = batch.len();
        self.inner
            .metrics
            .queue_depth
            .set(queue.changes.len() as i64);
        batch
    }

    /// Marks the batch taken by [`Self::take_batch`] as done (written or given up on).
    pub(crate) fn batch_done(&self) {
        self.queue().in_flight = 0;
        self.inner.changed.notify_waiters();
    }

    /// Whether the sync listener is receiving notifications.
    pub fn is_listening(&self) -> bool {
        self.inner.listening.load(Ordering::Acquire)
    }

    /// The listener is LISTENing (again).
    pub(crate) fn listener_started(&self) {
        self.inner.listening.store(true, Ordering::Release);
        self.inner.changed.notify_waiters();
    }

    /// The listener lost its connection: notifications (including barriers) may be
    /// lost, so every waiting barrier counts as arrived and the resync this schedules
    /// makes the graph current.
    pub(crate) fn listener_lost(&self) {
        self.inner.listening.store(false, Ordering::Release);
        for arrived in self
            .inner
            .barriers
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .values_mut()
        {
            *arrived = true;
        }
        self.gap(Failure::Listen);
    }

    /// Records a barrier notification (ours or another process's).
    pub(crate) fn barrier_arrived(&self, token: u64) {
        let mut barriers = self
            .inner
            .barriers
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if let Some(arrived) = barriers.get_mut(&token) {
            *arrived = true;
            drop(barriers);
            self.inner.changed.notify_waiters();
        }
    }

    /// Waits until every change committed before this call is in the graph (read your
    /// writes): sends a barrier notification, which arrives after every earlier commit's
    /// notifications, and waits for it and for the queue to drain. Needs the sync
    /// listener and worker running.
    pub async fn flush(&self, pool: &PgPool) -> GraphResult<()> {
        self.wait_until(Projection::is_listening).await;
        let token: u64 = rand::random();
        self.inner
            .barriers
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(token, false);
        let sent = sqlx::query("SELECT pg_notify($1, $2)")
            .bind(super::sync::CHANNEL)
            .bind(format!("b:{token}"))
            .execute(pool)
            .await;
        if let Err(e) = sent {
            self.inner
                .barriers
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .remove(&token);
            return Err(e.into());
        }
        self.wait_until(|p| {
            let arrived = p
                .inner
                .barriers
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .get(&token)
                .copied()
                .unwrap_or(false);
            arrived && p.is_current()
        })
        .await;
        self.inner
            .barriers
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(&token);
        Ok(())
    }

    /// Whether reads would use the graph now (apart from being connected).
    pub fn is_current(&self) -> bool {
        if self.is_stale() {
            return false;
        }
        let queue = self.queue();
        queue.changes.is_empty() && queue.in_flight == 0 && !queue.resync_requested
    }

    /// Waits until `condition` holds, re-checking whenever the projection's state
    /// changes (a batch or resync finished, a gap opened).
    pub async fn wait_until(&self, condition: impl Fn(&Projection) -> bool) {
        loop {
            let notified = self.inner.changed.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if condition(self) {
                return;
            }
            notified.await;
        }
    }

    /// Waits until every notified change is in the graph and no resync is due.
    pub async fn wait_current(&self) {
        self.wait_until(Projection::is_current).await
    }

    /// Rewrites the projection from Postgres (after a resync of this environment that is
    /// already running, if any) and, unless a new gap opened meanwhile, marks it current.
    pub async fn resync(&self, pool: &PgPool) -> GraphResult<ResyncReport> {
        self.resync_with(pool, IfBusy::Wait).await
    }

    /// [`Self::resync`], failing with [`super::GraphError::ResyncInProgress`] instead of
    /// waiting.
    pub async fn try_resync(&self, pool: &PgPool) -> GraphResult<ResyncReport> {
        self.resync_with(pool, IfBusy::Fail).await
    }

    async fn resync_with(&self, pool: &PgPool, if_busy: IfBusy) -> GraphResult<ResyncReport> {
        let backend = self.inner.backend.get().ok_or_else(|| {
            super::GraphError::Backend("the graph server is not connected yet".into())
        })?;
        let gaps = self.inner.gaps.load(Ordering::Acquire);
        // Whatever was queued or requested so far is in the resync's snapshot.
        self.take_resync_request();
        let result = resync(pool, backend, &self.inner.env, if_busy).await;
        match &result {
            Ok(report) => {
                self.inner
                    .metrics
                    .resync_duration
                    .observe(report.duration.as_secs_f64());
                if self.inner.gaps.load(Ordering::Acquire) == gaps {
                    self.inner.stale.store(false, Ordering::Release);
                    self.inner.metrics.stale.set(0);
                }
            }
            // The other resync may have started before a change; ask again.
            Err(super::GraphError::ResyncInProgress(_)) => self.request_resync(),
            Err(_) => self.gap(Failure::Resync),
        }
        self.batch_done();
        result
    }

    fn queue(&self) -> MutexGuard<'_, Queue> {
        self.inner
            .queue
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payloads_parse_strictly() {
        assert_eq!(
            Notification::parse("e:12"),
            Some(Notification::Change(Change::Entity(12)))
        );
        assert_eq!(
            Notification::parse("r:5:3"),
            Some(Notification::Change(Change::Relation(EdgeRef {
                id: 5,
                source_id: 3
            })))
        );
        assert_eq!(Notification::parse("b:7"), Some(Notification::Barrier(7)));
        for bad in [
            "", "e", "e:", "e:x", "e:1:2", "r:5", "r:5:3:1", "x:1", "r:a:3", "b:-1", "b:1:2",
        ] {
            assert_eq!(Notification::parse(bad), None, "{bad}");
        }
    }

    #[test]
    fn changes_coalesce_and_overflow_schedules_a_resync() {
        let p = Projection::unconnected("dev", 3);
        assert!(
            p.take_resync_request(),
            "a new projection wants its first resync"
        );
        for _ in 0..5 {
            p.enqueue(Change::Entity(1));
        }
        p.enqueue(Change::Entity(2));
        assert_eq!(p.pending(), (2, false));
        p.enqueue(Change::Entity(3));
        p.enqueue(Change::Entity(3));
        assert_eq!(p.pending(), (3, false));
        assert_eq!(p.metrics().failures(Failure::Overflow), 0);

        p.enqueue(Change::Entity(4));
        assert_eq!(p.pending(), (0, true));
        assert!(p.is_stale());
        assert_eq!(p.metrics().failures(Failure::Overflow), 1);
    }

    #[test]
    fn batches_put_entities_before_relations() {
        let p = Projection::unconnected("dev", 100);
        let edge = Change::Relation(EdgeRef {
            id: 1,
            source_id: 9,
        });
        p.enqueue(edge);
        p.enqueue(Change::Entity(9));
        let batch: Vec<Change> = p.take_batch(10).into_iter().map(|(c, _)| c).collect();
        assert_eq!(batch, [Change::Entity(9), edge]);
        assert_eq!(p.pending(), (2, true));
        p.batch_done();
        assert_eq!(p.pending(), (0, true));
    }

    #[test]
    fn a_stale_or_busy_projection_is_not_current() {
        let p = Projection::unconnected("dev", 100);
        assert!(p.current().is_none(), "not connected and stale");
    }
}
