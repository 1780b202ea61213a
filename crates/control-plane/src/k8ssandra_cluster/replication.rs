//! The replication step: `system_auth`, `system_distributed` and `system_traces` replicate to
//! every initialised datacenter, min(3, size) each, plus `externalDatacenters` at 3; and the
//! user keyspaces `k8ssandra.io/dc-replication` names are replicated to a datacenter added to a
//! live cluster, before its rebuild. The change is made by the data plane of a Ready datacenter,
//! through an `updatereplication` CassandraTask (which reads each keyspace and alters only what
//! differs); the control plane never calls a Management API.
//!
//! - A datacenter is initialised once its CassandraDatacenter was Ready: it stays in the
//!   replication while it restarts, is stopped, or its cluster cannot be reached.
//! - `status.systemReplication` records what was last set: a pass whose wanted replication is
//!   the recorded one creates nothing, so a steady state makes no Management API call at all. A
//!   replication changed by hand is not reverted (as with the CassandraDatacenters' hash).
//! - Nothing changes while a datacenter is being removed: Cassandra 4.1+ refuses to drop the
//!   replicas of a datacenter whose nodes are alive, so it is dropped once it is gone.

use std::{collections::BTreeMap, time::Duration};

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8ssandra_api::k8ssandra::{K8ssandraCluster, rebuild_state};

use super::{
    observe::{Live, Observed, ObservedDatacenter},
    status::datacenter_ready,
    tasks::{self, Phase},
};
use crate::build::cluster_tasks::{KeyspaceFactors, SYSTEM_KEYSPACES, Target, replication_task};

/// Replicas a system keyspace gets in a datacenter at most, and in an external one.
const SYSTEM_REPLICAS: u32 = 3;
/// Wait before a failed replication task is made again.
pub const RETRY_AFTER: Duration = Duration::from_secs(20);

/// What the step did.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ReplicationReport {
    /// The system replication to record: set by a task that completed in this pass.
    pub applied: Option<BTreeMap<String, i32>>,
    /// Datacenters (by name in the spec) whose keyspaces now include them: their rebuild starts.
    pub replicated: Vec<String>,
    /// What is under way.
    pub progressing: Option<String>,
    /// What failed (retried).
    pub degraded: Option<String>,
    /// A problem of the spec (the `dc-replication` annotation).
    pub problem: Option<String>,
    /// Pass again this soon.
    pub requeue: Option<Duration>,
}

/// The replication wanted now: the system keyspaces' factors per Cassandra datacenter (0 drops
/// one), and the user keyspaces of datacenters being added. `None` when nothing is to change.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Wanted {
    /// Keyspace → datacenter → factor.
    pub keyspaces: KeyspaceFactors,
    /// The system replication once it is set (without the dropped datacenters).
    pub system: BTreeMap<String, u32>,
    /// Datacenters (by name in the spec) whose user keyspaces are included.
    pub adding: Vec<String>,
}

/// Reads `k8ssandra.io/dc-replication`: `{datacenter: {keyspace: factor}}`.
///
/// # Errors
/// When it is not that shape, or names a datacenter the spec does not have.
pub fn dc_replication(
    cluster: &K8ssandraCluster,
    datacenters: &[ObservedDatacenter],
) -> Result<BTreeMap<String, BTreeMap<String, u32>>, String> {
    use k8ssandra_api::labels::annotations::DC_REPLICATION;
    let Some(raw) = cluster
        .metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get(DC_REPLICATION))
    else {
        return Ok(BTreeMap::new());
    };
    let parsed: BTreeMap<String, BTreeMap<String, u32>> =
        serde_json::from_str(raw).map_err(|e| {
            format!(
                "annotation {DC_REPLICATION} must be a JSON object of datacenter to an object of \
             keyspace to replication factor (0 or more), as {{\"dc2\": {{\"ks1\": 3}}}}: {e}"
            )
        })?;
    if let Some(unknown) = parsed
        .keys()
        .find(|dc| !datacenters.iter().any(|d| &d.name == *dc))
    {
        return Err(format!(
            "annotation {DC_REPLICATION} names datacenter {unknown}, which the spec does not \
             have"
        ));
    }
    if let Some((dc, keyspace)) = parsed
        .iter()
        .flat_map(|(dc, ks)| ks.keys().map(move |k| (dc, k)))
        .find(|(_, k)| k.is_empty() || k.starts_with("system"))
    {
        return Err(format!(
            "annotation {DC_REPLICATION} names keyspace {keyspace:?} for {dc}: only user \
             keyspaces are listed there (the system ones follow the datacenters)"
        ));
    }
    Ok(parsed)
}

