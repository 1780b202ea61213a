//! Focused properties of the builders: stable hashes, Kubernetes-valid names and labels for
//! awkward cluster names, owner references, and the errors a bad spec gets.

#![allow(clippy::expect_used, clippy::unwrap_used, clippy::panic)]

use k8s_openapi::{
    api::{apps::v1::StatefulSet, core::v1::EnvVar},
    apimachinery::pkg::apis::meta::v1::ObjectMeta,
};
use k8ssandra_api::{
    cassandra::{CassandraDatacenter, Rack},
    labels::annotations::CONFIG_HASH,
    names,
};
use k8ssandra_data_plane::build::{
    BuildError, hash,
    images::ImageConfig,
    pdb, services,
    statefulset::{self, rack_plan},
};

fn datacenter(yaml: &str) -> CassandraDatacenter {
    serde_yaml::from_str(yaml).expect("datacenter")
}

fn sample() -> CassandraDatacenter {
    datacenter(
        r#"
apiVersion: cassandra.datastax.com/v1beta1
kind: CassandraDatacenter
metadata: {name: dc1, namespace: ns, uid: abc}
spec:
  clusterName: "Test Cluster_A"
  serverType: cassandra
  serverVersion: "4.1.5"
  size: 3
  racks: [{name: Rack_One}, {name: r2}]
  config:
    cassandra-yaml: {num_tokens: 16}
  storageConfig:
    cassandraDataVolumeClaimSpec:
      storageClassName: standard
      accessModes: [ReadWriteOnce]
      resources: {requests: {storage: 1Gi}}
"#,
    )
}

fn first_sts(dc: &CassandraDatacenter, replicas: i32) -> StatefulSet {
    let rack = rack_plan(dc).remove(0).rack;
    statefulset::statefulset(dc, &rack, replicas, &ImageConfig::default()).unwrap()
}

fn sts_hash(sts: &StatefulSet) -> String {
    hash::stamped_hash(sts).unwrap().to_owned()
}

#[test]
fn the_same_spec_gives_the_same_hash() {
    let dc = sample();
    let a = first_sts(&dc, 2);
    let b = first_sts(&dc.clone(), 2);
    assert_eq!(sts_hash(&a), sts_hash(&b));
    assert_eq!(a, b);
    // The stamped hash is the hash of the object itself.
    assert_eq!(hash::statefulset_hash(&a).unwrap(), sts_hash(&a));
}

#[test]
fn a_config_change_changes_the_hash() {
    let dc = sample();
    let mut changed = dc.clone();
    changed.spec.config = Some(serde_json::json!({"cassandra-yaml": {"num_tokens": 8}}));
    assert_ne!(
        sts_hash(&first_sts(&dc, 2)),
        sts_hash(&first_sts(&changed, 2))
    );
}

#[test]
fn scaling_does_not_change_the_statefulset_hash() {
    let dc = sample();
    let mut bigger = dc.clone();
    bigger.spec.size = 6;
    let before = first_sts(&dc, 2);
    let after = first_sts(&bigger, 3);
    assert_eq!(before.spec.as_ref().unwrap().replicas, Some(2));
    assert_eq!(after.spec.as_ref().unwrap().replicas, Some(3));
    assert_eq!(sts_hash(&before), sts_hash(&after));
    // The budget does follow the size.
    assert_ne!(
        pdb::pod_disruption_budget(&dc).unwrap().spec,
        pdb::pod_disruption_budget(&bigger).unwrap().spec
    );
}

fn check_meta(meta: &ObjectMeta, owned: bool) {
    let name = meta.name.as_deref().unwrap();
    assert!(names::is_dns1123_subdomain(name), "bad name {name}");
    for (key, value) in meta.labels.iter().flatten() {
        assert!(
            names::is_label_value(value),
            "bad label {key}={value} on {name}"
        );
    }
    if owned {
        let owners = meta.owner_references.as_ref().unwrap();
        assert_eq!(owners.len(), 1, "{name}");
        assert_eq!(owners[0].kind, "CassandraDatacenter");
        assert_eq!(owners[0].uid, "abc");
        // The cluster's seed Service is shared: its owners are the datacenters, none the
        // controller.
        let shared = name.ends_with("-seed-service") && !name.ends_with("-additional-seed-service");
        assert_eq!(owners[0].controller, Some(!shared), "{name}");
    }
}

#[test]
fn awkward_names_are_cleaned_up_everywhere() {
    let dc = sample();
    let svcs = services::services(&dc, &[]).unwrap();
    let svc_names: Vec<&str> = svcs
        .iter()
        .map(|s| s.metadata.name.as_deref().unwrap())
        .collect();
    assert_eq!(
        svc_names,
        vec![
            "testcluster-a-dc1-service",
            "testcluster-a-seed-service",
            "testcluster-a-dc1-all-pods-service",
            "testcluster-a-dc1-additional-seed-service"
        ]
    );
    for svc in &svcs {
        check_meta(&svc.metadata, true);
        assert_eq!(
            svc.metadata.labels.as_ref().unwrap()["cassandra.datastax.com/cluster"],
            "TestCluster_A"
        );
    }
    for plan in rack_plan(&dc) {
        let sts = statefulset::statefulset(&dc, &plan.rack, 1, &ImageConfig::default()).unwrap();
        check_meta(&sts.metadata, true);
        let name = sts.metadata.name.clone().unwrap();
        assert!(name.len() <= names::MAX_STATEFULSET_NAME_LEN);
        let template = &sts.spec.as_ref().unwrap().template;
        check_meta(
            &ObjectMeta {
                name: Some("template".into()),
                ..template.metadata.clone().unwrap()
            },
            false,
        );
    }
    let first = first_sts(&dc, 1);
    assert_eq!(
        first.metadata.name.as_deref(),
        Some("testcluster-a-dc1-rack-one-sts")
    );
    assert_eq!(
        first.metadata.labels.as_ref().unwrap()["cassandra.datastax.com/rack"],
        "Rack_One"
    );
    check_meta(&pdb::pod_disruption_budget(&dc).unwrap().metadata, true);
}

