//! The validate step (pure): which datacenters a task runs on, in which order, or why it cannot
//! run at all. Every problem is found before anything is created, so that a task naming one
//! wrong datacenter runs on none.

use std::collections::BTreeSet;

use k8ssandra_api::{control::K8ssandraTask, k8ssandra::K8ssandraCluster, merge};
use kube::ResourceExt;

/// One datacenter the task runs on.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Target {
    /// The datacenter's `metadata.name`, which is its CassandraDatacenter's name.
    pub name: String,
    /// The namespace of its CassandraDatacenter.
    pub namespace: String,
    /// Its kubeconfig context (empty: the control plane's own cluster).
    pub context: String,
}

/// Why a task cannot run as written.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Problem {
    /// A short CamelCase reason.
    pub reason: &'static str,
    /// What is wrong, naming the field and value.
    pub message: String,
}

impl Problem {
    fn new(reason: &'static str, message: String) -> Self {
        Self { reason, message }
    }
}

/// What the cache holds of the K8ssandraCluster a task names.
#[derive(Clone, Copy, Debug)]
pub enum ClusterLookup<'a> {
    /// None of that name.
    Missing,
    /// One that cannot be read: why.
    Undecodable(&'a str),
    /// The cluster.
    Found(&'a K8ssandraCluster),
}

/// `namespace/name` of the K8ssandraCluster a task names (its namespace defaults to the task's).
#[must_use]
pub fn cluster_key(task: &K8ssandraTask) -> (String, String) {
    let cluster = &task.spec.cluster;
    let namespace = cluster
        .namespace
        .clone()
        .filter(|n| !n.is_empty())
        .unwrap_or_else(|| task.namespace().unwrap_or_default());
    (namespace, cluster.name.clone().unwrap_or_default())
}

/// The datacenters the task runs on, in the order they run (with `Forbid`): the user's order of
/// `spec.datacenters`, or the cluster's spec order when it is empty.
///
/// # Errors
/// Every problem found, the first one's reason first.
pub fn targets(
    task: &K8ssandraTask,
    cluster: ClusterLookup<'_>,
) -> Result<Vec<Target>, Vec<Problem>> {
    let mut problems = Vec::new();
    let (namespace, name) = cluster_key(task);
    let jobs = task.spec.template.jobs.as_deref().unwrap_or_default();
    if jobs.is_empty() {
        problems.push(Problem::new(
            "NoJob",
            "spec.template.jobs is empty: the task has nothing to run".to_owned(),
        ));
    }
    let cluster = if name.is_empty() {
        problems.push(Problem::new(
            "ClusterMissing",
            "spec.cluster.name is empty: name the K8ssandraCluster to run on".to_owned(),
        ));
        None
    } else {
        match cluster {
            ClusterLookup::Missing => {
                problems.push(Problem::new(
                    "ClusterNotFound",
                    format!("spec.cluster: K8ssandraCluster {namespace}/{name} does not exist"),
                ));
                None
            }
            ClusterLookup::Undecodable(error) => {
                problems.push(Problem::new(
                    "ClusterUnreadable",
                    format!(
                        "spec.cluster: K8ssandraCluster {namespace}/{name} cannot be read: {error}"
                    ),
                ));
                None
            }
            ClusterLookup::Found(cluster) => Some(cluster),
        }
    };
    let Some(cluster) = cluster else {
        return Err(problems);
    };
    let datacenters: Vec<Target> = merge::resolve_datacenters(cluster)
        .into_iter()
        .map(|dc| Target {
            namespace: dc
                .meta
                .namespace
                .clone()
                .filter(|n| !n.is_empty())
                .unwrap_or_else(|| cluster.namespace().unwrap_or_default()),
            name: dc.meta.name,
            context: dc.k8s_context,
        })
        .collect();
    let asked = task.spec.datacenters.as_deref().unwrap_or_default();
    let chosen = if asked.is_empty() {
        datacenters
    } else {
        let mut seen = BTreeSet::new();
        let mut chosen = Vec::new();
        for dc in asked {
            if !seen.insert(dc.as_str()) {
                problems.push(Problem::new(
                    "DuplicateDatacenter",
                    format!("spec.datacenters names {dc} twice"),
                ));
                continue;
            }
            match datacenters.iter().find(|d| d.name == *dc) {
                Some(found) => chosen.push(found.clone()),
                None => problems.push(Problem::new(
                    "DatacenterNotFound",
                    format!(
                        "spec.datacenters: {dc} is not a datacenter of K8ssandraCluster \
                         {namespace}/{name} (it has {})",
                        names(&datacenters)
                    ),
                )),
            }
        }
        chosen
    };
    if chosen.is_empty() && problems.is_empty() {
        problems.push(Problem::new(
            "NoDatacenter",
            format!("K8ssandraCluster {namespace}/{name} has no datacenter to run on"),
        ));
    }
    if problems.is_empty() {
        Ok(chosen)
    } else {
        Err(problems)
    }
}

fn names(datacenters: &[Target]) -> String {
    if datacenters.is_empty() {
        return "none".to_owned();
    }
    datacenters
        .iter()
        .map(|d| d.name.as_str())
        .collect::<Vec<_>>()
        .join(", ")
}

/// Whether the task runs its datacenters all at once (`Allow`) rather than one after the other.
#[must_use]
pub fn concurrent(task: &K8ssandraTask) -> bool {
    task.spec.dc_concurrency_policy.as_deref() == Some("Allow")
}

#[cfg(test)]
mod tests {
    use k8ssandra_api::control::{CassandraCommand, CassandraJob, K8ssandraTaskSpec};

    use super::*;

    fn cluster() -> K8ssandraCluster {
        serde_json::from_value(serde_json::json!({
            "apiVersion": "k8ssandra.io/v1alpha1",
            "kind": "K8ssandraCluster",
            "metadata": { "name": "demo", "namespace": "ns" },
            "spec": { "cassandra": {
                "serverVersion": "4.0.1",
                "datacenters": [
                    { "metadata": { "name": "dc1" }, "k8sContext": "ctx-1", "size": 3 },
                    { "metadata": { "name": "dc2", "namespace": "other" }, "k8sContext": "ctx-2", "size": 3 }
                ]
            } }
        }))
        .expect("cluster")
    }

    fn task(datacenters: &[&str], jobs: bool) -> K8ssandraTask {
        let mut spec = K8ssandraTaskSpec::default();
        spec.cluster.name = Some("demo".into());
        spec.datacenters = Some(datacenters.iter().map(|d| (*d).to_owned()).collect());
        if jobs {
            spec.template.jobs = Some(vec![CassandraJob {
                name: "cleanup".into(),
                command: CassandraCommand::Cleanup,
                args: None,
            }]);
        }
        let mut task = K8ssandraTask::new("t", spec);
        task.metadata.namespace = Some("ns".into());
        task
    }

    fn order(result: &[Target]) -> Vec<&str> {
        result.iter().map(|t| t.name.as_str()).collect()
    }

    #[test]
    fn the_users_order_is_kept() {
        let cluster = cluster();
        let targets =
            targets(&task(&["dc2", "dc1"], true), ClusterLookup::Found(&cluster)).unwrap();
        assert_eq!(order(&targets), ["dc2", "dc1"]);
        assert_eq!(targets[0].namespace, "other");
        assert_eq!(targets[0].context, "ctx-2");
        assert_eq!(
            targets[1].namespace, "ns",
            "the cluster's namespace by default"
        );
    }

    #[test]
    fn no_datacenters_means_all_in_spec_order() {
        let cluster = cluster();
        let targets = targets(&task(&[], true), ClusterLookup::Found(&cluster)).unwrap();
        assert_eq!(order(&targets), ["dc1", "dc2"]);
    }

    #[test]
    fn an_unknown_datacenter_is_named_with_the_ones_there_are() {
        let cluster = cluster();
        let problems =
            targets(&task(&["dc1", "dc9"], true), ClusterLookup::Found(&cluster)).unwrap_err();
        assert_eq!(problems.len(), 1);
        assert_eq!(problems[0].reason, "DatacenterNotFound");
        assert!(problems[0].message.contains("dc9"), "{problems:?}");
        assert!(problems[0].message.contains("dc1, dc2"), "{problems:?}");
    }

    #[test]
    fn a_missing_cluster_and_an_empty_template_are_both_reported() {
        let problems = targets(&task(&[], false), ClusterLookup::Missing).unwrap_err();
        let reasons: Vec<&str> = problems.iter().map(|p| p.reason).collect();
        assert_eq!(reasons, ["NoJob", "ClusterNotFound"]);
        assert!(problems[1].message.contains("ns/demo"), "{problems:?}");
        assert!(problems[0].message.contains("spec.template.jobs"));
    }

    #[test]
    fn a_datacenter_named_twice_is_refused() {
        let cluster = cluster();
        let problems =
            targets(&task(&["dc1", "dc1"], true), ClusterLookup::Found(&cluster)).unwrap_err();
        assert_eq!(problems[0].reason, "DuplicateDatacenter");
    }

    #[test]
    fn an_unnamed_cluster_is_refused() {
        let mut unnamed = task(&[], true);
        unnamed.spec.cluster.name = None;
        let problems = targets(&unnamed, ClusterLookup::Missing).unwrap_err();
        assert_eq!(problems[0].reason, "ClusterMissing");
    }

    #[test]
    fn the_cluster_namespace_defaults_to_the_tasks() {
        let mut t = task(&[], true);
        assert_eq!(cluster_key(&t), ("ns".into(), "demo".into()));
        t.spec.cluster.namespace = Some("elsewhere".into());
        assert_eq!(cluster_key(&t), ("elsewhere".into(), "demo".into()));
    }
}
