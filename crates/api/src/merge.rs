//! The cluster-to-datacenter template merge: what each datacenter of a K8ssandraCluster gets from
//! the cluster-level settings and its own.
//!
//! Upstream's rules: the datacenter's value wins; booleans are three-state (a datacenter's `false`
//! beats the cluster's `true`, an unset one inherits); maps merge key by key; racks, containers,
//! env vars, volumes and extra volume claims merge by name (volume mounts by mount path, ports by
//! container port); quantities, volume sources, env var sources, tolerations and other lists are
//! replaced whole.

use k8s_openapi::{
    DeepMerge,
    api::core::v1::Container,
    merge_strategies::{list, map},
};

use crate::{
    cassandra::{
        AdditionalVolumes, DseWorkloads, NetworkingConfig, NodePortConfig, Rack, ServerType,
        StorageConfig,
    },
    k8ssandra::{
        CassandraClusterMeta, CassandraConfig, CassandraDatacenterTemplate, DatacenterOptions,
        EmbeddedObjectMeta, JvmOptions, K8ssandraCluster, K8ssandraVolumes, ServicesMeta, Tags,
    },
};

/// One datacenter of a K8ssandraCluster with everything it inherits from the cluster resolved.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ResolvedDatacenter {
    /// Cassandra cluster name.
    pub cluster_name: String,
    /// Server distribution.
    pub server_type: ServerType,
    /// Secret with the superuser credentials.
    pub superuser_secret_name: String,
    /// Seeds outside the K8ssandraCluster.
    pub additional_seeds: Vec<String>,
    /// Name, namespace and metadata, the cluster's merged under the datacenter's.
    pub meta: EmbeddedObjectMeta,
    /// Kubernetes context; empty for the control plane's own cluster.
    pub k8s_context: String,
    /// Number of Cassandra nodes.
    pub size: i32,
    /// Whether the datacenter is stopped.
    pub stopped: bool,
    /// Per-node configuration ConfigMap.
    pub per_node_config_map_ref: Option<crate::reference::LocalObjectReference>,
    /// Every option, the datacenter's merged over the cluster's.
    pub options: DatacenterOptions,
}

/// Resolves every datacenter of a K8ssandraCluster, in order; none when it has no `spec.cassandra`.
#[must_use]
pub fn resolve_datacenters(k8c: &K8ssandraCluster) -> Vec<ResolvedDatacenter> {
    let Some(template) = k8c.spec.cassandra.as_ref() else {
        return Vec::new();
    };
    let cluster_name = k8c.cassandra_cluster_name();
    let superuser_secret_name = k8c.superuser_secret_name();
    template
        .datacenters
        .iter()
        .flatten()
        .map(|dc| ResolvedDatacenter {
            cluster_name: cluster_name.clone(),
            server_type: k8c.server_type(),
            superuser_secret_name: superuser_secret_name.clone(),
            additional_seeds: template.additional_seeds.clone().unwrap_or_default(),
            meta: merge_metadata(template.metadata.as_ref(), &dc.metadata),
            k8s_context: dc.k8s_context.clone().unwrap_or_default(),
            size: dc.size,
            stopped: dc.stopped.unwrap_or(false),
            per_node_config_map_ref: dc.per_node_config_map_ref.clone(),
            options: merge_options(&template.options, dc),
        })
        .collect()
}

/// The cluster-level options with the datacenter's merged over them.
#[must_use]
pub fn merge_options(
    cluster: &DatacenterOptions,
    dc: &CassandraDatacenterTemplate,
) -> DatacenterOptions {
    let mut merged = cluster.clone();
    merged.merge_from(dc.options.clone());
    merged
}

/// The cluster's metadata with the datacenter's merged over it.
fn merge_metadata(
    cluster: Option<&CassandraClusterMeta>,
    dc: &EmbeddedObjectMeta,
) -> EmbeddedObjectMeta {
    let mut tags = cluster.cloned().unwrap_or_default();
    tags.merge_from(dc.tags.clone());
    EmbeddedObjectMeta { tags, ..dc.clone() }
}

impl DeepMerge for CassandraClusterMeta {
    fn merge_from(&mut self, other: Self) {
        map::granular(&mut self.labels, other.labels, overwrite);
        map::granular(&mut self.annotations, other.annotations, overwrite);
        map::granular(&mut self.common_labels, other.common_labels, overwrite);
        map::granular(
            &mut self.common_annotations,
            other.common_annotations,
            overwrite,
        );
        self.pods.merge_from(other.pods);
        self.services.merge_from(other.services);
    }
}

fn overwrite<T>(current: &mut T, new: T) {
    *current = new;
}

/// `current` takes `new` when `new` is set: scalars, three-state booleans, atomic values.
fn take<T>(current: &mut Option<T>, new: Option<T>) {
    if new.is_some() {
        *current = new;
    }
}

