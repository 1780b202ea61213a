//! The task planner: from the pods, their recorded progress and how the calls under way went, the
//! actions of this pass. Pure, so every rule is a table test.
//!
//! Rules:
//! 1. a pod `Running` is followed first: its call or job ended (done, or an attempt failed and is
//!    retried while `spec.retries` allows), or its restart finished (a new pod of the same name,
//!    other UID, is ready); a call lost with an operator restart, or a job the server forgot, is
//!    made again; a call or poll that times out or cannot connect counts as a failed attempt;
//! 2. calls: racks one after the other in spec order; in the current rack (the first with a pod not
//!    finished) pods start in ordinal order, `maxConcurrentPods` at a time, once ready;
//! 3. restart and replacement: one pod at a time; a restart waits until every pod of the datacenter
//!    is ready, a replacement does not (it is meant for a broken node).
//!
//! A pod that finally failed does not stop the others, as upstream: the task ends `Failed` once
//! every pod finished.

use std::{collections::BTreeMap, time::Duration};

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8ssandra_api::{
    control::{CassandraTask, JobArguments, PodJobStatus},
    names,
};
use k8ssandra_mgmt_api::JobId;
use kube::ResourceExt;

use super::validate::Operation;

/// Values of `podStatuses[pod].status`.
pub mod pod_status {
    /// The job runs on the pod (or is about to be retried).
    pub const RUNNING: &str = "Running";
    /// The job succeeded on the pod.
    pub const COMPLETED: &str = "Completed";
    /// The job failed on the pod and has no retry left.
    pub const FAILED: &str = "Failed";
}

/// Prefix of the `jobId` of a restart or replacement: the UID of the pod that was deleted.
pub const UID_MARKER: &str = "uid:";

/// A pod as it runs now.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LivePod {
    /// Its UID (a recreated pod has another).
    pub uid: String,
    /// Running with an IP, and Ready.
    pub ready: bool,
    /// Being deleted.
    pub deleting: bool,
    /// Annotated for replacement: the datacenter controller replaces it.
    pub replace_requested: bool,
}

/// A pod the task works on.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PodView {
    /// Pod name.
    pub name: String,
    /// Rack label value.
    pub rack: String,
    /// Place of the rack in the datacenter's spec; racks no longer in the spec come last.
    pub rack_index: usize,
    /// StatefulSet ordinal.
    pub ordinal: u32,
    /// The pod now; `None` while it does not exist (deleted, not recreated yet).
    pub live: Option<LivePod>,
}

impl PodView {
    fn ready(&self) -> bool {
        self.live.as_ref().is_some_and(|l| l.ready && !l.deleting)
    }
}

/// The Management API call this operator made for a pod of a task, as kept in memory.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CallProgress {
    /// No call known (none made, or the operator restarted since).
    Unknown,
    /// No answer yet.
    Running,
    /// Accepted as a job, to be polled.
    Submitted(JobId),
    /// Answered with success (a blocking call that finished).
    Done,
    /// Failed, with the error a user reads.
    Failed(String),
}

/// What polling a recorded job said.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum JobPoll {
    /// Still running.
    Waiting,
    /// Finished successfully.
    Completed,
    /// Finished with an error.
    Failed(String),
    /// The server does not know the job (it restarted, or evicted it).
    Unknown,
    /// The poll itself failed (timeout, connection refused, HTTP error).
    Unreachable(String),
}

/// Where the job stands on a pod, from its record.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Progress {
    /// Nothing done yet.
    NotStarted,
    /// Under way; the marker says what to follow.
    Running(Marker),
    /// Done.
    Completed,
    /// Failed with no retry left.
    Failed,
}

/// What a running pod's `jobId` records.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Marker {
    /// Nothing: a call under way, or about to be made again.
    None,
    /// A Management API job.
    Job(JobId),
    /// The UID of the pod a restart or replacement deleted.
    Uid(String),
}

/// Reads a pod's record. Upstream's upper-case values are understood too.
#[must_use]
pub fn progress(record: Option<&PodJobStatus>) -> Progress {
    let Some(record) = record else {
        return Progress::NotStarted;
    };
    match record.status.to_ascii_uppercase().as_str() {
        "COMPLETED" => Progress::Completed,
        "FAILED" | "ERROR" => Progress::Failed,
        "RUNNING" | "WAITING" => Progress::Running(match record.job_id.as_deref() {
            None | Some("") => Marker::None,
            Some(id) => match id.strip_prefix(UID_MARKER) {
                Some(uid) => Marker::Uid(uid.to_owned()),
                None => Marker::Job(JobId(id.to_owned())),
            },
        }),
        _ => Progress::NotStarted,
    }
}

