//! What the operators check before acting, beyond what admission (schema and CEL) already refuses:
//! rules that need the merged template, other objects, or the object's metadata. Every problem is
//! reported, each with the path of the field at fault.

use std::fmt;

use crate::{
    cassandra::{CassandraDatacenter, ServerType},
    k8ssandra::K8ssandraCluster,
    labels::annotations,
    merge::{self, ResolvedDatacenter},
    names,
};

/// One problem with a spec: the field at fault and what is wrong with it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FieldError {
    /// Path of the field, e.g. `spec.cassandra.datacenters[1].size`.
    pub path: String,
    /// What is wrong, in words a user can act on.
    pub message: String,
}

impl fmt::Display for FieldError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.path, self.message)
    }
}

/// Every problem found in a spec.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub struct ValidationErrors(pub Vec<FieldError>);

impl fmt::Display for ValidationErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let messages: Vec<String> = self.0.iter().map(ToString::to_string).collect();
        f.write_str(&messages.join("; "))
    }
}

/// Collects problems while a spec is walked.
#[derive(Default)]
struct Problems(Vec<FieldError>);

impl Problems {
    fn add(&mut self, path: impl Into<String>, message: impl Into<String>) {
        self.0.push(FieldError {
            path: path.into(),
            message: message.into(),
        });
    }

    fn into_result(self) -> Result<(), ValidationErrors> {
        if self.0.is_empty() {
            Ok(())
        } else {
            Err(ValidationErrors(self.0))
        }
    }
}

/// Checks a K8ssandraCluster. `known_contexts` lists the Kubernetes contexts the control plane can
/// reach (from ClientConfigs); `None` skips that check.
///
/// # Errors
/// Every problem found.
pub fn validate_k8ssandra_cluster(
    k8c: &K8ssandraCluster,
    known_contexts: Option<&[String]>,
) -> Result<(), ValidationErrors> {
    let mut problems = Problems::default();
    check_autoupdate_annotation(
        &mut problems,
        k8c.metadata
            .annotations
            .as_ref()
            .and_then(|a| a.get(annotations::K8SSANDRA_AUTOUPDATE_SPEC)),
        annotations::K8SSANDRA_AUTOUPDATE_SPEC,
    );
    let Some(cassandra) = k8c.spec.cassandra.as_ref() else {
        problems.add(
            "spec.cassandra",
            "is required: it describes the Cassandra cluster and its datacenters",
        );
        return problems.into_result();
    };
    let cluster_name = k8c.cassandra_cluster_name();
    if names::cleanup_for_kubernetes(&cluster_name).is_empty() {
        problems.add(
            "spec.cassandra.clusterName",
            format!("{cluster_name:?} has no characters usable in Kubernetes object names"),
        );
    }
    let datacenters = cassandra.datacenters.as_deref().unwrap_or_default();
    if datacenters.is_empty() {
        problems.add(
            "spec.cassandra.datacenters",
            "at least one datacenter is required",
        );
    }
    let resolved = merge::resolve_datacenters(k8c);
    for (index, dc) in resolved.iter().enumerate() {
        let path = format!("spec.cassandra.datacenters[{index}]");
        if datacenters[..index]
            .iter()
            .any(|other| other.metadata.name == dc.meta.name)
        {
            problems.add(
                format!("{path}.metadata.name"),
                format!("{:?} is used by another datacenter", dc.meta.name),
            );
        }
        check_resolved_datacenter(&mut problems, &path, dc, known_contexts);
    }
    problems.into_result()
}