impl DeepMerge for DatacenterOptions {
    fn merge_from(&mut self, other: Self) {
        take(&mut self.server_version, other.server_version);
        take(&mut self.server_image, other.server_image);
        self.config.merge_from(other.config);
        self.storage_config.merge_from(other.storage_config);
        self.networking.merge_from(other.networking);
        self.resources.merge_from(other.resources);
        list::map(
            &mut self.racks,
            other.racks,
            &[|a, b| a.name == b.name],
            DeepMerge::merge_from,
        );
        take(
            &mut self.jmx_init_container_image,
            other.jmx_init_container_image,
        );
        take(
            &mut self.soft_pod_anti_affinity,
            other.soft_pod_anti_affinity,
        );
        list::atomic(&mut self.tolerations, other.tolerations);
        take(&mut self.mgmt_api_heap, other.mgmt_api_heap);
        self.telemetry.merge_from(other.telemetry);
        self.cdc.merge_from(other.cdc);
        list::map(
            &mut self.containers,
            other.containers,
            &[|a, b| a.name == b.name],
            merge_container,
        );
        list::map(
            &mut self.init_containers,
            other.init_containers,
            &[|a, b| a.name == b.name],
            merge_container,
        );
        self.extra_volumes.merge_from(other.extra_volumes);
        self.dse_workloads.merge_from(other.dse_workloads);
        self.pod_security_context
            .merge_from(other.pod_security_context);
        take(
            &mut self.pod_priority_class_name,
            other.pod_priority_class_name,
        );
        take(&mut self.management_api_auth, other.management_api_auth);
        take(
            &mut self.per_node_config_init_container_image,
            other.per_node_config_init_container_image,
        );
        take(&mut self.service_account, other.service_account);
        take(&mut self.datacenter_name, other.datacenter_name);
        take(
            &mut self.read_only_root_filesystem,
            other.read_only_root_filesystem,
        );
        take(
            &mut self.max_concurrent_rebuilds,
            other.max_concurrent_rebuilds,
        );
        match (&mut self.rebuild, other.rebuild) {
            (Some(current), Some(new)) => {
                take(&mut current.source_dc, new.source_dc);
                take(
                    &mut current.max_concurrent_rebuilds,
                    new.max_concurrent_rebuilds,
                );
            }
            (current, new) => take(current, new),
        }
    }
}

/// Merges a datacenter's container over the cluster's of the same name. Env vars are replaced whole
/// by name, so a variable never ends up with both `value` and `valueFrom`.
fn merge_container(current: &mut Container, other: Container) {
    let env = other.env.clone();
    current.merge_from(other);
    if let (Some(merged), Some(env)) = (current.env.as_mut(), env) {
        for var in env {
            if let Some(slot) = merged.iter_mut().find(|v| v.name == var.name) {
                *slot = var;
            }
        }
    }
}

impl DeepMerge for CassandraConfig {
    fn merge_from(&mut self, other: Self) {
        self.cassandra_yaml.merge_from(other.cassandra_yaml);
        self.jvm_options.merge_from(other.jvm_options);
        self.dse_yaml.merge_from(other.dse_yaml);
    }
}

impl DeepMerge for JvmOptions {
    fn merge_from(&mut self, other: Self) {
        self.take_set_options(other);
    }
}

impl DeepMerge for StorageConfig {
    fn merge_from(&mut self, other: Self) {
        self.cassandra_data_volume_claim_spec
            .merge_from(other.cassandra_data_volume_claim_spec);
        list::map(
            &mut self.additional_volumes,
            other.additional_volumes,
            &[|a, b| a.name == b.name],
            DeepMerge::merge_from,
        );
    }
}

impl DeepMerge for AdditionalVolumes {
    fn merge_from(&mut self, other: Self) {
        self.mount_path = other.mount_path;
        self.pvc_spec.merge_from(other.pvc_spec);
        take(&mut self.volume_source, other.volume_source);
    }
}

impl DeepMerge for K8ssandraVolumes {
    fn merge_from(&mut self, other: Self) {
        list::map(
            &mut self.volumes,
            other.volumes,
            &[|a, b| a.name == b.name],
            overwrite,
        );
        list::map(
            &mut self.pvcs,
            other.pvcs,
            &[|a, b| a.name == b.name],
            DeepMerge::merge_from,
        );
    }
}

impl DeepMerge for Rack {
    fn merge_from(&mut self, other: Self) {
        take(&mut self.zone, other.zone);
        map::granular(
            &mut self.node_affinity_labels,
            other.node_affinity_labels,
            overwrite,
        );
        self.affinity.merge_from(other.affinity);
    }
}

impl DeepMerge for NetworkingConfig {
    fn merge_from(&mut self, other: Self) {
        self.node_port.merge_from(other.node_port);
        take(&mut self.host_network, other.host_network);
    }
}

impl DeepMerge for NodePortConfig {
    fn merge_from(&mut self, other: Self) {
        take(&mut self.native, other.native);
        take(&mut self.native_ssl, other.native_ssl);
        take(&mut self.internode, other.internode);
        take(&mut self.internode_ssl, other.internode_ssl);
    }
}

impl DeepMerge for DseWorkloads {
    fn merge_from(&mut self, other: Self) {
        take(&mut self.analytics_enabled, other.analytics_enabled);
        take(&mut self.graph_enabled, other.graph_enabled);
        take(&mut self.search_enabled, other.search_enabled);
    }
}

impl DeepMerge for Tags {
    fn merge_from(&mut self, other: Self) {
        map::granular(&mut self.labels, other.labels, overwrite);
        map::granular(&mut self.annotations, other.annotations, overwrite);
    }
}

impl DeepMerge for ServicesMeta {
    fn merge_from(&mut self, other: Self) {
        self.dc_service.merge_from(other.dc_service);
        self.seed_service.merge_from(other.seed_service);
        self.all_pods_service.merge_from(other.all_pods_service);
        self.additional_seed_service
            .merge_from(other.additional_seed_service);
        self.node_port_service.merge_from(other.node_port_service);
    }
}
