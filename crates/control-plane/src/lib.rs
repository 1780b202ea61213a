//! The control plane (the k8ssandra-operator role): remote Kubernetes clusters reached through
//! ClientConfigs, and the controllers that span them.
//!
//! - [`remote`]: kubeconfigs from ClientConfig Secrets, and the registry of one client and one set
//!   of narrow watches per context, with each context's health as its watches see it;
//! - [`client_config`]: the ClientConfig controller, which keeps the registry in step with the
//!   ClientConfigs and their Secrets, live, and reports `Reachable` on each;
//! - [`k8ssandra_cluster`]: the K8ssandraCluster controller, which makes one CassandraDatacenter
//!   per datacenter in the cluster its context names and rolls their status up;
//! - [`k8ssandra_task`]: the K8ssandraTask controller, which runs a CassandraTask in each
//!   datacenter of a K8ssandraCluster, one after the other or all at once, and rolls their status
//!   up;
//! - [`replicated_secret`]: the ReplicatedSecret controller, which copies Secrets into other
//!   namespaces and clusters;
//! - [`build`]: the pure builders of what those controllers write;
//! - [`caches`]: the watch caches of the control plane's own cluster.

pub mod build;
pub mod caches;
pub mod client_config;
pub mod k8ssandra_cluster;
pub mod k8ssandra_task;
pub mod remote;
pub mod replicated_secret;

use std::sync::Arc;

use k8ssandra_reconcile::metrics::ReconcileMetrics;
use kube::Client;

/// Runs the control-plane controllers (ClientConfig, K8ssandraCluster, K8ssandraTask,
/// ReplicatedSecret) and their watches on the cluster of `client`, in `namespace` (every namespace
/// when `None`), until they stop. `registry` should hold the local cluster already ([`remote::Registry::set_local`]).
pub async fn run(
    client: Client,
    namespace: Option<&str>,
    registry: remote::Registry,
    metrics: ReconcileMetrics,
) {
    let (caches, mut feeds) = caches::watch_all(&client, namespace);
    let client_configs = client_config::run(
        Arc::new(client_config::Context::new(
            client.clone(),
            caches.clone(),
            registry.clone(),
            metrics.clone(),
        )),
        &mut feeds,
    );
    let clusters = k8ssandra_cluster::run(
        Arc::new(k8ssandra_cluster::Context::new(
            client.clone(),
            caches.clone(),
            registry.clone(),
            metrics.clone(),
        )),
        &mut feeds,
    );
    let tasks = k8ssandra_task::run(
        Arc::new(k8ssandra_task::Context::new(
            client.clone(),
            caches.clone(),
            registry.clone(),
            metrics.clone(),
        )),
        &mut feeds,
    );
    let replication = replicated_secret::run(
        Arc::new(replicated_secret::Context::new(
            client, caches, registry, metrics,
        )),
        &mut feeds,
    );
    tokio::select! {
        () = feeds.run() => tracing::warn!("the watches ended"),
        () = async { tokio::join!(client_configs, clusters, tasks, replication); } => {
            tracing::warn!("the controllers stopped");
        }
    }
}
