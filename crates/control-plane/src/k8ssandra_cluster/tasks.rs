//! The CassandraTasks of a K8ssandraCluster's operations, as its steps use them: where one stands
//! (read from the remote cluster's watch cache), and its creation and deletion.

use std::time::Duration;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8ssandra_api::{
    conditions,
    control::{CassandraTask, task_condition},
};
use kube::{Api, Resource, ResourceExt, api::PostParams};

use crate::remote::RemoteCluster;

/// Where a task stands.
#[derive(Clone, Debug, PartialEq)]
pub enum Phase {
    /// Not in the cluster.
    Absent,
    /// Created, running or waiting to run.
    Running(Box<CassandraTask>),
    /// Finished on every node.
    Complete(Box<CassandraTask>),
    /// Failed: the task's message, and since when.
    Failed {
        /// The task.
        task: Box<CassandraTask>,
        /// Its `Failed` condition's message.
        message: String,
        /// How long ago it finished.
        age: Duration,
    },
}

/// Reads a task from the cluster's cache. One that cannot be read counts as running: it is
/// neither redone nor taken for done.
#[must_use]
pub fn phase(remote: &RemoteCluster, namespace: &str, name: &str, now: &Time) -> Phase {
    let Some(object) = remote.tasks.get(namespace, name) else {
        return Phase::Absent;
    };
    let Ok(task) = object.decoded() else {
        return Phase::Running(Box::default());
    };
    let list = task
        .status
        .as_ref()
        .and_then(|s| s.conditions.clone())
        .unwrap_or_default();
    let is = |type_| conditions::find(&list, type_).is_some_and(conditions::Condition::is_true);
    if is(task_condition::FAILED) {
        let message = conditions::find(&list, task_condition::FAILED)
            .and_then(|c| c.message.clone())
            .unwrap_or_default();
        let finished = task
            .status
            .as_ref()
            .and_then(|s| s.completion_time.as_ref())
            .map_or(now.0, |t| t.0);
        let age = Duration::try_from(now.0.duration_since(finished)).unwrap_or_default();
        return Phase::Failed {
            task: Box::new(task.clone()),
            message,
            age,
        };
    }
    if is(task_condition::COMPLETE) {
        return Phase::Complete(Box::new(task.clone()));
    }
    Phase::Running(Box::new(task.clone()))
}

/// Creates a task; one of that name made meanwhile is taken as this one.
///
/// # Errors
/// The API server's answer, in words.
pub async fn create(remote: &RemoteCluster, task: &CassandraTask) -> Result<(), String> {
    let namespace = task.namespace().unwrap_or_default();
    let api = Api::<CassandraTask>::namespaced(remote.client.clone(), &namespace);
    match api.create(&PostParams::default(), task).await {
        Ok(created) => {
            remote.tasks.wrote(created.meta());
            tracing::info!(context = %remote.context, %namespace, task = %task.name_any(), "CassandraTask created");
            Ok(())
        }
        Err(kube::Error::Api(status)) if status.code == 409 => Ok(()),
        Err(error) => Err(format!(
            "could not create CassandraTask {namespace}/{}: {error}",
            task.name_any()
        )),
    }
}

/// Deletes a task (gone already is fine).
///
/// # Errors
/// The API server's answer, in words.
pub async fn delete(remote: &RemoteCluster, namespace: &str, name: &str) -> Result<(), String> {
    let api = Api::<CassandraTask>::namespaced(remote.client.clone(), namespace);
    k8ssandra_reconcile::apply::delete_if_present(&api, name, &Default::default())
        .await
        .map(drop)
        .map_err(|error| format!("could not delete CassandraTask {namespace}/{name}: {error}"))
}
