//! The K8ssandraTask controller: one CassandraTask per datacenter of a K8ssandraCluster, made in
//! that datacenter's cluster, where the data plane runs it; the control plane only talks to API
//! servers. One pass is validate → observe → plan → create → status → TTL, each step a module of
//! its own (the CassandraTask itself is built by [`crate::build::k8ssandra_task`]); a task being
//! deleted has a pass of its own ([`deletion`]). See `docs/control-plane.md` for the rules.
//!
//! Passes are triggered by the K8ssandraTask, its K8ssandraCluster, the CassandraTasks labelled
//! with it in any cluster, and the health of the clusters, so that its status follows the remote
//! tasks without polling them.

pub mod deletion;
pub mod expiry;
pub mod observe;
pub mod plan;
pub mod status;
pub mod validate;

use std::{collections::BTreeSet, sync::Arc, time::Duration};

use futures::{StreamExt, future::join_all, stream};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8ssandra_api::{
    conditions::{self, Condition, ConditionStatus},
    control::{CassandraTask, K8ssandraTask, K8ssandraTaskStatus, task_condition},
    k8ssandra::K8ssandraCluster,
    merge,
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
    api::{DeleteParams, PostParams},
    runtime::{
        Controller,
        controller::Action as Requeue,
        reflector::{ObjectRef, Store},
    },
};
use tokio::sync::broadcast;

use crate::{
    build::k8ssandra_task::{cassandra_task, owner_task},
    caches::{Caches, Feeds, NotReady},
    k8ssandra_cluster::observe::display_context,
    remote::{Registry, RemoteChange, RemoteCluster, RemoteKind},
};
use expiry::Expiry;
use plan::Standing;
use status::DcReport;
use validate::Target;

/// Field manager of every write of this controller.
pub const FIELD_MANAGER: &str = "k8ssandra-control-plane-task";
/// Name of this controller in metrics.
pub const CONTROLLER: &str = "k8ssandratask";
/// `Degraded`: set while a deletion waits for a cluster that cannot be reached.
pub const DEGRADED: &str = "Degraded";
/// Pass again this soon while something is under way (a safety net: the watches trigger passes).
const BUSY_REQUEUE: Duration = Duration::from_secs(30);
/// Retry delay after a pass that failed.
const ERROR_REQUEUE: Duration = Duration::from_secs(10);

/// What every pass shares.
pub struct Context {
    /// Client of the control plane's cluster.
    pub client: Client,
    /// The local watch caches.
    pub caches: Caches,
    /// The remote clusters.
    pub registry: Registry,
    /// Events.
    pub events: EventPublisher,
    /// Reports K8ssandraTasks that cannot be read.
    pub undecodable: UndecodableReporter,
    /// Reconcile metrics.
    pub metrics: ReconcileMetrics,
}

