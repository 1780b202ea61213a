//! The K8ssandraTask: one CassandraTask per datacenter of a K8ssandraCluster.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::ObjectReference;
use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::{CassandraTaskStatus, CassandraTaskTemplate};

/// An operation on some or all datacenters of a K8ssandraCluster.
#[derive(CustomResource, Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[kube(
    group = "control.k8ssandra.io",
    version = "v1alpha1",
    kind = "K8ssandraTask",
    plural = "k8ssandratasks",
    namespaced,
    status = "K8ssandraTaskStatus",
    derive = "PartialEq",
    derive = "Default",
    doc = "An operation run on the datacenters of a K8ssandraCluster, one CassandraTask per datacenter.",
    printcolumn(
        name = "Job",
        type_ = "string",
        json_path = ".spec.template.jobs[0].command",
        description = "The job that is executed"
    ),
    printcolumn(
        name = "Scheduled",
        type_ = "date",
        json_path = ".spec.template.scheduledTime",
        description = "When the execution of the task is allowed at earliest"
    ),
    printcolumn(
        name = "Started",
        type_ = "date",
        json_path = ".status.startTime",
        description = "When the execution of the task started"
    ),
    printcolumn(
        name = "Completed",
        type_ = "date",
        json_path = ".status.completionTime",
        description = "When the execution of the task finished"
    )
)]
#[serde(rename_all = "camelCase", remote = "Self")]
pub struct K8ssandraTaskSpec {
    /// The K8ssandraCluster; its namespace defaults to the task's. Optional in the schema, as
    /// upstream's (a task without it is reported, not refused).
    #[serde(default)]
    pub cluster: ObjectReference,
    /// Datacenters to run on, in this order; all when empty.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub datacenters: Option<Vec<String>>,
    /// `Forbid` (the default: one datacenter after the other, stop at the first failure) or `Allow`
    /// (all at once).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schemars(extend("enum" = ["Allow", "Forbid"]))]
    pub dc_concurrency_policy: Option<String>,
    /// What each datacenter's CassandraTask runs.
    #[serde(default)]
    pub template: CassandraTaskTemplate,
}

// Upstream's spec is optional and its own fixtures write an empty `spec:`: an absent or null spec
// reads as the empty one, and the empty one is written as null (so it reads back the same).
impl Serialize for K8ssandraTaskSpec {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        if *self == Self::default() {
            serializer.serialize_none()
        } else {
            Self::serialize(self, serializer)
        }
    }
}

impl<'de> Deserialize<'de> for K8ssandraTaskSpec {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        struct Present(#[serde(with = "K8ssandraTaskSpec")] K8ssandraTaskSpec);
        Ok(Option::<Present>::deserialize(deserializer)?
            .map(|present| present.0)
            .unwrap_or_default())
    }
}

/// Observed state of a K8ssandraTask: the aggregate, and each datacenter's.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct K8ssandraTaskStatus {
    /// Aggregate over every datacenter.
    #[serde(flatten)]
    pub aggregate: CassandraTaskStatus,
    /// Per datacenter.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub datacenters: Option<BTreeMap<String, CassandraTaskStatus>>,
}
