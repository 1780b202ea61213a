//! Serves the fake Management API on every Cassandra pod of a fleet: a fake node on each pod's
//! IP:8080 while the pod runs (listening inside the fleet's pod network), and the pod's readiness
//! signal driven by the node (Ready once Cassandra is NORMAL, not ready when it is drained,
//! stopped or decommissioned).
//!
//! Each node resolves its seeds as Cassandra's seed provider does in cass-operator's images: the
//! addresses behind the cluster's seed Service and the datacenter's additional-seed Service, read
//! from their EndpointSlices in the pod's own cluster when it starts or reloads its seeds. A node
//! that knows no live seed does not join (see the fake's rules).

use std::{
    collections::{BTreeMap, HashMap},
    net::IpAddr,
    sync::{Arc, Mutex},
};

use futures::StreamExt;
use k8s_openapi::api::{
    core::v1::{PersistentVolumeClaim, Pod},
    discovery::v1::EndpointSlice,
};
use k8ssandra_api::{labels, names};
use k8ssandra_mgmt_api::{
    Route,
    fake::{
        Binder, FakeCluster, FakeNode, FakeTls, Fault, NodeEvent, NodeSpec, ReadinessChange,
        SeedCheck, SeedResolver, Times,
    },
};
use kube::{
    Api, Client, ResourceExt,
    api::ListParams,
    runtime::{
        WatchStreamExt,
        watcher::{self, Event},
    },
};
use tokio::task::JoinHandle;

use crate::{LocalCluster, readiness};

/// Where a fake node's pod lives, to set its readiness signal.
#[derive(Clone)]
struct PodRef {
    client: Client,
    namespace: String,
    name: String,
}

/// Fake nodes by pod UID, the pods by IP, and faults waiting for a pod's node to exist.
#[derive(Default)]
struct Registry {
    nodes: HashMap<String, FakeNode>,
    pods_by_ip: HashMap<IpAddr, PodRef>,
    pending_faults: HashMap<String, Vec<(Route, Fault, Times)>>,
}

impl Registry {
    /// Forgets the node of pod `uid` and its IP, and hands the node back to be shut down.
    fn remove(&mut self, uid: &str) -> Option<FakeNode> {
        let node = self.nodes.remove(uid)?;
        self.pods_by_ip.remove(&node.ip());
        Some(node)
    }
}

/// The fake Management API of one Cassandra cluster across the clusters of a fleet. Dropping it
/// stops every fake node.
pub struct FakeManagementApi {
    cassandra: FakeCluster,
    registry: Arc<Mutex<Registry>>,
    tasks: Vec<JoinHandle<()>>,
}

impl FakeManagementApi {
    /// Watches the pods labelled with `cassandra_cluster` (the CassandraDatacenter's clusterName)
    /// in `clusters` and serves each from `cassandra`.
    pub fn start(
        cassandra: FakeCluster,
        clusters: &[&LocalCluster],
        cassandra_cluster: &str,
    ) -> Self {
        Self::start_with_tls(cassandra, clusters, cassandra_cluster, None)
    }

    /// As [`FakeManagementApi::start`], every node serving HTTPS with `tls` (mutual TLS) when
    /// given.
    pub fn start_with_tls(
        cassandra: FakeCluster,
        clusters: &[&LocalCluster],
        cassandra_cluster: &str,
        tls: Option<FakeTls>,
    ) -> Self {
        let registry = Arc::new(Mutex::new(Registry::default()));
        let mut tasks = Vec::new();
        let selector = format!(
            "{}={}",
            labels::CLUSTER,
            names::clean_label_value(cassandra_cluster)
        );
        for cluster in clusters {
            let client = cluster.client();
            tasks.push(tokio::spawn(serve_pods(
                client,
                cluster.pod_network().binder(),
                selector.clone(),
                cassandra.clone(),
                Arc::clone(&registry),
                tls.clone(),
            )));
        }
        tasks.push(tokio::spawn(drive_readiness(
            cassandra.subscribe(),
            Arc::clone(&registry),
        )));
        Self {
            cassandra,
            registry,
            tasks,
        }
    }

    /// The simulated Cassandra cluster (gossip, keyspaces, call log).
    pub fn cassandra(&self) -> &FakeCluster {
        &self.cassandra
    }

    /// Runs `f` on the fake node of pod `name` (to inject faults or read its state), if it runs.
    pub fn with_node<R>(&self, name: &str, f: impl FnOnce(&FakeNode) -> R) -> Option<R> {
        let registry = self.registry.lock().ok()?;
        registry
            .nodes
            .values()
            .find(|node| node.pod() == name)
            .map(f)
    }

