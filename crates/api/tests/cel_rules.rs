//! Every CEL admission rule, evaluated client-side with Kubernetes' CEL libraries: each refuses the
//! change it is written for, with its message, and lets the valid change through.

// Test helpers fail loudly on malformed fixtures.
#![allow(clippy::expect_used)]

use k8ssandra_api::{
    cassandra::CassandraDatacenter, control::CassandraTask, k8ssandra::K8ssandraCluster,
};
use kube::core::cel::{ErrorKind, ValidationErrors};
use serde_json::{Value, json};

fn from<T: serde::de::DeserializeOwned>(value: Value) -> T {
    serde_json::from_value(value).expect("test object parses")
}

/// Asserts that `result` holds exactly one rule failure, whose message contains `message`.
fn assert_refused(result: Result<(), ValidationErrors>, message: &str) {
    let errors = result.expect_err("the change should be refused").into_vec();
    assert!(
        errors
            .iter()
            .all(|e| matches!(e.kind, ErrorKind::ValidationFailure)),
        "expected rule failures only, got {errors:?}"
    );
    assert!(
        errors.iter().any(|e| e.message.contains(message)),
        "expected a failure saying {message:?}, got {errors:?}"
    );
}

fn assert_accepted(result: Result<(), ValidationErrors>) {
    if let Err(errors) = result {
        panic!("expected the change to be accepted, got {errors}");
    }
}

fn cassdc(spec_changes: Value) -> CassandraDatacenter {
    let mut spec = json!({
        "clusterName": "demo",
        "serverType": "cassandra",
        "serverVersion": "4.1.5",
        "size": 3,
        "racks": [{"name": "r1"}, {"name": "r2"}, {"name": "r3"}],
        "storageConfig": {"cassandraDataVolumeClaimSpec": {
            "storageClassName": "standard",
            "accessModes": ["ReadWriteOnce"],
            "resources": {"requests": {"storage": "5Gi"}},
        }},
    });
    merge_json(&mut spec, spec_changes);
    from(json!({
        "apiVersion": "cassandra.datastax.com/v1beta1",
        "kind": "CassandraDatacenter",
        "metadata": {"name": "dc1"},
        "spec": spec,
    }))
}

/// Overwrites keys of `base` with those of `changes`, recursively; `null` removes a key.
fn merge_json(base: &mut Value, changes: Value) {
    match (base, changes) {
        (Value::Object(base), Value::Object(changes)) => {
            for (key, value) in changes {
                if value.is_null() {
                    base.remove(&key);
                } else {
                    merge_json(base.entry(key).or_insert(Value::Null), value);
                }
            }
        }
        (base, changes) => *base = changes,
    }
}

#[test]
fn a_plain_datacenter_passes_every_rule() {
    assert_accepted(cassdc(json!({})).validate_cel());
    assert_accepted(cassdc(json!({})).validate_cel_update(&cassdc(json!({}))));
}

#[test]
fn datacenter_identity_fields_are_immutable() {
    let old = cassdc(json!({}));
    assert_refused(
        cassdc(json!({"clusterName": "other"})).validate_cel_update(&old),
        "clusterName is immutable",
    );
    assert_refused(
        cassdc(json!({"datacenterName": "east"})).validate_cel_update(&old),
        "datacenterName is immutable",
    );
    assert_refused(
        cassdc(json!({"superuserSecretName": "admin"})).validate_cel_update(&old),
        "superuserSecretName is immutable",
    );
    assert_refused(
        cassdc(json!({"serviceAccount": "sa"})).validate_cel_update(&old),
        "serviceAccount is immutable",
    );
    let resources =
        json!({"requests": {"cpu": 1, "memory": "4Gi"}, "limits": {"cpu": 1, "memory": "4Gi"}});
    assert_refused(
        cassdc(json!({"allowMultipleNodesPerWorker": true, "resources": resources}))
            .validate_cel_update(&cassdc(json!({"resources": resources}))),
        "allowMultipleNodesPerWorker is immutable",
    );
    let named = cassdc(json!({"datacenterName": "east", "superuserSecretName": "admin"}));
    assert_accepted(
        cassdc(json!({"datacenterName": "east", "superuserSecretName": "admin", "size": 6}))
            .validate_cel_update(&named),
    );
}

