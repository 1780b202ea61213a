//! The K8ssandraCluster controller: one pass is observe → validate → resolve → secrets → seeds
//! → datacenters → status, each step a module of its own, reading only watch caches (the local
//! cluster's and each remote cluster's, see [`crate::remote`]); a cluster being deleted has a
//! pass of its own ([`deletion`]). See `docs/control-plane.md` for the rules.
//!
//! Passes are triggered by the K8ssandraCluster, its Secrets and ReplicatedSecret, the
//! CassandraDatacenters labelled with it in any cluster, and the health of the clusters it uses,
//! so that its status follows the remote datacenters without polling them.

pub mod datacenters;
pub mod decommission;
pub mod deletion;
pub mod observe;
pub mod operations;
pub mod rebuild;
pub mod replication;
pub mod secrets;
pub mod seeds;
pub mod status;
pub mod tasks;
pub mod validate;

use std::{collections::BTreeMap, sync::Arc, time::Duration};

use futures::{StreamExt, stream};
use k8s_openapi::api::core::v1::Secret;
use k8ssandra_api::{
    k8ssandra::K8ssandraCluster, labels::annotations, merge, replication::ReplicatedSecret,
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
    api::{Patch, PatchParams},
    runtime::{Controller, controller::Action as Requeue, reflector::ObjectRef},
};
use tokio::sync::broadcast;

use crate::{
    build::{self, replication as initial},
    caches::{Caches, Feeds, NotReady},
    remote::{Registry, RemoteChange, RemoteKind},
};
use datacenters::Outcome;

/// Field manager of every write of this controller.
pub const FIELD_MANAGER: &str = "k8ssandra-control-plane";
/// Name of this controller in metrics.
pub const CONTROLLER: &str = "k8ssandracluster";
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
    /// Reports K8ssandraClusters that cannot be read.
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
    /// The superuser Secret or the ReplicatedSecret could not be written.
    #[error(transparent)]
    Secrets(#[from] secrets::SecretsError),
    /// A step of the deletion failed.
    #[error(transparent)]
    Deletion(#[from] deletion::DeletionError),
    /// The K8ssandraCluster's annotations could not be written.
    #[error("could not write the annotation {annotation}: {source}")]
    Annotation {
        /// The annotation.
        annotation: &'static str,
        /// The API error.
        source: kube::Error,
    },
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
            Self::Secrets(_) => "secrets",
            Self::Deletion(_) => "deletion",
            Self::Annotation { .. } => "annotation",
            Self::Status(_) => "status",
        }
    }
}

type ClusterRef = ObjectRef<Tolerant<K8ssandraCluster>>;

/// The controller; it runs until the `feeds` end.
pub fn run(ctx: Arc<Context>, feeds: &mut Feeds) -> impl Future<Output = ()> + use<> {
    let store = ctx.caches.k8ssandra_clusters.store();
    let by_context = store.clone();
    let registry_changes = remote_changes(ctx.registry.object_changes(), ctx.registry.changes());
    Controller::for_stream(feeds.k8ssandra_clusters.subscribe(), store)
        .watches_stream(feeds.secrets.subscribe(), |secret: Secret| {
            labelled_owner(secret.labels())
        })
        .watches_stream(
            feeds.replicated_secrets.subscribe(),
            |replicated: Tolerant<ReplicatedSecret>| {
                Some(ClusterRef::new(&replicated.name_any()).within(&replicated.namespace()?))
            },
        )
        .reconcile_on(registry_changes.flat_map(move |change| {
            let refs: Vec<ClusterRef> = match change {
                Trigger::Owner(owner) => vec![owner],
                Trigger::Context(context) => by_context
                    .state()
                    .iter()
                    .filter(|cluster| uses_context(cluster, context.as_deref()))
                    .map(|cluster| ObjectRef::from_obj(cluster.as_ref()))
                    .collect(),
            };
            stream::iter(refs)
        }))
        .run(reconcile, error_policy, Arc::clone(&ctx))
        .for_each(|result| async move {
            if let Err(error) = result {
                tracing::debug!(%error, "reconcile");
            }
        })
}

/// The K8ssandraCluster an object's `k8ssandra.io/cluster-*` labels name.
fn labelled_owner(labels: &BTreeMap<String, String>) -> Option<ClusterRef> {
    let (namespace, name) = observe::owner_of(labels)?;
    Some(ClusterRef::new(&name).within(&namespace))
}