    /// Injects `fault` into the fake node of pod `name` as soon as it exists (at once when it
    /// runs already), so that a test can fail a pod's very first call.
    pub fn inject_when_running(&self, name: &str, route: Route, fault: Fault, times: Times) {
        let Ok(mut registry) = self.registry.lock() else {
            return;
        };
        match registry.nodes.values().find(|node| node.pod() == name) {
            Some(node) => node.inject(route, fault, times),
            None => registry
                .pending_faults
                .entry(name.to_owned())
                .or_default()
                .push((route, fault, times)),
        }
    }

    /// How many fake nodes run.
    pub fn node_count(&self) -> usize {
        self.registry.lock().map(|r| r.nodes.len()).unwrap_or(0)
    }
}

impl Drop for FakeManagementApi {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
        // Dropping the nodes closes their listeners.
        if let Ok(mut registry) = self.registry.lock() {
            registry.nodes.clear();
        }
    }
}

/// Keeps one fake node per running pod of the selector in one Kubernetes cluster.
async fn serve_pods(
    client: Client,
    binder: Binder,
    selector: String,
    cassandra: FakeCluster,
    registry: Arc<Mutex<Registry>>,
    tls: Option<FakeTls>,
) {
    let pods: Api<Pod> = Api::all(client.clone());
    // With backoff: while the API server is away, a watch retried at once spins a core.
    let mut events = watcher::watcher(pods, watcher::Config::default().labels(&selector))
        .default_backoff()
        .boxed();
    while let Some(event) = events.next().await {
        match event {
            Ok(Event::Apply(pod) | Event::InitApply(pod)) => {
                reconcile_pod(&client, &binder, &cassandra, &registry, &pod, tls.as_ref()).await;
            }
            Ok(Event::Delete(pod)) => {
                let node = registry
                    .lock()
                    .ok()
                    .and_then(|mut r| r.remove(&pod.uid().unwrap_or_default()));
                if let Some(node) = node {
                    node.shutdown().await;
                }
            }
            Ok(Event::Init | Event::InitDone) => {}
            Err(error) => tracing::debug!(%error, "pod watch of the fake Management API"),
        }
    }
}

/// Reads the pod's seed label when a start runs, as Cassandra resolves its seeds at start: the
/// operator's label is seen even before its watch event reaches this harness.
fn seed_label_check(client: &Client, namespace: &str, name: &str) -> SeedCheck {
    let pods: Api<Pod> = Api::namespaced(client.clone(), namespace);
    let name = name.to_owned();
    Arc::new(move || {
        let pods = pods.clone();
        let name = name.clone();
        Box::pin(async move {
            let pod = pods.get_opt(&name).await.ok().flatten()?;
            Some(
                pod.labels()
                    .get(labels::SEED_NODE)
                    .is_some_and(|v| v == "true"),
            )
        })
    })
}

/// Resolves a node's seeds: the addresses in the EndpointSlices of the cluster's seed Service and
/// of its datacenter's additional-seed Service, in the pod's namespace.
fn seed_resolver(
    client: &Client,
    namespace: &str,
    cluster: &str,
    datacenter: &str,
) -> SeedResolver {
    let slices: Api<EndpointSlice> = Api::namespaced(client.clone(), namespace);
    let selector = format!(
        "kubernetes.io/service-name in ({},{})",
        names::seed_service(cluster),
        names::additional_seed_service(cluster, datacenter)
    );
    Arc::new(move || {
        let slices = slices.clone();
        let selector = selector.clone();
        Box::pin(async move {
            let listed = slices
                .list(&ListParams::default().labels(&selector))
                .await
                .ok()?;
            let mut known: Vec<IpAddr> = listed
                .items
                .iter()
                .flat_map(|slice| slice.endpoints.iter())
                .flat_map(|endpoint| endpoint.addresses.iter())
                .filter_map(|address| address.parse().ok())
                .collect();
            known.sort();
            known.dedup();
            Some(known)
        })
    })
}

