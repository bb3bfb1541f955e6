//! The operator's own HTTP server: `/metrics`, `/healthz` (fails when the controller has work
//! but made no progress for a while) and `/readyz` (the AhltEnvironment cache has synced).

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::get;
use kube::runtime::reflector::Store;

use crate::crd::AhltEnvironment;
use crate::metrics::Metrics;

/// Progress tracking for `/healthz` and cache state for `/readyz`.
pub struct Health {
    stall_after: Duration,
    last_progress: Mutex<Instant>,
    in_flight: AtomicUsize,
    synced: AtomicBool,
    store: Option<Store<AhltEnvironment>>,
}

/// True when there is work (a pass running or objects to look after) and no pass finished
/// within `stall_after`. Every object is requeued well within that period, so a healthy
/// controller with objects always makes progress.
pub fn stalled(
    last_progress: Instant,
    now: Instant,
    stall_after: Duration,
    has_work: bool,
) -> bool {
    has_work && now.saturating_duration_since(last_progress) > stall_after
}

impl Health {
    pub fn new(stall_after: Duration, store: Option<Store<AhltEnvironment>>) -> Self {
        Self {
            stall_after,
            last_progress: Mutex::new(Instant::now()),
            in_flight: AtomicUsize::new(0),
            synced: AtomicBool::new(false),
            store,
        }
    }

    pub fn pass_started(&self) {
        self.in_flight.fetch_add(1, Ordering::Relaxed);
    }

    /// A pass ended (successfully or not): the loop is moving.
    pub fn pass_finished(&self) {
        self.in_flight.fetch_sub(1, Ordering::Relaxed);
        *self.last_progress.lock().unwrap_or_else(|e| e.into_inner()) = Instant::now();
    }

    pub fn mark_synced(&self) {
        self.synced.store(true, Ordering::Relaxed);
    }

    pub fn is_synced(&self) -> bool {
        self.synced.load(Ordering::Relaxed)
    }

    pub fn is_healthy(&self) -> bool {
        let has_work = self.in_flight.load(Ordering::Relaxed) > 0
            || self.store.as_ref().is_some_and(|s| !s.is_empty());
        let last = *self.last_progress.lock().unwrap_or_else(|e| e.into_inner());
        !stalled(last, Instant::now(), self.stall_after, has_work)
    }
}

#[derive(Clone)]
struct AppState {
    metrics: Arc<Metrics>,
    health: Arc<Health>,
}

pub fn router(metrics: Arc<Metrics>, health: Arc<Health>) -> Router {
    Router::new()
        .route("/metrics", get(metrics_handler))
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .with_state(AppState { metrics, health })
}

async fn metrics_handler(State(state): State<AppState>) -> impl IntoResponse {
    (
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        state.metrics.encode(),
    )
}

async fn healthz(State(state): State<AppState>) -> impl IntoResponse {
    if state.health.is_healthy() {
        (StatusCode::OK, "ok\n")
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "no reconcile progress\n")
    }
}

async fn readyz(State(state): State<AppState>) -> impl IntoResponse {
    if state.health.is_synced() {
        (StatusCode::OK, "ok\n")
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "caches not synced\n")
    }
}

/// Serves until `shutdown` resolves.
pub async fn serve(
    addr: SocketAddr,
    metrics: Arc<Metrics>,
    health: Arc<Health>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let listener = tokio::net::TcpListener::bind(addr).await?;
    tracing::info!(%addr, "serving /metrics, /healthz and /readyz");
    axum::serve(listener, router(metrics, health))
        .with_graceful_shutdown(shutdown)
        .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stall_needs_work_and_time() {
        let t0 = Instant::now();
        let limit = Duration::from_secs(600);
        assert!(!stalled(t0, t0 + Duration::from_secs(601), limit, false));
        assert!(!stalled(t0, t0 + Duration::from_secs(599), limit, true));
        assert!(stalled(t0, t0 + Duration::from_secs(601), limit, true));
    }

    #[test]
    fn health_tracks_passes_and_sync() {
        let h = Health::new(Duration::from_secs(3600), None);
        assert!(h.is_healthy(), "nothing to do is healthy");
        h.pass_started();
        assert!(
            h.is_healthy(),
            "a pass in flight within the budget is healthy"
        );
        h.pass_finished();
        assert!(!h.is_synced());
        h.mark_synced();
        assert!(h.is_synced());
    }
}
