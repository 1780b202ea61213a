//! The K8ssandraCluster across a fleet of three clusters: the control plane in cluster 0, a data
//! plane in each of clusters 1 and 2, ClientConfigs with ServiceAccount kubeconfigs, and the fake
//! Management API on every Cassandra pod (whose nodes start only when a seed they know is up).
//! The docs' two-datacenter sample converges into one Cassandra cluster with its status in one
//! place; changes reach the right cluster; a steady state makes no request; an unreachable
//! cluster holds up only its own datacenter; ClientConfigs are picked up live; bad input is
//! refused with a reason; no secret is published; deletion removes everything it made.
#![allow(clippy::expect_used)]

use std::{
    collections::BTreeMap,
    time::{Duration, Instant},
};

use k8s_openapi::{
    ByteString,
    api::{
        core::v1::{Event, Pod, Secret, ServiceAccount},
        discovery::v1::EndpointSlice,
    },
};
use k8ssandra_api::{
    cassandra::CassandraDatacenter,
    conditions::{self, ConditionStatus},
    config::ClientConfig,
    k8ssandra::K8ssandraCluster,
};
use k8ssandra_e2e::{
    ControlPlaneOperator, DataPlaneOperator, FakeManagementApi, Fleet, FleetConfig, LocalCluster,
    wait,
};
use k8ssandra_mgmt_api::{
    NodeStatus, Route,
    fake::{FakeCluster, FakeClusterConfig},
};
use kube::{
    Api, ResourceExt,
    api::{DeleteParams, ListParams, Patch, PatchParams, PostParams},
};

/// Where the ClientConfigs and their Secrets live.
const OPERATOR_NAMESPACE: &str = "k8ssandra-operator";
/// Where the sample is applied (it names no namespace), and so where its datacenters run.
const NAMESPACE: &str = "default";
const CONVERGE: Duration = Duration::from_secs(240);

/// The docs' two-datacenter sample, as a user applies it.
fn sample() -> String {
    std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../config/samples/k8ssandra-cluster-multi-dc.yaml"
    ))
    .expect("the sample")
}

/// Everything a test of this file runs: the fleet, the operators, the fake Cassandra.
struct Setup {
    control: ControlPlaneOperator,
    data_planes: Vec<DataPlaneOperator>,
    mgmt: FakeManagementApi,
    fleet: Fleet,
}

impl Setup {
    async fn start(name: &str) -> Self {
        // Four nodes: a datacenter can grow to four pods, one per node.
        let fleet = FleetConfig::new(name, 3)
            .nodes_per_cluster(4)
            .start()
            .await
            .expect("fleet starts");
        fleet
            .cluster(0)
            .create_namespace(OPERATOR_NAMESPACE)
            .await
            .expect("namespace");
        let mgmt = FakeManagementApi::start(
            FakeCluster::new(FakeClusterConfig::fast()),
            &[fleet.cluster(1), fleet.cluster(2)],
            "demo",
        );
        let data_planes = (1..=2)
            .map(|i| {
                DataPlaneOperator::start(fleet.cluster(i), k8ssandra_e2e::scenario::settings())
                    .expect("data plane")
            })
            .collect();
        let control = ControlPlaneOperator::start(fleet.cluster(0), None).expect("control plane");
        Self {
            control,
            data_planes,
            mgmt,
            fleet,
        }
    }

    fn clusters(&self) -> Api<K8ssandraCluster> {
        Api::namespaced(self.fleet.cluster(0).client(), NAMESPACE)
    }

    fn datacenters(&self, index: usize) -> Api<CassandraDatacenter> {
        Api::namespaced(self.fleet.cluster(index).client(), NAMESPACE)
    }

    /// Waits until the K8ssandraCluster's condition `type_` has `status` and a message holding
    /// `text`; returns the cluster.
    async fn wait_condition(
        &self,
        type_: &str,
        status: ConditionStatus,
        text: &str,
        limit: Duration,
    ) -> K8ssandraCluster {
        let what = format!("K8ssandraCluster demo {type_}={status:?} saying {text:?}");
        let (type_, text) = (type_.to_owned(), text.to_owned());
        let waited = wait::object(
            &self.clusters(),
            "demo",
            &what,
            limit,
            move |k8c: &K8ssandraCluster| {
                condition(k8c, &type_).is_some_and(|c| {
                    c.status == status && c.message.as_deref().is_some_and(|m| m.contains(&text))
                })
            },
        )
        .await;
        match waited {
            Ok(k8c) => k8c,
            Err(error) => {
                let last = self.clusters().get_opt("demo").await.ok().flatten();
                panic!("{error}; last status: {:#?}", last.and_then(|k| k.status));
            }
        }
    }
}

