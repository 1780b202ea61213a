//! The K8ssandraCluster spec and status.

use std::collections::BTreeMap;

use k8s_openapi::{
    api::core::v1::{Container, PodSecurityContext, ResourceRequirements, Toleration, Volume},
    apimachinery::pkg::api::resource::Quantity,
};
use kube::{CustomResource, KubeSchema};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::{CassandraClusterMeta, CassandraConfig, EmbeddedObjectMeta};
use crate::{
    cassandra::{
        AdditionalVolumes, CassandraDatacenterStatus, DseWorkloads, ManagementApiAuthConfig,
        NetworkingConfig, Rack, ServerType, StorageConfig,
    },
    conditions::Condition,
};

/// The effective Cassandra cluster name of a K8ssandraCluster on `var`, as a CEL expression.
macro_rules! effective_cluster_name {
    ($var:literal) => {
        concat!(
            "(has(",
            $var,
            ".spec.cassandra) && has(",
            $var,
            ".spec.cassandra.clusterName) && ",
            $var,
            ".spec.cassandra.clusterName != '' ? ",
            $var,
            ".spec.cassandra.clusterName : ",
            $var,
            ".metadata.name)"
        )
    };
}

/// Desired state of a Cassandra cluster spread over datacenters in one or more Kubernetes clusters.
#[derive(CustomResource, Clone, Debug, Default, PartialEq, Serialize, Deserialize, KubeSchema)]
#[kube(
    group = "k8ssandra.io",
    version = "v1alpha1",
    kind = "K8ssandraCluster",
    plural = "k8ssandraclusters",
    shortname = "k8c",
    shortname = "k8cs",
    namespaced,
    status = "K8ssandraClusterStatus",
    derive = "PartialEq",
    derive = "Default",
    doc = "A Cassandra cluster whose datacenters may live in several Kubernetes clusters.",
    validation = Rule::new(concat!(effective_cluster_name!("self"), " == ", effective_cluster_name!("oldSelf")))
        .message("the Cassandra cluster name (spec.cassandra.clusterName, default metadata.name) is immutable"),
    printcolumn(name = "Ready", type_ = "string", json_path = ".status.conditions[?(@.type==\"Ready\")].status"),
    printcolumn(name = "Datacenters", type_ = "string", json_path = ".status.readyDatacenters", description = "Datacenters ready / total"),
    printcolumn(name = "Error", type_ = "string", json_path = ".status.error", description = "Latest reconcile error"),
    printcolumn(name = "Reason", type_ = "string", json_path = ".status.conditions[?(@.type==\"Ready\")].message", priority = 1),
    printcolumn(name = "Age", type_ = "date", json_path = ".metadata.creationTimestamp")
)]
#[kube(cel)]
#[serde(rename_all = "camelCase")]
pub struct K8ssandraClusterSpec {
    /// Turn Cassandra authentication and authorization on (the default).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub auth: Option<bool>,
    /// The Cassandra cluster: cluster-wide settings and its datacenters.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cassandra: Option<CassandraClusterTemplate>,
    /// Deprecated Stargate settings: accepted and kept, not acted on yet.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "crate::schema::preserve_unknown_object")]
    pub stargate: Option<serde_json::Value>,
    /// Reaper settings: accepted and kept, not acted on yet.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "crate::schema::preserve_unknown_object")]
    pub reaper: Option<serde_json::Value>,
    /// Medusa settings: accepted and kept, not acted on yet.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "crate::schema::preserve_unknown_object")]
    pub medusa: Option<serde_json::Value>,
    /// Datacenters of the Cassandra cluster that this operator does not manage.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub external_datacenters: Option<Vec<String>>,
    /// `internal`: the operator creates and replicates credentials; `external`: the user provides them.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub secrets_provider: Option<SecretsProvider>,
}

/// Who provides the credentials Secrets.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum SecretsProvider {
    /// The operator.
    #[default]
    Internal,
    /// The user, through their own secret injection.
    External,
}