/// How the task works on its pods.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// A Management API call per pod.
    Call,
    /// Delete and wait, one pod at a time, every pod ready first.
    Restart,
    /// Delete with the data volume claim and wait.
    Replace,
}

impl From<&Operation> for Kind {
    fn from(operation: &Operation) -> Self {
        match operation {
            Operation::Call(_) => Self::Call,
            Operation::Restart => Self::Restart,
            Operation::Replace { .. } => Self::Replace,
        }
    }
}

/// One target pod with everything known about it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PodInput {
    /// The pod.
    pub view: PodView,
    /// Its record in `status.podStatuses`.
    pub record: Option<PodJobStatus>,
    /// The call under way for it, from memory.
    pub call: CallProgress,
    /// What polling its recorded job said this pass (`None`: not polled).
    pub poll: Option<JobPoll>,
}

/// What the planner decides from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PlanInput {
    /// How the task works.
    pub kind: Kind,
    /// The target pods, in the order they are worked on.
    pub pods: Vec<PodInput>,
    /// Pods worked on at once (calls only).
    pub max_concurrent: usize,
    /// Retries of a failed pod.
    pub retries: u32,
    /// Every pod of the datacenter is ready and the datacenter takes no node down itself (a
    /// restart waits for it).
    pub all_ready: bool,
}

/// One step of the pass.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Action {
    /// Make the pod's Management API call (first time, a retry, or again after it was lost).
    Submit {
        /// The pod.
        pod: String,
    },
    /// The call was accepted as a job: record its id.
    RecordJob {
        /// The pod.
        pod: String,
        /// The job.
        job: JobId,
    },
    /// Delete the pod and record its UID; for a replacement, annotate it instead, so that the
    /// datacenter controller deletes its volume and pod and starts the new node in its place.
    DeletePod {
        /// The pod.
        pod: String,
        /// Its UID now.
        uid: String,
        /// Delete the data volume claim too.
        claim: bool,
    },
    /// The job succeeded on the pod.
    Complete {
        /// The pod.
        pod: String,
    },
    /// An attempt failed on the pod.
    Fail {
        /// The pod.
        pod: String,
        /// Why.
        error: String,
        /// A retry is left: the pod is tried again on a later pass.
        retry: bool,
    },
}

impl Action {
    /// The pod the action is about.
    #[must_use]
    pub fn pod(&self) -> &str {
        match self {
            Self::Submit { pod }
            | Self::RecordJob { pod, .. }
            | Self::DeletePod { pod, .. }
            | Self::Complete { pod }
            | Self::Fail { pod, .. } => pod,
        }
    }

    /// The pod is done with (succeeded, or failed for good) after this action.
    fn finishes(&self) -> bool {
        matches!(
            self,
            Self::Complete { .. } | Self::Fail { retry: false, .. }
        )
    }
}

/// The actions of a pass, and what the task waits for.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Plan {
    /// In order.
    pub actions: Vec<Action>,
    /// What holds the task up, for the `Running` condition's message.
    pub waiting: Vec<String>,
}

/// The pods a task works on, in order: racks in spec order, then ordinals; `args.rack` and
/// `args.pod_name` restrict them, and a replacement works on its pod only.
#[must_use]
pub fn select(mut pods: Vec<PodView>, operation: &Operation, args: &JobArguments) -> Vec<PodView> {
    let only_pod = match operation {
        Operation::Replace { pod } => Some(pod.as_str()),
        _ => args.pod_name.as_deref().filter(|p| !p.is_empty()),
    };
    let only_rack = args
        .rack
        .as_deref()
        .filter(|r| !r.is_empty())
        .map(names::clean_label_value);
    pods.retain(|p| {
        only_pod.is_none_or(|name| p.name == name)
            && only_rack.as_deref().is_none_or(|rack| p.rack == rack)
    });
    pods.sort_by(|a, b| {
        (a.rack_index, a.ordinal, &a.name).cmp(&(b.rack_index, b.ordinal, &b.name))
    });
    pods
}

