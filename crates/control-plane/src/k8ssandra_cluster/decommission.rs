//! The decommission step: a datacenter removed from the spec leaves the Cassandra cluster.
//!
//! 1. `UpdatingReplication`: a `checkdecommission` CassandraTask in the datacenter lists the user
//!    keyspaces that still replicate to it. While there are some, the removal is refused
//!    (`Valid=False` naming each, and a Warning Event), nothing is touched, and the check is made
//!    again every 20 s, so that it goes on once the user altered them.
//! 2. `Decommissioning`: the CassandraDatacenter is annotated
//!    `cassandra.datastax.com/decommission-on-delete` and deleted; its data plane decommissions
//!    the nodes one by one, then deletes it.
//! 3. Once it is gone its status entry goes, and the replication step drops it from the system
//!    keyspaces (which Cassandra allows only once its nodes left).
//!
//! A datacenter whose cluster cannot be reached is reported and waited for, never forgotten.

use std::time::Duration;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8ssandra_api::{
    cassandra::CassandraDatacenter,
    k8ssandra::{K8ssandraCluster, decommission_progress},
    labels::annotations,
};
use kube::{
    Api,
    api::{DeleteParams, Patch, PatchParams},
};

use super::{
    observe::{Stray, display_context},
    tasks::{self, Phase},
};
use crate::build::cluster_tasks::{Target, decommission_check_name, decommission_check_task};

/// Wait before a refused check is made again.
pub const RECHECK_AFTER: Duration = Duration::from_secs(20);

/// What the step decided for one datacenter being removed.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct RemovalReport {
    /// Its `decommissionProgress`.
    pub progress: String,
    /// What is under way.
    pub progressing: Option<String>,
    /// What failed.
    pub degraded: Option<String>,
    /// Why the removal is refused.
    pub problem: Option<String>,
    /// Pass again this soon.
    pub requeue: Option<Duration>,
}

/// Advances the removal of one datacenter. `progress` is its recorded `decommissionProgress`.
pub async fn reconcile(
    cluster: &K8ssandraCluster,
    stray: &Stray,
    progress: Option<&str>,
    now: &Time,
) -> RemovalReport {
    let name = &stray.name;
    let being_deleted = stray
        .datacenter
        .as_ref()
        .is_some_and(|dc| dc.metadata.deletion_timestamp.is_some());
    if being_deleted || progress == Some(decommission_progress::DECOMMISSIONING) {
        return decommissioning(stray, being_deleted).await;
    }
    let mut report = RemovalReport {
        progress: decommission_progress::UPDATING_REPLICATION.to_owned(),
        ..RemovalReport::default()
    };
    let generation = cluster.metadata.generation.unwrap_or(0);
    let check = decommission_check_name(name, generation);
    let remote = &stray.remote;
    match tasks::phase(remote, &stray.namespace, &check, now) {
        Phase::Absent => {
            let task = decommission_check_task(
                cluster,
                Target {
                    namespace: &stray.namespace,
                    datacenter: name,
                },
                generation,
            );
            if let Err(error) = tasks::create(remote, &task).await {
                report.degraded = Some(format!("{name}: {error}"));
                report.requeue = Some(RECHECK_AFTER);
            }
            report.progressing = Some(checking(name));
        }
        Phase::Running(_) => report.progressing = Some(checking(name)),
        Phase::Failed { message, age, .. } => {
            report.problem = Some(format!(
                "datacenter {name} cannot be removed yet: {message}"
            ));
            let wait = RECHECK_AFTER.saturating_sub(age);
            if wait.is_zero() {
                if let Err(error) = tasks::delete(remote, &stray.namespace, &check).await {
                    report.degraded = Some(format!("{name}: {error}"));
                }
                report.requeue = Some(Duration::from_secs(1));
            } else {
                report.requeue = Some(wait);
            }
        }
        Phase::Complete(_) => {
            return match delete_datacenter(stray).await {
                Ok(()) => RemovalReport {
                    progress: decommission_progress::DECOMMISSIONING.to_owned(),
                    progressing: Some(format!("{name}: its nodes are being decommissioned")),
                    ..RemovalReport::default()
                },
                Err(error) => {
                    report.degraded = Some(format!("{name}: {error}"));
                    report.requeue = Some(RECHECK_AFTER);
                    report
                }
            };
        }
    }
    report
}

fn checking(name: &str) -> String {
    format!("{name}: checking that no user keyspace replicates to it before it is decommissioned")
}

/// Follows a datacenter whose deletion began (and begins it again if the delete was lost).
async fn decommissioning(stray: &Stray, being_deleted: bool) -> RemovalReport {
    let name = &stray.name;
    let mut report = RemovalReport {
        progress: decommission_progress::DECOMMISSIONING.to_owned(),
        ..RemovalReport::default()
    };
    if !being_deleted && let Err(error) = delete_datacenter(stray).await {
        report.degraded = Some(format!("{name}: {error}"));
        report.requeue = Some(RECHECK_AFTER);
        return report;
    }
    let status = stray.datacenter.as_ref().and_then(|dc| dc.status.as_ref());
    let left = status
        .and_then(|s| s.node_statuses.as_ref())
        .map_or(0, std::collections::BTreeMap::len);
    let refused = status
        .and_then(|s| s.conditions.as_deref())
        .and_then(|c| {
            k8ssandra_api::conditions::find(c, k8ssandra_api::cassandra::condition::VALID)
        })
        .filter(|c| c.status == k8ssandra_api::conditions::ConditionStatus::False)
        .and_then(|c| c.message.clone());
    match refused {
        Some(why) => {
            report.degraded = Some(format!(
                "{name} in {}: its decommission is refused by the data plane: {why}",
                display_context(&stray.context)
            ));
        }
        None => {
            report.progressing = Some(format!(
                "{name}: decommissioning, {left} node{} left",
                if left == 1 { "" } else { "s" }
            ));
        }
    }
    report
}

/// Asks for the nodes to be decommissioned, then deletes the CassandraDatacenter.
async fn delete_datacenter(stray: &Stray) -> Result<(), String> {
    let api = Api::<CassandraDatacenter>::namespaced(stray.remote.client.clone(), &stray.namespace);
    let patch = serde_json::json!({
        "metadata": { "annotations": { annotations::DECOMMISSION_ON_DELETE: "true" } }
    });
    api.patch_metadata(&stray.name, &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .map_err(|e| format!("could not annotate CassandraDatacenter {}: {e}", stray.name))?;
    k8ssandra_reconcile::apply::delete_if_present(&api, &stray.name, &DeleteParams::default())
        .await
        .map_err(|e| format!("could not delete CassandraDatacenter {}: {e}", stray.name))?;
    tracing::info!(context = %stray.context, namespace = %stray.namespace, datacenter = %stray.name, "CassandraDatacenter deleted: its nodes are decommissioned");
    Ok(())
}
