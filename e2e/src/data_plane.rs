//! The data-plane controllers run in-process against a local cluster, the way the operator
//! binary runs them, with a recording client and fast timings for tests.

use std::{sync::Arc, time::Duration};

use k8ssandra_data_plane::{
    Controllers,
    datacenter::{Context, Timings},
    schedule, task,
};
use k8ssandra_mgmt_api::{ClientSettings, ManagementApiMetrics};
use k8ssandra_reconcile::{backoff::BackoffPolicy, metrics::ReconcileMetrics};
use prometheus_client::{encoding::text::encode, registry::Registry};
use tokio::task::JoinHandle;

use crate::{HarnessError, LocalCluster, counting::RequestLog};

/// Timings for tests: passes follow each other quickly and failed starts retry within seconds.
#[must_use]
pub fn test_timings() -> Timings {
    Timings {
        busy_requeue: Duration::from_millis(300),
        idle_requeue: Duration::from_secs(300),
        node_backoff: BackoffPolicy {
            base: Duration::from_millis(500),
            max: Duration::from_secs(2),
        },
        start_timeout: Duration::from_secs(20),
        error_requeue: Duration::from_millis(500),
    }
}

/// Timings of the CassandraTask controller for tests: jobs are polled every few hundred
/// milliseconds.
#[must_use]
pub fn task_test_timings() -> task::Timings {
    task::Timings {
        poll: Duration::from_millis(300),
        wait: Duration::from_millis(500),
        error_requeue: Duration::from_millis(500),
    }
}

/// Timings of the ScheduledTask controller for tests: a schedule waiting for its datacenter or
/// its previous task looks again within a second.
#[must_use]
pub fn schedule_test_timings() -> schedule::Timings {
    schedule::Timings {
        wait: Duration::from_millis(500),
        error_requeue: Duration::from_millis(500),
    }
}

/// A running data-plane operator. Dropping it (or [`DataPlaneOperator::crash`]) stops it at
/// once, as a killed process would stop.
pub struct DataPlaneOperator {
    task: JoinHandle<()>,
    requests: RequestLog,
    registry: Arc<Registry>,
}

impl DataPlaneOperator {
    /// Starts the CassandraDatacenter and CassandraTask controllers on `cluster` with Management
    /// API `settings`.
    ///
    /// # Errors
    /// When the client cannot be built.
    pub fn start(cluster: &LocalCluster, settings: ClientSettings) -> Result<Self, HarnessError> {
        Self::start_with_timings(cluster, settings, test_timings(), task_test_timings())
    }

    /// As [`DataPlaneOperator::start`], with the controllers' `timings` (the binary runs with
    /// their defaults).
    ///
    /// # Errors
    /// When the client cannot be built.
    pub fn start_with_timings(
        cluster: &LocalCluster,
        settings: ClientSettings,
        timings: Timings,
        task_timings: task::Timings,
    ) -> Result<Self, HarnessError> {
        crate::logs::init();
        let (client, requests) = cluster.recording_client()?;
        let mut registry = Registry::default();
        let metrics = ReconcileMetrics::register(&mut registry);
        let settings = settings.with_metrics(ManagementApiMetrics::register(&mut registry));
        let (caches, feeds) = k8ssandra_data_plane::caches::watch_all(&client, None);
        let tasks = Arc::new(task::Context::new(
            client.clone(),
            caches.clone(),
            settings.clone(),
            metrics.clone(),
            task_timings,
        ));
        let schedules = Arc::new(schedule::Context::new(
            client.clone(),
            caches.clone(),
            metrics.clone(),
            schedule_test_timings(),
        ));
        let datacenters = Arc::new(Context::new(client, caches, settings, metrics, timings));
        let controllers = Controllers {
            datacenters,
            tasks,
            schedules,
        };
        let task = tokio::spawn(k8ssandra_data_plane::run(controllers, feeds));
        Ok(Self {
            task,
            requests,
            registry: Arc::new(registry),
        })
    }

    /// The requests the operator sent to the API server.
    #[must_use]
    pub fn requests(&self) -> &RequestLog {
        &self.requests
    }

    /// The operator's metrics in Prometheus text format.
    #[must_use]
    pub fn metrics_text(&self) -> String {
        let mut text = String::new();
        let _ = encode(&mut text, &self.registry);
        text
    }

    /// How many reconcile passes ended, successful or not.
    #[must_use]
    pub fn passes(&self) -> u64 {
        self.metrics_text()
            .lines()
            .filter(|l| l.starts_with("reconciles_total{"))
            .filter_map(|l| l.rsplit(' ').next()?.parse::<u64>().ok())
            .sum()
    }

    /// Stops the operator at once, in the middle of whatever it does.
    pub fn crash(self) {
        self.task.abort();
    }
}

impl Drop for DataPlaneOperator {
    fn drop(&mut self) {
        self.task.abort();
    }
}