fn check_resolved_datacenter(
    problems: &mut Problems,
    path: &str,
    dc: &ResolvedDatacenter,
    known_contexts: Option<&[String]>,
) {
    if !names::is_dns1035_label(&dc.meta.name) {
        problems.add(
            format!("{path}.metadata.name"),
            format!("{:?} is not a DNS-1035 label (lower-case letters, digits and '-', starting with a letter, at most 63 characters)", dc.meta.name),
        );
    }
    if let Some(namespace) = dc.meta.namespace.as_deref()
        && !names::is_dns1123_label(namespace)
    {
        problems.add(
            format!("{path}.metadata.namespace"),
            format!("{namespace:?} is not a valid namespace name"),
        );
    }
    if let Some(contexts) = known_contexts
        && !dc.k8s_context.is_empty()
        && !contexts.contains(&dc.k8s_context)
    {
        problems.add(
            format!("{path}.k8sContext"),
            format!(
                "no ClientConfig provides the context {:?} (known: {})",
                dc.k8s_context,
                contexts.join(", ")
            ),
        );
    }
    let options = &dc.options;
    match options.server_version.as_deref() {
        None => problems.add(
            format!("{path}.serverVersion"),
            "is required, at cluster or datacenter level",
        ),
        Some(version) => check_server_version(
            problems,
            &format!("{path}.serverVersion"),
            dc.server_type,
            version,
        ),
    }
    match options.storage_config.as_ref() {
        None => problems.add(
            format!("{path}.storageConfig"),
            "is required, at cluster or datacenter level",
        ),
        Some(storage) => check_data_volume(
            problems,
            &format!("{path}.storageConfig.cassandraDataVolumeClaimSpec"),
            storage.cassandra_data_volume_claim_spec.as_ref(),
        ),
    }
    if options.soft_pod_anti_affinity == Some(true) && options.resources.is_none() {
        problems.add(
            format!("{path}.softPodAntiAffinity"),
            "requires resources (at cluster or datacenter level), so that pods sharing a worker do not starve each other",
        );
    }
    if let Some(yaml) = options
        .config
        .as_ref()
        .and_then(|c| c.cassandra_yaml.as_ref())
        && yaml.get("commitlog_sync_period_in_ms").is_some()
        && yaml.get("commitlog_sync_batch_window_in_ms").is_some()
    {
        problems.add(
            format!("{path}.config.cassandraYaml"),
            "commitlog_sync_period_in_ms and commitlog_sync_batch_window_in_ms cannot both be set",
        );
    }
    let dc_label_name = names::cleanup_for_kubernetes(&dc.meta.name);
    for (rack_index, rack) in options.racks.iter().flatten().enumerate() {
        check_statefulset_name(
            problems,
            &format!("{path}.racks[{rack_index}].name"),
            &dc.cluster_name,
            &dc_label_name,
            &rack.name,
        );
    }
    if options.racks.as_ref().is_none_or(Vec::is_empty) {
        check_statefulset_name(
            problems,
            &format!("{path}.metadata.name"),
            &dc.cluster_name,
            &dc_label_name,
            crate::defaults::DEFAULT_RACK,
        );
    }
}

