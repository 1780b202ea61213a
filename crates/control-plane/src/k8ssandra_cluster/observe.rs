//! What a pass reads, all from watch caches: for each datacenter of the spec, how its cluster is
//! reached and its CassandraDatacenter there; the superuser Secret and the ReplicatedSecret; and
//! the CassandraDatacenters labelled with this cluster that the spec no longer lists.

use std::sync::Arc;

use k8s_openapi::api::core::v1::Secret;
use k8ssandra_api::{
    cassandra::CassandraDatacenter, k8ssandra::K8ssandraCluster, labels, merge,
    replication::ReplicatedSecret,
};
use k8ssandra_reconcile::tolerant::Tolerant;
use kube::ResourceExt;

use super::Context;
use crate::remote::{Health, Registry, Remote, RemoteCluster};

/// How a datacenter's Kubernetes cluster is reached.
#[derive(Clone, Debug)]
pub enum Reach {
    /// No ClientConfig names the context.
    NoClientConfig,
    /// Its ClientConfig gives no usable client.
    Invalid {
        /// Why, naming the Secret, key or context.
        message: String,
    },
    /// A client and its watches.
    Connected(Arc<RemoteCluster>),
}

impl Reach {
    /// The cluster when its watches have listed and it answers.
    #[must_use]
    pub fn usable(&self) -> Option<&Arc<RemoteCluster>> {
        match self {
            Self::Connected(cluster)
                if cluster.health() == Health::Reachable && cluster.datacenters.is_ready() =>
            {
                Some(cluster)
            }
            _ => None,
        }
    }

    /// The cluster when it answers and its cache of replicated Secrets has listed.
    #[must_use]
    pub fn usable_for_secrets(&self) -> Option<&Arc<RemoteCluster>> {
        match self {
            Self::Connected(cluster)
                if cluster.health() == Health::Reachable && cluster.secrets.is_ready() =>
            {
                Some(cluster)
            }
            _ => None,
        }
    }

    /// Why the cluster cannot be used now, in words that name it; `None` when it can.
    #[must_use]
    pub fn problem(&self, context: &str) -> Option<String> {
        let name = display_context(context);
        match self {
            Self::NoClientConfig => Some(format!("no ClientConfig names context {name}")),
            Self::Invalid { message } => Some(format!("{name}: ClientConfig unusable: {message}")),
            Self::Connected(cluster) => match cluster.health() {
                Health::Reachable if cluster.datacenters.is_ready() => None,
                Health::Reachable | Health::Connecting => {
                    Some(format!("{name}: connecting to {}", cluster.server))
                }
                Health::Unreachable(error) => Some(format!("{name}: cluster unreachable: {error}")),
            },
        }
    }
}

/// The context as reasons name it: the local cluster has an empty one.
#[must_use]
pub fn display_context(context: &str) -> &str {
    if context.is_empty() {
        "the control-plane cluster"
    } else {
        context
    }
}

/// The live CassandraDatacenter of a datacenter.
#[derive(Clone, Debug)]
pub enum Live {
    /// None in the cache.
    Absent,
    /// One made for this K8ssandraCluster.
    Ours(Arc<CassandraDatacenter>),
    /// One that cannot be read.
    Undecodable(String),
    /// One of another K8ssandraCluster (`namespace/name`), which is left alone.
    Foreign(String),
}

/// One datacenter of the spec.
#[derive(Clone, Debug)]
pub struct ObservedDatacenter {
    /// The CassandraDatacenter's name.
    pub name: String,
    /// Its namespace.
    pub namespace: String,
    /// Its context.
    pub context: String,
    /// The datacenter's name in Cassandra (`datacenterName`, else the object's name).
    pub cassandra_name: String,
    /// Nodes the spec asks for.
    pub size: i32,
    /// Whether the spec stops it.
    pub stopped: bool,
    /// How its cluster is reached.
    pub reach: Reach,
    /// What the cluster's cache holds (`Absent` when the cluster cannot be used).
    pub live: Live,
}

/// A CassandraDatacenter labelled with this cluster that the spec does not list: a datacenter
/// being removed.
#[derive(Clone, Debug)]
pub struct Stray {
    /// Its context.
    pub context: String,
    /// Its namespace.
    pub namespace: String,
    /// Its name.
    pub name: String,
    /// Its cluster.
    pub remote: Arc<RemoteCluster>,
    /// The object, when it can be read.
    pub datacenter: Option<Arc<CassandraDatacenter>>,
}

