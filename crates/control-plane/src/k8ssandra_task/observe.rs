//! What a pass reads, all from watch caches: the K8ssandraCluster the task names, and for each
//! datacenter it runs on, how its cluster is reached and its CassandraTask there (from the
//! remote cache of the CassandraTasks the control plane made). While a cluster cannot be reached,
//! the task's own record of that datacenter stands in for the live task.

use std::{sync::Arc, time::Duration};

use k8ssandra_api::control::{CassandraTask, CassandraTaskStatus, K8ssandraTask};
use k8ssandra_reconcile::tolerant::Tolerant;
use kube::ResourceExt;

use super::{
    Context,
    plan::{self, DcState},
    validate::{ClusterLookup, Target, cluster_key},
};
use crate::{
    build::k8ssandra_task::{owner_task, task_name},
    k8ssandra_cluster::observe::{Reach, display_context, reach_of},
    remote::RemoteCluster,
};

/// How long a pass waits for a remote cache to show the CassandraTasks it just created.
const CATCH_UP_LIMIT: Duration = Duration::from_secs(3);

/// The K8ssandraCluster the task names, as the cache holds it.
#[must_use]
pub fn cluster(
    ctx: &Context,
    task: &K8ssandraTask,
) -> Option<Arc<Tolerant<k8ssandra_api::k8ssandra::K8ssandraCluster>>> {
    let (namespace, name) = cluster_key(task);
    if name.is_empty() {
        return None;
    }
    ctx.caches.k8ssandra_clusters.get(&namespace, &name)
}

/// The lookup that validation reads.
#[must_use]
pub fn lookup<'a>(
    cluster: Option<&'a Tolerant<k8ssandra_api::k8ssandra::K8ssandraCluster>>,
) -> ClusterLookup<'a> {
    match cluster {
        None => ClusterLookup::Missing,
        Some(Tolerant::Decoded(cluster)) => ClusterLookup::Found(cluster),
        Some(Tolerant::Undecodable { error, .. }) => ClusterLookup::Undecodable(error),
    }
}

/// One datacenter the task runs on.
#[derive(Clone, Debug)]
pub struct ObservedTarget {
    /// Which datacenter.
    pub target: Target,
    /// Its cluster, when it can be used.
    pub remote: Option<Arc<RemoteCluster>>,
    /// Where its CassandraTask stands.
    pub state: DcState,
    /// Its CassandraTask's status: live, or the last copy while the cluster cannot be reached.
    pub status: Option<CassandraTaskStatus>,
}

/// The cluster of `context` when it can be used and its cache of tasks has listed.
///
/// # Errors
/// Why it cannot be used, naming the context.
pub fn usable(ctx: &Context, context: &str) -> Result<Arc<RemoteCluster>, String> {
    let reach = reach_of(&ctx.registry, context);
    match reach.usable() {
        Some(remote) if remote.tasks.is_ready() => Ok(Arc::clone(remote)),
        Some(remote) => Err(format!(
            "{}: connecting to {}",
            display_context(context),
            remote.server
        )),
        None => Err(problem(&reach, context)),
    }
}

fn problem(reach: &Reach, context: &str) -> String {
    reach
        .problem(context)
        .unwrap_or_else(|| format!("{}: cluster not usable", display_context(context)))
}

/// Reads where each datacenter's CassandraTask stands.
pub async fn observe(
    ctx: &Context,
    task: &K8ssandraTask,
    targets: &[Target],
) -> Vec<ObservedTarget> {
    let me = (task.namespace().unwrap_or_default(), task.name_any());
    let recorded = task.status.as_ref().and_then(|s| s.datacenters.as_ref());
    let mut observed = Vec::with_capacity(targets.len());
    for target in targets {
        let last = recorded.and_then(|d| d.get(&target.name)).cloned();
        let (remote, state, status) = match usable(ctx, &target.context) {
            Err(why) => {
                // What was recorded finished stays finished; anything else waits for the cluster.
                let state = match last.as_ref().and_then(plan::finished) {
                    Some(failure) => DcState::Finished { failure },
                    None => DcState::Unreachable(why),
                };
                (None, state, last)
            }
            Ok(remote) => {
                remote.tasks.catch_up(CATCH_UP_LIMIT).await;
                let name = task_name(&me.1, &target.name);
                let (state, status) = match remote.tasks.get(&target.namespace, &name) {
                    None => match last.as_ref().and_then(plan::finished) {
                        // Finished and since deleted by hand: not run again.
                        Some(failure) => (DcState::Finished { failure }, last),
                        None => (DcState::Absent, None),
                    },
                    Some(live) => live_state(&live, &me, &target.namespace, &name),
                };
                (Some(remote), state, status)
            }
        };
        observed.push(ObservedTarget {
            target: target.clone(),
            remote,
            state,
            status,
        });
    }
    observed
}

fn live_state(
    live: &Tolerant<CassandraTask>,
    me: &(String, String),
    namespace: &str,
    name: &str,
) -> (DcState, Option<CassandraTaskStatus>) {
    if owner_task(live.labels()).as_ref() != Some(me) {
        return (
            DcState::Conflict(format!(
                "CassandraTask {namespace}/{name} exists and is not this K8ssandraTask's"
            )),
            None,
        );
    }
    match live {
        Tolerant::Undecodable { error, .. } => (
            DcState::Conflict(format!(
                "CassandraTask {namespace}/{name} cannot be read: {error}"
            )),
            None,
        ),
        Tolerant::Decoded(live) => {
            let status = live.status.clone().unwrap_or_default();
            let state = match plan::finished(&status) {
                Some(failure) => DcState::Finished { failure },
                None => DcState::Running,
            };
            (state, Some(status))
        }
    }
}
