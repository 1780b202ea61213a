//! Deleting a K8ssandraCluster: its finalizer (`k8ssandracluster.k8ssandra.io/finalizer`,
//! upstream's) holds it until every CassandraDatacenter it made is gone from every cluster, and
//! its ReplicatedSecret with them (whose own finalizer removes the copies), and the seed
//! EndpointSlices it wrote (which have no owner, being in other clusters). A cluster that cannot
//! be reached is named in the status and an Event, and the deletion finishes once it is back.

use k8s_openapi::api::discovery::v1::EndpointSlice;
use k8ssandra_api::{
    cassandra::CassandraDatacenter, control::CassandraTask, k8ssandra::K8ssandraCluster,
    replication::ReplicatedSecret,
};
use k8ssandra_reconcile::{apply::delete_if_present, finalizer};
use kube::{
    Api, Resource, ResourceExt,
    api::{DeleteParams, Patch, PatchParams},
};

use super::{
    Context,
    observe::{display_context, owner_of, reach},
};

/// The finalizer on every K8ssandraCluster.
pub const FINALIZER: &str = "k8ssandracluster.k8ssandra.io/finalizer";

/// Why a step of the deletion failed; the pass is retried.
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

/// Adds the finalizer when missing; returns whether it wrote.
///
/// # Errors
/// When the API server refuses.
pub async fn ensure_finalizer(
    ctx: &Context,
    cluster: &K8ssandraCluster,
) -> Result<bool, DeletionError> {
    patch_finalizer(ctx, cluster, true).await
}

async fn patch_finalizer(
    ctx: &Context,
    cluster: &K8ssandraCluster,
    add: bool,
) -> Result<bool, DeletionError> {
    let Some(patch) = finalizer::finalizer_patch(&cluster.metadata, FINALIZER, add) else {
        return Ok(false);
    };
    let api = Api::<K8ssandraCluster>::namespaced(
        ctx.client.clone(),
        &cluster.namespace().unwrap_or_default(),
    );
    match api
        .patch_metadata(
            &cluster.name_any(),
            &PatchParams::default(),
            &Patch::Merge(&patch),
        )
        .await
    {
        Ok(written) => {
            ctx.caches.k8ssandra_clusters.wrote(&written.metadata);
            Ok(true)
        }
        // Gone already: an earlier pass removed the finalizer and the API server the object.
        Err(kube::Error::Api(status)) if status.code == 404 => Ok(false),
        Err(source) => Err(DeletionError::Kube {
            what: format!("{} the finalizer", if add { "add" } else { "remove" }),
            source,
        }),
    }
}

/// One deletion pass: deletes what is left, and returns what is still waited for (empty once the
/// finalizer is gone).
///
/// # Errors
/// When the API server refuses a delete or the finalizer's removal.
pub async fn reconcile(
    ctx: &Context,
    cluster: &K8ssandraCluster,
) -> Result<Vec<String>, DeletionError> {
    if !finalizer::has_finalizer(&cluster.metadata, FINALIZER) {
        return Ok(Vec::new());
    }
    let me = (cluster.namespace().unwrap_or_default(), cluster.name_any());
    let mut waiting = Vec::new();
    let mut contexts = ctx.registry.contexts();
    contexts.extend(
        k8ssandra_api::merge::resolve_datacenters(cluster)
            .into_iter()
            .map(|dc| dc.k8s_context),
    );
    for context in contexts {
        let reached = reach(ctx, &context);
        let Some(remote) = reached.usable() else {
            // A context no datacenter ever ran in holds nothing of this cluster.
            let recorded = cluster
                .status
                .as_ref()
                .and_then(|s| s.datacenters.as_ref())
                .is_some_and(|d| {
                    d.values()
                        .any(|e| e.context_name.as_deref() == Some(&context))
                });
            if recorded && let Some(problem) = reached.problem(&context) {
                waiting.push(format!(
                    "{problem}; its datacenters are deleted once it is back"
                ));
            }
            continue;
        };
        for object in remote.datacenters.state() {
            if owner_of(object.labels()).as_ref() != Some(&me) {
                continue;
            }
            let (namespace, name) = (object.namespace().unwrap_or_default(), object.name_any());
            waiting.push(format!(
                "{name} in {} is being deleted",
                display_context(&context)
            ));
            if object.meta().deletion_timestamp.is_none() {
                let api = Api::<CassandraDatacenter>::namespaced(remote.client.clone(), &namespace);
                delete_if_present(&api, &name, &DeleteParams::default())
                    .await
                    .map_err(|source| DeletionError::Kube {
                        what: format!(
                            "delete CassandraDatacenter {namespace}/{name} in {}",
                            display_context(&context)
                        ),
                        source,
                    })?;
                tracing::info!(%context, %namespace, datacenter = %name, "CassandraDatacenter deleted");
            }
        }
        for slice in remote.seed_slices.state() {
            if owner_of(slice.labels()).as_ref() != Some(&me) {
                continue;
            }
            let (namespace, name) = (slice.namespace().unwrap_or_default(), slice.name_any());
            waiting.push(format!(
                "EndpointSlice {name} in {} is being deleted",
                display_context(&context)
            ));
            let api = Api::<EndpointSlice>::namespaced(remote.client.clone(), &namespace);
            delete_if_present(&api, &name, &DeleteParams::default())
                .await
                .map_err(|source| DeletionError::Kube {
                    what: format!(
                        "delete EndpointSlice {namespace}/{name} in {}",
                        display_context(&context)
                    ),
                    source,
                })?;
        }
    }
    // Its operations' tasks (a schema change, a rebuild, a check) go too.
    for context in ctx.registry.contexts() {
        let Some(remote) = reach(ctx, &context).usable().cloned() else {
            continue;
        };
        for task in remote.tasks.state() {
            if owner_of(task.labels()).as_ref() != Some(&me) {
                continue;
            }
            let (namespace, name) = (task.namespace().unwrap_or_default(), task.name_any());
            let api = Api::<CassandraTask>::namespaced(remote.client.clone(), &namespace);
            delete_if_present(&api, &name, &DeleteParams::default())
                .await
                .map_err(|source| DeletionError::Kube {
                    what: format!(
                        "delete CassandraTask {namespace}/{name} in {}",
                        display_context(&context)
                    ),
                    source,
                })?;
        }
    }
    if let Some(replicated) = ctx.caches.replicated_secrets.get(&me.0, &me.1) {
        waiting.push(format!("ReplicatedSecret {} removes its copies", me.1));
        if replicated.meta().deletion_timestamp.is_none() {
            let api = Api::<ReplicatedSecret>::namespaced(ctx.client.clone(), &me.0);
            delete_if_present(&api, &me.1, &DeleteParams::default())
                .await
                .map_err(|source| DeletionError::Kube {
                    what: format!("delete ReplicatedSecret {}", me.1),
                    source,
                })?;
        }
    }
    if waiting.is_empty() {
        patch_finalizer(ctx, cluster, false).await?;
        tracing::info!(namespace = %me.0, cluster = %me.1, "K8ssandraCluster deleted everywhere");
    }
    Ok(waiting)
}
