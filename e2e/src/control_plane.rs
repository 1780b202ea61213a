//! The control-plane controllers run in-process against a local cluster, the way the operator
//! binary runs them, with a recording client.

use k8ssandra_control_plane::remote::Registry;
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
        let namespace = namespace.map(str::to_owned);
        let task = tokio::spawn({
            let registry = registry.clone();
            async move {
                k8ssandra_control_plane::run(client, namespace.as_deref(), registry, metrics).await;
            }
        });
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
