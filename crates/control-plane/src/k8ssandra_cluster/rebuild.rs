//! The rebuild step: a datacenter added to a live cluster streams its data in from another one.
//!
//! - The datacenter is marked (`status.datacenters[dc].rebuild`, state `Replicating`) before its
//!   CassandraDatacenter is created, when the cluster was initialised already; a datacenter of a
//!   new cluster has nothing to stream.
//! - Once it is Ready, the replication step alters the keyspaces to include it; then a `rebuild`
//!   CassandraTask runs on each of its nodes (state `Rebuilding`), from `rebuild.sourceDc`, the
//!   `k8ssandra.io/rebuild-src-dc` annotation, or the first Ready datacenter.
//! - A failed attempt is reported, naming each node and its error, and made again after a delay
//!   that doubles (5 s to 5 min): on the one pod that failed, or on every pod when several did;
//!   the datacenter is Ready only once a rebuild completed.

use std::time::Duration;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8ssandra_api::{
    control::CassandraTask,
    k8ssandra::{DatacenterRebuildStatus, K8ssandraCluster, rebuild_state},
    merge,
};

use super::{
    observe::{Live, Observed, ObservedDatacenter},
    status::datacenter_ready,
    tasks::{self, Phase},
};
use crate::build::cluster_tasks::{Target, rebuild_task, rebuild_task_name};

/// The deprecated annotation naming the datacenter to rebuild from.
const REBUILD_SOURCE_ANNOTATION: &str = "k8ssandra.io/rebuild-src-dc";
/// First retry delay; it doubles with each attempt up to [`MAX_RETRY`].
const FIRST_RETRY: Duration = Duration::from_secs(5);
const MAX_RETRY: Duration = Duration::from_secs(300);

/// What the step decided for one datacenter.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct RebuildReport {
    /// The entry to record (`None`: the rebuild is over, the entry goes).
    pub entry: Option<DatacenterRebuildStatus>,
    /// What is under way.
    pub progressing: Option<String>,
    /// What failed.
    pub degraded: Option<String>,
    /// A problem of the spec.
    pub problem: Option<String>,
    /// Pass again this soon.
    pub requeue: Option<Duration>,
}

/// The delay before attempt `attempt + 1`.
#[must_use]
pub fn retry_delay(attempt: i32) -> Duration {
    let doublings = u32::try_from(attempt.saturating_sub(1))
        .unwrap_or(0)
        .min(16);
    FIRST_RETRY
        .saturating_mul(2u32.saturating_pow(doublings))
        .min(MAX_RETRY)
}

/// The Cassandra name of the datacenter to stream from.
///
/// # Errors
/// When the spec names one that is not another datacenter of the cluster, or none is Ready.
pub fn source(
    cluster: &K8ssandraCluster,
    observed: &Observed,
    target: &ObservedDatacenter,
) -> Result<String, String> {
    let asked = merge::resolve_datacenters(cluster)
        .into_iter()
        .find(|d| d.meta.name == target.name)
        .and_then(|d| d.options.rebuild.and_then(|r| r.source_dc))
        .or_else(|| {
            cluster
                .metadata
                .annotations
                .as_ref()
                .and_then(|a| a.get(REBUILD_SOURCE_ANNOTATION).cloned())
        })
        .filter(|s| !s.is_empty());
    if let Some(asked) = asked {
        return observed
            .datacenters
            .iter()
            .find(|d| (d.name == asked || d.cassandra_name == asked) && d.name != target.name)
            .map(|d| d.cassandra_name.clone())
            .or_else(|| {
                cluster
                    .spec
                    .external_datacenters
                    .iter()
                    .flatten()
                    .find(|e| **e == asked)
                    .cloned()
            })
            .ok_or_else(|| {
                format!(
                    "{}: rebuild.sourceDc is {asked}, which is not another datacenter of the \
                     cluster",
                    target.name
                )
            });
    }
    observed
        .datacenters
        .iter()
        .find(|d| {
            d.name != target.name
                && !d.stopped
                && matches!(&d.live, Live::Ours(live) if datacenter_ready(live))
        })
        .map(|d| d.cassandra_name.clone())
        .ok_or_else(|| format!("{}: no Ready datacenter to rebuild from yet", target.name))
}

/// The entry a datacenter whose keyspaces now include it gets: its first rebuild attempt.
#[must_use]
pub fn first_attempt(dc: &ObservedDatacenter, source: String) -> DatacenterRebuildStatus {
    DatacenterRebuildStatus {
        state: rebuild_state::REBUILDING.to_owned(),
        source_datacenter: Some(source),
        task: Some(rebuild_task_name(&dc.name, 1)),
        attempt: Some(1),
        nodes_done: Some(0),
        nodes_total: Some(dc.size),
        pod: None,
        last_failure: None,
    }
}