/// Everything a pass decides from.
#[derive(Clone, Debug)]
pub struct Observed {
    /// The datacenters, in the spec's order.
    pub datacenters: Vec<ObservedDatacenter>,
    /// The superuser Secret in the cluster's namespace.
    pub superuser: Option<Arc<Secret>>,
    /// The cluster's ReplicatedSecret (same name and namespace).
    pub replicated_secret: Option<Arc<Tolerant<ReplicatedSecret>>>,
    /// Contexts that hold CassandraDatacenters of this cluster the spec does not list.
    pub strays: Vec<Stray>,
}

/// `namespace/name` of a K8ssandraCluster, as the labels of what it made say.
#[must_use]
pub fn owner_of(labels: &std::collections::BTreeMap<String, String>) -> Option<(String, String)> {
    Some((
        labels.get(labels::K8SSANDRA_CLUSTER_NAMESPACE)?.clone(),
        labels.get(labels::K8SSANDRA_CLUSTER_NAME)?.clone(),
    ))
}

/// Reads what the pass needs.
#[must_use]
pub fn observe(ctx: &Context, cluster: &K8ssandraCluster) -> Observed {
    let namespace = cluster.namespace().unwrap_or_default();
    let me = (namespace.clone(), cluster.name_any());
    let datacenters: Vec<ObservedDatacenter> = merge::resolve_datacenters(cluster)
        .into_iter()
        .map(|dc| {
            let dc_namespace = dc
                .meta
                .namespace
                .clone()
                .filter(|n| !n.is_empty())
                .unwrap_or_else(|| namespace.clone());
            let reach = reach(ctx, &dc.k8s_context);
            let live = match reach.usable() {
                None => Live::Absent,
                Some(remote) => match remote.datacenters.get(&dc_namespace, &dc.meta.name) {
                    None => Live::Absent,
                    Some(object) => live(&object, &me),
                },
            };
            ObservedDatacenter {
                cassandra_name: dc
                    .options
                    .datacenter_name
                    .clone()
                    .filter(|n| !n.is_empty())
                    .unwrap_or_else(|| dc.meta.name.clone()),
                size: dc.size,
                stopped: dc.stopped,
                name: dc.meta.name.clone(),
                namespace: dc_namespace,
                context: dc.k8s_context.clone(),
                reach,
                live,
            }
        })
        .collect();
    let strays = strays(ctx, &me, &datacenters);
    Observed {
        superuser: ctx
            .caches
            .secrets
            .get(&namespace, &cluster.superuser_secret_name()),
        replicated_secret: ctx
            .caches
            .replicated_secrets
            .get(&namespace, &cluster.name_any()),
        datacenters,
        strays,
    }
}

/// What the registry knows of `context`.
#[must_use]
pub fn reach(ctx: &Context, context: &str) -> Reach {
    reach_of(&ctx.registry, context)
}

/// What `registry` knows of `context`.
#[must_use]
pub fn reach_of(registry: &Registry, context: &str) -> Reach {
    match registry.get(context) {
        None => Reach::NoClientConfig,
        Some(Remote::Invalid { message, .. }) => Reach::Invalid { message },
        Some(Remote::Connected(cluster)) => Reach::Connected(cluster),
    }
}

fn live(object: &Tolerant<CassandraDatacenter>, me: &(String, String)) -> Live {
    match owner_of(object.labels()) {
        Some(owner) if owner != *me => Live::Foreign(format!("{}/{}", owner.0, owner.1)),
        _ => match object {
            Tolerant::Decoded(dc) => Live::Ours(Arc::new(dc.clone())),
            Tolerant::Undecodable { error, .. } => Live::Undecodable(error.clone()),
        },
    }
}

/// CassandraDatacenters labelled with this cluster, in any usable context, that no datacenter of
/// the spec is.
fn strays(ctx: &Context, me: &(String, String), spec: &[ObservedDatacenter]) -> Vec<Stray> {
    let mut strays = Vec::new();
    for context in ctx.registry.contexts() {
        let Some(remote) = reach(ctx, &context).usable().cloned() else {
            continue;
        };
        for object in remote.datacenters.state() {
            let (namespace, name) = (object.namespace().unwrap_or_default(), object.name_any());
            let listed = spec
                .iter()
                .any(|d| d.context == context && d.namespace == namespace && d.name == name);
            if !listed && owner_of(object.labels()).as_ref() == Some(me) {
                strays.push(Stray {
                    context: context.clone(),
                    namespace,
                    name,
                    remote: Arc::clone(&remote),
                    datacenter: object.decoded().ok().map(|dc| Arc::new(dc.clone())),
                });
            }
        }
    }
    strays
}
