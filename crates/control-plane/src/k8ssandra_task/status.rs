//! The status step (pure): each datacenter's CassandraTask status copied from its cluster
//! (`status.datacenters[dc]`), and the aggregate over them (upstream's flattened
//! CassandraTaskStatus): the earliest start, the pods' counts summed, the completion once nothing
//! more will run, and conditions that name the datacenters:
//!
//! - `Invalid`: whether the task can run as written;
//! - `Running`: something is under way or waited for (an unreachable cluster is named here);
//! - `Complete`: every datacenter's task ran to its end;
//! - `Failed`: a datacenter's task failed (its message is quoted).

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8ssandra_api::{
    conditions::{self, Condition, ConditionStatus},
    control::{CassandraTaskStatus, K8ssandraTask, K8ssandraTaskStatus, task_condition},
};

use super::{plan::Standing, validate::Problem};
use crate::k8ssandra_cluster::observe::display_context;

/// Condition of a datacenter's entry while its cluster cannot be reached (the entry is then the
/// last copy seen).
pub const REACHABLE: &str = "Reachable";

/// What the pass knows of one datacenter.
#[derive(Clone, Debug)]
pub struct DcReport {
    /// The datacenter.
    pub name: String,
    /// Its context.
    pub context: String,
    /// Its CassandraTask's status: the live one, or the last copy when its cluster cannot be
    /// reached; `None` before it was made.
    pub status: Option<CassandraTaskStatus>,
    /// What the pass did with it.
    pub standing: Standing,
}

/// The status of a task that cannot run as written: `Invalid=True` naming every problem.
#[must_use]
pub fn invalid_status(
    task: &K8ssandraTask,
    problems: &[Problem],
    now: &Time,
) -> K8ssandraTaskStatus {
    let mut status = task.status.clone().unwrap_or_default();
    let mut list = status.aggregate.conditions.clone().unwrap_or_default();
    let reason = problems.first().map_or("Invalid", |p| p.reason);
    let message = problems
        .iter()
        .map(|p| p.message.as_str())
        .collect::<Vec<_>>()
        .join("; ");
    let generation = task.metadata.generation;
    put(
        &mut list,
        generation,
        task_condition::INVALID,
        true,
        reason,
        message.clone(),
        now,
    );
    put(
        &mut list,
        generation,
        task_condition::RUNNING,
        false,
        "Invalid",
        format!("nothing runs while the task is invalid: {message}"),
        now,
    );
    status.aggregate.conditions = Some(list);
    status
}

