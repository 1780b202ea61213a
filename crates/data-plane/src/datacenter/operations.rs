//! The Management API calls under way, by pod, kept in memory between passes.
//!
//! A start or a decommission can take minutes (or hang), so a pass never waits for one: it makes
//! the call in a task of its own and later passes read how it went. The pod's node-state label is
//! the durable record: after an operator restart, an unknown call is judged from the label and
//! the ring (see the planner).

use std::{
    collections::HashMap,
    sync::{Arc, Mutex, MutexGuard},
    time::Instant,
};

use k8ssandra_mgmt_api::JobId;
use k8ssandra_reconcile::backoff::{Backoff, BackoffPolicy, Failures};

use super::plan::CallProgress;

/// Which call.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum CallKind {
    /// `lifecycle/start`.
    Start,
    /// `ops/node/decommission`.
    Decommission,
}

/// How a call went so far.
#[derive(Clone, Debug, PartialEq, Eq)]
enum CallState {
    Running,
    /// Accepted as a job still to be polled.
    Job(JobId),
    Succeeded,
    Failed(String),
}

#[derive(Clone, Debug)]
struct Call {
    made: Instant,
    state: CallState,
}

#[derive(Debug)]
struct Inner {
    /// By pod UID and call: a recreated pod starts with no record.
    calls: HashMap<(String, CallKind), Call>,
    /// Start failures by pod name (namespace/name), which outlive the pod.
    start_failures: Backoff<String>,
    /// Decommission failures by pod name.
    decommission_failures: Backoff<String>,
}

/// The registry; cheap to clone, clones share it.
#[derive(Clone, Debug)]
pub struct NodeCalls {
    inner: Arc<Mutex<Inner>>,
}

impl NodeCalls {
    /// An empty registry; failed starts and decommissions back off by `policy`.
    #[must_use]
    pub fn new(policy: BackoffPolicy) -> Self {
        Self {
            inner: Arc::new(Mutex::new(Inner {
                calls: HashMap::new(),
                start_failures: Backoff::new(policy),
                decommission_failures: Backoff::new(policy),
            })),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // A panic while holding the lock leaves plain data behind; keep using it.
        self.inner
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Records that `kind` was called for pod `uid` now.
    pub fn begin(&self, uid: &str, kind: CallKind) {
        self.lock().calls.insert(
            (uid.to_owned(), kind),
            Call {
                made: Instant::now(),
                state: CallState::Running,
            },
        );
    }

    /// Records how the call ended: `Ok(None)` done, `Ok(Some(job))` a job to poll, `Err` failed.
    pub fn finish(&self, uid: &str, kind: CallKind, outcome: Result<Option<JobId>, String>) {
        if let Some(call) = self.lock().calls.get_mut(&(uid.to_owned(), kind)) {
            call.state = match outcome {
                Ok(None) => CallState::Succeeded,
                Ok(Some(job)) => CallState::Job(job),
                Err(error) => CallState::Failed(error),
            };
        }
    }

    /// The job to poll for pod `uid`'s call, if it was accepted as one.
    #[must_use]
    pub fn pending_job(&self, uid: &str, kind: CallKind) -> Option<JobId> {
        match &self.lock().calls.get(&(uid.to_owned(), kind))?.state {
            CallState::Job(job) => Some(job.clone()),
            _ => None,
        }
    }

    /// The call's progress for the planner.
    #[must_use]
    pub fn progress(&self, uid: &str, kind: CallKind, now: Instant) -> CallProgress {
        let inner = self.lock();
        let Some(call) = inner.calls.get(&(uid.to_owned(), kind)) else {
            return CallProgress::Unknown;
        };
        let for_ = now.saturating_duration_since(call.made);
        match &call.state {
            CallState::Running | CallState::Job(_) => CallProgress::Running { for_ },
            CallState::Succeeded => CallProgress::Succeeded { for_ },
            CallState::Failed(error) => CallProgress::Failed(error.clone()),
        }
    }

    /// Forgets pod `uid`'s call (its failure was handled, or the pod is gone).
    pub fn forget(&self, uid: &str, kind: CallKind) {
        self.lock().calls.remove(&(uid.to_owned(), kind));
    }

    /// Forgets every call of pods not in `live_uids`.
    pub fn retain_pods(&self, live_uids: &[&str]) {
        self.lock()
            .calls
            .retain(|(uid, _), _| live_uids.contains(&uid.as_str()));
    }

    /// Records a failed start of pod `name`; returns the failure record.
    pub fn start_failed(&self, name: &str, error: String) -> Failures {
        self.lock()
            .start_failures
            .fail(&name.to_owned(), error, Instant::now())
    }

    /// Forgets the failures of pod `name` (it started).
    pub fn start_succeeded(&self, name: &str) {
        self.lock().start_failures.succeed(&name.to_owned());
    }

    /// The start failures of pod `name`: whether it may be tried now, and the record.
    #[must_use]
    pub fn start_failures(&self, name: &str, now: Instant) -> (bool, Option<Failures>) {
        let inner = self.lock();
        let key = name.to_owned();
        (
            inner.start_failures.ready(&key, now),
            inner.start_failures.get(&key).cloned(),
        )
    }

    /// Records a failed decommission of pod `name`.
    pub fn decommission_failed(&self, name: &str, error: String) -> Failures {
        self.lock()
            .decommission_failures
            .fail(&name.to_owned(), error, Instant::now())
    }

    /// Whether pod `name` may be decommissioned now (no recent failure).
    #[must_use]
    pub fn decommission_ready(&self, name: &str, now: Instant) -> bool {
        self.lock()
            .decommission_failures
            .ready(&name.to_owned(), now)
    }
}

/// The generation each StatefulSet had after this operator's last write, by UID, so that an edit
/// by someone else is told from the operator's own writes, and reverted once.
#[derive(Debug, Default)]
pub struct WrittenGenerations(std::sync::Mutex<std::collections::HashMap<String, i64>>);

impl WrittenGenerations {
    /// Records the StatefulSet as the API server answered a write of it.
    pub fn record(&self, sts: &k8s_openapi::api::apps::v1::StatefulSet) {
        let (Some(uid), Some(generation)) = (sts.metadata.uid.clone(), sts.metadata.generation)
        else {
            return;
        };
        if let Ok(mut map) = self.0.lock() {
            map.insert(uid, generation);
        }
    }

    /// Whether the StatefulSet is still at the generation of this operator's last write.
    #[must_use]
    pub fn is_current(&self, sts: &k8s_openapi::api::apps::v1::StatefulSet) -> bool {
        let Some(uid) = sts.metadata.uid.as_deref() else {
            return false;
        };
        self.0
            .lock()
            .map(|map| map.get(uid).copied() == sts.metadata.generation)
            .unwrap_or(false)
    }
}
