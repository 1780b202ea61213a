//! `replication.k8ssandra.io/v1alpha1`: the ReplicatedSecret, which copies Secrets into other
//! namespaces and Kubernetes clusters.

use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, Time};
use kube::{CustomResource, KubeSchema};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::conditions::ConditionStatus;

/// API group of the ReplicatedSecret.
pub const GROUP: &str = "replication.k8ssandra.io";

/// Secrets to copy, and where to.
#[derive(CustomResource, Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[kube(
    group = "replication.k8ssandra.io",
    version = "v1alpha1",
    kind = "ReplicatedSecret",
    plural = "replicatedsecrets",
    namespaced,
    status = "ReplicatedSecretStatus",
    derive = "PartialEq",
    derive = "Default",
    doc = "Secrets copied into other namespaces and Kubernetes clusters.",
    printcolumn(
        name = "Age",
        type_ = "date",
        json_path = ".metadata.creationTimestamp"
    )
)]
#[serde(rename_all = "camelCase")]
pub struct ReplicatedSecretSpec {
    /// Labels of the Secrets to copy; with nameSelector unset too, every Secret.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub selector: Option<LabelSelector>,
    /// The one Secret to copy.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name_selector: Option<crate::reference::LocalObjectReference>,
    /// Where to copy them; nowhere when empty.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 64))]
    pub replication_targets: Option<Vec<ReplicationTarget>>,
}

/// One place Secrets are copied to. Never a namespace of Kubernetes itself, and never a name
/// outside the prefix given (see the namespace rule in the data-plane docs).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct ReplicationTarget {
    /// Namespace; the ReplicatedSecret's when empty. Never kube-system, kube-public or
    /// kube-node-lease.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"), length(max = 63))]
    #[x_kube(validation = Rule::new("!(self in ['kube-system', 'kube-public', 'kube-node-lease'])").message("Secrets are never replicated into kube-system, kube-public or kube-node-lease"))]
    pub namespace: Option<String>,
    /// Kubernetes context (a ClientConfig's); the local cluster when empty.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub k8s_context_name: Option<String>,
    /// Prefix of the copies' names: lower-case letters, digits, '-' and '.'.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = r"^[a-z0-9][-a-z0-9.]*$"), length(max = 200))]
    pub target_prefix: Option<String>,
    /// Labels removed from the copies.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub drop_labels: Option<Vec<String>>,
    /// Labels added to the copies.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub add_labels: Option<BTreeMap<String, String>>,
}

/// Observed state of a ReplicatedSecret: one condition per target cluster.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct ReplicatedSecretStatus {
    /// Whether replication into each cluster succeeded.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub conditions: Option<Vec<ReplicationCondition>>,
}

/// Replication into one cluster.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ReplicationCondition {
    /// Kubernetes context of the target cluster.
    pub cluster: String,
    /// `Replication`.
    #[serde(rename = "type")]
    pub type_: String,
    /// `True`, `False` or `Unknown`.
    pub status: ConditionStatus,
    /// When `status` last changed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_transition_time: Option<Time>,
    /// Why replication into the cluster is not done: the cluster, namespace and error (this
    /// operator's addition to upstream's condition).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}
