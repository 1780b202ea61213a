//! The local fleet behaves like several real, independent Kubernetes clusters.
#![allow(clippy::expect_used)]

use std::{
    collections::BTreeSet,
    net::{IpAddr, Ipv4Addr, SocketAddr},
    path::Path,
    time::Duration,
};

use k8s_openapi::api::{
    apps::v1::StatefulSet,
    core::v1::{ConfigMap, Node, PersistentVolume, PersistentVolumeClaim, Pod},
    discovery::v1::EndpointSlice,
};
use k8ssandra_e2e::{
    Fleet, FleetConfig, LocalCluster,
    process::is_running,
    readiness::{is_pod_ready, pod_condition},
    storage::STORAGE_CLASS,
    wait,
};
use k8ssandra_mgmt_api::{
    ClientSettings,
    fake::{FakeCluster, FakeClusterConfig, NodeSpec},
};
use kube::{
    Api, Client, Config, ResourceExt,
    api::{ListParams, PostParams},
    config::{KubeConfigOptions, Kubeconfig},
};
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::{TcpListener, TcpStream},
};

const NAMESPACE: &str = "fleet-test";
const LIMIT: Duration = Duration::from_secs(90);

const STATEFULSET: &str = r#"
apiVersion: v1
kind: Service
metadata:
  name: web
spec:
  clusterIP: None
  selector:
    app: web
  ports:
  - name: http
    port: 8080
---
apiVersion: apps/v1
kind: StatefulSet
metadata:
  name: web
spec:
  replicas: 3
  serviceName: web
  podManagementPolicy: Parallel
  selector:
    matchLabels:
      app: web
  template:
    metadata:
      labels:
        app: web
    spec:
      containers:
      - name: server
        image: example.invalid/server:1
        ports:
        - containerPort: 8080
  volumeClaimTemplates:
  - metadata:
      name: data
    spec:
      accessModes: [ReadWriteOnce]
      resources:
        requests:
          storage: 1Gi
"#;

fn pod_ip(pod: &Pod) -> Option<Ipv4Addr> {
    pod.status.as_ref()?.pod_ip.as_ref()?.parse().ok()
}

fn phase(pod: &Pod) -> Option<&str> {
    pod.status.as_ref()?.phase.as_deref()
}

/// Waits until the StatefulSet `web` has 3 running pods with IPs and bound claims.
async fn running_web_pods(cluster: &LocalCluster) -> Vec<Pod> {
    let pods: Api<Pod> = Api::namespaced(cluster.client(), NAMESPACE);
    let claims: Api<PersistentVolumeClaim> = Api::namespaced(cluster.client(), NAMESPACE);
    let what = format!("3 running web pods with bound claims in {}", cluster.name());
    wait::until(&what, LIMIT, || {
        let (pods, claims) = (pods.clone(), claims.clone());
        async move {
            let list = pods
                .list(&ListParams::default().labels("app=web"))
                .await
                .ok()?;
            let running = list
                .items
                .iter()
                .filter(|pod| phase(pod) == Some("Running") && pod_ip(pod).is_some())
                .count();
            let bound = claims
                .list(&ListParams::default())
                .await
                .ok()?
                .items
                .iter()
                .filter(|claim| {
                    claim.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Bound")
                })
                .count();
            (running == 3 && bound == 3).then_some(list.items)
        }
    })
    .await
    .expect("StatefulSet pods run with bound volumes")
}

async fn client_for_context(kubeconfig: &Path, context: &str) -> Client {
    let kubeconfig = Kubeconfig::read_from(kubeconfig).expect("merged kubeconfig reads");
    let options = KubeConfigOptions {
        context: Some(context.to_string()),
        ..KubeConfigOptions::default()
    };
    let config = Config::from_custom_kubeconfig(kubeconfig, &options)
        .await
        .expect("context is in the merged kubeconfig");
    Client::try_from(config).expect("client")
}

