//! Prometheus metrics for `/metrics`.

use prometheus_client::registry::Registry;

pub struct Metrics {
    pub registry: Registry,
}

impl Metrics {
    pub fn new() -> Self {
        Metrics {
            registry: Registry::with_prefix("ahlt"),
        }
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}
