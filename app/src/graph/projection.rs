//! The live projection of this process's environment: its backend, and whether graph
//! reads can be trusted right now.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use sqlx::PgPool;

use super::{Backend, GraphResult, IfBusy, ResyncReport, resync};

/// A handle on the projection; cheap to clone.
#[derive(Clone)]
pub struct Projection {
    inner: Arc<Inner>,
}

struct Inner {
    backend: Backend,
    env: String,
    /// Some change may be missing from the graph (queue overflow, lost notifications,
    /// failed writes, or no resync yet); only a resync clears it.
    stale: AtomicBool,
    /// Bumped whenever the projection becomes stale, so a resync that started before
    /// the gap cannot clear it.
    gaps: AtomicU64,
    /// Changes queued or being written.
    pending: AtomicU64,
}

impl std::fmt::Debug for Projection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Projection")
            .field("backend", &self.inner.backend)
            .field("env", &self.inner.env)
            .field("stale", &self.is_stale())
            .finish()
    }
}

impl Projection {
    /// A projection of `env` on `backend`. It starts stale: nothing proves the graph
    /// matches Postgres until a resync finishes.
    pub fn new(backend: Backend, env: impl Into<String>) -> Projection {
        Projection {
            inner: Arc::new(Inner {
                backend,
                env: env.into(),
                stale: AtomicBool::new(true),
                gaps: AtomicU64::new(1),
                pending: AtomicU64::new(0),
            }),
        }
    }

    pub fn env(&self) -> &str {
        &self.inner.env
    }

    pub fn backend(&self) -> &Backend {
        &self.inner.backend
    }

    /// The backend when graph reads give the same answers as Postgres: not stale and
    /// no change waiting to be written. `None` means "ask Postgres".
    pub fn current(&self) -> Option<&Backend> {
        (!self.is_stale() && self.inner.pending.load(Ordering::Acquire) == 0)
            .then_some(&self.inner.backend)
    }

    pub fn is_stale(&self) -> bool {
        self.inner.stale.load(Ordering::Acquire)
    }

    /// Records that some change may be missing from the graph.
    pub fn mark_stale(&self) {
        self.inner.gaps.fetch_add(1, Ordering::AcqRel);
        self.inner.stale.store(true, Ordering::Release);
    }

    /// Rewrites the projection from Postgres (waiting for a resync already running) and,
    /// unless a new gap opened meanwhile, marks it current.
    pub async fn resync(&self, pool: &PgPool) -> GraphResult<ResyncReport> {
        let gaps = self.inner.gaps.load(Ordering::Acquire);
        let report = resync(pool, &self.inner.backend, &self.inner.env, IfBusy::Wait).await?;
        if self.inner.gaps.load(Ordering::Acquire) == gaps {
            self.inner.stale.store(false, Ordering::Release);
        }
        Ok(report)
    }
}
