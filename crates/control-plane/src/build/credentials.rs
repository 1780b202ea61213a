//! The credentials a K8ssandraCluster shares across its datacenters (pure): the superuser
//! Secret in its namespace, and the ReplicatedSecret that copies the cluster's Secrets into every
//! datacenter's namespace and cluster.

use std::collections::BTreeMap;

use k8s_openapi::{
    ByteString,
    api::core::v1::Secret,
    apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta, OwnerReference},
};
use k8ssandra_api::{
    k8ssandra::K8ssandraCluster,
    labels::{self, annotations},
    names,
    replication::{ReplicatedSecret, ReplicatedSecretSpec, ReplicationTarget},
};
use k8ssandra_reconcile::{
    hash,
    password::{PASSWORD_RANDOM_BYTES, password_from_random},
};
use kube::{Resource, ResourceExt};

use super::DesiredDatacenter;

/// Labels that select a cluster's Secrets for its ReplicatedSecret (upstream's), plus the
/// watched label that puts them in the control plane's Secret cache.
#[must_use]
pub fn replicated_labels(cluster: &K8ssandraCluster) -> BTreeMap<String, String> {
    let mut selected = selector_labels(cluster);
    selected.insert(labels::WATCHED.to_owned(), "true".to_owned());
    selected
}

fn selector_labels(cluster: &K8ssandraCluster) -> BTreeMap<String, String> {
    BTreeMap::from([
        (
            labels::REPLICATED_BY.to_owned(),
            labels::K8SSANDRA_CLUSTER_CONTROLLER.to_owned(),
        ),
        (
            labels::K8SSANDRA_CLUSTER_NAME.to_owned(),
            cluster.name_any(),
        ),
        (
            labels::K8SSANDRA_CLUSTER_NAMESPACE.to_owned(),
            cluster.namespace().unwrap_or_default(),
        ),
    ])
}

/// The controller reference of what the K8ssandraCluster owns in its own namespace.
#[must_use]
pub fn owner_reference(cluster: &K8ssandraCluster) -> Option<OwnerReference> {
    cluster.controller_owner_ref(&())
}

/// The generated superuser Secret (`<cluster>-superuser` unless the spec names another):
/// username `<cluster>-superuser`, the password made from `random`. It is owned by the
/// K8ssandraCluster; its copies in the datacenters' namespaces are the ReplicatedSecret's.
#[must_use]
pub fn superuser_secret(
    cluster: &K8ssandraCluster,
    random: &[u8; PASSWORD_RANDOM_BYTES],
) -> Secret {
    Secret {
        metadata: ObjectMeta {
            name: Some(cluster.superuser_secret_name()),
            namespace: cluster.namespace(),
            labels: Some(replicated_labels(cluster)),
            owner_references: owner_reference(cluster).map(|o| vec![o]),
            ..ObjectMeta::default()
        },
        data: Some(BTreeMap::from([
            (
                "username".to_owned(),
                ByteString(
                    names::default_superuser_secret(&cluster.cassandra_cluster_name()).into_bytes(),
                ),
            ),
            (
                "password".to_owned(),
                ByteString(password_from_random(random).into_bytes()),
            ),
        ])),
        type_: Some("Opaque".to_owned()),
        ..Secret::default()
    }
}

/// The merge patch that marks a Secret the user made (a `superuserSecretRef`) as replicated by
/// this cluster: the labels, and the orphan annotation so that its copies stay when the cluster
/// goes (upstream's rule for Secrets it did not make). `None` when it is marked already.
#[must_use]
pub fn mark_user_secret(cluster: &K8ssandraCluster, secret: &Secret) -> Option<serde_json::Value> {
    let wanted = replicated_labels(cluster);
    let current = secret.labels();
    if wanted.iter().all(|(k, v)| current.get(k) == Some(v)) {
        return None;
    }
    Some(serde_json::json!({
        "metadata": {
            "labels": wanted,
            "annotations": { annotations::REPLICATED_ORPHAN: "true" },
        }
    }))
}