#[tokio::test]
async fn three_clusters_run_statefulsets_on_fake_nodes_independently() {
    let mut fleet = FleetConfig::new("three_clusters", 3)
        .install_crds(false)
        .start()
        .await
        .expect("fleet starts");
    eprintln!("3-cluster fleet started in {:.1?}", fleet.started_in());

    // A StatefulSet with a volume claim template in every cluster.
    for cluster in fleet.clusters() {
        cluster
            .create_namespace(NAMESPACE)
            .await
            .expect("namespace");
        cluster
            .apply_yaml(NAMESPACE, STATEFULSET)
            .await
            .expect("StatefulSet applies");
    }

    let mut ranges = BTreeSet::new();
    for cluster in fleet.clusters() {
        let pods = running_web_pods(cluster).await;
        let nodes: BTreeSet<String> = cluster.node_names().into_iter().collect();
        let pvs: Api<PersistentVolume> = Api::all(cluster.client());
        let claims: Api<PersistentVolumeClaim> = Api::namespaced(cluster.client(), NAMESPACE);
        for pod in &pods {
            let ip = pod_ip(pod).expect("pod IP");
            assert!(
                cluster.addresses().contains(ip),
                "{} IP {ip} is outside {}",
                pod.name_any(),
                cluster.pod_cidr()
            );
            assert_eq!(
                ip.is_loopback(),
                !fleet.pod_network().is_routed(),
                "{} IP {ip} in {:?}",
                pod.name_any(),
                fleet.pod_network()
            );
            ranges.insert(cluster.pod_cidr());
            let node = pod.spec.as_ref().and_then(|spec| spec.node_name.clone());
            let node = node.expect("pod is scheduled");
            assert!(
                nodes.contains(&node),
                "{} is on {node}, not a fake node",
                pod.name_any()
            );
            assert!(
                !is_pod_ready(pod),
                "{} is Ready without its signal",
                pod.name_any()
            );
            assert_eq!(pod_condition(pod, "Ready"), Some("False"));

            // Its claim is bound, in the default class, to a volume pinned to the pod's node.
            let claim = claims
                .get(&format!("data-{}", pod.name_any()))
                .await
                .expect("claim of the pod");
            let claim_spec = claim.spec.expect("claim spec");
            assert_eq!(
                claim_spec.storage_class_name.as_deref(),
                Some(STORAGE_CLASS)
            );
            let volume = pvs
                .get(&claim_spec.volume_name.expect("claim is bound to a volume"))
                .await
                .expect("bound volume");
            let affinity =
                serde_json::to_string(&volume.spec.expect("pv spec").node_affinity).expect("json");
            assert!(
                affinity.contains(&node),
                "volume pinned to {node}: {affinity}"
            );
        }
    }
    assert_eq!(ranges.len(), 3, "each cluster has its own pod IP range");

    // A process listening on a pod's IP:8080 (inside the pod network) is reachable from the test.
    let cluster = fleet.cluster(0);
    let pods: Api<Pod> = Api::namespaced(cluster.client(), NAMESPACE);
    let web0 = pods.get("web-0").await.expect("web-0");
    let ip = pod_ip(&web0).expect("web-0 IP");
    let listener = cluster
        .pod_network()
        .bind_tcp(SocketAddr::new(IpAddr::V4(ip), 8080))
        .and_then(TcpListener::from_std)
        .expect("bind pod IP:8080");
    let server = tokio::spawn(async move {
        let (mut stream, _) = listener.accept().await.expect("accept");
        stream.write_all(b"hello from web-0").await.expect("write");
    });
    let mut stream = TcpStream::connect((ip, 8080))
        .await
        .expect("connect to pod IP:8080");
    let mut reply = String::new();
    stream.read_to_string(&mut reply).await.expect("read");
    assert_eq!(reply, "hello from web-0");
    server.await.expect("server task");

    // The readiness signal makes exactly that pod Ready; clearing it makes it not ready again.
    cluster
        .set_pod_ready(NAMESPACE, "web-0", true)
        .await
        .expect("signal");
    cluster
        .wait_pod_ready(NAMESPACE, "web-0", true)
        .await
        .expect("web-0 Ready");
    let web1 = pods.get("web-1").await.expect("web-1");
    assert!(!is_pod_ready(&web1), "web-1 has no signal and is not Ready");
    let statefulsets: Api<StatefulSet> = Api::namespaced(cluster.client(), NAMESPACE);
    wait::object(
        &statefulsets,
        "web",
        "web to count 1 ready replica",
        LIMIT,
        |sts| sts.status.as_ref().and_then(|status| status.ready_replicas) == Some(1),
    )
    .await
    .expect("StatefulSet counts the Ready pod");
    services_get_endpoints_as_on_kind(&fleet).await;
    cluster
        .set_pod_ready(NAMESPACE, "web-0", false)
        .await
        .expect("clear signal");
    cluster
        .wait_pod_ready(NAMESPACE, "web-0", false)
        .await
        .expect("web-0 not Ready");

    // Deleting a claim releases its volume, which the provisioner deletes.
    let claims: Api<PersistentVolumeClaim> = Api::namespaced(cluster.client(), NAMESPACE);
    let volume = claims
        .get("data-web-2")
        .await
        .expect("claim")
        .spec
        .and_then(|s| s.volume_name);
    let volume = volume.expect("bound volume");
    let scaled = serde_json::json!({ "spec": { "replicas": 2 } });
    statefulsets
        .patch(
            "web",
            &Default::default(),
            &kube::api::Patch::Merge(&scaled),
        )
        .await
        .expect("scale down");
    claims
        .delete("data-web-2", &Default::default())
        .await
        .expect("delete claim");
    let pvs: Api<PersistentVolume> = Api::all(cluster.client());
    wait::until("the released volume to be deleted", LIMIT, || {
        let (pvs, volume) = (pvs.clone(), volume.clone());
        async move { pvs.get_opt(&volume).await.ok()?.is_none().then_some(()) }
    })
    .await
    .expect("volume deleted");

    // The clusters are independent: an object created in one is absent from the others.
    let only_here = ConfigMap {
        metadata: kube::api::ObjectMeta {
            name: Some("only-in-cluster-0".into()),
            ..Default::default()
        },
        ..ConfigMap::default()
    };
    Api::<ConfigMap>::namespaced(fleet.cluster(0).client(), NAMESPACE)
        .create(&PostParams::default(), &only_here)
        .await
        .expect("create in cluster 0");
    for other in &fleet.clusters()[1..] {
        let found = Api::<ConfigMap>::namespaced(other.client(), NAMESPACE)
            .get_opt("only-in-cluster-0")
            .await
            .expect("get");
        assert!(
            found.is_none(),
            "{} sees cluster 0's ConfigMap",
            other.name()
        );
    }

    // The merged kubeconfig reaches each cluster through its kind-style context.
    for cluster in fleet.clusters() {
        let client = client_for_context(fleet.kubeconfig_path(), cluster.context()).await;
        let names: BTreeSet<String> = Api::<Node>::all(client)
            .list(&ListParams::default())
            .await
            .expect("list nodes through the merged kubeconfig")
            .items
            .iter()
            .map(ResourceExt::name_any)
            .collect();
        assert_eq!(names, cluster.node_names().into_iter().collect());
    }

    // Stopping one cluster's apiserver leaves the others serving.
    fleet.cluster_mut(1).stop_apiserver();
    let stopped = Api::<Node>::all(fleet.cluster(1).client());
    assert!(
        stopped.list(&ListParams::default()).await.is_err(),
        "cluster 1 is down"
    );
    for index in [0, 2] {
        let nodes = Api::<Node>::all(fleet.cluster(index).client())
            .list(&ListParams::default())
            .await
            .expect("the other clusters still serve");
        assert_eq!(nodes.items.len(), 6);
    }

    // Teardown leaves no process and no listening port behind.
    let pids = fleet.process_ids();
    assert_eq!(
        pids.len(),
        1 + 3 * 4 - 1,
        "etcd + 4 processes per cluster, one apiserver stopped"
    );
    let servers: Vec<String> = fleet
        .clusters()
        .iter()
        .map(|c| c.access().server.clone())
        .collect();
    let network = fleet.pod_network().clone();
    let ranges: Vec<String> = fleet.clusters().iter().map(|c| c.pod_cidr()).collect();
    assert_eq!(
        network.leftovers(&ranges).expect("ip").len(),
        if network.is_routed() { 2 + 3 } else { 0 },
        "while it runs: the namespace, its link and a route per cluster"
    );
    drop(fleet);
    assert_eq!(
        network.leftovers(&ranges).expect("ip"),
        Vec::<String>::new(),
        "the pod network outlived the fleet"
    );
    for pid in pids {
        assert!(!is_running(pid), "process {pid} outlived the fleet");
    }
    for server in servers {
        let address = server.trim_start_matches("https://");
        assert!(
            TcpStream::connect(address).await.is_err(),
            "{address} still accepts"
        );
    }
}

