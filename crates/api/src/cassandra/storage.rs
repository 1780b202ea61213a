//! Storage and rack types shared by the CassandraDatacenter and the K8ssandraCluster templates.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{Affinity, PersistentVolumeClaimSpec, Volume};
use kube::KubeSchema;
use schemars::{JsonSchema, Schema, SchemaGenerator};
use serde::{Deserialize, Serialize};

/// Where a datacenter's data lives.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct StorageConfig {
    /// Template of the `server-data` volume claim of every Cassandra pod.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cassandra_data_volume_claim_spec: Option<PersistentVolumeClaimSpec>,
    /// Further volumes mounted into the Cassandra container.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub additional_volumes: Option<Vec<AdditionalVolumes>>,
}

/// A further volume of the Cassandra container: a claim template or a plain volume source.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, KubeSchema)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("has(self.pvcSpec) != has(self.volumeSource)").message("exactly one of pvcSpec and volumeSource must be set"))]
pub struct AdditionalVolumes {
    /// Volume name, unique in the pod.
    #[schemars(regex(pattern = "[a-z0-9]([-a-z0-9]*[a-z0-9])?"))]
    pub name: String,
    /// Where the volume is mounted in the Cassandra container.
    pub mount_path: String,
    /// Claim template: one claim per pod.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pvc_spec: Option<PersistentVolumeClaimSpec>,
    /// A plain volume (ConfigMap, Secret, emptyDir, ...).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub volume_source: Option<VolumeSource>,
}

/// One rack: a StatefulSet of Cassandra nodes, usually pinned to one zone.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct Rack {
    /// Rack name as Cassandra sees it; part of the StatefulSet name.
    #[schemars(length(min = 2, max = 63))]
    pub name: String,
    /// Deprecated: the zone, as a required node affinity on the zone label. Use nodeAffinityLabels.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub zone: Option<String>,
    /// Node labels the rack's pods require, added to the datacenter's.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub node_affinity_labels: Option<BTreeMap<String, String>>,
    /// Affinity of the rack's pods, merged into the pod template's.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub affinity: Option<Affinity>,
}

/// A volume source (configMap, secret, emptyDir, ...): a Kubernetes Volume without its name.
///
/// Kept as the JSON the user wrote; Kubernetes' Rust types have no separate volume-source type.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct VolumeSource(pub serde_json::Map<String, serde_json::Value>);

impl VolumeSource {
    /// The Volume this source makes under `name`.
    ///
    /// # Errors
    /// When the source is not a valid volume source.
    pub fn to_volume(&self, name: &str) -> Result<Volume, serde_json::Error> {
        let mut fields = self.0.clone();
        fields.insert("name".to_owned(), name.into());
        serde_json::from_value(serde_json::Value::Object(fields))
    }
}

impl JsonSchema for VolumeSource {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "VolumeSource".into()
    }

    fn json_schema(generator: &mut SchemaGenerator) -> Schema {
        let mut schema = Volume::json_schema(generator);
        if let Some(properties) = schema.get_mut("properties").and_then(|p| p.as_object_mut()) {
            properties.remove("name");
        }
        if let Some(required) = schema.get_mut("required").and_then(|r| r.as_array_mut()) {
            required.retain(|r| r != "name");
        }
        schema
    }
}
