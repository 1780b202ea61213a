//! Pure builders of every object the data plane creates for a `CassandraDatacenter`.
//!
//! Each builder takes the datacenter (plus small explicit inputs) and returns a k8s-openapi object
//! ready for server-side apply: `metadata.name`, `namespace`, labels, annotations (with the
//! resource hash) and the controller owner reference are filled in.

pub mod cleanup_task;
pub mod config;
pub mod hash;
pub mod image_file;
pub mod images;
pub mod owner;
pub mod pdb;
pub mod pod_template;
pub mod services;
pub mod statefulset;
pub mod superuser_secret;

use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use k8ssandra_api::{cassandra::CassandraDatacenter, labels, names};

/// Why a datacenter's children could not be built.
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    /// The datacenter has no `metadata.name` or `metadata.uid` (it was not read from the API).
    #[error(
        "the CassandraDatacenter has no {0}; only objects read from the API server can own children"
    )]
    MissingMetadata(&'static str),
    /// No image is known for this server type and version, and no `serverImage` is given.
    #[error("server '{server_type}' and version '{version}' do not work together; set serverImage")]
    UnsupportedVersion {
        /// `spec.serverType`.
        server_type: String,
        /// `spec.serverVersion`.
        version: String,
    },
    /// `spec.storageConfig.cassandraDataVolumeClaimSpec` is required.
    #[error("storageConfig.cassandraDataVolumeClaimSpec is required")]
    MissingDataVolumeClaim,
    /// `spec.configSecret` is set but the datacenter lacks the config-hash annotation the
    /// controller writes once it copied the Secret.
    #[error(
        "datacenter uses configSecret but has no {} annotation yet",
        labels::annotations::CONFIG_HASH
    )]
    MissingConfigHash,
    /// `spec.config` is not a JSON object.
    #[error("spec.config must be an object of configuration files")]
    InvalidConfig,
    /// An additional volume's `volumeSource` is not a valid volume source.
    #[error("storageConfig.additionalVolumes[{name}].volumeSource is invalid: {source}")]
    InvalidVolumeSource {
        /// The volume's name.
        name: String,
        /// What serde said.
        source: serde_json::Error,
    },
    /// A builder was asked for a rack the datacenter does not list.
    #[error("rack '{0}' is not a rack of this datacenter")]
    UnknownRack(String),
    /// An object could not be serialised for hashing (never expected for k8s-openapi types).
    #[error("could not serialise the object for hashing: {0}")]
    Serialize(#[from] serde_json::Error),
}

/// Result of a builder.
pub type Result<T, E = BuildError> = std::result::Result<T, E>;

/// Cluster name as written in the spec.
pub(crate) fn cluster_name(dc: &CassandraDatacenter) -> &str {
    &dc.spec.cluster_name
}

/// `metadata.name` of the datacenter, or an error when it is missing.
pub(crate) fn dc_object_name(dc: &CassandraDatacenter) -> Result<&str> {
    dc.metadata
        .name
        .as_deref()
        .filter(|n| !n.is_empty())
        .ok_or(BuildError::MissingMetadata("metadata.name"))
}

/// The operator's labels on every object (upstream's `AddOperatorLabels`): the
/// `app.kubernetes.io/*` set plus `spec.additionalLabels` with cleaned values.
pub(crate) fn operator_labels(dc: &CassandraDatacenter) -> BTreeMap<String, String> {
    let mut out = labels::data_plane_app_labels(cluster_name(dc), &dc.spec.server_version);
    for (k, v) in dc.spec.additional_labels.iter().flatten() {
        out.insert(k.clone(), names::clean_label_value(v));
    }
    out
}

/// The operator's app labels that no spec change alters (no version, no `additionalLabels`), for
/// what Kubernetes never lets change: StatefulSet claim templates.
pub(crate) fn fixed_app_labels(dc: &CassandraDatacenter) -> BTreeMap<String, String> {
    let mut out = labels::data_plane_app_labels(cluster_name(dc), &dc.spec.server_version);
    out.remove(labels::VERSION);
    out
}

/// The operator's annotations on every object: `spec.additionalAnnotations`.
pub(crate) fn operator_annotations(dc: &CassandraDatacenter) -> BTreeMap<String, String> {
    dc.spec.additional_annotations.clone().unwrap_or_default()
}

/// Labels naming the cluster and datacenter (datacenter = object name, as upstream).
pub(crate) fn dc_labels(dc: &CassandraDatacenter) -> Result<BTreeMap<String, String>> {
    Ok(labels::datacenter_labels(
        cluster_name(dc),
        dc_object_name(dc)?,
    ))
}

/// Labels naming the cluster, datacenter and rack.
pub(crate) fn rack_labels(
    dc: &CassandraDatacenter,
    rack: &str,
) -> Result<BTreeMap<String, String>> {
    Ok(labels::rack_labels(
        cluster_name(dc),
        dc_object_name(dc)?,
        rack,
    ))
}

/// `a` with every entry of `b` added (later wins).
pub(crate) fn merged(
    mut a: BTreeMap<String, String>,
    b: BTreeMap<String, String>,
) -> BTreeMap<String, String> {
    a.extend(b);
    a
}

/// `None` for an empty map, so that empty maps do not appear in the built objects.
pub(crate) fn non_empty(map: BTreeMap<String, String>) -> Option<BTreeMap<String, String>> {
    (!map.is_empty()).then_some(map)
}

/// Metadata of an object the datacenter owns: name, namespace, labels, annotations, owner.
pub(crate) fn owned_meta(
    dc: &CassandraDatacenter,
    name: String,
    labels: BTreeMap<String, String>,
    annotations: BTreeMap<String, String>,
) -> Result<ObjectMeta> {
    Ok(ObjectMeta {
        name: Some(name),
        namespace: dc.metadata.namespace.clone(),
        labels: non_empty(labels),
        annotations: non_empty(annotations),
        owner_references: Some(vec![owner::controller_reference(dc)?]),
        ..ObjectMeta::default()
    })
}