/// The replication wanted (pure). `recorded` is `status.systemReplication`; `adding` the
/// datacenters whose rebuild waits for their keyspaces; `user` the `dc-replication` annotation.
#[must_use]
pub fn wanted(
    cluster: &K8ssandraCluster,
    observed: &Observed,
    recorded: &BTreeMap<String, i32>,
    adding: &[String],
    user: &BTreeMap<String, BTreeMap<String, u32>>,
) -> Option<Wanted> {
    let recorded: BTreeMap<String, u32> = recorded
        .iter()
        .map(|(dc, f)| (dc.clone(), u32::try_from(*f).unwrap_or(0)))
        .collect();
    let mut system = BTreeMap::new();
    for dc in &observed.datacenters {
        let factor = u32::try_from(dc.size.clamp(1, 3)).unwrap_or(1);
        match &dc.live {
            Live::Ours(live) if datacenter_ready(live) => {
                system.insert(dc.cassandra_name.clone(), factor);
            }
            // Initialised: it keeps its replicas, with its factor following its size.
            Live::Ours(_) if recorded.contains_key(&dc.cassandra_name) => {
                system.insert(dc.cassandra_name.clone(), factor);
            }
            // Not seen now (its cluster is away): what was set stays.
            _ => {
                if let Some(f) = recorded.get(&dc.cassandra_name) {
                    system.insert(dc.cassandra_name.clone(), *f);
                }
            }
        }
    }
    for external in cluster.spec.external_datacenters.iter().flatten() {
        system.insert(external.clone(), SYSTEM_REPLICAS);
    }
    let mut keyspace_factors = system.clone();
    for dc in recorded.keys().filter(|dc| !system.contains_key(*dc)) {
        keyspace_factors.insert(dc.clone(), 0);
    }
    let mut keyspaces: KeyspaceFactors = SYSTEM_KEYSPACES
        .iter()
        .map(|k| ((*k).to_owned(), keyspace_factors.clone()))
        .collect();
    let mut included = Vec::new();
    for name in adding {
        let Some(dc) = observed.datacenters.iter().find(|d| &d.name == name) else {
            continue;
        };
        if !system.contains_key(&dc.cassandra_name) {
            continue;
        }
        for (keyspace, factor) in user.get(name).into_iter().flatten() {
            if *factor > 0 {
                keyspaces
                    .entry(keyspace.clone())
                    .or_default()
                    .insert(dc.cassandra_name.clone(), *factor);
            }
        }
        included.push(name.clone());
    }
    (system != recorded || !included.is_empty()).then_some(Wanted {
        keyspaces,
        system,
        adding: included,
    })
}

