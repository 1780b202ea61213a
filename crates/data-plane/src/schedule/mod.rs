//! The ScheduledTask controller (cass-operator's kind): makes a CassandraTask from
//! `spec.taskDetails` each time the cron `spec.schedule` is due, and records `lastExecution` and
//! `nextSchedule`. One pass is validate → [`plan`] (pure) → act → status; everything is read
//! from the watch caches.
//!
//! As upstream: the first run is the first time the schedule is due after the ScheduledTask was
//! made; runs missed while the operator was down make one task, at once; the tasks carry the
//! datacenter's labels and are named `<ScheduledTask>-<unix seconds>`, and the ScheduledTask is
//! owned by its datacenter (it goes with it). Unlike upstream:
//! - the name is that of the time the run was due, so that a pass repeated after a crash finds
//!   the task it made instead of making a second one;
//! - with `concurrencyPolicy` other than `Allow`, a run waits while the previous task of the
//!   schedule has not finished (upstream's check looks for a task that never exists);
//! - a schedule that cannot be read, a datacenter in another namespace or one that does not
//!   exist, and a task the API server refuses, are `Valid=False` with a reason and an Event;
//! - the tasks carry the label `control.k8ssandra.io/scheduled-task` (ours) naming the schedule.

pub mod cron;
pub mod plan;

use std::{sync::Arc, time::Duration};

use futures::StreamExt;
use k8s_openapi::{
    apimachinery::pkg::apis::meta::v1::{OwnerReference, Time},
    jiff::Timestamp,
};
use k8ssandra_api::{
    cassandra::CassandraDatacenter,
    conditions::{self, Condition, ConditionStatus},
    control::{CassandraTask, ScheduledTask, ScheduledTaskStatus},
    labels, names,
};
use k8ssandra_reconcile::{
    apply::apply_status,
    events::{EventPublisher, Severity},
    metrics::ReconcileMetrics,
    scope::now,
    tolerant::{Tolerant, UndecodableReporter},
};
use kube::{
    Api, Client, Resource, ResourceExt,
    api::{Patch, PatchParams, PostParams},
    runtime::{Controller, controller::Action as Requeue, reflector::ObjectRef},
};

use crate::caches::{Caches, Feeds};
use plan::{Decision, ScheduleInput};

/// Field manager of every write of this controller.
pub const FIELD_MANAGER: &str = "k8ssandra-data-plane-schedule";

/// Name of this controller in metrics.
pub const CONTROLLER: &str = "scheduledtask";

/// The label naming the ScheduledTask that made a CassandraTask (ours).
pub const SCHEDULED_TASK_LABEL: &str = "control.k8ssandra.io/scheduled-task";

/// The condition a ScheduledTask reports.
pub const VALID: &str = "Valid";

/// Timings of the controller.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Timings {
    /// Look again this soon at a schedule that waits for its datacenter or its previous task.
    pub wait: Duration,
    /// Retry delay after a pass that failed.
    pub error_requeue: Duration,
}

impl Default for Timings {
    fn default() -> Self {
        Self {
            wait: Duration::from_secs(30),
            error_requeue: Duration::from_secs(10),
        }
    }
}

/// What every pass shares.
pub struct Context {
    /// Kubernetes client of the cluster the schedules live in.
    pub client: Client,
    /// The watch caches a pass reads.
    pub caches: Caches,
    /// Events.
    pub events: EventPublisher,
    /// Reports schedules that cannot be read.
    pub undecodable: UndecodableReporter,
    /// Reconcile metrics.
    pub metrics: ReconcileMetrics,
    /// Timings.
    pub timings: Timings,
}

impl Context {
    /// A context with the given parts.
    #[must_use]
    pub fn new(
        client: Client,
        caches: Caches,
        metrics: ReconcileMetrics,
        timings: Timings,
    ) -> Self {
        let events = EventPublisher::new(client.clone(), "cass-operator");
        Self {
            undecodable: UndecodableReporter::new(client.clone(), events.clone(), FIELD_MANAGER),
            events,
            client,
            caches,
            metrics,
            timings,
        }
    }
}

