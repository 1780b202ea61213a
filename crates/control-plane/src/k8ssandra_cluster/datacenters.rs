//! The datacenters step: each CassandraDatacenter applied in its cluster (server-side apply),
//! only when its hash differs from the live one.
//!
//! - A datacenter is created only once every datacenter before it in the spec is Ready, once
//!   the superuser Secret is in its namespace, and once its seeds are written: Cassandra needs a
//!   seed datacenter, and every datacenter must start with the same credentials.
//! - Each datacenter is decided on its own, and the writes run side by side: one whose cluster
//!   is unreachable, or whose write fails, holds up none of the others.
//! - An existing datacenter is updated when what it is built from changed (its spec hash). When
//!   only the operator builds it differently, it waits for `k8ssandra.io/autoupdate-spec`
//!   (`once` or `always`), so that an operator upgrade restarts no node (`RequiresUpdate`).
//! - A CassandraDatacenter of another K8ssandraCluster, one made by hand, or one that cannot be
//!   read is never written.

use std::sync::Arc;

use futures::future::join_all;
use k8ssandra_api::{
    cassandra::CassandraDatacenter,
    k8ssandra::K8ssandraCluster,
    labels::{self, annotations},
};
use k8ssandra_reconcile::apply::apply;
use kube::{Api, Resource, ResourceExt};

use super::{
    FIELD_MANAGER,
    observe::{Live, Observed, ObservedDatacenter},
    status::{datacenter_ready, stopped},
};
use crate::{build::DesiredDatacenter, remote::RemoteCluster};

/// What became of one datacenter in this pass.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Its cluster cannot be used: why, naming it.
    Unreachable(String),
    /// Its CassandraDatacenter is not this cluster's to write: why.
    Conflict(String),
    /// Not created yet: this earlier datacenter is not Ready.
    WaitingFor(String),
    /// Not created yet: the superuser Secret is not in its namespace yet.
    WaitingForSecret,
    /// Written in this pass.
    Applied,
    /// The operator would build it differently, and updates wait for `autoupdate-spec`.
    RequiresUpdate,
    /// As the spec says.
    Current,
    /// The write failed: the API server's answer.
    Failed(String),
    /// The seeds of the other datacenters could not be written: why.
    SeedsFailed(String),
}

/// A decision taken before any write.
enum Decision {
    Done(Outcome),
    Write(Arc<RemoteCluster>, bool),
}

/// Decides and writes every datacenter; the outcomes are in the spec's order. `seeds` says, per
/// datacenter, why its seeds could not be written.
pub async fn reconcile(
    cluster: &K8ssandraCluster,
    observed: &Observed,
    desired: &[DesiredDatacenter],
    seeds: &[Option<String>],
) -> Vec<Outcome> {
    let autoupdate = autoupdate(cluster);
    let decisions: Vec<Decision> = desired
        .iter()
        .zip(&observed.datacenters)
        .enumerate()
        .map(|(index, (wanted, seen))| {
            let seeds_failed = seeds.get(index).cloned().flatten();
            match (&seen.live, seeds_failed) {
                (Live::Absent, Some(problem)) => Decision::Done(Outcome::SeedsFailed(problem)),
                _ => decide(
                    cluster,
                    wanted,
                    seen,
                    &observed.datacenters[..index],
                    autoupdate,
                ),
            }
        })
        .collect();
    let writes = decisions
        .into_iter()
        .zip(desired)
        .map(|(decision, wanted)| async move {
            match decision {
                Decision::Done(outcome) => outcome,
                Decision::Write(remote, create) => write(&remote, wanted, create).await,
            }
        });
    // A datacenter that is as it should be but lacks its seeds is not settled.
    join_all(writes)
        .await
        .into_iter()
        .zip(seeds.iter().chain(std::iter::repeat(&None)))
        .map(|(outcome, seeds_failed)| match (outcome, seeds_failed) {
            (Outcome::Applied | Outcome::Current | Outcome::RequiresUpdate, Some(problem)) => {
                Outcome::SeedsFailed(problem.clone())
            }
            (outcome, _) => outcome,
        })
        .collect()
}

/// Whether `k8ssandra.io/autoupdate-spec` lets the operator's own changes through.
fn autoupdate(cluster: &K8ssandraCluster) -> bool {
    cluster
        .annotations()
        .get(annotations::K8SSANDRA_AUTOUPDATE_SPEC)
        .is_some_and(|v| v == "once" || v == "always")
}

