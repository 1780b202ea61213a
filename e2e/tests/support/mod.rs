//! What the K8ssandraCluster tests share: a fleet with the control plane in cluster 0 and a data
//! plane in each other cluster, ClientConfigs with ServiceAccount kubeconfigs, the fake
//! Management API on every Cassandra pod, and the reads and waits the tests make.
// Each test file uses a part of it.
#![allow(dead_code, clippy::expect_used)]

use std::{collections::BTreeMap, time::Duration};

use k8s_openapi::{
    ByteString,
    api::{
        core::v1::{Event, Secret},
        discovery::v1::EndpointSlice,
    },
};
use k8ssandra_api::{
    cassandra::CassandraDatacenter,
    conditions::{self, ConditionStatus},
    config::ClientConfig,
    control::CassandraTask,
    k8ssandra::K8ssandraCluster,
};
use k8ssandra_e2e::{
    ControlPlaneOperator, DataPlaneOperator, FakeManagementApi, Fleet, FleetConfig, LocalCluster,
    wait,
};
use k8ssandra_mgmt_api::{
    Route,
    fake::{FakeCluster, FakeClusterConfig},
};
use kube::{
    Api, ResourceExt,
    api::{DeleteParams, ListParams, Patch, PatchParams, PostParams},
};

pub const OPERATOR_NAMESPACE: &str = "k8ssandra-operator";
/// Where the sample is applied (it names no namespace), and so where its datacenters run.
pub const NAMESPACE: &str = "default";
pub const CONVERGE: Duration = Duration::from_secs(240);

/// The docs' two-datacenter sample, as a user applies it.
pub fn sample() -> String {
    std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../config/samples/k8ssandra-cluster-multi-dc.yaml"
    ))
    .expect("the sample")
}

/// The `User-Agent` of the data plane of `context` in its Management API calls.
pub fn data_plane_agent(context: &str) -> String {
    format!("k8ssandra-operator data plane of {context}")
}

/// Everything a test runs: the fleet, the operators, the fake Cassandra.
pub struct Setup {
    pub control: ControlPlaneOperator,
    pub data_planes: Vec<DataPlaneOperator>,
    pub mgmt: FakeManagementApi,
    pub fleet: Fleet,
}

impl Setup {
    /// The fleet of three clusters: the control plane in cluster 0, data planes in 1 and 2.
    pub async fn start(name: &str) -> Self {
        Self::start_with(name, 2).await
    }

    /// A fleet with `data_planes` data-plane clusters after the control plane's.
    pub async fn start_with(name: &str, data_planes: usize) -> Self {
        Self::start_configured(name, data_planes, FakeClusterConfig::fast()).await
    }