/// Settings that apply to every datacenter of a cluster, and the datacenters.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, KubeSchema)]
#[serde(rename_all = "camelCase")]
#[schemars(transform = crate::cel::with_storage_and_rack_rules)]
#[x_kube(
    validation = Rule::new("!has(oldSelf.datacenters) || !has(self.datacenters) || !(self.datacenters.exists(d, !oldSelf.datacenters.exists(o, o.metadata.name == d.metadata.name)) && oldSelf.datacenters.exists(o, !self.datacenters.exists(d, d.metadata.name == o.metadata.name)))")
        .message("datacenters cannot be added and removed in the same change"),
    validation = Rule::new("!has(oldSelf.datacenters) || !has(self.datacenters) || self.datacenters.all(d, !oldSelf.datacenters.exists(o, o.metadata.name == d.metadata.name && (has(o.datacenterName) ? o.datacenterName : '') != (has(d.datacenterName) ? d.datacenterName : '')))")
        .message("the datacenterName of an existing datacenter is immutable"),
    validation = Rule::new("has(self.storageConfig) || !has(self.datacenters) || self.datacenters.all(d, has(d.storageConfig))")
        .message("storageConfig must be set at cluster level or in every datacenter"),
    validation = Rule::new("has(self.serverVersion) || !has(self.datacenters) || self.datacenters.all(d, has(d.serverVersion))")
        .message("serverVersion must be set at cluster level or in every datacenter"),
)]
pub struct CassandraClusterTemplate {
    /// Cassandra cluster name; the K8ssandraCluster's name when empty. Immutable.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cluster_name: Option<String>,
    /// `cassandra` (the default), `dse` or `hcd`; the same for every datacenter.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub server_type: Option<ServerType>,
    /// Secret with the superuser's `username` and `password`; `<cluster>-superuser` is generated
    /// when empty.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub superuser_secret_ref: Option<crate::reference::LocalObjectReference>,
    /// Seeds of nodes outside this K8ssandraCluster (for migrations).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub additional_seeds: Option<Vec<String>>,
    /// Keystore and truststore for internode encryption.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub server_encryption_stores: Option<EncryptionStores>,
    /// Keystore and truststore for client encryption.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_encryption_stores: Option<EncryptionStores>,
    /// Labels and annotations of what is created for the cluster.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub metadata: Option<CassandraClusterMeta>,
    /// The datacenters, created in this order.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 32))]
    #[x_kube(validation = Rule::new("self.all(d, self.exists_one(o, o.metadata.name == d.metadata.name))").message("datacenter names (metadata.name) must be unique"))]
    pub datacenters: Option<Vec<CassandraDatacenterTemplate>>,
    /// Settings every datacenter inherits unless it overrides them.
    #[serde(flatten)]
    pub options: DatacenterOptions,
}

/// One datacenter of a K8ssandraCluster.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct CassandraDatacenterTemplate {
    /// Name (and optionally namespace) of the CassandraDatacenter, and its metadata.
    pub metadata: EmbeddedObjectMeta,
    /// Kubernetes context (a ClientConfig's) where the datacenter runs; the control plane's cluster
    /// when empty.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub k8s_context: Option<String>,
    /// Number of Cassandra nodes.
    #[schemars(range(min = 1))]
    pub size: i32,
    /// Scale to zero, keeping the data.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stopped: Option<bool>,
    /// Deprecated per-datacenter Stargate settings: accepted and kept, not acted on yet.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "crate::schema::preserve_unknown_object")]
    pub stargate: Option<serde_json::Value>,
    /// ConfigMap with per-node configuration (`<pod>_<file>.yaml` keys).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub per_node_config_map_ref: Option<crate::reference::LocalObjectReference>,
    /// Settings of this datacenter; each overrides the cluster-level one.
    #[serde(flatten)]
    pub options: DatacenterOptions,
}

