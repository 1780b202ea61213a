//! What a pass over a ScheduledTask does, from the schedule, its datacenter and its previous
//! task: pure, and table-tested.

use k8s_openapi::{apimachinery::pkg::apis::meta::v1::ObjectMeta, jiff::Timestamp};
use k8ssandra_api::{
    cassandra::CassandraDatacenter,
    control::{CassandraTask, ScheduledTask},
};
use kube::ResourceExt;

use super::{cron::Schedule, task_labels};

/// Reason of a schedule whose datacenter does not exist (yet).
pub const DATACENTER_NOT_FOUND: &str = "DatacenterNotFound";

/// Why a schedule is not acted on.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Problem {
    /// CamelCase reason.
    pub reason: &'static str,
    /// What is wrong, naming the field.
    pub message: String,
}

/// What a pass reads.
pub struct ScheduleInput<'a> {
    /// The ScheduledTask.
    pub schedule: &'a ScheduledTask,
    /// Its datacenter, when it exists in the schedule's namespace.
    pub datacenter: Option<&'a CassandraDatacenter>,
    /// The schedule's task that has not finished, if any.
    pub previous_running: Option<String>,
    /// Now.
    pub now: Timestamp,
}

/// What the pass does.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Decision {
    /// Report the problem; make nothing.
    Invalid(Problem),
    /// Nothing is due before `next`.
    Wait {
        /// When the next run is due.
        next: Timestamp,
    },
    /// A run is due, but the previous task has not finished.
    Postpone {
        /// When the run was due.
        next: Timestamp,
        /// The task it waits for.
        waiting_for: String,
    },
    /// Make the task of the run that was due at `due`; the one after is due at `next`.
    Run {
        /// When the run was due (it names the task).
        due: Timestamp,
        /// When the next run is due.
        next: Timestamp,
    },
}

/// Decides the pass.
#[must_use]
pub fn decide(input: &ScheduleInput<'_>) -> Decision {
    let schedule = input.schedule;
    let parsed: Schedule = match schedule.spec.schedule.parse() {
        Ok(parsed) => parsed,
        Err(error) => {
            return Decision::Invalid(Problem {
                reason: "InvalidSchedule",
                message: format!("spec.schedule: {error}"),
            });
        }
    };
    let datacenter = &schedule.spec.task_details.spec.datacenter;
    let namespace = schedule.namespace().unwrap_or_default();
    let Some(name) = datacenter.name.as_deref().filter(|n| !n.is_empty()) else {
        return Decision::Invalid(Problem {
            reason: "DatacenterMissing",
            message: "spec.taskDetails.datacenter.name names no datacenter".to_owned(),
        });
    };
    if let Some(other) = datacenter.namespace.as_deref().filter(|n| *n != namespace) {
        return Decision::Invalid(Problem {
            reason: "CrossNamespace",
            message: format!(
                "spec.taskDetails.datacenter names namespace {other}: a schedule makes tasks \
                 for the datacenters of its own namespace ({namespace}) only"
            ),
        });
    }
    if input.datacenter.is_none() {
        return Decision::Invalid(Problem {
            reason: DATACENTER_NOT_FOUND,
            message: format!("CassandraDatacenter {namespace}/{name} does not exist"),
        });
    }
    let previous = schedule
        .status
        .as_ref()
        .and_then(|s| s.last_execution.as_ref())
        .or(schedule.metadata.creation_timestamp.as_ref())
        .map_or(input.now, |t| t.0);
    let Some(due) = parsed.next_after(previous) else {
        return Decision::Invalid(Problem {
            reason: "InvalidSchedule",
            message: "spec.schedule is never due again".to_owned(),
        });
    };
    if due > input.now {
        return Decision::Wait { next: due };
    }
    if let Some(waiting_for) = &input.previous_running
        && schedule
            .spec
            .task_details
            .spec
            .template
            .concurrency_policy
            .as_deref()
            != Some("Allow")
    {
        return Decision::Postpone {
            next: due,
            waiting_for: waiting_for.clone(),
        };
    }
    // Runs missed while the operator was down make one task; the next is after now.
    match parsed.next_after(input.now) {
        Some(next) => Decision::Run { due, next },
        None => Decision::Invalid(Problem {
            reason: "InvalidSchedule",
            message: "spec.schedule is never due again".to_owned(),
        }),
    }
}

/// The task of the run due at `due`.
#[must_use]
pub fn task(schedule: &ScheduledTask, dc: &CassandraDatacenter, due: Timestamp) -> CassandraTask {
    let mut spec = schedule.spec.task_details.spec.clone();
    spec.datacenter.namespace = None;
    CassandraTask {
        metadata: ObjectMeta {
            name: Some(format!("{}-{}", schedule.name_any(), due.as_second())),
            namespace: schedule.namespace(),
            labels: Some(task_labels(schedule, dc)),
            ..ObjectMeta::default()
        },
        spec,
        status: None,
    }
}

#[cfg(test)]
mod tests {
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

    use super::*;

    fn at(text: &str) -> Timestamp {
        text.parse().expect("a timestamp")
    }

