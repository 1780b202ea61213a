//! The control-plane controllers run in-process against a local cluster, the way the operator
//! binary runs them, with recording clients: one for its own cluster, one per remote context.

use std::{
    collections::BTreeMap,
    sync::{Arc, Mutex},
};

use k8ssandra_control_plane::remote::Registry;
use k8ssandra_reconcile::metrics::ReconcileMetrics;
use tokio::task::JoinHandle;

use crate::{HarnessError, LocalCluster, counting::RequestLog};

/// A running control-plane operator. Dropping it stops it at once.
pub struct ControlPlaneOperator {
    task: JoinHandle<()>,
    requests: RequestLog,
    remote_requests: Arc<Mutex<BTreeMap<String, RequestLog>>>,
    registry: Registry,
    metrics: Arc<prometheus_client::registry::Registry>,
}

impl ControlPlaneOperator {
    /// Starts the control-plane controllers on `cluster`, watching `namespace` (every namespace
    /// when `None`).
    ///
    /// # Errors
    /// When the client cannot be built.
    pub fn start(cluster: &LocalCluster, namespace: Option<&str>) -> Result<Self, HarnessError> {
        crate::logs::init();
        let (client, requests) = cluster.recording_client()?;
        let mut metrics_registry = prometheus_client::registry::Registry::default();
        let metrics = ReconcileMetrics::register(&mut metrics_registry);
        // Every client a context gets (a rotation makes a new one) records into its log.
        let remote_requests: Arc<Mutex<BTreeMap<String, RequestLog>>> = Arc::default();
        let registry = Registry::with_client_factory(Arc::new({
            let logs = Arc::clone(&remote_requests);
            move |context, config| {
                let log = logs
                    .lock()
                    .map_err(|_| "request logs poisoned".to_owned())?
                    .entry(context.to_owned())
                    .or_default()
                    .clone();
                crate::counting::counting_client_into(config, log).map_err(|e| e.to_string())
            }
        }));
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
            remote_requests,
            registry,
            metrics: Arc::new(metrics_registry),
        })
    }

    /// The requests the operator sent to its own cluster's API server.
    #[must_use]
    pub fn requests(&self) -> &RequestLog {
        &self.requests
    }

    /// The requests the operator sent to the API server of `context` (watches aside).
    #[must_use]
    pub fn remote_requests(&self, context: &str) -> RequestLog {
        self.remote_requests
            .lock()
            .map(|mut logs| logs.entry(context.to_owned()).or_default().clone())
            .unwrap_or_default()
    }

    /// How many passes of `controller` (e.g. `k8ssandracluster`) ended, successful or not.
    #[must_use]
    pub fn passes(&self, controller: &str) -> u64 {
        let mut text = String::new();
        let _ = prometheus_client::encoding::text::encode(&mut text, &self.metrics);
        let label = format!("controller=\"{controller}\"");
        text.lines()
            .filter(|l| l.starts_with("reconciles_total{") && l.contains(&label))
            .filter_map(|l| l.rsplit(' ').next()?.parse::<u64>().ok())
            .sum()
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
