//! The cluster-to-datacenter template merge follows upstream's rules: the datacenter wins, booleans
//! are three-state, maps merge by key, racks/containers/env/volumes merge by name, other lists are
//! replaced.

// Test helpers fail loudly on malformed fixtures.
#![allow(clippy::expect_used)]

use k8ssandra_api::{
    cassandra::ServerType,
    k8ssandra::K8ssandraCluster,
    merge::{ResolvedDatacenter, resolve_datacenters},
};
use serde_json::{Value, json};

fn resolve(cassandra: Value) -> Vec<ResolvedDatacenter> {
    let k8c: K8ssandraCluster = serde_json::from_value(json!({
        "apiVersion": "k8ssandra.io/v1alpha1",
        "kind": "K8ssandraCluster",
        "metadata": {"name": "demo"},
        "spec": {"cassandra": cassandra},
    }))
    .expect("cluster parses");
    resolve_datacenters(&k8c)
}

fn only(cassandra: Value) -> ResolvedDatacenter {
    resolve(cassandra)
        .into_iter()
        .next()
        .expect("one datacenter")
}

fn dc(extra: Value) -> Value {
    let mut dc = json!({"metadata": {"name": "dc1"}, "size": 3});
    dc.as_object_mut()
        .expect("object")
        .extend(extra.as_object().expect("object").clone());
    dc
}

#[test]
fn cluster_only_fields_are_copied_and_defaulted() {
    let resolved = only(json!({"datacenters": [dc(json!({"k8sContext": "kind-k8ssandra-1"}))]}));
    assert_eq!(resolved.cluster_name, "demo");
    assert_eq!(resolved.server_type, ServerType::Cassandra);
    assert_eq!(resolved.superuser_secret_name, "demo-superuser");
    assert_eq!(resolved.k8s_context, "kind-k8ssandra-1");
    assert_eq!(resolved.size, 3);
    assert!(!resolved.stopped);

    let resolved = only(json!({
        "clusterName": "Prod", "serverType": "dse", "superuserSecretRef": {"name": "admin"},
        "additionalSeeds": ["10.0.0.1"],
        "datacenters": [dc(json!({"stopped": true}))],
    }));
    assert_eq!(resolved.cluster_name, "Prod");
    assert_eq!(resolved.server_type, ServerType::Dse);
    assert_eq!(resolved.superuser_secret_name, "admin");
    assert_eq!(resolved.additional_seeds, vec!["10.0.0.1"]);
    assert!(resolved.stopped);
}

#[test]
fn the_datacenter_value_wins_and_an_unset_one_inherits() {
    let resolved = resolve(json!({
        "serverVersion": "4.0.1",
        "serverImage": "cluster-image",
        "datacenters": [dc(json!({"serverVersion": "4.0.12"})), {"metadata": {"name": "dc2"}, "size": 1}],
    }));
    assert_eq!(
        resolved[0].options.server_version.as_deref(),
        Some("4.0.12")
    );
    assert_eq!(
        resolved[0].options.server_image.as_deref(),
        Some("cluster-image")
    );
    assert_eq!(resolved[1].options.server_version.as_deref(), Some("4.0.1"));
}

#[test]
fn booleans_are_three_state() {
    let cluster_true = |dc_value: Value| {
        only(
            json!({"softPodAntiAffinity": true, "networking": {"hostNetwork": true}, "datacenters": [dc(dc_value)]}),
        )
    };
    let inherits = cluster_true(json!({}));
    assert_eq!(inherits.options.soft_pod_anti_affinity, Some(true));
    assert_eq!(
        inherits.options.networking.and_then(|n| n.host_network),
        Some(true)
    );
    let overrides =
        cluster_true(json!({"softPodAntiAffinity": false, "networking": {"hostNetwork": false}}));
    assert_eq!(overrides.options.soft_pod_anti_affinity, Some(false));
    assert_eq!(
        overrides.options.networking.and_then(|n| n.host_network),
        Some(false)
    );
}

