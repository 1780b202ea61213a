//! Status: the per-pod records after each action, and the task's conditions, counts and times.
//! Pure; the pass writes the result only when it differs from the stored status.

use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8ssandra_api::{
    conditions::{self, Condition, ConditionStatus},
    control::{CassandraTask, CassandraTaskStatus, PodJobStatus, task_condition},
};

use super::{
    plan::{Action, Progress, UID_MARKER, pod_status, progress},
    validate::Problem,
};

/// A pod's record after `action`, from its record before.
#[must_use]
pub fn pod_after(action: &Action, previous: Option<&PodJobStatus>, now: &Time) -> PodJobStatus {
    let mut record = previous.cloned().unwrap_or_default();
    record.start_time = record.start_time.or_else(|| Some(now.clone()));
    match action {
        Action::Submit { .. } => {
            record.status = pod_status::RUNNING.to_owned();
            record.job_id = None;
            record.completion_time = None;
        }
        Action::RecordJob { job, .. } => {
            record.status = pod_status::RUNNING.to_owned();
            record.job_id = Some(job.to_string());
        }
        Action::DeletePod { uid, .. } => {
            record.status = pod_status::RUNNING.to_owned();
            record.job_id = Some(format!("{UID_MARKER}{uid}"));
            record.completion_time = None;
        }
        Action::Complete { .. } => {
            record.status = pod_status::COMPLETED.to_owned();
            record.error = None;
            record.completion_time = Some(now.clone());
        }
        Action::Fail { error, retry, .. } => {
            record.error = Some(error.clone());
            if *retry {
                // Retried on a later pass: a record running without a job is called again.
                record.status = pod_status::RUNNING.to_owned();
                record.job_id = None;
                record.retries = Some(record.retries.unwrap_or(0).saturating_add(1));
            } else {
                record.status = pod_status::FAILED.to_owned();
                record.completion_time = Some(now.clone());
            }
        }
    }
    record
}

/// Where the task stands, as the conditions tell it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TaskState<'a> {
    /// Not before `scheduledTime`.
    Scheduled(&'a Time),
    /// Cannot start yet (the datacenter does not exist, or has no pods).
    Pending {
        /// Reason of the `Running=False` condition.
        reason: &'static str,
        /// What it waits for.
        message: String,
    },
    /// Cannot run as written; finished at once.
    Invalid(&'a Problem),
    /// Under way.
    Running {
        /// The command.
        command: &'a str,
        /// Number of target pods.
        pods: usize,
        /// What holds it up.
        waiting: &'a [String],
    },
    /// Every pod is done.
    Finished {
        /// The command.
        command: &'a str,
        /// Pod and error of each failed pod.
        failures: &'a [(String, String)],
    },
}

impl TaskState<'_> {
    fn started(&self) -> bool {
        matches!(
            self,
            Self::Invalid(_) | Self::Running { .. } | Self::Finished { .. }
        )
    }

    fn finished(&self) -> bool {
        matches!(self, Self::Invalid(_) | Self::Finished { .. })
    }
}

/// Joins `pod: error` pairs for a message.
#[must_use]
pub fn failure_list(failures: &[(String, String)]) -> String {
    failures
        .iter()
        .map(|(pod, error)| format!("pod {pod}: {error}"))
        .collect::<Vec<_>>()
        .join("; ")
}