fn condition(k8c: &K8ssandraCluster, type_: &str) -> Option<conditions::Condition> {
    let list = k8c.status.as_ref()?.conditions.as_deref()?;
    conditions::find(list, type_).cloned()
}

impl Setup {
    /// Creates the kubeconfig Secret of cluster `index` for the ClientConfig, with a
    /// ServiceAccount `account` of its own; returns the kubeconfig.
    async fn kubeconfig_secret(&self, index: usize, account: &str) -> String {
        let cluster = self.fleet.cluster(index);
        let kubeconfig = cluster
            .service_account_kubeconfig(account)
            .await
            .expect("kubeconfig");
        put_secret(
            self.fleet.cluster(0),
            &format!("{}-kubeconfig", cluster.context()),
            &[("kubeconfig", &kubeconfig)],
        )
        .await;
        kubeconfig
    }

    /// Creates a ClientConfig of `context` that reads the Secret `secret`.
    async fn client_config_object(&self, context: &str, secret: &str) {
        let config: ClientConfig = serde_json::from_value(serde_json::json!({
            "apiVersion": "config.k8ssandra.io/v1beta1",
            "kind": "ClientConfig",
            "metadata": { "name": context },
            "spec": { "contextName": context, "kubeConfigSecret": { "name": secret } }
        }))
        .expect("ClientConfig");
        Api::<ClientConfig>::namespaced(self.fleet.cluster(0).client(), OPERATOR_NAMESPACE)
            .create(&PostParams::default(), &config)
            .await
            .expect("ClientConfig");
    }

    /// The ClientConfig of cluster `index` and its Secret; returns the kubeconfig.
    async fn client_config(&self, index: usize) -> String {
        let kubeconfig = self
            .kubeconfig_secret(index, "k8ssandra-control-plane")
            .await;
        let context = self.fleet.cluster(index).context().to_owned();
        self.client_config_object(&context, &format!("{context}-kubeconfig"))
            .await;
        kubeconfig
    }

    /// Applies the sample as edited by `edit`, as a user re-applies a file.
    async fn apply(&self, yaml: &str) {
        self.fleet
            .cluster(0)
            .apply_yaml(NAMESPACE, yaml)
            .await
            .expect("the K8ssandraCluster applies");
    }

    async fn wait_ready(&self) -> K8ssandraCluster {
        self.wait_condition(
            "Ready",
            ConditionStatus::True,
            "2/2 datacenters ready",
            CONVERGE,
        )
        .await
    }

    /// How many times each pod's Cassandra was started.
    fn starts(&self) -> BTreeMap<String, usize> {
        let mut starts = BTreeMap::new();
        for call in self.mgmt.cassandra().calls().calls {
            if call.route == Some(Route::LifecycleStart) {
                *starts.entry(call.pod).or_default() += 1;
            }
        }
        starts
    }

    /// Waits until neither the K8ssandraCluster's status nor its datacenters' change for two
    /// seconds: the passes right after a change may still record what they did.
    async fn settle(&self) {
        let snapshot = || async {
            let k8c = self.clusters().get("demo").await.expect("demo").status;
            let dc1 = self.datacenters(1).get("dc1").await.expect("dc1").status;
            let dc2 = self.datacenters(2).get("dc2").await.expect("dc2").status;
            serde_json::to_string(&(k8c, dc1, dc2)).expect("json")
        };
        let mut before = snapshot().await;
        for _ in 0..15 {
            tokio::time::sleep(Duration::from_secs(2)).await;
            let now = snapshot().await;
            if now == before {
                return;
            }
            before = now;
        }
    }

    /// Every Event of every cluster, and every K8ssandraCluster and ClientConfig status, as
    /// text.
    async fn events_and_statuses(&self) -> String {
        let mut text = String::new();
        for cluster in self.fleet.clusters() {
            let events = Api::<Event>::all(cluster.client())
                .list(&Default::default())
                .await
                .expect("events");
            text.push_str(&serde_json::to_string(&events.items).expect("json"));
        }
        let clusters = Api::<K8ssandraCluster>::all(self.fleet.cluster(0).client())
            .list(&Default::default())
            .await
            .expect("list");
        text.push_str(&serde_json::to_string(&clusters.items).expect("json"));
        let configs = Api::<ClientConfig>::all(self.fleet.cluster(0).client())
            .list(&Default::default())
            .await
            .expect("list");
        text.push_str(&serde_json::to_string(&configs.items).expect("json"));
        text
    }

