//! A datacenter scenario: one local cluster with the CRDs, the fake Management API of one
//! Cassandra cluster on its pods, and the data-plane operator, plus the waits and reads the
//! acceptance tests share.

use std::time::Duration;

use k8s_openapi::api::{
    core::v1::{PersistentVolumeClaim, Pod},
    events::v1::Event,
};
use k8ssandra_api::{
    cassandra::{CassandraDatacenter, CassandraNodeStatus},
    conditions::{self, Condition},
};
use k8ssandra_mgmt_api::{
    ClientSettings,
    fake::{FakeCluster, FakeClusterConfig, FakeTls},
};
use kube::{
    Api, ResourceExt,
    api::{ListParams, Patch, PatchParams},
};

use crate::{
    DataPlaneOperator, FakeManagementApi, Fleet, FleetConfig, HarnessError, LocalCluster, wait,
};

/// Namespace of the scenario's datacenter.
pub const NAMESPACE: &str = "cass";

/// The three-rack sample: datacenter `dc1` of Cassandra cluster `cluster1`, one node per rack.
pub const THREE_RACK_SAMPLE: &str =
    include_str!("../../config/samples/cassandra-datacenter-three-racks.yaml");

/// A datacenter `name` of Cassandra cluster `cluster1` with `size` nodes in the default rack and
/// the sample's storage; `metadata` and `spec` are YAML lines added under those keys (indented
/// by two spaces, each ending with a newline).
#[must_use]
pub fn one_rack_datacenter(name: &str, size: u32, metadata: &str, spec: &str) -> String {
    format!(
        "apiVersion: cassandra.datastax.com/v1beta1
kind: CassandraDatacenter
metadata:
  name: {name}
{metadata}spec:
  clusterName: cluster1
  serverType: cassandra
  serverVersion: \"4.1.5\"
  size: {size}
{spec}  storageConfig:
    cassandraDataVolumeClaimSpec:
      storageClassName: standard
      accessModes:
        - ReadWriteOnce
      resources:
        requests:
          storage: 5Gi
"
    )
}

/// Pod `ordinal` of `rack` in the sample datacenter.
#[must_use]
pub fn sample_pod(rack: &str, ordinal: u32) -> String {
    format!("cluster1-dc1-{rack}-sts-{ordinal}")
}

/// How long a scenario waits for the operator to converge.
pub const CONVERGE: Duration = Duration::from_secs(90);

/// How fast the fake and the operator run.
#[derive(Clone, Copy)]
enum Speed {
    /// The fake's fast timings and the operator's test timings.
    Test,
    /// Both at their defaults.
    Default,
}

/// A running scenario.
pub struct Scenario {
    /// The operator (replaceable, to restart it).
    pub operator: Option<DataPlaneOperator>,
    /// The fake Management API.
    pub mgmt: FakeManagementApi,
    /// The fleet of one cluster (dropped last).
    pub fleet: Fleet,
}

impl Scenario {
    /// Starts a one-cluster fleet named `name` with the CRDs, the fake Management API of
    /// Cassandra cluster `cassandra_cluster`, and the operator.
    ///
    /// # Errors
    /// When the fleet does not start.
    pub async fn start(name: &str, cassandra_cluster: &str) -> Result<Self, HarnessError> {
        Self::start_with_tls(name, cassandra_cluster, None).await
    }

    /// As [`Scenario::start`], the fake Management API serving mutual TLS with `tls` when given.
    ///
    /// # Errors
    /// When the fleet does not start.
    pub async fn start_with_tls(
        name: &str,
        cassandra_cluster: &str,
        tls: Option<FakeTls>,
    ) -> Result<Self, HarnessError> {
        Self::start_with(name, cassandra_cluster, tls, Speed::Test).await
    }

    /// As [`Scenario::start`], at the fake's and the operator's default timings: as a user would
    /// see the operator, for benchmarks.
    ///
    /// # Errors
    /// When the fleet does not start.
    pub async fn start_at_default_timings(
        name: &str,
        cassandra_cluster: &str,
    ) -> Result<Self, HarnessError> {
        Self::start_with(name, cassandra_cluster, None, Speed::Default).await
    }

