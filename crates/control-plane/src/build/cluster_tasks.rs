//! The CassandraTasks a K8ssandraCluster's operations run in its datacenters' clusters: the
//! schema changes (this operator's `updatereplication`), the rebuild of a datacenter added to a
//! live cluster, and the check before a datacenter is decommissioned (`checkdecommission`).
//! Every one is labelled `app.kubernetes.io/managed-by: k8ssandra-operator` and with the cluster,
//! so the control plane's narrow watch of each cluster sees it.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::ObjectReference;
use k8ssandra_api::{
    control::{
        CassandraCommand, CassandraJob, CassandraTask, CassandraTaskSpec, CassandraTaskTemplate,
        JobArguments,
    },
    k8ssandra::K8ssandraCluster,
    labels,
};
use k8ssandra_reconcile::hash::hash_value;
use kube::ResourceExt;

/// The keyspaces whose replication follows the cluster's datacenters.
pub const SYSTEM_KEYSPACES: [&str; 3] = ["system_auth", "system_distributed", "system_traces"];

/// Seconds a finished schema task is kept, for whoever looks at it.
const FINISHED_TASK_TTL: i32 = 600;

/// Where a task runs: the CassandraDatacenter's namespace and name.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Target<'a> {
    /// Namespace of the CassandraDatacenter (the task goes there too).
    pub namespace: &'a str,
    /// Name of the CassandraDatacenter.
    pub datacenter: &'a str,
}

/// Keyspace → datacenter → factor, as `updatereplication` takes it.
pub type KeyspaceFactors = BTreeMap<String, BTreeMap<String, u32>>;

fn task(
    cluster: &K8ssandraCluster,
    target: Target<'_>,
    name: String,
    command: CassandraCommand,
    args: Option<JobArguments>,
    max_concurrent_pods: Option<i32>,
) -> CassandraTask {
    let mut task = CassandraTask::new(
        &name,
        CassandraTaskSpec {
            datacenter: ObjectReference {
                name: Some(target.datacenter.to_owned()),
                namespace: Some(target.namespace.to_owned()),
                ..ObjectReference::default()
            },
            template: CassandraTaskTemplate {
                jobs: Some(vec![CassandraJob {
                    name: name.clone(),
                    command,
                    args,
                }]),
                ttl_seconds_after_finished: Some(FINISHED_TASK_TTL),
                max_concurrent_pods,
                ..CassandraTaskTemplate::default()
            },
        },
    );
    task.metadata.namespace = Some(target.namespace.to_owned());
    task.metadata.labels = Some(BTreeMap::from([
        (
            labels::MANAGED_BY.to_owned(),
            labels::CONTROL_PLANE_MANAGER.to_owned(),
        ),
        (
            labels::K8SSANDRA_CLUSTER_NAME.to_owned(),
            cluster.name_any(),
        ),
        (
            labels::K8SSANDRA_CLUSTER_NAMESPACE.to_owned(),
            cluster.namespace().unwrap_or_default(),
        ),
    ]));
    task
}

/// The `updatereplication` task that gives `wanted` (its name says what it sets, so a task of
/// another content never passes for it).
#[must_use]
pub fn replication_task(
    cluster: &K8ssandraCluster,
    target: Target<'_>,
    wanted: &KeyspaceFactors,
) -> CassandraTask {
    let replication: BTreeMap<String, BTreeMap<String, i32>> = wanted
        .iter()
        .map(|(keyspace, factors)| {
            let factors = factors
                .iter()
                .map(|(dc, f)| (dc.clone(), i32::try_from(*f).unwrap_or(i32::MAX)))
                .collect();
            (keyspace.clone(), factors)
        })
        .collect();
    let digest = hash_value(&serde_json::to_value(&replication).unwrap_or_default());
    // Object names take lower-case letters and digits only.
    let short: String = digest
        .chars()
        .filter(char::is_ascii_alphanumeric)
        .map(|c| c.to_ascii_lowercase())
        .take(10)
        .collect();
    task(
        cluster,
        target,
        format!("{}-replication-{short}", cluster.name_any()),
        CassandraCommand::Updatereplication,
        Some(JobArguments {
            replication: Some(replication),
            ..JobArguments::default()
        }),
        None,
    )
}

