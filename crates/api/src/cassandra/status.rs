//! The CassandraDatacenter status.

use std::collections::BTreeMap;

use k8s_openapi::{api::core::v1::ObjectReference, apimachinery::pkg::apis::meta::v1::Time};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::conditions::Condition;

/// Observed state of a CassandraDatacenter.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct CassandraDatacenterStatus {
    /// Conditions: see [`condition`] for the types.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[serde(default)]
    #[schemars(schema_with = "crate::conditions::list_schema")]
    pub conditions: Option<Vec<Condition>>,
    /// Deprecated: when the superuser was last created or updated.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub super_user_upserted: Option<Time>,
    /// When the roles of `spec.users` were last created or updated.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub users_upserted: Option<Time>,
    /// When a node was last asked to start.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_server_node_started: Option<Time>,
    /// `Updating` while the operator works, `Ready` when it is done.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cassandra_operator_progress: Option<ProgressState>,
    /// When the last rolling restart began.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_rolling_restart: Option<Time>,
    /// Per pod: host ID, IP and rack of the Cassandra node.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub node_statuses: Option<BTreeMap<String, CassandraNodeStatus>>,
    /// Pods being replaced.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub node_replacements: Option<Vec<String>>,
    /// Until when the operator waits before acting again.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub quiet_period: Option<Time>,
    /// Generation of the spec the status was computed from.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// Tasks the datacenter waits for.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tracked_tasks: Option<Vec<ObjectReference>>,
    /// Pods whose last start failed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub failed_starts: Option<Vec<String>>,
    /// The Cassandra-side datacenter name the datacenter runs under.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub datacenter_name: Option<String>,
    /// Version of the operator's metadata layout.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub metadata_version: Option<i64>,
    /// Cassandra nodes started and ready (not in upstream's status; shown by `kubectl get cassdc`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ready_nodes: Option<i32>,
}

/// What a Cassandra node reported about itself.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct CassandraNodeStatus {
    /// Cassandra host ID.
    #[serde(rename = "hostID", skip_serializing_if = "Option::is_none")]
    pub host_id: Option<String>,
    /// Address of the node.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ip: Option<String>,
    /// Rack of the node.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rack: Option<String>,
}

/// Whether the operator is still working on a datacenter.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum ProgressState {
    /// Changes are being made.
    Updating,
    /// The datacenter is as the spec asks.
    Ready,
}

/// Condition types of a CassandraDatacenter, as upstream names them.
pub mod condition {
    /// All nodes are started and ready.
    pub const READY: &str = "Ready";
    /// The datacenter came up once.
    pub const INITIALIZED: &str = "Initialized";
    /// Nodes are being replaced.
    pub const REPLACING_NODES: &str = "ReplacingNodes";
    /// Nodes are being added.
    pub const SCALING_UP: &str = "ScalingUp";
    /// Nodes are being decommissioned.
    pub const SCALING_DOWN: &str = "ScalingDown";
    /// The pods are being updated.
    pub const UPDATING: &str = "Updating";
    /// The datacenter is stopped.
    pub const STOPPED: &str = "Stopped";
    /// The datacenter is coming back from stopped.
    pub const RESUMING: &str = "Resuming";
    /// A rolling restart is in progress.
    pub const ROLLING_RESTART: &str = "RollingRestart";
    /// The spec can be acted on.
    pub const VALID: &str = "Valid";
    /// The datacenter is being decommissioned.
    pub const DECOMMISSION: &str = "Decommission";
    /// The pods differ from what this operator would build, and updates are not allowed.
    pub const REQUIRES_UPDATE: &str = "RequiresUpdate";
    /// Volumes are being resized.
    pub const RESIZING_VOLUMES: &str = "ResizingVolumes";
    /// Every started node answers the cluster health probe.
    pub const HEALTHY: &str = "Healthy";
}
