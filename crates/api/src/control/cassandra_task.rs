//! The CassandraTask: one operation run on every pod of a datacenter.

use std::collections::BTreeMap;

use k8s_openapi::{api::core::v1::ObjectReference, apimachinery::pkg::apis::meta::v1::Time};
use kube::{CustomResource, KubeSchema};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::conditions::Condition;

/// An operation on a datacenter's nodes: cleanup, restart, rebuild, ...
#[derive(CustomResource, Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[kube(
    group = "control.k8ssandra.io",
    version = "v1alpha1",
    kind = "CassandraTask",
    plural = "cassandratasks",
    namespaced,
    status = "CassandraTaskStatus",
    derive = "PartialEq",
    derive = "Default",
    doc = "An operation run on the nodes of a CassandraDatacenter.",
    // A finished task is a record of what ran: an edit would silently not run.
    validation = Rule::new("!has(oldSelf.status) || !has(oldSelf.status.completionTime) || self.spec == oldSelf.spec").message("a finished task cannot be changed: create a new task to run it again"),
    printcolumn(
        name = "Datacenter",
        type_ = "string",
        json_path = ".spec.datacenter.name",
        description = "Datacenter which the task targets"
    ),
    printcolumn(
        name = "Job",
        type_ = "string",
        json_path = ".spec.jobs[0].command",
        description = "The job that is executed"
    ),
    printcolumn(
        name = "Scheduled",
        type_ = "date",
        json_path = ".spec.scheduledTime",
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
#[kube(cel)]
#[serde(rename_all = "camelCase")]
pub struct CassandraTaskSpec {
    /// The CassandraDatacenter the task runs on.
    pub datacenter: ObjectReference,
    /// What to run and how.
    #[serde(flatten)]
    pub template: CassandraTaskTemplate,
}

/// What a task runs and how; shared by CassandraTask and K8ssandraTask.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct CassandraTaskTemplate {
    /// Earliest time the task may start; at once when unset.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[x_kube(validation = Rule::new("self < timestamp('9000-01-01T00:00:00Z')").message("scheduledTime must be before the year 9000"))]
    pub scheduled_time: Option<Time>,
    /// The job to run (one job per task).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[x_kube(validation = Rule::new("size(self) <= 1").message("a task runs exactly one job"))]
    pub jobs: Option<Vec<CassandraJob>>,
    /// `Never` (the default) or `OnFailure`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub restart_policy: Option<String>,
    /// Seconds a finished task is kept (86400 when unset, 0 keeps it forever).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0))]
    pub ttl_seconds_after_finished: Option<i32>,
    /// `Forbid` (the default: no other task runs at the same time) or `Allow`.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schemars(extend("enum" = ["Allow", "Forbid"]))]
    pub concurrency_policy: Option<String>,
    /// Pods of one rack the job runs on at once (1 when unset).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1))]
    pub max_concurrent_pods: Option<i32>,
    /// Retries of a failed pod job with restartPolicy OnFailure.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0))]
    pub retries: Option<i32>,
}

/// One job of a task.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct CassandraJob {
    /// Name of the job.
    pub name: String,
    /// The operation.
    pub command: CassandraCommand,
    /// Its arguments.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub args: Option<JobArguments>,
}

/// Operations a task can run.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum CassandraCommand {
    /// `nodetool cleanup` on every node.
    #[default]
    Cleanup,
    /// Stream data from another datacenter.
    Rebuild,
    /// Rolling restart.
    Restart,
    /// Rewrite SSTables of older formats.
    Upgradesstables,
    /// Replace a node (its data is streamed anew).
    Replacenode,
    /// Major or ranged compaction.
    Compact,
    /// Scrub SSTables.
    Scrub,
    /// Move single-token nodes.
    Move,
    /// Remove tombstones.
    Garbagecollect,
    /// Flush memtables.
    Flush,
    /// Refresh the datacenter's pod template.
    Refresh,
    /// Reload the internode truststore.
    Tsreload,
    /// This operator's: set the replication of keyspaces (`args.replication`), on one node.
    Updatereplication,
    /// This operator's: fail, naming them, while keyspaces other than the system ones replicate to
    /// the task's datacenter; on one node. Run before a datacenter is decommissioned.
    Checkdecommission,
}

/// Arguments of a job; which ones apply depends on the command.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct JobArguments {
    /// Keyspace to work on (all when empty).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub keyspace_name: Option<String>,
    /// Datacenter to stream from (rebuild).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub source_datacenter: Option<String>,
    /// Pod to work on.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pod_name: Option<String>,
    /// Rack to work on.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rack: Option<String>,
    /// Tables to work on.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tables: Option<Vec<String>>,
    /// Parallel jobs on a node.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub jobs: Option<i64>,
    /// Scrub: do not validate columns.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub no_validate: Option<bool>,
    /// Scrub: no snapshot first.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub no_snapshot: Option<bool>,
    /// Scrub: skip corrupted partitions.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub skip_corrupted: Option<bool>,
    /// Compaction: split the output.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub split_output: Option<bool>,
    /// Compaction: first token of the range.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub start_token: Option<String>,
    /// Compaction: last token of the range.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub end_token: Option<String>,
    /// Move: new token per pod name.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub new_tokens: Option<BTreeMap<String, String>>,
    /// Restart: several nodes, or a whole rack, at once.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fast: Option<bool>,
    /// Run even when the operator considers it unsafe.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub force: Option<bool>,
    /// Updatereplication (this operator's): per keyspace, the replication factor per datacenter
    /// to set; datacenters not named keep theirs, and a factor of 0 removes the datacenter.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub replication: Option<BTreeMap<String, BTreeMap<String, i32>>>,
}

/// Observed state of a task.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct CassandraTaskStatus {
    /// `Running`, `Complete`, `Failed`, `DatacenterUpdated` (and `Invalid` on K8ssandraTasks).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "crate::conditions::list_schema")]
    pub conditions: Option<Vec<Condition>>,
    /// When the task started.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub start_time: Option<Time>,
    /// When the task finished successfully.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub completion_time: Option<Time>,
    /// Pods the job runs on now.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub active: Option<i64>,
    /// Pods the job succeeded on.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub succeeded: Option<i64>,
    /// Pods the job failed on.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub failed: Option<i64>,
    /// Per pod: where the job stands (not in upstream's status).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pod_statuses: Option<BTreeMap<String, PodJobStatus>>,
}

/// Where a task's job stands on one pod.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PodJobStatus {
    /// `WAITING`, `RUNNING`, `COMPLETED` or `ERROR`.
    pub status: String,
    /// Management API job ID of an asynchronous job.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub job_id: Option<String>,
    /// Retries so far.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub retries: Option<i32>,
    /// Why the job failed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// When the job started on the pod.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub start_time: Option<Time>,
    /// When the job finished on the pod.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub completion_time: Option<Time>,
}

/// Condition types of tasks.
pub mod task_condition {
    /// The job runs.
    pub const RUNNING: &str = "Running";
    /// The job finished on every pod.
    pub const COMPLETE: &str = "Complete";
    /// The job failed.
    pub const FAILED: &str = "Failed";
    /// The datacenter was updated by the task.
    pub const DATACENTER_UPDATED: &str = "DatacenterUpdated";
    /// The task cannot run as written (K8ssandraTask).
    pub const INVALID: &str = "Invalid";
}
