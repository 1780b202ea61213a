//! The CassandraDatacenter spec.

use std::collections::BTreeMap;

use k8s_openapi::{
    api::core::v1::{PodTemplateSpec, ResourceRequirements, Toleration},
    apimachinery::pkg::util::intstr::IntOrString,
};
use kube::{CustomResource, KubeSchema};
use serde::{Deserialize, Serialize};

use super::{CassandraDatacenterStatus, Rack, StorageConfig};

/// Desired state of one Cassandra datacenter in one Kubernetes cluster.
#[derive(CustomResource, Clone, Debug, Default, PartialEq, Serialize, Deserialize, KubeSchema)]
#[kube(
    group = "cassandra.datastax.com",
    version = "v1beta1",
    kind = "CassandraDatacenter",
    plural = "cassandradatacenters",
    shortname = "cassdc",
    shortname = "cassdcs",
    namespaced,
    status = "CassandraDatacenterStatus",
    derive = "PartialEq",
    derive = "Default",
    doc = "A Cassandra datacenter: one StatefulSet per rack, its Services and PodDisruptionBudget, and the Cassandra nodes the operator drives through the Management API.",
    printcolumn(name = "Cluster", type_ = "string", json_path = ".spec.clusterName"),
    printcolumn(name = "Size", type_ = "integer", json_path = ".spec.size"),
    printcolumn(
        name = "Ready",
        type_ = "integer",
        json_path = ".status.readyNodes",
        description = "Cassandra nodes started and ready"
    ),
    printcolumn(
        name = "Progress",
        type_ = "string",
        json_path = ".status.cassandraOperatorProgress"
    ),
    printcolumn(
        name = "Reason",
        type_ = "string",
        json_path = ".status.conditions[?(@.type==\"Ready\")].message",
        priority = 1
    ),
    printcolumn(
        name = "Age",
        type_ = "date",
        json_path = ".metadata.creationTimestamp"
    )
)]
#[kube(cel)]
#[serde(rename_all = "camelCase")]
// Unknown spec fields are pruned (and refused by kubectl's strict field validation), so that a
// typo such as `sizee` is never stored silently; only the free-form sections keep what they hold.
#[schemars(transform = crate::cel::with_storage_and_rack_rules)]
#[x_kube(
    validation = Rule::new("(has(self.datacenterName) ? self.datacenterName : '') == (has(oldSelf.datacenterName) ? oldSelf.datacenterName : '')").message("datacenterName is immutable"),
    validation = Rule::new("(has(self.superuserSecretName) ? self.superuserSecretName : '') == (has(oldSelf.superuserSecretName) ? oldSelf.superuserSecretName : '')").message("superuserSecretName is immutable"),
    validation = Rule::new("(has(self.allowMultipleNodesPerWorker) && self.allowMultipleNodesPerWorker) == (has(oldSelf.allowMultipleNodesPerWorker) && oldSelf.allowMultipleNodesPerWorker)").message("allowMultipleNodesPerWorker is immutable"),
    validation = Rule::new("(has(self.serviceAccount) ? self.serviceAccount : '') == (has(oldSelf.serviceAccount) ? oldSelf.serviceAccount : '')").message("serviceAccount is immutable"),
    validation = Rule::new("!(has(self.allowMultipleNodesPerWorker) && self.allowMultipleNodesPerWorker) || (has(self.resources) && has(self.resources.requests) && has(self.resources.limits) && ['cpu', 'memory'].all(r, r in self.resources.requests && r in self.resources.limits))").message("allowMultipleNodesPerWorker requires cpu and memory requests and limits in resources"),
    validation = Rule::new("!has(self.config) || !has(self.config.dse__dash__yaml) || self.serverType == 'dse'").message("config dse-yaml is only valid with serverType dse"),
    validation = Rule::new("!has(self.config) || !has(self.config.jvm__dash__options) || (self.serverType == 'cassandra' && self.serverVersion.startsWith('3.'))").message("config jvm-options is only valid with Cassandra 3.x; use jvm-server-options"),
    validation = Rule::new("!has(self.config) || !has(self.config.jvm__dash__server__dash__options) || !(self.serverType == 'cassandra' && self.serverVersion.startsWith('3.'))").message("config jvm-server-options is not valid with Cassandra 3.x; use jvm-options"),
)]
pub struct CassandraDatacenterSpec {
    /// Cassandra cluster this datacenter belongs to; datacenters with the same cluster name in a
    /// namespace join one cluster.
    #[schemars(length(min = 2))]
    #[x_kube(validation = Rule::new("self == oldSelf").message("clusterName is immutable"))]
    pub cluster_name: String,
    /// Cassandra-side datacenter name, when it differs from the object name.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 63))]
    pub datacenter_name: Option<String>,
    /// `cassandra`, `dse` or `hcd`.
    pub server_type: ServerType,
    /// Version of the server, `major.minor.patch`.
    #[schemars(regex(
        pattern = r"^((6\.[89]\.\d+)|(3\.11\.\d+)|(4\.\d+\.\d+)|(5\.\d+\.\d+)|(1\.\d+\.\d+))$"
    ))]
    pub server_version: String,
    /// Image of the server with the Management API, when not the default for the version.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub server_image: Option<String>,
    /// Number of Cassandra nodes (at most 1000 in one datacenter).
    #[schemars(range(min = 1, max = 1000))]
    pub size: i32,
    /// Racks, one StatefulSet each; a single rack `default` when empty.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 32))]
    #[x_kube(validation = crate::cel::racks_unique())]
    pub racks: Option<Vec<Rack>>,
    /// Node labels every pod requires.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub node_affinity_labels: Option<BTreeMap<String, String>>,
    /// Node selector of every pod.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub node_selector: Option<BTreeMap<String, String>>,
    /// Tolerations of every pod.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tolerations: Option<Vec<Toleration>>,
    /// Allow more than one Cassandra pod per worker node (no required pod anti-affinity).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub allow_multiple_nodes_per_worker: Option<bool>,
    /// Data volume claim template and further volumes.
    pub storage_config: StorageConfig,
    /// Server configuration: `cassandra-yaml`, `jvm-options`, `jvm-server-options`, `dse-yaml`, ...
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "crate::schema::server_config")]
    pub config: Option<serde_json::Value>,
    /// Secret whose `config` key holds the configuration, instead of `config`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub config_secret: Option<String>,
    /// Resources of the Cassandra container.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub resources: Option<ResourceRequirements>,
    /// Resources of the log sidecar.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub system_logger_resources: Option<ResourceRequirements>,
    /// Resources of the configuration init container.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub config_builder_resources: Option<ResourceRequirements>,
    /// Base pod template; the operator's containers, volumes and settings are merged into it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pod_template_spec: Option<PodTemplateSpec>,
    /// How the operator authenticates to the Management API.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub management_api_auth: Option<ManagementApiAuthConfig>,
    /// Secret with the superuser's `username` and `password`; `<cluster>-superuser` is generated
    /// when empty.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub superuser_secret_name: Option<String>,
    /// Roles created from Secrets.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub users: Option<Vec<CassandraUser>>,
    /// Host networking and NodePort settings.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub networking: Option<NetworkingConfig>,
    /// Seeds outside this datacenter (other datacenters, unmanaged nodes): IPs or host names,
    /// at most 64.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 64))]
    pub additional_seeds: Option<Vec<String>>,
    /// Extra labels and annotations per Service.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub additional_service_config: Option<ServiceConfig>,
    /// Labels added to every object created for this datacenter (not the operator's own keys).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schemars(extend("maxProperties" = 64))]
    #[x_kube(validation = Rule::new("self.all(k, !k.startsWith('cassandra.datastax.com/') && !(k in ['app.kubernetes.io/name', 'app.kubernetes.io/instance', 'app.kubernetes.io/version', 'app.kubernetes.io/managed-by', 'app.kubernetes.io/created-by']))").message("additionalLabels may not set the operator's own labels (cassandra.datastax.com/*, app.kubernetes.io/name, instance, version, managed-by, created-by)"))]
    pub additional_labels: Option<BTreeMap<String, String>>,
    /// Annotations added to every object created for this datacenter.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub additional_annotations: Option<BTreeMap<String, String>>,
    /// Drain and scale every rack to zero, keeping the data; `false` brings the nodes back.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stopped: Option<bool>,
    /// Roll a new pod template out to the first rack only.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub canary_upgrade: Option<bool>,
    /// How many pods of the first rack get the new template in a canary upgrade (0: all).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0))]
    pub canary_upgrade_count: Option<i32>,
    /// Racks that get the latest pod template even when their pods are not ready.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub force_upgrade_racks: Option<Vec<String>>,
    /// Deprecated: pods to replace; use a CassandraTask `replacenode`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub replace_nodes: Option<Vec<String>>,
    /// Deprecated: request a rolling restart; use a CassandraTask `restart`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rolling_restart_requested: Option<bool>,
    /// Pods that may be down at once, in a rolling update and in the PodDisruptionBudget.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_unavailable: Option<IntOrString>,
    /// Seconds a new pod must be ready before it counts as available.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0))]
    pub min_ready_seconds: Option<i32>,
    /// Read-only root filesystem for the server container.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub read_only_root_filesystem: Option<bool>,
    /// Deprecated and immutable: the pods' service account; use serviceAccountName.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub service_account: Option<String>,
    /// The pods' service account.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub service_account_name: Option<String>,
    /// Image of the configuration init container.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub config_builder_image: Option<String>,
    /// Image of the log sidecar.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub system_logger_image: Option<String>,
    /// Run no log sidecar.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub disable_system_logger_sidecar: Option<bool>,
    /// DSE workloads (DSE only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dse_workloads: Option<DseWorkloads>,
    /// Deprecated: change-data-capture agent settings; accepted and kept.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "crate::schema::preserve_unknown_object")]
    pub cdc: Option<serde_json::Value>,
    /// Deprecated, no effect.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub docker_image_runs_as_cassandra: Option<bool>,
}