/// Why a pass failed (it is retried).
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The pass panicked.
    #[error(transparent)]
    Panicked(#[from] k8ssandra_reconcile::metrics::Panicked),
    /// The watch caches cannot be read yet.
    #[error(transparent)]
    Cache(#[from] crate::caches::NotReady),
    /// The API server refused a write.
    #[error("could not {what}: {source}")]
    Kube {
        /// What the pass tried.
        what: String,
        /// The API error.
        source: kube::Error,
    },
}

impl Error {
    /// A short, fixed name for metrics.
    #[must_use]
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Panicked(_) => "panic",
            Self::Cache(_) => "cache",
            Self::Kube { .. } => "kube",
        }
    }
}

fn kube_error(what: impl Into<String>) -> impl FnOnce(kube::Error) -> Error {
    let what = what.into();
    move |source| Error::Kube { what, source }
}

/// The controller, triggered by the `feeds` it subscribes to; it runs until they end.
pub fn run(ctx: Arc<Context>, feeds: &mut Feeds) -> impl Future<Output = ()> + use<> {
    Controller::for_stream(
        feeds.scheduled_tasks.subscribe(),
        ctx.caches.scheduled_tasks.store(),
    )
    // A task that finishes lets a postponed run go.
    .watches_stream(feeds.tasks.subscribe(), schedule_of_task)
    .run(reconcile, error_policy, ctx)
    .for_each(|result| async move {
        if let Err(error) = result {
            tracing::debug!(%error, "reconcile");
        }
    })
}

/// The ScheduledTask that made a task, from the task's label.
fn schedule_of_task(task: Tolerant<CassandraTask>) -> Option<ObjectRef<Tolerant<ScheduledTask>>> {
    let name = task.meta().labels.as_ref()?.get(SCHEDULED_TASK_LABEL)?;
    Some(ObjectRef::new(name).within(task.meta().namespace.as_deref()?))
}

/// One pass over a ScheduledTask.
///
/// # Errors
/// When a write fails; the pass is retried.
pub async fn reconcile(
    object: Arc<Tolerant<ScheduledTask>>,
    ctx: Arc<Context>,
) -> Result<Requeue, Error> {
    ctx.caches.settle().await?;
    let Some(object) = ctx.caches.scheduled_tasks.current(&object) else {
        return Ok(Requeue::await_change());
    };
    let Some(schedule) = ctx
        .undecodable
        .decoded_or_report(&object)
        .await
        .map_err(kube_error("write the status"))?
    else {
        return Ok(Requeue::await_change());
    };
    ctx.metrics
        .measure(
            CONTROLLER,
            Error::kind,
            Some(k8ssandra_reconcile::metrics::PanicReport {
                events: &ctx.events,
                object: schedule.object_ref(&()),
            }),
            pass(schedule, &ctx),
        )
        .await
}

fn error_policy(object: Arc<Tolerant<ScheduledTask>>, error: &Error, ctx: Arc<Context>) -> Requeue {
    tracing::warn!(namespace = %object.namespace().unwrap_or_default(), schedule = %object.name_any(), %error, "pass failed");
    Requeue::requeue(ctx.timings.error_requeue)
}