#[test]
fn several_nodes_per_worker_need_resources() {
    assert_refused(
        cassdc(json!({"allowMultipleNodesPerWorker": true})).validate_cel(),
        "requires cpu and memory requests and limits",
    );
    assert_refused(
        cassdc(json!({"allowMultipleNodesPerWorker": true, "resources": {"requests": {"cpu": 1, "memory": "1Gi"}, "limits": {"cpu": 1}}}))
            .validate_cel(),
        "requires cpu and memory requests and limits",
    );
    assert_accepted(
        cassdc(json!({"allowMultipleNodesPerWorker": true, "resources": {"requests": {"cpu": 1, "memory": "1Gi"}, "limits": {"cpu": 1, "memory": "1Gi"}}}))
            .validate_cel(),
    );
}

#[test]
fn config_files_must_fit_the_server() {
    assert_refused(
        cassdc(json!({"config": {"dse-yaml": {}}})).validate_cel(),
        "dse-yaml is only valid with serverType dse",
    );
    assert_accepted(
        cassdc(json!({"serverType": "dse", "serverVersion": "6.8.50", "config": {"dse-yaml": {}}}))
            .validate_cel(),
    );
    assert_refused(
        cassdc(json!({"config": {"jvm-options": {}}})).validate_cel(),
        "jvm-options is only valid with Cassandra 3.x",
    );
    assert_accepted(
        cassdc(json!({"serverVersion": "3.11.17", "config": {"jvm-options": {}}})).validate_cel(),
    );
    assert_refused(
        cassdc(json!({"serverVersion": "3.11.17", "config": {"jvm-server-options": {}}}))
            .validate_cel(),
        "jvm-server-options is not valid with Cassandra 3.x",
    );
    assert_accepted(cassdc(json!({"config": {"jvm-server-options": {}}})).validate_cel());
}

#[test]
fn rack_names_are_unique() {
    assert_refused(
        cassdc(json!({"racks": [{"name": "r1"}, {"name": "r1"}]})).validate_cel(),
        "rack names must be unique",
    );
}

#[test]
fn racks_can_only_be_appended() {
    let old = cassdc(json!({}));
    assert_refused(
        cassdc(json!({"racks": [{"name": "r2"}, {"name": "r1"}, {"name": "r3"}]}))
            .validate_cel_update(&old),
        "racks cannot be renamed or reordered",
    );
    assert_refused(
        cassdc(json!({"racks": [{"name": "r0"}, {"name": "r1"}, {"name": "r2"}, {"name": "r3"}]}))
            .validate_cel_update(&old),
        "new racks can only be added after the existing ones",
    );
    assert_refused(
        cassdc(json!({"racks": [{"name": "r1"}, {"name": "renamed"}, {"name": "r3"}]}))
            .validate_cel_update(&old),
        "new racks can only be added after the existing ones",
    );
    assert_accepted(
        cassdc(json!({"size": 4, "racks": [{"name": "r1"}, {"name": "r2"}, {"name": "r3"}, {"name": "r4"}]})).validate_cel_update(&old),
    );
    // A rack that was scaled down is removed; the others keep their order.
    assert_accepted(
        cassdc(json!({"size": 2, "racks": [{"name": "r1"}, {"name": "r3"}]}))
            .validate_cel_update(&old),
    );
}

#[test]
fn data_volumes_keep_their_class_and_may_be_set_back() {
    let old = cassdc(json!({}));
    assert_refused(
        cassdc(json!({"storageConfig": {"cassandraDataVolumeClaimSpec": {"storageClassName": "fast"}}})).validate_cel_update(&old),
        "storage class of cassandraDataVolumeClaimSpec is immutable",
    );
    // The size is judged by the operator against the live volumes, so that a refused grow can
    // be undone.
    assert_accepted(
        cassdc(json!({"storageConfig": {"cassandraDataVolumeClaimSpec": {"resources": {"requests": {"storage": "4Gi"}}}}}))
            .validate_cel_update(&old),
    );
    assert_accepted(
        cassdc(json!({"storageConfig": {"cassandraDataVolumeClaimSpec": {"resources": {"requests": {"storage": "10Gi"}}}}}))
            .validate_cel_update(&old),
    );
}