    async fn start_with(
        name: &str,
        cassandra_cluster: &str,
        tls: Option<FakeTls>,
        speed: Speed,
    ) -> Result<Self, HarnessError> {
        let fleet = FleetConfig::new(name, 1).install_crds(true).start().await?;
        fleet.cluster(0).create_namespace(NAMESPACE).await?;
        let fake = match speed {
            Speed::Test => FakeClusterConfig::fast(),
            Speed::Default => FakeClusterConfig::default(),
        };
        let mgmt = FakeManagementApi::start_with_tls(
            FakeCluster::new(fake),
            &[fleet.cluster(0)],
            cassandra_cluster,
            tls,
        );
        let operator = match speed {
            Speed::Test => DataPlaneOperator::start(fleet.cluster(0), settings())?,
            Speed::Default => DataPlaneOperator::start_with_timings(
                fleet.cluster(0),
                settings(),
                k8ssandra_data_plane::datacenter::Timings::default(),
                k8ssandra_data_plane::task::Timings::default(),
            )?,
        };
        Ok(Self {
            operator: Some(operator),
            mgmt,
            fleet,
        })
    }

    /// A scenario whose sample datacenter ([`THREE_RACK_SAMPLE`]) is up, and the datacenter as
    /// it converged.
    ///
    /// # Errors
    /// When the fleet does not start or the datacenter does not converge.
    pub async fn with_sample(name: &str) -> Result<(Self, CassandraDatacenter), HarnessError> {
        let scenario = Self::start(name, "cluster1").await?;
        scenario.apply(THREE_RACK_SAMPLE).await?;
        let dc = scenario.wait_converged("dc1", 3).await?;
        Ok((scenario, dc))
    }

    /// The cluster.
    #[must_use]
    pub fn cluster(&self) -> &LocalCluster {
        self.fleet.cluster(0)
    }

    /// The running operator.
    ///
    /// # Panics
    /// When it was crashed and not restarted.
    #[must_use]
    pub fn operator(&self) -> &DataPlaneOperator {
        self.operator
            .as_ref()
            .unwrap_or_else(|| panic!("the operator is not running"))
    }

    /// Stops the operator at once.
    pub fn crash_operator(&mut self) {
        if let Some(operator) = self.operator.take() {
            operator.crash();
        }
    }

    /// Starts a new operator (with empty memory).
    ///
    /// # Errors
    /// When the client cannot be built.
    pub fn restart_operator(&mut self) -> Result<(), HarnessError> {
        self.crash_operator();
        self.operator = Some(DataPlaneOperator::start(self.cluster(), settings())?);
        Ok(())
    }

    /// The datacenters API.
    #[must_use]
    pub fn datacenters(&self) -> Api<CassandraDatacenter> {
        Api::namespaced(self.cluster().client(), NAMESPACE)
    }

    /// Applies YAML in the scenario's namespace.
    ///
    /// # Errors
    /// When the API server refuses it.
    pub async fn apply(&self, yaml: &str) -> Result<(), HarnessError> {
        self.cluster().apply_yaml(NAMESPACE, yaml).await.map(drop)
    }

    /// Merge-patches the spec of datacenter `name`, as a user's `kubectl patch` would.
    ///
    /// # Errors
    /// When the API server refuses it.
    pub async fn patch_spec(
        &self,
        name: &str,
        spec: serde_json::Value,
    ) -> Result<CassandraDatacenter, HarnessError> {
        let patch = serde_json::json!({ "spec": spec });
        Ok(self
            .datacenters()
            .patch(name, &PatchParams::default(), &Patch::Merge(&patch))
            .await?)
    }

    /// Sets annotation `key` to `value` on datacenter `name`.
    ///
    /// # Errors
    /// When the API server refuses it.
    pub async fn annotate(
        &self,
        name: &str,
        key: &str,
        value: &str,
    ) -> Result<CassandraDatacenter, HarnessError> {
        let patch = serde_json::json!({ "metadata": { "annotations": { key: value } } });
        Ok(self
            .datacenters()
            .patch(name, &PatchParams::default(), &Patch::Merge(&patch))
            .await?)
    }

