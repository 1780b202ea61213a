//! Reconcile metrics by controller: how many passes ended how, how long they took, and which
//! errors they hit; and the guard that turns a pass that panics into an error of that pass, so
//! that one object's bug takes neither its controller nor the process down.

use std::{
    panic::AssertUnwindSafe,
    time::{Duration, Instant},
};

use futures::FutureExt;
use k8s_openapi::api::core::v1::ObjectReference;

use crate::events::{EventPublisher, Severity};

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

/// A pass that panicked, with the panic's message: the pass failed, and is retried like any.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the reconcile pass panicked (a bug of this operator; please report it): {0}")]
pub struct Panicked(pub String);

/// Where a panic of a pass is told: a Warning Event `ReconcilePanicked` on the object.
pub struct PanicReport<'a> {
    /// The Events of the controller.
    pub events: &'a EventPublisher,
    /// The object of the pass.
    pub object: ObjectReference,
}

/// Reconcile counters and durations. Cheap to clone; clones share the series.
#[derive(Debug, Clone)]
pub struct ReconcileMetrics {
    passes: Family<PassLabels, Counter>,
    errors: Family<ErrorLabels, Counter>,
    panics: Family<ControllerLabel, Counter>,
    durations: Family<ControllerLabel, Histogram, fn() -> Histogram>,
}

impl Default for ReconcileMetrics {
    fn default() -> Self {
        Self {
            passes: Family::default(),
            errors: Family::default(),
            panics: Family::default(),
            durations: Family::new_with_constructor(new_histogram),
        }
    }
}

/// The message a panic carried.
fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    payload
        .downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "(no message)".to_owned())
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
        registry.register(
            "reconcile_panics",
            "Reconcile passes that panicked, by controller (each also counts as an error)",
            metrics.panics.clone(),
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
    /// names an error for the `error` label. A pass that panics ends with [`Panicked`] (counted
    /// under `panic`, logged, and told on the object when `report` says where).
    pub async fn measure<T, E: From<Panicked>>(
        &self,
        controller: &'static str,
        kind: impl FnOnce(&E) -> &'static str,
        report: Option<PanicReport<'_>>,
        pass: impl Future<Output = Result<T, E>>,
    ) -> Result<T, E> {
        let started = Instant::now();
        let result = match AssertUnwindSafe(pass).catch_unwind().await {
            Ok(result) => result,
            Err(payload) => {
                let panicked = Panicked(panic_message(payload.as_ref()));
                self.panics
                    .get_or_create(&ControllerLabel { controller })
                    .inc();
                self.failed(controller, "panic", started.elapsed());
                tracing::error!(controller, error = %panicked, "reconcile pass panicked");
                if let Some(report) = report {
                    report
                        .events
                        .publish(
                            &report.object,
                            Severity::Warning,
                            "ReconcilePanicked",
                            "Reconcile",
                            panicked.to_string(),
                        )
                        .await;
                }
                return Err(E::from(panicked));
            }
        };
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

    #[derive(Debug)]
    enum PassError {
        Panicked(Panicked),
    }

    impl From<Panicked> for PassError {
        fn from(panicked: Panicked) -> Self {
            Self::Panicked(panicked)
        }
    }

    #[tokio::test]
    async fn a_pass_that_panics_is_an_error_of_that_pass() {
        let mut registry = Registry::default();
        let metrics = ReconcileMetrics::register(&mut registry);
        let outcome: Result<(), PassError> = metrics
            .measure("cassandratask", |_| "never", None, async {
                let pods: Vec<u32> = Vec::new();
                // An out-of-bounds index, as a bug would have it.
                let _ = pods[usize::from(pods.is_empty())];
                Ok(())
            })
            .await;
        let PassError::Panicked(panicked) = outcome.unwrap_err();
        assert!(panicked.0.contains("index out of bounds"), "{panicked}");
        let ok: Result<u8, PassError> = metrics
            .measure("cassandratask", |_| "never", None, async { Ok(1) })
            .await;
        assert_eq!(ok.unwrap(), 1, "the next pass runs");
        let mut text = String::new();
        encode(&mut text, &registry).expect("encodes");
        assert!(text.contains(r#"reconcile_panics_total{controller="cassandratask"} 1"#));
        assert!(
            text.contains(r#"reconcile_errors_total{controller="cassandratask",error="panic"} 1"#)
        );
        assert!(
            text.contains(r#"reconciles_total{controller="cassandratask",result="success"} 1"#)
        );
    }

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
