//! The ReplicatedSecret controller: copies the Secrets a ReplicatedSecret selects into every
//! target namespace of every target cluster, keeps the copies in step with the sources, reports
//! one `Replication` condition per target cluster, and removes its copies when the
//! ReplicatedSecret goes (its finalizer `replicatedresource.k8ssandra.io/finalizer`, upstream's),
//! except those of a source marked `replicatedresource.k8ssandra.io/orphan: "true"`.
//!
//! Sources are read from the cache of Secrets marked watched; a selector that matches none there
//! lists its namespace once (per generation) and marks what it finds, so that their changes are
//! seen from then on. Copies are read from each target cluster's cache of copies. A Secret in a
//! target that is not a copy is never overwritten, nor is an immutable copy, nor the source itself.

pub mod copy;

use std::{
    collections::{BTreeMap, HashSet},
    sync::{Arc, Mutex},
    time::Duration,
};

use futures::{StreamExt, stream};
use k8s_openapi::api::core::v1::Secret;
use k8ssandra_api::{
    conditions::ConditionStatus,
    labels::{self, annotations},
    replication::{ReplicatedSecret, ReplicatedSecretStatus, ReplicationCondition},
};
use k8ssandra_reconcile::{
    apply::{apply, apply_status, delete_if_present},
    events::EventPublisher,
    finalizer, hash,
    metrics::ReconcileMetrics,
    scope::now,
    tolerant::{Tolerant, UndecodableReporter},
};
use kube::{
    Api, Client, ResourceExt,
    api::{DeleteParams, ListParams, Patch, PatchParams},
    runtime::{Controller, controller::Action as Requeue, reflector::ObjectRef},
};
use tokio::sync::broadcast;

use crate::{
    caches::{Caches, Feeds, NotReady},
    k8ssandra_cluster::observe::{Reach, display_context, reach_of},
    remote::{Registry, RemoteChange, RemoteCluster, RemoteKind},
};

/// Field manager of every write of this controller.
pub const FIELD_MANAGER: &str = "k8ssandra-control-plane-replication";
/// Name of this controller in metrics.
pub const CONTROLLER: &str = "replicatedsecret";
/// The finalizer on every ReplicatedSecret.
pub const FINALIZER: &str = "replicatedresource.k8ssandra.io/finalizer";
/// The condition type.
pub const REPLICATION: &str = "Replication";
/// Pass again this soon while a target is not done.
const RETRY: Duration = Duration::from_secs(15);