    /// Asserts that none of `secrets` is in a log line of the operators, an Event, or a status.
    async fn assert_secrets_stay_secret(&self, secrets: &[String]) {
        let published = self.events_and_statuses().await;
        let logs = k8ssandra_e2e::logs::captured();
        assert!(!logs.is_empty(), "the operators' logs were captured");
        for secret in secrets {
            assert!(secret.len() >= 16, "a real secret: {secret:?}");
            assert!(!logs.contains(secret.as_str()), "a secret in the logs");
            assert!(
                !published.contains(secret.as_str()),
                "a secret in an Event or a status"
            );
        }
    }

    /// Events about the K8ssandraCluster `name`, as `reason: message`.
    async fn events_of(&self, name: &str) -> Vec<String> {
        Api::<Event>::namespaced(self.fleet.cluster(0).client(), NAMESPACE)
            .list(&Default::default())
            .await
            .expect("events")
            .items
            .into_iter()
            .filter(|e| e.involved_object.name.as_deref() == Some(name))
            .map(|e| {
                format!(
                    "{}: {}",
                    e.reason.unwrap_or_default(),
                    e.message.unwrap_or_default()
                )
            })
            .collect()
    }

    /// The names of the CassandraDatacenters in cluster `index`.
    async fn datacenter_names(&self, index: usize) -> Vec<String> {
        Api::<CassandraDatacenter>::all(self.fleet.cluster(index).client())
            .list(&Default::default())
            .await
            .expect("list")
            .items
            .iter()
            .map(ResourceExt::name_any)
            .collect()
    }

    /// The superuser password, from the Secret in cluster `index`.
    async fn password(&self, index: usize) -> Vec<u8> {
        let secrets: Api<Secret> = Api::namespaced(self.fleet.cluster(index).client(), NAMESPACE);
        let secret = secrets
            .get("demo-superuser")
            .await
            .expect("superuser Secret");
        secret.data.expect("data")["password"].0.clone()
    }

    /// Deletes the K8ssandraCluster and waits until it is gone.
    async fn delete_and_wait(&self) {
        self.clusters()
            .delete("demo", &DeleteParams::default())
            .await
            .expect("delete");
        self.wait_gone().await;
    }

    async fn wait_gone(&self) {
        wait::until("the K8ssandraCluster to be gone", CONVERGE, || async {
            self.clusters()
                .get_opt("demo")
                .await
                .ok()?
                .is_none()
                .then_some(())
        })
        .await
        .expect("deleted");
    }

    /// Asserts that nothing the K8ssandraCluster made is left in clusters 1 and 2.
    async fn assert_nothing_left(&self) {
        for index in 1..=2 {
            assert_eq!(
                self.datacenter_names(index).await,
                Vec::<String>::new(),
                "CassandraDatacenters left in cluster {index}"
            );
            let secrets: Api<Secret> =
                Api::namespaced(self.fleet.cluster(index).client(), NAMESPACE);
            assert!(
                secrets
                    .get_opt("demo-superuser")
                    .await
                    .expect("read")
                    .is_none(),
                "the copy in cluster {index} stays"
            );
            let slices =
                Api::<EndpointSlice>::namespaced(self.fleet.cluster(index).client(), NAMESPACE)
                    .list(&ListParams::default().labels("k8ssandra.io/cluster-name=demo"))
                    .await
                    .expect("slices");
            assert!(
                slices.items.is_empty(),
                "seed EndpointSlices left in cluster {index}: {:?}",
                slices
                    .items
                    .iter()
                    .map(ResourceExt::name_any)
                    .collect::<Vec<_>>()
            );
        }
    }
}

async fn put_secret(cluster: &LocalCluster, name: &str, data: &[(&str, &str)]) {
    let data: BTreeMap<String, ByteString> = data
        .iter()
        .map(|(k, v)| ((*k).to_owned(), ByteString(v.as_bytes().to_vec())))
        .collect();
    let api: Api<Secret> = Api::namespaced(cluster.client(), OPERATOR_NAMESPACE);
    if api.get_opt(name).await.expect("read").is_some() {
        // Replacing `data` whole: a merge would keep keys the test removes.
        api.patch(
            name,
            &PatchParams::default(),
            &Patch::Merge(&serde_json::json!({ "data": null })),
        )
        .await
        .expect("clear");
        api.patch(
            name,
            &PatchParams::default(),
            &Patch::Merge(&serde_json::json!({ "data": data })),
        )
        .await
        .expect("update");
    } else {
        let secret = Secret {
            metadata: kube::api::ObjectMeta {
                name: Some(name.into()),
                ..Default::default()
            },
            data: Some(data),
            ..Secret::default()
        };
        api.create(&PostParams::default(), &secret)
            .await
            .expect("create");
    }
}

