//! The Management API calls of tasks under way, by task and pod, kept in memory between passes.
//!
//! A submission is quick when the server takes it as a job, but a blocking (v0) call lasts as long
//! as the operation, so a pass never waits for one: it makes the call in a task of its own and a
//! later pass reads how it went. The task's `podStatuses` is the durable record: after an operator
//! restart a pod `Running` without a job id has no call here, and the planner makes it again.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex, MutexGuard},
};

use k8ssandra_mgmt_api::JobId;

use super::plan::CallProgress;

#[derive(Clone, Debug)]
struct Call {
    /// Tells a call apart from an older one of the same pod that answers late.
    attempt: u64,
    progress: CallProgress,
}

#[derive(Debug, Default)]
struct Inner {
    /// By task UID and pod name.
    calls: HashMap<(String, String), Call>,
    next_attempt: u64,
}

/// The registry; cheap to clone, clones share it.
#[derive(Clone, Debug, Default)]
pub struct TaskCalls {
    inner: Arc<Mutex<Inner>>,
}

/// One call, as handed to the task that makes it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CallTicket {
    task: String,
    pod: String,
    attempt: u64,
}

impl TaskCalls {
    /// An empty registry.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // A panic while holding the lock leaves plain data behind; keep using it.
        self.inner
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Records that a call for `pod` of task `task` (its UID) is made now.
    pub fn begin(&self, task: &str, pod: &str) -> CallTicket {
        let mut inner = self.lock();
        inner.next_attempt += 1;
        let attempt = inner.next_attempt;
        inner.calls.insert(
            (task.to_owned(), pod.to_owned()),
            Call {
                attempt,
                progress: CallProgress::Running,
            },
        );
        CallTicket {
            task: task.to_owned(),
            pod: pod.to_owned(),
            attempt,
        }
    }

    /// Records how the call ended: `Ok(None)` done, `Ok(Some(job))` a job to poll, `Err` failed.
    /// A call that was forgotten or replaced meanwhile is ignored.
    pub fn finish(&self, ticket: &CallTicket, outcome: Result<Option<JobId>, String>) {
        let mut inner = self.lock();
        let key = (ticket.task.clone(), ticket.pod.clone());
        if let Some(call) = inner.calls.get_mut(&key)
            && call.attempt == ticket.attempt
        {
            call.progress = match outcome {
                Ok(None) => CallProgress::Done,
                Ok(Some(job)) => CallProgress::Submitted(job),
                Err(error) => CallProgress::Failed(error),
            };
        }
    }

    /// How the call for `pod` of task `task` went; `Unknown` when there is none.
    #[must_use]
    pub fn progress(&self, task: &str, pod: &str) -> CallProgress {
        self.lock()
            .calls
            .get(&(task.to_owned(), pod.to_owned()))
            .map_or(CallProgress::Unknown, |c| c.progress.clone())
    }

    /// Forgets the call for `pod` of task `task` (its outcome is in the task's status now).
    pub fn forget(&self, task: &str, pod: &str) {
        self.lock().calls.remove(&(task.to_owned(), pod.to_owned()));
    }

    /// Forgets every call of task `task` (it finished, or was deleted).
    pub fn forget_task(&self, task: &str) {
        self.lock().calls.retain(|(t, _), _| t != task);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_call_is_followed_until_forgotten() {
        let calls = TaskCalls::new();
        assert_eq!(calls.progress("t", "a"), CallProgress::Unknown);
        let ticket = calls.begin("t", "a");
        assert_eq!(calls.progress("t", "a"), CallProgress::Running);
        calls.finish(&ticket, Ok(Some(JobId("j".into()))));
        assert_eq!(
            calls.progress("t", "a"),
            CallProgress::Submitted(JobId("j".into()))
        );
        calls.forget("t", "a");
        assert_eq!(calls.progress("t", "a"), CallProgress::Unknown);
    }

    #[test]
    fn a_late_answer_of_an_older_call_is_ignored() {
        let calls = TaskCalls::new();
        let old = calls.begin("t", "a");
        let new = calls.begin("t", "a");
        calls.finish(&old, Err("timeout".into()));
        assert_eq!(calls.progress("t", "a"), CallProgress::Running);
        calls.finish(&new, Ok(None));
        assert_eq!(calls.progress("t", "a"), CallProgress::Done);
        calls.begin("u", "a");
        calls.forget_task("t");
        assert_eq!(calls.progress("t", "a"), CallProgress::Unknown);
        assert_eq!(calls.progress("u", "a"), CallProgress::Running);
    }
}