/// Whether a K8ssandraCluster has a datacenter in `context` (any, when `None`).
fn uses_context(cluster: &Tolerant<K8ssandraCluster>, context: Option<&str>) -> bool {
    match (cluster, context) {
        (_, None) | (Tolerant::Undecodable { .. }, _) => true,
        (Tolerant::Decoded(cluster), Some(context)) => merge::resolve_datacenters(cluster)
            .iter()
            .any(|dc| dc.k8s_context == context),
    }
}

/// What a change in the registry asks to pass again.
enum Trigger {
    /// The K8ssandraCluster a remote object is labelled with.
    Owner(ClusterRef),
    /// Every K8ssandraCluster using the context (every one when `None`: changes were missed).
    Context(Option<String>),
}

fn remote_changes(
    objects: broadcast::Receiver<RemoteChange>,
    contexts: broadcast::Receiver<String>,
) -> impl futures::Stream<Item = Trigger> + Send + 'static {
    let objects = stream::unfold(objects, |mut receiver| async move {
        loop {
            let trigger = match receiver.recv().await {
                Ok(change) => match change.kind {
                    RemoteKind::Datacenter | RemoteKind::SeedSlice => {
                        match labelled_owner(&change.labels) {
                            Some(owner) => Trigger::Owner(owner),
                            None => Trigger::Context(Some(change.context)),
                        }
                    }
                    // Only the tasks a K8ssandraCluster made concern it.
                    RemoteKind::Task => match labelled_owner(&change.labels) {
                        Some(owner) => Trigger::Owner(owner),
                        None => continue,
                    },
                    RemoteKind::SeedPod | RemoteKind::Secret => {
                        Trigger::Context(Some(change.context))
                    }
                },
                Err(broadcast::error::RecvError::Lagged(_)) => Trigger::Context(None),
                Err(broadcast::error::RecvError::Closed) => return None,
            };
            return Some((trigger, receiver));
        }
    });
    let contexts = stream::unfold(contexts, |mut receiver| async move {
        let trigger = match receiver.recv().await {
            Ok(context) => Trigger::Context(Some(context)),
            Err(broadcast::error::RecvError::Lagged(_)) => Trigger::Context(None),
            Err(broadcast::error::RecvError::Closed) => return None,
        };
        Some((trigger, receiver))
    });
    stream::select(objects, contexts)
}

fn error_policy(
    cluster: Arc<Tolerant<K8ssandraCluster>>,
    error: &Error,
    _ctx: Arc<Context>,
) -> Requeue {
    tracing::warn!(namespace = %cluster.namespace().unwrap_or_default(), cluster = %cluster.name_any(), %error, "pass failed");
    Requeue::requeue(ERROR_REQUEUE)
}

/// One pass over a K8ssandraCluster.
///
/// # Errors
/// When the caches are not ready or a write the pass depends on fails; the pass is retried.
pub async fn reconcile(
    object: Arc<Tolerant<K8ssandraCluster>>,
    ctx: Arc<Context>,
) -> Result<Requeue, Error> {
    ctx.caches.settle().await?;
    let Some(object) = ctx.caches.k8ssandra_clusters.current(&object) else {
        return Ok(Requeue::await_change());
    };
    let Some(cluster) = ctx
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
                object: cluster.object_ref(&()),
            }),
            pass(cluster, &ctx),
        )
        .await
}

