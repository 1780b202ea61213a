//! Reconcile metrics by controller: how many passes ended how, how long they took, and which
//! errors they hit.

use std::time::{Duration, Instant};

use prometheus_client::{
    encoding::EncodeLabelSet,
    metrics::{counter::Counter, family::Family, histogram::Histogram},
    registry::{Registry, Unit},
};

/// Bucket bounds in seconds: from a no-op pass to one that waits on a slow API server.
const BUCKETS: [f64; 10] = [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0, 5.0, 30.0];

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct PassLabels {
    controller: &'static str,
    result: &'static str,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct ErrorLabels {
    controller: &'static str,
    error: &'static str,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct ControllerLabel {
    controller: &'static str,
}

fn new_histogram() -> Histogram {
    Histogram::new(BUCKETS)
}

/// Reconcile counters and durations. Cheap to clone; clones share the series.
#[derive(Debug, Clone)]
pub struct ReconcileMetrics {
    passes: Family<PassLabels, Counter>,
    errors: Family<ErrorLabels, Counter>,
    durations: Family<ControllerLabel, Histogram, fn() -> Histogram>,
}

impl Default for ReconcileMetrics {
    fn default() -> Self {
        Self {
            passes: Family::default(),
            errors: Family::default(),
            durations: Family::new_with_constructor(new_histogram),
        }
    }
}

impl ReconcileMetrics {
    /// Creates the families and registers them as `reconciles_total`, `reconcile_errors_total`
    /// and `reconcile_duration_seconds`.
    pub fn register(registry: &mut Registry) -> Self {
        let metrics = Self::default();
        registry.register(
            "reconciles",
            "Reconcile passes by controller and result",
            metrics.passes.clone(),
        );
        registry.register(
            "reconcile_errors",
            "Failed reconcile passes by controller and error kind",
            metrics.errors.clone(),
        );
        registry.register_with_unit(
            "reconcile_duration",
            "Duration of reconcile passes",
            Unit::Seconds,
            metrics.durations.clone(),
        );
        metrics
    }

    /// Runs one pass of `controller` and records how it ended and how long it took; `kind`
    /// names an error for the `error` label.
    pub async fn measure<T, E>(
        &self,
        controller: &'static str,
        kind: impl FnOnce(&E) -> &'static str,
        pass: impl Future<Output = Result<T, E>>,
    ) -> Result<T, E> {
        let started = Instant::now();
        let result = pass.await;
        match &result {
            Ok(_) => self.succeeded(controller, started.elapsed()),
            Err(error) => self.failed(controller, kind(error), started.elapsed()),
        }
        result
    }

    /// Records a pass that succeeded.
    pub fn succeeded(&self, controller: &'static str, elapsed: Duration) {
        self.record(controller, "success", elapsed);
    }

    /// Records a pass that failed with an error of kind `error` (a short, fixed name).
    pub fn failed(&self, controller: &'static str, error: &'static str, elapsed: Duration) {
        self.record(controller, "error", elapsed);
        self.errors
            .get_or_create(&ErrorLabels { controller, error })
            .inc();
    }

    fn record(&self, controller: &'static str, result: &'static str, elapsed: Duration) {
        self.passes
            .get_or_create(&PassLabels { controller, result })
            .inc();
        self.durations
            .get_or_create(&ControllerLabel { controller })
            .observe(elapsed.as_secs_f64());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use prometheus_client::encoding::text::encode;

    #[test]
    fn passes_and_errors_are_exported_by_controller() {
        let mut registry = Registry::default();
        let metrics = ReconcileMetrics::register(&mut registry);
        metrics.succeeded("cassandradatacenter", Duration::from_millis(3));
        metrics.failed("cassandradatacenter", "kube", Duration::from_millis(5));
        let mut text = String::new();
        encode(&mut text, &registry).expect("encodes");
        assert!(
            text.contains(
                r#"reconciles_total{controller="cassandradatacenter",result="success"} 1"#
            )
        );
        assert!(
            text.contains(r#"reconciles_total{controller="cassandradatacenter",result="error"} 1"#)
        );
        assert!(text.contains(
            r#"reconcile_errors_total{controller="cassandradatacenter",error="kube"} 1"#
        ));
        assert!(
            text.contains(
                r#"reconcile_duration_seconds_count{controller="cassandradatacenter"} 2"#
            )
        );
    }
}
