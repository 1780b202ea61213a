//! The bad-input suite: more than a hundred careless or hostile inputs across every kind, each
//! with the verdict a user should get (refused at admission with its message, pruned, or
//! reported in status with an Event), while a healthy datacenter runs beside them. After each
//! case no pod or volume claim of the healthy datacenter was touched; after all of them the
//! operator still brings up a new datacenter, and its memory is back near its idle figure.
#![allow(clippy::expect_used)]

use std::{collections::BTreeMap, time::Duration};

use k8s_openapi::api::{
    apps::v1::StatefulSet,
    core::v1::{PersistentVolumeClaim, Service},
    events::v1::Event,
};
use k8ssandra_api::{cassandra::CassandraDatacenter, control::CassandraTask, labels};
use k8ssandra_e2e::{
    scenario::{NAMESPACE, Scenario},
    wait,
};
use kube::{
    Api, ResourceExt,
    api::{DeleteParams, ListParams},
};
use serde_json::{Value, json};

const LIMIT: Duration = Duration::from_secs(60);

/// What a user should get.
#[derive(Clone, Debug)]
enum Verdict {
    /// Refused at admission; the API server's message contains this.
    Refused(&'static str),
    /// Admitted with this field of `spec` dropped.
    Pruned(&'static str),
    /// A datacenter: `Valid=False` with this reason, and a Warning Event with it.
    Invalid(&'static str),
    /// A task: `Failed=True` with this reason, and a Warning Event with it.
    TaskFailed(&'static str),
    /// A task: waiting (`Running=False`) with this reason.
    TaskPending(&'static str),
}

/// One input.
struct Case {
    name: String,
    /// The object to create (with `kind`), or a merge patch of dc1's spec (`kind` absent).
    input: Value,
    verdict: Verdict,
}

fn case(name: impl Into<String>, input: Value, verdict: Verdict) -> Case {
    Case {
        name: name.into(),
        input,
        verdict,
    }
}

/// Merges `changes` into `base` (objects key by key; anything else replaced; null removes).
fn merge(base: &mut Value, changes: Value) {
    match (base, changes) {
        (Value::Object(base), Value::Object(changes)) => {
            for (key, value) in changes {
                if value.is_null() {
                    base.remove(&key);
                } else {
                    merge(base.entry(key).or_insert(Value::Null), value);
                }
            }
        }
        (base, changes) => *base = changes,
    }
}

/// A datacenter `name` of Cassandra cluster `suite` (none of its cases may make anything), with
/// `spec` merged in.
fn datacenter(name: &str, spec: Value) -> Value {
    let mut dc = json!({
        "apiVersion": "cassandra.datastax.com/v1beta1",
        "kind": "CassandraDatacenter",
        "metadata": { "name": name },
        "spec": {
            "clusterName": "suite",
            "serverType": "cassandra",
            "serverVersion": "4.1.5",
            "size": 1,
            "storageConfig": { "cassandraDataVolumeClaimSpec": {
                "storageClassName": "standard",
                "accessModes": ["ReadWriteOnce"],
                "resources": { "requests": { "storage": "1Gi" } } } }
        }
    });
    merge(&mut dc["spec"], spec);
    dc
}

/// A task `name` on dc1, with `spec` merged in.
fn task(name: &str, spec: Value) -> Value {
    let mut task = json!({
        "apiVersion": "control.k8ssandra.io/v1alpha1",
        "kind": "CassandraTask",
        "metadata": { "name": name },
        "spec": {
            "datacenter": { "name": "dc1" },
            "jobs": [{ "name": "j", "command": "flush" }]
        }
    });
    merge(&mut task["spec"], spec);
    task
}

fn cluster(name: &str, cassandra: Value) -> Value {
    let mut k8c = json!({
        "apiVersion": "k8ssandra.io/v1alpha1",
        "kind": "K8ssandraCluster",
        "metadata": { "name": name },
        "spec": { "cassandra": {
            "serverVersion": "4.1.5",
            "storageConfig": { "cassandraDataVolumeClaimSpec": {
                "accessModes": ["ReadWriteOnce"],
                "resources": { "requests": { "storage": "1Gi" } } } },
            "datacenters": [{ "metadata": { "name": "dc1" }, "size": 3 }]
        } }
    });
    merge(&mut k8c["spec"]["cassandra"], cassandra);
    k8c
}

fn client_config(name: &str, spec: Value) -> Value {
    let mut config = json!({
        "apiVersion": "config.k8ssandra.io/v1beta1",
        "kind": "ClientConfig",
        "metadata": { "name": name },
        "spec": { "contextName": "remote", "kubeConfigSecret": { "name": "remote-kubeconfig" } }
    });
    merge(&mut config["spec"], spec);
    config
}

fn k8ssandra_task(name: &str, spec: Value) -> Value {
    let mut task = json!({
        "apiVersion": "control.k8ssandra.io/v1alpha1",
        "kind": "K8ssandraTask",
        "metadata": { "name": name },
        "spec": { "cluster": { "name": "demo" }, "template": { "jobs": [{ "name": "j", "command": "flush" }] } }
    });
    merge(&mut task["spec"], spec);
    task
}

fn replicated_secret(name: &str, target: Value) -> Value {
    json!({
        "apiVersion": "replication.k8ssandra.io/v1alpha1",
        "kind": "ReplicatedSecret",
        "metadata": { "name": name },
        "spec": {
            "selector": { "matchLabels": { "app": "x" } },
            "replicationTargets": [target]
        }
    })
}

fn nested(depth: usize) -> Value {
    let mut value = json!(1);
    for _ in 0..depth {
        value = json!({ "a": value });
    }
    value
}

fn storage(size: &str) -> Value {
    json!({ "storageConfig": { "cassandraDataVolumeClaimSpec": { "resources": { "requests": { "storage": size } } } } })
}

#[allow(clippy::too_many_lines)]
fn cases() -> Vec<Case> {
    use Verdict::{Invalid, Pruned, Refused, TaskFailed, TaskPending};
    let mut out = Vec::new();
    let mut dc = |name: &str, spec: Value, verdict: Verdict| {
        let object = format!("dc-{name}");
        out.push(case(object.clone(), datacenter(&object, spec), verdict));
    };
    // CassandraDatacenter, new objects, refused at admission.
    dc("size-zero", json!({ "size": 0 }), Refused("spec.size"));
    dc("size-negative", json!({ "size": -1 }), Refused("spec.size"));
    dc(
        "size-huge",
        json!({ "size": 1001 }),
        Refused("less than or equal to 1000"),
    );
    dc(
        "size-int32",
        json!({ "size": 2_147_483_648_u64 }),
        Refused("spec.size"),
    );
    dc(
        "size-text",
        json!({ "size": "three" }),
        Refused("spec.size"),
    );
    dc(
        "version-short",
        json!({ "serverVersion": "4.1" }),
        Refused("spec.serverVersion"),
    );
    dc(
        "version-unanchored",
        json!({ "serverVersion": "x4.1.5y" }),
        Refused("spec.serverVersion"),
    );
    dc(
        "version-ancient",
        json!({ "serverVersion": "2.1.0" }),
        Refused("spec.serverVersion"),
    );
    dc(
        "server-type",
        json!({ "serverType": "mysql" }),
        Refused("spec.serverType"),
    );
    dc(
        "cluster-short",
        json!({ "clusterName": "a" }),
        Refused("spec.clusterName"),
    );
    dc(
        "cluster-missing",
        json!({ "clusterName": null }),
        Refused("clusterName"),
    );
    dc(
        "storage-missing",
        json!({ "storageConfig": null }),
        Refused("storageConfig"),
    );
    dc(
        "racks-twice",
        json!({ "racks": [{ "name": "r1" }, { "name": "r1" }] }),
        Refused("rack names must be unique"),
    );
    dc(
        "rack-short",
        json!({ "racks": [{ "name": "r" }] }),
        Refused("spec.racks[0].name"),
    );
    let many: Vec<Value> = (0..33)
        .map(|i| json!({ "name": format!("rack{i}") }))
        .collect();
    dc(
        "racks-many",
        json!({ "racks": many }),
        Refused("spec.racks"),
    );
    dc(
        "cpu-words",
        json!({ "resources": { "requests": { "cpu": "lots" } } }),
        Refused("resources.requests.cpu"),
    );
    dc(
        "memory-negative",
        json!({ "resources": { "requests": { "memory": "-1Gi" } } }),
        Refused("resources.requests.memory"),
    );
    dc(
        "memory-unit",
        json!({ "resources": { "limits": { "memory": "5Gx" } } }),
        Refused("resources.limits.memory"),
    );
    dc(
        "storage-negative",
        storage("-1Gi"),
        Refused("requests.storage"),
    );
    dc(
        "logger-cpu",
        json!({ "systemLoggerResources": { "limits": { "cpu": "fast" } } }),
        Refused("systemLoggerResources"),
    );
    dc(
        "label-reserved",
        json!({ "additionalLabels": { "cassandra.datastax.com/seed-node": "true" } }),
        Refused("operator's own labels"),
    );
    dc(
        "label-managed-by",
        json!({ "additionalLabels": { "app.kubernetes.io/managed-by": "me" } }),
        Refused("operator's own labels"),
    );
    let seeds: Vec<String> = (0..65).map(|i| format!("10.0.0.{i}")).collect();
    dc(
        "seeds-many",
        json!({ "additionalSeeds": seeds }),
        Refused("spec.additionalSeeds"),
    );
    dc(
        "node-port-int32",
        json!({ "networking": { "nodePort": { "native": 99_999_999_999_u64 } } }),
        Refused("networking.nodePort.native"),
    );
    dc(
        "canary-negative",
        json!({ "canaryUpgradeCount": -1 }),
        Refused("canaryUpgradeCount"),
    );
    dc(
        "ready-seconds-negative",
        json!({ "minReadySeconds": -5 }),
        Refused("minReadySeconds"),
    );
    dc(
        "auth-both",
        json!({ "managementApiAuth": { "insecure": {}, "manual": { "clientSecretName": "a", "serverSecretName": "b" } } }),
        Refused("insecure or manual, not both"),
    );
    dc(
        "dse-yaml",
        json!({ "config": { "dse-yaml": { "a": 1 } } }),
        Refused("only valid with serverType dse"),
    );
    dc(
        "jvm-options-4",
        json!({ "config": { "jvm-options": { "a": 1 } } }),
        Refused("use jvm-server-options"),
    );
    dc(
        "multiple-per-worker",
        json!({ "allowMultipleNodesPerWorker": true }),
        Refused("requires cpu and memory"),
    );
    dc(
        "volume-both",
        json!({ "storageConfig": { "additionalVolumes": [{ "name": "v", "mountPath": "/v",
        "pvcSpec": { "accessModes": ["ReadWriteOnce"] }, "volumeSource": { "emptyDir": {} } }] } }),
        Refused("exactly one of pvcSpec and volumeSource"),
    );
    dc(
        "seed-service-label",
        json!({ "additionalServiceConfig": { "seedService": { "additionalLabels": { "cassandra.datastax.com/x": "y" } } } }),
        Refused("reserved prefix"),
    );
    dc(
        "container-port-int32",
        json!({ "podTemplateSpec": { "spec": { "containers": [{ "name": "cassandra",
        "ports": [{ "containerPort": 99_999_999_999_u64 }] }] } } }),
        Refused("containerPort"),
    );
    dc(
        "empty-dir-size",
        json!({ "storageConfig": { "additionalVolumes": [{ "name": "v", "mountPath": "/v",
        "volumeSource": { "emptyDir": { "sizeLimit": "big" } } }] } }),
        Refused("sizeLimit"),
    );
    // Unknown fields: server-side apply refuses them.
    dc(
        "typo",
        json!({ "sizee": 5 }),
        Refused(".spec.sizee: field not declared in schema"),
    );
    dc(
        "unknown-section",
        json!({ "backups": { "enabled": true } }),
        Refused(".spec.backups: field not declared in schema"),
    );
    // Admitted, then reported by the operator before it writes anything.
    dc(
        "racks-case",
        json!({ "size": 2, "racks": [{ "name": "r1" }, { "name": "R1" }] }),
        Invalid("InvalidSpec"),
    );
    dc(
        "racks-underscore",
        json!({ "size": 2, "racks": [{ "name": "rack_1" }, { "name": "rack-1" }] }),
        Invalid("InvalidSpec"),
    );
    dc(
        "rack-dots",
        json!({ "racks": [{ "name": "rack.1" }] }),
        Invalid("InvalidSpec"),
    );
    dc(
        "names-long",
        json!({ "clusterName": "c".repeat(50), "racks": [{ "name": "rack-with-a-long-name" }] }),
        Invalid("InvalidSpec"),
    );
    dc(
        "config-big",
        json!({ "config": { "cassandra-yaml": { "blob": "x".repeat(300 * 1024) } } }),
        Invalid("InvalidSpec"),
    );
    dc(
        "config-deep",
        json!({ "config": { "cassandra-yaml": { "deep": nested(40) } } }),
        Invalid("InvalidSpec"),
    );
    dc(
        "seed-garbage",
        json!({ "additionalSeeds": ["not a host!"] }),
        Invalid("InvalidSpec"),
    );
    dc(
        "template-seed-label",
        json!({ "podTemplateSpec": { "metadata": { "labels": { "cassandra.datastax.com/seed-node": "true" } } } }),
        Invalid("InvalidSpec"),
    );
    dc(
        "dse-version",
        json!({ "serverType": "dse", "serverVersion": "5.0.2" }),
        Invalid("InvalidSpec"),
    );
    dc(
        "cassandra-6",
        json!({ "serverVersion": "6.8.50" }),
        Invalid("InvalidSpec"),
    );
    dc(
        "config-secret",
        json!({ "configSecret": "my-config" }),
        Invalid("UnsupportedField"),
    );
    dc(
        "superuser-missing",
        json!({ "superuserSecretName": "nobody-made-this" }),
        Invalid("SuperuserSecretMissing"),
    );
    dc(
        "superuser-keyless",
        json!({ "superuserSecretName": "suite-keyless" }),
        Invalid("SuperuserSecretInvalid"),
    );
    dc(
        "auth-secrets-missing",
        json!({ "managementApiAuth": { "manual": { "clientSecretName": "none-c", "serverSecretName": "none-s" } } }),
        Invalid("ManagementApiAuthInvalid"),
    );
    dc(
        "service-account",
        json!({ "serviceAccountName": "Not_A_Name" }),
        Invalid("RefusedByApiServer"),
    );
    dc(
        "node-port-range",
        json!({ "networking": { "nodePort": { "native": 99999 } } }),
        Invalid("RefusedByApiServer"),
    );
    dc(
        "limit-below-request",
        json!({ "resources": { "requests": { "memory": "2Gi" }, "limits": { "memory": "1Gi" } } }),
        Invalid("RefusedByApiServer"),
    );
    dc(
        "init-container-name",
        json!({ "podTemplateSpec": { "spec": { "containers": [{ "name": "cassandra" }],
            "initContainers": [{ "name": "Bad_Name", "image": "busybox" }] } } }),
        Invalid("RefusedByApiServer"),
    );
    dc(
        "mgmt-port-moved",
        json!({ "podTemplateSpec": { "spec": { "containers": [{ "name": "cassandra",
            "ports": [{ "name": "mgmt-api", "containerPort": 8081 }] }] } } }),
        Invalid("InvalidSpec"),
    );
    dc(
        "mgmt-port-renamed",
        json!({ "podTemplateSpec": { "spec": { "containers": [{ "name": "cassandra",
            "ports": [{ "name": "api", "containerPort": 8080 }] }] } } }),
        Invalid("InvalidSpec"),
    );
    dc(
        "template-no-containers",
        json!({ "podTemplateSpec": { "spec": { "initContainers": [{ "name": "x", "image": "busybox" }] } } }),
        Refused("podTemplateSpec.spec.containers: Required value"),
    );
    dc(
        "toleration",
        json!({ "tolerations": [{ "key": "k", "operator": "Bogus" }] }),
        Invalid("RefusedByApiServer"),
    );
    dc(
        "node-selector-key",
        json!({ "nodeSelector": { "bad key": "v" } }),
        Invalid("RefusedByApiServer"),
    );
    dc("storage-zero", storage("0"), Invalid("RefusedByApiServer"));
    dc(
        "label-key",
        json!({ "additionalLabels": { "bad key": "v" } }),
        Invalid("RefusedByApiServer"),
    );
    dc(
        "label-value-long",
        json!({ "additionalLabels": { "team": "v".repeat(100) } }),
        Invalid("RefusedByApiServer"),
    );
    dc(
        "annotation-key",
        json!({ "additionalAnnotations": { "bad key!": "v" } }),
        Invalid("RefusedByApiServer"),
    );
    dc(
        "affinity-zone",
        json!({ "racks": [{ "name": "r1", "affinity": { "nodeAffinity": { "requiredDuringSchedulingIgnoredDuringExecution": {
        "nodeSelectorTerms": [{ "matchExpressions": [{ "key": "zone", "operator": "Nope" }] }] } } } }] }),
        Invalid("RefusedByApiServer"),
    );
    dc(
        "volume-mount-path",
        json!({ "storageConfig": { "additionalVolumes": [{ "name": "v", "mountPath": "", "volumeSource": { "emptyDir": {} } }] } }),
        Invalid("RefusedByApiServer"),
    );

    // CassandraTask.
    let mut tk = |name: &str, spec: Value, verdict: Verdict| {
        let object = format!("task-{name}");
        out.push(case(object.clone(), task(&object, spec), verdict));
    };
    tk(
        "two-jobs",
        json!({ "jobs": [{ "name": "a", "command": "flush" }, { "name": "b", "command": "flush" }] }),
        Refused("exactly one job"),
    );
    tk(
        "command",
        json!({ "jobs": [{ "name": "a", "command": "nuke" }] }),
        Refused("command"),
    );
    tk(
        "year-9999",
        json!({ "scheduledTime": "9999-12-31T23:59:59Z" }),
        Refused("before the year 9000"),
    );
    tk(
        "time-words",
        json!({ "scheduledTime": "tomorrow" }),
        Refused("scheduledTime"),
    );
    tk(
        "pods-zero",
        json!({ "maxConcurrentPods": 0 }),
        Refused("maxConcurrentPods"),
    );
    tk(
        "retries-negative",
        json!({ "retries": -1 }),
        Refused("retries"),
    );
    tk(
        "ttl-negative",
        json!({ "ttlSecondsAfterFinished": -1 }),
        Refused("ttlSecondsAfterFinished"),
    );
    tk(
        "ttl-int32",
        json!({ "ttlSecondsAfterFinished": 2_147_483_648_u64 }),
        Refused("ttlSecondsAfterFinished"),
    );
    tk(
        "policy",
        json!({ "concurrencyPolicy": "Sometimes" }),
        Refused("concurrencyPolicy"),
    );
    tk(
        "jobs-arg-type",
        json!({ "jobs": [{ "name": "a", "command": "cleanup", "args": { "jobs": "many" } }] }),
        Refused("args.jobs"),
    );
    tk(
        "other-namespace",
        json!({ "datacenter": { "name": "dc1", "namespace": "kube-system" }, "jobs": [{ "name": "r", "command": "restart" }] }),
        TaskFailed("CrossNamespace"),
    );
    tk(
        "no-datacenter",
        json!({ "datacenter": { "name": "" } }),
        TaskFailed("InvalidDatacenter"),
    );
    tk("no-jobs", json!({ "jobs": [] }), TaskFailed("NoJob"));
    tk(
        "replace-no-pod",
        json!({ "jobs": [{ "name": "r", "command": "replacenode" }] }),
        TaskFailed("InvalidArguments"),
    );
    tk(
        "compact",
        json!({ "jobs": [{ "name": "c", "command": "compact" }] }),
        TaskFailed("UnsupportedCommand"),
    );
    tk(
        "pod-unknown",
        json!({ "jobs": [{ "name": "r", "command": "restart", "args": { "pod_name": "nope-0" } }] }),
        TaskFailed("NoPods"),
    );
    tk(
        "datacenter-unknown",
        json!({ "datacenter": { "name": "ghost" } }),
        TaskPending("DatacenterNotFound"),
    );

    // K8ssandraCluster (admission; the control plane is not built yet).
    let mut k8c = |name: &str, cassandra: Value, verdict: Verdict| {
        let object = format!("k8c-{name}");
        out.push(case(object.clone(), cluster(&object, cassandra), verdict));
    };
    k8c(
        "dc-twice",
        json!({ "datacenters": [{ "metadata": { "name": "dc1" }, "size": 1 }, { "metadata": { "name": "dc1" }, "size": 1 }] }),
        Refused("datacenter names (metadata.name) must be unique"),
    );
    k8c(
        "no-version",
        json!({ "serverVersion": null }),
        Refused("serverVersion"),
    );
    k8c(
        "racks-twice",
        json!({ "datacenters": [{ "metadata": { "name": "dc1" }, "size": 1, "racks": [{ "name": "r1" }, { "name": "r1" }] }] }),
        Refused("rack names must be unique"),
    );
    k8c(
        "size-int32",
        json!({ "datacenters": [{ "metadata": { "name": "dc1" }, "size": 2_147_483_648_u64 }] }),
        Refused("size"),
    );
    k8c(
        "gc",
        json!({ "config": { "jvmOptions": { "gc": "Parallel" } } }),
        Refused("gc"),
    );
    k8c(
        "heap-percent",
        json!({ "config": { "jvmOptions": { "gcG1InitiatingHeapOccupancyPercent": 150 } } }),
        Refused("gcG1InitiatingHeapOccupancyPercent"),
    );
    k8c(
        "cpu-words",
        json!({ "resources": { "requests": { "cpu": "lots" } } }),
        Refused("resources.requests.cpu"),
    );

    // ClientConfig.
    let mut cc = |name: &str, spec: Value, verdict: Verdict| {
        let object = format!("cc-{name}");
        out.push(case(object.clone(), client_config(&object, spec), verdict));
    };
    cc(
        "secret-unnamed",
        json!({ "kubeConfigSecret": { "name": null } }),
        Refused("kubeConfigSecret.name"),
    );
    cc(
        "secret-empty-name",
        json!({ "kubeConfigSecret": { "name": "" } }),
        Refused("kubeConfigSecret.name must name the Secret"),
    );
    cc(
        "secret-missing",
        json!({ "kubeConfigSecret": null }),
        Refused("kubeConfigSecret"),
    );
    cc(
        "context-long",
        json!({ "contextName": "c".repeat(300) }),
        Refused("contextName"),
    );

    // K8ssandraTask.
    let mut kt = |name: &str, spec: Value, verdict: Verdict| {
        let object = format!("ktask-{name}");
        out.push(case(object.clone(), k8ssandra_task(&object, spec), verdict));
    };
    kt(
        "policy",
        json!({ "dcConcurrencyPolicy": "Maybe" }),
        Refused("dcConcurrencyPolicy"),
    );
    kt(
        "two-jobs",
        json!({ "template": { "jobs": [{ "name": "a", "command": "flush" }, { "name": "b", "command": "flush" }] } }),
        Refused("exactly one job"),
    );
    kt(
        "year-9999",
        json!({ "template": { "scheduledTime": "9999-12-31T23:59:59Z" } }),
        Refused("before the year 9000"),
    );
    kt("no-cluster", json!({ "cluster": null }), Refused("cluster"));

    // ReplicatedSecret.
    let mut rs = |name: &str, target: Value, verdict: Verdict| {
        let object = format!("rs-{name}");
        out.push(case(
            object.clone(),
            replicated_secret(&object, target),
            verdict,
        ));
    };
    rs(
        "kube-system",
        json!({ "namespace": "kube-system" }),
        Refused("never replicated into kube-system"),
    );
    rs(
        "kube-public",
        json!({ "namespace": "kube-public" }),
        Refused("never replicated into kube-system"),
    );
    rs(
        "namespace-syntax",
        json!({ "namespace": "Bad_NS" }),
        Refused("namespace"),
    );
    rs(
        "prefix-escape",
        json!({ "targetPrefix": "../escape-" }),
        Refused("targetPrefix"),
    );
    rs(
        "prefix-upper",
        json!({ "targetPrefix": "UPPER-" }),
        Refused("targetPrefix"),
    );
    rs(
        "prefix-long",
        json!({ "targetPrefix": "p".repeat(201) }),
        Refused("targetPrefix"),
    );

    // Live changes of the healthy datacenter dc1: refused, or reported and set back.
    let mut live = |name: &str, spec: Value, verdict: Verdict| {
        out.push(case(format!("live-{name}"), spec, verdict));
    };
    // A typo in a merge patch (kubectl patch, an operator's client) is dropped, never stored.
    live("typo", json!({ "sizee": 5 }), Pruned("sizee"));
    live("replicas-typo", json!({ "stoped": true }), Pruned("stoped"));
    live(
        "cluster-name",
        json!({ "clusterName": "other" }),
        Refused("clusterName is immutable"),
    );
    live(
        "rack-renamed",
        json!({ "racks": [{ "name": "rack1" }, { "name": "renamed" }, { "name": "rack3" }] }),
        Refused("racks can only be added after the existing ones"),
    );
    live(
        "storage-class",
        json!({ "storageConfig": { "cassandraDataVolumeClaimSpec": { "storageClassName": "fast" } } }),
        Refused("storage class"),
    );
    live(
        "superuser-secret",
        json!({ "superuserSecretName": "another" }),
        Refused("superuserSecretName is immutable"),
    );
    live(
        "size-huge",
        json!({ "size": 5000 }),
        Refused("less than or equal to 1000"),
    );
    live(
        "version-words",
        json!({ "serverVersion": "banana" }),
        Refused("spec.serverVersion"),
    );
    live(
        "label-reserved",
        json!({ "additionalLabels": { "cassandra.datastax.com/rack": "x" } }),
        Refused("operator's own labels"),
    );
    live(
        "storage-grow",
        storage("10Gi"),
        Invalid("StorageChangeNotAllowed"),
    );
    live(
        "storage-shrink",
        storage("1Gi"),
        Invalid("StorageShrinkRefused"),
    );
    live(
        "service-account",
        json!({ "serviceAccountName": "Not_A_Name" }),
        Invalid("RefusedByApiServer"),
    );
    live(
        "seeds-garbage",
        json!({ "additionalSeeds": ["::not::an::ip::"] }),
        Invalid("InvalidSpec"),
    );
    live(
        "rack-removed",
        json!({ "racks": [
        { "name": "rack1", "nodeAffinityLabels": { "topology.kubernetes.io/zone": "zone-a" } },
        { "name": "rack2", "nodeAffinityLabels": { "topology.kubernetes.io/zone": "zone-b" } } ] }),
        Invalid("RackRemovedWithNodes"),
    );
    live(
        "memory-limit",
        json!({ "resources": { "requests": { "memory": "2Gi" }, "limits": { "memory": "1Gi" } } }),
        Invalid("RefusedByApiServer"),
    );
    out
}

/// Kind and plural of an object of the suite, for its API.
fn api_of(scenario: &Scenario, object: &Value) -> Api<kube::api::DynamicObject> {
    let kind = object["kind"].as_str().unwrap_or_default();
    let (group, version, plural) = match kind {
        "CassandraDatacenter" => ("cassandra.datastax.com", "v1beta1", "cassandradatacenters"),
        "CassandraTask" => ("control.k8ssandra.io", "v1alpha1", "cassandratasks"),
        "K8ssandraTask" => ("control.k8ssandra.io", "v1alpha1", "k8ssandratasks"),
        "K8ssandraCluster" => ("k8ssandra.io", "v1alpha1", "k8ssandraclusters"),
        "ClientConfig" => ("config.k8ssandra.io", "v1beta1", "clientconfigs"),
        "ReplicatedSecret" => ("replication.k8ssandra.io", "v1alpha1", "replicatedsecrets"),
        other => panic!("no API for {other}"),
    };
    let resource = kube::api::ApiResource {
        group: group.into(),
        version: version.into(),
        api_version: format!("{group}/{version}"),
        kind: kind.into(),
        plural: plural.into(),
    };
    Api::namespaced_with(scenario.cluster().client(), NAMESPACE, &resource)
}

/// What must never change while the suite runs: dc1's pods (by UID) and volume claims.
async fn healthy_state(scenario: &Scenario) -> (BTreeMap<String, String>, Vec<String>) {
    let pods = scenario
        .pods()
        .await
        .expect("pods")
        .into_iter()
        .filter(|p| p.labels().get(labels::DATACENTER).map(String::as_str) == Some("dc1"))
        .map(|p| (p.name_any(), p.uid().unwrap_or_default()))
        .collect();
    let claims = Api::<PersistentVolumeClaim>::namespaced(scenario.cluster().client(), NAMESPACE)
        .list(&ListParams::default().labels(&format!("{}=dc1", labels::DATACENTER)))
        .await
        .expect("claims")
        .items
        .iter()
        .map(ResourceExt::name_any)
        .collect();
    (pods, claims)
}

async fn has_warning(scenario: &Scenario, name: &str, reason: &str) -> bool {
    Api::<Event>::namespaced(scenario.cluster().client(), NAMESPACE)
        .list(&ListParams::default())
        .await
        .map(|list| {
            list.items.iter().any(|e| {
                e.reason.as_deref() == Some(reason)
                    && e.type_.as_deref() == Some("Warning")
                    && e.regarding.as_ref().and_then(|r| r.name.as_deref()) == Some(name)
            })
        })
        .unwrap_or(false)
}

fn condition_reason(status: &Value, type_: &str, status_value: &str) -> Option<String> {
    status["conditions"]
        .as_array()?
        .iter()
        .find(|c| c["type"] == type_ && c["status"] == status_value)
        .and_then(|c| c["reason"].as_str().map(str::to_owned))
}

/// Runs one case and returns what went wrong, if anything.
async fn run(scenario: &Scenario, case: &Case) -> Result<(), String> {
    let live = case.input.get("kind").is_none();
    let dcs = scenario.datacenters();
    if live {
        let before = dcs.get("dc1").await.map_err(|e| e.to_string())?;
        let result = scenario.patch_spec("dc1", case.input.clone()).await;
        return match (&case.verdict, result) {
            (Verdict::Refused(text), Err(error)) => {
                let after = dcs.get("dc1").await.map_err(|e| e.to_string())?;
                if !error.to_string().contains(text) {
                    Err(format!("refused, but not with {text:?}: {error}"))
                } else if after.metadata.generation != before.metadata.generation {
                    Err("refused, yet dc1 changed".into())
                } else {
                    Ok(())
                }
            }
            (Verdict::Pruned(field), Ok(_)) => {
                let after = dcs.get("dc1").await.map_err(|e| e.to_string())?;
                let stored = serde_json::to_value(&after.spec).map_err(|e| e.to_string())?;
                if stored.get(*field).is_some() {
                    Err(format!("{field} was stored"))
                } else if after.metadata.generation != before.metadata.generation {
                    Err("dc1 changed".into())
                } else {
                    Ok(())
                }
            }
            (Verdict::Invalid(reason), Ok(_)) => {
                let outcome = wait_invalid(scenario, "dc1", reason).await;
                // Set dc1's spec back as it was.
                let mut back = serde_json::to_value(&before.spec).map_err(|e| e.to_string())?;
                null_missing(&mut back, &case.input);
                scenario
                    .patch_spec("dc1", back)
                    .await
                    .map_err(|e| format!("setting dc1 back: {e}"))?;
                scenario
                    .wait_for("dc1", "dc1 valid again", |dc| {
                        k8ssandra_e2e::scenario::is_converged(dc, 3)
                    })
                    .await
                    .map_err(|e| e.to_string())?;
                outcome
            }
            (verdict, result) => Err(format!("expected {verdict:?}, got {result:?}")),
        };
    }

    let api = api_of(scenario, &case.input);
    let name = case.name.as_str();
    let applied = scenario
        .cluster()
        .apply_yaml(NAMESPACE, &case.input.to_string())
        .await;
    let outcome = match (&case.verdict, applied) {
        (Verdict::Refused(text), Err(error)) => {
            let exists = api
                .get_opt(name)
                .await
                .map_err(|e| e.to_string())?
                .is_some();
            if exists {
                Err("refused, yet stored".into())
            } else if error.to_string().contains(text) {
                Ok(())
            } else {
                Err(format!("refused, but not with {text:?}: {error}"))
            }
        }
        (Verdict::Pruned(field), Ok(_)) => {
            let stored = api.get(name).await.map_err(|e| e.to_string())?;
            if stored.data["spec"].get(*field).is_some() {
                Err(format!("{field} was stored"))
            } else {
                Ok(())
            }
        }
        (Verdict::Invalid(reason), Ok(_)) => wait_invalid(scenario, name, reason).await,
        (Verdict::TaskFailed(reason), Ok(_)) => {
            let tasks: Api<CassandraTask> = Api::namespaced(scenario.cluster().client(), NAMESPACE);
            let reason = (*reason).to_owned();
            let wanted = reason.clone();
            match wait::object(
                &tasks,
                name,
                "the task failed",
                LIMIT,
                move |t: &CassandraTask| {
                    let status = serde_json::to_value(&t.status).unwrap_or_default();
                    condition_reason(&status, "Failed", "True").as_deref() == Some(wanted.as_str())
                },
            )
            .await
            {
                Ok(_) if has_warning(scenario, name, &reason).await => {
                    // A finished task is a record: an edit is refused, not ignored.
                    let edit = json!({ "spec": { "retries": 2 } });
                    match tasks
                        .patch(
                            name,
                            &kube::api::PatchParams::default(),
                            &kube::api::Patch::Merge(&edit),
                        )
                        .await
                    {
                        Err(error)
                            if error
                                .to_string()
                                .contains("a finished task cannot be changed") =>
                        {
                            Ok(())
                        }
                        other => Err(format!("an edit of the finished task: {other:?}")),
                    }
                }
                Ok(_) => Err(format!("no Warning Event {reason}")),
                Err(error) => Err(error.to_string()),
            }
        }
        (Verdict::TaskPending(reason), Ok(_)) => {
            let tasks: Api<CassandraTask> = Api::namespaced(scenario.cluster().client(), NAMESPACE);
            let wanted = (*reason).to_owned();
            wait::object(
                &tasks,
                name,
                "the task waits",
                LIMIT,
                move |t: &CassandraTask| {
                    let status = serde_json::to_value(&t.status).unwrap_or_default();
                    condition_reason(&status, "Running", "False").as_deref()
                        == Some(wanted.as_str())
                },
            )
            .await
            .map(drop)
            .map_err(|e| e.to_string())
        }
        (verdict, result) => Err(format!("expected {verdict:?}, got {:?}", result.map(drop))),
    };
    if let Verdict::Invalid(_) = case.verdict {
        // Nothing may have been made for a datacenter that was never valid.
        let cluster = case.input["spec"]["clusterName"]
            .as_str()
            .unwrap_or_default();
        let selector = format!("{}={}", labels::CLUSTER, names_label(cluster));
        let made = Api::<StatefulSet>::namespaced(scenario.cluster().client(), NAMESPACE)
            .list(&ListParams::default().labels(&selector))
            .await
            .map_err(|e| e.to_string())?
            .items
            .len()
            + Api::<Service>::namespaced(scenario.cluster().client(), NAMESPACE)
                .list(&ListParams::default().labels(&selector))
                .await
                .map_err(|e| e.to_string())?
                .items
                .len();
        if made > 0 && outcome.is_ok() {
            return Err(format!(
                "{made} objects were made for an invalid datacenter"
            ));
        }
    }
    match api.delete(name, &DeleteParams::default()).await {
        Ok(_) | Err(kube::Error::Api(_)) => {}
        Err(error) => return Err(error.to_string()),
    }
    outcome
}

fn names_label(cluster: &str) -> String {
    k8ssandra_api::names::clean_label_value(cluster)
}

/// Sets to null, in `back`, every field `patch` set that `back` does not have, so that a merge
/// patch of `back` removes what the case added.
fn null_missing(back: &mut Value, patch: &Value) {
    let (Value::Object(back), Value::Object(patch)) = (back, patch) else {
        return;
    };
    for (key, value) in patch {
        match back.get_mut(key) {
            Some(existing) if existing.is_object() && value.is_object() => {
                null_missing(existing, value);
            }
            Some(_) => {}
            None => {
                back.insert(key.clone(), Value::Null);
            }
        }
    }
}

async fn wait_invalid(scenario: &Scenario, name: &str, reason: &'static str) -> Result<(), String> {
    let dcs: Api<CassandraDatacenter> = scenario.datacenters();
    let waited = wait::object(
        &dcs,
        name,
        &format!("Valid=False {reason}"),
        LIMIT,
        move |dc: &CassandraDatacenter| {
            let status = serde_json::to_value(&dc.status).unwrap_or_default();
            condition_reason(&status, "Valid", "False").as_deref() == Some(reason)
        },
    )
    .await;
    if let Err(error) = waited {
        let valid = dcs
            .get_status(name)
            .await
            .ok()
            .and_then(|dc| dc.status)
            .and_then(|s| s.conditions)
            .and_then(|c| c.into_iter().find(|c| c.type_ == "Valid"));
        return Err(format!("{error}; Valid is {valid:?}"));
    }
    if has_warning(scenario, name, reason).await {
        Ok(())
    } else {
        Err(format!("no Warning Event {reason}"))
    }
}

/// Resident memory of this process (the operator runs in it), in KiB.
fn rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|status| {
            status
                .lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        })
        .unwrap_or(0)
}

#[tokio::test]
async fn every_bad_input_is_refused_or_reported_and_the_healthy_datacenter_is_untouched() {
    let (scenario, _) = Scenario::with_sample("bad_input_suite")
        .await
        .expect("dc1 comes up");
    // A Secret without a password, for the keyless superuser case.
    let keyless = json!({ "apiVersion": "v1", "kind": "Secret", "metadata": { "name": "suite-keyless" },
        "stringData": { "username": "admin" } });
    scenario
        .cluster()
        .apply_yaml(NAMESPACE, &keyless.to_string())
        .await
        .expect("secret");
    tokio::time::sleep(Duration::from_secs(2)).await;
    let idle = rss_kib();
    let healthy = healthy_state(&scenario).await;

    let cases = cases();
    let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
    let mut failures = Vec::new();
    for case in &cases {
        let verdict = match case.verdict {
            Verdict::Refused(_) => "refused at admission",
            Verdict::Pruned(_) => "pruned at admission",
            Verdict::Invalid(_) | Verdict::TaskFailed(_) => "reported in status and an Event",
            Verdict::TaskPending(_) => "reported as waiting",
        };
        *counts.entry(verdict).or_default() += 1;
        if let Err(error) = run(&scenario, case).await {
            failures.push(format!("{}: {error}", case.name));
        }
        if healthy_state(&scenario).await != healthy {
            failures.push(format!("{}: touched a pod or claim of dc1", case.name));
            break;
        }
    }
    println!("bad-input cases: {} ({counts:?})", cases.len());
    assert!(
        failures.is_empty(),
        "{} failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
    assert!(cases.len() >= 80);

    // The operator still acts on new objects: a valid datacenter comes up beside dc1.
    let fresh = datacenter("dc-after", json!({ "clusterName": "cluster1" }));
    scenario
        .cluster()
        .apply_yaml(NAMESPACE, &fresh.to_string())
        .await
        .expect("applies");
    scenario
        .wait_converged("dc-after", 1)
        .await
        .expect("a datacenter made after the suite comes up");
    tokio::time::sleep(Duration::from_secs(2)).await;
    let after = rss_kib();
    println!("resident memory of the test process: idle {idle} KiB, after the suite {after} KiB");
    assert!(
        after < 2 * idle,
        "memory grew from {idle} KiB to {after} KiB"
    );
}
