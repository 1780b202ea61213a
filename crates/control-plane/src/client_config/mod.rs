//! The ClientConfig controller: keeps the [`Registry`] in step with every ClientConfig and its
//! kubeconfig Secret, live (created, rotated, deleted: no restart), and reports on each
//! ClientConfig whether its cluster is `Reachable`, naming the server and the error.
//!
//! One pass: read the ClientConfig and its Secret from the watch caches (a Secret not marked
//! watched yet is read once and marked, so its changes are seen from then on), check the
//! kubeconfig, give the registry the result (a new client and new watches only when the kubeconfig
//! or context changed), and write the condition when it changed. The registry's health changes
//! trigger passes, so the condition follows the remote API server without polling it.

pub mod create;
pub mod status;

use std::{collections::BTreeSet, sync::Arc, time::Duration};

use futures::{StreamExt, stream};
use k8s_openapi::api::core::v1::Secret;
use k8ssandra_api::{
    conditions::{self, ConditionStatus},
    config::{ClientConfig, ClientConfigStatus},
    labels,
};
use k8ssandra_reconcile::{
    apply::apply_status,
    events::{EventPublisher, Severity},
    metrics::ReconcileMetrics,
    scope::now,
};
use kube::{
    Api, Client, Resource, ResourceExt,
    api::{Patch, PatchParams},
    runtime::{Controller, controller::Action as Requeue, reflector::ObjectRef},
};
use tokio::sync::broadcast;

use crate::{
    caches::{Caches, Feeds, NotReady},
    remote::{KubeconfigError, Registry, RemoteAccess},
};
use status::Finding;

/// Field manager of every write of this controller.
pub const FIELD_MANAGER: &str = "k8ssandra-control-plane-clientconfig";
/// Name of this controller in metrics.
pub const CONTROLLER: &str = "clientconfig";
/// How often a ClientConfig whose Secret is missing looks for it (a Secret that is not marked
/// watched yet is not in the watch cache).
const SECRET_MISSING_RECHECK: Duration = Duration::from_secs(5);
/// Retry delay after a pass that failed.
const ERROR_REQUEUE: Duration = Duration::from_secs(10);

/// What every pass shares.
pub struct Context {
    /// Client of the control plane's cluster.
    pub client: Client,
    /// The watch caches a pass reads.
    pub caches: Caches,
    /// The remote clusters.
    pub registry: Registry,
    /// Events.
    pub events: EventPublisher,
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
        Self {
            events: EventPublisher::new(client.clone(), "k8ssandra-operator"),
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
    /// The watch caches cannot be read yet.
    #[error(transparent)]
    Cache(#[from] NotReady),
    /// The Secret could not be read or marked watched.
    #[error("could not {what} Secret {name}: {source}")]
    Secret {
        /// What the pass tried.
        what: &'static str,
        /// The Secret.
        name: String,
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
            Self::Cache(_) => "cache",
            Self::Secret { .. } => "secret",
            Self::Status(_) => "status",
        }
    }
}

/// The controller, and the task that forgets the contexts of deleted ClientConfigs; they run
/// until the `feeds` end.
pub fn run(ctx: Arc<Context>, feeds: &mut Feeds) -> impl Future<Output = ()> + use<> {
    let store = ctx.caches.client_configs.store();
    let by_secret = store.clone();
    let by_context = store.clone();
    let changes = context_changes(ctx.registry.changes());
    let controller = Controller::for_stream(feeds.client_configs.subscribe(), store)
        .watches_stream(feeds.secrets.subscribe(), move |secret: Secret| {
            let (namespace, name) = (secret.namespace(), secret.name_any());
            by_secret
                .state()
                .iter()
                .filter(|cc| cc.namespace() == namespace && cc.spec.kube_config_secret.name == name)
                .map(|cc| ObjectRef::from_obj(cc.as_ref()))
                .collect::<Vec<_>>()
        })
        .reconcile_on(changes.flat_map(move |context| {
            let refs: Vec<ObjectRef<ClientConfig>> = by_context
                .state()
                .iter()
                .filter(|cc| context.as_deref().is_none_or(|c| cc.context_name() == c))
                .map(|cc| ObjectRef::from_obj(cc.as_ref()))
                .collect();
            stream::iter(refs)
        }))
        .run(reconcile, error_policy, Arc::clone(&ctx))
        .for_each(|result| async move {
            if let Err(error) = result {
                tracing::debug!(%error, "reconcile");
            }
        });
    // Boxed: the subscription is 'static, and so must be the future that holds it.
    let forget = forget_deleted(Arc::clone(&ctx), feeds.client_configs.subscribe().boxed());
    async move {
        tokio::join!(controller, forget);
    }
}

/// The contexts whose registry entry or health changed; `None` when changes were missed (every
/// ClientConfig is then passed again).
fn context_changes(
    receiver: broadcast::Receiver<String>,
) -> impl futures::Stream<Item = Option<String>> + Send + 'static {
    stream::unfold(receiver, |mut receiver| async move {
        match receiver.recv().await {
            Ok(context) => Some((Some(context), receiver)),
            Err(broadcast::error::RecvError::Lagged(_)) => Some((None, receiver)),
            Err(broadcast::error::RecvError::Closed) => None,
        }
    })
}