/// The bearer token of a kubeconfig of the fleet.
fn token_of(kubeconfig: &str) -> String {
    kubeconfig
        .lines()
        .find_map(|line| line.trim().strip_prefix("token: "))
        .unwrap_or_default()
        .trim_matches('\'')
        .trim_matches('"')
        .to_owned()
}

/// The addresses of a seed EndpointSlice the control plane wrote.
async fn seed_slice_addresses(cluster: &LocalCluster, name: &str) -> Option<Vec<String>> {
    let slice = Api::<EndpointSlice>::namespaced(cluster.client(), NAMESPACE)
        .get_opt(name)
        .await
        .expect("read")?;
    let mut addresses: Vec<String> = slice
        .endpoints
        .iter()
        .flat_map(|e| e.addresses.clone())
        .collect();
    addresses.sort();
    Some(addresses)
}

/// The IPs of the seed pods of a datacenter.
async fn seed_pod_ips(cluster: &LocalCluster, dc: &str) -> Vec<String> {
    let pods = Api::<Pod>::namespaced(cluster.client(), NAMESPACE)
        .list(&ListParams::default().labels(&format!(
            "cassandra.datastax.com/datacenter={dc},cassandra.datastax.com/seed-node=true"
        )))
        .await
        .expect("pods");
    let mut ips: Vec<String> = pods
        .items
        .iter()
        .filter_map(|p| p.status.as_ref()?.pod_ip.clone())
        .collect();
    ips.sort();
    ips
}