/// Server distribution.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum ServerType {
    /// Apache Cassandra.
    #[default]
    Cassandra,
    /// DataStax Enterprise.
    Dse,
    /// Hyper-Converged Database.
    Hcd,
}

impl ServerType {
    /// The value as written in YAML.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Cassandra => "cassandra",
            Self::Dse => "dse",
            Self::Hcd => "hcd",
        }
    }
}

/// How the operator authenticates to each pod's Management API.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, KubeSchema)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("!(has(self.insecure) && has(self.manual))").message("managementApiAuth takes insecure or manual, not both"))]
pub struct ManagementApiAuthConfig {
    /// Plain HTTP (the default).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub insecure: Option<ManagementApiAuthInsecure>,
    /// Mutual TLS with certificates from Secrets.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub manual: Option<ManagementApiAuthManual>,
}

/// Plain HTTP to the Management API; no settings.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, KubeSchema)]
pub struct ManagementApiAuthInsecure {}

/// Mutual TLS to the Management API.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct ManagementApiAuthManual {
    /// `kubernetes.io/tls` Secret (with `ca.crt`) the operator presents.
    pub client_secret_name: String,
    /// `kubernetes.io/tls` Secret (with `ca.crt`) the Management API presents.
    pub server_secret_name: String,
    /// Do not check that the Secrets exist and hold certificates.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub skip_secret_validation: Option<bool>,
}