/// For a call one node suffices for: the pod it was made on already, else the first ready pod,
/// else the first pod (the task waits for it).
#[must_use]
pub fn one_node(pods: Vec<PodView>, records: &BTreeMap<String, PodJobStatus>) -> Vec<PodView> {
    let chosen = pods
        .iter()
        .position(|p| records.contains_key(&p.name))
        .or_else(|| pods.iter().position(PodView::ready))
        .unwrap_or(0);
    pods.into_iter().skip(chosen).take(1).collect()
}

/// The actions of this pass.
#[must_use]
pub fn plan(input: &PlanInput) -> Plan {
    let mut plan = Plan::default();
    let mut active = 0;
    for pod in &input.pods {
        let Progress::Running(marker) = effective_progress(pod) else {
            continue;
        };
        let still_active = match input.kind {
            Kind::Call => follow_call(pod, &marker, input.retries, &mut plan),
            Kind::Restart | Kind::Replace => {
                follow_restart(pod, &marker, input.kind == Kind::Replace, &mut plan)
            }
        };
        if still_active {
            active += 1;
        }
    }
    match input.kind {
        Kind::Call => start_calls(input, active, &mut plan),
        Kind::Restart | Kind::Replace if active == 0 => start_restart(input, &mut plan),
        Kind::Restart | Kind::Replace => {}
    }
    plan
}

/// The record's progress, except that a pod with a call under way in memory is running even when
/// its record does not say so yet (the pass that made the call could not write the status).
fn effective_progress(pod: &PodInput) -> Progress {
    match progress(pod.record.as_ref()) {
        Progress::NotStarted if pod.call != CallProgress::Unknown => {
            Progress::Running(Marker::None)
        }
        progress => progress,
    }
}

fn attempts(record: Option<&PodJobStatus>) -> u32 {
    record
        .and_then(|r| r.retries)
        .and_then(|r| u32::try_from(r).ok())
        .unwrap_or(0)
}

/// Follows a pod whose call runs; returns whether it still runs after this pass.
fn follow_call(pod: &PodInput, marker: &Marker, retries: u32, plan: &mut Plan) -> bool {
    match marker {
        Marker::Job(_) => match &pod.poll {
            Some(JobPoll::Completed) => {
                plan.actions.push(Action::Complete {
                    pod: pod.view.name.clone(),
                });
                false
            }
            Some(JobPoll::Failed(error) | JobPoll::Unreachable(error)) => {
                fail(pod, error, retries, plan)
            }
            Some(JobPoll::Unknown) => resubmit(pod, plan),
            Some(JobPoll::Waiting) => true,
            None => {
                plan.waiting.push(format!(
                    "waiting for pod {} to run again to poll its job",
                    pod.view.name
                ));
                true
            }
        },
        Marker::None | Marker::Uid(_) => match &pod.call {
            CallProgress::Running => true,
            CallProgress::Submitted(job) => {
                plan.actions.push(Action::RecordJob {
                    pod: pod.view.name.clone(),
                    job: job.clone(),
                });
                true
            }
            CallProgress::Done => {
                plan.actions.push(Action::Complete {
                    pod: pod.view.name.clone(),
                });
                false
            }
            CallProgress::Failed(error) => fail(pod, error, retries, plan),
            // Lost with an operator restart, or a retry is due: call again.
            CallProgress::Unknown => resubmit(pod, plan),
        },
    }
}

/// Records a failed attempt; returns whether the pod is retried (so still runs).
fn fail(pod: &PodInput, error: &str, retries: u32, plan: &mut Plan) -> bool {
    let retry = attempts(pod.record.as_ref()) < retries;
    plan.actions.push(Action::Fail {
        pod: pod.view.name.clone(),
        error: error.to_owned(),
        retry,
    });
    retry
}

fn resubmit(pod: &PodInput, plan: &mut Plan) -> bool {
    if pod.view.ready() {
        plan.actions.push(Action::Submit {
            pod: pod.view.name.clone(),
        });
    } else {
        plan.waiting
            .push(format!("waiting for pod {} to be ready", pod.view.name));
    }
    true
}