#[test]
fn maps_merge_key_by_key() {
    let resolved = only(json!({
        "config": {
            "cassandraYaml": {"concurrent_reads": 16, "concurrent_writes": 16, "server_encryption_options": {"internode_encryption": "none", "protocol": "TLS"}},
            "jvmOptions": {"heap_initial_size": "1G", "heap_max_size": "1G", "additionalOptions": ["-Da=1", "-Db=2"]},
        },
        "resources": {"requests": {"cpu": "1", "memory": "2Gi"}},
        "metadata": {"labels": {"env": "prod", "team": "a"}, "commonLabels": {"x": "1"}},
        "datacenters": [dc(json!({
            "metadata": {"name": "dc1", "labels": {"team": "b"}},
            "config": {
                "cassandraYaml": {"concurrent_reads": 32, "server_encryption_options": {"internode_encryption": "all"}},
                "jvmOptions": {"heap_max_size": "2G", "additionalOptions": ["-Dc=3"]},
            },
            "resources": {"requests": {"memory": "4Gi"}},
        }))],
    }));
    let config = resolved.options.config.expect("config");
    assert_eq!(
        config.cassandra_yaml,
        Some(
            json!({"concurrent_reads": 32, "concurrent_writes": 16, "server_encryption_options": {"internode_encryption": "all", "protocol": "TLS"}})
        )
    );
    let jvm = config.jvm_options.expect("jvm options");
    assert_eq!(jvm.heap_initial_size.map(|q| q.0).as_deref(), Some("1G"));
    assert_eq!(jvm.heap_max_size.map(|q| q.0).as_deref(), Some("2G"));
    assert_eq!(
        jvm.additional_options,
        Some(vec!["-Dc=3".to_owned()]),
        "option lists are replaced, not merged"
    );
    let requests = resolved
        .options
        .resources
        .and_then(|r| r.requests)
        .expect("requests");
    assert_eq!(requests["cpu"].0, "1");
    assert_eq!(requests["memory"].0, "4Gi");
    let labels = resolved.meta.tags.labels.expect("labels");
    assert_eq!(labels["env"], "prod");
    assert_eq!(labels["team"], "b");
    assert_eq!(
        resolved.meta.tags.common_labels.expect("common labels")["x"],
        "1"
    );
}

#[test]
fn racks_merge_by_name() {
    let resolved = only(json!({
        "racks": [
            {"name": "r1", "nodeAffinityLabels": {"zone": "a", "disk": "ssd"}},
            {"name": "r2", "nodeAffinityLabels": {"zone": "b"}},
        ],
        "datacenters": [dc(json!({"racks": [
            {"name": "r2", "nodeAffinityLabels": {"zone": "b2"}},
            {"name": "r3", "zone": "c"},
        ]}))],
    }));
    let racks = resolved.options.racks.expect("racks");
    let names: Vec<&str> = racks.iter().map(|r| r.name.as_str()).collect();
    assert_eq!(names, ["r1", "r2", "r3"]);
    assert_eq!(
        racks[0].node_affinity_labels.as_ref().expect("labels")["disk"],
        "ssd"
    );
    assert_eq!(
        racks[1].node_affinity_labels.as_ref().expect("labels")["zone"],
        "b2"
    );
    assert_eq!(racks[2].zone.as_deref(), Some("c"));
}

#[test]
fn containers_merge_by_name_and_env_vars_are_replaced_whole() {
    let resolved = only(json!({
        "containers": [{
            "name": "cassandra",
            "env": [
                {"name": "A", "value": "cluster"},
                {"name": "B", "valueFrom": {"secretKeyRef": {"name": "s", "key": "k"}}},
            ],
            "volumeMounts": [{"name": "x", "mountPath": "/x"}],
        }],
        "initContainers": [{"name": "init", "image": "busybox:1"}],
        "datacenters": [dc(json!({
            "containers": [
                {"name": "cassandra", "env": [{"name": "B", "value": "literal"}, {"name": "C", "value": "new"}], "volumeMounts": [{"name": "y", "mountPath": "/x", "readOnly": true}]},
                {"name": "sidecar", "image": "busybox:2"},
            ],
            "initContainers": [{"name": "init", "image": "busybox:3"}],
        }))],
    }));
    let containers = resolved.options.containers.expect("containers");
    assert_eq!(containers.len(), 2);
    let env = containers[0].env.as_ref().expect("env");
    assert_eq!(env.len(), 3);
    assert_eq!(env[0].value.as_deref(), Some("cluster"));
    assert_eq!(env[1].value.as_deref(), Some("literal"));
    assert!(
        env[1].value_from.is_none(),
        "a variable never ends up with both value and valueFrom"
    );
    assert_eq!(env[2].name, "C");
    let mounts = containers[0].volume_mounts.as_ref().expect("mounts");
    assert_eq!(mounts.len(), 1, "volume mounts merge by mount path");
    assert_eq!(mounts[0].name, "y");
    assert_eq!(containers[1].name, "sidecar");
    assert_eq!(
        resolved.options.init_containers.expect("init")[0]
            .image
            .as_deref(),
        Some("busybox:3")
    );
}

