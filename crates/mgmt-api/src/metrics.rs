//! Call duration histogram, registered by the caller in its own registry.

use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::{Registry, Unit};

use crate::route::Route;

/// Bucket bounds in seconds: from fast probes to a node start that takes minutes.
const BUCKETS: [f64; 12] = [
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0, 60.0, 600.0,
];

/// Labels of one observation.
#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct CallLabels {
    method: &'static str,
    route: &'static str,
    result: &'static str,
}

fn new_histogram() -> Histogram {
    Histogram::new(BUCKETS)
}

/// Management API call durations by `method`, `route` (path) and `result` (`success`, `http_4xx`,
/// `http_5xx`, `timeout`, `transport`, `decode`). Cheap to clone; clones share the series.
#[derive(Debug, Clone)]
pub struct ManagementApiMetrics {
    durations: Family<CallLabels, Histogram, fn() -> Histogram>,
}

impl Default for ManagementApiMetrics {
    fn default() -> Self {
        Self {
            durations: Family::new_with_constructor(new_histogram),
        }
    }
}

impl ManagementApiMetrics {
    /// Creates the histogram family and registers it as `mgmt_api_call_duration_seconds`.
    pub fn register(registry: &mut Registry) -> Self {
        let metrics = Self::default();
        registry.register_with_unit(
            "mgmt_api_call_duration",
            "Duration of Management API calls",
            Unit::Seconds,
            metrics.durations.clone(),
        );
        metrics
    }

    /// Records one call.
    pub fn observe(&self, route: Route, result: &'static str, elapsed: Duration) {
        let labels = CallLabels {
            method: route.method(),
            route: route.path(),
            result,
        };
        self.durations
            .get_or_create(&labels)
            .observe(elapsed.as_secs_f64());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn observations_are_exported_with_labels() {
        let mut registry = Registry::default();
        let metrics = ManagementApiMetrics::register(&mut registry);
        metrics.observe(Route::LifecycleStart, "success", Duration::from_millis(30));
        metrics.observe(Route::LifecycleStart, "timeout", Duration::from_secs(600));
        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, &registry).unwrap();
        assert!(text.contains("mgmt_api_call_duration_seconds_count{method=\"POST\",route=\"/api/v0/lifecycle/start\",result=\"success\"} 1"), "{text}");
        assert!(text.contains("result=\"timeout\""));
    }
}
