//! The registry of remote clusters: one client and one set of narrow watches per kubeconfig
//! context, replaced when its ClientConfig or Secret changes, and each context's health as its
//! watches see it.

use std::{
    collections::{BTreeMap, BTreeSet},
    sync::{Arc, Mutex},
};

use futures::StreamExt;
use k8s_openapi::api::{
    core::v1::{Pod, Secret},
    discovery::v1::EndpointSlice,
};
use k8ssandra_api::{cassandra::CassandraDatacenter, control::CassandraTask, labels};
use k8ssandra_reconcile::{
    cache::{Cache, Feed, HealthHook, watch},
    tolerant::Tolerant,
};
use kube::{Api, Client, Config, Resource, runtime::watcher};
use tokio::{sync::broadcast, task::JoinHandle};

use super::kubeconfig::{KubeconfigError, RemoteAccess, WATCH_TIMEOUT_SECONDS};

/// The context of the control plane's own cluster.
pub const LOCAL_CONTEXT: &str = "";

/// How many changes a slow listener may fall behind before it misses some (it then re-reads all).
const CHANGES_BUFFER: usize = 256;
/// The same for changes of remote objects, which come in bursts (a rollout of many pods).
const OBJECT_CHANGES_BUFFER: usize = 4096;

/// Whether a remote API server answers, as its watches see it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Health {
    /// No watch has listed yet.
    Connecting,
    /// The last watch outcome was an answer.
    Reachable,
    /// The last watch outcome was this error.
    Unreachable(String),
}

/// One usable remote cluster: its client and watch caches. Dropping the last handle stops its
/// watches.
pub struct RemoteCluster {
    /// The kubeconfig context.
    pub context: String,
    /// The API server's URL.
    pub server: String,
    /// A client with the remote timeouts, for writes.
    pub client: Client,
    /// The CassandraDatacenters of K8ssandraClusters in that cluster (labelled with
    /// `k8ssandra.io/cluster-name`), in every namespace.
    pub datacenters: Cache<Tolerant<CassandraDatacenter>>,
    /// The Cassandra seed pods (labelled `cassandra.datastax.com/seed-node=true`), whose
    /// addresses the other datacenters need.
    pub seed_pods: Cache<Pod>,
    /// The Secrets copied there by a ReplicatedSecret (labelled
    /// `k8ssandra.io/replicated-secret-name`).
    pub secrets: Cache<Secret>,
    /// The EndpointSlices of other datacenters' seeds that the control plane wrote there
    /// (managed by `k8ssandra-operator`, labelled with `k8ssandra.io/cluster-name`).
    pub seed_slices: Cache<EndpointSlice>,
    /// The CassandraTasks the control plane made there (managed by `k8ssandra-operator`): a
    /// K8ssandraCluster's schema changes, rebuilds and decommission checks, and K8ssandraTasks'.
    pub tasks: Cache<Tolerant<CassandraTask>>,
    fingerprint: String,
    health: Arc<Mutex<Health>>,
    watches: Vec<JoinHandle<()>>,
}

impl RemoteCluster {
    /// Whether the API server answers.
    #[must_use]
    pub fn health(&self) -> Health {
        self.health
            .lock()
            .map(|health| health.clone())
            .unwrap_or(Health::Connecting)
    }
}

impl Drop for RemoteCluster {
    fn drop(&mut self) {
        for watch in &self.watches {
            watch.abort();
        }
    }
}

impl std::fmt::Debug for RemoteCluster {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RemoteCluster")
            .field("context", &self.context)
            .field("server", &self.server)
            .field("health", &self.health())
            .finish_non_exhaustive()
    }
}

/// What the registry knows of one context.
#[derive(Clone, Debug)]
pub enum Remote {
    /// A client and its watches.
    Connected(Arc<RemoteCluster>),
    /// Its ClientConfig gives no usable client.
    Invalid {
        /// A short reason.
        reason: &'static str,
        /// Why, naming the Secret, key or context, never a credential.
        message: String,
    },
}

/// Which remote watch saw a change.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RemoteKind {
    /// A CassandraDatacenter.
    Datacenter,
    /// A seed pod.
    SeedPod,
    /// A replicated Secret.
    Secret,
    /// An EndpointSlice of other datacenters' seeds.
    SeedSlice,
    /// A CassandraTask the control plane made.
    Task,
}