/// The status after this pass; `reports` are in the task's order.
#[must_use]
pub fn desired_status(
    task: &K8ssandraTask,
    reports: &[DcReport],
    now: &Time,
) -> K8ssandraTaskStatus {
    let previous = task.status.clone().unwrap_or_default();
    let generation = task.metadata.generation;
    let mut list = previous.aggregate.conditions.clone().unwrap_or_default();

    let mut datacenters = std::collections::BTreeMap::new();
    for report in reports {
        let mut entry = report.status.clone();
        if let Standing::Unreachable(why) = &report.standing {
            let mut copy = entry.unwrap_or_default();
            let mut dc_list = copy.conditions.clone().unwrap_or_default();
            put(
                &mut dc_list,
                None,
                REACHABLE,
                false,
                "ClusterUnreachable",
                format!("{} in {why}", report.name),
                now,
            );
            copy.conditions = Some(dc_list);
            entry = Some(copy);
        }
        if let Some(entry) = entry {
            datacenters.insert(report.name.clone(), entry);
        }
    }

    let over = !reports.is_empty() && reports.iter().all(|r| r.standing.is_over());
    let failures: Vec<(&str, &str)> = reports
        .iter()
        .filter_map(|r| match &r.standing {
            Standing::Done {
                failure: Some(message),
            } => Some((r.name.as_str(), message.as_str())),
            _ => None,
        })
        .collect();
    let stopped: Vec<&str> = reports
        .iter()
        .filter(|r| matches!(r.standing, Standing::Stopped { .. }))
        .map(|r| r.name.as_str())
        .collect();
    let all = reports
        .iter()
        .map(|r| r.name.as_str())
        .collect::<Vec<_>>()
        .join(", ");

    put(
        &mut list,
        generation,
        task_condition::INVALID,
        false,
        "Valid",
        "the task can run".to_owned(),
        now,
    );
    if over {
        put(
            &mut list,
            generation,
            task_condition::RUNNING,
            false,
            "Finished",
            "the task finished".to_owned(),
            now,
        );
    } else {
        let (reason, message) = running(reports);
        put(
            &mut list,
            generation,
            task_condition::RUNNING,
            true,
            reason,
            message,
            now,
        );
    }
    let failed_message = failure_message(&failures, &stopped);
    match (over, stopped.is_empty(), failures.is_empty()) {
        (true, true, true) => put(
            &mut list,
            generation,
            task_condition::COMPLETE,
            true,
            "AllDatacentersCompleted",
            format!("the task completed in every datacenter: {all}"),
            now,
        ),
        (true, true, false) => put(
            &mut list,
            generation,
            task_condition::COMPLETE,
            true,
            "FinishedWithFailures",
            format!("the task ran in every datacenter ({all}); {failed_message}"),
            now,
        ),
        (true, false, _) => put(
            &mut list,
            generation,
            task_condition::COMPLETE,
            false,
            "StoppedAfterFailure",
            failed_message.clone(),
            now,
        ),
        (false, _, _) => {
            let done = reports.iter().filter(|r| r.standing.is_over()).count();
            put(
                &mut list,
                generation,
                task_condition::COMPLETE,
                false,
                "NotFinished",
                format!("{done} of {} datacenters finished", reports.len()),
                now,
            );
        }
    }
    if failures.is_empty() {
        put(
            &mut list,
            generation,
            task_condition::FAILED,
            false,
            "NoFailure",
            "no datacenter's task failed".to_owned(),
            now,
        );
    } else {
        put(
            &mut list,
            generation,
            task_condition::FAILED,
            true,
            "DatacenterFailed",
            failed_message,
            now,
        );
    }

    let entries: Vec<&CassandraTaskStatus> = datacenters.values().collect();
    let sum = |field: fn(&CassandraTaskStatus) -> Option<i64>| -> Option<i64> {
        entries
            .iter()
            .filter_map(|s| field(s))
            .reduce(i64::saturating_add)
    };
    let start_time = entries
        .iter()
        .filter_map(|s| s.start_time.clone())
        .chain(previous.aggregate.start_time.clone())
        .min_by_key(|t| t.0);
    let completion_time = over.then(|| {
        previous
            .aggregate
            .completion_time
            .clone()
            .unwrap_or_else(|| {
                entries
                    .iter()
                    .filter_map(|s| s.completion_time.clone())
                    .max_by_key(|t| t.0)
                    .unwrap_or_else(|| now.clone())
            })
    });
    K8ssandraTaskStatus {
        aggregate: CassandraTaskStatus {
            conditions: Some(list),
            start_time,
            completion_time,
            active: sum(|s| s.active),
            succeeded: sum(|s| s.succeeded),
            failed: sum(|s| s.failed),
            pod_statuses: None,
        },
        datacenters: Some(datacenters).filter(|d| !d.is_empty()),
    }
}

/// `Running`'s reason and message: what is under way or waited for, datacenter by datacenter.
fn running(reports: &[DcReport]) -> (&'static str, String) {
    let mut reason = "JobRunning";
    let mut lines = Vec::new();
    for report in reports {
        let name = &report.name;
        let at = format!("{name} in {}", display_context(&report.context));
        let line = match &report.standing {
            Standing::Done { .. } | Standing::Stopped { .. } => continue,
            Standing::Running | Standing::Create => {
                let says = report
                    .status
                    .as_ref()
                    .and_then(|s| s.conditions.as_deref())
                    .and_then(|c| conditions::find(c, task_condition::RUNNING))
                    .and_then(|c| c.message.clone())
                    .unwrap_or_else(|| "its CassandraTask is created".to_owned());
                format!("{name}: {says}")
            }
            Standing::WaitingFor(earlier) => format!("{name}: waits for {earlier}"),
            Standing::Unreachable(why) => {
                reason = "ClusterUnreachable";
                format!("{name} in {why}")
            }
            Standing::CreateFailed(error) => {
                if reason == "JobRunning" {
                    reason = "CreateFailed";
                }
                format!("{at}: could not create its CassandraTask: {error}")
            }
            Standing::Conflict(what) => {
                if reason == "JobRunning" {
                    reason = "Conflict";
                }
                format!("{at}: {what}")
            }
        };
        lines.push(line);
    }
    (reason, lines.join("; "))
}