/// What every pass shares.
pub struct Context {
    /// Client of the control plane's cluster.
    pub client: Client,
    /// The local watch caches.
    pub caches: Caches,
    /// The remote clusters.
    pub registry: Registry,
    /// Reports ReplicatedSecrets that cannot be read.
    pub undecodable: UndecodableReporter,
    /// Reconcile metrics.
    pub metrics: ReconcileMetrics,
    /// Events.
    pub events: EventPublisher,
    /// `(uid, generation)` of the ReplicatedSecrets whose selector was listed once.
    listed: Mutex<HashSet<(String, i64)>>,
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
            listed: Mutex::default(),
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
    /// The API server of the control plane refused.
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

type Ref = ObjectRef<Tolerant<ReplicatedSecret>>;

/// The controller; it runs until the `feeds` end.
pub fn run(ctx: Arc<Context>, feeds: &mut Feeds) -> impl Future<Output = ()> + use<> {
    let store = ctx.caches.replicated_secrets.store();
    let by_source = store.clone();
    let by_context = store.clone();
    let changes = triggers(ctx.registry.object_changes(), ctx.registry.changes());
    Controller::for_stream(feeds.replicated_secrets.subscribe(), store)
        .watches_stream(feeds.secrets.subscribe(), move |secret: Secret| {
            by_source
                .state()
                .iter()
                .filter(|r| matches!(r.as_ref(), Tolerant::Decoded(r) if copy::selects(r, &secret)))
                .map(|r| ObjectRef::from_obj(r.as_ref()))
                .collect::<Vec<_>>()
        })
        .reconcile_on(changes.flat_map(move |context: Option<String>| {
            let refs: Vec<Ref> = by_context
                .state()
                .iter()
                .filter(|r| match (r.as_ref(), context.as_deref()) {
                    (Tolerant::Decoded(r), Some(context)) => targets(r).any(|t| t.0 == context),
                    _ => true,
                })
                .map(|r| ObjectRef::from_obj(r.as_ref()))
                .collect();
            stream::iter(refs)
        }))
        .run(reconcile, error_policy, Arc::clone(&ctx))
        .for_each(|result| async move {
            if let Err(error) = result {
                tracing::debug!(%error, "reconcile");
            }
        })
}

/// The contexts whose copies or health changed (`None`: changes were missed).
fn triggers(
    objects: broadcast::Receiver<RemoteChange>,
    contexts: broadcast::Receiver<String>,
) -> impl futures::Stream<Item = Option<String>> + Send + 'static {
    let objects = stream::unfold(objects, |mut receiver| async move {
        loop {
            return match receiver.recv().await {
                Ok(change) if change.kind == RemoteKind::Secret => {
                    Some((Some(change.context), receiver))
                }
                Ok(_) => continue,
                Err(broadcast::error::RecvError::Lagged(_)) => Some((None, receiver)),
                Err(broadcast::error::RecvError::Closed) => None,
            };
        }
    });
    let contexts = stream::unfold(contexts, |mut receiver| async move {
        match receiver.recv().await {
            Ok(context) => Some((Some(context), receiver)),
            Err(broadcast::error::RecvError::Lagged(_)) => Some((None, receiver)),
            Err(broadcast::error::RecvError::Closed) => None,
        }
    });
    stream::select(objects, contexts)
}

/// Each target as (context, namespace), the ReplicatedSecret's namespace where it names none.
fn targets(
    replicated: &ReplicatedSecret,
) -> impl Iterator<
    Item = (
        String,
        String,
        &k8ssandra_api::replication::ReplicationTarget,
    ),
> {
    let own = replicated.namespace().unwrap_or_default();
    replicated
        .spec
        .replication_targets
        .iter()
        .flatten()
        .map(move |t| {
            (
                t.k8s_context_name.clone().unwrap_or_default(),
                t.namespace
                    .clone()
                    .filter(|n| !n.is_empty())
                    .unwrap_or_else(|| own.clone()),
                t,
            )
        })
}

fn error_policy(
    replicated: Arc<Tolerant<ReplicatedSecret>>,
    error: &Error,
    _ctx: Arc<Context>,
) -> Requeue {
    tracing::warn!(namespace = %replicated.namespace().unwrap_or_default(), replicatedsecret = %replicated.name_any(), %error, "pass failed");
    Requeue::requeue(RETRY)
}

/// One pass over a ReplicatedSecret.
///
/// # Errors
/// When the caches are not ready or the control plane's API server refuses a write.
pub async fn reconcile(
    object: Arc<Tolerant<ReplicatedSecret>>,
    ctx: Arc<Context>,
) -> Result<Requeue, Error> {
    ctx.caches.settle().await?;
    let Some(object) = ctx.caches.replicated_secrets.current(&object) else {
        return Ok(Requeue::await_change());
    };
    let Some(replicated) = ctx
        .undecodable
        .decoded_or_report(&object)
        .await
        .map_err(|source| Error::Kube {
            what: "report an undecodable ReplicatedSecret".into(),
            source,
        })?
    else {
        return Ok(Requeue::await_change());
    };
    ctx.metrics
        .measure(
            CONTROLLER,
            Error::kind,
            Some(k8ssandra_reconcile::metrics::PanicReport {
                events: &ctx.events,
                object: kube::Resource::object_ref(replicated, &()),
            }),
            pass(replicated, &ctx),
        )
        .await
}

