//! `k8ssandra-operator run`: logging, the Kubernetes client, and the data-plane controllers until
//! Ctrl-C or SIGTERM.

use std::sync::Arc;

use anyhow::Context as _;
use k8ssandra_data_plane::{datacenter, task};
use k8ssandra_mgmt_api::{ClientSettings, ManagementApiMetrics};
use k8ssandra_reconcile::metrics::ReconcileMetrics;
use prometheus_client::registry::Registry;

/// Runs the CassandraDatacenter and CassandraTask controllers until the process is asked to stop.
pub async fn data_plane(namespace: Option<String>) -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                // kube's client logs a whole response body at WARN when it cannot decode one;
                // the controllers report such objects themselves.
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,kube_client=error")),
        )
        .init();
    let mut config = kube::Config::infer().await.context(
        "reading the Kubernetes configuration (kubeconfig or in-cluster service account)",
    )?;
    k8ssandra_reconcile::identity::identify(&mut config);
    let client = kube::Client::try_from(config).context("building the Kubernetes client")?;
    let mut registry = Registry::default();
    let metrics = ReconcileMetrics::register(&mut registry);
    let mgmt =
        ClientSettings::insecure().with_metrics(ManagementApiMetrics::register(&mut registry));
    let datacenters = Arc::new(datacenter::Context::new(
        client.clone(),
        mgmt.clone(),
        metrics.clone(),
        datacenter::Timings::default(),
    ));
    let tasks = Arc::new(task::Context::new(
        client,
        mgmt,
        metrics,
        task::Timings::default(),
    ));
    tracing::info!(
        namespace = namespace.as_deref().unwrap_or("(all)"),
        "data plane starting"
    );
    let namespace = namespace.as_deref();
    tokio::select! {
        () = async {
            tokio::join!(datacenter::run(datacenters, namespace), task::run(tasks, namespace));
        } => tracing::warn!("the controllers stopped"),
        () = shutdown_signal() => tracing::info!("stopping"),
    }
    Ok(())
}

async fn shutdown_signal() {
    let ctrl_c = async {
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {}
        () = terminate => {}
    }
}
