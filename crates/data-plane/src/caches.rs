//! The watch caches both controllers read from: one watch per kind, narrowed by upstream's labels,
//! so that a pass reads memory and sends requests only to write (and for the few objects no
//! watch selects: a StorageClass, a Secret not yet marked as watched).

use std::time::Duration;

use k8s_openapi::api::{
    apps::v1::StatefulSet,
    core::v1::{PersistentVolumeClaim, Pod, Secret, Service},
    discovery::v1::EndpointSlice,
    policy::v1::PodDisruptionBudget,
};
use k8ssandra_api::{
    cassandra::CassandraDatacenter,
    control::{CassandraTask, ScheduledTask},
    labels,
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
    /// Every CassandraDatacenter (decoded or not).
    pub datacenters: Cache<Tolerant<CassandraDatacenter>>,
    /// Every CassandraTask (decoded or not).
    pub tasks: Cache<Tolerant<CassandraTask>>,
    /// Every ScheduledTask (decoded or not).
    pub scheduled_tasks: Cache<Tolerant<ScheduledTask>>,
    /// The StatefulSets this operator manages.
    pub statefulsets: Cache<StatefulSet>,
    /// The pods of every datacenter.
    pub pods: Cache<Pod>,
    /// The volume claims of every datacenter.
    pub claims: Cache<PersistentVolumeClaim>,
    /// The Services this operator manages.
    pub services: Cache<Service>,
    /// The EndpointSlices this operator manages, and those the control plane writes.
    pub endpoint_slices: Cache<EndpointSlice>,
    /// The PodDisruptionBudgets this operator manages.
    pub pdbs: Cache<PodDisruptionBudget>,
    /// The Secrets a datacenter reads (labelled watched).
    pub secrets: Cache<Secret>,
}

/// The watches that fill [`Caches`]; controllers subscribe to what triggers them, then
/// [`Feeds::run`] runs them all.
pub struct Feeds {
    /// Feeds [`Caches::datacenters`].
    pub datacenters: Feed<Tolerant<CassandraDatacenter>>,
    /// Feeds [`Caches::tasks`].
    pub tasks: Feed<Tolerant<CassandraTask>>,
    /// Feeds [`Caches::scheduled_tasks`].
    pub scheduled_tasks: Feed<Tolerant<ScheduledTask>>,
    /// Feeds [`Caches::statefulsets`].
    pub statefulsets: Feed<StatefulSet>,
    /// Feeds [`Caches::pods`].
    pub pods: Feed<Pod>,
    /// Feeds [`Caches::claims`].
    pub claims: Feed<PersistentVolumeClaim>,
    /// Feeds [`Caches::services`].
    pub services: Feed<Service>,
    /// Feeds [`Caches::endpoint_slices`].
    pub endpoint_slices: Feed<EndpointSlice>,
    /// Feeds [`Caches::pdbs`].
    pub pdbs: Feed<PodDisruptionBudget>,
    /// Feeds [`Caches::secrets`].
    pub secrets: Feed<Secret>,
}

