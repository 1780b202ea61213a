//! The K8ssandraCluster across a fleet of three clusters: the control plane in cluster 0, a data
//! plane in each of clusters 1 and 2, ClientConfigs with ServiceAccount kubeconfigs, and the fake
//! Management API on every Cassandra pod. The docs' two-datacenter sample converges into one
//! Cassandra cluster with its status in one place; changes reach the right cluster; bad input is
//! refused with a reason; deletion removes everything it made.
#![allow(clippy::expect_used)]

use std::{collections::BTreeMap, time::Duration};

use k8s_openapi::{ByteString, api::core::v1::Secret};
use k8ssandra_api::{
    cassandra::CassandraDatacenter,
    conditions::{self, ConditionStatus},
    config::ClientConfig,
    k8ssandra::K8ssandraCluster,
};
use k8ssandra_e2e::{
    ControlPlaneOperator, DataPlaneOperator, FakeManagementApi, Fleet, FleetConfig, wait,
};
use k8ssandra_mgmt_api::{
    NodeStatus,
    fake::{FakeCluster, FakeClusterConfig},
};
use kube::{
    Api, ResourceExt,
    api::{DeleteParams, PostParams},
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
    _control: ControlPlaneOperator,
    _data_planes: Vec<DataPlaneOperator>,
    mgmt: FakeManagementApi,
    fleet: Fleet,
}

impl Setup {
    async fn start(name: &str) -> Self {
        let fleet = FleetConfig::new(name, 3)
            .nodes_per_cluster(3)
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
            _control: control,
            _data_planes: data_planes,
            mgmt,
            fleet,
        }
    }

    /// Creates the ClientConfig of cluster `index`, with a ServiceAccount kubeconfig of its own.
    async fn client_config(&self, index: usize) {
        let cluster = self.fleet.cluster(index);
        let context = cluster.context().to_owned();
        let kubeconfig = cluster
            .service_account_kubeconfig("k8ssandra-control-plane")
            .await
            .expect("kubeconfig");
        let secret = Secret {
            metadata: kube::api::ObjectMeta {
                name: Some(format!("{context}-kubeconfig")),
                ..Default::default()
            },
            data: Some(BTreeMap::from([(
                "kubeconfig".to_owned(),
                ByteString(kubeconfig.into_bytes()),
            )])),
            ..Secret::default()
        };
        let local = self.fleet.cluster(0).client();
        Api::<Secret>::namespaced(local.clone(), OPERATOR_NAMESPACE)
            .create(&PostParams::default(), &secret)
            .await
            .expect("kubeconfig Secret");
        let config: ClientConfig = serde_json::from_value(serde_json::json!({
            "apiVersion": "config.k8ssandra.io/v1beta1",
            "kind": "ClientConfig",
            "metadata": { "name": context },
            "spec": { "contextName": context, "kubeConfigSecret": { "name": format!("{context}-kubeconfig") } }
        }))
        .expect("ClientConfig");
        Api::<ClientConfig>::namespaced(local, OPERATOR_NAMESPACE)
            .create(&PostParams::default(), &config)
            .await
            .expect("ClientConfig");
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

#[tokio::test]
async fn the_two_datacenter_sample_converges_into_one_cassandra_cluster() {
    let setup = Setup::start("k8ssandra_cluster_sample").await;
    setup.client_config(1).await;
    setup.client_config(2).await;
    setup
        .fleet
        .cluster(0)
        .apply_yaml(NAMESPACE, &sample())
        .await
        .expect("the sample applies");

    let k8c = setup
        .wait_condition(
            "Ready",
            ConditionStatus::True,
            "2/2 datacenters ready",
            CONVERGE,
        )
        .await;
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
        let names: Vec<String> = setup
            .datacenters(index)
            .list(&Default::default())
            .await
            .expect("list")
            .items
            .iter()
            .map(ResourceExt::name_any)
            .collect();
        assert_eq!(names, present, "CassandraDatacenters in cluster {index}");
    }

    // One gossip table: six NORMAL nodes, three in each datacenter.
    let gossip = setup.mgmt.cassandra().endpoints();
    let mut by_dc: BTreeMap<String, usize> = BTreeMap::new();
    for entry in &gossip.entries {
        assert_eq!(entry.status(), NodeStatus::Normal, "{entry:?}");
        *by_dc
            .entry(entry.datacenter().unwrap_or_default().to_owned())
            .or_default() += 1;
    }
    assert_eq!(
        by_dc,
        BTreeMap::from([("dc1".into(), 3), ("dc2".into(), 3)])
    );

    // The same superuser password in both datacenters' namespaces.
    let password = |index: usize| {
        let secrets: Api<Secret> = Api::namespaced(setup.fleet.cluster(index).client(), NAMESPACE);
        async move {
            let secret = secrets
                .get("demo-superuser")
                .await
                .expect("superuser Secret");
            secret.data.expect("data")["password"].0.clone()
        }
    };
    let (source, one, two) = (password(0).await, password(1).await, password(2).await);
    assert_eq!(source.len(), 54);
    assert_eq!(one, source);
    assert_eq!(two, source);

    // Deleting the K8ssandraCluster removes what it made everywhere.
    setup
        .clusters()
        .delete("demo", &DeleteParams::default())
        .await
        .expect("delete");
    wait::until("the K8ssandraCluster to be gone", CONVERGE, || async {
        setup
            .clusters()
            .get_opt("demo")
            .await
            .ok()?
            .is_none()
            .then_some(())
    })
    .await
    .expect("deleted");
    for index in 1..=2 {
        let left = setup
            .datacenters(index)
            .list(&Default::default())
            .await
            .expect("list");
        assert!(
            left.items.is_empty(),
            "cluster {index} keeps {:?}",
            left.items
        );
        let secrets: Api<Secret> = Api::namespaced(setup.fleet.cluster(index).client(), NAMESPACE);
        assert!(
            secrets
                .get_opt("demo-superuser")
                .await
                .expect("read")
                .is_none(),
            "the copy in cluster {index} stays"
        );
    }
}