/// Starts calls on the next pods of the current rack, up to the limit.
fn start_calls(input: &PlanInput, mut active: usize, plan: &mut Plan) {
    let finished = |pod: &PodInput| {
        matches!(
            effective_progress(pod),
            Progress::Completed | Progress::Failed
        ) || plan
            .actions
            .iter()
            .any(|a| a.pod() == pod.view.name && a.finishes())
    };
    let Some(rack) = input
        .pods
        .iter()
        .find(|p| !finished(p))
        .map(|p| p.view.rack_index)
    else {
        return;
    };
    let mut starts = Vec::new();
    for pod in input.pods.iter().filter(|p| p.view.rack_index == rack) {
        if active >= input.max_concurrent.max(1) {
            break;
        }
        if effective_progress(pod) != Progress::NotStarted {
            continue;
        }
        if !pod.view.ready() {
            plan.waiting
                .push(format!("waiting for pod {} to be ready", pod.view.name));
            break;
        }
        starts.push(Action::Submit {
            pod: pod.view.name.clone(),
        });
        active += 1;
    }
    plan.actions.extend(starts);
}

/// Follows a pod being restarted or replaced; returns whether it is still under way.
fn follow_restart(pod: &PodInput, marker: &Marker, claim: bool, plan: &mut Plan) -> bool {
    let name = &pod.view.name;
    let Marker::Uid(old) = marker else {
        // No UID recorded: nothing was deleted yet as far as the record knows.
        delete(pod, claim, plan);
        return true;
    };
    match &pod.view.live {
        None => plan
            .waiting
            .push(format!("waiting for pod {name} to be recreated")),
        Some(live) if live.uid == *old && live.deleting => plan
            .waiting
            .push(format!("waiting for pod {name} to terminate")),
        Some(live) if live.uid == *old && live.replace_requested => plan.waiting.push(format!(
            "waiting for the datacenter controller to replace the node of {name}"
        )),
        // The deletion did not happen (the pass failed after recording it): delete again.
        Some(live) if live.uid == *old => delete(pod, claim, plan),
        Some(live) if live.ready && !live.deleting => {
            plan.actions.push(Action::Complete { pod: name.clone() });
            return false;
        }
        Some(_) => plan
            .waiting
            .push(format!("waiting for the new pod {name} to be ready")),
    }
    true
}

fn delete(pod: &PodInput, claim: bool, plan: &mut Plan) {
    match &pod.view.live {
        Some(live) if !live.deleting => plan.actions.push(Action::DeletePod {
            pod: pod.view.name.clone(),
            uid: live.uid.clone(),
            claim,
        }),
        _ => plan
            .waiting
            .push(format!("waiting for pod {} to exist", pod.view.name)),
    }
}

/// Restarts or replaces the next pod.
fn start_restart(input: &PlanInput, plan: &mut Plan) {
    let Some(pod) = input
        .pods
        .iter()
        .find(|p| effective_progress(p) == Progress::NotStarted)
    else {
        return;
    };
    if input.kind == Kind::Restart && !input.all_ready {
        plan.waiting.push(format!(
            "waiting for every pod of the datacenter to be ready, and for the datacenter's own \
             rollout, decommission or replacement to end, before restarting {}",
            pod.view.name
        ));
        return;
    }
    delete(pod, input.kind == Kind::Replace, plan);
}

/// The earlier task on the same datacenter that `task` must wait for, under upstream's
/// `concurrencyPolicy`: two unfinished tasks on one datacenter run one after the other (oldest
/// first, by creation time then name) unless both say `Allow`. A task that started holds
/// back every task that did not; of the others, the older holds back the newer unless its
/// scheduled time has not come.
#[must_use]
pub fn blocking_task<'a>(
    task: &CassandraTask,
    others: &'a [&'a CassandraTask],
    now: &Time,
) -> Option<&'a CassandraTask> {
    let started = |t: &CassandraTask| t.status.as_ref().is_some_and(|s| s.start_time.is_some());
    let finished = |t: &CassandraTask| {
        t.status
            .as_ref()
            .is_some_and(|s| s.completion_time.is_some())
    };
    if started(task) {
        return None;
    }
    let key = |t: &CassandraTask| (t.metadata.creation_timestamp.clone(), t.name_any());
    others.iter().copied().find(|other| {
        other.uid() != task.uid()
            && other.namespace() == task.namespace()
            && other.spec.datacenter.name == task.spec.datacenter.name
            && !finished(other)
            && !(task.spec.template.allows_concurrency()
                && other.spec.template.allows_concurrency())
            && (started(other)
                || (key(other) < key(task)
                    && scheduled_wait(other.spec.template.scheduled_time.as_ref(), now).is_none()))
    })
}

/// Where the whole task stands after a pass.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Some pod is not done yet.
    Running,
    /// Every pod is done; the pods that failed, with their errors.
    Finished {
        /// Pod and error of each failed pod, in target order.
        failures: Vec<(String, String)>,
    },
}

