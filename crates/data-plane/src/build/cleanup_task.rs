//! The `cleanup` CassandraTask made after a scale-up, as upstream: new nodes took over token
//! ranges, and the old ones still hold that data until a cleanup removes it.
//!
//! Named after the datacenter and the generation that asked for the scale-up, so that a pass
//! repeated after a crash finds the task it made instead of making a second one. Owned by the
//! datacenter (it goes with it). A cleanup refused while ranges are still moving is retried
//! (`restartPolicy: OnFailure`). With `enable-parallel-cleanup-within-rack`, every pod of a rack
//! runs it at once.

use k8s_openapi::api::core::v1::ObjectReference;
use k8ssandra_api::{
    cassandra::CassandraDatacenter,
    control::{
        CassandraCommand, CassandraJob, CassandraTask, CassandraTaskSpec, CassandraTaskTemplate,
    },
    labels,
};
use kube::Resource;

use super::{Result, dc_labels, dc_object_name, owned_meta, statefulset::rack_plan};

/// Retries of a node's cleanup that Cassandra refused.
pub const CLEANUP_RETRIES: i32 = 3;

/// Name of the cleanup task after the scale-up asked for by `generation`.
#[must_use]
pub fn cleanup_task_name(dc_name: &str, generation: i64) -> String {
    format!("cleanup-{dc_name}-g{generation}")
}

/// The cleanup task of `dc` after its current generation's scale-up.
///
/// # Errors
/// When the datacenter was not read from the API server (no name or uid).
pub fn cleanup_task(dc: &CassandraDatacenter) -> Result<CassandraTask> {
    let name = dc_object_name(dc)?;
    let task_name = cleanup_task_name(name, dc.metadata.generation.unwrap_or(0));
    let parallel = dc
        .metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get(labels::annotations::ENABLE_PARALLEL_CLEANUP_WITHIN_RACK))
        .is_some_and(|v| v == "true");
    let per_rack = rack_plan(dc).iter().map(|r| r.nodes).max().unwrap_or(1);
    let mut task = CassandraTask::new(
        &task_name,
        CassandraTaskSpec {
            datacenter: ObjectReference {
                name: Some(name.to_owned()),
                namespace: dc.metadata.namespace.clone(),
                ..ObjectReference::default()
            },
            template: CassandraTaskTemplate {
                jobs: Some(vec![CassandraJob {
                    name: format!("{name}-cleanup"),
                    command: CassandraCommand::Cleanup,
                    args: None,
                }]),
                restart_policy: Some("OnFailure".to_owned()),
                retries: Some(CLEANUP_RETRIES),
                max_concurrent_pods: parallel
                    .then(|| i32::try_from(per_rack.max(1)).unwrap_or(i32::MAX)),
                ..CassandraTaskTemplate::default()
            },
        },
    );
    task.metadata = owned_meta(dc, task_name, dc_labels(dc)?, Default::default())?;
    Ok(task)
}

/// A reference to the task, as `status.trackedTasks` lists it.
#[must_use]
pub fn task_reference(task: &CassandraTask) -> ObjectReference {
    ObjectReference {
        api_version: Some(CassandraTask::api_version(&()).into_owned()),
        kind: Some(CassandraTask::kind(&()).into_owned()),
        name: task.metadata.name.clone(),
        namespace: task.metadata.namespace.clone(),
        ..ObjectReference::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8ssandra_api::cassandra::CassandraDatacenterSpec;

    fn dc(annotations: &[(&str, &str)]) -> CassandraDatacenter {
        let mut dc = CassandraDatacenter::new(
            "dc1",
            CassandraDatacenterSpec {
                cluster_name: "demo".into(),
                server_version: "4.1.5".into(),
                size: 6,
                ..Default::default()
            },
        );
        dc.metadata.namespace = Some("cass".into());
        dc.metadata.uid = Some("uid-1".into());
        dc.metadata.generation = Some(4);
        dc.metadata.annotations = Some(
            annotations
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
        );
        dc
    }

    #[test]
    fn the_task_is_named_after_the_generation_owned_and_retried() {
        let task = cleanup_task(&dc(&[])).unwrap();
        assert_eq!(task.metadata.name.as_deref(), Some("cleanup-dc1-g4"));
        assert_eq!(task.metadata.namespace.as_deref(), Some("cass"));
        assert_eq!(task.metadata.owner_references.unwrap()[0].uid, "uid-1");
        assert_eq!(task.spec.datacenter.name.as_deref(), Some("dc1"));
        let template = task.spec.template;
        assert_eq!(template.jobs.unwrap()[0].command, CassandraCommand::Cleanup);
        assert_eq!(template.restart_policy.as_deref(), Some("OnFailure"));
        assert_eq!(template.max_concurrent_pods, None);
    }

    #[test]
    fn parallel_cleanup_runs_a_whole_rack_at_once() {
        let task = cleanup_task(&dc(&[(
            labels::annotations::ENABLE_PARALLEL_CLEANUP_WITHIN_RACK,
            "true",
        )]))
        .unwrap();
        // Six nodes in the default rack.
        assert_eq!(task.spec.template.max_concurrent_pods, Some(6));
    }
}