/// Names the datacenters whose task failed, with their messages, and those not started after.
fn failure_message(failures: &[(&str, &str)], stopped: &[&str]) -> String {
    let mut message = failures
        .iter()
        .map(|(dc, why)| format!("the task failed in {dc}: {why}"))
        .collect::<Vec<_>>()
        .join("; ");
    if !stopped.is_empty() {
        message.push_str(&format!(
            "; not started, as dcConcurrencyPolicy is Forbid: {}",
            stopped.join(", ")
        ));
    }
    message
}

fn put(
    list: &mut Vec<Condition>,
    generation: Option<i64>,
    type_: &str,
    on: bool,
    reason: &str,
    message: String,
    now: &Time,
) {
    let status = if on {
        ConditionStatus::True
    } else {
        ConditionStatus::False
    };
    let mut condition = Condition::new(type_, status, reason, message);
    condition.observed_generation = generation;
    conditions::set(list, condition, now);
}

/// The conditions whose status is new or changed from `before` to `after`.
#[must_use]
pub fn transitions(before: &K8ssandraTaskStatus, after: &K8ssandraTaskStatus) -> Vec<Condition> {
    let old = before.aggregate.conditions.as_deref().unwrap_or_default();
    after
        .aggregate
        .conditions
        .iter()
        .flatten()
        .filter(|c| conditions::find(old, &c.type_).is_none_or(|o| o.status != c.status))
        .cloned()
        .collect()
}

#[cfg(test)]
mod tests {
    use k8s_openapi::jiff::Timestamp;

    use super::*;

    fn at(seconds: i64) -> Time {
        Time(Timestamp::from_second(seconds).unwrap())
    }

    fn dc_status(start: i64, end: Option<i64>, counts: (i64, i64, i64)) -> CassandraTaskStatus {
        CassandraTaskStatus {
            start_time: Some(at(start)),
            completion_time: end.map(at),
            active: Some(counts.0),
            succeeded: Some(counts.1),
            failed: Some(counts.2),
            ..CassandraTaskStatus::default()
        }
    }

    fn report(name: &str, status: Option<CassandraTaskStatus>, standing: Standing) -> DcReport {
        DcReport {
            name: name.into(),
            context: format!("ctx-{name}"),
            status,
            standing,
        }
    }