async fn pass(replicated: &ReplicatedSecret, ctx: &Context) -> Result<Requeue, Error> {
    let deleting = replicated.metadata.deletion_timestamp.is_some();
    if !deleting && patch_finalizer(ctx, replicated, true).await? {
        return Ok(Requeue::await_change());
    }
    let sources = sources(ctx, replicated).await?;
    let mut by_context: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for (context, namespace, target) in targets(replicated) {
        by_context.entry(context.clone()).or_default();
        let problem = match reach_of(&ctx.registry, &context) {
            reached @ (Reach::NoClientConfig | Reach::Invalid { .. }) => reached.problem(&context),
            reached => match reached.usable_for_secrets() {
                None => reached.problem(&context),
                Some(remote) if deleting => remove_copies(remote, &namespace, &sources, target)
                    .await
                    .err(),
                Some(remote) => {
                    if context.is_empty()
                        && namespace == replicated.namespace().unwrap_or_default()
                        && target
                            .target_prefix
                            .as_deref()
                            .unwrap_or_default()
                            .is_empty()
                    {
                        Some(format!(
                            "namespace {namespace} of {} is the sources' own: the copies would replace them",
                            display_context(&context)
                        ))
                    } else {
                        copy_all(remote, &namespace, &sources, target).await.err()
                    }
                }
            },
        };
        if let Some(problem) = problem {
            by_context.entry(context).or_default().push(problem);
        }
    }
    if !deleting && let Err(problem) = prune_copies(ctx, &sources).await {
        by_context.entry(problem.0).or_default().push(problem.1);
    }
    let done = by_context.values().all(Vec::is_empty);
    if deleting && done {
        patch_finalizer(ctx, replicated, false).await?;
        return Ok(Requeue::await_change());
    }
    write_status(ctx, replicated, &by_context).await?;
    Ok(if done {
        Requeue::await_change()
    } else {
        Requeue::requeue(RETRY)
    })
}

/// The Secrets selected, from the cache; a selector that finds none there lists its namespace
/// once per generation and marks what matches as watched.
async fn sources(ctx: &Context, replicated: &ReplicatedSecret) -> Result<Vec<Arc<Secret>>, Error> {
    let namespace = replicated.namespace().unwrap_or_default();
    let cached: Vec<Arc<Secret>> = ctx
        .caches
        .secrets
        .state()
        .into_iter()
        .filter(|s| copy::selects(replicated, s))
        .collect();
    let key = (
        replicated.uid().unwrap_or_default(),
        replicated.metadata.generation.unwrap_or_default(),
    );
    let first_look = ctx.listed.lock().is_ok_and(|mut listed| listed.insert(key));
    if !cached.is_empty() || !first_look {
        return Ok(cached);
    }
    let api = Api::<Secret>::namespaced(ctx.client.clone(), &namespace);
    let mut params = ListParams::default();
    if let Some(selector) = &replicated.spec.selector {
        params = params.labels(&copy::selector_string(selector));
    }
    let listed = api
        .list_metadata(&params)
        .await
        .map_err(|source| Error::Kube {
            what: format!("list the Secrets of namespace {namespace}"),
            source,
        })?;
    let mark = serde_json::json!({ "metadata": { "labels": { labels::WATCHED: "true" } } });
    for meta in listed.items {
        let probe = Secret {
            metadata: meta.metadata.clone(),
            ..Secret::default()
        };
        if !copy::selects(replicated, &probe) {
            continue;
        }
        let name = meta.name_any();
        let written = api
            .patch_metadata(&name, &PatchParams::default(), &Patch::Merge(&mark))
            .await
            .map_err(|source| Error::Kube {
                what: format!("mark Secret {name} watched"),
                source,
            })?;
        ctx.caches.secrets.wrote(&written.metadata);
    }
    // The marked Secrets reach the cache and trigger the next pass.
    Ok(cached)
}

