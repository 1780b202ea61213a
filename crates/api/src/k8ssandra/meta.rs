//! Labels and annotations a K8ssandraCluster puts on what it creates.

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// Labels and annotations.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Tags {
    /// Labels.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub labels: Option<BTreeMap<String, String>>,
    /// Annotations.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub annotations: Option<BTreeMap<String, String>>,
}

/// Metadata of the objects created for a whole cluster, or for one datacenter.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct CassandraClusterMeta {
    /// Labels of the CassandraDatacenter object(s).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub labels: Option<BTreeMap<String, String>>,
    /// Annotations of the CassandraDatacenter object(s).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub annotations: Option<BTreeMap<String, String>>,
    /// Labels of every object created for the cluster (or the datacenter).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub common_labels: Option<BTreeMap<String, String>>,
    /// Annotations of every object created for the cluster (or the datacenter).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub common_annotations: Option<BTreeMap<String, String>>,
    /// Labels and annotations of the Cassandra pods.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pods: Option<Tags>,
    /// Labels and annotations per Service.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub services: Option<ServicesMeta>,
}

/// Labels and annotations of each Service of a datacenter.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ServicesMeta {
    /// The datacenter Service.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dc_service: Option<Tags>,
    /// The seed Service.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub seed_service: Option<Tags>,
    /// The all-pods Service.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub all_pods_service: Option<Tags>,
    /// The additional-seeds Service.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub additional_seed_service: Option<Tags>,
    /// The NodePort Service.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub node_port_service: Option<Tags>,
}

/// Name, namespace and metadata of one datacenter of a K8ssandraCluster.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct EmbeddedObjectMeta {
    /// Name of the CassandraDatacenter object (a DNS-1035 label).
    #[schemars(
        length(min = 1, max = 63),
        regex(pattern = "^[a-z]([-a-z0-9]*[a-z0-9])?$")
    )]
    pub name: String,
    /// Namespace of the CassandraDatacenter, when not the K8ssandraCluster's.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    /// Labels and annotations, as at cluster level; the datacenter's win.
    #[serde(flatten)]
    pub tags: CassandraClusterMeta,
}
