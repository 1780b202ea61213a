//! The CassandraTask of one datacenter of a K8ssandraTask (pure): `<task>-<dc>` in the
//! datacenter's namespace, running the task's template on that CassandraDatacenter, labelled so
//! that the control plane's narrow watch of each cluster sees it and maps it back to its
//! K8ssandraTask.

use std::collections::BTreeMap;

use k8s_openapi::{api::core::v1::ObjectReference, apimachinery::pkg::apis::meta::v1::ObjectMeta};
use k8ssandra_api::{
    control::{CassandraTask, CassandraTaskSpec, CassandraTaskTemplate, K8ssandraTask},
    labels,
};
use kube::ResourceExt;

/// The name of the CassandraTask of datacenter `dc` of K8ssandraTask `task`.
#[must_use]
pub fn task_name(task: &str, dc: &str) -> String {
    format!("{task}-{dc}")
}

/// The labels that tie a CassandraTask to its K8ssandraTask. No `k8ssandra.io/cluster-name`:
/// that one marks the K8ssandraCluster's own operations.
#[must_use]
pub fn task_labels(task: &K8ssandraTask) -> BTreeMap<String, String> {
    BTreeMap::from([
        (
            labels::MANAGED_BY.to_owned(),
            labels::CONTROL_PLANE_MANAGER.to_owned(),
        ),
        (labels::TASK_NAME.to_owned(), task.name_any()),
        (
            labels::TASK_NAMESPACE.to_owned(),
            task.namespace().unwrap_or_default(),
        ),
    ])
}

/// `namespace/name` of the K8ssandraTask a CassandraTask's labels name.
#[must_use]
pub fn owner_task(labels: &BTreeMap<String, String>) -> Option<(String, String)> {
    Some((
        labels.get(labels::TASK_NAMESPACE)?.clone(),
        labels.get(labels::TASK_NAME)?.clone(),
    ))
}

/// The CassandraTask that runs `task` on CassandraDatacenter `namespace/dc`. Its TTL is 0 (kept):
/// the K8ssandraTask's own TTL decides, and its deletion removes them.
#[must_use]
pub fn cassandra_task(task: &K8ssandraTask, dc: &str, namespace: &str) -> CassandraTask {
    let template = CassandraTaskTemplate {
        ttl_seconds_after_finished: Some(0),
        ..task.spec.template.clone()
    };
    CassandraTask {
        metadata: ObjectMeta {
            name: Some(task_name(&task.name_any(), dc)),
            namespace: Some(namespace.to_owned()),
            labels: Some(task_labels(task)),
            ..ObjectMeta::default()
        },
        spec: CassandraTaskSpec {
            datacenter: ObjectReference {
                name: Some(dc.to_owned()),
                namespace: Some(namespace.to_owned()),
                ..ObjectReference::default()
            },
            template,
        },
        status: None,
    }
}

#[cfg(test)]
mod tests {
    use k8ssandra_api::control::{CassandraCommand, CassandraJob, K8ssandraTaskSpec};

    use super::*;

    #[test]
    fn the_template_is_copied_with_a_ttl_of_zero() {
        let mut spec = K8ssandraTaskSpec::default();
        spec.template.jobs = Some(vec![CassandraJob {
            name: "c".into(),
            command: CassandraCommand::Cleanup,
            args: None,
        }]);
        spec.template.ttl_seconds_after_finished = Some(60);
        spec.template.max_concurrent_pods = Some(2);
        let mut k8t = K8ssandraTask::new("clean", spec);
        k8t.metadata.namespace = Some("ops".into());

        let built = cassandra_task(&k8t, "dc2", "data");
        assert_eq!(built.metadata.name.as_deref(), Some("clean-dc2"));
        assert_eq!(built.metadata.namespace.as_deref(), Some("data"));
        assert_eq!(built.spec.datacenter.name.as_deref(), Some("dc2"));
        assert_eq!(built.spec.datacenter.namespace.as_deref(), Some("data"));
        assert_eq!(built.spec.template.ttl_seconds_after_finished, Some(0));
        assert_eq!(built.spec.template.max_concurrent_pods, Some(2));
        assert_eq!(built.spec.template.jobs, k8t.spec.template.jobs);
        let labels = built.metadata.labels.unwrap_or_default();
        assert_eq!(labels[labels::MANAGED_BY], "k8ssandra-operator");
        assert_eq!(labels[labels::TASK_NAME], "clean");
        assert_eq!(labels[labels::TASK_NAMESPACE], "ops");
        assert!(!labels.contains_key(labels::K8SSANDRA_CLUSTER_NAME));
        assert_eq!(owner_task(&labels), Some(("ops".into(), "clean".into())));
    }
}
