//! The watch caches of the control plane's own cluster that its controllers read: ClientConfigs,
//! and the Secrets they name once marked watched. (Remote clusters' caches are in the
//! [`crate::remote::Registry`].)

use std::time::Duration;

use k8s_openapi::api::core::v1::Secret;
use k8ssandra_api::{config::ClientConfig, labels};
use k8ssandra_reconcile::{
    cache::{Cache, Feed, watch},
    scope::scoped_api,
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
    /// The Secrets marked watched (a ClientConfig's, once a pass has read it).
    pub secrets: Cache<Secret>,
}

/// The watches that fill [`Caches`].
pub struct Feeds {
    /// Feeds [`Caches::client_configs`].
    pub client_configs: Feed<ClientConfig>,
    /// Feeds [`Caches::secrets`].
    pub secrets: Feed<Secret>,
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
    (
        Caches {
            client_configs,
            secrets,
        },
        Feeds {
            client_configs: client_configs_feed,
            secrets: secrets_feed,
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
        let all_ready = async { tokio::join!(self.client_configs.ready(), self.secrets.ready()) };
        if tokio::time::timeout(READY_LIMIT, all_ready).await.is_err() {
            let waiting = [
                ("ClientConfigs", self.client_configs.is_ready()),
                ("Secrets", self.secrets.is_ready()),
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
        );
        Ok(())
    }
}

impl Feeds {
    /// Runs every watch until the controllers stop.
    pub async fn run(self) {
        tokio::join!(self.client_configs.run(), self.secrets.run());
    }
}