/// Settings that can be given at cluster level and overridden per datacenter.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct DatacenterOptions {
    /// Server version, `major.minor.patch`.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = r"(\d+\.\d+\.\d+)"))]
    pub server_version: Option<String>,
    /// Server image with the Management API, when not the default for the version.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub server_image: Option<String>,
    /// Server configuration.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub config: Option<CassandraConfig>,
    /// Data volumes.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub storage_config: Option<StorageConfig>,
    /// Host networking and NodePort settings.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub networking: Option<NetworkingConfig>,
    /// Resources of the Cassandra container.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub resources: Option<ResourceRequirements>,
    /// Racks; merged by name with the cluster-level racks.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 32))]
    #[x_kube(validation = crate::cel::racks_unique())]
    pub racks: Option<Vec<Rack>>,
    /// Deprecated and ignored.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub jmx_init_container_image: Option<Image>,
    /// Allow more than one Cassandra pod per worker node.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub soft_pod_anti_affinity: Option<bool>,
    /// Tolerations of the Cassandra pods (replaced, not merged, by a datacenter's).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tolerations: Option<Vec<Toleration>>,
    /// Heap of the Management API process.
    #[serde(rename = "mgmtAPIHeap", skip_serializing_if = "Option::is_none")]
    pub mgmt_api_heap: Option<Quantity>,
    /// Telemetry settings: accepted and kept, not acted on yet.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "crate::schema::preserve_unknown_object")]
    pub telemetry: Option<serde_json::Value>,
    /// Deprecated change-data-capture settings: accepted and kept.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "crate::schema::preserve_unknown_object")]
    pub cdc: Option<serde_json::Value>,
    /// Extra containers, or overrides of the operator's containers (merged by name).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub containers: Option<Vec<Container>>,
    /// Extra init containers, or overrides of the operator's (merged by name).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub init_containers: Option<Vec<Container>>,
    /// Extra volumes and volume claims.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub extra_volumes: Option<K8ssandraVolumes>,
    /// DSE workloads (DSE only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dse_workloads: Option<DseWorkloads>,
    /// Security context of the Cassandra pods.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pod_security_context: Option<PodSecurityContext>,
    /// Priority class of the Cassandra pods.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pod_priority_class_name: Option<String>,
    /// How the operator authenticates to the Management API.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub management_api_auth: Option<ManagementApiAuthConfig>,
    /// Deprecated: image of the per-node configuration init container.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub per_node_config_init_container_image: Option<String>,
    /// Service account of the Cassandra pods.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub service_account: Option<String>,
    /// Cassandra-side datacenter name (per datacenter), when it differs from metadata.name.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 63))]
    pub datacenter_name: Option<String>,
    /// Read-only root filesystem for the server container.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub read_only_root_filesystem: Option<bool>,
    /// Pods rebuilt at once per rack when a datacenter is added to a live cluster (1 when unset).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1))]
    pub max_concurrent_rebuilds: Option<i64>,
    /// How a datacenter added to a live cluster streams its data in.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rebuild: Option<RebuildOptions>,
}

/// How a datacenter added to a live cluster is rebuilt.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct RebuildOptions {
    /// Datacenter to stream from; the first Ready datacenter when unset.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub source_dc: Option<String>,
    /// Pods rebuilt at once per rack; overrides `maxConcurrentRebuilds`.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1))]
    pub max_concurrent_rebuilds: Option<i64>,
}

/// Extra volumes of the Cassandra pods.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct K8ssandraVolumes {
    /// Plain pod volumes (merged by name).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub volumes: Option<Vec<Volume>>,
    /// Volume claims templated per pod and mounted into the Cassandra container (merged by name).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pvcs: Option<Vec<AdditionalVolumes>>,
}

/// Keystore and truststore Secrets for TLS.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct EncryptionStores {
    /// Secret key holding the keystore (`keystore` by default).
    pub keystore_secret_ref: SecretKeySelector,
    /// Secret key holding the truststore (`truststore` by default).
    pub truststore_secret_ref: SecretKeySelector,
    /// Secret key holding the keystore password (`keystore-password` by default).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub keystore_password_secret_ref: Option<SecretKeySelector>,
    /// Secret key holding the truststore password (`truststore-password` by default).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub truststore_password_secret_ref: Option<SecretKeySelector>,
}

/// A key of a Secret in the same namespace.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct SecretKeySelector {
    /// Secret name.
    pub name: String,
    /// Key in the Secret.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
}