/// Runs the step. `removing` says a datacenter is being removed (nothing changes meanwhile).
pub async fn reconcile(
    cluster: &K8ssandraCluster,
    observed: &Observed,
    removing: bool,
    now: &Time,
) -> ReplicationReport {
    let mut report = ReplicationReport::default();
    let status = cluster.status.clone().unwrap_or_default();
    let recorded = status.system_replication.clone().unwrap_or_default();
    let adding: Vec<String> = status
        .datacenters
        .iter()
        .flatten()
        .filter(|(_, s)| {
            s.rebuild
                .as_ref()
                .is_some_and(|r| r.state == rebuild_state::REPLICATING)
        })
        .map(|(name, _)| name.clone())
        .collect();
    let user = match dc_replication(cluster, &observed.datacenters) {
        Ok(user) => user,
        Err(problem) => {
            report.problem = Some(problem);
            return report;
        }
    };
    let Some(wanted) = wanted(cluster, observed, &recorded, &adding, &user) else {
        return report;
    };
    if removing {
        report.progressing = Some(
            "the system keyspaces' replication changes once the datacenter being removed is gone"
                .to_owned(),
        );
        return report;
    }
    // A datacenter whose nodes serve: any one, the schema reaches every node.
    let Some((runner, remote)) = observed.datacenters.iter().find_map(|dc| match &dc.live {
        Live::Ours(live) if datacenter_ready(live) && !dc.stopped => {
            dc.reach.usable().map(|remote| (dc, remote))
        }
        _ => None,
    }) else {
        report.progressing = Some(
            "waiting for a Ready datacenter to alter the keyspaces' replication from".to_owned(),
        );
        return report;
    };
    let task = replication_task(
        cluster,
        Target {
            namespace: &runner.namespace,
            datacenter: &runner.name,
        },
        &wanted.keyspaces,
    );
    let name = kube::ResourceExt::name_any(&task);
    let what = describe(&wanted);
    match tasks::phase(remote, &runner.namespace, &name, now) {
        Phase::Absent => match tasks::create(remote, &task).await {
            Ok(()) => {
                report.progressing =
                    Some(format!("{what} (CassandraTask {name} in {})", runner.name));
            }
            Err(error) => {
                report.degraded = Some(format!("{}: {error}", runner.name));
                report.requeue = Some(RETRY_AFTER);
            }
        },
        Phase::Running(_) => {
            report.progressing = Some(format!("{what} (CassandraTask {name} in {})", runner.name));
        }
        Phase::Complete(_) => {
            report.applied = Some(
                wanted
                    .system
                    .iter()
                    .map(|(dc, f)| (dc.clone(), i32::try_from(*f).unwrap_or(i32::MAX)))
                    .collect(),
            );
            report.replicated = wanted.adding;
        }
        Phase::Failed { message, age, .. } => {
            let wait = RETRY_AFTER.saturating_sub(age);
            report.degraded = Some(format!(
                "{}: could not alter the keyspaces' replication (CassandraTask {name}): \
                 {message}; retrying",
                runner.name
            ));
            if wait.is_zero() {
                if let Err(error) = tasks::delete(remote, &runner.namespace, &name).await {
                    report.degraded = Some(format!("{}: {error}", runner.name));
                }
                report.requeue = Some(Duration::from_secs(1));
            } else {
                report.requeue = Some(wait);
            }
        }
    }
    report
}