/// Drops the registry's contexts that no ClientConfig names any more (a deleted ClientConfig
/// triggers no pass of its own).
async fn forget_deleted(
    ctx: Arc<Context>,
    mut changes: futures::stream::BoxStream<
        'static,
        Result<ClientConfig, kube::runtime::watcher::Error>,
    >,
) {
    while changes.next().await.is_some() {
        let named: BTreeSet<String> = ctx
            .caches
            .client_configs
            .state()
            .iter()
            .map(|cc| cc.context_name().to_owned())
            .collect();
        ctx.registry.retain(&named);
    }
}

fn error_policy(cc: Arc<ClientConfig>, error: &Error, _ctx: Arc<Context>) -> Requeue {
    tracing::warn!(namespace = %cc.namespace().unwrap_or_default(), clientconfig = %cc.name_any(), %error, "pass failed");
    Requeue::requeue(ERROR_REQUEUE)
}

/// One pass over a ClientConfig.
///
/// # Errors
/// When the caches are not ready, or the Secret or the status cannot be read or written.
pub async fn reconcile(cc: Arc<ClientConfig>, ctx: Arc<Context>) -> Result<Requeue, Error> {
    let started = std::time::Instant::now();
    let result = pass(&cc, &ctx).await;
    match &result {
        Ok(_) => ctx.metrics.succeeded(CONTROLLER, started.elapsed()),
        Err(error) => ctx
            .metrics
            .failed(CONTROLLER, error.kind(), started.elapsed()),
    }
    result
}

async fn pass(cc: &ClientConfig, ctx: &Context) -> Result<Requeue, Error> {
    ctx.caches.settle().await?;
    let Some(cc) = ctx.caches.client_configs.current(cc) else {
        return Ok(Requeue::await_change());
    };
    let context = cc.context_name().to_owned();
    if let Some(owner) = first_with_context(&ctx.caches, &cc) {
        let finding = Finding::Duplicate {
            context: &context,
            owner,
        };
        write_status(ctx, &cc, &status::reachable(&finding)).await?;
        return Ok(Requeue::await_change());
    }
    let secret = read_secret(ctx, &cc).await?;
    let missing = secret.is_none();
    let access = match &secret {
        Some(secret) => RemoteAccess::from_secret(secret, &context),
        None => Err(KubeconfigError::SecretMissing {
            secret: cc.spec.kube_config_secret.name.clone(),
            namespace: cc.namespace().unwrap_or_default(),
        }),
    };
    let remote = ctx.registry.set(&context, access).await;
    write_status(ctx, &cc, &status::reachable(&Finding::Registered(&remote))).await?;
    Ok(if missing {
        Requeue::requeue(SECRET_MISSING_RECHECK)
    } else {
        Requeue::await_change()
    })
}

