//! The CassandraTask controller: runs one operation (cleanup, flush, upgradesstables, rebuild,
//! restart, replacenode) on the pods of a datacenter, or one of this operator's schema commands
//! (updatereplication, checkdecommission) on one of its nodes. One pass is validate → observe →
//! plan → act → status, each step a module of its own; `status.podStatuses` is the durable
//! record a pass resumes from, so an operator restart loses nothing.
//!
//! Unlike upstream, an unset `ttlSecondsAfterFinished` keeps a finished task; the `restartPolicy`
//! is not read (`spec.retries`, 0 when unset, is the number of retries of a failed pod), and the
//! `control.k8ssandra.io/status` label is not acted on yet. `concurrencyPolicy` is (see
//! [`plan::blocking_task`]).

pub mod act;
pub mod observe;
pub mod operations;
pub mod plan;
pub mod schema;
pub mod status;
pub mod validate;

use std::{collections::BTreeMap, sync::Arc, time::Duration};

use futures::StreamExt;
use k8s_openapi::{api::core::v1::Pod, apimachinery::pkg::apis::meta::v1::Time};
use k8ssandra_api::{
    conditions,
    control::{CassandraTask, PodJobStatus, task_condition},
    labels, names,
};
use k8ssandra_mgmt_api::ClientSettings;
use k8ssandra_reconcile::{
    apply::apply_status,
    events::{EventPublisher, Severity},
    metrics::ReconcileMetrics,
    scope::now,
    tolerant::{Tolerant, UndecodableReporter},
};
use kube::{
    Api, Client, Resource, ResourceExt,
    api::DeleteParams,
    runtime::{Controller, controller::Action as Requeue, reflector::ObjectRef, reflector::Store},
};

use crate::caches::{Caches, Feeds};
use operations::TaskCalls;
use plan::{Expiry, Outcome};
use status::TaskState;
use validate::Problem;

/// Field manager of every write of this controller.
pub const FIELD_MANAGER: &str = "k8ssandra-data-plane-task";

/// Name of this controller in metrics.
pub const CONTROLLER: &str = "cassandratask";

/// Timings of the controller.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Timings {
    /// Pass again this soon while the job runs (to poll jobs and follow restarts).
    pub poll: Duration,
    /// Pass again this soon while the task waits for its datacenter.
    pub wait: Duration,
    /// Retry delay after a pass that failed.
    pub error_requeue: Duration,
}

impl Default for Timings {
    fn default() -> Self {
        Self {
            poll: Duration::from_secs(5),
            wait: Duration::from_secs(30),
            error_requeue: Duration::from_secs(10),
        }
    }
}