/// Copies every source into `namespace`; the first problem, naming the Secret and the error.
async fn copy_all(
    remote: &RemoteCluster,
    namespace: &str,
    sources: &[Arc<Secret>],
    target: &k8ssandra_api::replication::ReplicationTarget,
) -> Result<(), String> {
    let api = Api::<Secret>::namespaced(remote.client.clone(), namespace);
    let at = |name: &str| {
        format!(
            "Secret {namespace}/{name} in {}",
            display_context(&remote.context)
        )
    };
    for source in sources {
        let wanted = copy::copy(source, target, namespace).map_err(|e| e.to_string())?;
        let name = wanted.name_any();
        let live = remote.secrets.get(namespace, &name);
        let stamp =
            |s: &Secret| hash::stamped_hash(s, annotations::RESOURCE_HASH).map(str::to_owned);
        match &live {
            Some(live) if stamp(live) == stamp(&wanted) => continue,
            Some(live) if live.immutable == Some(true) => {
                return Err(format!(
                    "{} is immutable: delete it to let the new content in",
                    at(&name)
                ));
            }
            Some(_) => {}
            None => match api.get_metadata_opt(&name).await {
                Ok(Some(existing))
                    if !existing
                        .labels()
                        .contains_key(labels::REPLICATED_SECRET_NAME) =>
                {
                    return Err(format!(
                        "{} exists and is not a copy: it is left as it is",
                        at(&name)
                    ));
                }
                Ok(_) => {}
                Err(error) => return Err(format!("{}: {error}", at(&name))),
            },
        }
        let written = apply(&api, FIELD_MANAGER, &wanted)
            .await
            .map_err(|error| format!("{}: {error}", at(&name)))?;
        remote.secrets.wrote(&written.metadata);
        tracing::info!(context = %remote.context, %namespace, secret = %name, "Secret replicated");
    }
    Ok(())
}

/// Deletes the copies of `sources` that no ReplicatedSecret targets any more (a datacenter
/// removed from its cluster takes its cluster out of the targets), except an orphan's. A copy
/// another ReplicatedSecret of the same source still targets stays. The error names the
/// context and what failed.
async fn prune_copies(ctx: &Context, sources: &[Arc<Secret>]) -> Result<(), (String, String)> {
    let labels_of: BTreeMap<String, &Arc<Secret>> = sources
        .iter()
        .filter(|s| {
            s.annotations()
                .get(annotations::REPLICATED_ORPHAN)
                .is_none_or(|v| v != "true")
        })
        .map(|s| (copy::source_label(s), s))
        .collect();
    if labels_of.is_empty() {
        return Ok(());
    }
    let mut wanted: HashSet<(String, String, String)> = HashSet::new();
    for other in ctx.caches.replicated_secrets.state() {
        let Ok(other) = other.decoded() else {
            // One that cannot be read may target anything: nothing is pruned.
            return Ok(());
        };
        for (context, namespace, target) in targets(other) {
            for source in sources.iter().filter(|s| copy::selects(other, s)) {
                let name = format!(
                    "{}{}",
                    target.target_prefix.as_deref().unwrap_or_default(),
                    source.name_any()
                );
                wanted.insert((context.clone(), namespace.clone(), name));
            }
        }
    }
    for context in ctx.registry.contexts() {
        let Some(remote) = reach_of(&ctx.registry, &context)
            .usable_for_secrets()
            .cloned()
        else {
            continue;
        };
        for copy in remote.secrets.state() {
            let Some(label) = copy.labels().get(labels::REPLICATED_SECRET_NAME) else {
                continue;
            };
            if !labels_of.contains_key(label) {
                continue;
            }
            let (namespace, name) = (copy.namespace().unwrap_or_default(), copy.name_any());
            if wanted.contains(&(context.clone(), namespace.clone(), name.clone())) {
                continue;
            }
            let api = Api::<Secret>::namespaced(remote.client.clone(), &namespace);
            delete_if_present(&api, &name, &DeleteParams::default())
                .await
                .map_err(|error| {
                    (
                        context.clone(),
                        format!(
                            "Secret {namespace}/{name} in {}: {error}",
                            display_context(&context)
                        ),
                    )
                })?;
            tracing::info!(%context, %namespace, secret = %name, "replicated Secret no longer targeted: removed");
        }
    }
    Ok(())
}