/// A container image reference.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Image {
    /// Registry host.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub registry: Option<String>,
    /// Repository.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub repository: Option<String>,
    /// Image name.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Tag.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tag: Option<String>,
    /// `Always`, `IfNotPresent` or `Never`.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schemars(extend("enum" = ["Always", "IfNotPresent", "Never"]))]
    pub pull_policy: Option<String>,
    /// Name of the image pull Secret.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pull_secret: Option<String>,
    /// Deprecated: the image pull Secret; use pullSecret.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pull_secret_ref: Option<crate::reference::LocalObjectReference>,
}

/// Observed state of a K8ssandraCluster.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct K8ssandraClusterStatus {
    /// Conditions: see [`condition`] for the types.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "crate::conditions::list_schema")]
    pub conditions: Option<Vec<Condition>>,
    /// Per datacenter (by CassandraDatacenter name): where it runs and its status.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub datacenters: Option<BTreeMap<String, K8ssandraDatacenterStatus>>,
    /// The last reconcile error, or `None`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// Generation of the spec the status was computed from.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// Datacenters ready out of all, as `ready/total` (shown by `kubectl get k8c`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ready_datacenters: Option<String>,
    /// Replication factor per datacenter last set on `system_auth`, `system_distributed` and
    /// `system_traces` (this operator's): they are altered only when the wanted one differs.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub system_replication: Option<BTreeMap<String, i32>>,
}

/// Observed state of one datacenter of a K8ssandraCluster.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct K8ssandraDatacenterStatus {
    /// Kubernetes context the datacenter runs in.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub context_name: Option<String>,
    /// `""`, `UpdatingReplication` or `Decommissioning` while the datacenter is removed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub decommission_progress: Option<String>,
    /// The CassandraDatacenter's status, copied from its cluster.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cassandra: Option<CassandraDatacenterStatus>,
    /// While a datacenter added to a live cluster streams its data in (this operator's).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rebuild: Option<DatacenterRebuildStatus>,
    /// Stargate status: kept, not computed yet.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "crate::schema::preserve_unknown_object")]
    pub stargate: Option<serde_json::Value>,
    /// Reaper status: kept, not computed yet.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "crate::schema::preserve_unknown_object")]
    pub reaper: Option<serde_json::Value>,
}

/// Where the rebuild of a datacenter added to a live cluster stands.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct DatacenterRebuildStatus {
    /// `Replicating` (keyspaces being altered to include it), `Rebuilding`, or `Failed` (retried).
    pub state: String,
    /// The datacenter it streams from.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub source_datacenter: Option<String>,
    /// The CassandraTask of the current attempt, in the datacenter's namespace.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub task: Option<String>,
    /// Attempts so far (1 for the first).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub attempt: Option<i32>,
    /// The pod the current attempt rebuilds again (the one that failed before); every pod of
    /// the datacenter when unset.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pod: Option<String>,
    /// Nodes rebuilt, out of `nodesTotal`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub nodes_done: Option<i32>,
    /// Nodes to rebuild.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub nodes_total: Option<i32>,
    /// Why the last attempt failed, naming the node.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_failure: Option<String>,
}

/// Values of `status.datacenters[dc].rebuild.state`.
pub mod rebuild_state {
    /// Keyspaces are being altered to include the datacenter.
    pub const REPLICATING: &str = "Replicating";
    /// Its nodes stream their data in.
    pub const REBUILDING: &str = "Rebuilding";
}

/// Values of `status.datacenters[dc].decommissionProgress` (upstream's).
pub mod decommission_progress {
    /// Checking that no user keyspace replicates to the datacenter any more.
    pub const UPDATING_REPLICATION: &str = "UpdatingReplication";
    /// Its nodes leave the ring, then its CassandraDatacenter goes.
    pub const DECOMMISSIONING: &str = "Decommissioning";
}

/// Condition types of a K8ssandraCluster.
pub mod condition {
    /// Every datacenter is ready (this operator's; upstream has none).
    pub const READY: &str = "Ready";
    /// Every datacenter was ready once; never reset (upstream's).
    pub const CASSANDRA_INITIALIZED: &str = "CassandraInitialized";
    /// The datacenters differ from what this operator would build, and updates are not allowed.
    pub const REQUIRES_UPDATE: &str = "RequiresUpdate";
    /// The spec can be acted on.
    pub const VALID: &str = "Valid";
}