    /// Waits until datacenter `name` satisfies `done`, and returns it.
    ///
    /// # Errors
    /// On timeout.
    pub async fn wait_for(
        &self,
        name: &str,
        what: &str,
        done: impl Fn(&CassandraDatacenter) -> bool + Send + 'static,
    ) -> Result<CassandraDatacenter, HarnessError> {
        match wait::object(&self.datacenters(), name, what, CONVERGE, done).await {
            Ok(dc) => Ok(dc),
            Err(error) => {
                // Say where it stood: that is what a failing test needs to be understood.
                let status = self
                    .datacenters()
                    .get_status(name)
                    .await
                    .ok()
                    .and_then(|dc| dc.status);
                let status = serde_json::to_string_pretty(&status).unwrap_or_default();
                Err(HarnessError::Wait(format!(
                    "{error}; last status: {status}"
                )))
            }
        }
    }

    /// Waits until condition `type_` of datacenter `name` has `reason`, and returns the
    /// datacenter.
    ///
    /// # Errors
    /// On timeout.
    pub async fn wait_for_reason(
        &self,
        name: &str,
        type_: &'static str,
        reason: &'static str,
    ) -> Result<CassandraDatacenter, HarnessError> {
        self.wait_for(name, &format!("{type_} with reason {reason}"), move |dc| {
            condition(dc, type_).is_some_and(|c| c.reason.as_deref() == Some(reason))
        })
        .await
    }

    /// Waits until datacenter `name` has its current generation observed, `size` nodes ready and
    /// nothing left to do.
    ///
    /// # Errors
    /// On timeout.
    pub async fn wait_converged(
        &self,
        name: &str,
        size: i32,
    ) -> Result<CassandraDatacenter, HarnessError> {
        self.wait_for(
            name,
            &format!("{name} converged with {size} ready nodes"),
            move |dc| is_converged(dc, size),
        )
        .await
    }

    /// The datacenter's pods, sorted by name.
    ///
    /// # Errors
    /// When the list fails.
    pub async fn pods(&self) -> Result<Vec<Pod>, HarnessError> {
        let mut pods = Api::<Pod>::namespaced(self.cluster().client(), NAMESPACE)
            .list(&ListParams::default().labels(k8ssandra_api::labels::DATACENTER))
            .await?
            .items;
        pods.sort_by_key(ResourceExt::name_any);
        Ok(pods)
    }

    /// Notes of the Events with `reason` about object `name` in `namespace`.
    ///
    /// # Errors
    /// When the list fails.
    pub async fn event_notes(
        &self,
        namespace: &str,
        name: &str,
        reason: &str,
    ) -> Result<Vec<String>, HarnessError> {
        Ok(Api::<Event>::namespaced(self.cluster().client(), namespace)
            .list(&ListParams::default())
            .await?
            .items
            .into_iter()
            .filter(|e| e.reason.as_deref() == Some(reason))
            .filter(|e| e.regarding.as_ref().and_then(|r| r.name.as_deref()) == Some(name))
            .filter_map(|e| e.note)
            .collect())
    }

    /// Names of the datacenter's volume claims, sorted.
    ///
    /// # Errors
    /// When the list fails.
    pub async fn claim_names(&self) -> Result<Vec<String>, HarnessError> {
        let mut names: Vec<String> =
            Api::<PersistentVolumeClaim>::namespaced(self.cluster().client(), NAMESPACE)
                .list(&ListParams::default().labels(k8ssandra_api::labels::DATACENTER))
                .await?
                .items
                .iter()
                .filter(|c| c.metadata.deletion_timestamp.is_none())
                .map(ResourceExt::name_any)
                .collect();
        names.sort();
        Ok(names)
    }
}

/// Management API settings of the tests: short timeouts, so a hanging call fails within seconds.
#[must_use]
pub fn settings() -> ClientSettings {
    ClientSettings::insecure().with_timeout_for_all(Duration::from_secs(5))
}

/// What the datacenter records of the node in `pod` (host ID, IP, rack).
#[must_use]
pub fn node_status(dc: &CassandraDatacenter, pod: &str) -> Option<CassandraNodeStatus> {
    dc.status
        .as_ref()?
        .node_statuses
        .as_ref()?
        .get(pod)
        .cloned()
}

/// The condition `type_` of a datacenter.
#[must_use]
pub fn condition<'a>(dc: &'a CassandraDatacenter, type_: &str) -> Option<&'a Condition> {
    conditions::find(dc.status.as_ref()?.conditions.as_deref()?, type_)
}

