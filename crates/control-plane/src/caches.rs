//! The watch caches of the control plane's own cluster that its controllers read: ClientConfigs,
//! K8ssandraClusters, K8ssandraTasks, ReplicatedSecrets, and the Secrets marked watched (a ClientConfig's once
//! read, the credentials the control plane replicates). Remote clusters' caches are in the
//! [`crate::remote::Registry`].

use std::time::Duration;

use k8s_openapi::api::core::v1::Secret;
use k8ssandra_api::{
    config::ClientConfig, control::K8ssandraTask, k8ssandra::K8ssandraCluster, labels,
    replication::ReplicatedSecret,
};
use k8ssandra_reconcile::{
    cache::{Cache, Feed, watch},
    scope::scoped_api,
    tolerant::Tolerant,
};
use kube::{Client, runtime::watcher};

/// How long a pass waits for every watch to have listed once.
const READY_LIMIT: Duration = Duration::from_secs(10);
/// How long a pass waits for the caches to show this operator's own last writes.
const CATCH_UP_LIMIT: Duration = Duration::from_secs(3);

/// The stores a pass reads.
#[derive(Clone)]
pub struct Caches {
    /// Every ClientConfig.
    pub client_configs: Cache<ClientConfig>,
    /// The Secrets marked watched (a ClientConfig's, once a pass has read it; those the control
    /// plane replicates).
    pub secrets: Cache<Secret>,
    /// Every K8ssandraCluster, decoded or not.
    pub k8ssandra_clusters: Cache<Tolerant<K8ssandraCluster>>,
    /// Every K8ssandraTask, decoded or not.
    pub k8ssandra_tasks: Cache<Tolerant<K8ssandraTask>>,
    /// Every ReplicatedSecret, decoded or not.
    pub replicated_secrets: Cache<Tolerant<ReplicatedSecret>>,
}

/// The watches that fill [`Caches`].
pub struct Feeds {
    /// Feeds [`Caches::client_configs`].
    pub client_configs: Feed<ClientConfig>,
    /// Feeds [`Caches::secrets`].
    pub secrets: Feed<Secret>,
    /// Feeds [`Caches::k8ssandra_clusters`].
    pub k8ssandra_clusters: Feed<Tolerant<K8ssandraCluster>>,
    /// Feeds [`Caches::k8ssandra_tasks`].
    pub k8ssandra_tasks: Feed<Tolerant<K8ssandraTask>>,
    /// Feeds [`Caches::replicated_secrets`].
    pub replicated_secrets: Feed<Tolerant<ReplicatedSecret>>,
}

/// The caches of `namespace` (every namespace when `None`), and the watches to run.
#[must_use]
pub fn watch_all(client: &Client, namespace: Option<&str>) -> (Caches, Feeds) {
    let (client_configs, client_configs_feed) = watch(
        scoped_api(client.clone(), namespace),
        watcher::Config::default(),
    );
    let (secrets, secrets_feed) = watch(
        scoped_api(client.clone(), namespace),
        watcher::Config::default().labels(&format!("{}=true", labels::WATCHED)),
    );
    let (k8ssandra_clusters, k8ssandra_clusters_feed) = watch(
        scoped_api(client.clone(), namespace),
        watcher::Config::default(),
    );
    let (k8ssandra_tasks, k8ssandra_tasks_feed) = watch(
        scoped_api(client.clone(), namespace),
        watcher::Config::default(),
    );
    let (replicated_secrets, replicated_secrets_feed) = watch(
        scoped_api(client.clone(), namespace),
        watcher::Config::default(),
    );
    (
        Caches {
            client_configs,
            secrets,
            k8ssandra_clusters,
            k8ssandra_tasks,
            replicated_secrets,
        },
        Feeds {
            client_configs: client_configs_feed,
            secrets: secrets_feed,
            k8ssandra_clusters: k8ssandra_clusters_feed,
            k8ssandra_tasks: k8ssandra_tasks_feed,
            replicated_secrets: replicated_secrets_feed,
        },
    )
}

/// The caches cannot be read yet.
#[derive(Debug, thiserror::Error)]
#[error(
    "the watch of {0} has not listed yet (no pass decides from an empty cache); the watch \
     errors in the log say why"
)]
pub struct NotReady(pub String);

impl Caches {
    /// Waits (at most 10 s) until every watch has listed once, then until the stores show this
    /// operator's own last writes.
    ///
    /// # Errors
    /// When a watch has not listed in time; the pass is retried.
    pub async fn settle(&self) -> Result<(), NotReady> {
        let all_ready = async {
            tokio::join!(
                self.client_configs.ready(),
                self.secrets.ready(),
                self.k8ssandra_clusters.ready(),
                self.k8ssandra_tasks.ready(),
                self.replicated_secrets.ready(),
            )
        };
        if tokio::time::timeout(READY_LIMIT, all_ready).await.is_err() {
            let waiting = [
                ("ClientConfigs", self.client_configs.is_ready()),
                ("Secrets", self.secrets.is_ready()),
                ("K8ssandraClusters", self.k8ssandra_clusters.is_ready()),
                ("K8ssandraTasks", self.k8ssandra_tasks.is_ready()),
                ("ReplicatedSecrets", self.replicated_secrets.is_ready()),
            ]
            .iter()
            .filter(|(_, ready)| !ready)
            .map(|(kind, _)| *kind)
            .collect::<Vec<_>>()
            .join(", ");
            return Err(NotReady(waiting));
        }
        tokio::join!(
            self.client_configs.catch_up(CATCH_UP_LIMIT),
            self.secrets.catch_up(CATCH_UP_LIMIT),
            self.k8ssandra_clusters.catch_up(CATCH_UP_LIMIT),
            self.k8ssandra_tasks.catch_up(CATCH_UP_LIMIT),
            self.replicated_secrets.catch_up(CATCH_UP_LIMIT),
        );
        Ok(())
    }
}

impl Feeds {
    /// Runs every watch until the controllers stop.
    pub async fn run(self) {
        tokio::join!(
            self.client_configs.run(),
            self.secrets.run(),
            self.k8ssandra_clusters.run(),
            self.k8ssandra_tasks.run(),
            self.replicated_secrets.run(),
        );
    }
}
