//! The operators' own validation reports every problem, each with the path of the field at fault,
//! and accepts what is valid.

// Test helpers fail loudly on malformed fixtures.
#![allow(clippy::expect_used)]

use k8ssandra_api::{
    cassandra::CassandraDatacenter,
    k8ssandra::K8ssandraCluster,
    validation::{FieldError, validate_datacenter, validate_k8ssandra_cluster},
};
use serde_json::{Value, json};

fn k8c(annotations: Value, cassandra: Value) -> K8ssandraCluster {
    serde_json::from_value(json!({
        "apiVersion": "k8ssandra.io/v1alpha1",
        "kind": "K8ssandraCluster",
        "metadata": {"name": "demo", "annotations": annotations},
        "spec": {"cassandra": cassandra},
    }))
    .expect("test object parses")
}

fn storage() -> Value {
    json!({"cassandraDataVolumeClaimSpec": {"storageClassName": "standard", "accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "5Gi"}}}})
}

fn valid_cassandra(datacenters: Value) -> Value {
    json!({"serverVersion": "4.0.1", "storageConfig": storage(), "datacenters": datacenters})
}

fn cluster_errors(k8c: &K8ssandraCluster, contexts: Option<&[String]>) -> Vec<FieldError> {
    validate_k8ssandra_cluster(k8c, contexts)
        .err()
        .map(|e| e.0)
        .unwrap_or_default()
}

/// Asserts that exactly the given paths are reported, each message containing its text.
fn assert_problems(errors: &[FieldError], expected: &[(&str, &str)]) {
    assert_eq!(errors.len(), expected.len(), "got {errors:?}");
    for (path, text) in expected {
        assert!(
            errors
                .iter()
                .any(|e| e.path == *path && e.message.contains(text)),
            "expected {path}: ...{text}..., got {errors:?}"
        );
    }
}

#[test]
fn a_valid_cluster_passes() {
    let contexts = vec!["kind-k8ssandra-1".to_owned()];
    let ok = k8c(
        json!({}),
        valid_cassandra(
            json!([{"metadata": {"name": "dc1"}, "k8sContext": "kind-k8ssandra-1", "size": 3}]),
        ),
    );
    assert_problems(&cluster_errors(&ok, Some(&contexts)), &[]);
}

#[test]
fn a_cluster_without_cassandra_or_datacenters_is_reported() {
    let mut none = k8c(json!({}), json!({}));
    none.spec.cassandra = None;
    assert_problems(
        &cluster_errors(&none, None),
        &[("spec.cassandra", "is required")],
    );
    assert_problems(
        &cluster_errors(&k8c(json!({}), valid_cassandra(json!([]))), None),
        &[("spec.cassandra.datacenters", "at least one")],
    );
}

#[test]
fn every_problem_is_reported_with_its_path() {
    let contexts = vec!["kind-k8ssandra-1".to_owned()];
    let bad = k8c(
        json!({"k8ssandra.io/autoupdate-spec": "sometimes"}),
        json!({
            "clusterName": "!!!",
            "datacenters": [
                {"metadata": {"name": "DC_1", "namespace": "Bad_NS"}, "k8sContext": "kind-k8ssandra-9", "size": 3, "serverVersion": "2.1.0"},
                {"metadata": {"name": "dc2"}, "size": 3, "storageConfig": {"cassandraDataVolumeClaimSpec": {}}, "softPodAntiAffinity": true},
                {"metadata": {"name": "dc2"}, "size": 1, "serverVersion": "4.0.1", "storageConfig": storage(),
                 "config": {"cassandraYaml": {"commitlog_sync_period_in_ms": 1, "commitlog_sync_batch_window_in_ms": 2}}},
            ],
        }),
    );
    assert_problems(
        &cluster_errors(&bad, Some(&contexts)),
        &[
            (
                "metadata.annotations[k8ssandra.io/autoupdate-spec]",
                "must be \"once\" or \"always\"",
            ),
            ("spec.cassandra.clusterName", "no characters usable"),
            (
                "spec.cassandra.datacenters[0].metadata.name",
                "not a DNS-1035 label",
            ),
            (
                "spec.cassandra.datacenters[0].metadata.namespace",
                "not a valid namespace",
            ),
            (
                "spec.cassandra.datacenters[0].k8sContext",
                "no ClientConfig provides the context \"kind-k8ssandra-9\"",
            ),
            (
                "spec.cassandra.datacenters[0].serverVersion",
                "cassandra 2.1.0 is not supported",
            ),
            ("spec.cassandra.datacenters[0].storageConfig", "is required"),
            ("spec.cassandra.datacenters[1].serverVersion", "is required"),
            (
                "spec.cassandra.datacenters[1].storageConfig.cassandraDataVolumeClaimSpec.accessModes",
                "is required",
            ),
            (
                "spec.cassandra.datacenters[1].storageConfig.cassandraDataVolumeClaimSpec.resources.requests.storage",
                "is required",
            ),
            (
                "spec.cassandra.datacenters[1].softPodAntiAffinity",
                "requires resources",
            ),
            (
                "spec.cassandra.datacenters[2].metadata.name",
                "used by another datacenter",
            ),
            (
                "spec.cassandra.datacenters[2].config.cassandraYaml",
                "cannot both be set",
            ),
        ],
    );
}

#[test]
fn cluster_level_settings_satisfy_every_datacenter() {
    let ok = k8c(
        json!({"k8ssandra.io/autoupdate-spec": "always"}),
        json!({
            "serverVersion": "4.0.1", "storageConfig": storage(), "softPodAntiAffinity": true,
            "resources": {"requests": {"memory": "1Gi"}},
            "datacenters": [{"metadata": {"name": "dc1"}, "size": 3}],
        }),
    );
    assert_problems(&cluster_errors(&ok, None), &[]);
}

#[test]
fn long_names_that_break_statefulset_names_are_reported() {
    let rack = "r".repeat(50);
    let long = k8c(
        json!({}),
        valid_cassandra(
            json!([{"metadata": {"name": "dc1"}, "size": 3, "racks": [{"name": "ok"}, {"name": rack}]}]),
        ),
    );
    assert_problems(
        &cluster_errors(&long, None),
        &[(
            "spec.cassandra.datacenters[0].racks[1].name",
            "more than 60",
        )],
    );
    let long_dc = "d".repeat(55);
    let default_rack = k8c(
        json!({}),
        valid_cassandra(json!([{"metadata": {"name": long_dc}, "size": 3}])),
    );
    assert_problems(
        &cluster_errors(&default_rack, None),
        &[(
            "spec.cassandra.datacenters[0].metadata.name",
            "more than 60",
        )],
    );
}

#[test]
fn server_versions_must_match_the_distribution() {
    for (server_type, version, ok) in [
        ("cassandra", "3.11.17", true),
        ("cassandra", "3.0.29", false),
        ("cassandra", "5.0.2", true),
        ("dse", "6.8.50", true),
        ("dse", "5.1.0", false),
        ("hcd", "1.2.0", true),
        ("hcd", "4.0.1", false),
        ("cassandra", "4.0", false),
    ] {
        let cluster = k8c(
            json!({}),
            json!({"serverType": server_type, "serverVersion": version, "storageConfig": storage(), "datacenters": [{"metadata": {"name": "dc1"}, "size": 1}]}),
        );
        assert_eq!(
            cluster_errors(&cluster, None).is_empty(),
            ok,
            "{server_type} {version}"
        );
    }
}

fn cassdc(annotations: Value, spec_changes: Value) -> CassandraDatacenter {
    let mut spec = json!({
        "clusterName": "demo", "serverType": "cassandra", "serverVersion": "4.1.5", "size": 3,
        "storageConfig": storage(),
    });
    for (key, value) in spec_changes.as_object().expect("object") {
        spec[key] = value.clone();
    }
    serde_json::from_value(json!({
        "apiVersion": "cassandra.datastax.com/v1beta1",
        "kind": "CassandraDatacenter",
        "metadata": {"name": "dc1", "annotations": annotations},
        "spec": spec,
    }))
    .expect("test object parses")
}

fn dc_errors(dc: &CassandraDatacenter) -> Vec<FieldError> {
    validate_datacenter(dc)
        .err()
        .map(|e| e.0)
        .unwrap_or_default()
}

#[test]
fn a_valid_datacenter_passes() {
    assert_problems(
        &dc_errors(&cassdc(
            json!({"cassandra.datastax.com/autoupdate-spec": "once"}),
            json!({}),
        )),
        &[],
    );
}

#[test]
fn every_datacenter_problem_is_reported_with_its_path() {
    let bad = cassdc(
        json!({"cassandra.datastax.com/autoupdate-spec": "never"}),
        json!({
            "clusterName": "__",
            "serverVersion": "4.0",
            "size": 0,
            "storageConfig": {
                "additionalVolumes": [
                    {"name": "a", "mountPath": "/x"},
                    {"name": "b", "mountPath": "/x", "volumeSource": {"emptyDir": {}}},
                ],
            },
            "racks": [{"name": "r1"}, {"name": "r1"}],
            "config": {"cassandra-yaml": "not-an-object"},
            "allowMultipleNodesPerWorker": true,
            "users": [{"secretName": "", "superuser": false}],
            "additionalSeeds": [" "],
        }),
    );
    assert_problems(
        &dc_errors(&bad),
        &[
            (
                "metadata.annotations[cassandra.datastax.com/autoupdate-spec]",
                "must be \"once\" or \"always\"",
            ),
            ("spec.clusterName", "no characters usable"),
            ("spec.serverVersion", "not a version"),
            ("spec.size", "at least 1"),
            (
                "spec.storageConfig.cassandraDataVolumeClaimSpec",
                "is required",
            ),
            (
                "spec.storageConfig.additionalVolumes[0]",
                "exactly one of pvcSpec and volumeSource",
            ),
            (
                "spec.storageConfig.additionalVolumes[1].mountPath",
                "mounted twice",
            ),
            ("spec.racks[1].name", "used by another rack"),
            ("spec.config.cassandra-yaml", "must be an object"),
            (
                "spec.resources",
                "requires cpu and memory requests and limits",
            ),
            ("spec.users[0].secretName", "must name a Secret"),
            ("spec.additionalSeeds[0]", "IP address or a host name"),
        ],
    );
}

#[test]
fn errors_read_as_path_and_message() {
    let err = validate_datacenter(&cassdc(json!({}), json!({"size": 0}))).expect_err("invalid");
    assert_eq!(err.to_string(), "spec.size: must be at least 1, is 0");
}

#[test]
fn an_existing_datacenter_keeps_its_storage_and_rack_order() {
    use k8ssandra_api::validation::validate_k8ssandra_cluster_update;
    let cluster = |dc: Value| {
        k8c(
            json!({}),
            json!({"serverVersion": "4.0.1", "storageConfig": storage(), "datacenters": [dc]}),
        )
    };
    let old = cluster(
        json!({"metadata": {"name": "dc1"}, "size": 3, "racks": [{"name": "r1"}, {"name": "r2"}]}),
    );
    let change = |dc: Value| {
        validate_k8ssandra_cluster_update(&old, &cluster(dc))
            .err()
            .map(|e| e.0)
            .unwrap_or_default()
    };

    let ok = change(
        json!({"metadata": {"name": "dc1"}, "size": 4, "racks": [{"name": "r1"}, {"name": "r2"}, {"name": "r3"}],
        "storageConfig": {"cassandraDataVolumeClaimSpec": {"resources": {"requests": {"storage": "6Gi"}}}}}),
    );
    assert_problems(&ok, &[]);

    let bad = change(
        json!({"metadata": {"name": "dc1"}, "size": 3, "racks": [{"name": "r0"}, {"name": "r1"}, {"name": "r2"}],
        "storageConfig": {"cassandraDataVolumeClaimSpec": {"storageClassName": "fast", "resources": {"requests": {"storage": "5000Mi"}}}}}),
    );
    assert_problems(
        &bad,
        &[
            (
                "spec.cassandra.datacenters[0].storageConfig.cassandraDataVolumeClaimSpec.storageClassName",
                "cannot change from \"standard\" to \"fast\"",
            ),
            (
                "spec.cassandra.datacenters[0].storageConfig.cassandraDataVolumeClaimSpec.resources.requests.storage",
                "cannot shrink from 5Gi to 5000Mi",
            ),
            (
                "spec.cassandra.datacenters[0].racks",
                "were [r1, r2], now [r0, r1, r2]",
            ),
        ],
    );
    // A new datacenter has nothing to compare with.
    let new_dc = k8c(
        json!({}),
        json!({"serverVersion": "4.0.1", "storageConfig": storage(), "datacenters": [
            {"metadata": {"name": "dc1"}, "size": 3, "racks": [{"name": "r1"}, {"name": "r2"}]},
            {"metadata": {"name": "dc2"}, "size": 3, "racks": [{"name": "b"}, {"name": "a"}]},
        ]}),
    );
    assert!(validate_k8ssandra_cluster_update(&old, &new_dc).is_ok());
}

#[test]
fn what_the_operator_could_not_act_on_is_reported_before_it_writes() {
    let mut deep = json!(1);
    for _ in 0..40 {
        deep = json!({ "a": deep });
    }
    let bad = cassdc(
        json!({}),
        json!({
            "racks": [{"name": "r1"}, {"name": "R1"}, {"name": "rack_1"}, {"name": "rack-1"}, {"name": "rack.2"}],
            "config": {"cassandra-yaml": {"deep": deep}},
            "additionalSeeds": ["10.0.0.1", "seed.example.com", "not a host!"],
            "podTemplateSpec": {
                "metadata": {"labels": {"cassandra.datastax.com/seed-node": "true"}},
                "spec": {"containers": [{"name": "cassandra", "ports": [{"name": "mgmt-api", "containerPort": 8081}]}]},
            },
        }),
    );
    assert_problems(
        &dc_errors(&bad),
        &[
            ("spec.racks[1].name", "name the same rack once cleaned up"),
            ("spec.racks[3].name", "name the same rack once cleaned up"),
            ("spec.racks[4].name", "dots"),
            ("spec.config", "nests 42 levels deep"),
            ("spec.additionalSeeds[2]", "IP address or a host name"),
            (
                "spec.podTemplateSpec.metadata.labels[cassandra.datastax.com/seed-node]",
                "the operator's own label",
            ),
            (
                "spec.podTemplateSpec.spec.containers[cassandra].ports",
                "may not move or rename it",
            ),
        ],
    );
    let big = cassdc(
        json!({}),
        json!({"config": {"cassandra-yaml": {"blob": "x".repeat(300 * 1024)}}}),
    );
    assert_problems(
        &dc_errors(&big),
        &[("spec.config", "more than the 256 KiB")],
    );
}