/// Whether condition `type_` is True.
#[must_use]
pub fn is_true(dc: &CassandraDatacenter, type_: &str) -> bool {
    condition(dc, type_).is_some_and(Condition::is_true)
}

/// Current generation observed, progress Ready, `size` ready nodes, Ready=True.
#[must_use]
pub fn is_converged(dc: &CassandraDatacenter, size: i32) -> bool {
    let Some(status) = &dc.status else {
        return false;
    };
    status.observed_generation == dc.metadata.generation
        && status.cassandra_operator_progress
            == Some(k8ssandra_api::cassandra::ProgressState::Ready)
        && status.ready_nodes == Some(size)
        && is_true(dc, k8ssandra_api::cassandra::condition::READY)
}

/// Samples every 100 ms, until dropped, how many of the `size` Cassandra pods of a namespace are
/// down at once, and keeps the most.
pub struct DownSampler {
    most: std::sync::Arc<std::sync::atomic::AtomicUsize>,
    task: tokio::task::JoinHandle<()>,
}

impl DownSampler {
    /// Starts sampling the Cassandra pods of `namespace` in `cluster`.
    #[must_use]
    pub fn start(cluster: &LocalCluster, namespace: &str, size: usize) -> Self {
        let most = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let pods: Api<Pod> = Api::namespaced(cluster.client(), namespace);
        let seen = std::sync::Arc::clone(&most);
        let task = tokio::spawn(async move {
            loop {
                if let Some(down) = unavailable_pods(&pods, size).await {
                    seen.fetch_max(down, std::sync::atomic::Ordering::SeqCst);
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        });
        Self { most, task }
    }

    /// The most pods seen down at once so far.
    #[must_use]
    pub fn most_down(&self) -> usize {
        self.most.load(std::sync::atomic::Ordering::SeqCst)
    }
}

impl Drop for DownSampler {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// How many of the `size` pods of the datacenters in `pods` are not ready (or are being deleted);
/// `None` when they cannot be listed.
pub async fn unavailable_pods(pods: &Api<Pod>, size: usize) -> Option<usize> {
    let list = pods
        .list(&ListParams::default().labels(k8ssandra_api::labels::DATACENTER))
        .await
        .ok()?;
    let ready = list
        .items
        .iter()
        .filter(|p| p.metadata.deletion_timestamp.is_none())
        .filter(|p| {
            p.status
                .as_ref()
                .and_then(|s| s.conditions.as_ref())
                .is_some_and(|c| c.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
        })
        .count();
    Some(size.saturating_sub(ready))
}

/// Records, until dropped, every status and reason a condition of one datacenter takes, from a
/// watch (so that no short-lived value is missed between polls), in order and without repeats.
pub struct ConditionRecorder {
    seen: std::sync::Arc<std::sync::Mutex<Vec<(bool, String)>>>,
    task: tokio::task::JoinHandle<()>,
}

impl ConditionRecorder {
    /// Starts recording condition `type_` of datacenter `name` in the scenario's namespace.
    #[must_use]
    pub fn start(scenario: &Scenario, name: &str, type_: &'static str) -> Self {
        use futures::StreamExt as _;
        let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let record = std::sync::Arc::clone(&seen);
        let config =
            kube::runtime::watcher::Config::default().fields(&format!("metadata.name={name}"));
        let stream = kube::runtime::WatchStreamExt::default_backoff(kube::runtime::watcher(
            scenario.datacenters(),
            config,
        ));
        let task = tokio::spawn(async move {
            let mut objects =
                std::pin::pin!(kube::runtime::WatchStreamExt::applied_objects(stream));
            while let Some(next) = objects.next().await {
                let Ok(dc) = next else { continue };
                let Some(c) = condition(&dc, type_) else {
                    continue;
                };
                let value = (c.is_true(), c.reason.clone().unwrap_or_default());
                let mut seen = record
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner);
                if seen.last() != Some(&value) {
                    seen.push(value);
                }
            }
        });
        Self { seen, task }
    }

    /// The values seen so far: whether True, and the reason.
    #[must_use]
    pub fn seen(&self) -> Vec<(bool, String)> {
        self.seen
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }
}

impl Drop for ConditionRecorder {
    fn drop(&mut self) {
        self.task.abort();
    }
}