/// Starts the pod's fake node once it runs with an IP; stops it when the pod terminates; keeps
/// its seed flag in step with the pod's seed label.
async fn reconcile_pod(
    client: &Client,
    binder: &Binder,
    cassandra: &FakeCluster,
    registry: &Arc<Mutex<Registry>>,
    pod: &Pod,
    tls: Option<&FakeTls>,
) {
    let uid = pod.uid().unwrap_or_default();
    let pod_labels = pod.labels();
    let seed = pod_labels
        .get(labels::SEED_NODE)
        .is_some_and(|v| v == "true");
    let ip: Option<IpAddr> = pod
        .status
        .as_ref()
        .and_then(|status| status.pod_ip.as_ref())
        .and_then(|ip| ip.parse().ok());
    let running = pod.metadata.deletion_timestamp.is_none()
        && pod.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Running");

    let present = registry.lock().is_ok_and(|r| match r.nodes.get(&uid) {
        Some(node) => {
            node.set_seed(seed);
            true
        }
        None => false,
    });
    if present && !running {
        let node = registry.lock().ok().and_then(|mut r| r.remove(&uid));
        if let Some(node) = node {
            node.shutdown().await;
        }
        return;
    }
    let (false, true, Some(ip)) = (present, running, ip) else {
        return;
    };
    let namespace = pod.namespace().unwrap_or_default();
    let name = pod.name_any();
    let data_id = data_volume_id(client, &namespace, &name)
        .await
        .unwrap_or_else(|| uid.clone());
    let spec = NodeSpec::new(
        &name,
        label(pod_labels, labels::DATACENTER),
        label(pod_labels, labels::RACK),
        &data_id,
        ip,
    )
    .seed(seed)
    .seed_check(seed_label_check(client, &namespace, &name))
    .seed_resolver(seed_resolver(
        client,
        &namespace,
        label(pod_labels, labels::CLUSTER),
        label(pod_labels, labels::DATACENTER),
    ))
    .binder(Arc::clone(binder));
    let spec = match system_replication(pod) {
        Some(factors) => spec.system_replication(factors),
        None => spec,
    };
    let spec = match tls {
        Some(tls) => spec.tls(tls.clone()),
        None => spec,
    };
    // A pod recreated before the old one's deletion event arrives takes over its IP or its disk:
    // the old pod is gone, so is its node.
    let stale: Vec<FakeNode> = registry.lock().map_or_else(
        |_| Vec::new(),
        |mut r| {
            let keys: Vec<String> = r
                .nodes
                .iter()
                .filter(|(_, node)| node.ip() == ip || node.data_id() == data_id)
                .map(|(key, _)| key.clone())
                .collect();
            keys.iter().filter_map(|key| r.remove(key)).collect()
        },
    );
    for node in stale {
        node.shutdown().await;
    }
    match cassandra.start_node(spec).await {
        Ok(node) => {
            if let Ok(mut registry) = registry.lock() {
                for (route, fault, times) in
                    registry.pending_faults.remove(&name).unwrap_or_default()
                {
                    node.inject(route, fault, times);
                }
                registry.nodes.insert(uid, node);
                let pod = PodRef {
                    client: client.clone(),
                    namespace,
                    name,
                };
                registry.pods_by_ip.insert(ip, pod);
            }
        }
        Err(error) => tracing::warn!(pod = %name, %error, "cannot start a fake node"),
    }
}

/// `-Dcassandra.system_distributed_replication=dc1:3,...` from the configuration the pod's
/// config-builder container gets, as Cassandra reads it at its first start.
fn system_replication(pod: &Pod) -> Option<BTreeMap<String, u32>> {
    const PROPERTY: &str = "-Dcassandra.system_distributed_replication=";
    let spec = pod.spec.as_ref()?;
    let config = spec
        .init_containers
        .iter()
        .flatten()
        .chain(&spec.containers)
        .flat_map(|c| c.env.iter().flatten())
        .find(|e| e.name == "CONFIG_FILE_DATA")?
        .value
        .clone()?;
    let start = config.find(PROPERTY)? + PROPERTY.len();
    let value: String = config[start..]
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric() || matches!(c, ':' | ',' | '-' | '_' | '.'))
        .collect();
    let factors: BTreeMap<String, u32> = value
        .split(',')
        .filter_map(|pair| {
            let (dc, factor) = pair.split_once(':')?;
            Some((dc.to_owned(), factor.parse().ok()?))
        })
        .collect();
    (!factors.is_empty()).then_some(factors)
}

fn label<'a>(labels: &'a BTreeMap<String, String>, key: &str) -> &'a str {
    labels.get(key).map(String::as_str).unwrap_or_default()
}

/// The UID of the pod's `server-data` claim: the node's disk, which outlives the pod.
async fn data_volume_id(client: &Client, namespace: &str, pod: &str) -> Option<String> {
    let claims: Api<PersistentVolumeClaim> = Api::namespaced(client.clone(), namespace);
    claims
        .get_opt(&names::server_data_pvc(pod))
        .await
        .ok()
        .flatten()
        .and_then(|claim| claim.uid())
}

/// Turns the nodes' readiness changes into the pods' readiness signal.
async fn drive_readiness(
    mut events: tokio::sync::mpsc::UnboundedReceiver<NodeEvent>,
    registry: Arc<Mutex<Registry>>,
) {
    while let Some(event) = events.recv().await {
        let pod = registry
            .lock()
            .ok()
            .and_then(|r| r.pods_by_ip.get(&event.ip).cloned());
        let Some(pod) = pod else { continue };
        let ready = event.change == ReadinessChange::Ready;
        if let Err(error) =
            readiness::set_pod_ready(&pod.client, &pod.namespace, &pod.name, ready).await
        {
            tracing::debug!(pod = %pod.name, %error, "cannot set the readiness signal");
        }
    }
}
