//! Cleanup after a scale-up, as upstream: when a scale-up that began while the datacenter was
//! Ready ends (`ScalingUp` was True and the plan is settled), a `cleanup` CassandraTask is made,
//! unless the datacenter carries `cassandra.datastax.com/no-cleanup`. With
//! `cassandra.datastax.com/track-cleanup-tasks` the task is listed in `status.trackedTasks` and
//! `ScalingUp` stays True until it finished.

use k8s_openapi::api::core::v1::ObjectReference;
use k8ssandra_api::{
    cassandra::{CassandraDatacenter, condition},
    conditions::{self, Condition},
    control::CassandraTask,
    labels,
};
use k8ssandra_reconcile::events::Severity;
use kube::{Api, Resource, ResourceExt, api::PostParams};

use super::{Context, plan::Plan};
use crate::build::{self, cleanup_task};

/// Why the cleanup task could not be made or followed.
#[derive(Debug, thiserror::Error)]
pub enum CleanupError {
    /// The task could not be built.
    #[error(transparent)]
    Build(#[from] build::BuildError),
    /// The API server refused a read or the creation.
    #[error("could not {what} CassandraTask {name}: {source}")]
    Kube {
        /// What the pass tried.
        what: &'static str,
        /// The task.
        name: String,
        /// The API error.
        source: kube::Error,
    },
}

/// What the status says of the cleanup after a scale-up.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct CleanupProgress {
    /// The tasks the datacenter waits for (`status.trackedTasks`).
    pub tracked: Vec<ObjectReference>,
    /// `ScalingUp` stays True with this message while one runs.
    pub waiting: Option<String>,
}

fn annotated(dc: &CassandraDatacenter, key: &str) -> bool {
    dc.annotations().get(key).is_some_and(|v| v == "true")
}

/// Whether the last status said a scale-up was under way.
fn was_scaling_up(dc: &CassandraDatacenter) -> bool {
    dc.status
        .as_ref()
        .and_then(|s| s.conditions.as_deref())
        .and_then(|c| conditions::find(c, condition::SCALING_UP))
        .is_some_and(Condition::is_true)
}

fn finished(task: &CassandraTask) -> bool {
    task.status
        .as_ref()
        .is_some_and(|s| s.completion_time.is_some())
}

/// Follows the tracked cleanup tasks, or makes the cleanup task when a scale-up just ended.
///
/// # Errors
/// When a task cannot be read or made.
pub async fn follow(
    ctx: &Context,
    dc: &CassandraDatacenter,
    plan: &Plan,
) -> Result<CleanupProgress, CleanupError> {
    let namespace = dc.namespace().unwrap_or_default();
    let tasks = Api::<CassandraTask>::namespaced(ctx.client.clone(), &namespace);
    let tracked = dc
        .status
        .as_ref()
        .and_then(|s| s.tracked_tasks.clone())
        .unwrap_or_default();
    if !tracked.is_empty() {
        let mut open = Vec::new();
        for reference in tracked {
            let name = reference.name.clone().unwrap_or_default();
            let task = ctx.caches.tasks.get(&namespace, &name);
            // A task deleted by hand is waited for no more.
            if task.is_some_and(|t| t.decoded().is_ok_and(|t| !finished(t))) {
                open.push(reference);
            }
        }
        let waiting = open.first().map(|r| {
            format!(
                "waiting for cleanup task {} to finish",
                r.name.as_deref().unwrap_or_default()
            )
        });
        return Ok(CleanupProgress {
            tracked: open,
            waiting,
        });
    }
    if !was_scaling_up(dc) || !plan.is_settled() || annotated(dc, labels::annotations::NO_CLEANUP) {
        return Ok(CleanupProgress::default());
    }
    let task = cleanup_task::cleanup_task(dc)?;
    let name = task.name_any();
    match tasks.create(&PostParams::default(), &task).await {
        Ok(created) => {
            ctx.caches.tasks.wrote(&created.metadata);
            ctx.events
                .publish(
                    &dc.object_ref(&()),
                    Severity::Normal,
                    "CreatedCleanupTask",
                    "Cleanup",
                    format!("the scale-up is done: CassandraTask {name} cleans up every node"),
                )
                .await;
        }
        // Made by a pass that did not get to write its status.
        Err(kube::Error::Api(status)) if status.code == 409 => {}
        Err(source) => {
            return Err(CleanupError::Kube {
                what: "create",
                name,
                source,
            });
        }
    }
    if !annotated(dc, labels::annotations::TRACK_CLEANUP_TASKS) {
        return Ok(CleanupProgress::default());
    }
    Ok(CleanupProgress {
        waiting: Some(format!("waiting for cleanup task {name} to finish")),
        tracked: vec![cleanup_task::task_reference(&task)],
    })
}
