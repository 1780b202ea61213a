//! The cluster-wide Cassandra operations of a pass, after the datacenters are written: the
//! removal of datacenters the spec no longer lists ([`decommission`]), the system and added
//! datacenters' keyspace replication ([`replication`]), and the rebuild of datacenters added to
//! a live cluster ([`rebuild`]). Each is a CassandraTask run by the data plane of a
//! datacenter's own cluster; what they report goes into the status.

use std::{collections::BTreeMap, time::Duration};

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8ssandra_api::{
    cassandra::CassandraDatacenterStatus,
    k8ssandra::{DatacenterRebuildStatus, K8ssandraCluster, rebuild_state},
};

use super::{
    decommission,
    observe::{Live, Observed, display_context, reach_of},
    rebuild, replication,
    status::datacenter_ready,
};
use crate::remote::Registry;

/// A datacenter being removed, as its status entry records it.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Removal {
    /// Its context.
    pub context: String,
    /// `decommissionProgress`.
    pub progress: String,
    /// Its CassandraDatacenter's status, while it exists.
    pub cassandra: Option<CassandraDatacenterStatus>,
}

/// What the operations of a pass report.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Operations {
    /// The system replication to record, when it changed.
    pub system_replication: Option<BTreeMap<String, i32>>,
    /// The rebuild entry of each datacenter of the spec that has one after this pass.
    pub rebuilds: BTreeMap<String, DatacenterRebuildStatus>,
    /// Datacenters being removed, by name.
    pub removals: BTreeMap<String, Removal>,
    /// What is under way.
    pub progressing: Vec<String>,
    /// What failed (retried).
    pub degraded: Vec<String>,
    /// What is refused.
    pub problems: Vec<String>,
    /// Pass again this soon.
    pub requeue: Option<Duration>,
}

impl Operations {
    fn requeue_within(&mut self, after: Option<Duration>) {
        if let Some(after) = after {
            self.requeue = Some(self.requeue.map_or(after, |r| r.min(after)));
        }
    }
}

/// Datacenters of the spec to mark for a rebuild before their CassandraDatacenter is created:
/// new to a cluster that was initialised already, and not initialised themselves.
#[must_use]
pub fn newcomers(cluster: &K8ssandraCluster, observed: &Observed) -> Vec<String> {
    let status = cluster.status.clone().unwrap_or_default();
    let initialised = status
        .conditions
        .as_deref()
        .and_then(|c| {
            k8ssandra_api::conditions::find(
                c,
                k8ssandra_api::k8ssandra::condition::CASSANDRA_INITIALIZED,
            )
        })
        .is_some_and(k8ssandra_api::conditions::Condition::is_true);
    if !initialised {
        return Vec::new();
    }
    let recorded = status.system_replication.unwrap_or_default();
    observed
        .datacenters
        .iter()
        .filter(|dc| matches!(dc.live, Live::Absent) && dc.reach.usable().is_some())
        .filter(|dc| !recorded.contains_key(&dc.cassandra_name))
        .filter(|dc| {
            status
                .datacenters
                .as_ref()
                .and_then(|d| d.get(&dc.name))
                .is_none_or(|entry| entry.rebuild.is_none())
        })
        .map(|dc| dc.name.clone())
        .collect()
}

/// Runs the operations.
pub async fn reconcile(
    cluster: &K8ssandraCluster,
    observed: &Observed,
    registry: &Registry,
    now: &Time,
) -> Operations {
    let mut ops = Operations::default();
    let status = cluster.status.clone().unwrap_or_default();
    let entries = status.datacenters.clone().unwrap_or_default();

    // Removals: every CassandraDatacenter of this cluster the spec does not list, and every
    // status entry of one whose cluster cannot be looked at now.
    for stray in &observed.strays {
        let recorded = entries
            .get(&stray.name)
            .and_then(|e| e.decommission_progress.as_deref());
        let report = decommission::reconcile(cluster, stray, recorded, now).await;
        ops.progressing.extend(report.progressing);
        ops.degraded.extend(report.degraded);
        ops.problems.extend(report.problem);
        ops.requeue_within(report.requeue);
        ops.removals.insert(
            stray.name.clone(),
            Removal {
                context: stray.context.clone(),
                progress: report.progress,
                cassandra: stray.datacenter.as_ref().and_then(|dc| dc.status.clone()),
            },
        );
    }
    for (name, entry) in &entries {
        let in_spec = observed.datacenters.iter().any(|d| &d.name == name);
        if in_spec || ops.removals.contains_key(name) {
            continue;
        }
        let context = entry.context_name.clone().unwrap_or_default();
        if reach_of(registry, &context).usable().is_some() {
            // Its cluster answers and holds no CassandraDatacenter of it: it is gone.
            continue;
        }
        ops.degraded.push(format!(
            "{name} is being removed, but {}",
            reach_of(registry, &context)
                .problem(&context)
                .unwrap_or_else(|| format!("{} cannot be used", display_context(&context)))
        ));
        ops.removals.insert(
            name.clone(),
            Removal {
                context,
                progress: entry.decommission_progress.clone().unwrap_or_default(),
                cassandra: entry.cassandra.clone(),
            },
        );
    }

    let replication =
        replication::reconcile(cluster, observed, !ops.removals.is_empty(), now).await;
    ops.progressing.extend(replication.progressing);
    ops.degraded.extend(replication.degraded);
    ops.problems.extend(replication.problem);
    ops.requeue_within(replication.requeue);
    ops.system_replication = replication.applied;

    for dc in &observed.datacenters {
        let Some(entry) = entries.get(&dc.name).and_then(|e| e.rebuild.clone()) else {
            continue;
        };
        if replication.replicated.contains(&dc.name) {
            match rebuild::source(cluster, observed, dc) {
                Ok(source) => {
                    let first = rebuild::first_attempt(dc, source);
                    ops.progressing.push(format!(
                        "{}: its keyspaces include it; rebuilding from {}",
                        dc.name,
                        first.source_datacenter.as_deref().unwrap_or_default()
                    ));
                    ops.rebuilds.insert(dc.name.clone(), first);
                }
                Err(problem) => {
                    ops.problems.push(problem);
                    ops.rebuilds.insert(dc.name.clone(), entry);
                }
            }
            continue;
        }
        if entry.state == rebuild_state::REPLICATING {
            let ready = matches!(&dc.live, Live::Ours(live) if datacenter_ready(live));
            if !ready {
                ops.progressing.push(format!(
                    "{}: joins the live cluster; once Ready its keyspaces include it and it \
                     is rebuilt",
                    dc.name
                ));
            }
            ops.rebuilds.insert(dc.name.clone(), entry);
            continue;
        }
        let report = rebuild::reconcile(cluster, dc, &entry, now).await;
        ops.progressing.extend(report.progressing);
        ops.degraded.extend(report.degraded);
        ops.problems.extend(report.problem);
        ops.requeue_within(report.requeue);
        if let Some(entry) = report.entry {
            ops.rebuilds.insert(dc.name.clone(), entry);
        }
    }
    ops
}