/// Whether every target pod is done, from the records.
#[must_use]
pub fn outcome(targets: &[String], records: &BTreeMap<String, PodJobStatus>) -> Outcome {
    let mut failures = Vec::new();
    for pod in targets {
        let record = records.get(pod);
        match progress(record) {
            Progress::Completed => {}
            Progress::Failed => failures.push((
                pod.clone(),
                record
                    .and_then(|r| r.error.clone())
                    .unwrap_or_else(|| "unknown error".to_owned()),
            )),
            Progress::NotStarted | Progress::Running(_) => return Outcome::Running,
        }
    }
    Outcome::Finished { failures }
}

/// How long until `scheduledTime`; `None` when the task may run now.
#[must_use]
pub fn scheduled_wait(scheduled: Option<&Time>, now: &Time) -> Option<Duration> {
    let scheduled = scheduled?;
    if scheduled.0 <= now.0 {
        return None;
    }
    Duration::try_from(scheduled.0.duration_since(now.0)).ok()
}

/// What to do with a finished task.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Expiry {
    /// Keep it.
    Keep,
    /// Its time is up: delete it.
    DeleteNow,
    /// Delete it after this long.
    DeleteIn(Duration),
}

/// When a finished task is deleted: `ttlSecondsAfterFinished` after its completion. Unset or 0
/// keeps it (0 means "forever", as upstream).
#[must_use]
pub fn expiry(ttl_seconds: Option<i32>, completion: Option<&Time>, now: &Time) -> Expiry {
    let (Some(ttl), Some(completion)) = (ttl_seconds.filter(|t| *t > 0), completion) else {
        return Expiry::Keep;
    };
    let left = k8ssandra_reconcile::scope::left_after(completion, i64::from(ttl), now);
    if left.is_zero() {
        Expiry::DeleteNow
    } else {
        Expiry::DeleteIn(left)
    }
}

#[cfg(test)]
mod tests {
    use k8s_openapi::jiff::Timestamp;

    use super::*;

    fn restart_task(name: &str, created: i64, policy: Option<&str>) -> CassandraTask {
        use k8ssandra_api::control::{CassandraTaskSpec, CassandraTaskTemplate};
        let mut task = CassandraTask::new(
            name,
            CassandraTaskSpec {
                datacenter: k8s_openapi::api::core::v1::ObjectReference {
                    name: Some("dc1".into()),
                    ..Default::default()
                },
                template: CassandraTaskTemplate {
                    concurrency_policy: policy.map(str::to_owned),
                    ..Default::default()
                },
            },
        );
        task.metadata.namespace = Some("cass".into());
        task.metadata.uid = Some(format!("uid-{name}"));
        task.metadata.creation_timestamp = Some(at(created));
        task
    }

    fn started(mut task: CassandraTask, done: bool) -> CassandraTask {
        let status = task.status.get_or_insert_with(Default::default);
        status.start_time = Some(at(1));
        if done {
            status.completion_time = Some(at(2));
        }
        task
    }

    #[test]
    fn tasks_on_one_datacenter_run_oldest_first_unless_both_allow_concurrency() {
        let now = at(100);
        let old = restart_task("old", 10, None);
        let new = restart_task("new", 20, None);
        let others = [&old, &new];
        assert_eq!(
            blocking_task(&new, &others, &now).map(|t| t.name_any()),
            Some("old".into())
        );
        assert!(blocking_task(&old, &others, &now).is_none());
        // A started task holds back even an older one that has not started.
        let running_new = started(new.clone(), false);
        let others = [&old, &running_new];
        assert_eq!(
            blocking_task(&old, &others, &now).map(|t| t.name_any()),
            Some("new".into())
        );
        // A finished one holds back no one; nor a task of another datacenter.
        let done_old = started(old.clone(), true);
        assert!(blocking_task(&new, &[&done_old, &new], &now).is_none());
        let mut elsewhere = old.clone();
        elsewhere.spec.datacenter.name = Some("dc2".into());
        assert!(blocking_task(&new, &[&elsewhere, &new], &now).is_none());
        // Both must allow it to run together.
        let old_allow = restart_task("old", 10, Some("Allow"));
        let new_allow = restart_task("new", 20, Some("Allow"));
        assert!(blocking_task(&new_allow, &[&old_allow, &new_allow], &now).is_none());
        assert!(blocking_task(&new_allow, &[&old, &new_allow], &now).is_some());
        // An older task scheduled later does not hold back one that may run now.
        let mut later = old.clone();
        later.spec.template.scheduled_time = Some(at(500));
        assert!(blocking_task(&new, &[&later, &new], &now).is_none());
    }