/// The name of a datacenter's rebuild task for `attempt` (upstream's `<dc>-rebuild` first).
#[must_use]
pub fn rebuild_task_name(datacenter: &str, attempt: i32) -> String {
    if attempt <= 1 {
        format!("{datacenter}-rebuild")
    } else {
        format!("{datacenter}-rebuild-{attempt}")
    }
}

/// The `rebuild` task of a datacenter added to a live cluster, streaming from `source` (a
/// Cassandra datacenter name), on `pod` only when given.
#[must_use]
pub fn rebuild_task(
    cluster: &K8ssandraCluster,
    target: Target<'_>,
    source: &str,
    attempt: i32,
    max_concurrent: Option<i64>,
    pod: Option<&str>,
) -> CassandraTask {
    task(
        cluster,
        target,
        rebuild_task_name(target.datacenter, attempt),
        CassandraCommand::Rebuild,
        Some(JobArguments {
            source_datacenter: Some(source.to_owned()),
            pod_name: pod.map(str::to_owned),
            ..JobArguments::default()
        }),
        max_concurrent.and_then(|n| i32::try_from(n).ok()),
    )
}

/// The name of the check before a datacenter is decommissioned; the cluster's generation is in
/// it, so that a check passed before the spec changed again is never taken for a new one.
#[must_use]
pub fn decommission_check_name(datacenter: &str, generation: i64) -> String {
    format!("{datacenter}-decommission-check-g{generation}")
}

/// The `checkdecommission` task run in the datacenter to be removed.
#[must_use]
pub fn decommission_check_task(
    cluster: &K8ssandraCluster,
    target: Target<'_>,
    generation: i64,
) -> CassandraTask {
    task(
        cluster,
        target,
        decommission_check_name(target.datacenter, generation),
        CassandraCommand::Checkdecommission,
        None,
        None,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cluster() -> K8ssandraCluster {
        let mut k8c = K8ssandraCluster::new("demo", Default::default());
        k8c.metadata.namespace = Some("ns".into());
        k8c
    }

    const TARGET: Target<'static> = Target {
        namespace: "ns",
        datacenter: "dc1",
    };

    #[test]
    fn a_replication_task_is_named_by_what_it_sets() {
        let wanted = |f: u32| {
            BTreeMap::from([(
                "system_auth".to_owned(),
                BTreeMap::from([("dc1".to_owned(), f)]),
            )])
        };
        let a = replication_task(&cluster(), TARGET, &wanted(3));
        let b = replication_task(&cluster(), TARGET, &wanted(3));
        let c = replication_task(&cluster(), TARGET, &wanted(1));
        assert_eq!(a.name_any(), b.name_any());
        assert_ne!(a.name_any(), c.name_any());
        assert!(a.name_any().starts_with("demo-replication-"));
        let labels = a.labels();
        assert_eq!(labels[labels::MANAGED_BY], "k8ssandra-operator");
        assert_eq!(labels[labels::K8SSANDRA_CLUSTER_NAME], "demo");
        let job = &a.spec.template.jobs.as_ref().unwrap()[0];
        assert_eq!(job.command, CassandraCommand::Updatereplication);
        assert_eq!(
            job.args.as_ref().unwrap().replication.as_ref().unwrap()["system_auth"]["dc1"],
            3
        );
        assert_eq!(a.spec.datacenter.name.as_deref(), Some("dc1"));
        assert_eq!(a.namespace().as_deref(), Some("ns"));
    }

    #[test]
    fn rebuilds_keep_upstreams_first_name_and_number_retries() {
        let task = rebuild_task(&cluster(), TARGET, "dc0", 1, Some(2), None);
        assert_eq!(task.name_any(), "dc1-rebuild");
        assert_eq!(task.spec.template.max_concurrent_pods, Some(2));
        let args = |t: &CassandraTask| {
            t.spec.template.jobs.as_ref().unwrap()[0]
                .args
                .clone()
                .unwrap()
        };
        assert_eq!(args(&task).source_datacenter.as_deref(), Some("dc0"));
        assert_eq!(args(&task).pod_name, None);
        let retry = rebuild_task(&cluster(), TARGET, "dc0", 2, None, Some("p-1"));
        assert_eq!(args(&retry).pod_name.as_deref(), Some("p-1"));
        assert_eq!(rebuild_task_name("dc1", 3), "dc1-rebuild-3");
        assert_eq!(
            decommission_check_task(&cluster(), TARGET, 7).name_any(),
            "dc1-decommission-check-g7"
        );
    }
}
