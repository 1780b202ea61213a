//! The ScheduledTask (cass-operator's kind): a CassandraTask made on a cron schedule.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::CassandraTaskSpec;
use crate::conditions::Condition;

/// A CassandraTask made on a schedule.
#[derive(CustomResource, Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[kube(
    group = "control.k8ssandra.io",
    version = "v1alpha1",
    kind = "ScheduledTask",
    plural = "scheduledtasks",
    namespaced,
    status = "ScheduledTaskStatus",
    derive = "PartialEq",
    derive = "Default",
    doc = "A CassandraTask made on a cron schedule.",
    printcolumn(
        name = "Schedule",
        type_ = "string",
        json_path = ".spec.schedule",
        description = "When the task is made (cron, UTC)"
    ),
    printcolumn(
        name = "Datacenter",
        type_ = "string",
        json_path = ".spec.taskDetails.datacenter.name",
        description = "Datacenter which the tasks target"
    ),
    printcolumn(
        name = "Last",
        type_ = "date",
        json_path = ".status.lastExecution",
        description = "When a task was last made"
    ),
    printcolumn(
        name = "Next",
        type_ = "date",
        json_path = ".status.nextSchedule",
        description = "When the next task is made"
    )
)]
#[serde(rename_all = "camelCase")]
pub struct ScheduledTaskSpec {
    /// When to make the task: five cron fields (minute, hour, day of month, month, day of week)
    /// in UTC, or `@hourly`, `@daily`, `@weekly`, `@monthly`, `@yearly`, `@every <duration>`.
    #[serde(default)]
    pub schedule: String,
    /// The task to make.
    #[serde(default)]
    pub task_details: TaskDetails,
}

/// The CassandraTask a ScheduledTask makes.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct TaskDetails {
    /// Accepted as upstream's; the tasks are named `<ScheduledTask>-<unix time of the run>`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// The CassandraTask's spec.
    #[serde(flatten)]
    pub spec: CassandraTaskSpec,
}

/// What the schedule did.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ScheduledTaskStatus {
    /// When the next task is due.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_schedule: Option<Time>,
    /// When a task was last made; never, when unset.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_execution: Option<Time>,
    /// `Valid`: whether the schedule and the task can be acted on, and why not.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub conditions: Option<Vec<Condition>>,
}