    fn schedule(cron: &str, last: Option<&str>) -> ScheduledTask {
        let mut schedule: ScheduledTask = serde_json::from_value(serde_json::json!({
            "apiVersion": "control.k8ssandra.io/v1alpha1",
            "kind": "ScheduledTask",
            "metadata": {
                "name": "nightly", "namespace": "cass",
                "creationTimestamp": "2026-12-01T10:20:00Z",
            },
            "spec": {
                "schedule": cron,
                "taskDetails": {
                    "name": "nightly-cleanup",
                    "datacenter": { "name": "dc1" },
                    "jobs": [{ "name": "c", "command": "cleanup" }],
                },
            },
        }))
        .expect("a schedule");
        if let Some(last) = last {
            schedule.status = Some(k8ssandra_api::control::ScheduledTaskStatus {
                last_execution: Some(Time(at(last))),
                ..Default::default()
            });
        }
        schedule
    }

    fn dc() -> CassandraDatacenter {
        serde_json::from_value(serde_json::json!({
            "apiVersion": "cassandra.datastax.com/v1beta1",
            "kind": "CassandraDatacenter",
            "metadata": { "name": "dc1", "namespace": "cass" },
            "spec": {
                "clusterName": "cluster1", "serverType": "cassandra",
                "serverVersion": "4.1.5", "size": 1,
                "storageConfig": { "cassandraDataVolumeClaimSpec": {} },
            },
        }))
        .expect("a datacenter")
    }

    fn decide_at(schedule: &ScheduledTask, previous_running: Option<&str>, now: &str) -> Decision {
        let dc = dc();
        decide(&ScheduleInput {
            schedule,
            datacenter: Some(&dc),
            previous_running: previous_running.map(str::to_owned),
            now: at(now),
        })
    }

    #[test]
    fn the_first_run_is_the_first_due_time_after_creation() {
        let daily = schedule("0 3 * * *", None);
        assert_eq!(
            decide_at(&daily, None, "2026-12-02T02:00:00Z"),
            Decision::Wait {
                next: at("2026-12-02T03:00:00Z")
            }
        );
        assert_eq!(
            decide_at(&daily, None, "2026-12-02T03:00:05Z"),
            Decision::Run {
                due: at("2026-12-02T03:00:00Z"),
                next: at("2026-12-03T03:00:00Z")
            }
        );
    }

    #[test]
    fn missed_runs_make_one_task_and_a_running_task_postpones_the_next() {
        let daily = schedule("0 3 * * *", Some("2026-11-20T03:00:00Z"));
        assert_eq!(
            decide_at(&daily, None, "2026-12-02T12:00:00Z"),
            Decision::Run {
                due: at("2026-11-21T03:00:00Z"),
                next: at("2026-12-03T03:00:00Z")
            }
        );
        assert_eq!(
            decide_at(&daily, Some("nightly-1"), "2026-12-02T12:00:00Z"),
            Decision::Postpone {
                next: at("2026-11-21T03:00:00Z"),
                waiting_for: "nightly-1".to_owned()
            }
        );
        let mut allow = daily.clone();
        allow.spec.task_details.spec.template.concurrency_policy = Some("Allow".to_owned());
        assert!(matches!(
            decide_at(&allow, Some("nightly-1"), "2026-12-02T12:00:00Z"),
            Decision::Run { .. }
        ));
    }

    #[test]
    fn problems_are_named() {
        let reason = |schedule: &ScheduledTask, dc: Option<&CassandraDatacenter>| match decide(
            &ScheduleInput {
                schedule,
                datacenter: dc,
                previous_running: None,
                now: at("2026-12-02T12:00:00Z"),
            },
        ) {
            Decision::Invalid(problem) => problem.reason,
            other => panic!("{other:?}"),
        };
        let dc = dc();
        assert_eq!(
            reason(&schedule("nope", None), Some(&dc)),
            "InvalidSchedule"
        );
        let mut other = schedule("@daily", None);
        other.spec.task_details.spec.datacenter.namespace = Some("tenant".to_owned());
        assert_eq!(reason(&other, Some(&dc)), "CrossNamespace");
        let mut unnamed = schedule("@daily", None);
        unnamed.spec.task_details.spec.datacenter.name = None;
        assert_eq!(reason(&unnamed, Some(&dc)), "DatacenterMissing");
        assert_eq!(
            reason(&schedule("@daily", None), None),
            DATACENTER_NOT_FOUND
        );
    }

    #[test]
    fn the_task_is_named_after_its_due_time_and_carries_the_datacenter_labels() {
        let daily = schedule("0 3 * * *", None);
        let task = task(&daily, &dc(), at("2026-12-02T03:00:00Z"));
        assert_eq!(task.name_any(), "nightly-1796180400");
        assert_eq!(task.namespace().as_deref(), Some("cass"));
        let labels = task.labels();
        assert_eq!(
            labels
                .get("cassandra.datastax.com/datacenter")
                .map(String::as_str),
            Some("dc1")
        );
        assert_eq!(
            labels
                .get("cassandra.datastax.com/cluster")
                .map(String::as_str),
            Some("cluster1")
        );
        assert_eq!(
            labels
                .get(super::super::SCHEDULED_TASK_LABEL)
                .map(String::as_str),
            Some("nightly")
        );
        assert_eq!(task.spec.datacenter.name.as_deref(), Some("dc1"));
        assert_eq!(task.spec.template.jobs.as_ref().map(Vec::len), Some(1));
    }
}