#[tokio::test]
async fn the_two_datacenter_sample_converges_and_follows_changes() {
    let setup = Setup::start("k8ssandra_cluster_sample").await;
    let mut secrets = [setup.client_config(1).await, setup.client_config(2).await]
        .iter()
        .map(|k| token_of(k))
        .collect::<Vec<_>>();
    let sample = sample();
    setup.apply(&sample).await;

    let k8c = setup.wait_ready().await;
    let status = k8c.status.clone().expect("status");
    assert_eq!(status.ready_datacenters.as_deref(), Some("2/2"));
    assert_eq!(status.error.as_deref(), Some("None"));
    assert_eq!(status.observed_generation, k8c.metadata.generation);
    for (dc, context) in [("dc1", "kind-k8ssandra-1"), ("dc2", "kind-k8ssandra-2")] {
        let entry = &status.datacenters.as_ref().expect("datacenters")[dc];
        assert_eq!(entry.context_name.as_deref(), Some(context));
        let cassandra = entry.cassandra.as_ref().expect("rolled-up status");
        assert_eq!(cassandra.ready_nodes, Some(3), "{dc}: {cassandra:?}");
    }
    assert!(
        condition(&k8c, "CassandraInitialized").is_some_and(|c| c.is_true()),
        "{status:?}"
    );

    // Each datacenter in its own cluster only.
    for (index, present) in [(0, &[][..]), (1, &["dc1"][..]), (2, &["dc2"][..])] {
        assert_eq!(
            setup.datacenter_names(index).await,
            present,
            "CassandraDatacenters in cluster {index}"
        );
    }

    // One gossip table: six NORMAL nodes, three in each datacenter.
    let count_by_dc = || {
        let mut by_dc: BTreeMap<String, usize> = BTreeMap::new();
        for entry in &setup.mgmt.cassandra().endpoints().entries {
            assert_eq!(entry.status(), NodeStatus::Normal, "{entry:?}");
            *by_dc
                .entry(entry.datacenter().unwrap_or_default().to_owned())
                .or_default() += 1;
        }
        by_dc
    };
    assert_eq!(
        count_by_dc(),
        BTreeMap::from([("dc1".into(), 3), ("dc2".into(), 3)])
    );
    // Every node started at its first try: a dc2 node knew a live dc1 seed before it started.
    assert_eq!(
        setup.mgmt.cassandra().exits(),
        Vec::<(String, String)>::new(),
        "Cassandra processes that exited at start"
    );
    // Each datacenter's additional-seed Service lists the other datacenter's seed pods.
    for (index, dc, other, other_dc) in [(2, "dc2", 1, "dc1"), (1, "dc1", 2, "dc2")] {
        let slice = format!("demo-demo-{dc}-additional-seed-service-ipv4");
        let listed = seed_slice_addresses(setup.fleet.cluster(index), &slice).await;
        let seeds = seed_pod_ips(setup.fleet.cluster(other), other_dc).await;
        assert!(!seeds.is_empty());
        assert_eq!(listed, Some(seeds), "{slice} in cluster {index}");
    }

    // The same superuser password in both datacenters' namespaces.
    let source = setup.password(0).await;
    assert_eq!(source.len(), 54);
    assert_eq!(setup.password(1).await, source);
    assert_eq!(setup.password(2).await, source);
    secrets.push(String::from_utf8(source).expect("utf-8"));

    // Steady state: a pass of everything (each object touched) makes no request but the watches,
    // in any of the three clusters, and no Management API write.
    setup.settle().await;
    let data_plane_passes: Vec<u64> = setup.data_planes.iter().map(|d| d.passes()).collect();
    let control_passes = setup.control.passes("k8ssandracluster");
    setup.control.requests().clear();
    for context in ["kind-k8ssandra-1", "kind-k8ssandra-2"] {
        setup.control.remote_requests(context).clear();
    }
    for data_plane in &setup.data_planes {
        data_plane.requests().clear();
    }
    let mgmt_writes = setup.mgmt.cassandra().calls().write_count();
    let touch =
        serde_json::json!({ "metadata": { "annotations": { "example.com/touched": "yes" } } });
    setup
        .clusters()
        .patch("demo", &PatchParams::default(), &Patch::Merge(&touch))
        .await
        .expect("touch demo");
    for (index, dc) in [(1, "dc1"), (2, "dc2")] {
        setup
            .datacenters(index)
            .patch(dc, &PatchParams::default(), &Patch::Merge(&touch))
            .await
            .expect("touch dc");
    }
    wait::until(
        "a pass of every controller",
        Duration::from_secs(30),
        || async {
            let data_planes_passed = setup
                .data_planes
                .iter()
                .zip(&data_plane_passes)
                .all(|(d, before)| d.passes() > *before);
            // The K8ssandraCluster and each datacenter's change trigger one pass each.
            let control_passed = setup.control.passes("k8ssandracluster") >= control_passes + 3;
            (data_planes_passed && control_passed).then_some(())
        },
    )
    .await
    .expect("passes");
    // The passes the other touches trigger (they may be merged into one) end too.
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(
        setup.control.requests().all(),
        Vec::<String>::new(),
        "control plane requests to its own cluster"
    );
    for context in ["kind-k8ssandra-1", "kind-k8ssandra-2"] {
        assert_eq!(
            setup.control.remote_requests(context).all(),
            Vec::<String>::new(),
            "control plane requests to {context}"
        );
    }
    for (index, data_plane) in setup.data_planes.iter().enumerate() {
        assert_eq!(
            data_plane.requests().all(),
            Vec::<String>::new(),
            "data plane requests in cluster {}",
            index + 1
        );
    }
    assert_eq!(
        setup.mgmt.cassandra().calls().write_count(),
        mgmt_writes,
        "Management API writes"
    );

    // dc2 grows to 4 nodes through the K8ssandraCluster: Progressing, then Ready.
    let grown = sample.replacen(
        "name: dc2\n        k8sContext: kind-k8ssandra-2\n        size: 3",
        "name: dc2\n        k8sContext: kind-k8ssandra-2\n        size: 4",
        1,
    );
    assert_ne!(grown, sample);
    let before_growth = setup.starts();
    setup.apply(&grown).await;
    setup
        .wait_condition(
            "Progressing",
            ConditionStatus::True,
            "dc2 in kind-k8ssandra-2",
            CONVERGE,
        )
        .await;
    let k8c = setup.wait_ready().await;
    let dc2 = &k8c
        .status
        .as_ref()
        .expect("status")
        .datacenters
        .as_ref()
        .expect("dcs")["dc2"];
    assert_eq!(dc2.cassandra.as_ref().and_then(|c| c.ready_nodes), Some(4));
    assert_eq!(
        setup
            .datacenters(2)
            .get("dc2")
            .await
            .expect("dc2")
            .spec
            .size,
        4
    );
    assert_eq!(
        count_by_dc(),
        BTreeMap::from([("dc1".into(), 3), ("dc2".into(), 4)])
    );
    let after_growth = setup.starts();
    let restarted: Vec<&String> = before_growth
        .iter()
        .filter(|(pod, n)| after_growth.get(*pod) != Some(n))
        .map(|(pod, _)| pod)
        .collect();
    assert!(
        restarted.is_empty(),
        "restarted by the scale-up: {restarted:?}"
    );

    // A configuration change rolls every node of both datacenters.
    let tuned = grown.replacen("heapSize: 512M", "heapSize: 768M", 1);
    assert_ne!(tuned, grown);
    setup.apply(&tuned).await;
    wait::until("every node restarted", CONVERGE, || async {
        let now = setup.starts();
        (after_growth.len() == 7
            && after_growth
                .iter()
                .all(|(pod, n)| now.get(pod).is_some_and(|m| m > n)))
        .then_some(())
    })
    .await
    .expect("a rolling restart of both datacenters");
    setup.wait_ready().await;
    for (index, dc) in [(1, "dc1"), (2, "dc2")] {
        let config = setup
            .datacenters(index)
            .get(dc)
            .await
            .expect("dc")
            .spec
            .config
            .expect("config");
        assert!(config.to_string().contains("768M"), "{dc}: {config}");
    }

    // Re-applying the same spec restarts nothing and writes nothing anywhere.
    setup.settle().await;
    let starts = setup.starts();
    for context in ["kind-k8ssandra-1", "kind-k8ssandra-2"] {
        setup.control.remote_requests(context).clear();
    }
    let passes = setup.control.passes("k8ssandracluster");
    setup.apply(&tuned).await;
    setup
        .clusters()
        .patch("demo", &PatchParams::default(), &Patch::Merge(&serde_json::json!({ "metadata": { "annotations": { "example.com/touched": "again" } } })))
        .await
        .expect("touch");
    wait::until("a pass", Duration::from_secs(30), || async {
        (setup.control.passes("k8ssandracluster") > passes).then_some(())
    })
    .await
    .expect("a pass");
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(setup.starts(), starts, "starts after re-applying");
    for context in ["kind-k8ssandra-1", "kind-k8ssandra-2"] {
        assert_eq!(
            setup.control.remote_requests(context).writes(),
            Vec::<String>::new(),
            "control plane writes to {context} after re-applying"
        );
    }

    setup.assert_secrets_stay_secret(&secrets).await;

    // Deleting the K8ssandraCluster removes what it made everywhere.
    setup.delete_and_wait().await;
    setup.assert_nothing_left().await;
}