#[test]
fn an_additional_volume_is_a_claim_or_a_source() {
    let both = json!({"storageConfig": {"additionalVolumes": [{
        "name": "extra", "mountPath": "/extra",
        "pvcSpec": {"accessModes": ["ReadWriteOnce"]},
        "volumeSource": {"emptyDir": {}},
    }]}});
    assert_refused(
        cassdc(both).validate_cel(),
        "exactly one of pvcSpec and volumeSource",
    );
    let neither =
        json!({"storageConfig": {"additionalVolumes": [{"name": "extra", "mountPath": "/extra"}]}});
    assert_refused(
        cassdc(neither).validate_cel(),
        "exactly one of pvcSpec and volumeSource",
    );
    let one = json!({"storageConfig": {"additionalVolumes": [{"name": "extra", "mountPath": "/extra", "volumeSource": {"emptyDir": {}}}]}});
    assert_accepted(cassdc(one).validate_cel());
}

#[test]
fn management_api_auth_is_insecure_or_manual() {
    let both = json!({"managementApiAuth": {"insecure": {}, "manual": {"clientSecretName": "c", "serverSecretName": "s"}}});
    assert_refused(cassdc(both).validate_cel(), "insecure or manual, not both");
    assert_accepted(cassdc(json!({"managementApiAuth": {"insecure": {}}})).validate_cel());
}

#[test]
fn service_metadata_cannot_use_the_reserved_prefix() {
    let reserved = json!({"additionalServiceConfig": {"dcService": {"additionalLabels": {"cassandra.datastax.com/cluster": "x"}}}});
    assert_refused(
        cassdc(reserved).validate_cel(),
        "reserved prefix cassandra.datastax.com/",
    );
    let reserved = json!({"additionalServiceConfig": {"seedService": {"additionalAnnotations": {"cassandra.datastax.com/x": "y"}}}});
    assert_refused(
        cassdc(reserved).validate_cel(),
        "reserved prefix cassandra.datastax.com/",
    );
    let fine = json!({"additionalServiceConfig": {"dcService": {"additionalLabels": {"team": "storage"}}}});
    assert_accepted(cassdc(fine).validate_cel());
}

#[test]
fn a_task_runs_one_job() {
    let task = |jobs: Value| -> CassandraTask {
        from(json!({
            "apiVersion": "control.k8ssandra.io/v1alpha1",
            "kind": "CassandraTask",
            "metadata": {"name": "t"},
            "spec": {"datacenter": {"name": "dc1"}, "jobs": jobs},
        }))
    };
    let job = json!({"name": "c", "command": "cleanup"});
    assert_refused(
        task(json!([job, job])).validate_cel(),
        "a task runs exactly one job",
    );
    assert_accepted(task(json!([job])).validate_cel());
}

fn k8c(name: &str, cassandra_changes: Value) -> K8ssandraCluster {
    let mut cassandra = json!({
        "serverVersion": "4.0.1",
        "storageConfig": {"cassandraDataVolumeClaimSpec": {
            "storageClassName": "standard",
            "accessModes": ["ReadWriteOnce"],
            "resources": {"requests": {"storage": "5Gi"}},
        }},
        "datacenters": [
            {"metadata": {"name": "dc1"}, "k8sContext": "kind-k8ssandra-1", "size": 3},
            {"metadata": {"name": "dc2"}, "k8sContext": "kind-k8ssandra-2", "size": 3},
        ],
    });
    merge_json(&mut cassandra, cassandra_changes);
    from(json!({
        "apiVersion": "k8ssandra.io/v1alpha1",
        "kind": "K8ssandraCluster",
        "metadata": {"name": name},
        "spec": {"cassandra": cassandra},
    }))
}

fn dc(name: &str, extra: Value) -> Value {
    let mut dc = json!({"metadata": {"name": name}, "size": 3});
    merge_json(&mut dc, extra);
    dc
}

#[test]
fn a_plain_cluster_passes_every_rule() {
    assert_accepted(k8c("demo", json!({})).validate_cel());
    assert_accepted(k8c("demo", json!({})).validate_cel_update(&k8c("demo", json!({}))));
}

#[test]
fn the_cassandra_cluster_name_is_immutable() {
    let old = k8c("demo", json!({}));
    assert_refused(
        k8c("demo", json!({"clusterName": "other"})).validate_cel_update(&old),
        "cluster name",
    );
    // Spelling out the default name changes nothing.
    assert_accepted(k8c("demo", json!({"clusterName": "demo"})).validate_cel_update(&old));
    let named = k8c("demo", json!({"clusterName": "Prod Cluster"}));
    assert_refused(
        k8c("demo", json!({})).validate_cel_update(&named),
        "cluster name",
    );
}