async fn pass(cluster: &K8ssandraCluster, ctx: &Context) -> Result<Requeue, Error> {
    if cluster.metadata.deletion_timestamp.is_some() {
        return deleting(ctx, cluster).await;
    }
    if deletion::ensure_finalizer(ctx, cluster).await? {
        // The write triggers the next pass, which sees it.
        return Ok(Requeue::await_change());
    }
    let observed = observe::observe(ctx, cluster);
    let mut problems = Vec::new();
    let initial = match initial_replication(ctx, cluster).await {
        Ok(Some(initial)) => initial,
        Ok(None) => return Ok(Requeue::await_change()),
        Err(InitialReplication::Malformed(message)) => {
            problems.push(message);
            BTreeMap::new()
        }
        Err(InitialReplication::Write(error)) => return Err(error),
    };
    let desired = match build::desired_datacenters(cluster, &initial) {
        Ok(desired) => Some(desired),
        Err(error) => {
            problems.push(error.to_string());
            None
        }
    };
    let contexts: Vec<String> = ctx.registry.contexts().into_iter().collect();
    problems.extend(validate::problems(cluster, &contexts, desired.as_deref()));
    let now = now();
    let (outcomes, ops) = match (&desired, problems.is_empty()) {
        (Some(desired), true) => {
            // A datacenter new to a live cluster is marked before it is made, so that no
            // failure in between can lose its rebuild.
            let newcomers = operations::newcomers(cluster, &observed);
            if !newcomers.is_empty() {
                mark_rebuilds(ctx, cluster, &newcomers).await?;
                return Ok(Requeue::await_change());
            }
            secrets::reconcile(ctx, cluster, &observed, desired).await?;
            let seeds = seeds::reconcile(cluster, &observed, desired).await;
            let outcomes = datacenters::reconcile(cluster, &observed, desired, &seeds).await;
            let ops = operations::reconcile(cluster, &observed, &ctx.registry, &now).await;
            (outcomes, ops)
        }
        _ => (Vec::new(), operations::Operations::default()),
    };
    write_status(
        ctx,
        cluster,
        &status::desired_status(cluster, &observed, &problems, &outcomes, &ops, &now),
    )
    .await?;
    let settled = outcomes
        .iter()
        .all(|o| matches!(o, Outcome::Current | Outcome::RequiresUpdate));
    if settled && !outcomes.is_empty() {
        forget_autoupdate_once(ctx, cluster).await?;
    }
    let operations_settled =
        ops.progressing.is_empty() && ops.degraded.is_empty() && ops.problems.is_empty();
    Ok(if settled && operations_settled && problems.is_empty() {
        Requeue::await_change()
    } else {
        Requeue::requeue(ops.requeue.unwrap_or(BUSY_REQUEUE).min(BUSY_REQUEUE))
    })
}

/// Records that `names` join a live cluster and are to be rebuilt.
async fn mark_rebuilds(
    ctx: &Context,
    cluster: &K8ssandraCluster,
    names: &[String],
) -> Result<(), Error> {
    let mut wanted = cluster.status.clone().unwrap_or_default();
    let entries = wanted.datacenters.get_or_insert_with(BTreeMap::new);
    for name in names {
        entries.entry(name.clone()).or_default().rebuild =
            Some(k8ssandra_api::k8ssandra::DatacenterRebuildStatus {
                state: k8ssandra_api::k8ssandra::rebuild_state::REPLICATING.to_owned(),
                ..Default::default()
            });
        tracing::info!(namespace = %cluster.namespace().unwrap_or_default(), cluster = %cluster.name_any(), datacenter = %name, "datacenter joins a live cluster: it will be rebuilt");
    }
    write_status(ctx, cluster, &wanted).await
}

/// Why the initial replication could not be had.
enum InitialReplication {
    /// The recorded annotation is unusable: a problem of the spec.
    Malformed(String),
    /// The annotation could not be recorded.
    Write(Error),
}

/// The initial system replication: as recorded, or computed from the spec and recorded once
/// (`None`: just recorded; the write triggers the next pass).
async fn initial_replication(
    ctx: &Context,
    cluster: &K8ssandraCluster,
) -> Result<Option<BTreeMap<String, u32>>, InitialReplication> {
    if let Some(recorded) = cluster
        .annotations()
        .get(annotations::INITIAL_SYSTEM_REPLICATION)
    {
        return initial::from_annotation(recorded)
            .map(Some)
            .map_err(|e| InitialReplication::Malformed(e.to_string()));
    }
    let initial = initial::initial_system_replication(&merge::resolve_datacenters(cluster));
    if initial.is_empty() {
        return Ok(Some(initial));
    }
    let patch = serde_json::json!({
        "metadata": {
            "annotations": {
                annotations::INITIAL_SYSTEM_REPLICATION: initial::to_annotation(&initial),
            }
        }
    });
    patch_metadata(
        ctx,
        cluster,
        &patch,
        annotations::INITIAL_SYSTEM_REPLICATION,
    )
    .await
    .map_err(InitialReplication::Write)?;
    Ok(None)
}

/// `k8ssandra.io/autoupdate-spec: once` goes after the pass that applied it.
async fn forget_autoupdate_once(ctx: &Context, cluster: &K8ssandraCluster) -> Result<(), Error> {
    if cluster
        .annotations()
        .get(annotations::K8SSANDRA_AUTOUPDATE_SPEC)
        .map(String::as_str)
        != Some("once")
    {
        return Ok(());
    }
    let patch = serde_json::json!({
        "metadata": { "annotations": { annotations::K8SSANDRA_AUTOUPDATE_SPEC: null } }
    });
    patch_metadata(ctx, cluster, &patch, annotations::K8SSANDRA_AUTOUPDATE_SPEC).await
}