/// An object of a remote cluster that changed, was created or deleted: enough for a controller
/// to find which of its objects to pass again.
#[derive(Clone, Debug)]
pub struct RemoteChange {
    /// The context it is in.
    pub context: String,
    /// Its kind.
    pub kind: RemoteKind,
    /// Its namespace.
    pub namespace: String,
    /// Its name.
    pub name: String,
    /// Its labels.
    pub labels: BTreeMap<String, String>,
}

/// Builds the client of a context from its configuration: where requests to remote clusters
/// can be counted or measured.
pub type ClientFactory = Arc<dyn Fn(&str, Config) -> Result<Client, String> + Send + Sync>;

/// Every context the ClientConfigs name. Cheap to clone; clones share the entries.
#[derive(Clone)]
pub struct Registry {
    entries: Arc<Mutex<BTreeMap<String, Remote>>>,
    changes: broadcast::Sender<String>,
    objects: broadcast::Sender<RemoteChange>,
    clients: ClientFactory,
}

impl Default for Registry {
    fn default() -> Self {
        Self::with_client_factory(Arc::new(|_, config| {
            Client::try_from(config).map_err(|error| format!("cannot build a client: {error}"))
        }))
    }
}

impl Registry {
    /// An empty registry whose remote clients `clients` builds.
    #[must_use]
    pub fn with_client_factory(clients: ClientFactory) -> Self {
        Self {
            entries: Arc::default(),
            changes: broadcast::channel(CHANGES_BUFFER).0,
            objects: broadcast::channel(OBJECT_CHANGES_BUFFER).0,
            clients,
        }
    }

    /// What the registry knows of `context`; `None` when no ClientConfig names it.
    #[must_use]
    pub fn get(&self, context: &str) -> Option<Remote> {
        self.entries.lock().ok()?.get(context).cloned()
    }

    /// The contexts the registry holds.
    #[must_use]
    pub fn contexts(&self) -> BTreeSet<String> {
        self.entries
            .lock()
            .map(|entries| entries.keys().cloned().collect())
            .unwrap_or_default()
    }

    /// The names of contexts whose entry or health changed, as they change.
    #[must_use]
    pub fn changes(&self) -> broadcast::Receiver<String> {
        self.changes.subscribe()
    }

    /// The remote objects that change, as they change, in every context.
    #[must_use]
    pub fn object_changes(&self) -> broadcast::Receiver<RemoteChange> {
        self.objects.subscribe()
    }

    /// Makes `context` what `access` says: a new client and new watches when the kubeconfig or
    /// context changed (the old ones stop), nothing when it is the same; the error when it is
    /// unusable. Returns the entry.
    pub async fn set(
        &self,
        context: &str,
        access: Result<RemoteAccess, KubeconfigError>,
    ) -> Remote {
        let access = match access {
            Ok(access) => access,
            Err(error) => {
                let invalid = Remote::Invalid {
                    reason: error.reason(),
                    message: error.to_string(),
                };
                return self.put(context, invalid);
            }
        };
        if let Some(Remote::Connected(current)) = self.get(context)
            && current.fingerprint == access.fingerprint
        {
            return Remote::Connected(current);
        }
        let client = match access
            .config()
            .await
            .and_then(|c| (self.clients)(context, c))
        {
            Ok(client) => client,
            Err(message) => {
                let reason = "ClientError";
                return self.put(context, Remote::Invalid { reason, message });
            }
        };
        let cluster = self.connect(access, client);
        tracing::info!(context, server = %cluster.server, "remote cluster registered");
        self.put(context, Remote::Connected(Arc::new(cluster)))
    }

    /// Registers the control plane's own cluster as the empty context, which datacenters without
    /// `k8sContext` run in.
    pub fn set_local(&self, client: Client, server: &str) {
        let access = RemoteAccess::local(server);
        let cluster = self.connect(access, client);
        self.put(LOCAL_CONTEXT, Remote::Connected(Arc::new(cluster)));
    }

    /// Forgets every context not in `keep` (their ClientConfigs are gone), except the local one;
    /// their watches stop.
    pub fn retain(&self, keep: &BTreeSet<String>) {
        let removed: Vec<String> = match self.entries.lock() {
            Ok(mut entries) => {
                let gone: Vec<String> = entries
                    .keys()
                    .filter(|context| !context.is_empty() && !keep.contains(*context))
                    .cloned()
                    .collect();
                for context in &gone {
                    entries.remove(context);
                }
                gone
            }
            Err(_) => Vec::new(),
        };
        for context in removed {
            tracing::info!(%context, "remote cluster forgotten");
            let _ = self.changes.send(context);
        }
    }