#[test]
fn datacenter_names_are_unique() {
    let twice = json!({"datacenters": [dc("dc1", json!({})), dc("dc1", json!({}))]});
    assert_refused(
        k8c("demo", twice).validate_cel(),
        "datacenter names (metadata.name) must be unique",
    );
}

#[test]
fn datacenters_are_not_added_and_removed_at_once() {
    let old = k8c("demo", json!({}));
    let swapped = json!({"datacenters": [dc("dc1", json!({})), dc("dc3", json!({}))]});
    assert_refused(
        k8c("demo", swapped).validate_cel_update(&old),
        "cannot be added and removed in the same change",
    );
    let added =
        json!({"datacenters": [dc("dc1", json!({})), dc("dc2", json!({})), dc("dc3", json!({}))]});
    assert_accepted(k8c("demo", added).validate_cel_update(&old));
    let removed = json!({"datacenters": [dc("dc1", json!({}))]});
    assert_accepted(k8c("demo", removed).validate_cel_update(&old));
}

#[test]
fn a_datacenters_cassandra_name_is_immutable() {
    let old = k8c("demo", json!({}));
    let renamed = json!({"datacenters": [dc("dc1", json!({"datacenterName": "east"})), dc("dc2", json!({}))]});
    assert_refused(
        k8c("demo", renamed).validate_cel_update(&old),
        "datacenterName of an existing datacenter is immutable",
    );
    let new_dc = json!({"datacenters": [dc("dc1", json!({})), dc("dc2", json!({})), dc("dc3", json!({"datacenterName": "west"}))]});
    assert_accepted(k8c("demo", new_dc).validate_cel_update(&old));
}

#[test]
fn cluster_level_storage_keeps_its_class() {
    let old = k8c("demo", json!({}));
    let class =
        json!({"storageConfig": {"cassandraDataVolumeClaimSpec": {"storageClassName": "fast"}}});
    assert_refused(
        k8c("demo", class).validate_cel_update(&old),
        "storage class of cassandraDataVolumeClaimSpec is immutable",
    );
    let smaller = json!({"storageConfig": {"cassandraDataVolumeClaimSpec": {"resources": {"requests": {"storage": "1Gi"}}}}});
    assert_accepted(k8c("demo", smaller).validate_cel_update(&old));
    let larger = json!({"storageConfig": {"cassandraDataVolumeClaimSpec": {"resources": {"requests": {"storage": "50Gi"}}}}});
    assert_accepted(k8c("demo", larger).validate_cel_update(&old));
}

#[test]
fn a_datacenters_rack_names_are_unique() {
    let twice =
        json!({"datacenters": [dc("dc1", json!({"racks": [{"name": "r1"}, {"name": "r1"}]}))]});
    assert_refused(
        k8c("demo", twice).validate_cel(),
        "rack names must be unique",
    );
}

#[test]
fn storage_and_version_are_required_at_one_level() {
    let no_storage = json!({"storageConfig": null, "datacenters": [dc("dc1", json!({}))]});
    assert_refused(
        k8c("demo", no_storage).validate_cel(),
        "storageConfig must be set",
    );
    let storage_per_dc =
        json!({"storageConfig": null, "datacenters": [dc("dc1", json!({"storageConfig": {}}))]});
    assert_accepted(k8c("demo", storage_per_dc).validate_cel());
    let no_version = json!({"serverVersion": null, "datacenters": [dc("dc1", json!({}))]});
    assert_refused(
        k8c("demo", no_version).validate_cel(),
        "serverVersion must be set",
    );
    let version_per_dc = json!({"serverVersion": null, "datacenters": [dc("dc1", json!({"serverVersion": "4.0.1"}))]});
    assert_accepted(k8c("demo", version_per_dc).validate_cel());
}

#[test]
fn cluster_level_racks_follow_the_rack_rules() {
    let old = k8c("demo", json!({"racks": [{"name": "r1"}, {"name": "r2"}]}));
    assert_refused(
        k8c("demo", json!({"racks": [{"name": "r2"}, {"name": "r1"}]})).validate_cel_update(&old),
        "racks cannot be renamed or reordered",
    );
    assert_accepted(
        k8c(
            "demo",
            json!({"racks": [{"name": "r1"}, {"name": "r2"}, {"name": "r3"}]}),
        )
        .validate_cel_update(&old),
    );
}