/// Pods' IPs of the StatefulSet `web` in `cluster`, by pod name.
async fn web_pod_ips(cluster: &LocalCluster) -> BTreeSet<String> {
    Api::<Pod>::namespaced(cluster.client(), NAMESPACE)
        .list(&ListParams::default().labels("app=web"))
        .await
        .expect("list pods")
        .items
        .iter()
        .filter_map(pod_ip)
        .map(|ip| ip.to_string())
        .collect()
}

/// Addresses of the EndpointSlices of `service`: (ready ones, all).
async fn slice_addresses(
    cluster: &LocalCluster,
    service: &str,
) -> (BTreeSet<String>, BTreeSet<String>) {
    let slices = Api::<EndpointSlice>::namespaced(cluster.client(), NAMESPACE)
        .list(&ListParams::default().labels(&format!("kubernetes.io/service-name={service}")))
        .await
        .expect("list EndpointSlices");
    let mut ready = BTreeSet::new();
    let mut all = BTreeSet::new();
    for endpoint in slices.items.iter().flat_map(|slice| &slice.endpoints) {
        let is_ready = endpoint.conditions.as_ref().and_then(|c| c.ready) == Some(true);
        for address in &endpoint.addresses {
            all.insert(address.clone());
            if is_ready {
                ready.insert(address.clone());
            }
        }
    }
    (ready, all)
}

