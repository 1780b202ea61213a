//! The fake Management API on a local cluster: Cassandra pods built by the data-plane builders get a
//! fake node on their IP:8080, and a node that starts makes its pod Ready in Kubernetes.
#![allow(clippy::expect_used)]

use std::{net::IpAddr, time::Duration};

use k8s_openapi::api::{
    apps::v1::StatefulSet,
    core::v1::{Pod, Service},
    discovery::v1::EndpointSlice,
};
use k8ssandra_api::{cassandra::CassandraDatacenter, labels};
use k8ssandra_data_plane::build::{self, images::ImageConfig, statefulset::desired_statefulsets};
use k8ssandra_e2e::{FakeManagementApi, FleetConfig, LocalCluster, wait};
use k8ssandra_mgmt_api::{
    ClientSettings, ManagementApiClient, NodeStatus, StartOutcome,
    fake::{FakeCluster, FakeClusterConfig, FakeNode},
};
use kube::{
    Api, ResourceExt,
    api::{ListParams, Patch, PatchParams},
};

const NAMESPACE: &str = "cass";
const LIMIT: Duration = Duration::from_secs(60);
const SAMPLE: &str = include_str!("../../config/samples/cassandra-datacenter-three-racks.yaml");

async fn pod_client(cluster: &LocalCluster, pod: &str) -> ManagementApiClient {
    let pods: Api<Pod> = Api::namespaced(cluster.client(), NAMESPACE);
    let what = format!("{pod} running with an IP");
    let ip: IpAddr = wait::until(&what, LIMIT, || {
        let pods = pods.clone();
        async move {
            let pod = pods.get_opt(pod).await.ok().flatten()?;
            let status = pod.status?;
            (status.phase.as_deref() == Some("Running")).then_some(())?;
            status.pod_ip?.parse().ok()
        }
    })
    .await
    .expect("pod runs");
    ClientSettings::insecure().client(pod, ip)
}

/// Starts the node (retrying while its fake node catches up with a label or a new pod) and waits
/// until Kubernetes reports its pod Ready.
async fn start_until_ready(cluster: &LocalCluster, client: &ManagementApiClient, pod: &str) {
    let what = format!("{pod} to start");
    wait::until(&what, LIMIT, || async { client.start(None).await.ok() })
        .await
        .expect("node starts");
    cluster
        .wait_pod_ready(NAMESPACE, pod, true)
        .await
        .expect("pod Ready after start");
}

async fn wait_for_fake_nodes(api: &FakeManagementApi, count: usize) {
    wait::until("fake nodes for every pod", LIMIT, || async {
        (api.node_count() == count).then_some(())
    })
    .await
    .expect("every pod gets a fake node");
}