async fn pass(schedule: &ScheduledTask, ctx: &Context) -> Result<Requeue, Error> {
    if schedule.meta().deletion_timestamp.is_some() {
        return Ok(Requeue::await_change());
    }
    let namespace = schedule.namespace().unwrap_or_default();
    let now = now();
    let dc = datacenter(ctx, schedule);
    let input = ScheduleInput {
        schedule,
        datacenter: dc.as_deref(),
        previous_running: previous_running(ctx, schedule),
        now: now.0,
    };
    match plan::decide(&input) {
        Decision::Invalid(problem) => {
            write_status(ctx, schedule, None, Some(&problem), &now).await?;
            // A missing datacenter may come; the others wait for an edit.
            Ok(if problem.reason == plan::DATACENTER_NOT_FOUND {
                Requeue::requeue(ctx.timings.wait)
            } else {
                Requeue::await_change()
            })
        }
        Decision::Wait { next } => {
            if let Some(dc) = &dc {
                own(ctx, schedule, dc).await?;
            }
            write_status(ctx, schedule, Some(next), None, &now).await?;
            Ok(requeue_at(next, now.0))
        }
        Decision::Postpone { next, waiting_for } => {
            let problem = plan::Problem {
                reason: "WaitingForPreviousTask",
                message: format!(
                    "the run due at {next} waits for task {waiting_for} to finish \
                     (concurrencyPolicy is not Allow)"
                ),
            };
            write_status(ctx, schedule, Some(next), Some(&problem), &now).await?;
            Ok(Requeue::requeue(ctx.timings.wait))
        }
        Decision::Run { due, next } => {
            let Some(dc) = dc else {
                return Ok(Requeue::requeue(ctx.timings.wait));
            };
            own(ctx, schedule, &dc).await?;
            let task = plan::task(schedule, &dc, due);
            let name = task.name_any();
            let tasks = Api::<CassandraTask>::namespaced(ctx.client.clone(), &namespace);
            match tasks.create(&PostParams::default(), &task).await {
                Ok(created) => {
                    ctx.caches.tasks.wrote(&created.metadata);
                    ctx.events
                        .publish(
                            &schedule.object_ref(&()),
                            Severity::Normal,
                            "CreatedTask",
                            "Schedule",
                            format!("the run due at {due} made CassandraTask {name}"),
                        )
                        .await;
                }
                // Made by a pass that did not get to write the status.
                Err(kube::Error::Api(status)) if status.code == 409 => {}
                Err(kube::Error::Api(status)) if (400..500).contains(&status.code) => {
                    let problem = plan::Problem {
                        reason: "TaskRefused",
                        message: format!(
                            "the API server refuses CassandraTask {name}: {}",
                            status.message
                        ),
                    };
                    write_status(ctx, schedule, None, Some(&problem), &now).await?;
                    return Ok(Requeue::await_change());
                }
                Err(source) => {
                    return Err(kube_error(format!("create CassandraTask {name}"))(source));
                }
            }
            let mut status = desired_status(schedule, Some(next), None, &now);
            status.last_execution = Some(now.clone());
            apply(ctx, schedule, &status).await?;
            Ok(requeue_at(next, now.0))
        }
    }
}

/// Requeue when `next` is due (a second late rather than early: times are whole seconds).
fn requeue_at(next: Timestamp, now: Timestamp) -> Requeue {
    let wait = next
        .duration_since(now)
        .try_into()
        .unwrap_or(Duration::ZERO);
    Requeue::requeue(wait + Duration::from_secs(1))
}

/// The datacenter the schedule names, from the cache (in the schedule's namespace only).
fn datacenter(ctx: &Context, schedule: &ScheduledTask) -> Option<Arc<CassandraDatacenter>> {
    let name = schedule.spec.task_details.spec.datacenter.name.as_deref()?;
    let cached = ctx
        .caches
        .datacenters
        .get(&schedule.namespace().unwrap_or_default(), name)?;
    cached.decoded().ok().cloned().map(Arc::new)
}

/// The task of this schedule that has not finished yet, if any.
fn previous_running(ctx: &Context, schedule: &ScheduledTask) -> Option<String> {
    let selector =
        std::collections::BTreeMap::from([(SCHEDULED_TASK_LABEL.to_owned(), schedule.name_any())]);
    ctx.caches
        .tasks
        .list(&schedule.namespace().unwrap_or_default(), &selector)
        .iter()
        .filter_map(|task| task.decoded().ok())
        .find(|task| {
            task.status
                .as_ref()
                .is_none_or(|s| s.completion_time.is_none())
        })
        .map(ResourceExt::name_any)
}