#[tokio::test]
async fn an_unreachable_cluster_holds_up_only_its_own_datacenter() {
    let mut setup = Setup::start("k8ssandra_cluster_outage").await;
    setup.client_config(1).await;
    setup.client_config(2).await;
    let sample = sample();
    setup.apply(&sample).await;
    setup.wait_ready().await;

    // Cluster 2's API server stops: dc1 still follows the spec, and the status names cluster 2.
    setup.fleet.cluster_mut(2).stop_apiserver();
    let stopped = Instant::now();
    setup
        .wait_condition(
            "Degraded",
            ConditionStatus::True,
            "dc2 in kind-k8ssandra-2: cluster unreachable",
            CONVERGE,
        )
        .await;
    eprintln!(
        "unreachable cluster reported after {:.1?}",
        stopped.elapsed()
    );
    let grown = sample.replacen(
        "name: dc1\n        k8sContext: kind-k8ssandra-1\n        size: 3",
        "name: dc1\n        k8sContext: kind-k8ssandra-1\n        size: 4",
        1,
    );
    assert_ne!(grown, sample);
    setup.apply(&grown).await;
    wait::object(
        &setup.datacenters(1),
        "dc1",
        "dc1 with 4 ready nodes",
        CONVERGE,
        |dc: &CassandraDatacenter| {
            dc.spec.size == 4 && dc.status.as_ref().and_then(|s| s.ready_nodes) == Some(4)
        },
    )
    .await
    .expect("dc1 grows while cluster 2 is away");
    let k8c = setup.clusters().get("demo").await.expect("demo");
    let degraded = condition(&k8c, "Degraded").expect("Degraded");
    assert!(degraded.is_true(), "{degraded:?}");
    let ready = condition(&k8c, "Ready").expect("Ready");
    assert_eq!(ready.status, ConditionStatus::False, "{ready:?}");

    // About a minute later it is back, and everything converges.
    let away = Duration::from_secs(60).saturating_sub(stopped.elapsed());
    tokio::time::sleep(away).await;
    setup
        .fleet
        .cluster_mut(2)
        .restart_apiserver()
        .await
        .expect("apiserver back");
    let back = Instant::now();
    setup.wait_ready().await;
    setup
        .wait_condition("Degraded", ConditionStatus::False, "", CONVERGE)
        .await;
    eprintln!(
        "converged {:.1?} after cluster 2's API server came back",
        back.elapsed()
    );
    assert!(
        setup
            .events_of("demo")
            .await
            .iter()
            .any(|e| e.contains("kind-k8ssandra-2: cluster unreachable")),
        "an Event names the unreachable cluster"
    );
    let dc1_nodes = setup
        .mgmt
        .cassandra()
        .endpoints()
        .entries
        .iter()
        .filter(|e| e.datacenter() == Some("dc1") && e.status() == NodeStatus::Normal)
        .count();
    assert_eq!(dc1_nodes, 4);

    // Deleting while cluster 2 is away: dc1 goes, the status says what waits, and the deletion
    // ends once cluster 2 is back.
    setup.fleet.cluster_mut(2).stop_apiserver();
    setup
        .wait_condition(
            "Degraded",
            ConditionStatus::True,
            "kind-k8ssandra-2: cluster unreachable",
            CONVERGE,
        )
        .await;
    setup
        .clusters()
        .delete("demo", &DeleteParams::default())
        .await
        .expect("delete");
    let k8c = setup
        .wait_condition(
            "Degraded",
            ConditionStatus::True,
            "its datacenters are deleted once it is back",
            CONVERGE,
        )
        .await;
    assert_eq!(
        condition(&k8c, "Degraded")
            .and_then(|c| c.reason)
            .as_deref(),
        Some("DeletionBlocked")
    );
    wait::until("dc1 gone from cluster 1", CONVERGE, || async {
        setup.datacenter_names(1).await.is_empty().then_some(())
    })
    .await
    .expect("dc1 deleted");
    assert!(
        setup
            .events_of("demo")
            .await
            .iter()
            .any(|e| e.starts_with("DeletionBlocked") && e.contains("kind-k8ssandra-2")),
        "a DeletionBlocked Event names cluster 2"
    );
    setup
        .fleet
        .cluster_mut(2)
        .restart_apiserver()
        .await
        .expect("apiserver back");
    setup.wait_gone().await;
    setup.assert_nothing_left().await;
}