fn describe(wanted: &Wanted) -> String {
    let system: Vec<String> = wanted
        .system
        .iter()
        .map(|(dc, f)| format!("{dc}: {f}"))
        .collect();
    let mut text = format!(
        "setting the system keyspaces' replication to {{{}}}",
        system.join(", ")
    );
    if !wanted.adding.is_empty() {
        text.push_str(&format!(
            " and replicating the keyspaces of k8ssandra.io/dc-replication to {}",
            wanted.adding.join(", ")
        ));
    }
    text
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use k8ssandra_api::{
        cassandra::{CassandraDatacenter, CassandraDatacenterStatus, ProgressState},
        conditions::{Condition, ConditionStatus},
    };

    use super::*;
    use crate::k8ssandra_cluster::observe::Reach;

    fn datacenter(name: &str, size: i32, ready: bool) -> ObservedDatacenter {
        let mut live: CassandraDatacenter = serde_json::from_value(serde_json::json!({
            "apiVersion": "cassandra.datastax.com/v1beta1",
            "kind": "CassandraDatacenter",
            "metadata": { "name": name, "namespace": "ns", "generation": 1 },
            "spec": { "clusterName": "demo", "serverType": "cassandra",
                      "serverVersion": "4.1.5", "size": size, "storageConfig": {} }
        }))
        .unwrap();
        live.status = Some(CassandraDatacenterStatus {
            conditions: Some(vec![Condition::new(
                "Ready",
                if ready {
                    ConditionStatus::True
                } else {
                    ConditionStatus::False
                },
                "R",
                "m",
            )]),
            cassandra_operator_progress: Some(ProgressState::Ready),
            observed_generation: Some(1),
            ..Default::default()
        });
        ObservedDatacenter {
            name: name.into(),
            namespace: "ns".into(),
            context: String::new(),
            cassandra_name: name.into(),
            size,
            stopped: false,
            reach: Reach::NoClientConfig,
            live: Live::Ours(Arc::new(live)),
        }
    }

    fn observed(datacenters: Vec<ObservedDatacenter>) -> Observed {
        Observed {
            datacenters,
            superuser: None,
            replicated_secret: None,
            strays: Vec::new(),
        }
    }

    fn cluster(annotations: &[(&str, &str)], external: &[&str]) -> K8ssandraCluster {
        let mut k8c = K8ssandraCluster::new("demo", Default::default());
        k8c.metadata.annotations = Some(
            annotations
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
        );
        if !external.is_empty() {
            k8c.spec.external_datacenters =
                Some(external.iter().map(|e| (*e).to_owned()).collect());
        }
        k8c
    }

    fn map(pairs: &[(&str, u32)]) -> BTreeMap<String, u32> {
        pairs.iter().map(|(k, v)| ((*k).to_owned(), *v)).collect()
    }

    fn recorded(pairs: &[(&str, i32)]) -> BTreeMap<String, i32> {
        pairs.iter().map(|(k, v)| ((*k).to_owned(), *v)).collect()
    }

    #[test]
    fn ready_datacenters_join_with_at_most_three_replicas_and_externals_at_three() {
        let seen = observed(vec![datacenter("dc1", 5, true), datacenter("dc2", 1, true)]);
        let wanted = wanted(
            &cluster(&[], &["old"]),
            &seen,
            &BTreeMap::new(),
            &[],
            &BTreeMap::new(),
        )
        .unwrap();
        assert_eq!(wanted.system, map(&[("dc1", 3), ("dc2", 1), ("old", 3)]));
        assert_eq!(wanted.keyspaces.len(), 3);
        assert_eq!(wanted.keyspaces["system_auth"], wanted.system);
    }

    #[test]
    fn nothing_changes_when_the_record_is_what_is_wanted() {
        let seen = observed(vec![
            datacenter("dc1", 3, true),
            datacenter("dc2", 3, false),
        ]);
        let none = wanted(
            &cluster(&[], &[]),
            &seen,
            &recorded(&[("dc1", 3)]),
            &[],
            &BTreeMap::new(),
        );
        assert_eq!(none, None, "a datacenter never Ready yet is not added");
    }

    #[test]
    fn an_initialised_datacenter_keeps_its_replicas_while_away_and_a_removed_one_drops() {
        let mut away = datacenter("dc2", 3, false);
        away.live = Live::Absent;
        let seen = observed(vec![datacenter("dc1", 3, true), away]);
        let wanted = wanted(
            &cluster(&[], &[]),
            &seen,
            &recorded(&[("dc1", 3), ("dc2", 2), ("gone", 3)]),
            &[],
            &BTreeMap::new(),
        )
        .unwrap();
        assert_eq!(wanted.system, map(&[("dc1", 3), ("dc2", 2)]));
        assert_eq!(
            wanted.keyspaces["system_traces"],
            map(&[("dc1", 3), ("dc2", 2), ("gone", 0)])
        );
    }

    #[test]
    fn the_keyspaces_of_an_added_datacenter_come_with_it() {
        let seen = observed(vec![datacenter("dc1", 3, true), datacenter("dc3", 3, true)]);
        let user = BTreeMap::from([("dc3".to_owned(), map(&[("orders", 3), ("skipped", 0)]))]);
        let wanted = wanted(
            &cluster(&[], &[]),
            &seen,
            &recorded(&[("dc1", 3), ("dc3", 3)]),
            &["dc3".to_owned()],
            &user,
        )
        .unwrap();
        assert_eq!(wanted.adding, vec!["dc3".to_owned()]);
        assert_eq!(wanted.keyspaces["orders"], map(&[("dc3", 3)]));
        assert!(!wanted.keyspaces.contains_key("skipped"));
    }

    #[test]
    fn the_dc_replication_annotation_is_checked() {
        let seen = observed(vec![datacenter("dc1", 3, true)]);
        let key = k8ssandra_api::labels::annotations::DC_REPLICATION;
        let ok = dc_replication(
            &cluster(&[(key, r#"{"dc1": {"ks": 2}}"#)], &[]),
            &seen.datacenters,
        );
        assert_eq!(ok.unwrap()["dc1"], map(&[("ks", 2)]));
        for (value, says) in [
            ("[1]", "must be a JSON object"),
            (r#"{"dc1": {"ks": -1}}"#, "must be a JSON object"),
            (r#"{"dc9": {"ks": 1}}"#, "names datacenter dc9"),
            (r#"{"dc1": {"system_auth": 1}}"#, "only user keyspaces"),
        ] {
            let error =
                dc_replication(&cluster(&[(key, value)], &[]), &seen.datacenters).unwrap_err();
            assert!(error.contains(says), "{value}: {error}");
        }
    }
}