/// Checks a CassandraDatacenter.
///
/// # Errors
/// Every problem found.
pub fn validate_datacenter(dc: &CassandraDatacenter) -> Result<(), ValidationErrors> {
    let mut problems = Problems::default();
    let spec = &dc.spec;
    check_autoupdate_annotation(
        &mut problems,
        dc.metadata
            .annotations
            .as_ref()
            .and_then(|a| a.get(annotations::AUTOUPDATE_SPEC)),
        annotations::AUTOUPDATE_SPEC,
    );
    if names::cleanup_for_kubernetes(&spec.cluster_name).is_empty() {
        problems.add(
            "spec.clusterName",
            format!(
                "{:?} has no characters usable in Kubernetes object names",
                spec.cluster_name
            ),
        );
    }
    check_server_version(
        &mut problems,
        "spec.serverVersion",
        spec.server_type,
        &spec.server_version,
    );
    if spec.size < 1 {
        problems.add("spec.size", format!("must be at least 1, is {}", spec.size));
    }
    check_data_volume(
        &mut problems,
        "spec.storageConfig.cassandraDataVolumeClaimSpec",
        spec.storage_config
            .cassandra_data_volume_claim_spec
            .as_ref(),
    );
    let mut mount_paths = Vec::new();
    for (index, volume) in spec
        .storage_config
        .additional_volumes
        .iter()
        .flatten()
        .enumerate()
    {
        let path = format!("spec.storageConfig.additionalVolumes[{index}]");
        if volume.pvc_spec.is_some() == volume.volume_source.is_some() {
            problems.add(
                path.clone(),
                "exactly one of pvcSpec and volumeSource must be set",
            );
        }
        if mount_paths.contains(&volume.mount_path) {
            problems.add(
                format!("{path}.mountPath"),
                format!("{:?} is mounted twice", volume.mount_path),
            );
        }
        mount_paths.push(volume.mount_path.clone());
    }
    let dc_label_name = dc.label_resource_name();
    let racks = spec.racks_or_default();
    for (index, rack) in racks.iter().enumerate() {
        let path = format!("spec.racks[{index}].name");
        if racks[..index].iter().any(|r| r.name == rack.name) {
            problems.add(
                path.clone(),
                format!("{:?} is used by another rack", rack.name),
            );
        }
        check_statefulset_name(
            &mut problems,
            &path,
            &spec.cluster_name,
            &dc_label_name,
            &rack.name,
        );
        // Names that differ in the spec may not differ once cleaned up for Kubernetes.
        let sts = names::rack_statefulset(&spec.cluster_name, &dc_label_name, &rack.name);
        let label = names::clean_label_value(&rack.name);
        if let Some(other) = racks[..index].iter().find(|r| {
            r.name != rack.name
                && (names::rack_statefulset(&spec.cluster_name, &dc_label_name, &r.name) == sts
                    || names::clean_label_value(&r.name) == label)
        }) {
            problems.add(
                path.clone(),
                format!(
                    "{:?} and {:?} name the same rack once cleaned up for Kubernetes \
                     (StatefulSet {sts}, label {label}); give the racks names that differ in \
                     lower-case letters and digits",
                    other.name, rack.name
                ),
            );
        }
    }
    if let Some(config) = spec.config.as_ref() {
        check_config_bounds(&mut problems, "spec.config", config);
        if !config.is_object() {
            problems.add("spec.config", "must be an object of configuration files (cassandra-yaml, jvm-server-options, ...)");
        } else if let Some(yaml) = config.get("cassandra-yaml")
            && !yaml.is_object()
        {
            problems.add(
                "spec.config.cassandra-yaml",
                "must be an object of cassandra.yaml settings",
            );
        }
    }
    if spec.allows_multiple_nodes_per_worker() {
        let has_all = |list: Option<&std::collections::BTreeMap<String, _>>| {
            list.is_some_and(|l| l.contains_key("cpu") && l.contains_key("memory"))
        };
        let resources = spec.resources.as_ref();
        if !has_all(resources.and_then(|r| r.requests.as_ref()))
            || !has_all(resources.and_then(|r| r.limits.as_ref()))
        {
            problems.add(
                "spec.resources",
                "allowMultipleNodesPerWorker requires cpu and memory requests and limits",
            );
        }
    }
    for (index, user) in spec.users.iter().flatten().enumerate() {
        if user.secret_name.is_empty() {
            problems.add(
                format!("spec.users[{index}].secretName"),
                "must name a Secret",
            );
        }
    }
    for (index, seed) in spec.additional_seeds.iter().flatten().enumerate() {
        let is_ip = seed.parse::<std::net::IpAddr>().is_ok();
        if !is_ip && !names::is_dns1123_subdomain(&seed.to_ascii_lowercase()) {
            problems.add(
                format!("spec.additionalSeeds[{index}]"),
                format!("must be an IP address or a host name, is {seed:?}"),
            );
        }
    }
    // The operator calls the Management API on its port; a template that moves or renames it
    // would roll the pods while every call still goes to the old place.
    let cassandra_ports = spec
        .pod_template_spec
        .as_ref()
        .and_then(|t| t.spec.as_ref())
        .map(|s| s.containers.as_slice())
        .unwrap_or_default()
        .iter()
        .filter(|c| c.name == "cassandra")
        .flat_map(|c| c.ports.iter().flatten());
    let mgmt_port = i32::from(crate::defaults::MANAGEMENT_API_PORT);
    for port in cassandra_ports {
        let named = port.name.as_deref() == Some("mgmt-api");
        if named != (port.container_port == mgmt_port) {
            problems.add(
                "spec.podTemplateSpec.spec.containers[cassandra].ports",
                format!(
                    "the Management API is served on port {mgmt_port} named mgmt-api; the pod \
                     template may not move or rename it (port {} named {:?})",
                    port.container_port,
                    port.name.as_deref().unwrap_or_default()
                ),
            );
        }
    }
    let template_labels = spec
        .pod_template_spec
        .as_ref()
        .and_then(|t| t.metadata.as_ref())
        .and_then(|m| m.labels.as_ref());
    for key in template_labels.into_iter().flatten().map(|(k, _)| k) {
        if key.starts_with("cassandra.datastax.com/") {
            problems.add(
                format!("spec.podTemplateSpec.metadata.labels[{key}]"),
                "is the operator's own label (node state, seed, rack, ...) and may not be set in the pod template",
            );
        }
    }
    problems.into_result()
}