/// Makes the datacenter an owner of the schedule (once), so that the schedule goes with it.
async fn own(
    ctx: &Context,
    schedule: &ScheduledTask,
    dc: &CassandraDatacenter,
) -> Result<(), Error> {
    let Some(uid) = dc.uid() else { return Ok(()) };
    let mut owners = schedule.owner_references().to_vec();
    if owners.iter().any(|o| o.uid == uid) {
        return Ok(());
    }
    owners.push(OwnerReference {
        api_version: CassandraDatacenter::api_version(&()).into_owned(),
        kind: CassandraDatacenter::kind(&()).into_owned(),
        name: dc.name_any(),
        uid,
        ..OwnerReference::default()
    });
    let patch = serde_json::json!({
        "metadata": {
            "ownerReferences": owners,
            "resourceVersion": schedule.resource_version(),
        }
    });
    let api = Api::<ScheduledTask>::namespaced(
        ctx.client.clone(),
        &schedule.namespace().unwrap_or_default(),
    );
    let written = api
        .patch_metadata(
            &schedule.name_any(),
            &PatchParams::default(),
            &Patch::Merge(&patch),
        )
        .await
        .map_err(kube_error(format!(
            "own ScheduledTask {}",
            schedule.name_any()
        )))?;
    ctx.caches.scheduled_tasks.wrote(&written.metadata);
    Ok(())
}

/// The status with `next` and the `Valid` condition `problem` sets (True without one).
fn desired_status(
    schedule: &ScheduledTask,
    next: Option<Timestamp>,
    problem: Option<&plan::Problem>,
    now: &Time,
) -> ScheduledTaskStatus {
    let stored = schedule.status.clone().unwrap_or_default();
    let mut conditions = stored.conditions.clone().unwrap_or_default();
    let mut condition = match problem {
        Some(problem) => Condition::new(
            VALID,
            ConditionStatus::False,
            problem.reason,
            &problem.message,
        ),
        None => Condition::new(
            VALID,
            ConditionStatus::True,
            "Valid",
            "the schedule is acted on",
        ),
    };
    condition.observed_generation = schedule.metadata.generation;
    conditions::set(&mut conditions, condition, now);
    ScheduledTaskStatus {
        next_schedule: next.map(Time),
        last_execution: stored.last_execution,
        conditions: Some(conditions),
    }
}

/// Writes the status when it changed, with a Warning Event when a problem appears or changes.
async fn write_status(
    ctx: &Context,
    schedule: &ScheduledTask,
    next: Option<Timestamp>,
    problem: Option<&plan::Problem>,
    now: &Time,
) -> Result<(), Error> {
    let status = desired_status(schedule, next, problem, now);
    if schedule.status.as_ref() == Some(&status) {
        return Ok(());
    }
    let reported = schedule
        .status
        .as_ref()
        .and_then(|s| s.conditions.as_deref())
        .and_then(|c| conditions::find(c, VALID))
        .is_some_and(|c| {
            problem.is_some_and(|p| {
                c.reason.as_deref() == Some(p.reason) && c.message.as_deref() == Some(&p.message)
            })
        });
    if let (false, Some(problem)) = (reported, problem) {
        ctx.events
            .publish(
                &schedule.object_ref(&()),
                Severity::Warning,
                problem.reason,
                "Validate",
                problem.message.clone(),
            )
            .await;
    }
    apply(ctx, schedule, &status).await
}

async fn apply(
    ctx: &Context,
    schedule: &ScheduledTask,
    status: &ScheduledTaskStatus,
) -> Result<(), Error> {
    if schedule.status.as_ref() == Some(status) {
        return Ok(());
    }
    let api = Api::<ScheduledTask>::namespaced(
        ctx.client.clone(),
        &schedule.namespace().unwrap_or_default(),
    );
    let body = serde_json::to_value(status).unwrap_or_default();
    let written = apply_status(&api, FIELD_MANAGER, &schedule.name_any(), &body)
        .await
        .map_err(kube_error("write the status"))?;
    ctx.caches.scheduled_tasks.wrote(written.meta());
    Ok(())
}

/// The labels of a task the schedule makes: the datacenter's, and the schedule's name.
#[must_use]
pub fn task_labels(
    schedule: &ScheduledTask,
    dc: &CassandraDatacenter,
) -> std::collections::BTreeMap<String, String> {
    let mut task_labels =
        labels::datacenter_labels(&dc.spec.cluster_name, &dc.label_resource_name());
    task_labels.insert(
        SCHEDULED_TASK_LABEL.to_owned(),
        names::clean_label_value(&schedule.name_any()),
    );
    task_labels
}
