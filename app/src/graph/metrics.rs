//! Prometheus metrics of the graph projection (`ahlt_graph_*` on `/metrics`).

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::{Registry, Unit};

/// What went wrong; a bounded label.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Failure {
    /// Applying a batch of live changes failed.
    Write,
    /// The LISTEN connection failed or was lost (notifications may be missing).
    Listen,
    /// The queue was full; its changes were dropped in favour of a resync.
    Overflow,
    /// A full resync failed.
    Resync,
    /// A graph-backed read failed and was answered from Postgres.
    Read,
    /// Connecting to the graph server failed.
    Connect,
}

impl Failure {
    fn as_str(self) -> &'static str {
        match self {
            Failure::Write => "write",
            Failure::Listen => "listen",
            Failure::Overflow => "overflow",
            Failure::Resync => "resync",
            Failure::Read => "read",
            Failure::Connect => "connect",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct FailureLabels {
    kind: &'static str,
}

/// Cheap to clone: every field shares its value.
#[derive(Debug, Clone)]
pub struct GraphMetrics {
    pub queue_depth: Gauge,
    pub stale: Gauge,
    pub batches: Counter,
    pub changes: Counter,
    pub lag: Histogram,
    pub resync_duration: Histogram,
    failures: Family<FailureLabels, Counter>,
}

impl Default for GraphMetrics {
    fn default() -> Self {
        GraphMetrics {
            queue_depth: Gauge::default(),
            stale: Gauge::default(),
            batches: Counter::default(),
            changes: Counter::default(),
            // 1 ms .. ~30 s.
            lag: Histogram::new(exponential_buckets(0.001, 2.0, 16)),
            // 10 ms .. ~40 min.
            resync_duration: Histogram::new(exponential_buckets(0.01, 2.0, 18)),
            failures: Family::default(),
        }
    }
}

impl GraphMetrics {
    pub fn failed(&self, failure: Failure) {
        self.failures
            .get_or_create(&FailureLabels {
                kind: failure.as_str(),
            })
            .inc();
    }

    pub fn failures(&self, failure: Failure) -> u64 {
        self.failures
            .get_or_create(&FailureLabels {
                kind: failure.as_str(),
            })
            .get()
    }

    /// Adds the metrics to `registry` under `graph_`.
    pub fn register(&self, registry: &mut Registry) {
        let graph = registry.sub_registry_with_prefix("graph");
        graph.register(
            "sync_queue_depth",
            "Changes waiting to be written to the graph",
            self.queue_depth.clone(),
        );
        graph.register(
            "stale",
            "1 while the graph may miss changes (reads use PostgreSQL until a resync)",
            self.stale.clone(),
        );
        graph.register(
            "sync_batches",
            "Batches of live changes written to the graph",
            self.batches.clone(),
        );
        graph.register(
            "sync_changes",
            "Live changes (coalesced per object) written to the graph",
            self.changes.clone(),
        );
        graph.register_with_unit(
            "sync_lag",
            "Time from a change's notification to its write to the graph",
            Unit::Seconds,
            self.lag.clone(),
        );
        graph.register_with_unit(
            "resync_duration",
            "Duration of successful full resyncs",
            Unit::Seconds,
            self.resync_duration.clone(),
        );
        graph.register(
            "failures",
            "Graph failures by kind (write, listen, overflow, resync, read, connect)",
            self.failures.clone(),
        );
    }
}
