//! The K8ssandraTask's metadata and its deletion. Before any CassandraTask is made, the task gets
//! the finalizer `control.k8ssandra.io/finalizer` and an owner reference to its K8ssandraCluster
//! (so that deleting the cluster deletes the task; an owner reference cannot cross namespaces,
//! so a task in another namespace has none). On deletion the finalizer holds the task until its
//! CassandraTasks are gone from every cluster; a cluster that cannot be reached keeps it, and is
//! named in the status.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;
use k8ssandra_api::{
    control::{CassandraTask, K8ssandraTask},
    k8ssandra::K8ssandraCluster,
};
use k8ssandra_reconcile::{apply::delete_if_present, finalizer};
use kube::{
    Api, Resource, ResourceExt,
    api::{DeleteParams, Patch, PatchParams},
};

use super::{Context, observe::usable};
use crate::{build::k8ssandra_task::owner_task, k8ssandra_cluster::observe::display_context};

/// The finalizer on every K8ssandraTask that made CassandraTasks (upstream's).
pub const FINALIZER: &str = "control.k8ssandra.io/finalizer";

/// Why a step failed; the pass is retried.
#[derive(Debug, thiserror::Error)]
pub enum DeletionError {
    /// The API server refused.
    #[error("could not {what}: {source}")]
    Kube {
        /// What the step tried.
        what: String,
        /// The API error.
        source: kube::Error,
    },
}

/// The owner reference to `cluster`, when it can be one (same namespace).
#[must_use]
pub fn owner_reference(task: &K8ssandraTask, cluster: &K8ssandraCluster) -> Option<OwnerReference> {
    if cluster.namespace() != task.namespace() {
        return None;
    }
    Some(OwnerReference {
        api_version: K8ssandraCluster::api_version(&()).into_owned(),
        kind: K8ssandraCluster::kind(&()).into_owned(),
        name: cluster.name_any(),
        uid: cluster.uid()?,
        controller: Some(false),
        block_owner_deletion: None,
    })
}

/// The merge patch that adds the owner reference and (with `finalizer`) the finalizer, guarded by
/// the resource version; `None` when they are there.
#[must_use]
pub fn metadata_patch(
    task: &K8ssandraTask,
    owner: Option<OwnerReference>,
    finalizer: bool,
) -> Option<serde_json::Value> {
    let meta = &task.metadata;
    let mut finalizers = meta.finalizers.clone().unwrap_or_default();
    let mut owners = meta.owner_references.clone().unwrap_or_default();
    let add_finalizer = finalizer && !finalizer::has_finalizer(meta, FINALIZER);
    let add_owner = owner
        .as_ref()
        .is_some_and(|o| !owners.iter().any(|existing| existing.uid == o.uid));
    if !add_finalizer && !add_owner {
        return None;
    }
    if add_finalizer {
        finalizers.push(FINALIZER.to_owned());
    }
    if add_owner && let Some(owner) = owner {
        owners.push(owner);
    }
    let mut patch = serde_json::json!({
        "metadata": { "resourceVersion": meta.resource_version }
    });
    if add_finalizer {
        patch["metadata"]["finalizers"] = serde_json::json!(finalizers);
    }
    if add_owner {
        // A merge patch replaces the list: the owners already there are in it.
        patch["metadata"]["ownerReferences"] = serde_json::json!(owners);
    }
    Some(patch)
}

/// Adds the owner reference and (with `finalizer`, before anything is made) the finalizer when
/// missing; returns whether it wrote. An invalid task gets the owner reference only: it made
/// nothing to clean up, and goes with its cluster all the same.
///
/// # Errors
/// When the API server refuses (a concurrent edit answers 409, and the pass is retried).
pub async fn ensure_metadata(
    ctx: &Context,
    task: &K8ssandraTask,
    cluster: &K8ssandraCluster,
    finalizer: bool,
) -> Result<bool, DeletionError> {
    let Some(patch) = metadata_patch(task, owner_reference(task, cluster), finalizer) else {
        return Ok(false);
    };
    patch_task(ctx, task, &patch, "add the finalizer and owner reference").await?;
    Ok(true)
}

async fn patch_task(
    ctx: &Context,
    task: &K8ssandraTask,
    patch: &serde_json::Value,
    what: &str,
) -> Result<(), DeletionError> {
    let api =
        Api::<K8ssandraTask>::namespaced(ctx.client.clone(), &task.namespace().unwrap_or_default());
    match api
        .patch_metadata(
            &task.name_any(),
            &PatchParams::default(),
            &Patch::Merge(patch),
        )
        .await
    {
        Ok(written) => {
            ctx.caches.k8ssandra_tasks.wrote(&written.metadata);
            Ok(())
        }
        // Gone already: an earlier pass removed the finalizer and the API server the task.
        Err(kube::Error::Api(status)) if status.code == 404 => Ok(()),
        Err(source) => Err(DeletionError::Kube {
            what: what.to_owned(),
            source,
        }),
    }
}

