//! The control-plane controllers run in-process against a local cluster, the way the operator
//! binary runs them, with a recording client.

use std::sync::Arc;

use k8ssandra_control_plane::{caches, client_config, remote::Registry};
use k8ssandra_reconcile::metrics::ReconcileMetrics;
use tokio::task::JoinHandle;

use crate::{HarnessError, LocalCluster, counting::RequestLog};

/// A running control-plane operator. Dropping it stops it at once.
pub struct ControlPlaneOperator {
    task: JoinHandle<()>,
    requests: RequestLog,
    registry: Registry,
}

impl ControlPlaneOperator {
    /// Starts the control-plane controllers on `cluster`, watching `namespace` (every namespace
    /// when `None`).
    ///
    /// # Errors
    /// When the client cannot be built.
    pub fn start(cluster: &LocalCluster, namespace: Option<&str>) -> Result<Self, HarnessError> {
        crate::data_plane::init_logs();
        let (client, requests) = cluster.recording_client()?;
        let mut metrics_registry = prometheus_client::registry::Registry::default();
        let metrics = ReconcileMetrics::register(&mut metrics_registry);
        let registry = Registry::default();
        registry.set_local(client.clone(), &cluster.access().server);
        let (caches, feeds) = caches::watch_all(&client, namespace);
        let ctx = Arc::new(client_config::Context::new(
            client,
            caches,
            registry.clone(),
            metrics,
        ));
        let task = tokio::spawn(k8ssandra_control_plane::run(ctx, feeds));
        Ok(Self {
            task,
            requests,
            registry,
        })
    }

    /// The requests the operator sent to its own cluster's API server.
    #[must_use]
    pub fn requests(&self) -> &RequestLog {
        &self.requests
    }

    /// The remote clusters the operator knows.
    #[must_use]
    pub fn registry(&self) -> &Registry {
        &self.registry
    }
}

impl Drop for ControlPlaneOperator {
    fn drop(&mut self) {
        self.task.abort();
    }
}