    fn put(&self, context: &str, remote: Remote) -> Remote {
        if let Ok(mut entries) = self.entries.lock() {
            entries.insert(context.to_owned(), remote.clone());
        }
        let _ = self.changes.send(context.to_owned());
        remote
    }

    /// Starts the narrow watches of a new client; their outcomes are the cluster's health.
    fn connect(&self, access: RemoteAccess, client: Client) -> RemoteCluster {
        let health = Arc::new(Mutex::new(Health::Connecting));
        let hook: HealthHook = {
            let health = Arc::clone(&health);
            let changes = self.changes.clone();
            let context = access.context.clone();
            Arc::new(move |outcome| {
                let now = match outcome {
                    Ok(()) => Health::Reachable,
                    Err(error) => Health::Unreachable(error.to_string()),
                };
                let changed = health.lock().is_ok_and(|mut current| {
                    let changed = *current != now;
                    *current = now;
                    changed
                });
                if changed {
                    let _ = changes.send(context.clone());
                }
            })
        };
        let narrow = |selector: &str| {
            watcher::Config::default()
                .labels(selector)
                .timeout(WATCH_TIMEOUT_SECONDS)
        };
        // Every watch reports its outcomes; one is enough to tell health, and the datacenters'
        // watch is the one every K8ssandraCluster needs.
        let (datacenters, datacenters_feed) = watch(
            Api::<Tolerant<CassandraDatacenter>>::all(client.clone()),
            narrow(labels::K8SSANDRA_CLUSTER_NAME),
        );
        let (seed_pods, seed_pods_feed) = watch(
            Api::<Pod>::all(client.clone()),
            narrow(&format!("{}=true", labels::SEED_NODE)),
        );
        let (secrets, secrets_feed) = watch(
            Api::<Secret>::all(client.clone()),
            narrow(labels::REPLICATED_SECRET_NAME),
        );
        let (seed_slices, seed_slices_feed) = watch(
            Api::<EndpointSlice>::all(client.clone()),
            narrow(&format!(
                "{}={},{}",
                labels::MANAGED_BY,
                labels::CONTROL_PLANE_MANAGER,
                labels::K8SSANDRA_CLUSTER_NAME
            )),
        );
        let (tasks, tasks_feed) = watch(
            Api::<Tolerant<CassandraTask>>::all(client.clone()),
            narrow(&format!(
                "{}={}",
                labels::MANAGED_BY,
                labels::CONTROL_PLANE_MANAGER
            )),
        );
        let context = access.context.clone();
        let watches = vec![
            self.forward(
                &context,
                RemoteKind::Datacenter,
                datacenters_feed.report_health(hook),
            ),
            self.forward(&context, RemoteKind::SeedPod, seed_pods_feed),
            self.forward(&context, RemoteKind::Secret, secrets_feed),
            self.forward(&context, RemoteKind::SeedSlice, seed_slices_feed),
            self.forward(&context, RemoteKind::Task, tasks_feed),
        ];
        RemoteCluster {
            context: access.context,
            server: access.server,
            client,
            datacenters,
            seed_pods,
            secrets,
            seed_slices,
            tasks,
            fingerprint: access.fingerprint,
            health,
            watches,
        }
    }

    /// Runs a remote watch, telling [`Registry::object_changes`] of each change it sees.
    fn forward<K>(&self, context: &str, kind: RemoteKind, mut feed: Feed<K>) -> JoinHandle<()>
    where
        K: Resource<DynamicType = ()>
            + Clone
            + serde::de::DeserializeOwned
            + std::fmt::Debug
            + Send
            + Sync
            + 'static,
    {
        let mut seen = feed.subscribe().boxed();
        let objects = self.objects.clone();
        let context = context.to_owned();
        tokio::spawn(async move {
            let forward = async {
                while let Some(Ok(object)) = seen.next().await {
                    let meta = object.meta();
                    let _ = objects.send(RemoteChange {
                        context: context.clone(),
                        kind,
                        namespace: meta.namespace.clone().unwrap_or_default(),
                        name: meta.name.clone().unwrap_or_default(),
                        labels: meta.labels.clone().unwrap_or_default(),
                    });
                }
            };
            tokio::join!(feed.run(), forward);
        })
    }
}