#[test]
fn a_datacenter_not_read_from_the_api_cannot_own_children() {
    let mut dc = sample();
    dc.metadata.uid = None;
    assert!(matches!(
        services::datacenter_service(&dc),
        Err(BuildError::MissingMetadata("metadata.uid"))
    ));
}

#[test]
fn an_unknown_version_needs_a_server_image() {
    let mut dc = sample();
    dc.spec.server_version = "3.0.24".into();
    let rack = Rack {
        name: "Rack_One".into(),
        ..Rack::default()
    };
    let err = statefulset::statefulset(&dc, &rack, 1, &ImageConfig::default()).unwrap_err();
    assert!(
        matches!(err, BuildError::UnsupportedVersion { .. }),
        "{err}"
    );
    dc.spec.server_image = Some("me/cassandra:3.0.24".into());
    assert!(statefulset::statefulset(&dc, &rack, 1, &ImageConfig::default()).is_ok());
    assert!(matches!(
        statefulset::find_rack(&dc, "nope"),
        Err(BuildError::UnknownRack(_))
    ));
}

fn init_env(sts: &StatefulSet) -> Vec<EnvVar> {
    sts.spec
        .as_ref()
        .unwrap()
        .template
        .spec
        .as_ref()
        .unwrap()
        .init_containers
        .as_ref()
        .unwrap()
        .iter()
        .find(|c| c.name == "server-config-init")
        .unwrap()
        .env
        .clone()
        .unwrap()
}

#[test]
fn a_config_secret_is_read_from_the_copy_and_its_hash_rolls_the_pods() {
    let mut dc = sample();
    dc.spec.config = None;
    dc.spec.config_secret = Some("my-config".into());
    let rack = rack_plan(&dc).remove(0).rack;
    let err = statefulset::statefulset(&dc, &rack, 1, &ImageConfig::default()).unwrap_err();
    assert!(matches!(err, BuildError::MissingConfigHash));
    dc.metadata.annotations = Some([(CONFIG_HASH.to_owned(), "h1".to_owned())].into());
    let sts = first_sts(&dc, 1);
    let env = init_env(&sts);
    let data = env.iter().find(|e| e.name == "CONFIG_FILE_DATA").unwrap();
    let secret = data
        .value_from
        .as_ref()
        .unwrap()
        .secret_key_ref
        .as_ref()
        .unwrap();
    assert_eq!(secret.name, "testcluster-a-dc1-config");
    assert_eq!(secret.key, "config");
    assert!(
        env.iter()
            .any(|e| e.name == "CONFIG_HASH" && e.value.as_deref() == Some("h1"))
    );
    let mut rotated = dc.clone();
    rotated.metadata.annotations = Some([(CONFIG_HASH.to_owned(), "h2".to_owned())].into());
    assert_ne!(sts_hash(&sts), sts_hash(&first_sts(&rotated, 1)));
}

#[test]
fn the_stopped_datacenter_keeps_its_statefulsets_at_zero() {
    let mut dc = sample();
    dc.spec.stopped = Some(true);
    let all = statefulset::desired_statefulsets(&dc, &ImageConfig::default()).unwrap();
    assert_eq!(all.len(), 2);
    assert!(
        all.iter()
            .all(|s| s.spec.as_ref().unwrap().replicas == Some(0))
    );
}

#[test]
fn every_container_is_hardened_as_upstream_unless_the_template_says_otherwise() {
    let mut dc = sample();
    dc.spec.pod_template_spec = serde_json::from_value(serde_json::json!({
        "spec": { "containers": [
            { "name": "cassandra", "securityContext": { "allowPrivilegeEscalation": true } }
        ] }
    }))
    .ok();
    let rack = rack_plan(&dc).remove(0).rack;
    let sts = statefulset::statefulset(&dc, &rack, 1, &ImageConfig::default()).expect("sts");
    let spec = sts.spec.expect("spec").template.spec.expect("pod spec");
    let context = |c: &k8s_openapi::api::core::v1::Container| {
        let s = c.security_context.clone().unwrap_or_default();
        (s.allow_privilege_escalation, s.read_only_root_filesystem)
    };
    let init = spec.init_containers.clone().unwrap_or_default();
    assert!(!init.is_empty());
    for container in &init {
        assert_eq!(
            context(container),
            (Some(false), Some(true)),
            "{}",
            container.name
        );
    }
    let config_init = init
        .iter()
        .find(|c| c.name == "server-config-init")
        .expect("config init");
    assert!(
        config_init
            .env
            .iter()
            .flatten()
            .any(|e| e.name == "POD_NAME"),
        "POD_NAME in {:?}",
        config_init.env
    );
    for container in &spec.containers {
        match container.name.as_str() {
            // The template's own choice stays.
            "cassandra" => assert_eq!(context(container).0, Some(true)),
            "server-system-logger" => assert_eq!(context(container), (Some(false), Some(true))),
            other => panic!("unexpected container {other}"),
        }
    }
    // Without the template's say, the server container may not escalate either.
    let plain =
        statefulset::statefulset(&sample(), &rack, 1, &ImageConfig::default()).expect("sts");
    let plain = plain.spec.expect("spec").template.spec.expect("pod spec");
    let server = plain
        .containers
        .iter()
        .find(|c| c.name == "cassandra")
        .expect("server");
    assert_eq!(context(server).0, Some(false));
}