    fn at(seconds: i64) -> Time {
        Time(Timestamp::from_second(seconds).unwrap())
    }

    fn view(name: &str, rack_index: usize, ordinal: u32, ready: bool) -> PodView {
        PodView {
            name: name.into(),
            rack: format!("rack{}", rack_index + 1),
            rack_index,
            ordinal,
            live: Some(LivePod {
                uid: format!("{name}-uid"),
                ready,
                deleting: false,
                replace_requested: false,
            }),
        }
    }

    fn pod(name: &str, rack_index: usize) -> PodInput {
        PodInput {
            view: view(name, rack_index, 0, true),
            record: None,
            call: CallProgress::Unknown,
            poll: None,
        }
    }

    fn record(status: &str, job: Option<&str>, retries: i32) -> Option<PodJobStatus> {
        Some(PodJobStatus {
            status: status.into(),
            job_id: job.map(str::to_owned),
            retries: Some(retries),
            ..PodJobStatus::default()
        })
    }

    fn input(kind: Kind, pods: Vec<PodInput>) -> PlanInput {
        PlanInput {
            kind,
            pods,
            max_concurrent: 1,
            retries: 0,
            all_ready: true,
        }
    }

    fn submit(pod: &str) -> Action {
        Action::Submit { pod: pod.into() }
    }

    #[test]
    fn pods_are_ordered_by_rack_then_ordinal_and_filtered() {
        let pods = vec![
            view("r2-0", 1, 0, true),
            view("r1-1", 0, 1, true),
            view("r1-0", 0, 0, true),
            view("gone-0", 3, 0, true),
        ];
        let all = select(pods.clone(), &Operation::Restart, &JobArguments::default());
        let names: Vec<_> = all.iter().map(|p| p.name.as_str()).collect();
        assert_eq!(names, ["r1-0", "r1-1", "r2-0", "gone-0"]);

        let rack = JobArguments {
            rack: Some("rack1".into()),
            ..JobArguments::default()
        };
        let names: Vec<_> = select(pods.clone(), &Operation::Restart, &rack)
            .into_iter()
            .map(|p| p.name)
            .collect();
        assert_eq!(names, ["r1-0", "r1-1"]);

        let one = JobArguments {
            pod_name: Some("r2-0".into()),
            ..JobArguments::default()
        };
        assert_eq!(select(pods.clone(), &Operation::Restart, &one).len(), 1);
        let replace = Operation::Replace { pod: "r1-1".into() };
        let names: Vec<_> = select(pods, &replace, &JobArguments::default())
            .into_iter()
            .map(|p| p.name)
            .collect();
        assert_eq!(names, ["r1-1"]);
    }

    #[test]
    fn a_call_starts_on_the_first_pod_only() {
        let plan = plan(&input(
            Kind::Call,
            vec![pod("a", 0), pod("b", 0), pod("c", 1)],
        ));
        assert_eq!(plan.actions, vec![submit("a")]);
    }

    #[test]
    fn max_concurrent_pods_stays_within_the_current_rack() {
        let mut input = input(Kind::Call, vec![pod("a", 0), pod("b", 0), pod("c", 1)]);
        input.max_concurrent = 3;
        assert_eq!(plan(&input).actions, vec![submit("a"), submit("b")]);
    }

    #[test]
    fn the_next_rack_starts_when_the_current_one_is_done() {
        let mut a = pod("a", 0);
        a.record = record(pod_status::RUNNING, Some("job-1"), 0);
        a.poll = Some(JobPoll::Completed);
        let mut b = pod("b", 0);
        b.record = record(pod_status::COMPLETED, None, 0);
        let plan = plan(&input(Kind::Call, vec![a, b, pod("c", 1)]));
        assert_eq!(
            plan.actions,
            vec![Action::Complete { pod: "a".into() }, submit("c")]
        );
    }

    #[test]
    fn a_running_job_holds_the_next_pod() {
        let mut a = pod("a", 0);
        a.record = record(pod_status::RUNNING, Some("job-1"), 0);
        a.poll = Some(JobPoll::Waiting);
        assert_eq!(
            plan(&input(Kind::Call, vec![a, pod("b", 0)])).actions,
            vec![]
        );
    }