/// The status the task should have after this pass, with `records` its pod records now.
#[must_use]
pub fn desired_status(
    task: &CassandraTask,
    state: &TaskState<'_>,
    records: BTreeMap<String, PodJobStatus>,
    now: &Time,
) -> CassandraTaskStatus {
    let previous = task.status.clone().unwrap_or_default();
    let mut status = previous.clone();
    let mut list = previous.conditions.unwrap_or_default();
    let generation = task.metadata.generation;
    let mut set = |type_: &str, on: bool, reason: &str, message: String| {
        let status = if on {
            ConditionStatus::True
        } else {
            ConditionStatus::False
        };
        let mut condition = Condition::new(type_, status, reason, message);
        condition.observed_generation = generation;
        conditions::set(&mut list, condition, now);
    };

    let count = |wanted: fn(&Progress) -> bool| {
        i64::try_from(
            records
                .values()
                .filter(|r| wanted(&progress(Some(r))))
                .count(),
        )
        .unwrap_or(i64::MAX)
    };
    let active = count(|p| matches!(p, Progress::Running(_)));
    let succeeded = count(|p| *p == Progress::Completed);
    let failed = count(|p| *p == Progress::Failed);

    match state {
        TaskState::Scheduled(at) => {
            let when = at.0.to_string();
            set(
                task_condition::RUNNING,
                false,
                "Scheduled",
                format!("the task starts at {when}"),
            );
        }
        TaskState::Pending { reason, message } => {
            set(task_condition::RUNNING, false, reason, message.clone());
        }
        TaskState::Invalid(problem) => {
            set(
                task_condition::RUNNING,
                false,
                "Finished",
                "the task cannot run".to_owned(),
            );
            set(
                task_condition::COMPLETE,
                true,
                "Invalid",
                format!("the task cannot run: {}", problem.message),
            );
            set(
                task_condition::FAILED,
                true,
                problem.reason,
                problem.message.clone(),
            );
        }
        TaskState::Running {
            command,
            pods,
            waiting,
        } => {
            let mut message = format!("{command}: {succeeded} of {pods} pods done");
            let running: Vec<&str> = records
                .iter()
                .filter(|(_, r)| matches!(progress(Some(r)), Progress::Running(_)))
                .map(|(pod, _)| pod.as_str())
                .collect();
            if !running.is_empty() {
                message.push_str(&format!(", running on {}", running.join(", ")));
            }
            for (pod, record) in &records {
                if progress(Some(record)) == Progress::Failed {
                    let error = record.error.as_deref().unwrap_or("unknown error");
                    message.push_str(&format!("; failed on pod {pod}: {error}"));
                }
            }
            for line in *waiting {
                message.push_str("; ");
                message.push_str(line);
            }
            set(task_condition::RUNNING, true, "JobRunning", message);
            set(
                task_condition::COMPLETE,
                false,
                "NotFinished",
                format!("{command} has not finished on every pod"),
            );
            set(
                task_condition::FAILED,
                false,
                "NoFailure",
                "no pod failed for good so far".to_owned(),
            );
        }
        TaskState::Finished { command, failures } => {
            set(
                task_condition::RUNNING,
                false,
                "Finished",
                format!("{command} finished"),
            );
            if failures.is_empty() {
                set(
                    task_condition::COMPLETE,
                    true,
                    "AllPodsCompleted",
                    format!("{command} completed on {succeeded} pod(s)"),
                );
                set(
                    task_condition::FAILED,
                    false,
                    "NoFailure",
                    "no pod failed".to_owned(),
                );
            } else {
                // Complete=True on a failed task too, as upstream: it says the task is over.
                set(
                    task_condition::COMPLETE,
                    true,
                    "FinishedWithFailures",
                    format!("{command} finished: {succeeded} pod(s) completed, {failed} failed"),
                );
                set(
                    task_condition::FAILED,
                    true,
                    "PodFailed",
                    format!("{command} failed on {}", failure_list(failures)),
                );
            }
        }
    }

    status.conditions = Some(list);
    if state.started() {
        status.start_time = previous.start_time.or_else(|| Some(now.clone()));
        status.active = Some(active);
        status.succeeded = Some(succeeded);
        status.failed = Some(failed);
    }
    if state.finished() {
        status.completion_time = previous.completion_time.or_else(|| Some(now.clone()));
    }
    status.pod_statuses = (!records.is_empty()).then_some(records);
    status
}

#[cfg(test)]
mod tests {
    use k8s_openapi::jiff::Timestamp;
    use k8ssandra_api::control::CassandraTaskSpec;
    use k8ssandra_mgmt_api::JobId;

    use super::*;

    fn at(seconds: i64) -> Time {
        Time(Timestamp::from_second(seconds).unwrap())
    }