/// The caches of `namespace` (every namespace when `None`), and the watches to run.
#[must_use]
pub fn watch_all(client: &Client, namespace: Option<&str>) -> (Caches, Feeds) {
    let managed = || {
        watcher::Config::default().labels(&format!(
            "{}={}",
            labels::MANAGED_BY,
            labels::DATA_PLANE_MANAGER
        ))
    };
    let of_datacenter = || watcher::Config::default().labels(labels::DATACENTER);
    let api = || client.clone();
    let (datacenters, datacenters_feed) =
        watch(scoped_api(api(), namespace), watcher::Config::default());
    let (tasks, tasks_feed) = watch(scoped_api(api(), namespace), watcher::Config::default());
    let (scheduled_tasks, scheduled_tasks_feed) =
        watch(scoped_api(api(), namespace), watcher::Config::default());
    let (statefulsets, statefulsets_feed) = watch(scoped_api(api(), namespace), managed());
    let (pods, pods_feed) = watch(scoped_api(api(), namespace), of_datacenter());
    let (claims, claims_feed) = watch(scoped_api(api(), namespace), of_datacenter());
    let (services, services_feed) = watch(scoped_api(api(), namespace), managed());
    // The control plane lists the other datacenters' seeds behind the additional-seed Service.
    let seed_slices = watcher::Config::default().labels(&format!(
        "{} in ({},{})",
        labels::MANAGED_BY,
        labels::DATA_PLANE_MANAGER,
        labels::CONTROL_PLANE_MANAGER
    ));
    let (endpoint_slices, endpoint_slices_feed) = watch(scoped_api(api(), namespace), seed_slices);
    let (pdbs, pdbs_feed) = watch(scoped_api(api(), namespace), managed());
    let (secrets, secrets_feed) = watch(
        scoped_api(api(), namespace),
        watcher::Config::default().labels(&format!("{}=true", labels::WATCHED)),
    );
    let caches = Caches {
        datacenters,
        tasks,
        scheduled_tasks,
        statefulsets,
        pods,
        claims,
        services,
        endpoint_slices,
        pdbs,
        secrets,
    };
    let feeds = Feeds {
        datacenters: datacenters_feed,
        tasks: tasks_feed,
        scheduled_tasks: scheduled_tasks_feed,
        statefulsets: statefulsets_feed,
        pods: pods_feed,
        claims: claims_feed,
        services: services_feed,
        endpoint_slices: endpoint_slices_feed,
        pdbs: pdbs_feed,
        secrets: secrets_feed,
    };
    (caches, feeds)
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
    /// operator's own last writes: a pass decides from what is, never from an empty or stale
    /// cache.
    ///
    /// # Errors
    /// When a watch has not listed in time; the pass is retried.
    pub async fn settle(&self) -> Result<(), NotReady> {
        let all_ready = async {
            tokio::join!(
                self.datacenters.ready(),
                self.tasks.ready(),
                self.scheduled_tasks.ready(),
                self.statefulsets.ready(),
                self.pods.ready(),
                self.claims.ready(),
                self.services.ready(),
                self.endpoint_slices.ready(),
                self.pdbs.ready(),
                self.secrets.ready(),
            )
        };
        if tokio::time::timeout(READY_LIMIT, all_ready).await.is_err() {
            let waiting = [
                ("CassandraDatacenters", self.datacenters.is_ready()),
                ("CassandraTasks", self.tasks.is_ready()),
                ("ScheduledTasks", self.scheduled_tasks.is_ready()),
                ("StatefulSets", self.statefulsets.is_ready()),
                ("pods", self.pods.is_ready()),
                ("PersistentVolumeClaims", self.claims.is_ready()),
                ("Services", self.services.is_ready()),
                ("EndpointSlices", self.endpoint_slices.is_ready()),
                ("PodDisruptionBudgets", self.pdbs.is_ready()),
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
            self.datacenters.catch_up(CATCH_UP_LIMIT),
            self.tasks.catch_up(CATCH_UP_LIMIT),
            self.scheduled_tasks.catch_up(CATCH_UP_LIMIT),
            self.statefulsets.catch_up(CATCH_UP_LIMIT),
            self.pods.catch_up(CATCH_UP_LIMIT),
            self.claims.catch_up(CATCH_UP_LIMIT),
            self.services.catch_up(CATCH_UP_LIMIT),
            self.endpoint_slices.catch_up(CATCH_UP_LIMIT),
            self.pdbs.catch_up(CATCH_UP_LIMIT),
            self.secrets.catch_up(CATCH_UP_LIMIT),
        );
        Ok(())
    }
}

impl Feeds {
    /// Runs every watch until the controllers stop.
    pub async fn run(self) {
        tokio::join!(
            self.datacenters.run(),
            self.tasks.run(),
            self.scheduled_tasks.run(),
            self.statefulsets.run(),
            self.pods.run(),
            self.claims.run(),
            self.services.run(),
            self.endpoint_slices.run(),
            self.pdbs.run(),
            self.secrets.run(),
        );
    }
}
