//! The CassandraDatacenter of one datacenter of a K8ssandraCluster (pure): upstream's fields,
//! labels and annotations, so that the data plane (ours or cass-operator) runs it unchanged. The
//! object carries the hash of itself in `k8ssandra.io/resource-hash` (upstream's key): it is
//! written to its cluster only when that hash changes. It also carries the hash of what it was
//! built from (`k8ssandra.io/datacenter-spec-hash`), so that a change of the operator alone can be
//! told from a change of the spec.

use std::collections::BTreeMap;

use k8s_openapi::{
    api::core::v1::{PodSecurityContext, PodSpec, PodTemplateSpec},
    apimachinery::pkg::apis::meta::v1::ObjectMeta,
};
use k8ssandra_api::{
    cassandra::{
        CassandraDatacenter, CassandraDatacenterSpec, ServiceConfig, ServiceConfigAdditions,
        StorageConfig,
    },
    k8ssandra::{K8ssandraCluster, Tags},
    labels::{self, annotations},
    merge::ResolvedDatacenter,
};
use k8ssandra_reconcile::hash;

use super::config::{self, ConfigError};

/// Values of `app.kubernetes.io/*` on every CassandraDatacenter, as upstream's.
const APP_NAME: &str = "k8ssandra-operator";
/// `app.kubernetes.io/part-of`.
const PART_OF: &str = "k8ssandra";
/// `app.kubernetes.io/component`.
const COMPONENT: &str = "cassandra";

/// What a datacenter's CassandraDatacenter is built from, besides the datacenter itself.
#[derive(Clone, Debug)]
pub struct DatacenterInputs<'a> {
    /// The K8ssandraCluster.
    pub cluster: &'a K8ssandraCluster,
    /// The datacenter, the cluster's template merged in.
    pub datacenter: &'a ResolvedDatacenter,
    /// Whether it is the first datacenter: the one that seeds a new Cassandra cluster, creates
    /// its users, and carries the initial system replication.
    pub first: bool,
    /// Initial replication of the system keyspaces (`k8ssandra.io/initial-system-replication`),
    /// by Cassandra datacenter name.
    pub initial_replication: &'a BTreeMap<String, u32>,
}

/// Why a CassandraDatacenter cannot be built.
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    /// The server configuration cannot be built.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The object cannot be rendered as JSON for its hash (a bug).
    #[error("datacenter {datacenter}: {source}")]
    Serialize {
        /// The datacenter.
        datacenter: String,
        /// The cause.
        source: serde_json::Error,
    },
    /// A required field is unset (validation refuses this first).
    #[error("datacenter {datacenter}: {field} is required")]
    Missing {
        /// The datacenter.
        datacenter: String,
        /// The field.
        field: &'static str,
    },
}