#[tokio::test]
async fn pods_of_a_datacenter_get_fake_nodes_that_drive_their_readiness() {
    let fleet = FleetConfig::new("fake_management_api", 1)
        .start()
        .await
        .expect("fleet starts");
    let cluster = fleet.cluster(0);
    cluster
        .create_namespace(NAMESPACE)
        .await
        .expect("namespace");

    // The sample datacenter (no controller runs) and the StatefulSets and Services the builders
    // make for it; the cluster's EndpointSlice controller fills the seed Service, which the fake
    // nodes resolve their seeds from.
    cluster
        .apply_yaml(NAMESPACE, SAMPLE)
        .await
        .expect("sample applies");
    let datacenters: Api<CassandraDatacenter> = Api::namespaced(cluster.client(), NAMESPACE);
    let dc = datacenters.get("dc1").await.expect("dc1");
    let statefulsets: Api<StatefulSet> = Api::namespaced(cluster.client(), NAMESPACE);
    let params = PatchParams::apply("fake-management-api-test").force();
    for sts in desired_statefulsets(&dc, &ImageConfig::default()).expect("builders") {
        statefulsets
            .patch(&sts.name_any(), &params, &Patch::Apply(&sts))
            .await
            .expect("StatefulSet applies");
    }
    let services: Api<Service> = Api::namespaced(cluster.client(), NAMESPACE);
    for service in build::services::services(&dc, &[]).expect("builders") {
        services
            .patch(&service.name_any(), &params, &Patch::Apply(&service))
            .await
            .expect("Service applies");
    }

    let api = FakeManagementApi::start(
        FakeCluster::new(FakeClusterConfig::fast()),
        &[cluster],
        "cluster1",
    );
    wait_for_fake_nodes(&api, 3).await;
    let seed = "cluster1-dc1-rack1-sts-0";
    let others = ["cluster1-dc1-rack2-sts-0", "cluster1-dc1-rack3-sts-0"];

    // Cassandra's rule: with no seed up, a non-seed node does not start. As the Management API,
    // the start answers once the process is launched; the process then exits.
    let launched = pod_client(cluster, others[0]).await.start(None).await;
    assert_eq!(launched.expect("launched"), StartOutcome::Started);
    let reason = api.with_node(others[0], FakeNode::exit_reason).flatten();
    assert!(reason.is_some_and(|r| r.contains("seed")));
    cluster
        .wait_pod_ready(NAMESPACE, others[0], false)
        .await
        .expect("still not ready");

    // Labelling the first pod a seed lets it start alone; its pod turns Ready in Kubernetes.
    let pods: Api<Pod> = Api::namespaced(cluster.client(), NAMESPACE);
    let seed_label = serde_json::json!({ "metadata": { "labels": { labels::SEED_NODE: "true" } } });
    pods.patch(seed, &PatchParams::default(), &Patch::Merge(&seed_label))
        .await
        .expect("label seed");
    let seed_client = pod_client(cluster, seed).await;
    start_until_ready(cluster, &seed_client, seed).await;
    let seed_ip = pods
        .get(seed)
        .await
        .expect("seed")
        .status
        .and_then(|s| s.pod_ip)
        .expect("seed IP");
    let slices: Api<EndpointSlice> = Api::namespaced(cluster.client(), NAMESPACE);
    wait::until("the seed Service to list the seed", LIMIT, || async {
        let listed = slices
            .list(
                &ListParams::default()
                    .labels(&format!("{}=cluster1-seed-service", labels::SERVICE_NAME)),
            )
            .await
            .ok()?;
        listed
            .items
            .iter()
            .flat_map(|s| s.endpoints.iter().flat_map(|e| e.addresses.iter()))
            .any(|a| *a == seed_ip)
            .then_some(())
    })
    .await
    .expect("seed listed");

    // The others start one at a time and turn Ready.
    for pod in others {
        let client = pod_client(cluster, pod).await;
        client.start(None).await.expect("start once a seed is up");
        cluster
            .wait_pod_ready(NAMESPACE, pod, true)
            .await
            .expect("Ready after start");
    }
    let gossip = seed_client.endpoints().await.expect("gossip");
    let normal = gossip
        .entries
        .iter()
        .filter(|entry| entry.status() == NodeStatus::Normal)
        .count();
    assert_eq!(normal, 3, "three NORMAL nodes: {gossip:?}");

    // A deleted pod comes back (same claim) on a new fake node that keeps its host ID once started.
    let victim = others[1];
    let host_id = pod_client(cluster, victim)
        .await
        .endpoints()
        .await
        .expect("gossip")
        .local()
        .and_then(|entry| entry.host_id().map(str::to_string))
        .expect("host id");
    let old_uid = pods.get(victim).await.expect("pod").uid();
    pods.delete(victim, &Default::default())
        .await
        .expect("delete pod");
    let what = format!("{victim} recreated");
    wait::until(&what, LIMIT, || {
        let pods = pods.clone();
        let old_uid = old_uid.clone();
        async move {
            let pod = pods.get_opt(victim).await.ok().flatten()?;
            (pod.uid() != old_uid).then_some(())
        }
    })
    .await
    .expect("StatefulSet recreates the pod");
    cluster
        .wait_pod_ready(NAMESPACE, victim, false)
        .await
        .expect("a new pod starts not ready");
    let client = pod_client(cluster, victim).await;
    start_until_ready(cluster, &client, victim).await;
    let gossip = client.endpoints().await.expect("gossip");
    let local = gossip.local().and_then(|entry| entry.host_id());
    assert_eq!(local, Some(host_id.as_str()), "same disk, same host ID");
    assert_eq!(gossip.entries.len(), 3, "no extra ring member: {gossip:?}");
}