    #[test]
    fn an_accepted_call_records_its_job_and_a_blocking_one_completes() {
        let mut a = pod("a", 0);
        a.record = record(pod_status::RUNNING, None, 0);
        a.call = CallProgress::Submitted(JobId("j".into()));
        let mut b = pod("b", 1);
        b.record = record(pod_status::RUNNING, None, 0);
        b.call = CallProgress::Done;
        let mut input = input(Kind::Call, vec![a, b]);
        input.max_concurrent = 2;
        assert_eq!(
            plan(&input).actions,
            vec![
                Action::RecordJob {
                    pod: "a".into(),
                    job: JobId("j".into())
                },
                Action::Complete { pod: "b".into() }
            ]
        );
    }

    #[test]
    fn a_failed_job_is_retried_while_retries_are_left() {
        let failing = |retries_so_far| {
            let mut a = pod("a", 0);
            a.record = record(pod_status::RUNNING, Some("j"), retries_so_far);
            a.poll = Some(JobPoll::Failed("boom".into()));
            a
        };
        let mut with_retries = input(Kind::Call, vec![failing(0), pod("b", 0)]);
        with_retries.retries = 1;
        assert_eq!(
            plan(&with_retries).actions,
            vec![Action::Fail {
                pod: "a".into(),
                error: "boom".into(),
                retry: true
            }]
        );
        with_retries.pods[0] = failing(1);
        // No retry left: the pod fails for good, and the next pod starts.
        assert_eq!(
            plan(&with_retries).actions,
            vec![
                Action::Fail {
                    pod: "a".into(),
                    error: "boom".into(),
                    retry: false
                },
                submit("b")
            ]
        );
    }

    #[test]
    fn a_failed_submission_counts_as_an_attempt() {
        let mut a = pod("a", 0);
        a.record = record(pod_status::RUNNING, None, 0);
        a.call = CallProgress::Failed("HTTP 500".into());
        assert_eq!(
            plan(&input(Kind::Call, vec![a])).actions,
            vec![Action::Fail {
                pod: "a".into(),
                error: "HTTP 500".into(),
                retry: false
            }]
        );
    }

    #[test]
    fn a_lost_call_or_forgotten_job_is_made_again() {
        // After an operator restart: running, no job id, nothing in memory.
        let mut a = pod("a", 0);
        a.record = record(pod_status::RUNNING, None, 0);
        assert_eq!(plan(&input(Kind::Call, vec![a])).actions, vec![submit("a")]);
        let mut b = pod("b", 0);
        b.record = record(pod_status::RUNNING, Some("j"), 0);
        b.poll = Some(JobPoll::Unknown);
        assert_eq!(plan(&input(Kind::Call, vec![b])).actions, vec![submit("b")]);
    }

    #[test]
    fn a_call_in_memory_is_not_made_twice() {
        let mut a = pod("a", 0);
        a.call = CallProgress::Running;
        assert_eq!(
            plan(&input(Kind::Call, vec![a, pod("b", 0)])).actions,
            vec![]
        );
    }

    #[test]
    fn a_pod_that_is_not_ready_is_waited_for() {
        let mut a = pod("a", 0);
        a.view = view("a", 0, 0, false);
        let plan = plan(&input(Kind::Call, vec![a, pod("b", 0)]));
        assert!(plan.actions.is_empty());
        assert_eq!(plan.waiting, vec!["waiting for pod a to be ready"]);
    }

    #[test]
    fn a_restart_deletes_one_pod_once_all_are_ready() {
        let plan_all = plan(&input(Kind::Restart, vec![pod("a", 0), pod("b", 1)]));
        assert_eq!(
            plan_all.actions,
            vec![Action::DeletePod {
                pod: "a".into(),
                uid: "a-uid".into(),
                claim: false
            }]
        );
        let mut not_ready = input(Kind::Restart, vec![pod("a", 0)]);
        not_ready.all_ready = false;
        assert!(plan(&not_ready).actions.is_empty());
    }

