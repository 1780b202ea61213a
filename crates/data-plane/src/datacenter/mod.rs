//! The CassandraDatacenter controller: one pass is observe → validate → children → plan → act →
//! status, each step a module of its own. See `docs/data-plane.md` for the rules.

pub mod act;
pub mod children;
pub mod observe;
pub mod operations;
pub mod plan;
pub mod status;
pub mod validate;

use std::{
    sync::Arc,
    time::{Duration, Instant},
};

use futures::StreamExt;
use k8s_openapi::{
    api::{
        apps::v1::StatefulSet,
        core::v1::{Pod, Service},
        policy::v1::PodDisruptionBudget,
    },
    apimachinery::pkg::apis::meta::v1::Time,
};
use k8ssandra_api::{
    cassandra::{CassandraDatacenter, condition},
    conditions, labels,
};
use k8ssandra_mgmt_api::ClientSettings;
use k8ssandra_reconcile::{
    apply::apply_status,
    backoff::BackoffPolicy,
    events::{EventPublisher, Severity},
    metrics::ReconcileMetrics,
    scope::{now, scoped_api},
};
use kube::{
    Api, Client, Resource, ResourceExt,
    runtime::{Controller, controller::Action as Requeue, reflector::ObjectRef, watcher},
};

use crate::build::images::ImageConfig;
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
        mgmt: ClientSettings,
        metrics: ReconcileMetrics,
        timings: Timings,
    ) -> Self {
        Self {
            events: EventPublisher::new(client.clone(), "cass-operator"),
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
    /// Observing failed.
    #[error(transparent)]
    Observe(#[from] observe::ObserveError),
    /// A child could not be applied.
    #[error(transparent)]
    Children(#[from] children::ChildrenError),
    /// An action failed.
    #[error(transparent)]
    Act(#[from] act::ActError),
    /// The status could not be written.
    #[error("could not write the status: {0}")]
    Status(#[source] kube::Error),
}

impl Error {
    /// A short, fixed name for metrics.
    #[must_use]
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Observe(_) => "observe",
            Self::Children(_) => "children",
            Self::Act(_) => "act",
            Self::Status(_) => "status",
        }
    }
}

/// Runs the controller until the watches end; `namespace` limits it to one namespace.
pub async fn run(ctx: Arc<Context>, namespace: Option<&str>) {
    let client = ctx.client.clone();
    let owned = watcher::Config::default().labels(&format!(
        "{}={}",
        labels::MANAGED_BY,
        labels::DATA_PLANE_MANAGER
    ));
    Controller::new(
        scoped_api::<CassandraDatacenter>(client.clone(), namespace),
        watcher::Config::default(),
    )
    .owns(
        scoped_api::<StatefulSet>(client.clone(), namespace),
        owned.clone(),
    )
    .owns(
        scoped_api::<Service>(client.clone(), namespace),
        owned.clone(),
    )
    .owns(
        scoped_api::<PodDisruptionBudget>(client.clone(), namespace),
        owned,
    )
    .watches(
        scoped_api::<Pod>(client, namespace),
        watcher::Config::default().labels(labels::DATACENTER),
        datacenter_of_pod,
    )
    .run(reconcile, error_policy, ctx)
    .for_each(|result| async move {
        if let Err(error) = result {
            tracing::debug!(%error, "reconcile");
        }
    })
    .await;
}

/// The datacenter a pod belongs to, from its datacenter label.
fn datacenter_of_pod(pod: Pod) -> Option<ObjectRef<CassandraDatacenter>> {
    let name = pod.labels().get(labels::DATACENTER)?;
    Some(ObjectRef::new(name).within(&pod.namespace()?))
}

/// One pass over a datacenter.
///
/// # Errors
/// When a step fails; the pass is retried.
pub async fn reconcile(dc: Arc<CassandraDatacenter>, ctx: Arc<Context>) -> Result<Requeue, Error> {
    ctx.metrics
        .measure(CONTROLLER, Error::kind, pass(&dc, &ctx))
        .await
}

fn error_policy(dc: Arc<CassandraDatacenter>, error: &Error, ctx: Arc<Context>) -> Requeue {
    tracing::warn!(datacenter = %dc.name_any(), %error, "pass failed");
    Requeue::requeue(ctx.timings.error_requeue)
}

async fn pass(dc: &CassandraDatacenter, ctx: &Context) -> Result<Requeue, Error> {
    if dc.meta().deletion_timestamp.is_some() {
        // Owner references delete the children; the volumes stay, as upstream's default.
        return Ok(Requeue::await_change());
    }
    let now = now();
    let mgmt = crate::mgmt_access::settings_for(&ctx.client, &ctx.mgmt, dc).await;
    let observed = observe::observe(ctx, dc, mgmt.as_ref().ok()).await?;
    let access_problem = mgmt.as_ref().err().map(|error| validate::Problem {
        reason: error.reason(),
        message: error.to_string(),
    });
    let problem = validate::validate_spec(dc, &ctx.images)
        .or_else(|| validate::validate_against_live(dc, &observed.statefulsets))
        .or(access_problem);
    if let Some(problem) = &problem {
        write_status(
            ctx,
            dc,
            &observed,
            None,
            &act::ActReport::default(),
            Some(problem),
            now,
        )
        .await?;
        // A spec problem waits for the next spec change; a missing or wrong Secret is not
        // watched, so look again soon.
        let again = if mgmt.is_err() {
            ctx.timings.busy_requeue
        } else {
            ctx.timings.idle_requeue
        };
        return Ok(Requeue::requeue(again));
    }

    // An access problem was reported above; what is left is the way to the pods.
    let Ok(mgmt) = mgmt else {
        return Ok(Requeue::requeue(ctx.timings.idle_requeue));
    };
    children::apply_children(ctx, dc).await?;
    let input = match observe::plan_input(dc, &observed, &ctx.calls, &ctx.images, Instant::now()) {
        Ok(input) => input,
        Err(error) => {
            let problem = validate::Problem {
                reason: "InvalidSpec",
                message: error.to_string(),
            };
            write_status(
                ctx,
                dc,
                &observed,
                None,
                &act::ActReport::default(),
                Some(&problem),
                now,
            )
            .await?;
            return Ok(Requeue::requeue(ctx.timings.idle_requeue));
        }
    };
    let plan = plan::plan(&input);
    tracing::debug!(datacenter = %dc.name_any(), actions = ?plan.actions, "plan");
    let report = act::act(ctx, &mgmt, dc, &observed, &plan).await?;
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
    Ok(if plan.is_settled() {
        Requeue::requeue(ctx.timings.idle_requeue)
    } else {
        Requeue::requeue(ctx.timings.busy_requeue)
    })
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
        failed_starts,
        now,
    });
    if dc.status.as_ref() == Some(&desired) {
        return Ok(());
    }
    let was_valid = dc
        .status
        .as_ref()
        .and_then(|s| s.conditions.as_deref())
        .and_then(|c| conditions::find(c, condition::VALID))
        .is_none_or(|c| c.is_true());
    if let (true, Some(problem)) = (was_valid, problem) {
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
    apply_status(&api, FIELD_MANAGER, &dc.name_any(), &body)
        .await
        .map_err(Error::Status)?;
    Ok(())
}
