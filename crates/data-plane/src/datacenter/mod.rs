//! The CassandraDatacenter controller: one pass is finalizer → observe → validate → children →
//! plan → act → seeds → users → cleanup → status, each step a module of its own; a datacenter
//! being deleted has a pass of its own (`deletion`). See `docs/data-plane.md` for the rules.

pub mod act;
pub mod admission;
pub mod children;
pub mod cleanup;
pub mod deletion;
pub mod done;
pub mod observe;
pub mod operations;
pub mod plan;
pub mod secrets;
pub mod seeds;
pub mod status;
pub mod storage;
pub mod users;
pub mod validate;

use std::{
    sync::Arc,
    time::{Duration, Instant},
};

use futures::StreamExt;
use k8s_openapi::{
    api::{
        core::v1::{Secret, Service},
        discovery::v1::EndpointSlice,
    },
    apimachinery::pkg::apis::meta::v1::Time,
};
use k8ssandra_api::{
    cassandra::{CassandraDatacenter, condition},
    conditions,
    control::CassandraTask,
    labels, names,
};
use k8ssandra_mgmt_api::ClientSettings;
use k8ssandra_reconcile::{
    apply::apply_status,
    backoff::BackoffPolicy,
    events::{EventPublisher, Severity},
    metrics::ReconcileMetrics,
    scope::now,
    tolerant::{Tolerant, UndecodableReporter},
};
use kube::{
    Api, Client, Resource, ResourceExt,
    runtime::{Controller, controller::Action as Requeue, reflector::ObjectRef},
};

use crate::{
    build::images::ImageConfig,
    caches::{Caches, Feeds},
};
use operations::NodeCalls;

/// Field manager of every write of this controller.
pub const FIELD_MANAGER: &str = "k8ssandra-data-plane";

/// Name of this controller in metrics and Events.
pub const CONTROLLER: &str = "cassandradatacenter";

/// Timings of the controller.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Timings {
    /// Pass again this soon while nodes are being started, decommissioned or replaced.
    pub busy_requeue: Duration,
    /// Pass again this soon when the datacenter is as its spec asks (a safety net: every change
    /// of the datacenter, its StatefulSets or pods triggers a pass anyway).
    pub idle_requeue: Duration,
    /// Backoff of a failed node start or decommission.
    pub node_backoff: BackoffPolicy,
    /// A start that answered but left the node neither ready nor joining this long failed (a
    /// Cassandra process that cannot reach a seed, or exits, answers the start call first).
    pub start_timeout: Duration,
    /// Retry delay after a pass that failed.
    pub error_requeue: Duration,
}

impl Default for Timings {
    fn default() -> Self {
        Self {
            busy_requeue: Duration::from_secs(5),
            idle_requeue: Duration::from_secs(300),
            node_backoff: BackoffPolicy {
                base: Duration::from_secs(10),
                max: Duration::from_secs(300),
            },
            start_timeout: Duration::from_secs(600),
            error_requeue: Duration::from_secs(10),
        }
    }
}

/// What every pass shares.
pub struct Context {
    /// Kubernetes client of the cluster the datacenter lives in.
    pub client: Client,
    /// How to reach the Management API of a pod.
    pub mgmt: ClientSettings,
    /// Images of the pods.
    pub images: ImageConfig,
    /// Start and decommission calls under way, and their failures.
    pub calls: NodeCalls,
    /// Events.
    pub events: EventPublisher,
    /// Reports datacenters that cannot be read.
    pub undecodable: UndecodableReporter,
    /// StatefulSets the API server admitted in a dry run.
    pub admitted: admission::Admitted,
    /// The generation of each StatefulSet after this operator's last write.
    pub written: operations::WrittenGenerations,
    /// The watch caches a pass reads.
    pub caches: Caches,
    /// The role set each datacenter last had upserted.
    pub roles: done::LastDone,
    /// The seed set each datacenter's nodes last reloaded.
    pub seeds: done::LastDone,
    /// The annotations without effect each datacenter was last told about.
    pub ignored: done::LastDone,
    /// The problems without a condition (an outdated CRD) each datacenter was told about.
    pub reported: done::LastDone,
    /// Reconcile metrics.
    pub metrics: ReconcileMetrics,
    /// Timings.
    pub timings: Timings,
}