    #[test]
    fn a_restart_completes_when_a_new_pod_is_ready() {
        let restarted = |uid: &str, ready: bool, deleting: bool| {
            let mut a = pod("a", 0);
            a.record = record(pod_status::RUNNING, Some("uid:a-uid"), 0);
            a.view.live = Some(LivePod {
                uid: uid.into(),
                ready,
                deleting,
                replace_requested: false,
            });
            a
        };
        // Still the old pod, terminating: wait, and do not touch the next one.
        let old = plan(&input(
            Kind::Restart,
            vec![restarted("a-uid", true, true), pod("b", 1)],
        ));
        assert!(old.actions.is_empty());
        // A new pod, not ready yet: wait.
        let new = plan(&input(
            Kind::Restart,
            vec![restarted("new", false, false), pod("b", 1)],
        ));
        assert!(new.actions.is_empty());
        // Ready: done, and the next pod goes.
        let done = plan(&input(
            Kind::Restart,
            vec![restarted("new", true, false), pod("b", 1)],
        ));
        assert_eq!(
            done.actions,
            vec![
                Action::Complete { pod: "a".into() },
                Action::DeletePod {
                    pod: "b".into(),
                    uid: "b-uid".into(),
                    claim: false
                }
            ]
        );
        // The old pod is still there and not deleting: the deletion is made again.
        let again = plan(&input(Kind::Restart, vec![restarted("a-uid", true, false)]));
        assert_eq!(
            again.actions,
            vec![Action::DeletePod {
                pod: "a".into(),
                uid: "a-uid".into(),
                claim: false
            }]
        );
    }

    #[test]
    fn a_replacement_deletes_the_claim_even_when_the_pod_is_not_ready() {
        let mut a = pod("a", 0);
        a.view = view("a", 0, 0, false);
        let mut input = input(Kind::Replace, vec![a]);
        input.all_ready = false;
        assert_eq!(
            plan(&input).actions,
            vec![Action::DeletePod {
                pod: "a".into(),
                uid: "a-uid".into(),
                claim: true
            }]
        );
    }

    #[test]
    fn the_task_finishes_when_every_pod_is_done() {
        let targets = vec!["a".to_owned(), "b".to_owned()];
        let mut records = BTreeMap::new();
        records.insert("a".to_owned(), record("Completed", None, 0).unwrap());
        assert_eq!(outcome(&targets, &records), Outcome::Running);
        let mut failed = record("Failed", None, 0).unwrap();
        failed.error = Some("boom".into());
        records.insert("b".to_owned(), failed);
        assert_eq!(
            outcome(&targets, &records),
            Outcome::Finished {
                failures: vec![("b".into(), "boom".into())]
            }
        );
        records.insert("b".to_owned(), record("COMPLETED", None, 0).unwrap());
        assert_eq!(
            outcome(&targets, &records),
            Outcome::Finished { failures: vec![] }
        );
    }

    #[test]
    fn records_are_read_with_their_markers() {
        assert_eq!(progress(None), Progress::NotStarted);
        assert_eq!(
            progress(record("Running", Some("uid:x"), 0).as_ref()),
            Progress::Running(Marker::Uid("x".into()))
        );
        assert_eq!(
            progress(record("Running", Some("j"), 0).as_ref()),
            Progress::Running(Marker::Job(JobId("j".into())))
        );
        assert_eq!(
            progress(record("Running", None, 0).as_ref()),
            Progress::Running(Marker::None)
        );
        assert_eq!(
            progress(record("ERROR", None, 0).as_ref()),
            Progress::Failed
        );
    }

    #[test]
    fn the_task_waits_for_its_scheduled_time() {
        assert_eq!(scheduled_wait(None, &at(100)), None);
        assert_eq!(scheduled_wait(Some(&at(90)), &at(100)), None);
        assert_eq!(scheduled_wait(Some(&at(100)), &at(100)), None);
        assert_eq!(
            scheduled_wait(Some(&at(130)), &at(100)),
            Some(Duration::from_secs(30))
        );
    }

    #[test]
    fn a_finished_task_is_deleted_after_its_ttl() {
        assert_eq!(expiry(None, Some(&at(100)), &at(200)), Expiry::Keep);
        assert_eq!(expiry(Some(0), Some(&at(100)), &at(200)), Expiry::Keep);
        assert_eq!(expiry(Some(60), None, &at(200)), Expiry::Keep);
        assert_eq!(
            expiry(Some(60), Some(&at(100)), &at(130)),
            Expiry::DeleteIn(Duration::from_secs(31))
        );
        assert_eq!(
            expiry(Some(60), Some(&at(100)), &at(161)),
            Expiry::DeleteNow
        );
    }
}