#[test]
fn volumes_merge_by_name_and_sources_are_replaced_whole() {
    let resolved = only(json!({
        "extraVolumes": {
            "volumes": [{"name": "a", "configMap": {"name": "cm"}}, {"name": "b", "emptyDir": {}}],
            "pvcs": [{"name": "p", "mountPath": "/p", "pvcSpec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}}}],
        },
        "storageConfig": {"additionalVolumes": [{"name": "v", "mountPath": "/v", "volumeSource": {"configMap": {"name": "cm"}}}]},
        "datacenters": [dc(json!({
            "extraVolumes": {
                "volumes": [{"name": "a", "secret": {"secretName": "s"}}],
                "pvcs": [{"name": "p", "mountPath": "/p2", "pvcSpec": {"resources": {"requests": {"storage": "2Gi"}}}}],
            },
            "storageConfig": {"additionalVolumes": [{"name": "v", "mountPath": "/v", "volumeSource": {"emptyDir": {}}}]},
        }))],
    }));
    let extra = resolved.options.extra_volumes.expect("extra volumes");
    let volumes = extra.volumes.expect("volumes");
    assert_eq!(volumes.len(), 2);
    assert!(volumes[0].secret.is_some());
    assert!(
        volumes[0].config_map.is_none(),
        "a volume's source is replaced, not merged"
    );
    let pvc = &extra.pvcs.expect("pvcs")[0];
    assert_eq!(pvc.mount_path, "/p2");
    let spec = pvc.pvc_spec.as_ref().expect("pvc spec");
    assert_eq!(
        spec.access_modes.as_deref(),
        Some(&["ReadWriteOnce".to_owned()][..])
    );
    assert_eq!(
        spec.resources
            .as_ref()
            .and_then(|r| r.requests.as_ref())
            .expect("requests")["storage"]
            .0,
        "2Gi"
    );
    let additional = &resolved
        .options
        .storage_config
        .expect("storage")
        .additional_volumes
        .expect("volumes")[0];
    assert_eq!(
        serde_json::to_value(&additional.volume_source).expect("json"),
        json!({"emptyDir": {}})
    );
}

#[test]
fn tolerations_and_auth_are_replaced_not_merged() {
    let resolved = only(json!({
        "tolerations": [{"key": "a", "operator": "Exists"}, {"key": "b", "operator": "Exists"}],
        "managementApiAuth": {"manual": {"clientSecretName": "c", "serverSecretName": "s"}},
        "datacenters": [dc(json!({
            "tolerations": [{"key": "c", "operator": "Exists"}],
            "managementApiAuth": {"insecure": {}},
        }))],
    }));
    let tolerations = resolved.options.tolerations.expect("tolerations");
    assert_eq!(tolerations.len(), 1);
    assert_eq!(tolerations[0].key.as_deref(), Some("c"));
    let auth = resolved.options.management_api_auth.expect("auth");
    assert!(auth.insecure.is_some() && auth.manual.is_none());
}

#[test]
fn the_storage_claim_merges_deeply() {
    let resolved = only(json!({
        "storageConfig": {"cassandraDataVolumeClaimSpec": {"storageClassName": "standard", "accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "5Gi"}}}},
        "datacenters": [dc(json!({"storageConfig": {"cassandraDataVolumeClaimSpec": {"resources": {"requests": {"storage": "50Gi"}}}}}))],
    }));
    let claim = resolved
        .options
        .storage_config
        .and_then(|s| s.cassandra_data_volume_claim_spec)
        .expect("claim");
    assert_eq!(claim.storage_class_name.as_deref(), Some("standard"));
    assert_eq!(
        claim.resources.and_then(|r| r.requests).expect("requests")["storage"].0,
        "50Gi"
    );
}

#[test]
fn service_and_pod_metadata_merge_per_service() {
    let resolved = only(json!({
        "metadata": {"pods": {"labels": {"a": "1"}}, "services": {"dcService": {"labels": {"x": "1"}}, "seedService": {"annotations": {"s": "1"}}}},
        "datacenters": [dc(json!({"metadata": {"name": "dc1", "pods": {"labels": {"b": "2"}}, "services": {"dcService": {"labels": {"y": "2"}}}}}))],
    }));
    let pods = resolved
        .meta
        .tags
        .pods
        .and_then(|p| p.labels)
        .expect("pod labels");
    assert_eq!((pods["a"].as_str(), pods["b"].as_str()), ("1", "2"));
    let services = resolved.meta.tags.services.expect("services");
    let dc_labels = services
        .dc_service
        .and_then(|s| s.labels)
        .expect("dc service labels");
    assert_eq!(
        (dc_labels["x"].as_str(), dc_labels["y"].as_str()),
        ("1", "2")
    );
    assert!(services.seed_service.is_some());
}