/// What every pass shares.
pub struct Context {
    /// Kubernetes client of the cluster the tasks live in.
    pub client: Client,
    /// How to reach the Management API of a pod.
    pub mgmt: ClientSettings,
    /// Calls under way.
    pub calls: TaskCalls,
    /// Events.
    pub events: EventPublisher,
    /// Reports tasks that cannot be read.
    pub undecodable: UndecodableReporter,
    /// The watch caches a pass reads.
    pub caches: Caches,
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
        mgmt: ClientSettings,
        metrics: ReconcileMetrics,
        timings: Timings,
    ) -> Self {
        let events = EventPublisher::new(client.clone(), "cass-operator");
        Self {
            undecodable: UndecodableReporter::new(client.clone(), events.clone(), FIELD_MANAGER),
            caches,
            events,
            client,
            mgmt,
            calls: TaskCalls::new(),
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
    /// An action failed.
    #[error(transparent)]
    Act(#[from] act::ActError),
    /// The status could not be written.
    #[error("could not write the status: {0}")]
    Status(#[source] kube::Error),
    /// The finished task could not be deleted.
    #[error("could not delete the finished task: {0}")]
    Delete(#[source] kube::Error),
}

impl Error {
    /// A short, fixed name for metrics.
    #[must_use]
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Panicked(_) => "panic",
            Self::Cache(_) => "cache",
            Self::Act(_) => "act",
            Self::Status(_) => "status",
            Self::Delete(_) => "delete",
        }
    }
}

/// The controller, triggered by the `feeds` it subscribes to; it runs until they end.
pub fn run(ctx: Arc<Context>, feeds: &mut Feeds) -> impl Future<Output = ()> + use<> {
    let store = ctx.caches.tasks.store();
    Controller::for_stream(feeds.tasks.subscribe(), store.clone())
        .watches_stream(feeds.pods.subscribe(), move |pod| {
            tasks_of_pod(&store, &pod)
        })
        .run(reconcile, error_policy, ctx)
        .for_each(|result| async move {
            if let Err(error) = result {
                tracing::debug!(%error, "reconcile");
            }
        })
}

/// The unfinished tasks on the datacenter of a pod, so that a restart follows its pod at once.
fn tasks_of_pod(
    store: &Store<Tolerant<CassandraTask>>,
    pod: &Pod,
) -> Vec<ObjectRef<Tolerant<CassandraTask>>> {
    let (Some(dc_label), Some(namespace)) = (pod.labels().get(labels::DATACENTER), pod.namespace())
    else {
        return Vec::new();
    };
    store
        .state()
        .iter()
        .filter_map(|object| match object.as_ref() {
            Tolerant::Decoded(task) => Some((object, task)),
            Tolerant::Undecodable { .. } => None,
        })
        .filter(|(_, task)| {
            task.status
                .as_ref()
                .is_none_or(|s| s.completion_time.is_none())
        })
        .filter(|(_, task)| {
            let (dc_namespace, dc_name) = observe::datacenter_ref(task);
            dc_namespace == namespace
                && names::clean_label_value(&names::cleanup_for_kubernetes(&dc_name)) == *dc_label
        })
        .map(|(object, _)| ObjectRef::from_obj(object.as_ref()))
        .collect()
}

/// One pass over a task.
///
/// # Errors
/// When a step fails; the pass is retried.
pub async fn reconcile(
    object: Arc<Tolerant<CassandraTask>>,
    ctx: Arc<Context>,
) -> Result<Requeue, Error> {
    ctx.caches.settle().await?;
    // The task as the cache holds it now: its status is the record of what was done, and this
    // operator's last status write is in it.
    let Some(object) = ctx.caches.tasks.current(&object) else {
        return Ok(Requeue::await_change());
    };
    let Some(task) = ctx
        .undecodable
        .decoded_or_report(&object)
        .await
        .map_err(Error::Status)?
    else {
        return Ok(Requeue::await_change());
    };
    ctx.metrics
        .measure(
            CONTROLLER,
            Error::kind,
            Some(k8ssandra_reconcile::metrics::PanicReport {
                events: &ctx.events,
                object: task.object_ref(&()),
            }),
            pass(task, &ctx),
        )
        .await
}

fn error_policy(task: Arc<Tolerant<CassandraTask>>, error: &Error, ctx: Arc<Context>) -> Requeue {
    tracing::warn!(namespace = %task.namespace().unwrap_or_default(), task = %task.name_any(), %error, "pass failed");
    Requeue::requeue(ctx.timings.error_requeue)
}

async fn pass(task: &CassandraTask, ctx: &Context) -> Result<Requeue, Error> {
    if task.meta().deletion_timestamp.is_some() {
        ctx.calls.forget_task(&task.uid().unwrap_or_default());
        return Ok(Requeue::await_change());
    }
    let now = now();
    if task
        .status
        .as_ref()
        .is_some_and(|s| s.completion_time.is_some())
    {
        return expire(ctx, task, &now).await;
    }
    if let Some(at) = &task.spec.template.scheduled_time
        && let Some(wait) = plan::scheduled_wait(Some(at), &now)
    {
        let state = TaskState::Scheduled(at);
        write_status(ctx, task, &state, observe::records(task), &now).await?;
        // A second late rather than early: times are whole seconds.
        return Ok(Requeue::requeue(wait + Duration::from_secs(1)));
    }
    let operation = match validate::validate(task) {
        Ok(operation) => operation,
        Err(problem) => {
            write_status(
                ctx,
                task,
                &TaskState::Invalid(&problem),
                observe::records(task),
                &now,
            )
            .await?;
            return Ok(Requeue::requeue(ctx.timings.poll));
        }
    };
    let command = validate::job(task)
        .map(|j| validate::command_name(j.command))
        .unwrap_or_default();
    let others = ctx.caches.tasks.state();
    let others: Vec<&CassandraTask> = others.iter().filter_map(|t| t.decoded().ok()).collect();
    if let Some(blocker) = plan::blocking_task(task, &others, &now) {
        let state = TaskState::Pending {
            reason: "WaitingForOtherTask",
            message: format!(
                "task {} runs on datacenter {} first (concurrencyPolicy: both must say Allow \
                 to run at the same time)",
                blocker.name_any(),
                task.spec.datacenter.name.as_deref().unwrap_or_default()
            ),
        };
        write_status(ctx, task, &state, observe::records(task), &now).await?;
        return Ok(Requeue::requeue(ctx.timings.poll));
    }

    let observed = observe::observe(ctx, task).await;
    let Some(dc) = &observed.datacenter else {
        let (namespace, name) = observe::datacenter_ref(task);
        let state = TaskState::Pending {
            reason: "DatacenterNotFound",
            message: format!("CassandraDatacenter {namespace}/{name} does not exist"),
        };
        write_status(ctx, task, &state, observe::records(task), &now).await?;
        return Ok(Requeue::requeue(ctx.timings.wait));
    };
    if let Some(message) = &observed.access_error {
        let state = TaskState::Pending {
            reason: "ManagementApiAuthInvalid",
            message: message.clone(),
        };
        write_status(ctx, task, &state, observe::records(task), &now).await?;
        return Ok(Requeue::requeue(ctx.timings.wait));
    }
    let input = observe::plan_input(task, &operation, dc, &observed, &ctx.calls);
    if input.pods.is_empty() {
        // A datacenter without pods may be coming up; arguments that match none of its pods
        // will not match later either.
        let problem = Problem::new(
            "NoPods",
            format!(
                "no pod of datacenter {} matches the job's arguments",
                dc.name_any()
            ),
        );
        let state = if observed.pods.is_empty() {
            TaskState::Pending {
                reason: "NoPods",
                message: format!("datacenter {} has no pods yet", dc.name_any()),
            }
        } else {
            TaskState::Invalid(&problem)
        };
        write_status(ctx, task, &state, observe::records(task), &now).await?;
        return Ok(Requeue::requeue(ctx.timings.wait));
    }

    let plan = plan::plan(&input);
    tracing::debug!(task = %task.name_any(), actions = ?plan.actions, "plan");
    let mut records = observe::records(task);
    let acting = act::Acting {
        ctx,
        task,
        command,
        operation: &operation,
        observed: &observed,
        now: &now,
    };
    let deferred = act::act(&acting, &plan, &mut records).await?;
    let waiting: Vec<String> = plan.waiting.iter().cloned().chain(deferred).collect();

    let targets: Vec<String> = input.pods.iter().map(|p| p.view.name.clone()).collect();
    match plan::outcome(&targets, &records) {
        Outcome::Running => {
            let state = TaskState::Running {
                command,
                pods: targets.len(),
                waiting: &waiting,
            };
            write_status(ctx, task, &state, records, &now).await?;
            Ok(Requeue::requeue(ctx.timings.poll))
        }
        Outcome::Finished { failures } => {
            let state = TaskState::Finished {
                command,
                failures: &failures,
            };
            write_status(ctx, task, &state, records, &now).await?;
            ctx.calls.forget_task(&task.uid().unwrap_or_default());
            // The next pass deletes it when its TTL is up.
            Ok(Requeue::requeue(ctx.timings.poll))
        }
    }
}

/// Deletes a finished task once its TTL is up.
async fn expire(ctx: &Context, task: &CassandraTask, now: &Time) -> Result<Requeue, Error> {
    let api: Api<CassandraTask> =
        Api::namespaced(ctx.client.clone(), &task.namespace().unwrap_or_default());
    let completion = task
        .status
        .as_ref()
        .and_then(|s| s.completion_time.as_ref());
    match plan::expiry(
        task.spec.template.ttl_seconds_after_finished,
        completion,
        now,
    ) {
        Expiry::Keep => Ok(Requeue::await_change()),
        Expiry::DeleteIn(after) => Ok(Requeue::requeue(after)),
        Expiry::DeleteNow => {
            ctx.calls.forget_task(&task.uid().unwrap_or_default());
            match api.delete(&task.name_any(), &DeleteParams::default()).await {
                Ok(_) => {}
                Err(kube::Error::Api(status)) if status.code == 404 => {}
                Err(error) => return Err(Error::Delete(error)),
            }
            tracing::info!(task = %task.name_any(), "deleted the finished task: its TTL is up");
            Ok(Requeue::await_change())
        }
    }
}

/// Writes the status when it changed, with an Event when the task starts waiting, fails or ends.
async fn write_status(
    ctx: &Context,
    task: &CassandraTask,
    state: &TaskState<'_>,
    records: BTreeMap<String, PodJobStatus>,
    now: &Time,
) -> Result<(), Error> {
    let desired = status::desired_status(task, state, records, now);
    if task.status.as_ref() == Some(&desired) {
        return Ok(());
    }
    if let Some((severity, reason, note)) = transition_event(task, state) {
        ctx.events
            .publish(&task.object_ref(&()), severity, reason, "Reconcile", note)
            .await;
    }
    let body = serde_json::to_value(&desired).unwrap_or_default();
    let api: Api<CassandraTask> =
        Api::namespaced(ctx.client.clone(), &task.namespace().unwrap_or_default());
    let written = apply_status(&api, FIELD_MANAGER, &task.name_any(), &body)
        .await
        .map_err(Error::Status)?;
    ctx.caches.tasks.wrote(written.meta());
    Ok(())
}

/// The Event of a change of the task's state, if it is one worth telling: waiting for the
/// datacenter, failing at once, finishing.
fn transition_event(
    task: &CassandraTask,
    state: &TaskState<'_>,
) -> Option<(Severity, &'static str, String)> {
    let previous_reason = task
        .status
        .as_ref()
        .and_then(|s| s.conditions.as_deref())
        .and_then(|c| conditions::find(c, task_condition::RUNNING))
        .and_then(|c| c.reason.clone());
    match state {
        TaskState::Pending { reason, message } if previous_reason.as_deref() != Some(reason) => {
            Some((Severity::Warning, reason, message.clone()))
        }
        TaskState::Invalid(problem) => {
            Some((Severity::Warning, problem.reason, problem.message.clone()))
        }
        TaskState::Finished {
            command,
            failures: [],
        } => Some((
            Severity::Normal,
            "TaskCompleted",
            format!("{command} completed on every pod"),
        )),
        TaskState::Finished { command, failures } => Some((
            Severity::Warning,
            "TaskFailed",
            format!("{command} failed on {}", status::failure_list(failures)),
        )),
        _ => None,
    }
}
