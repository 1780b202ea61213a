//! The local fleet behaves like several real, independent Kubernetes clusters.
#![allow(clippy::expect_used)]

use std::{
    collections::BTreeSet,
    net::{IpAddr, Ipv4Addr},
    path::Path,
    time::Duration,
};

use k8s_openapi::api::{
    apps::v1::StatefulSet,
    core::v1::{ConfigMap, Node, PersistentVolume, PersistentVolumeClaim, Pod},
};
use k8ssandra_e2e::{
    FleetConfig, LocalCluster,
    process::is_running,
    readiness::{is_pod_ready, pod_condition},
    storage::STORAGE_CLASS,
    wait,
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
                ip.is_loopback(),
                "{} has a non-loopback IP {ip}",
                pod.name_any()
            );
            assert_eq!(
                ip.octets()[1],
                cluster.pod_ip_octet(),
                "{} IP {ip}",
                pod.name_any()
            );
            ranges.insert(ip.octets()[1]);
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

    // A process listening on a pod's IP:8080 is reachable from the test.
    let cluster = fleet.cluster(0);
    let pods: Api<Pod> = Api::namespaced(cluster.client(), NAMESPACE);
    let web0 = pods.get("web-0").await.expect("web-0");
    let ip = pod_ip(&web0).expect("web-0 IP");
    let listener = TcpListener::bind((IpAddr::V4(ip), 8080))
        .await
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
    drop(fleet);
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