/// Deletes the copies of every source in `namespace`, except an orphan's.
async fn remove_copies(
    remote: &RemoteCluster,
    namespace: &str,
    sources: &[Arc<Secret>],
    target: &k8ssandra_api::replication::ReplicationTarget,
) -> Result<(), String> {
    let api = Api::<Secret>::namespaced(remote.client.clone(), namespace);
    for source in sources {
        if source
            .annotations()
            .get(annotations::REPLICATED_ORPHAN)
            .is_some_and(|v| v == "true")
        {
            continue;
        }
        let name = format!(
            "{}{}",
            target.target_prefix.as_deref().unwrap_or_default(),
            source.name_any()
        );
        let Some(live) = remote.secrets.get(namespace, &name) else {
            continue;
        };
        if live.labels().get(labels::REPLICATED_SECRET_NAME) != Some(&copy::source_label(source)) {
            continue;
        }
        delete_if_present(&api, &name, &DeleteParams::default())
            .await
            .map_err(|error| {
                format!(
                    "Secret {namespace}/{name} in {}: {error}",
                    display_context(&remote.context)
                )
            })?;
        tracing::info!(context = %remote.context, %namespace, secret = %name, "replicated Secret removed");
    }
    Ok(())
}

async fn patch_finalizer(
    ctx: &Context,
    replicated: &ReplicatedSecret,
    add: bool,
) -> Result<bool, Error> {
    let Some(patch) = finalizer::finalizer_patch(&replicated.metadata, FINALIZER, add) else {
        return Ok(false);
    };
    let api = Api::<ReplicatedSecret>::namespaced(
        ctx.client.clone(),
        &replicated.namespace().unwrap_or_default(),
    );
    let written = api
        .patch_metadata(
            &replicated.name_any(),
            &PatchParams::default(),
            &Patch::Merge(&patch),
        )
        .await
        .map_err(|source| Error::Kube {
            what: "write the finalizer".into(),
            source,
        })?;
    ctx.caches.replicated_secrets.wrote(&written.metadata);
    Ok(true)
}

/// One `Replication` condition per target cluster, written when it changed.
async fn write_status(
    ctx: &Context,
    replicated: &ReplicatedSecret,
    problems: &BTreeMap<String, Vec<String>>,
) -> Result<(), Error> {
    let current = replicated.status.clone().unwrap_or_default();
    let before = current.conditions.clone().unwrap_or_default();
    let conditions: Vec<ReplicationCondition> = problems
        .iter()
        .map(|(cluster, problems)| {
            let status = if problems.is_empty() {
                ConditionStatus::True
            } else {
                ConditionStatus::False
            };
            let message = (!problems.is_empty()).then(|| problems.join("; "));
            let was = before
                .iter()
                .find(|c| c.cluster == *cluster && c.type_ == REPLICATION);
            ReplicationCondition {
                cluster: cluster.clone(),
                type_: REPLICATION.to_owned(),
                status,
                last_transition_time: match was {
                    Some(was) if was.status == status => was.last_transition_time.clone(),
                    _ => Some(now()),
                },
                message,
            }
        })
        .collect();
    let wanted = ReplicatedSecretStatus {
        conditions: Some(conditions),
    };
    if wanted == current {
        return Ok(());
    }
    let api = Api::<ReplicatedSecret>::namespaced(
        ctx.client.clone(),
        &replicated.namespace().unwrap_or_default(),
    );
    let value = serde_json::to_value(&wanted).unwrap_or_default();
    let written = apply_status(&api, FIELD_MANAGER, &replicated.name_any(), &value)
        .await
        .map_err(|source| Error::Kube {
            what: "write the status".into(),
            source,
        })?;
    ctx.caches.replicated_secrets.wrote(&written.metadata);
    Ok(())
}