fn decide(
    cluster: &K8ssandraCluster,
    wanted: &DesiredDatacenter,
    seen: &ObservedDatacenter,
    earlier: &[ObservedDatacenter],
    autoupdate: bool,
) -> Decision {
    let Some(remote) = seen.reach.usable() else {
        let problem = seen
            .reach
            .problem(&seen.context)
            .unwrap_or_else(|| "cluster not usable".to_owned());
        return Decision::Done(Outcome::Unreachable(problem));
    };
    match &seen.live {
        Live::Foreign(owner) => Decision::Done(Outcome::Conflict(format!(
            "CassandraDatacenter {}/{} belongs to K8ssandraCluster {owner}",
            seen.namespace, seen.name
        ))),
        Live::Undecodable(error) => Decision::Done(Outcome::Conflict(format!(
            "CassandraDatacenter {}/{} cannot be read: {error}",
            seen.namespace, seen.name
        ))),
        Live::Absent => {
            if let Some(waiting) = earlier.iter().find(|dc| !is_ready(dc)) {
                return Decision::Done(Outcome::WaitingFor(waiting.name.clone()));
            }
            if !superuser_copied(cluster, remote, &seen.namespace) {
                return Decision::Done(Outcome::WaitingForSecret);
            }
            Decision::Write(Arc::clone(remote), true)
        }
        Live::Ours(live) => {
            let stamp = |dc: &CassandraDatacenter, key| dc.annotations().get(key).cloned();
            let wanted_dc = &wanted.datacenter;
            if stamp(live, annotations::RESOURCE_HASH)
                == stamp(wanted_dc, annotations::RESOURCE_HASH)
            {
                return Decision::Done(Outcome::Current);
            }
            let spec_changed = match stamp(live, annotations::DATACENTER_SPEC_HASH) {
                Some(was) => Some(was) != stamp(wanted_dc, annotations::DATACENTER_SPEC_HASH),
                // Made by another operator (taken over): upstream's rule, a new generation.
                None => {
                    cluster.metadata.generation
                        != cluster.status.as_ref().and_then(|s| s.observed_generation)
                }
            };
            if spec_changed || autoupdate {
                Decision::Write(Arc::clone(remote), false)
            } else {
                Decision::Done(Outcome::RequiresUpdate)
            }
        }
    }
}

/// Ready, or stopped as asked: a datacenter after it need not wait for it.
fn is_ready(dc: &ObservedDatacenter) -> bool {
    matches!(&dc.live, Live::Ours(live) if datacenter_ready(live) || stopped(live))
}

/// Whether the superuser Secret is in `namespace` of the datacenter's cluster: the source itself
/// (the cluster's own namespace in the control-plane cluster), else a copy. With `external`
/// secrets, the user provides it.
fn superuser_copied(cluster: &K8ssandraCluster, remote: &RemoteCluster, namespace: &str) -> bool {
    use k8ssandra_api::k8ssandra::SecretsProvider;
    if cluster.secrets_provider() == SecretsProvider::External
        || (remote.context.is_empty() && cluster.namespace().as_deref() == Some(namespace))
    {
        return true;
    }
    remote
        .secrets
        .get(namespace, &cluster.superuser_secret_name())
        .is_some()
}

/// Applies one CassandraDatacenter. A creation first makes sure no CassandraDatacenter of that
/// name exists without this cluster's labels (the narrow watch cannot see one made by hand).
async fn write(remote: &RemoteCluster, wanted: &DesiredDatacenter, create: bool) -> Outcome {
    let dc = &wanted.datacenter;
    let (namespace, name) = (dc.namespace().unwrap_or_default(), dc.name_any());
    let api = Api::<CassandraDatacenter>::namespaced(remote.client.clone(), &namespace);
    if create {
        match api.get_metadata_opt(&name).await {
            Ok(Some(existing))
                if existing
                    .labels()
                    .get(labels::K8SSANDRA_CLUSTER_NAME)
                    .is_none() =>
            {
                return Outcome::Conflict(format!(
                    "CassandraDatacenter {namespace}/{name} exists and was not made by a \
                     K8ssandraCluster; delete it, or label it with {} and {} to adopt it",
                    labels::K8SSANDRA_CLUSTER_NAME,
                    labels::K8SSANDRA_CLUSTER_NAMESPACE
                ));
            }
            Ok(_) => {}
            Err(error) => return Outcome::Failed(error.to_string()),
        }
    }
    match apply(&api, FIELD_MANAGER, dc).await {
        Ok(written) => {
            remote.datacenters.wrote(written.meta());
            tracing::info!(context = %remote.context, %namespace, datacenter = %name, create, "CassandraDatacenter applied");
            Outcome::Applied
        }
        Err(error) => {
            tracing::warn!(context = %remote.context, %namespace, datacenter = %name, %error, "CassandraDatacenter not applied");
            Outcome::Failed(error.to_string())
        }
    }
}