/// A role created from a Secret's `username` and `password`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct CassandraUser {
    /// Secret with `username` and `password`.
    pub secret_name: String,
    /// Whether the role is a superuser.
    pub superuser: bool,
}

/// Pod networking.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct NetworkingConfig {
    /// Expose Cassandra through a NodePort Service on these ports.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub node_port: Option<NodePortConfig>,
    /// Run the pods in the host's network namespace.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub host_network: Option<bool>,
}

/// Node ports of the NodePort Service.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct NodePortConfig {
    /// CQL.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub native: Option<i32>,
    /// CQL over TLS.
    #[serde(rename = "nativeSSL", skip_serializing_if = "Option::is_none")]
    pub native_ssl: Option<i32>,
    /// Internode.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub internode: Option<i32>,
    /// Internode over TLS.
    #[serde(rename = "internodeSSL", skip_serializing_if = "Option::is_none")]
    pub internode_ssl: Option<i32>,
}

/// Extra labels and annotations for each Service the operator creates.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct ServiceConfig {
    /// The datacenter Service.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dc_service: Option<ServiceConfigAdditions>,
    /// The seed Service.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub seed_service: Option<ServiceConfigAdditions>,
    /// The all-pods Service.
    #[serde(rename = "allpodsService", skip_serializing_if = "Option::is_none")]
    pub allpods_service: Option<ServiceConfigAdditions>,
    /// The additional-seeds Service.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub additional_seed_service: Option<ServiceConfigAdditions>,
    /// The NodePort Service.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub node_port_service: Option<ServiceConfigAdditions>,
}

/// Labels and annotations added to one Service.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, KubeSchema)]
#[serde(rename_all = "camelCase")]
#[x_kube(
    validation = Rule::new("!has(self.additionalLabels) || self.additionalLabels.all(k, !k.startsWith('cassandra.datastax.com/'))").message("labels with the reserved prefix cassandra.datastax.com/ are not allowed"),
    validation = Rule::new("!has(self.additionalAnnotations) || self.additionalAnnotations.all(k, !k.startsWith('cassandra.datastax.com/'))").message("annotations with the reserved prefix cassandra.datastax.com/ are not allowed"),
)]
pub struct ServiceConfigAdditions {
    /// Labels to add.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schemars(extend("maxProperties" = 64))]
    pub additional_labels: Option<BTreeMap<String, String>>,
    /// Annotations to add.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schemars(extend("maxProperties" = 64))]
    pub additional_annotations: Option<BTreeMap<String, String>>,
}

/// DSE workloads to enable.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct DseWorkloads {
    /// Spark analytics.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub analytics_enabled: Option<bool>,
    /// Graph.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub graph_enabled: Option<bool>,
    /// Search.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub search_enabled: Option<bool>,
}

impl CassandraDatacenter {
    /// Cassandra-side name of the datacenter: `spec.datacenterName`, else the object name.
    #[must_use]
    pub fn datacenter_name(&self) -> &str {
        self.spec
            .datacenter_name
            .as_deref()
            .filter(|n| !n.is_empty())
            .or(self.metadata.name.as_deref())
            .unwrap_or_default()
    }

    /// The datacenter part of object names: once the datacenter has run, the name it ran under
    /// (`status.datacenterName`), so that names never change under a live datacenter.
    #[must_use]
    pub fn label_resource_name(&self) -> String {
        let name = self
            .status
            .as_ref()
            .and_then(|s| s.datacenter_name.as_deref())
            .or(self.metadata.name.as_deref())
            .unwrap_or_default();
        crate::names::cleanup_for_kubernetes(name)
    }
}