/// The pods a failed task failed on, with their errors.
fn failed_pods(task: &CassandraTask) -> Vec<(String, Option<String>)> {
    let mut failed: Vec<(String, Option<String>)> = task
        .status
        .as_ref()
        .and_then(|s| s.pod_statuses.as_ref())
        .into_iter()
        .flatten()
        .filter(|(_, p)| matches!(p.status.to_ascii_uppercase().as_str(), "FAILED" | "ERROR"))
        .map(|(pod, p)| (pod.clone(), p.error.clone()))
        .collect();
    failed.sort();
    failed
}

/// Nodes rebuilt so far: those an earlier attempt did, and those this one did.
fn done(entry: &DatacenterRebuildStatus, task: &CassandraTask, total: i32) -> i32 {
    let earlier = if entry.pod.is_some() { total - 1 } else { 0 };
    (earlier + succeeded(task)).min(total)
}

/// Follows the rebuild of one datacenter in state `Rebuilding`.
pub async fn reconcile(
    cluster: &K8ssandraCluster,
    dc: &ObservedDatacenter,
    entry: &DatacenterRebuildStatus,
    now: &Time,
) -> RebuildReport {
    let mut report = RebuildReport {
        entry: Some(entry.clone()),
        ..RebuildReport::default()
    };
    let attempt = entry.attempt.unwrap_or(1).max(1);
    let source = entry.source_datacenter.clone().unwrap_or_default();
    let name = entry
        .task
        .clone()
        .unwrap_or_else(|| rebuild_task_name(&dc.name, attempt));
    let Some(remote) = dc.reach.usable() else {
        report.progressing = Some(format!(
            "{}: rebuild from {source} waits for its cluster to be reachable",
            dc.name
        ));
        return report;
    };
    let max_concurrent = merge::resolve_datacenters(cluster)
        .into_iter()
        .find(|d| d.meta.name == dc.name)
        .and_then(|d| {
            d.options
                .rebuild
                .and_then(|r| r.max_concurrent_rebuilds)
                .or(d.options.max_concurrent_rebuilds)
        });
    let total = dc.size;
    let mut entry = entry.clone();
    match tasks::phase(remote, &dc.namespace, &name, now) {
        Phase::Absent => {
            let task = rebuild_task(
                cluster,
                Target {
                    namespace: &dc.namespace,
                    datacenter: &dc.name,
                },
                &source,
                attempt,
                max_concurrent,
                entry.pod.as_deref(),
            );
            if let Err(error) = tasks::create(remote, &task).await {
                report.degraded = Some(format!("{}: {error}", dc.name));
                report.requeue = Some(FIRST_RETRY);
            }
            report.progressing = Some(progress(dc, &entry));
        }
        Phase::Running(task) => {
            entry.nodes_done = Some(done(&entry, &task, total));
            entry.nodes_total = Some(total);
            report.progressing = Some(progress(dc, &entry));
            report.entry = Some(entry);
        }
        Phase::Complete(_) => {
            report.entry = None;
        }
        Phase::Failed { task, message, age } => {
            let failed = failed_pods(&task);
            let on = failed
                .iter()
                .map(|(pod, error)| match error {
                    Some(error) => format!("{pod}: {error}"),
                    None => pod.clone(),
                })
                .collect::<Vec<_>>()
                .join("; ");
            entry.nodes_done = Some(done(&entry, &task, total));
            entry.last_failure = Some(format!(
                "attempt {attempt} of the rebuild from {source} failed on {}",
                if on.is_empty() { message } else { on }
            ));
            let wait = retry_delay(attempt).saturating_sub(age);
            report.degraded = Some(format!(
                "{}: {}; retrying in {}s",
                dc.name,
                entry.last_failure.as_deref().unwrap_or_default(),
                wait.as_secs()
            ));
            if wait.is_zero() {
                // One pod failed: only it is rebuilt again; else every pod is.
                entry.pod = match failed.as_slice() {
                    [(pod, _)] => Some(pod.clone()),
                    _ => None,
                };
                entry.attempt = Some(attempt + 1);
                entry.task = Some(rebuild_task_name(&dc.name, attempt + 1));
                entry.nodes_done = Some(if entry.pod.is_some() { total - 1 } else { 0 });
                report.requeue = Some(Duration::from_secs(1));
            } else {
                report.requeue = Some(wait);
            }
            report.entry = Some(entry);
        }
    }
    report
}

fn succeeded(task: &CassandraTask) -> i32 {
    task.status
        .as_ref()
        .and_then(|s| s.succeeded)
        .and_then(|n| i32::try_from(n).ok())
        .unwrap_or(0)
}