fn check_autoupdate_annotation(problems: &mut Problems, value: Option<&String>, key: &str) {
    if let Some(value) = value
        && value != "once"
        && value != "always"
    {
        problems.add(
            format!("metadata.annotations[{key}]"),
            format!("must be \"once\" or \"always\", is {value:?}"),
        );
    }
}

/// Versions this operator can run: Cassandra 3.11, 4.x, 5.x; DSE 6.8, 6.9; HCD 1.x.
fn check_server_version(
    problems: &mut Problems,
    path: &str,
    server_type: ServerType,
    version: &str,
) {
    let parts: Vec<&str> = version.split('.').collect();
    let numeric = parts.len() == 3
        && parts
            .iter()
            .all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()));
    if !numeric {
        problems.add(
            path,
            format!("{version:?} is not a version of the form major.minor.patch"),
        );
        return;
    }
    let supported = match server_type {
        ServerType::Cassandra => {
            matches!(parts[0], "4" | "5") || (parts[0] == "3" && parts[1] == "11")
        }
        ServerType::Dse => parts[0] == "6" && matches!(parts[1], "8" | "9"),
        ServerType::Hcd => parts[0] == "1",
    };
    if !supported {
        let known = match server_type {
            ServerType::Cassandra => "3.11.x, 4.x.y or 5.x.y",
            ServerType::Dse => "6.8.x or 6.9.x",
            ServerType::Hcd => "1.x.y",
        };
        problems.add(
            path,
            format!(
                "{} {version} is not supported; use {known}",
                server_type.as_str()
            ),
        );
    }
}

fn check_data_volume(
    problems: &mut Problems,
    path: &str,
    claim: Option<&k8s_openapi::api::core::v1::PersistentVolumeClaimSpec>,
) {
    let Some(claim) = claim else {
        problems.add(
            path,
            "is required: it is the template of every node's data volume",
        );
        return;
    };
    if claim.access_modes.as_ref().is_none_or(Vec::is_empty) {
        problems.add(
            format!("{path}.accessModes"),
            "is required, e.g. [ReadWriteOnce]",
        );
    }
    let has_storage = claim
        .resources
        .as_ref()
        .and_then(|r| r.requests.as_ref())
        .is_some_and(|r| r.contains_key("storage"));
    if !has_storage {
        problems.add(
            format!("{path}.resources.requests.storage"),
            "is required: the size of each node's data volume",
        );
    }
}

/// Largest `config` the operator accepts, as compact JSON: configuration files of a few KiB are
/// usual; far more would crowd etcd's object limit and every pod's init container.
pub const MAX_CONFIG_BYTES: usize = 256 * 1024;

/// Deepest nesting of `config` the operator accepts (cassandra.yaml nests a few levels).
pub const MAX_CONFIG_DEPTH: usize = 32;

fn depth(value: &serde_json::Value) -> usize {
    match value {
        serde_json::Value::Object(map) => 1 + map.values().map(depth).max().unwrap_or(0),
        serde_json::Value::Array(items) => 1 + items.iter().map(depth).max().unwrap_or(0),
        _ => 0,
    }
}

fn check_config_bounds(problems: &mut Problems, path: &str, config: &serde_json::Value) {
    let bytes = serde_json::to_vec(config).map_or(usize::MAX, |b| b.len());
    if bytes > MAX_CONFIG_BYTES {
        problems.add(
            path,
            format!(
                "is {} KiB, more than the {} KiB the operator accepts; keep large files in a \
                 ConfigMap or Secret",
                bytes / 1024,
                MAX_CONFIG_BYTES / 1024
            ),
        );
    }
    let levels = depth(config);
    if levels > MAX_CONFIG_DEPTH {
        problems.add(
            path,
            format!(
                "nests {levels} levels deep, more than the {MAX_CONFIG_DEPTH} the operator accepts"
            ),
        );
    }
}