/// With web-0 Ready (web-1 and web-2 not): the headless Service's EndpointSlice lists web-0 as
/// ready and the others as not; with `publishNotReadyAddresses`, all three are ready; another
/// cluster accepts an EndpointSlice of these pod IPs (as an additional-seed Service has); a fake
/// Management API node on a pod's IP answers the operator's client.
async fn services_get_endpoints_as_on_kind(fleet: &Fleet) {
    if let Some(reason) = fleet.pod_network().endpoints_unavailable() {
        eprintln!("skipping the endpoint checks: {reason}");
        return;
    }
    let cluster = fleet.cluster(0);
    let pods: Api<Pod> = Api::namespaced(cluster.client(), NAMESPACE);
    let ip_of = |pod: Pod| pod_ip(&pod).expect("pod IP").to_string();
    let web0 = ip_of(pods.get("web-0").await.expect("web-0"));
    let every_ip = web_pod_ips(cluster).await;
    assert_eq!(every_ip.len(), 3);
    wait::until(
        "web's EndpointSlice: web-0 ready, the others not",
        LIMIT,
        || async {
            let (ready, all) = slice_addresses(cluster, "web").await;
            (ready == BTreeSet::from([web0.clone()]) && all == every_ip).then_some(())
        },
    )
    .await
    .expect("the EndpointSlice controller fills web's slice");

    cluster
        .apply_yaml(
            NAMESPACE,
            r#"
apiVersion: v1
kind: Service
metadata:
  name: web-all
spec:
  clusterIP: None
  publishNotReadyAddresses: true
  selector:
    app: web
  ports:
  - name: http
    port: 8080
"#,
        )
        .await
        .expect("web-all applies");
    wait::until(
        "web-all's EndpointSlice: every pod ready",
        LIMIT,
        || async {
            let (ready, _) = slice_addresses(cluster, "web-all").await;
            (ready == every_ip).then_some(())
        },
    )
    .await
    .expect("publishNotReadyAddresses is honoured");

    // Cluster 0's pod IPs in an EndpointSlice of cluster 1, as the additional-seed Service of a
    // datacenter in another Kubernetes cluster has them.
    let other = fleet.cluster(1);
    other.create_namespace(NAMESPACE).await.ok();
    let addresses: Vec<String> = every_ip.iter().cloned().collect();
    let slice = serde_json::json!({
        "apiVersion": "discovery.k8s.io/v1",
        "kind": "EndpointSlice",
        "metadata": {
            "name": "remote-seeds-ipv4",
            "labels": { "kubernetes.io/service-name": "remote-seeds" }
        },
        "addressType": "IPv4",
        "endpoints": [{ "addresses": addresses }]
    });
    let slice: EndpointSlice = serde_json::from_value(slice).expect("slice");
    let created = Api::<EndpointSlice>::namespaced(other.client(), NAMESPACE)
        .create(&PostParams::default(), &slice)
        .await
        .expect("an EndpointSlice with another cluster's pod IPs is accepted");
    assert_eq!(created.endpoints[0].addresses, addresses);

    // The operator's Management API client reaches a fake node on web-1's IP.
    let web1 = pod_ip(&pods.get("web-1").await.expect("web-1")).expect("web-1 IP");
    let cassandra = FakeCluster::new(FakeClusterConfig::fast());
    let spec = NodeSpec::new("web-1", "dc1", "rack1", "web-1-data", IpAddr::V4(web1))
        .seed(true)
        .binder(cluster.pod_network().binder());
    let node = cassandra
        .start_node(spec)
        .await
        .expect("fake node on web-1's IP");
    let client = ClientSettings::insecure().client("web-1", IpAddr::V4(web1));
    client
        .liveness()
        .await
        .expect("the fake node answers on the pod IP");
    node.shutdown().await;
}