/// The cluster's ReplicatedSecret (same name and namespace, owned by it): the cluster's Secrets
/// into every namespace and context a datacenter runs in, other than the cluster's own namespace
/// in the control-plane cluster.
///
/// # Errors
/// When the object cannot be rendered for its hash (a bug).
pub fn replicated_secret(
    cluster: &K8ssandraCluster,
    desired: &[DesiredDatacenter],
) -> Result<ReplicatedSecret, serde_json::Error> {
    let namespace = cluster.namespace().unwrap_or_default();
    let mut targets: Vec<ReplicationTarget> = Vec::new();
    for dc in desired {
        let dc_namespace = dc.datacenter.namespace().unwrap_or_default();
        if dc.context.is_empty() && dc_namespace == namespace {
            continue;
        }
        let target = ReplicationTarget {
            namespace: Some(dc_namespace),
            k8s_context_name: (!dc.context.is_empty()).then(|| dc.context.clone()),
            ..ReplicationTarget::default()
        };
        if !targets.contains(&target) {
            targets.push(target);
        }
    }
    let mut replicated = ReplicatedSecret::new(
        &cluster.name_any(),
        ReplicatedSecretSpec {
            selector: Some(LabelSelector {
                match_labels: Some(selector_labels(cluster)),
                match_expressions: None,
            }),
            name_selector: None,
            replication_targets: Some(targets),
        },
    );
    replicated.metadata.namespace = Some(namespace);
    replicated.metadata.labels = Some(selector_labels(cluster));
    replicated.metadata.owner_references = owner_reference(cluster).map(|o| vec![o]);
    hash::stamp(&mut replicated, annotations::RESOURCE_HASH, &[])?;
    Ok(replicated)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::build::desired_datacenters;

    fn cluster() -> K8ssandraCluster {
        let mut cluster: K8ssandraCluster = serde_yaml::from_str(
            r#"
apiVersion: k8ssandra.io/v1alpha1
kind: K8ssandraCluster
metadata: {name: demo, namespace: ns, uid: "1234"}
spec:
  cassandra:
    serverVersion: "4.1.5"
    storageConfig:
      cassandraDataVolumeClaimSpec:
        storageClassName: standard
        accessModes: [ReadWriteOnce]
        resources: {requests: {storage: 5Gi}}
    datacenters:
      - metadata: {name: local}
        size: 1
      - metadata: {name: dc1}
        k8sContext: one
        size: 3
      - metadata: {name: dc2, namespace: other}
        k8sContext: one
        size: 3
      - metadata: {name: dc3}
        k8sContext: two
        size: 3
      - metadata: {name: dc4}
        k8sContext: two
        size: 3
"#,
        )
        .expect("cluster");
        cluster.metadata.uid = Some("1234".to_owned());
        cluster
    }

    #[test]
    fn the_targets_are_each_namespace_and_context_once_and_never_the_source() {
        let cluster = cluster();
        let desired = desired_datacenters(&cluster, &BTreeMap::new()).expect("desired");
        let replicated = replicated_secret(&cluster, &desired).expect("replicated");
        let targets: Vec<(Option<String>, Option<String>)> = replicated
            .spec
            .replication_targets
            .iter()
            .flatten()
            .map(|t| (t.k8s_context_name.clone(), t.namespace.clone()))
            .collect();
        let some = |s: &str| Some(s.to_owned());
        assert_eq!(
            targets,
            vec![
                (some("one"), some("ns")),
                (some("one"), some("other")),
                (some("two"), some("ns")),
            ]
        );
        let selector = replicated
            .spec
            .selector
            .and_then(|s| s.match_labels)
            .expect("labels");
        assert_eq!(
            selector
                .get(labels::K8SSANDRA_CLUSTER_NAME)
                .map(String::as_str),
            Some("demo")
        );
        assert_eq!(
            replicated.metadata.owner_references.expect("owner")[0].uid,
            "1234"
        );
    }

    #[test]
    fn the_superuser_secret_is_selected_by_the_replicated_secret() {
        let cluster = cluster();
        let secret = superuser_secret(&cluster, &[1; PASSWORD_RANDOM_BYTES]);
        assert_eq!(secret.metadata.name.as_deref(), Some("demo-superuser"));
        let labels = secret.metadata.labels.clone().expect("labels");
        for (key, value) in selector_labels(&cluster) {
            assert_eq!(labels.get(&key), Some(&value));
        }
        let data = secret.data.expect("data");
        assert_eq!(data["username"].0, b"demo-superuser");
        assert_eq!(data["password"].0.len(), 54);
        assert!(mark_user_secret(&cluster, &superuser_secret(&cluster, &[2; 40])).is_none());
        assert!(mark_user_secret(&cluster, &Secret::default()).is_some());
    }
}