fn progress(dc: &ObservedDatacenter, entry: &DatacenterRebuildStatus) -> String {
    let mut text = format!(
        "{}: rebuilding from {} ({}/{} nodes",
        dc.name,
        entry.source_datacenter.as_deref().unwrap_or_default(),
        entry.nodes_done.unwrap_or(0),
        entry.nodes_total.unwrap_or(dc.size)
    );
    if let Some(attempt) = entry.attempt.filter(|a| *a > 1) {
        text.push_str(&format!(", attempt {attempt}"));
    }
    text.push(')');
    if let Some(failure) = &entry.last_failure {
        text.push_str(&format!("; {failure}"));
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retries_back_off_from_five_seconds_to_five_minutes() {
        assert_eq!(retry_delay(1), Duration::from_secs(5));
        assert_eq!(retry_delay(2), Duration::from_secs(10));
        assert_eq!(retry_delay(4), Duration::from_secs(40));
        assert_eq!(retry_delay(40), MAX_RETRY);
    }
}

#[cfg(test)]
mod source_tests {
    use std::sync::Arc;

    use k8ssandra_api::{
        cassandra::{CassandraDatacenter, CassandraDatacenterStatus, ProgressState},
        conditions::{Condition, ConditionStatus},
    };

    use super::*;
    use crate::k8ssandra_cluster::observe::Reach;

    fn datacenter(name: &str, ready: bool, stopped: bool) -> ObservedDatacenter {
        let mut live: CassandraDatacenter = serde_json::from_value(serde_json::json!({
            "apiVersion": "cassandra.datastax.com/v1beta1",
            "kind": "CassandraDatacenter",
            "metadata": { "name": name, "generation": 1 },
            "spec": { "clusterName": "demo", "serverType": "cassandra",
                      "serverVersion": "4.1.5", "size": 3, "storageConfig": {} }
        }))
        .unwrap();
        let status = if ready {
            ConditionStatus::True
        } else {
            ConditionStatus::False
        };
        live.status = Some(CassandraDatacenterStatus {
            conditions: Some(vec![Condition::new("Ready", status, "R", "m")]),
            cassandra_operator_progress: Some(ProgressState::Ready),
            observed_generation: Some(1),
            ..Default::default()
        });
        ObservedDatacenter {
            name: name.into(),
            namespace: "ns".into(),
            context: String::new(),
            cassandra_name: format!("cass-{name}"),
            size: 3,
            stopped,
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

    fn cluster(yaml_dc3: &str, annotation: Option<&str>) -> K8ssandraCluster {
        let mut k8c: K8ssandraCluster = serde_yaml::from_str(&format!(
            r#"
apiVersion: k8ssandra.io/v1alpha1
kind: K8ssandraCluster
metadata: {{name: demo, namespace: ns}}
spec:
  cassandra:
    serverVersion: "4.1.5"
    datacenters:
      - metadata: {{name: dc1}}
        size: 3
      - metadata: {{name: dc2}}
        size: 3
      - metadata: {{name: dc3}}
        size: 3
{yaml_dc3}"#
        ))
        .unwrap();
        if let Some(value) = annotation {
            k8c.metadata.annotations =
                Some([(REBUILD_SOURCE_ANNOTATION.to_owned(), value.to_owned())].into());
        }
        k8c
    }

    #[test]
    fn the_first_ready_running_datacenter_is_the_source_by_default() {
        let seen = observed(vec![
            datacenter("dc1", true, true),
            datacenter("dc2", true, false),
            datacenter("dc3", true, false),
        ]);
        let dc3 = seen.datacenters[2].clone();
        assert_eq!(
            source(&cluster("", None), &seen, &dc3),
            Ok("cass-dc2".to_owned()),
            "a stopped datacenter streams nothing"
        );
        let none = observed(vec![datacenter("dc1", false, false), dc3.clone()]);
        assert!(source(&cluster("", None), &none, &dc3).is_err());
    }

    #[test]
    fn the_spec_or_the_annotation_names_the_source_and_is_checked() {
        let seen = observed(vec![
            datacenter("dc1", true, false),
            datacenter("dc2", true, false),
            datacenter("dc3", true, false),
        ]);
        let dc3 = seen.datacenters[2].clone();
        let asked = "        rebuild: {sourceDc: dc2}\n";
        assert_eq!(
            source(&cluster(asked, None), &seen, &dc3),
            Ok("cass-dc2".to_owned())
        );
        assert_eq!(
            source(&cluster("", Some("dc1")), &seen, &dc3),
            Ok("cass-dc1".to_owned())
        );
        let itself = source(
            &cluster("        rebuild: {sourceDc: dc3}\n", None),
            &seen,
            &dc3,
        )
        .unwrap_err();
        assert!(itself.contains("not another datacenter"), "{itself}");
        let unknown = source(&cluster("", Some("dc9")), &seen, &dc3).unwrap_err();
        assert!(unknown.contains("dc9"), "{unknown}");
    }
}
