//! Prometheus metrics of the controller. Labels are bounded: error reasons are enum variant
//! names, Ready statuses are True/False/Unknown.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ErrorLabels {
    pub reason: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ReadyLabels {
    pub status: String,
}

pub struct Metrics {
    registry: Registry,
    reconciliations: Counter,
    failures: Family<ErrorLabels, Counter>,
    duration: Histogram,
    ready: Family<ReadyLabels, Gauge>,
    /// Ready status per object ("namespace/name"), the source of the `ready` gauge.
    readiness: Mutex<HashMap<String, String>>,
}

impl Default for Metrics {
    fn default() -> Self {
        let mut registry = Registry::with_prefix("ahlt_operator");
        let reconciliations = Counter::default();
        let failures = Family::<ErrorLabels, Counter>::default();
        let duration = Histogram::new(exponential_buckets(0.01, 2.0, 12));
        let ready = Family::<ReadyLabels, Gauge>::default();
        registry.register(
            "reconciliations",
            "Reconcile passes started",
            reconciliations.clone(),
        );
        registry.register(
            "reconcile_failures",
            "Reconcile passes that failed, by reason",
            failures.clone(),
        );
        registry.register(
            "reconcile_duration_seconds",
            "Duration of reconcile passes",
            duration.clone(),
        );
        registry.register(
            "environments",
            "AhltEnvironments by status of their Ready condition",
            ready.clone(),
        );
        Self {
            registry,
            reconciliations,
            failures,
            duration,
            ready,
            readiness: Mutex::new(HashMap::new()),
        }
    }
}

impl Metrics {
    pub fn reconcile_started(&self) {
        self.reconciliations.inc();
    }

    pub fn reconcile_finished(&self, elapsed: Duration) {
        self.duration.observe(elapsed.as_secs_f64());
    }

    pub fn reconcile_failed(&self, reason: &'static str) {
        self.failures
            .get_or_create(&ErrorLabels {
                reason: reason.to_owned(),
            })
            .inc();
    }

    /// Records the Ready status of an object; `None` forgets it (deleted).
    pub fn set_ready(&self, key: &str, status: Option<&str>) {
        let mut readiness = self.readiness.lock().unwrap_or_else(|e| e.into_inner());
        match status {
            Some(s) => {
                readiness.insert(key.to_owned(), s.to_owned());
            }
            None => {
                readiness.remove(key);
            }
        }
        for s in ["True", "False", "Unknown"] {
            let n = readiness.values().filter(|v| v.as_str() == s).count();
            self.ready
                .get_or_create(&ReadyLabels {
                    status: s.to_owned(),
                })
                .set(i64::try_from(n).unwrap_or(i64::MAX));
        }
    }

    /// The OpenMetrics text exposition.
    pub fn encode(&self) -> String {
        let mut out = String::new();
        // Writing into a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exposition_contains_bounded_series() {
        let m = Metrics::default();
        m.reconcile_started();
        m.reconcile_failed("Unreachable");
        m.reconcile_finished(Duration::from_millis(20));
        m.set_ready("ns/a", Some("True"));
        m.set_ready("ns/b", Some("False"));
        m.set_ready("ns/b", None);
        let text = m.encode();
        assert!(
            text.contains("ahlt_operator_reconciliations_total 1"),
            "{text}"
        );
        assert!(
            text.contains("ahlt_operator_reconcile_failures_total{reason=\"Unreachable\"} 1"),
            "{text}"
        );
        assert!(
            text.contains("ahlt_operator_reconcile_duration_seconds_count 1"),
            "{text}"
        );
        assert!(
            text.contains("ahlt_operator_environments{status=\"True\"} 1"),
            "{text}"
        );
        assert!(
            text.contains("ahlt_operator_environments{status=\"False\"} 0"),
            "{text}"
        );
    }
}