/// Set in the child test process that runs without the capabilities a network namespace needs.
const WITHOUT_CAPABILITIES_ENV: &str = "K8SSANDRA_E2E_FLEET_WITHOUT_NET_ADMIN";

#[tokio::test]
async fn without_a_network_namespace_pods_get_loopback_addresses_and_endpoint_tests_skip() {
    let is_root = std::fs::read_to_string("/proc/self/status")
        .is_ok_and(|status| status.lines().any(|l| l.starts_with("Uid:\t0\t")));
    if is_root && std::env::var_os(WITHOUT_CAPABILITIES_ENV).is_none() {
        // As root a namespace can be made: run this test again without the capabilities for it.
        let child = std::process::Command::new("setpriv")
            .args(["--bounding-set=-net_admin,-sys_admin", "--"])
            .arg(std::env::current_exe().expect("test binary"))
            .args([
                "--exact",
                "without_a_network_namespace_pods_get_loopback_addresses_and_endpoint_tests_skip",
                "--nocapture",
            ])
            .env(WITHOUT_CAPABILITIES_ENV, "1")
            .output()
            .expect("setpriv runs the test without CAP_NET_ADMIN");
        assert!(
            child.status.success(),
            "the test without CAP_NET_ADMIN failed:\n{}",
            String::from_utf8_lossy(&child.stdout)
        );
        return;
    }
    let fleet = FleetConfig::new("loopback_fallback", 1)
        .nodes_per_cluster(1)
        .install_crds(false)
        .start()
        .await
        .expect("the fleet starts on loopback addresses");
    let reason = fleet
        .pod_network()
        .endpoints_unavailable()
        .expect("no endpoints without a namespace");
    assert!(
        reason.contains("loopback") && reason.contains("ip netns add"),
        "says why: {reason}"
    );
    let cluster = fleet.cluster(0);
    cluster
        .create_namespace(NAMESPACE)
        .await
        .expect("namespace");
    cluster
        .apply_yaml(
            NAMESPACE,
            "apiVersion: v1\nkind: Pod\nmetadata:\n  name: solo\nspec:\n  containers:\n  - name: c\n    image: example.invalid/c:1\n",
        )
        .await
        .expect("pod");
    let pods: Api<Pod> = Api::namespaced(cluster.client(), NAMESPACE);
    let ip = wait::until("solo to get an IP", LIMIT, || async {
        pod_ip(&pods.get("solo").await.ok()?)
    })
    .await
    .expect("pod IP");
    assert!(ip.is_loopback() && cluster.addresses().contains(ip), "{ip}");
    let listener = cluster
        .pod_network()
        .bind_tcp(SocketAddr::new(IpAddr::V4(ip), 8080))
        .expect("bind the loopback pod IP");
    TcpStream::connect(listener.local_addr().expect("address"))
        .await
        .expect("reachable");
    assert_eq!(
        fleet
            .pod_network()
            .leftovers(&[cluster.pod_cidr()])
            .expect("ip"),
        Vec::<String>::new()
    );
}
