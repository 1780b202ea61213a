//! The control plane (the k8ssandra-operator role): remote Kubernetes clusters reached through
//! ClientConfigs, and the controllers that span them.
//!
//! - [`remote`]: kubeconfigs from ClientConfig Secrets, and the registry of one client and one set
//!   of narrow watches per context, with each context's health as its watches see it;
//! - [`client_config`]: the ClientConfig controller, which keeps the registry in step with the
//!   ClientConfigs and their Secrets, live, and reports `Reachable` on each;
//! - [`caches`]: the watch caches of the control plane's own cluster.
//!
//! Not written yet: the K8ssandraCluster, ReplicatedSecret and K8ssandraTask controllers.

pub mod build;
pub mod caches;
pub mod client_config;
pub mod remote;

use std::sync::Arc;

/// Runs the control-plane controllers and their watches until they stop.
pub async fn run(client_configs: Arc<client_config::Context>, mut feeds: caches::Feeds) {
    let client_configs = client_config::run(client_configs, &mut feeds);
    tokio::select! {
        () = feeds.run() => tracing::warn!("the watches ended"),
        () = client_configs => tracing::warn!("the controllers stopped"),
    }
}