    fn condition<'a>(status: &'a CassandraTaskStatus, type_: &str) -> &'a Condition {
        conditions::find(status.conditions.as_deref().unwrap(), type_).unwrap()
    }

    fn task() -> CassandraTask {
        CassandraTask::new("t", CassandraTaskSpec::default())
    }

    #[test]
    fn a_pod_record_follows_its_attempts() {
        let submit = Action::Submit { pod: "a".into() };
        let running = pod_after(&submit, None, &at(10));
        assert_eq!(running.status, "Running");
        assert_eq!(running.start_time, Some(at(10)));
        let with_job = pod_after(
            &Action::RecordJob {
                pod: "a".into(),
                job: JobId("j".into()),
            },
            Some(&running),
            &at(11),
        );
        assert_eq!(with_job.job_id.as_deref(), Some("j"));
        let retried = pod_after(
            &Action::Fail {
                pod: "a".into(),
                error: "boom".into(),
                retry: true,
            },
            Some(&with_job),
            &at(12),
        );
        assert_eq!(retried.status, "Running");
        assert_eq!(retried.job_id, None);
        assert_eq!(retried.retries, Some(1));
        assert_eq!(retried.start_time, Some(at(10)));
        let failed = pod_after(
            &Action::Fail {
                pod: "a".into(),
                error: "boom again".into(),
                retry: false,
            },
            Some(&retried),
            &at(13),
        );
        assert_eq!(failed.status, "Failed");
        assert_eq!(failed.error.as_deref(), Some("boom again"));
        assert_eq!(failed.completion_time, Some(at(13)));
        let restarted = pod_after(
            &Action::DeletePod {
                pod: "b".into(),
                uid: "u1".into(),
                claim: false,
            },
            None,
            &at(20),
        );
        assert_eq!(restarted.job_id.as_deref(), Some("uid:u1"));
        let done = pod_after(
            &Action::Complete { pod: "b".into() },
            Some(&restarted),
            &at(25),
        );
        assert_eq!(done.status, "Completed");
        assert_eq!(done.completion_time, Some(at(25)));
    }

    #[test]
    fn a_running_task_counts_its_pods() {
        let mut records = BTreeMap::new();
        records.insert(
            "a".to_owned(),
            pod_after(&Action::Complete { pod: "a".into() }, None, &at(1)),
        );
        records.insert(
            "b".to_owned(),
            pod_after(&Action::Submit { pod: "b".into() }, None, &at(1)),
        );
        let status = desired_status(
            &task(),
            &TaskState::Running {
                command: "cleanup",
                pods: 3,
                waiting: &[],
            },
            records,
            &at(5),
        );
        assert_eq!(
            (status.active, status.succeeded, status.failed),
            (Some(1), Some(1), Some(0))
        );
        assert_eq!(status.start_time, Some(at(5)));
        assert_eq!(status.completion_time, None);
        let running = condition(&status, "Running");
        assert!(running.is_true());
        assert_eq!(
            running.message.as_deref(),
            Some("cleanup: 1 of 3 pods done, running on b")
        );
        assert!(!condition(&status, "Complete").is_true());
        assert!(!condition(&status, "Failed").is_true());
    }

    #[test]
    fn a_finished_task_with_a_failure_names_the_pod() {
        let mut records = BTreeMap::new();
        let failure = Action::Fail {
            pod: "a".into(),
            error: "HTTP 500".into(),
            retry: false,
        };
        records.insert("a".to_owned(), pod_after(&failure, None, &at(1)));
        let failures = vec![("a".to_owned(), "HTTP 500".to_owned())];
        let status = desired_status(
            &task(),
            &TaskState::Finished {
                command: "cleanup",
                failures: &failures,
            },
            records,
            &at(7),
        );
        let failed = condition(&status, "Failed");
        assert!(failed.is_true());
        assert_eq!(
            failed.message.as_deref(),
            Some("cleanup failed on pod a: HTTP 500")
        );
        assert!(condition(&status, "Complete").is_true());
        assert!(!condition(&status, "Running").is_true());
        assert_eq!(status.completion_time, Some(at(7)));
        assert_eq!(status.failed, Some(1));
    }

    #[test]
    fn a_pending_task_is_not_started() {
        let status = desired_status(
            &task(),
            &TaskState::Pending {
                reason: "DatacenterNotFound",
                message: "no dc1".into(),
            },
            BTreeMap::new(),
            &at(1),
        );
        let running = condition(&status, "Running");
        assert!(!running.is_true());
        assert_eq!(running.reason.as_deref(), Some("DatacenterNotFound"));
        assert_eq!(status.start_time, None);
        assert_eq!(status.pod_statuses, None);
    }

    #[test]
    fn an_invalid_task_fails_at_once() {
        let problem = Problem::new("UnsupportedCommand", "command scrub is not supported yet");
        let status = desired_status(
            &task(),
            &TaskState::Invalid(&problem),
            BTreeMap::new(),
            &at(3),
        );
        let failed = condition(&status, "Failed");
        assert!(failed.is_true());
        assert_eq!(failed.reason.as_deref(), Some("UnsupportedCommand"));
        assert_eq!(
            failed.message.as_deref(),
            Some("command scrub is not supported yet")
        );
        assert_eq!(status.completion_time, Some(at(3)));
    }

    #[test]
    fn the_same_state_gives_the_same_status() {
        let mut t = task();
        let state = TaskState::Running {
            command: "flush",
            pods: 1,
            waiting: &[],
        };
        let first = desired_status(&t, &state, BTreeMap::new(), &at(1));
        t.status = Some(first.clone());
        assert_eq!(desired_status(&t, &state, BTreeMap::new(), &at(9)), first);
    }
}