impl Context {
    /// A context with the given parts and default images.
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
            admitted: admission::Admitted::default(),
            written: operations::WrittenGenerations::default(),
            caches,
            roles: done::LastDone::default(),
            seeds: done::LastDone::default(),
            ignored: done::LastDone::default(),
            reported: done::LastDone::default(),
            events,
            client,
            mgmt,
            images: ImageConfig::default(),
            calls: NodeCalls::new(timings.node_backoff),
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
    /// A child could not be applied.
    #[error(transparent)]
    Children(#[from] children::ChildrenError),
    /// A referenced Secret could not be read or made.
    #[error(transparent)]
    Secrets(#[from] secrets::SecretsError),
    /// A role Secret could not be read, or a role made.
    #[error(transparent)]
    Users(#[from] users::UsersError),
    /// The cleanup task after a scale-up could not be made or read.
    #[error(transparent)]
    Cleanup(#[from] cleanup::CleanupError),
    /// A step of the deletion failed.
    #[error(transparent)]
    Deletion(#[from] deletion::DeletionError),
    /// A node did not reload its seeds.
    #[error(transparent)]
    Seeds(#[from] seeds::SeedsError),
    /// The dry run could not be made.
    #[error(transparent)]
    Admission(#[from] admission::AdmissionError),
    /// Growing the volumes failed.
    #[error(transparent)]
    Storage(#[from] storage::StorageError),
    /// An action failed.
    #[error(transparent)]
    Act(#[from] act::ActError),
    /// The status could not be written.
    #[error("could not write the status: {0}")]
    Status(#[source] kube::Error),
    /// The installed CRD does not declare fields of the status (upstream's CRD is installed).
    #[error(
        "could not write the status: the installed CassandraDatacenter CRD does not declare \
         fields this operator writes ({0}); install this operator's CRDs (`k8ssandra-operator crd \
         | kubectl apply --server-side --force-conflicts -f -`), see docs/data-plane.md, Taking \
         over"
    )]
    OutdatedCrd(String),
}

impl Error {
    /// A short, fixed name for metrics.
    #[must_use]
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Panicked(_) => "panic",
            Self::Cache(_) => "cache",
            Self::Children(_) => "children",
            Self::Secrets(_) => "secrets",
            Self::Users(_) => "users",
            Self::Seeds(_) => "seeds",
            Self::Deletion(_) => "deletion",
            Self::Cleanup(_) => "cleanup",
            Self::Admission(_) => "admission",
            Self::Storage(_) => "storage",
            Self::Act(_) => "act",
            Self::Status(_) => "status",
            Self::OutdatedCrd(_) => "outdated_crd",
        }
    }
}

/// The controller, triggered by the `feeds` it subscribes to; it runs until they end.
pub fn run(ctx: Arc<Context>, feeds: &mut Feeds) -> impl Future<Output = ()> + use<> {
    let controller = Controller::for_stream(
        feeds.datacenters.subscribe(),
        ctx.caches.datacenters.store(),
    )
    .watches_stream(feeds.secrets.subscribe(), watching_datacenters)
    .owns_stream(feeds.statefulsets.subscribe())
    // The cluster's seed Service has every datacenter of the cluster as an owner.
    .watches_stream(feeds.services.subscribe(), owning_datacenters)
    .owns_stream(feeds.pdbs.subscribe())
    .watches_stream(feeds.endpoint_slices.subscribe(), {
        let datacenters = ctx.caches.datacenters.store();
        move |slice| behind_additional_seed_service(&datacenters.state(), &slice)
    })
    .watches_stream(feeds.pods.subscribe(), datacenter_of_labelled)
    .watches_stream(feeds.claims.subscribe(), datacenter_of_labelled)
    // A cleanup task that ends lets ScalingUp end.
    .watches_stream(feeds.tasks.subscribe(), datacenter_of_task);
    controller
        .run(reconcile, error_policy, ctx)
        .for_each(|result| async move {
            if let Err(error) = result {
                tracing::debug!(%error, "reconcile");
            }
        })
}

/// The datacenters a Secret's watched-by annotation lists.
fn watching_datacenters(secret: Secret) -> Vec<ObjectRef<Tolerant<CassandraDatacenter>>> {
    users::watchers(&secret)
        .into_iter()
        .map(|(namespace, name)| ObjectRef::new(&name).within(&namespace))
        .collect()
}

/// The datacenters whose additional-seed Service an EndpointSlice is behind: its owner, or, for
/// the slices the control plane writes, those the Service is named after.
fn behind_additional_seed_service(
    datacenters: &[Arc<Tolerant<CassandraDatacenter>>],
    slice: &EndpointSlice,
) -> Vec<ObjectRef<Tolerant<CassandraDatacenter>>> {
    let Some(namespace) = slice.namespace() else {
        return Vec::new();
    };
    let service = slice.labels().get(labels::SERVICE_NAME);
    datacenters
        .iter()
        .filter(|dc| dc.namespace().as_deref() == Some(namespace.as_str()))
        .filter(|dc| {
            let owns = slice
                .owner_references()
                .iter()
                .any(|o| Some(&o.uid) == dc.uid().as_ref());
            let named = match dc.as_ref() {
                Tolerant::Decoded(dc) => service.is_some_and(|s| {
                    *s == names::additional_seed_service(
                        &dc.spec.cluster_name,
                        &dc.label_resource_name(),
                    )
                }),
                Tolerant::Undecodable { .. } => false,
            };
            owns || named
        })
        .map(|dc| ObjectRef::from_obj(dc.as_ref()))
        .collect()
}

/// Every datacenter among the owners of a Service.
fn owning_datacenters(service: Service) -> Vec<ObjectRef<Tolerant<CassandraDatacenter>>> {
    let Some(namespace) = service.namespace() else {
        return Vec::new();
    };
    service
        .owner_references()
        .iter()
        .filter(|owner| owner.kind == CassandraDatacenter::kind(&()))
        .map(|owner| ObjectRef::new(&owner.name).within(&namespace))
        .collect()
}

/// The other datacenters of the namespace, from the watch cache.
fn peers(ctx: &Context, dc: &CassandraDatacenter) -> Vec<Arc<Tolerant<CassandraDatacenter>>> {
    ctx.caches
        .datacenters
        .state()
        .into_iter()
        .filter(|other| {
            other.namespace() == dc.namespace()
                && other.uid() != dc.uid()
                && matches!(other.as_ref(), Tolerant::Decoded(_))
        })
        .collect()
}

/// The datacenter a task runs on (always in the task's namespace).
fn datacenter_of_task(
    task: Tolerant<CassandraTask>,
) -> Option<ObjectRef<Tolerant<CassandraDatacenter>>> {
    let task = task.decoded().ok()?;
    let name = task.spec.datacenter.name.as_deref()?;
    Some(ObjectRef::new(name).within(&task.namespace()?))
}

/// The datacenter a pod or a volume claim belongs to, from its datacenter label.
fn datacenter_of_labelled<K: Resource>(
    object: K,
) -> Option<ObjectRef<Tolerant<CassandraDatacenter>>> {
    let name = object.labels().get(labels::DATACENTER)?;
    Some(ObjectRef::new(name).within(&object.namespace()?))
}

/// One pass over a datacenter.
///
/// # Errors
/// When a step fails; the pass is retried.
pub async fn reconcile(
    object: Arc<Tolerant<CassandraDatacenter>>,
    ctx: Arc<Context>,
) -> Result<Requeue, Error> {
    ctx.caches.settle().await?;
    // The datacenter as the cache holds it now, this operator's last status write included.
    let Some(object) = ctx.caches.datacenters.current(&object) else {
        return Ok(Requeue::await_change());
    };
    // A datacenter that cannot be read cannot be taken down step by step: its finalizer goes so
    // that the deletion is not blocked, and its volume claims are kept.
    if let Tolerant::Undecodable { metadata, .. } = &*object
        && metadata.deletion_timestamp.is_some()
    {
        deletion::patch_finalizer(&ctx, metadata, false).await?;
        return Ok(Requeue::await_change());
    }
    let Some(dc) = ctx
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
                object: dc.object_ref(&()),
            }),
            pass(dc, &ctx),
        )
        .await
}

fn error_policy(
    dc: Arc<Tolerant<CassandraDatacenter>>,
    error: &Error,
    ctx: Arc<Context>,
) -> Requeue {
    tracing::warn!(namespace = %dc.namespace().unwrap_or_default(), datacenter = %dc.name_any(), %error, "pass failed");
    Requeue::requeue(ctx.timings.error_requeue)
}

async fn pass(dc: &CassandraDatacenter, ctx: &Context) -> Result<Requeue, Error> {
    let now = now();
    if dc.meta().deletion_timestamp.is_some() {
        return delete(ctx, dc, now).await;
    }
    deletion::patch_finalizer(ctx, dc.meta(), true).await?;
    note_ignored_annotations(ctx, dc).await;
    let mgmt =
        crate::mgmt_access::settings_for(&ctx.client, &ctx.caches.secrets, &ctx.mgmt, dc).await;
    let observed = observe::observe(ctx, dc, mgmt.as_ref().ok()).await;
    let access_problem = mgmt.as_ref().err().map(|error| validate::Problem {
        reason: error.reason(),
        message: error.to_string(),
    });
    let role_secrets = users::read_role_secrets(ctx, dc).await?;
    let superuser_secret = users::superuser_secret(dc, &role_secrets);
    let secret_problem = secrets::superuser_secret_problem(dc, superuser_secret)
        .or_else(|| users::user_secret_problem(dc, &role_secrets));
    let storage = storage::judge(dc, &observed.statefulsets, &ctx.images);
    let problem = validate::validate_spec(dc, &ctx.images)
        .or_else(|| validate::validate_against_live(dc, &observed.statefulsets))
        .or_else(|| storage.as_ref().err().cloned())
        .or(access_problem)
        .or(secret_problem);
    if let Some(problem) = &problem {
        return refuse(ctx, dc, &observed, problem, now).await;
    }
    // An access problem was reported above; what is left is the way to the pods.
    let Ok(mgmt) = mgmt else {
        return Ok(Requeue::requeue(ctx.timings.idle_requeue));
    };

    // Nothing is written unless the API server admits all of it.
    let peers = peers(ctx, dc);
    let peers: Vec<&CassandraDatacenter> = peers.iter().filter_map(|p| p.decoded().ok()).collect();
    let changed = children::changed_children(ctx, dc, &peers)?;
    let statefulsets = admission::pending_statefulsets(dc, &observed.statefulsets, &ctx.images)
        .map_err(admission::AdmissionError::from)?;
    if let Some(problem) = admission::dry_run(ctx, dc, &changed, &statefulsets).await? {
        return refuse(ctx, dc, &observed, &problem, now).await;
    }
    children::apply_children(ctx, dc, &changed).await?;
    children::delete_unwanted_children(ctx, dc).await?;
    secrets::create_superuser_secret(ctx, dc, superuser_secret.is_some()).await?;
    let growths = storage.unwrap_or_default();
    if !growths.is_empty() {
        if let Some(problem) = storage::grow(ctx, dc, &observed, &growths).await? {
            return refuse(ctx, dc, &observed, &problem, now).await;
        }
        return Ok(Requeue::requeue(ctx.timings.busy_requeue));
    }

    let input = match observe::plan_input(
        dc,
        &observed,
        &ctx.calls,
        &ctx.images,
        Instant::now(),
        ctx.timings.start_timeout,
    ) {
        Ok(input) => input,
        Err(error) => {
            let problem = validate::Problem {
                reason: "InvalidSpec",
                message: error.to_string(),
            };
            return refuse(ctx, dc, &observed, &problem, now).await;
        }
    };
    let plan = plan::plan(&input);
    tracing::debug!(datacenter = %dc.name_any(), actions = ?plan.actions, "plan");
    let mut report = act::act(ctx, &mgmt, dc, &observed, &plan).await?;
    seeds::reload_seeds(ctx, &mgmt, dc, &observed, &plan).await?;
    // Roles once the datacenter is as its spec asks, as upstream.
    if plan.is_settled() {
        let roles = users::roles(&role_secrets);
        report.roles_upserted = users::upsert_roles(ctx, &mgmt, dc, &observed, &roles).await?;
    }
    report.cleanup = cleanup::follow(ctx, dc, &plan).await?;
    write_status(
        ctx,
        dc,
        &observed,
        Some(&plan),
        &report,
        report.refusal.as_ref(),
        now,
    )
    .await?;
    Ok(if plan.is_settled() && report.cleanup.waiting.is_none() {
        Requeue::requeue(ctx.timings.idle_requeue)
    } else {
        Requeue::requeue(ctx.timings.busy_requeue)
    })
}

/// Says once per operator run, with a Warning Event, that `bypass-webhook-validations` has no
/// effect here.
async fn note_ignored_annotations(ctx: &Context, dc: &CassandraDatacenter) {
    let key = labels::annotations::BYPASS_WEBHOOK_VALIDATIONS;
    let Some(value) = dc.annotations().get(key) else {
        return;
    };
    let uid = dc.uid().unwrap_or_default();
    let print = done::fingerprint([value.as_bytes()]);
    if ctx.ignored.is_current(&uid, &print) {
        return;
    }
    ctx.events
        .publish(
            &dc.object_ref(&()),
            Severity::Warning,
            "BypassWebhookValidationsIgnored",
            "Validate",
            format!(
                "{key} has no effect: the checks it skips upstream are CEL rules of the CRD, \
                 which the API server applies to every client"
            ),
        )
        .await;
    ctx.ignored.record(&uid, print);
}

/// A pass over a datacenter being deleted: with `decommission-on-delete` and another datacenter
/// alive, its nodes are decommissioned one by one (and nothing else is done); then the pods are
/// stopped, the claims deleted and the finalizer removed (see [`deletion`]).
async fn delete(ctx: &Context, dc: &CassandraDatacenter, now: Time) -> Result<Requeue, Error> {
    if !deletion::has_finalizer(dc.meta()) {
        deletion::forget(ctx, &dc.uid().unwrap_or_default());
        return Ok(Requeue::await_change());
    }
    let mgmt =
        crate::mgmt_access::settings_for(&ctx.client, &ctx.caches.secrets, &ctx.mgmt, dc).await;
    let observed = observe::observe(ctx, dc, mgmt.as_ref().ok()).await;
    if let Ok(mgmt) = &mgmt
        && deletion::decommissions(dc, observed.gossip.as_ref())
    {
        // The datacenter as it is to end: no node (the seeds stay labelled while nodes leave).
        let mut input = observe::plan_input(
            dc,
            &observed,
            &ctx.calls,
            &ctx.images,
            Instant::now(),
            ctx.timings.start_timeout,
        )
        .map_err(admission::AdmissionError::from)?;
        for rack in &mut input.racks {
            rack.desired_nodes = 0;
        }
        let mut plan = plan::plan(&input);
        plan.actions.retain(plan::Action::decommissions);
        let report = act::act(ctx, mgmt, dc, &observed, &plan).await?;
        write_status(
            ctx,
            dc,
            &observed,
            Some(&plan),
            &report,
            report.refusal.as_ref(),
            now,
        )
        .await?;
        return Ok(Requeue::requeue(ctx.timings.busy_requeue));
    }
    Ok(if deletion::stop_and_release(ctx, dc, &observed).await? {
        Requeue::await_change()
    } else {
        Requeue::requeue(ctx.timings.busy_requeue)
    })
}

/// Reports `problem` (`Valid=False`, and a Warning Event when it is new) and ends the pass
/// without writing anything else. A spec problem waits for the next change of the datacenter;
/// one that other objects may fix (a Secret, a StorageClass, the API server) is looked at again
/// soon.
async fn refuse(
    ctx: &Context,
    dc: &CassandraDatacenter,
    observed: &observe::Observed,
    problem: &validate::Problem,
    now: Time,
) -> Result<Requeue, Error> {
    write_status(
        ctx,
        dc,
        observed,
        None,
        &act::ActReport::default(),
        Some(problem),
        now,
    )
    .await?;
    let again = if validate::is_spec_problem(problem) {
        ctx.timings.idle_requeue
    } else {
        ctx.timings.busy_requeue
    };
    Ok(Requeue::requeue(again))
}

/// Writes the status when it changed, and an Event when the spec turned invalid.
async fn write_status(
    ctx: &Context,
    dc: &CassandraDatacenter,
    observed: &observe::Observed,
    plan: Option<&plan::Plan>,
    report: &act::ActReport,
    problem: Option<&validate::Problem>,
    now: Time,
) -> Result<(), Error> {
    let failed_starts = observed
        .pods
        .iter()
        .filter_map(|pod| {
            let name = pod.name_any();
            let (_, failures) = ctx.calls.start_failures(&name, Instant::now());
            failures.map(|f| (name, f.count, f.last_error))
        })
        .collect();
    let desired = status::desired_status(&status::StatusInput {
        dc,
        observed,
        plan,
        problem,
        replacements_begun: &report.replacements_begun,
        roles_upserted: report.roles_upserted,
        cluster_unhealthy: report.cluster_unhealthy.as_deref(),
        cleanup: &report.cleanup,
        failed_starts,
        now,
    });
    if dc.status.as_ref() == Some(&desired) {
        return Ok(());
    }
    // One Event per problem: when it appears or changes, never on every pass.
    let reported = dc
        .status
        .as_ref()
        .and_then(|s| s.conditions.as_deref())
        .and_then(|c| conditions::find(c, condition::VALID))
        .is_some_and(|c| {
            !c.is_true()
                && problem.is_some_and(|p| {
                    c.reason.as_deref() == Some(p.reason)
                        && c.message.as_deref() == Some(p.message.as_str())
                })
        });
    if let (false, Some(problem)) = (reported, problem) {
        ctx.events
            .publish(
                &dc.object_ref(&()),
                Severity::Warning,
                problem.reason,
                "Validate",
                problem.message.clone(),
            )
            .await;
    }
    let body = serde_json::to_value(&desired).unwrap_or_default();
    let api: Api<CassandraDatacenter> =
        Api::namespaced(ctx.client.clone(), &dc.namespace().unwrap_or_default());
    let written = match apply_status(&api, FIELD_MANAGER, &dc.name_any(), &body).await {
        Ok(written) => written,
        Err(kube::Error::Api(status)) if status.message.contains(UNDECLARED) => {
            let error = Error::OutdatedCrd(undeclared_fields(&status.message));
            report_outdated_crd(ctx, dc, &error).await;
            return Err(error);
        }
        Err(error) => return Err(Error::Status(error)),
    };
    ctx.caches.datacenters.wrote(written.meta());
    Ok(())
}

/// What the API server says of a field its schema lacks.
const UNDECLARED: &str = "field not declared in schema";

/// The fields an API server's refusal names as undeclared, once each, with list selectors
/// folded (`status.conditions[].observedGeneration`), so that the message stays short.
fn undeclared_fields(message: &str) -> String {
    let mut fields: Vec<String> = Vec::new();
    let mut chunks: Vec<&str> = message.split(UNDECLARED).collect();
    chunks.pop();
    // Each chunk ends with `<path>: `, one error or a list of them.
    for chunk in chunks {
        let path = chunk
            .trim_end()
            .trim_end_matches(':')
            .rsplit(char::is_whitespace)
            .next()
            .unwrap_or_default();
        let mut folded = String::new();
        let mut in_selector = false;
        for c in path.trim_start_matches('.').chars() {
            match c {
                '[' => {
                    in_selector = true;
                    folded.push_str("[]");
                }
                ']' => in_selector = false,
                _ if in_selector => {}
                _ => folded.push(c),
            }
        }
        if !folded.is_empty() && !fields.contains(&folded) {
            fields.push(folded);
        }
    }
    fields.join(", ")
}

/// Says once per operator run, with a Warning Event, that the installed CRD is not this
/// operator's (a takeover from upstream whose CRD upgrade was skipped). Nothing else is
/// refused: the pass acts as it would, and only its status waits for the CRD.
async fn report_outdated_crd(ctx: &Context, dc: &CassandraDatacenter, error: &Error) {
    let uid = dc.uid().unwrap_or_default();
    let print = done::fingerprint([b"outdated-crd".as_slice()]);
    if ctx.reported.is_current(&uid, &print) {
        return;
    }
    ctx.events
        .publish(
            &dc.object_ref(&()),
            Severity::Warning,
            "OutdatedCRD",
            "Status",
            error.to_string(),
        )
        .await;
    ctx.reported.record(&uid, print);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn undeclared_fields_are_named_once_with_selectors_folded() {
        let message = "failed to create typed patch object (/; cassandra.datastax.com/v1beta1, \
                       Kind=CassandraDatacenter): errors:\n  \
                       .status.conditions[type=\"Valid\"].observedGeneration: field not declared in schema\n  \
                       .status.conditions[type=\"Ready\"].observedGeneration: field not declared in schema\n  \
                       .status.readyNodes: field not declared in schema";
        assert_eq!(
            undeclared_fields(message),
            "status.conditions[].observedGeneration, status.readyNodes"
        );
        // One error alone is on the first line.
        let one = "failed to create typed patch object (/; cassandra.datastax.com/v1beta1, \
                   Kind=CassandraDatacenter): .status.readyNodes: field not declared in schema";
        assert_eq!(undeclared_fields(one), "status.readyNodes");
    }
}