impl Context {
    /// A context with the given parts.
    #[must_use]
    pub fn new(
        client: Client,
        caches: Caches,
        registry: Registry,
        metrics: ReconcileMetrics,
    ) -> Self {
        let events = EventPublisher::new(client.clone(), "k8ssandra-operator");
        Self {
            undecodable: UndecodableReporter::new(client.clone(), events.clone(), FIELD_MANAGER),
            events,
            client,
            caches,
            registry,
            metrics,
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
    Cache(#[from] NotReady),
    /// The finalizer, the owner reference or a remote deletion could not be written.
    #[error(transparent)]
    Deletion(#[from] deletion::DeletionError),
    /// The task could not be deleted once its TTL was up.
    #[error("could not delete the finished task: {0}")]
    Expire(#[source] kube::Error),
    /// The status could not be written.
    #[error("could not write the status: {0}")]
    Status(#[source] kube::Error),
}

impl Error {
    /// A short, fixed name for metrics.
    #[must_use]
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Panicked(_) => "panic",
            Self::Cache(_) => "cache",
            Self::Deletion(_) => "deletion",
            Self::Expire(_) => "expire",
            Self::Status(_) => "status",
        }
    }
}

type TaskRef = ObjectRef<Tolerant<K8ssandraTask>>;

/// The controller; it runs until the `feeds` end.
pub fn run(ctx: Arc<Context>, feeds: &mut Feeds) -> impl Future<Output = ()> + use<> {
    let store = ctx.caches.k8ssandra_tasks.store();
    let by_cluster = store.clone();
    let by_context = store.clone();
    let clusters = feeds
        .k8ssandra_clusters
        .subscribe()
        .filter_map(|event| std::future::ready(event.ok()))
        .flat_map(move |cluster: Tolerant<K8ssandraCluster>| {
            let key = (cluster.namespace().unwrap_or_default(), cluster.name_any());
            stream::iter(refs(&by_cluster, |task| validate::cluster_key(task) == key))
        });
    let remote = remote_changes(ctx.registry.object_changes(), ctx.registry.changes()).flat_map(
        move |trigger| {
            let found = match trigger {
                Trigger::Task(task) => vec![task],
                Trigger::Everyone => refs(&by_context, |_| true),
            };
            stream::iter(found)
        },
    );
    Controller::for_stream(feeds.k8ssandra_tasks.subscribe(), store)
        .reconcile_on(stream::select(clusters, remote))
        .run(reconcile, error_policy, Arc::clone(&ctx))
        .for_each(|result| async move {
            if let Err(error) = result {
                tracing::debug!(%error, "reconcile");
            }
        })
}

/// The tasks that `wanted` picks among those still to act on: not finished, or being deleted (a
/// finished task has nothing to follow, so it is not passed again for others' changes).
fn refs(
    store: &Store<Tolerant<K8ssandraTask>>,
    wanted: impl Fn(&K8ssandraTask) -> bool,
) -> Vec<TaskRef> {
    store
        .state()
        .iter()
        .filter(|object| match object.as_ref() {
            Tolerant::Decoded(task) => {
                wanted(task) && (task.metadata.deletion_timestamp.is_some() || !is_finished(task))
            }
            Tolerant::Undecodable { .. } => false,
        })
        .map(|object| ObjectRef::from_obj(object.as_ref()))
        .collect()
}

fn is_finished(task: &K8ssandraTask) -> bool {
    task.status
        .as_ref()
        .is_some_and(|s| s.aggregate.completion_time.is_some())
}

/// What a change in the registry asks to pass again.
enum Trigger {
    /// The K8ssandraTask a remote CassandraTask is labelled with.
    Task(TaskRef),
    /// Every K8ssandraTask still to act on: a cluster's health changed, or changes were missed.
    Everyone,
}

fn remote_changes(
    objects: broadcast::Receiver<RemoteChange>,
    contexts: broadcast::Receiver<String>,
) -> impl futures::Stream<Item = Trigger> + Send + 'static {
    let objects = stream::unfold(objects, |mut receiver| async move {
        loop {
            let trigger = match receiver.recv().await {
                // Only the CassandraTasks a K8ssandraTask made concern it.
                Ok(change) if change.kind == RemoteKind::Task => match owner_task(&change.labels) {
                    Some((namespace, name)) => {
                        Trigger::Task(TaskRef::new(&name).within(&namespace))
                    }
                    None => continue,
                },
                Ok(_) => continue,
                Err(broadcast::error::RecvError::Lagged(_)) => Trigger::Everyone,
                Err(broadcast::error::RecvError::Closed) => return None,
            };
            return Some((trigger, receiver));
        }
    });
    let contexts = stream::unfold(contexts, |mut receiver| async move {
        match receiver.recv().await {
            Ok(_) | Err(broadcast::error::RecvError::Lagged(_)) => {
                Some((Trigger::Everyone, receiver))
            }
            Err(broadcast::error::RecvError::Closed) => None,
        }
    });
    stream::select(objects, contexts)
}

fn error_policy(task: Arc<Tolerant<K8ssandraTask>>, error: &Error, _ctx: Arc<Context>) -> Requeue {
    tracing::warn!(namespace = %task.namespace().unwrap_or_default(), task = %task.name_any(), %error, "pass failed");
    Requeue::requeue(ERROR_REQUEUE)
}

/// One pass over a K8ssandraTask.
///
/// # Errors
/// When the caches are not ready or a write the pass depends on fails; the pass is retried.
pub async fn reconcile(
    object: Arc<Tolerant<K8ssandraTask>>,
    ctx: Arc<Context>,
) -> Result<Requeue, Error> {
    ctx.caches.settle().await?;
    let Some(object) = ctx.caches.k8ssandra_tasks.current(&object) else {
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

async fn pass(task: &K8ssandraTask, ctx: &Context) -> Result<Requeue, Error> {
    let now = now();
    let cluster = observe::cluster(ctx, task);
    if task.metadata.deletion_timestamp.is_some() {
        return deleting(ctx, task, cluster.as_deref()).await;
    }
    // A finished task is a record: only its TTL is left to act on.
    if let Some(done) = task
        .status
        .as_ref()
        .and_then(|s| s.aggregate.completion_time.clone())
    {
        return expire(ctx, task, &done, &now).await;
    }
    let targets = match validate::targets(task, observe::lookup(cluster.as_deref())) {
        Ok(targets) => targets,
        Err(problems) => {
            if let Some(Tolerant::Decoded(cluster)) = cluster.as_deref()
                && deletion::ensure_metadata(ctx, task, cluster, false).await?
            {
                return Ok(Requeue::await_change());
            }
            write_status(ctx, task, &status::invalid_status(task, &problems, &now)).await?;
            // A change of the task or of its cluster passes it again.
            return Ok(Requeue::await_change());
        }
    };
    if let Some(Tolerant::Decoded(cluster)) = cluster.as_deref()
        && deletion::ensure_metadata(ctx, task, cluster, true).await?
    {
        // The write triggers the next pass, which sees it.
        return Ok(Requeue::await_change());
    }
    let observed = observe::observe(ctx, task, &targets).await;
    let names: Vec<String> = targets.iter().map(|t| t.name.clone()).collect();
    let states: Vec<plan::DcState> = observed.iter().map(|o| o.state.clone()).collect();
    let standings = plan::plan(&names, &states, validate::concurrent(task));
    let acted = join_all(
        observed
            .iter()
            .zip(standings)
            .map(|(seen, standing)| async move {
                match (standing, &seen.remote) {
                    (Standing::Create, Some(remote)) => create(remote, task, &seen.target).await,
                    (standing, _) => standing,
                }
            }),
    )
    .await;
    let reports: Vec<DcReport> = observed
        .into_iter()
        .zip(acted)
        .map(|(seen, standing)| DcReport {
            name: seen.target.name,
            context: seen.target.context,
            status: seen.status,
            standing,
        })
        .collect();
    let desired = status::desired_status(task, &reports, &now);
    write_status(ctx, task, &desired).await?;
    match desired.aggregate.completion_time {
        Some(done) => expire(ctx, task, &done, &now).await,
        None => Ok(Requeue::requeue(BUSY_REQUEUE)),
    }
}

/// Creates the CassandraTask of one datacenter (never updates one: a task runs what it was made
/// with). A name already taken that the cache did not show is told apart by one read.
async fn create(remote: &RemoteCluster, task: &K8ssandraTask, target: &Target) -> Standing {
    let object = cassandra_task(task, &target.name, &target.namespace);
    let name = object.name_any();
    let at = display_context(&remote.context);
    let api = Api::<CassandraTask>::namespaced(remote.client.clone(), &target.namespace);
    let params = PostParams {
        field_manager: Some(FIELD_MANAGER.to_owned()),
        ..PostParams::default()
    };
    match api.create(&params, &object).await {
        Ok(created) => {
            remote.tasks.wrote(&created.metadata);
            tracing::info!(context = %remote.context, namespace = %target.namespace, task = %name, "CassandraTask created");
            Standing::Running
        }
        Err(kube::Error::Api(status)) if status.code == 409 => {
            let me = (task.namespace().unwrap_or_default(), task.name_any());
            match api.get_metadata_opt(&name).await {
                Ok(Some(existing)) if owner_task(existing.labels()).as_ref() == Some(&me) => {
                    Standing::Running
                }
                Ok(Some(_)) => Standing::Conflict(format!(
                    "CassandraTask {}/{name} exists and is not this K8ssandraTask's",
                    target.namespace
                )),
                Ok(None) => Standing::CreateFailed(status.message.clone()),
                Err(error) => Standing::CreateFailed(error.to_string()),
            }
        }
        Err(error) => {
            tracing::warn!(context = %remote.context, namespace = %target.namespace, task = %name, %error, "CassandraTask not created in {at}");
            Standing::CreateFailed(error.to_string())
        }
    }
}

/// Deletes a finished task once its TTL is up; until then, comes back when it is.
async fn expire(
    ctx: &Context,
    task: &K8ssandraTask,
    done: &Time,
    now: &Time,
) -> Result<Requeue, Error> {
    match expiry::expiry(
        task.spec.template.ttl_seconds_after_finished,
        Some(done),
        now,
    ) {
        Expiry::Keep => Ok(Requeue::await_change()),
        Expiry::DeleteIn(after) => Ok(Requeue::requeue(after)),
        Expiry::DeleteNow => {
            let api = Api::<K8ssandraTask>::namespaced(
                ctx.client.clone(),
                &task.namespace().unwrap_or_default(),
            );
            k8ssandra_reconcile::apply::delete_if_present(
                &api,
                &task.name_any(),
                &DeleteParams::default(),
            )
            .await
            .map_err(Error::Expire)?;
            tracing::info!(namespace = %task.namespace().unwrap_or_default(), task = %task.name_any(), "deleted the finished K8ssandraTask: its TTL is up");
            Ok(Requeue::await_change())
        }
    }
}

/// A pass over a task being deleted: its CassandraTasks are deleted, and a cluster that holds the
/// deletion up is named in `Degraded`.
async fn deleting(
    ctx: &Context,
    task: &K8ssandraTask,
    cluster: Option<&Tolerant<K8ssandraCluster>>,
) -> Result<Requeue, Error> {
    // The contexts the task's datacenters run in; every one known when its cluster is gone (the
    // task may have made CassandraTasks in any of them).
    let contexts: BTreeSet<String> = match cluster {
        Some(Tolerant::Decoded(cluster)) => merge::resolve_datacenters(cluster)
            .into_iter()
            .map(|dc| dc.k8s_context)
            .collect(),
        _ => ctx.registry.contexts(),
    };
    let waiting = deletion::reconcile(ctx, task, &contexts).await?;
    if waiting.is_empty() {
        return Ok(Requeue::await_change());
    }
    if !waiting.unreachable.is_empty() {
        let mut wanted = task.status.clone().unwrap_or_default();
        let mut list = wanted.aggregate.conditions.clone().unwrap_or_default();
        let mut condition = Condition::new(
            DEGRADED,
            ConditionStatus::True,
            "DeletionBlocked",
            waiting.unreachable.join("; "),
        );
        condition.observed_generation = task.metadata.generation;
        conditions::set(&mut list, condition, &now());
        wanted.aggregate.conditions = Some(list);
        write_status(ctx, task, &wanted).await?;
    }
    Ok(Requeue::requeue(BUSY_REQUEUE))
}

/// Writes the status when it changed, with an Event for each condition worth one.
async fn write_status(
    ctx: &Context,
    task: &K8ssandraTask,
    wanted: &K8ssandraTaskStatus,
) -> Result<(), Error> {
    let current = task.status.clone().unwrap_or_default();
    if *wanted == current {
        return Ok(());
    }
    let api =
        Api::<K8ssandraTask>::namespaced(ctx.client.clone(), &task.namespace().unwrap_or_default());
    let value = serde_json::to_value(wanted).unwrap_or_default();
    let written = match apply_status(&api, FIELD_MANAGER, &task.name_any(), &value).await {
        Ok(written) => written,
        // Deleted meanwhile (its TTL, or a user): nothing left to report on.
        Err(kube::Error::Api(status)) if status.code == 404 => return Ok(()),
        Err(error) => return Err(Error::Status(error)),
    };
    ctx.caches.k8ssandra_tasks.wrote(&written.metadata);
    for condition in status::transitions(&current, wanted) {
        let Some(severity) = event_severity(&condition) else {
            continue;
        };
        ctx.events
            .publish(
                &task.object_ref(&()),
                severity,
                condition.reason.as_deref().unwrap_or(&condition.type_),
                "Reconcile",
                condition.message.clone().unwrap_or_default(),
            )
            .await;
    }
    Ok(())
}

/// Which transitions an Event tells of: the task refused, failed, or blocked in its deletion
/// (Warnings), and completed (Normal).
fn event_severity(condition: &Condition) -> Option<Severity> {
    match (condition.type_.as_str(), condition.status) {
        (task_condition::INVALID | task_condition::FAILED | DEGRADED, ConditionStatus::True) => {
            Some(Severity::Warning)
        }
        (task_condition::COMPLETE, ConditionStatus::True) => Some(Severity::Normal),
        _ => None,
    }
}