    /// As [`Setup::start_with`], the fake Cassandra configured by `cassandra`.
    pub async fn start_configured(
        name: &str,
        data_planes: usize,
        cassandra: FakeClusterConfig,
    ) -> Self {
        // Four nodes: a datacenter can grow to four pods, one per node.
        let fleet = FleetConfig::new(name, data_planes + 1)
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
            FakeCluster::new(cassandra),
            &(1..=data_planes)
                .map(|i| fleet.cluster(i))
                .collect::<Vec<_>>(),
            "demo",
        );
        // Each data plane names itself in its calls, so the fake's log says who called.
        let data_planes = (1..=data_planes)
            .map(|i| {
                let settings = k8ssandra_e2e::scenario::settings()
                    .with_user_agent(data_plane_agent(fleet.cluster(i).context()));
                DataPlaneOperator::start(fleet.cluster(i), settings).expect("data plane")
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

    pub fn clusters(&self) -> Api<K8ssandraCluster> {
        Api::namespaced(self.fleet.cluster(0).client(), NAMESPACE)
    }

    pub fn datacenters(&self, index: usize) -> Api<CassandraDatacenter> {
        Api::namespaced(self.fleet.cluster(index).client(), NAMESPACE)
    }

    /// Waits until the K8ssandraCluster's condition `type_` has `status` and a message holding
    /// `text`; returns the cluster.
    pub async fn wait_condition(
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

pub fn condition(k8c: &K8ssandraCluster, type_: &str) -> Option<conditions::Condition> {
    let list = k8c.status.as_ref()?.conditions.as_deref()?;
    conditions::find(list, type_).cloned()
}

impl Setup {
    /// Creates the kubeconfig Secret of cluster `index` for the ClientConfig, with a
    /// ServiceAccount `account` of its own; returns the kubeconfig.
    pub async fn kubeconfig_secret(&self, index: usize, account: &str) -> String {
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
    pub async fn client_config_object(&self, context: &str, secret: &str) {
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

    /// The ClientConfig of cluster `index` and its Secret, as `k8ssandra-operator clientconfig
    /// create` makes them: a ServiceAccount whose ClusterRole is exactly what the control plane
    /// uses there, so a permission it lacks fails the test.
    pub async fn least_privilege_client_config(&self, index: usize) {
        use k8ssandra_control_plane::client_config::create::{Request, create};
        let cluster = self.fleet.cluster(index);
        let request = Request {
            context: cluster.context().to_owned(),
            namespace: OPERATOR_NAMESPACE.to_owned(),
            service_account: "k8ssandra-control-plane".to_owned(),
            server: cluster.access().server.clone(),
        };
        let access = create(&cluster.client(), &request)
            .await
            .expect("access to the remote cluster");
        let control = self.fleet.cluster(0).client();
        Api::<Secret>::namespaced(control.clone(), OPERATOR_NAMESPACE)
            .create(&PostParams::default(), &access.secret)
            .await
            .expect("kubeconfig Secret");
        Api::<ClientConfig>::namespaced(control, OPERATOR_NAMESPACE)
            .create(&PostParams::default(), &access.client_config)
            .await
            .expect("ClientConfig");
    }

    /// The ClientConfig of cluster `index` and its Secret; returns the kubeconfig.
    pub async fn client_config(&self, index: usize) -> String {
        let kubeconfig = self
            .kubeconfig_secret(index, "k8ssandra-control-plane")
            .await;
        let context = self.fleet.cluster(index).context().to_owned();
        self.client_config_object(&context, &format!("{context}-kubeconfig"))
            .await;
        kubeconfig
    }

    /// Applies the sample as edited by `edit`, as a user re-applies a file.
    pub async fn apply(&self, yaml: &str) {
        self.fleet
            .cluster(0)
            .apply_yaml(NAMESPACE, yaml)
            .await
            .expect("the K8ssandraCluster applies");
    }

    pub async fn wait_ready(&self) -> K8ssandraCluster {
        self.wait_condition(
            "Ready",
            ConditionStatus::True,
            "2/2 datacenters ready",
            CONVERGE,
        )
        .await
    }

    /// How many times each pod's Cassandra was started.
    pub fn starts(&self) -> BTreeMap<String, usize> {
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
    pub async fn settle(&self) {
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
    pub async fn events_and_statuses(&self) -> String {
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
    pub async fn assert_secrets_stay_secret(&self, secrets: &[String]) {
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
    pub async fn events_of(&self, name: &str) -> Vec<String> {
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
    pub async fn datacenter_names(&self, index: usize) -> Vec<String> {
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
    pub async fn password(&self, index: usize) -> Vec<u8> {
        let secrets: Api<Secret> = Api::namespaced(self.fleet.cluster(index).client(), NAMESPACE);
        let secret = secrets
            .get("demo-superuser")
            .await
            .expect("superuser Secret");
        secret.data.expect("data")["password"].0.clone()
    }

    /// Deletes the K8ssandraCluster and waits until it is gone.
    pub async fn delete_and_wait(&self) {
        self.clusters()
            .delete("demo", &DeleteParams::default())
            .await
            .expect("delete");
        self.wait_gone().await;
    }

    pub async fn wait_gone(&self) {
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

    /// Asserts that nothing the K8ssandraCluster made is left in the data-plane clusters.
    pub async fn assert_nothing_left(&self) {
        for index in 1..self.fleet.clusters().len() {
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
            let tasks = Api::<CassandraTask>::all(self.fleet.cluster(index).client())
                .list(&ListParams::default().labels("k8ssandra.io/cluster-name=demo"))
                .await
                .expect("tasks");
            assert!(
                tasks.items.is_empty(),
                "CassandraTasks left in cluster {index}: {:?}",
                tasks
                    .items
                    .iter()
                    .map(ResourceExt::name_any)
                    .collect::<Vec<_>>()
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

pub async fn put_secret(cluster: &LocalCluster, name: &str, data: &[(&str, &str)]) {
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