async fn patch_metadata(
    ctx: &Context,
    cluster: &K8ssandraCluster,
    patch: &serde_json::Value,
    annotation: &'static str,
) -> Result<(), Error> {
    let api = Api::<K8ssandraCluster>::namespaced(
        ctx.client.clone(),
        &cluster.namespace().unwrap_or_default(),
    );
    let written = api
        .patch_metadata(
            &cluster.name_any(),
            &PatchParams::default(),
            &Patch::Merge(patch),
        )
        .await
        .map_err(|source| Error::Annotation { annotation, source })?;
    ctx.caches.k8ssandra_clusters.wrote(&written.metadata);
    Ok(())
}

/// A pass over a K8ssandraCluster being deleted: what is left is deleted, and what is waited
/// for is reported.
async fn deleting(ctx: &Context, cluster: &K8ssandraCluster) -> Result<Requeue, Error> {
    let waiting = deletion::reconcile(ctx, cluster).await?;
    if waiting.is_empty() {
        return Ok(Requeue::await_change());
    }
    let mut wanted = cluster.status.clone().unwrap_or_default();
    let mut list = wanted.conditions.clone().unwrap_or_default();
    let unreachable: Vec<&String> = waiting
        .iter()
        .filter(|w| w.contains("once it is back"))
        .collect();
    let mut put = |type_: &str, status, reason: &str, message: String| {
        let mut condition =
            k8ssandra_api::conditions::Condition::new(type_, status, reason, message);
        condition.observed_generation = cluster.metadata.generation;
        k8ssandra_api::conditions::set(&mut list, condition, &now());
    };
    use k8ssandra_api::conditions::ConditionStatus;
    put(
        k8ssandra_api::k8ssandra::condition::READY,
        ConditionStatus::False,
        "Deleting",
        format!("being deleted: {}", waiting.join("; ")),
    );
    if !unreachable.is_empty() {
        let message = unreachable
            .iter()
            .map(|s| s.as_str())
            .collect::<Vec<_>>()
            .join("; ");
        put(
            status::DEGRADED,
            ConditionStatus::True,
            "DeletionBlocked",
            message,
        );
    }
    wanted.conditions = Some(list);
    write_status(ctx, cluster, &wanted).await?;
    Ok(Requeue::requeue(BUSY_REQUEUE))
}

/// Writes the status when it changed, with an Event for each condition worth one.
async fn write_status(
    ctx: &Context,
    cluster: &K8ssandraCluster,
    wanted: &k8ssandra_api::k8ssandra::K8ssandraClusterStatus,
) -> Result<(), Error> {
    let current = cluster.status.clone().unwrap_or_default();
    if *wanted == current {
        return Ok(());
    }
    let api = Api::<K8ssandraCluster>::namespaced(
        ctx.client.clone(),
        &cluster.namespace().unwrap_or_default(),
    );
    let value = serde_json::to_value(wanted).unwrap_or_default();
    let written = apply_status(&api, FIELD_MANAGER, &cluster.name_any(), &value)
        .await
        .map_err(Error::Status)?;
    ctx.caches.k8ssandra_clusters.wrote(&written.metadata);
    for condition in status::transitions(&current, wanted) {
        let Some(severity) = event_severity(&condition) else {
            continue;
        };
        ctx.events
            .publish(
                &cluster.object_ref(&()),
                severity,
                condition.reason.as_deref().unwrap_or(&condition.type_),
                "Reconcile",
                condition.message.clone().unwrap_or_default(),
            )
            .await;
    }
    Ok(())
}

/// Which transitions an Event tells of: the spec refused, the cluster degraded (Warnings), the
/// cluster ready (Normal).
fn event_severity(condition: &k8ssandra_api::conditions::Condition) -> Option<Severity> {
    use k8ssandra_api::{conditions::ConditionStatus, k8ssandra::condition};
    match (condition.type_.as_str(), condition.status) {
        (condition::VALID, ConditionStatus::False) => Some(Severity::Warning),
        (status::DEGRADED, ConditionStatus::True) => Some(Severity::Warning),
        (condition::READY, ConditionStatus::True) => Some(Severity::Normal),
        _ => None,
    }
}
