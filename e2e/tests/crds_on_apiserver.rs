//! The project's CRDs, samples and fixtures on a real kube-apiserver, and its CEL rules there.
#![allow(clippy::expect_used)]

use std::path::{Path, PathBuf};

use k8ssandra_api::cassandra::CassandraDatacenter;
use k8ssandra_e2e::{FleetConfig, LocalCluster};
use kube::{
    Api, ResourceExt,
    api::{Patch, PatchParams},
};

const SAMPLES: &str = "samples";
const FIXTURES: &str = "fixtures";

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// The YAML files of `dir` (relative to the workspace root), sorted.
fn yaml_files(dir: &str) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(workspace_root().join(dir))
        .expect("read directory")
        .map(|entry| entry.expect("entry").path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "yaml"))
        .collect();
    files.sort();
    assert!(!files.is_empty(), "no YAML in {dir}");
    files
}

async fn apply_file(cluster: &LocalCluster, namespace: &str, file: &Path) -> usize {
    let yaml = std::fs::read_to_string(file).expect("read YAML");
    let applied = cluster
        .apply_yaml(namespace, &yaml)
        .await
        .unwrap_or_else(|error| panic!("{} is refused: {error}", file.display()));
    assert!(!applied.is_empty(), "{} applied nothing", file.display());
    applied.len()
}

/// The message of an API server refusal, or a panic if the request succeeded.
fn refusal<T: std::fmt::Debug>(result: Result<T, kube::Error>) -> String {
    match result {
        Err(kube::Error::Api(status)) => {
            assert_eq!(status.code, 422, "refused as invalid: {status:?}");
            status.message
        }
        other => panic!("expected the API server to refuse, got {other:?}"),
    }
}

#[tokio::test]
async fn crds_samples_and_fixtures_apply_and_cel_rules_refuse_bad_changes() {
    let fleet = FleetConfig::new("crds_on_apiserver", 1)
        .nodes_per_cluster(1)
        .start()
        .await
        .expect("fleet starts with the CRDs installed");
    let cluster = fleet.cluster(0);
    let version = cluster
        .client()
        .apiserver_version()
        .await
        .expect("/version");
    let tools = k8ssandra_e2e::tools::Tools::locate().expect("tools");
    assert_eq!(
        version.git_version, tools.kubernetes_version,
        "/version reports the release"
    );
    for namespace in [SAMPLES, FIXTURES, "k8ssandra-operator", "cass"] {
        cluster
            .create_namespace(namespace)
            .await
            .expect("namespace");
    }

    let mut applied = 0;
    for file in yaml_files("config/samples") {
        applied += apply_file(cluster, SAMPLES, &file).await;
    }
    for file in yaml_files("crates/api/tests/fixtures") {
        applied += apply_file(cluster, FIXTURES, &file).await;
    }
    eprintln!("{applied} sample and fixture objects applied");

    // An invalid sample: the three-rack datacenter with two racks of the same name.
    let sample = std::fs::read_to_string(
        workspace_root().join("config/samples/cassandra-datacenter-three-racks.yaml"),
    )
    .expect("sample");
    let duplicate_racks = sample
        .replace("name: dc1", "name: dc-duplicate-racks")
        .replace("- name: rack2", "- name: rack1");
    let error = cluster
        .apply_yaml(SAMPLES, &duplicate_racks)
        .await
        .expect_err("duplicate rack names are refused");
    let message = match error {
        k8ssandra_e2e::HarnessError::Kube(error) => refusal::<()>(Err(error)),
        other => panic!("unexpected error {other}"),
    };
    assert!(message.contains("rack names must be unique"), "{message}");
    let datacenters: Api<CassandraDatacenter> = Api::namespaced(cluster.client(), SAMPLES);
    assert!(
        datacenters
            .get_opt("dc-duplicate-racks")
            .await
            .expect("get")
            .is_none()
    );

    // Changes to the applied sample that CEL refuses, each leaving the object as it was.
    let stored = datacenters.get("dc1").await.expect("dc1 from the sample");
    let params = PatchParams::default();
    let racks = |names: [&str; 3]| {
        let racks: Vec<_> = names
            .iter()
            .map(|name| serde_json::json!({ "name": name }))
            .collect();
        serde_json::json!({ "spec": { "racks": racks } })
    };
    let renamed = racks(["rack1", "rack9", "rack3"]);
    let message = refusal(
        datacenters
            .patch("dc1", &params, &Patch::Merge(&renamed))
            .await,
    );
    assert!(
        message.contains("new racks can only be added after the existing ones"),
        "{message}"
    );
    let reordered = racks(["rack2", "rack1", "rack3"]);
    let message = refusal(
        datacenters
            .patch("dc1", &params, &Patch::Merge(&reordered))
            .await,
    );
    assert!(
        message.contains("racks cannot be renamed or reordered"),
        "{message}"
    );

    // The size of the data volumes is the operator's to judge against the live volumes (so that
    // a refused grow can be set back); admission lets it through.
    let shrink = serde_json::json!({ "spec": { "storageConfig": { "cassandraDataVolumeClaimSpec": {
        "resources": { "requests": { "storage": "1Gi" } } } } } });
    datacenters
        .patch(
            "dc1",
            &PatchParams::default().dry_run(),
            &Patch::Merge(&shrink),
        )
        .await
        .expect("a smaller storage request is admitted");

    let rename = serde_json::json!({ "spec": { "clusterName": "another-cluster" } });
    let message = refusal(
        datacenters
            .patch("dc1", &params, &Patch::Merge(&rename))
            .await,
    );
    assert!(message.contains("clusterName"), "{message}");

    let zero = serde_json::json!({ "spec": { "size": 0 } });
    let message = refusal(
        datacenters
            .patch("dc1", &params, &Patch::Merge(&zero))
            .await,
    );
    assert!(message.contains("spec.size"), "{message}");

    let after = datacenters.get("dc1").await.expect("dc1");
    assert_eq!(
        after.spec, stored.spec,
        "refused changes left dc1 as it was"
    );
    assert_eq!(after.resource_version(), stored.resource_version());
}