/// `namespace/name` of the ClientConfig that names the same context and came first (by creation,
/// then by namespace and name), when it is not `cc`.
fn first_with_context(caches: &Caches, cc: &ClientConfig) -> Option<String> {
    let key = |c: &ClientConfig| {
        (
            c.metadata.creation_timestamp.clone().map(|t| t.0),
            c.namespace().unwrap_or_default(),
            c.name_any(),
        )
    };
    let first = caches
        .client_configs
        .state()
        .into_iter()
        .filter(|other| other.context_name() == cc.context_name())
        .min_by_key(|other| key(other))?;
    (key(&first) != key(cc)).then(|| format!("{}/{}", key(&first).1, key(&first).2))
}

/// The ClientConfig's Secret: from the cache, or else read once and marked watched so that the
/// cache has it (and its rotations) from then on; `None` when it does not exist.
async fn read_secret(ctx: &Context, cc: &ClientConfig) -> Result<Option<Arc<Secret>>, Error> {
    let namespace = cc.namespace().unwrap_or_default();
    let name = cc.spec.kube_config_secret.name.clone();
    if let Some(secret) = ctx.caches.secrets.get(&namespace, &name) {
        return Ok(Some(secret));
    }
    let error = |what| {
        let name = name.clone();
        move |source| Error::Secret { what, name, source }
    };
    let api = Api::<Secret>::namespaced(ctx.client.clone(), &namespace);
    let Some(secret) = api.get_opt(&name).await.map_err(error("read"))? else {
        return Ok(None);
    };
    let mark = serde_json::json!({ "metadata": { "labels": { labels::WATCHED: "true" } } });
    let marked = api
        .patch(&name, &PatchParams::default(), &Patch::Merge(&mark))
        .await
        .map_err(error("mark watched"))?;
    ctx.caches.secrets.wrote(&marked.metadata);
    tracing::debug!(%namespace, secret = %name, "ClientConfig Secret marked watched");
    Ok(Some(Arc::new(secret)))
}

/// Writes the `Reachable` condition and `observedGeneration` when they changed, with a Warning
/// Event when the condition turns False.
async fn write_status(
    ctx: &Context,
    cc: &ClientConfig,
    condition: &conditions::Condition,
) -> Result<(), Error> {
    let current = cc.status.clone().unwrap_or_default();
    let mut conditions_now = current.conditions.clone().unwrap_or_default();
    let mut condition = condition.clone();
    condition.observed_generation = cc.metadata.generation;
    let before = conditions::find(&conditions_now, status::REACHABLE).cloned();
    conditions::set(&mut conditions_now, condition.clone(), &now());
    let wanted = ClientConfigStatus {
        conditions: Some(conditions_now),
        observed_generation: cc.metadata.generation,
    };
    if wanted == current {
        return Ok(());
    }
    let api =
        Api::<ClientConfig>::namespaced(ctx.client.clone(), &cc.namespace().unwrap_or_default());
    let value = serde_json::to_value(&wanted).unwrap_or_default();
    let written = apply_status(&api, FIELD_MANAGER, &cc.name_any(), &value)
        .await
        .map_err(Error::Status)?;
    ctx.caches.client_configs.wrote(&written.metadata);
    let turned_false = condition.status == ConditionStatus::False
        && before
            .as_ref()
            .is_none_or(|b| b.status != ConditionStatus::False || b.reason != condition.reason);
    if turned_false {
        ctx.events
            .publish(
                &cc.object_ref(&()),
                Severity::Warning,
                condition.reason.as_deref().unwrap_or("Unreachable"),
                "Connect",
                condition.message.clone().unwrap_or_default(),
            )
            .await;
    }
    Ok(())
}