#[tokio::test]
async fn client_configs_are_picked_up_live_and_bad_input_is_refused() {
    let setup = Setup::start("k8ssandra_cluster_inputs").await;
    let mut secrets = vec![token_of(&setup.client_config(1).await)];
    // Cluster 2's ClientConfig is there, its Secret not yet.
    let context2 = setup.fleet.cluster(2).context().to_owned();
    setup
        .client_config_object(&context2, &format!("{context2}-kubeconfig"))
        .await;
    setup.apply(&sample()).await;
    setup
        .wait_condition(
            "Degraded",
            ConditionStatus::True,
            "dc2 in kind-k8ssandra-2: ClientConfig unusable: Secret kind-k8ssandra-2-kubeconfig \
             does not exist",
            CONVERGE,
        )
        .await;
    assert!(setup.datacenter_names(2).await.is_empty());
    secrets.push(token_of(
        &setup.kubeconfig_secret(2, "k8ssandra-control-plane").await,
    ));
    setup.wait_ready().await;

    // Cluster 1's kubeconfig rotated to a new token, the old one revoked: the control plane
    // still writes there (a seed EndpointSlice deleted by hand comes back).
    let rotated = setup
        .kubeconfig_secret(1, "k8ssandra-control-plane-2")
        .await;
    secrets.push(token_of(&rotated));
    wait::until("the rotated client", CONVERGE, || async {
        let Some(k8ssandra_control_plane::remote::Remote::Connected(remote)) =
            setup.control.registry().get("kind-k8ssandra-1")
        else {
            return None;
        };
        (remote.health() == k8ssandra_control_plane::remote::Health::Reachable
            && remote.seed_slices.is_ready())
        .then_some(())
    })
    .await
    .expect("reachable");
    tokio::time::sleep(Duration::from_secs(2)).await;
    Api::<ServiceAccount>::namespaced(setup.fleet.cluster(1).client(), "kube-system")
        .delete("k8ssandra-control-plane", &DeleteParams::default())
        .await
        .expect("revoke");
    let slice = "demo-demo-dc1-additional-seed-service-ipv4";
    let slices = Api::<EndpointSlice>::namespaced(setup.fleet.cluster(1).client(), NAMESPACE);
    let uid = slices.get(slice).await.expect("slice").uid();
    slices
        .delete(slice, &DeleteParams::default())
        .await
        .expect("delete slice");
    wait::until("the seed slice written again", CONVERGE, || async {
        let again = slices.get_opt(slice).await.ok()??;
        (again.uid() != uid).then_some(())
    })
    .await
    .expect("rewritten with the new token");
    setup.wait_ready().await;

    // Bad input: each refused with a reason and an Event; nothing is applied; the operator runs on.
    let bad = |name: &str, datacenters: &str| {
        format!(
            "apiVersion: k8ssandra.io/v1alpha1\nkind: K8ssandraCluster\nmetadata:\n  name: {name}\n\
             spec:\n  cassandra:\n    serverVersion: \"4.1.5\"\n    storageConfig:\n      \
             cassandraDataVolumeClaimSpec:\n        storageClassName: standard\n        \
             accessModes: [ReadWriteOnce]\n        resources: {{requests: {{storage: 1Gi}}}}\n    \
             datacenters:\n{datacenters}"
        )
    };
    let dc = |name: &str, context: &str, extra: &str| {
        format!(
            "      - metadata:\n          name: {name}\n        k8sContext: {context}\n        size: 1\n{extra}"
        )
    };
    // CEL refuses two datacenters of one name at admission, also in two contexts.
    let refused = setup
        .fleet
        .cluster(0)
        .apply_yaml(
            NAMESPACE,
            &bad(
                "same-name",
                &(dc("dc1", "kind-k8ssandra-1", "") + &dc("dc1", "kind-k8ssandra-2", "")),
            ),
        )
        .await
        .expect_err("refused at admission");
    assert!(
        refused
            .to_string()
            .contains("datacenter names (metadata.name) must be unique"),
        "{refused}"
    );
    for context in ["no-key", "not-yaml", "no-context"] {
        setup
            .client_config_object(context, &format!("{context}-kubeconfig"))
            .await;
    }
    put_secret(
        setup.fleet.cluster(0),
        "no-key-kubeconfig",
        &[("config", "x")],
    )
    .await;
    put_secret(
        setup.fleet.cluster(0),
        "not-yaml-kubeconfig",
        &[("kubeconfig", "clusters: [unclosed")],
    )
    .await;
    put_secret(
        setup.fleet.cluster(0),
        "no-context-kubeconfig",
        &[("kubeconfig", &rotated)],
    )
    .await;
    let cases = [
        (
            "unknown-context",
            dc("dc1", "kind-nowhere", ""),
            "Valid",
            "kind-nowhere",
        ),
        (
            "same-cassandra-name",
            dc("a", "kind-k8ssandra-1", "        datacenterName: shared\n")
                + &dc("b", "kind-k8ssandra-2", "        datacenterName: shared\n"),
            "Valid",
            "datacenters a and b have the same Cassandra datacenter name \"shared\"",
        ),
        (
            "key-missing",
            dc("dc1", "no-key", ""),
            "Degraded",
            "Secret no-key-kubeconfig has no key `kubeconfig`",
        ),
        (
            "malformed",
            dc("dc1", "not-yaml", ""),
            "Degraded",
            "key `kubeconfig` of Secret not-yaml-kubeconfig is not a kubeconfig",
        ),
        (
            "context-absent",
            dc("dc1", "no-context", ""),
            "Degraded",
            "context no-context is not in the kubeconfig of Secret no-context-kubeconfig",
        ),
    ];
    for (name, datacenters, _, _) in &cases {
        setup.apply(&bad(name, datacenters)).await;
    }
    for (name, _, type_, text) in &cases {
        let what = format!("{name}: {type_} naming {text:?}");
        let (type_, wanted_text) = (type_.to_string(), text.to_string());
        let waited = wait::object(
            &setup.clusters(),
            name,
            &what,
            CONVERGE,
            move |k8c: &K8ssandraCluster| {
                condition(k8c, &type_).is_some_and(|c| {
                    let wanted = if type_ == "Valid" {
                        ConditionStatus::False
                    } else {
                        ConditionStatus::True
                    };
                    c.status == wanted
                        && c.message
                            .as_deref()
                            .is_some_and(|m| m.contains(&wanted_text))
                })
            },
        )
        .await;
        if let Err(error) = waited {
            let last = setup.clusters().get_opt(name).await.ok().flatten();
            panic!("{error}; last status: {:#?}", last.and_then(|k| k.status));
        }
        let events = setup.events_of(name).await;
        assert!(
            events.iter().any(|e| e.contains(*text)),
            "{name}: an Event saying {text:?}: {events:?}"
        );
    }
    // Nothing of them anywhere: only the sample's datacenters exist.
    assert_eq!(setup.datacenter_names(0).await, Vec::<String>::new());
    assert_eq!(setup.datacenter_names(1).await, ["dc1"]);
    assert_eq!(setup.datacenter_names(2).await, ["dc2"]);
    // The operator runs on: the sample is still Ready.
    setup.wait_ready().await;

    secrets.push(String::from_utf8(setup.password(0).await).expect("utf-8"));
    setup.assert_secrets_stay_secret(&secrets).await;
    for (name, _, _, _) in &cases {
        setup
            .clusters()
            .delete(name, &DeleteParams::default())
            .await
            .expect("delete");
    }
    setup.delete_and_wait().await;
    setup.assert_nothing_left().await;
}