/// The CassandraDatacenter of `inputs.datacenter`, in its namespace (the K8ssandraCluster's when
/// the datacenter names none).
///
/// # Errors
/// When the server version, storage or configuration is missing or unusable.
pub fn datacenter(inputs: &DatacenterInputs<'_>) -> Result<CassandraDatacenter, BuildError> {
    let DatacenterInputs {
        cluster,
        datacenter: dc,
        first,
        ..
    } = inputs;
    let options = &dc.options;
    let missing = |field| BuildError::Missing {
        datacenter: dc.meta.name.clone(),
        field,
    };
    let server_version = options
        .server_version
        .clone()
        .ok_or_else(|| missing("serverVersion"))?;
    let mut storage: StorageConfig = options
        .storage_config
        .clone()
        .ok_or_else(|| missing("storageConfig"))?;
    if let Some(pvcs) = options.extra_volumes.as_ref().and_then(|v| v.pvcs.clone()) {
        storage
            .additional_volumes
            .get_or_insert_with(Vec::new)
            .extend(pvcs);
    }
    let tags = &dc.meta.tags;
    let spec = CassandraDatacenterSpec {
        cluster_name: dc.cluster_name.clone(),
        datacenter_name: options.datacenter_name.clone(),
        server_type: dc.server_type,
        server_version: server_version.clone(),
        server_image: options.server_image.clone(),
        size: dc.size,
        stopped: dc.stopped.then_some(true),
        racks: options.racks.clone(),
        tolerations: options.tolerations.clone(),
        allow_multiple_nodes_per_worker: options.soft_pod_anti_affinity,
        storage_config: storage,
        config: Some(config::server_config(inputs, &server_version)?),
        resources: options.resources.clone(),
        pod_template_spec: pod_template(dc),
        management_api_auth: options.management_api_auth.clone(),
        superuser_secret_name: Some(dc.superuser_secret_name.clone()),
        networking: options.networking.clone(),
        additional_seeds: (!dc.additional_seeds.is_empty()).then(|| dc.additional_seeds.clone()),
        additional_service_config: service_config(tags.services.as_ref()),
        additional_labels: tags.common_labels.clone().filter(|l| !l.is_empty()),
        additional_annotations: tags.common_annotations.clone().filter(|a| !a.is_empty()),
        read_only_root_filesystem: options.read_only_root_filesystem,
        service_account: options.service_account.clone(),
        dse_workloads: options.dse_workloads.clone(),
        ..CassandraDatacenterSpec::default()
    };
    let cluster_name = cluster.metadata.name.clone().unwrap_or_default();
    let cluster_namespace = cluster.metadata.namespace.clone().unwrap_or_default();
    let mut object_labels = tags.common_labels.clone().unwrap_or_default();
    object_labels.extend(tags.labels.clone().unwrap_or_default());
    object_labels.extend([
        (labels::NAME.to_owned(), APP_NAME.to_owned()),
        (labels::PART_OF.to_owned(), PART_OF.to_owned()),
        (labels::COMPONENT.to_owned(), COMPONENT.to_owned()),
        (
            labels::MANAGED_BY.to_owned(),
            labels::CONTROL_PLANE_MANAGER.to_owned(),
        ),
        (
            labels::CLEANED_UP_BY.to_owned(),
            labels::K8SSANDRA_CLUSTER_CONTROLLER.to_owned(),
        ),
        (labels::K8SSANDRA_CLUSTER_NAME.to_owned(), cluster_name),
        (
            labels::K8SSANDRA_CLUSTER_NAMESPACE.to_owned(),
            cluster_namespace.clone(),
        ),
    ]);
    let mut object_annotations = tags.common_annotations.clone().unwrap_or_default();
    object_annotations.extend(tags.annotations.clone().unwrap_or_default());
    // Only the first datacenter creates the users; the others would race it (upstream's rule).
    if !first
        || cluster
            .spec
            .external_datacenters
            .as_ref()
            .is_some_and(|e| !e.is_empty())
    {
        object_annotations.insert(
            annotations::SKIP_USER_CREATION.to_owned(),
            "true".to_owned(),
        );
    }
    let mut datacenter = CassandraDatacenter {
        metadata: ObjectMeta {
            name: Some(dc.meta.name.clone()),
            namespace: Some(
                dc.meta
                    .namespace
                    .clone()
                    .filter(|n| !n.is_empty())
                    .unwrap_or(cluster_namespace),
            ),
            labels: Some(object_labels),
            annotations: (!object_annotations.is_empty()).then_some(object_annotations),
            ..ObjectMeta::default()
        },
        spec,
        status: None,
    };
    let serialize = |source| BuildError::Serialize {
        datacenter: dc.meta.name.clone(),
        source,
    };
    let inputs = serde_json::json!({
        "datacenter": dc,
        "first": first,
        "initialReplication": inputs.initial_replication,
        "auth": cluster.auth_enabled(),
        "externalDatacenters": cluster.spec.external_datacenters,
    });
    datacenter
        .metadata
        .annotations
        .get_or_insert_with(BTreeMap::new)
        .insert(
            annotations::DATACENTER_SPEC_HASH.to_owned(),
            hash::hash_value(&inputs),
        );
    hash::stamp(&mut datacenter, annotations::RESOURCE_HASH, &[]).map_err(serialize)?;
    Ok(datacenter)
}

/// The pod template: containers and init containers (added, or merged by name into the
/// operator's), plain volumes, security context, priority class, and the pods' labels and
/// annotations. `None` when the datacenter sets none of them.
fn pod_template(dc: &ResolvedDatacenter) -> Option<PodTemplateSpec> {
    let options = &dc.options;
    let pods = dc.meta.tags.pods.clone().unwrap_or_default();
    let spec = PodSpec {
        containers: options.containers.clone().unwrap_or_default(),
        init_containers: options.init_containers.clone(),
        volumes: options
            .extra_volumes
            .as_ref()
            .and_then(|v| v.volumes.clone()),
        security_context: options.pod_security_context.clone(),
        priority_class_name: options.pod_priority_class_name.clone(),
        ..PodSpec::default()
    };
    let metadata = ObjectMeta {
        labels: pods.labels.filter(|l| !l.is_empty()),
        annotations: pods.annotations.filter(|a| !a.is_empty()),
        ..ObjectMeta::default()
    };
    let empty_spec = spec == PodSpec::default()
        || (spec.containers.is_empty()
            && spec.init_containers.is_none()
            && spec.volumes.is_none()
            && spec
                .security_context
                .as_ref()
                .is_none_or(|s| *s == PodSecurityContext::default())
            && spec.priority_class_name.is_none());
    if empty_spec && metadata == ObjectMeta::default() {
        return None;
    }
    Some(PodTemplateSpec {
        metadata: (metadata != ObjectMeta::default()).then_some(metadata),
        spec: (!empty_spec).then_some(spec),
    })
}

/// Labels and annotations of each Service, as the data plane adds them.
fn service_config(
    services: Option<&k8ssandra_api::k8ssandra::ServicesMeta>,
) -> Option<ServiceConfig> {
    let services = services?;
    let additions = |tags: &Option<Tags>| {
        tags.as_ref().map(|tags| ServiceConfigAdditions {
            additional_labels: tags.labels.clone(),
            additional_annotations: tags.annotations.clone(),
        })
    };
    let config = ServiceConfig {
        dc_service: additions(&services.dc_service),
        seed_service: additions(&services.seed_service),
        allpods_service: additions(&services.all_pods_service),
        additional_seed_service: additions(&services.additional_seed_service),
        node_port_service: additions(&services.node_port_service),
    };
    (config != ServiceConfig::default()).then_some(config)
}