/// One deletion pass: deletes the CassandraTasks left, and returns what is still waited for
/// (empty once the finalizer is gone). `contexts` are those the task's datacenters run in (every
/// context known, when its K8ssandraCluster is gone): one of them that cannot be reached holds
/// the task.
///
/// # Errors
/// When the API server refuses a delete or the finalizer's removal.
pub async fn reconcile(
    ctx: &Context,
    task: &K8ssandraTask,
    contexts: &std::collections::BTreeSet<String>,
) -> Result<Waiting, DeletionError> {
    let mut waiting = Waiting::default();
    if !finalizer::has_finalizer(&task.metadata, FINALIZER) {
        return Ok(waiting);
    }
    let me = (task.namespace().unwrap_or_default(), task.name_any());
    let mut every = ctx.registry.contexts();
    every.extend(contexts.iter().cloned());
    for context in every {
        let remote = match usable(ctx, &context) {
            Ok(remote) => remote,
            Err(why) => {
                if contexts.contains(&context) {
                    waiting.unreachable.push(format!(
                        "{why}; its CassandraTasks are deleted once it is back"
                    ));
                }
                continue;
            }
        };
        for object in remote.tasks.state() {
            if owner_task(object.labels()).as_ref() != Some(&me) {
                continue;
            }
            let (namespace, name) = (object.namespace().unwrap_or_default(), object.name_any());
            let at = display_context(&context);
            waiting.deleting.push(format!(
                "CassandraTask {namespace}/{name} in {at} is being deleted"
            ));
            if object.meta().deletion_timestamp.is_some() {
                continue;
            }
            let api = Api::<CassandraTask>::namespaced(remote.client.clone(), &namespace);
            delete_if_present(&api, &name, &DeleteParams::background())
                .await
                .map_err(|source| DeletionError::Kube {
                    what: format!("delete CassandraTask {namespace}/{name} in {at}"),
                    source,
                })?;
            tracing::info!(%context, %namespace, task = %name, "CassandraTask deleted");
        }
    }
    if waiting.is_empty() {
        if let Some(patch) = finalizer::finalizer_patch(&task.metadata, FINALIZER, false) {
            patch_task(ctx, task, &patch, "remove the finalizer").await?;
        }
        tracing::info!(namespace = %me.0, task = %me.1, "K8ssandraTask deleted everywhere");
    }
    Ok(waiting)
}

/// What a deletion waits for.
#[derive(Clone, Debug, Default)]
pub struct Waiting {
    /// CassandraTasks being deleted.
    pub deleting: Vec<String>,
    /// Clusters that cannot be reached, naming them.
    pub unreachable: Vec<String>,
}

impl Waiting {
    /// Whether nothing is waited for.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.deleting.is_empty() && self.unreachable.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cluster(namespace: &str) -> K8ssandraCluster {
        let mut cluster: K8ssandraCluster = serde_json::from_value(serde_json::json!({
            "apiVersion": "k8ssandra.io/v1alpha1",
            "kind": "K8ssandraCluster",
            "metadata": { "name": "demo", "namespace": namespace, "uid": "u-1" },
            "spec": { "cassandra": { "serverVersion": "4.0.1", "datacenters": [] } }
        }))
        .unwrap();
        cluster.metadata.uid = Some("u-1".into());
        cluster
    }

    fn task() -> K8ssandraTask {
        let mut task = K8ssandraTask::new("t", Default::default());
        task.metadata.namespace = Some("ns".into());
        task.metadata.resource_version = Some("7".into());
        task
    }

    #[test]
    fn the_finalizer_and_owner_reference_are_added_once() {
        let mut t = task();
        let owner = owner_reference(&t, &cluster("ns")).unwrap();
        assert_eq!(owner.kind, "K8ssandraCluster");
        assert_eq!(owner.controller, Some(false));
        let patch = metadata_patch(&t, Some(owner.clone()), true).unwrap();
        assert_eq!(patch["metadata"]["finalizers"][0], FINALIZER);
        assert_eq!(patch["metadata"]["ownerReferences"][0]["uid"], "u-1");
        assert_eq!(patch["metadata"]["resourceVersion"], "7");
        t.metadata.finalizers = Some(vec![FINALIZER.into()]);
        t.metadata.owner_references = Some(vec![owner.clone()]);
        assert_eq!(metadata_patch(&t, Some(owner.clone()), true), None);
        assert_eq!(metadata_patch(&t, Some(owner), false), None);
    }

    #[test]
    fn no_owner_reference_across_namespaces() {
        assert_eq!(owner_reference(&task(), &cluster("elsewhere")), None);
        let patch = metadata_patch(&task(), None, true).unwrap();
        assert!(patch["metadata"].get("ownerReferences").is_none());
        assert_eq!(metadata_patch(&task(), None, false), None);
    }

    #[test]
    fn an_invalid_task_gets_the_owner_reference_only() {
        let t = task();
        let patch = metadata_patch(&t, owner_reference(&t, &cluster("ns")), false).unwrap();
        assert!(patch["metadata"].get("finalizers").is_none());
        assert_eq!(patch["metadata"]["ownerReferences"][0]["name"], "demo");
    }
}