fn check_statefulset_name(
    problems: &mut Problems,
    path: &str,
    cluster_name: &str,
    dc_label_name: &str,
    rack: &str,
) {
    let name = names::rack_statefulset(cluster_name, dc_label_name, rack);
    // A pod's name is its host name: a DNS label, so no dots.
    if name.contains('.') {
        problems.add(
            path,
            format!(
                "the pods of StatefulSet {name:?} would have dots in their names, which host names \
                 cannot have; use a rack name without dots"
            ),
        );
    }
    if name.len() > names::MAX_STATEFULSET_NAME_LEN {
        problems.add(
            path,
            format!(
                "the StatefulSet name {name:?} would be {} characters, more than {}; use shorter cluster, datacenter or rack names",
                name.len(),
                names::MAX_STATEFULSET_NAME_LEN
            ),
        );
    }
}

/// Checks a change of a K8ssandraCluster that admission cannot judge per datacenter: a datacenter
/// that stays keeps its storage class, does not shrink its data volumes, and keeps the order of its
/// racks, new racks going after the existing ones.
///
/// # Errors
/// Every problem found.
pub fn validate_k8ssandra_cluster_update(
    old: &K8ssandraCluster,
    new: &K8ssandraCluster,
) -> Result<(), ValidationErrors> {
    let mut problems = Problems::default();
    let old_dcs = merge::resolve_datacenters(old);
    let new_dcs = merge::resolve_datacenters(new);
    for (index, dc) in new_dcs.iter().enumerate() {
        let Some(before) = old_dcs.iter().find(|o| o.meta.name == dc.meta.name) else {
            continue;
        };
        let path = format!("spec.cassandra.datacenters[{index}]");
        let claim = |d: &ResolvedDatacenter| {
            d.options
                .storage_config
                .as_ref()
                .and_then(|s| s.cassandra_data_volume_claim_spec.clone())
        };
        if let (Some(was), Some(is)) = (claim(before), claim(dc)) {
            if was.storage_class_name != is.storage_class_name {
                problems.add(
                    format!("{path}.storageConfig.cassandraDataVolumeClaimSpec.storageClassName"),
                    format!(
                        "the storage class of datacenter {} cannot change from {:?} to {:?}",
                        dc.meta.name,
                        was.storage_class_name.clone().unwrap_or_default(),
                        is.storage_class_name.clone().unwrap_or_default()
                    ),
                );
            }
            let storage = |c: &k8s_openapi::api::core::v1::PersistentVolumeClaimSpec| {
                c.resources
                    .as_ref()
                    .and_then(|r| r.requests.as_ref())
                    .and_then(|r| r.get("storage"))
                    .map(|q| q.0.clone())
            };
            if let (Some(was), Some(is)) = (storage(&was), storage(&is))
                && crate::quantity::parse(&is) < crate::quantity::parse(&was)
            {
                problems.add(
                    format!("{path}.storageConfig.cassandraDataVolumeClaimSpec.resources.requests.storage"),
                    format!("the data volumes of datacenter {} cannot shrink from {was} to {is}", dc.meta.name),
                );
            }
        }
        let rack_names = |d: &ResolvedDatacenter| -> Vec<String> {
            d.options
                .racks
                .iter()
                .flatten()
                .map(|r| r.name.clone())
                .collect()
        };
        let (was, is) = (rack_names(before), rack_names(dc));
        let kept: Vec<&String> = was.iter().filter(|r| is.contains(r)).collect();
        let prefix: Vec<&String> = is.iter().take(kept.len()).collect();
        if !was.is_empty() && kept != prefix {
            problems.add(
                format!("{path}.racks"),
                format!(
                    "the racks of datacenter {} cannot be renamed or reordered, and new racks go after the existing ones (were [{}], now [{}])",
                    dc.meta.name,
                    was.join(", "),
                    is.join(", ")
                ),
            );
        }
    }
    problems.into_result()
}