    fn condition<'a>(status: &'a K8ssandraTaskStatus, type_: &str) -> &'a Condition {
        conditions::find(status.aggregate.conditions.as_deref().unwrap(), type_).unwrap()
    }

    fn task() -> K8ssandraTask {
        K8ssandraTask::new("t", Default::default())
    }

    #[test]
    fn the_aggregate_sums_the_datacenters_and_completes_when_all_did() {
        let reports = [
            report(
                "dc2",
                Some(dc_status(10, Some(20), (0, 3, 0))),
                Standing::Done { failure: None },
            ),
            report(
                "dc1",
                Some(dc_status(21, Some(30), (0, 3, 0))),
                Standing::Done { failure: None },
            ),
        ];
        let status = desired_status(&task(), &reports, &at(40));
        let aggregate = &status.aggregate;
        assert_eq!(aggregate.start_time, Some(at(10)));
        assert_eq!(aggregate.completion_time, Some(at(30)));
        assert_eq!(
            (aggregate.active, aggregate.succeeded, aggregate.failed),
            (Some(0), Some(6), Some(0))
        );
        assert!(condition(&status, task_condition::COMPLETE).is_true());
        assert!(!condition(&status, task_condition::RUNNING).is_true());
        assert!(!condition(&status, task_condition::FAILED).is_true());
        assert!(!condition(&status, task_condition::INVALID).is_true());
        assert_eq!(status.datacenters.as_ref().unwrap().len(), 2);
    }

    #[test]
    fn a_running_task_has_no_completion_time() {
        let reports = [
            report(
                "dc2",
                Some(dc_status(10, Some(20), (0, 3, 0))),
                Standing::Done { failure: None },
            ),
            report(
                "dc1",
                Some(dc_status(21, None, (1, 0, 0))),
                Standing::Running,
            ),
        ];
        let status = desired_status(&task(), &reports, &at(40));
        assert_eq!(status.aggregate.completion_time, None);
        assert_eq!(status.aggregate.active, Some(1));
        let complete = condition(&status, task_condition::COMPLETE);
        assert!(!complete.is_true());
        assert_eq!(
            complete.message.as_deref(),
            Some("1 of 2 datacenters finished")
        );
        assert!(condition(&status, task_condition::RUNNING).is_true());
    }

    #[test]
    fn a_failure_names_its_datacenter_and_those_not_started() {
        let reports = [
            report(
                "dc2",
                Some(dc_status(10, Some(20), (0, 2, 1))),
                Standing::Done {
                    failure: Some("cleanup failed on pod p: 500".into()),
                },
            ),
            report(
                "dc1",
                None,
                Standing::Stopped {
                    after: "dc2".into(),
                },
            ),
        ];
        let status = desired_status(&task(), &reports, &at(40));
        let failed = condition(&status, task_condition::FAILED);
        assert!(failed.is_true());
        let message = failed.message.clone().unwrap();
        assert!(
            message.contains("the task failed in dc2: cleanup failed on pod p: 500"),
            "{message}"
        );
        assert!(
            message.contains("not started") && message.contains("dc1"),
            "{message}"
        );
        let complete = condition(&status, task_condition::COMPLETE);
        assert!(!complete.is_true());
        assert_eq!(complete.reason.as_deref(), Some("StoppedAfterFailure"));
        // The task is over: its TTL runs from here.
        assert_eq!(status.aggregate.completion_time, Some(at(20)));
        assert!(!status.datacenters.as_ref().unwrap().contains_key("dc1"));
    }

    #[test]
    fn with_allow_a_failure_still_lets_the_task_run_everywhere() {
        let reports = [
            report(
                "dc1",
                Some(dc_status(10, Some(20), (0, 2, 1))),
                Standing::Done {
                    failure: Some("flush failed on pod p".into()),
                },
            ),
            report(
                "dc2",
                Some(dc_status(10, Some(25), (0, 3, 0))),
                Standing::Done { failure: None },
            ),
        ];
        let status = desired_status(&task(), &reports, &at(40));
        let complete = condition(&status, task_condition::COMPLETE);
        assert!(complete.is_true());
        assert_eq!(complete.reason.as_deref(), Some("FinishedWithFailures"));
        let failed = condition(&status, task_condition::FAILED);
        assert_eq!(
            failed.message.as_deref(),
            Some("the task failed in dc1: flush failed on pod p")
        );
        assert_eq!(status.aggregate.completion_time, Some(at(25)));
        assert_eq!(status.aggregate.failed, Some(1));
    }

    #[test]
    fn an_unreachable_datacenter_is_named_and_keeps_the_task_running() {
        let reports = [
            report(
                "dc2",
                Some(dc_status(10, Some(20), (0, 3, 0))),
                Standing::Done { failure: None },
            ),
            report(
                "dc1",
                None,
                Standing::Unreachable("ctx-1: cluster unreachable: refused".into()),
            ),
        ];
        let status = desired_status(&task(), &reports, &at(40));
        let running = condition(&status, task_condition::RUNNING);
        assert!(running.is_true());
        assert_eq!(running.reason.as_deref(), Some("ClusterUnreachable"));
        assert_eq!(
            running.message.as_deref(),
            Some("dc1 in ctx-1: cluster unreachable: refused")
        );
        assert!(!condition(&status, task_condition::COMPLETE).is_true());
        assert_eq!(status.aggregate.completion_time, None);
        let entry = &status.datacenters.as_ref().unwrap()["dc1"];
        let reachable = conditions::find(entry.conditions.as_deref().unwrap(), REACHABLE).unwrap();
        assert!(!reachable.is_true());
        assert!(reachable.message.as_deref().unwrap().contains("ctx-1"));
    }

    #[test]
    fn an_unchanged_pass_gives_the_same_status() {
        let reports = [report(
            "dc1",
            Some(dc_status(10, Some(20), (0, 3, 0))),
            Standing::Done { failure: None },
        )];
        let mut t = task();
        t.status = Some(desired_status(&t, &reports, &at(40)));
        assert_eq!(
            desired_status(&t, &reports, &at(99)),
            t.status.clone().unwrap()
        );
    }

    #[test]
    fn an_invalid_task_says_why() {
        let problems = [Problem {
            reason: "DatacenterNotFound",
            message: "spec.datacenters: dc9 is not a datacenter".into(),
        }];
        let status = invalid_status(&task(), &problems, &at(1));
        let invalid = condition(&status, task_condition::INVALID);
        assert!(invalid.is_true());
        assert_eq!(invalid.reason.as_deref(), Some("DatacenterNotFound"));
        assert!(invalid.message.as_deref().unwrap().contains("dc9"));
        let changed = transitions(&K8ssandraTaskStatus::default(), &status);
        assert!(changed.iter().any(|c| c.type_ == task_condition::INVALID));
    }
}
