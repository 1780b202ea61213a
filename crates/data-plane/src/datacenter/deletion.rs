//! Deleting a datacenter, as upstream: the finalizer `finalizer.cassandra.datastax.com` (not added
//! with `cassandra.datastax.com/no-finalizer`) holds the datacenter until its pods are stopped
//! and its volume claims deleted (kept with `cassandra.datastax.com/delete-pvc: "false"`); then
//! the finalizer goes and owner references take the rest.
//!
//! With `cassandra.datastax.com/decommission-on-delete`, while another datacenter of the cluster
//! is alive in the ring, the nodes are decommissioned first, one at a time, so that the cluster
//! forgets this datacenter instead of seeing its nodes down for ever (see [`decommissions`]).
//!
//! The finalizer is written with a merge patch guarded by the resourceVersion, so that a
//! concurrent edit of the finalizer list is never overwritten.

use k8s_openapi::{
    api::{apps::v1::StatefulSet, core::v1::PersistentVolumeClaim},
    apimachinery::pkg::apis::meta::v1::ObjectMeta,
};
use k8ssandra_api::{cassandra::CassandraDatacenter, labels};
use k8ssandra_mgmt_api::{EndpointStates, NodeStatus};
use k8ssandra_reconcile::{apply::delete_if_present, events::Severity, finalizer};
use kube::{
    Api, Resource, ResourceExt,
    api::{DeleteParams, Patch, PatchParams},
};

use super::{Context, observe::Observed, users};

/// The finalizer upstream puts on a datacenter.
pub const FINALIZER: &str = "finalizer.cassandra.datastax.com";

/// Why a step of the deletion failed; the pass is retried.
#[derive(Debug, thiserror::Error)]
pub enum DeletionError {
    /// The API server refused a write.
    #[error("could not {what}: {source}")]
    Kube {
        /// What the pass tried.
        what: String,
        /// The API error.
        source: kube::Error,
    },
    /// Secrets could not be unmarked.
    #[error(transparent)]
    Users(#[from] users::UsersError),
}

fn annotation<'a>(meta: &'a ObjectMeta, key: &str) -> Option<&'a str> {
    meta.annotations.as_ref()?.get(key).map(String::as_str)
}

/// Whether the finalizer is on the object.
#[must_use]
pub fn has_finalizer(meta: &ObjectMeta) -> bool {
    finalizer::has_finalizer(meta, FINALIZER)
}

/// Whether the volume claims go with the datacenter (upstream's default).
#[must_use]
pub fn deletes_claims(dc: &CassandraDatacenter) -> bool {
    annotation(&dc.metadata, labels::annotations::DELETE_PVC) != Some("false")
}

/// Whether the nodes are to be decommissioned before the datacenter goes: the annotation is set
/// and a node of another datacenter is NORMAL in the ring.
#[must_use]
pub fn decommissions(dc: &CassandraDatacenter, gossip: Option<&EndpointStates>) -> bool {
    let asked = annotation(&dc.metadata, labels::annotations::DECOMMISSION_ON_DELETE)
        .is_some_and(|v| v == "true");
    let own = dc.datacenter_name();
    asked
        && gossip.is_some_and(|g| {
            g.entries.iter().any(|e| {
                e.datacenter() != Some(own) && e.status() == NodeStatus::Normal && e.is_alive()
            })
        })
}

/// The merge patch that adds (or removes) the finalizer, guarded by the resourceVersion; `None`
/// when there is nothing to change (or `no-finalizer` forbids adding it).
#[must_use]
pub fn finalizer_patch(meta: &ObjectMeta, add: bool) -> Option<serde_json::Value> {
    if add && annotation(meta, labels::annotations::NO_FINALIZER).is_some() {
        return None;
    }
    finalizer::finalizer_patch(meta, FINALIZER, add)
}

/// Writes the finalizer patch, if any; the datacenter may not decode, so only its metadata is
/// read back.
///
/// # Errors
/// When the API server refuses (a concurrent change answers 409; the pass is retried).
pub async fn patch_finalizer(
    ctx: &Context,
    meta: &ObjectMeta,
    add: bool,
) -> Result<bool, DeletionError> {
    let Some(patch) = finalizer_patch(meta, add) else {
        return Ok(false);
    };
    let api = Api::<CassandraDatacenter>::namespaced(
        ctx.client.clone(),
        meta.namespace.as_deref().unwrap_or_default(),
    );
    let name = meta.name.clone().unwrap_or_default();
    match api
        .patch_metadata(&name, &PatchParams::default(), &Patch::Merge(&patch))
        .await
    {
        Ok(written) => {
            ctx.caches.datacenters.wrote(&written.metadata);
            Ok(true)
        }
        // Gone already: an earlier pass removed the finalizer and the API server the object.
        Err(kube::Error::Api(status)) if status.code == 404 && !add => Ok(false),
        Err(source) => Err(DeletionError::Kube {
            what: format!(
                "{} the finalizer of CassandraDatacenter {name}",
                if add { "add" } else { "remove" }
            ),
            source,
        }),
    }
}

/// Forgets what this process remembers of a datacenter that goes.
pub fn forget(ctx: &Context, uid: &str) {
    ctx.roles.forget(uid);
    ctx.seeds.forget(uid);
    ctx.ignored.forget(uid);
    ctx.reported.forget(uid);
}

/// One pass of the deletion, once no decommission is wanted: stops the pods, deletes the claims
/// once no pod runs (unless kept), unmarks the Secrets and removes the finalizer. True when done.
///
/// # Errors
/// When a write is refused.
pub async fn stop_and_release(
    ctx: &Context,
    dc: &CassandraDatacenter,
    observed: &Observed,
) -> Result<bool, DeletionError> {
    let namespace = dc.namespace().unwrap_or_default();
    let reference = dc.object_ref(&());
    let statefulsets = Api::<StatefulSet>::namespaced(ctx.client.clone(), &namespace);
    let running: Vec<&StatefulSet> = observed
        .statefulsets
        .iter()
        .filter(|s| s.spec.as_ref().and_then(|s| s.replicas).unwrap_or(0) > 0)
        .collect();
    for sts in &running {
        let name = sts.name_any();
        let patch = serde_json::json!({ "spec": { "replicas": 0 } });
        let stopped = statefulsets
            .patch(&name, &PatchParams::default(), &Patch::Merge(&patch))
            .await
            .map_err(|source| DeletionError::Kube {
                what: format!("scale StatefulSet {name} to 0"),
                source,
            })?;
        ctx.caches.statefulsets.wrote(&stopped.metadata);
    }
    if !running.is_empty() {
        ctx.events
            .publish(
                &reference,
                Severity::Normal,
                "StoppingDatacenter",
                "Delete",
                "the datacenter is being deleted: its pods are stopped".to_owned(),
            )
            .await;
    }
    // A claim is released once no pod mounts it.
    if !running.is_empty() || !observed.pods.is_empty() {
        return Ok(false);
    }
    if deletes_claims(dc) {
        let claims = Api::<PersistentVolumeClaim>::namespaced(ctx.client.clone(), &namespace);
        let live: Vec<&PersistentVolumeClaim> = observed
            .claims
            .iter()
            .filter(|c| c.metadata.deletion_timestamp.is_none())
            .collect();
        for claim in &live {
            let name = claim.name_any();
            delete_if_present(&claims, &name, &DeleteParams::default())
                .await
                .map_err(|source| DeletionError::Kube {
                    what: format!("delete PersistentVolumeClaim {name}"),
                    source,
                })?;
        }
        if !live.is_empty() {
            ctx.events
                .publish(
                    &reference,
                    Severity::Normal,
                    "DeletedVolumeClaims",
                    "Delete",
                    format!(
                        "deleted {} data volume claim(s) with the datacenter",
                        live.len()
                    ),
                )
                .await;
        }
    }
    users::unmark_all(ctx, dc).await?;
    patch_finalizer(ctx, &dc.metadata, false).await?;
    forget(ctx, &dc.uid().unwrap_or_default());
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn meta(finalizers: &[&str], annotations: &[(&str, &str)]) -> ObjectMeta {
        ObjectMeta {
            name: Some("dc1".into()),
            resource_version: Some("42".into()),
            finalizers: Some(finalizers.iter().map(|f| (*f).to_owned()).collect()),
            annotations: Some(
                annotations
                    .iter()
                    .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                    .collect(),
            ),
            ..ObjectMeta::default()
        }
    }

    #[test]
    fn the_finalizer_is_added_once_beside_others_and_removed_alone() {
        let patch = finalizer_patch(&meta(&["other"], &[]), true).unwrap();
        assert_eq!(
            patch,
            serde_json::json!({ "metadata": {
                "resourceVersion": "42",
                "finalizers": ["other", FINALIZER],
            }})
        );
        assert!(finalizer_patch(&meta(&[FINALIZER], &[]), true).is_none());
        let patch = finalizer_patch(&meta(&["other", FINALIZER], &[]), false).unwrap();
        assert_eq!(
            patch["metadata"]["finalizers"],
            serde_json::json!(["other"])
        );
        assert!(finalizer_patch(&meta(&["other"], &[]), false).is_none());
    }

    #[test]
    fn no_finalizer_or_a_deletion_under_way_adds_none() {
        let annotated = meta(&[], &[(labels::annotations::NO_FINALIZER, "true")]);
        assert!(finalizer_patch(&annotated, true).is_none());
        let mut deleting = meta(&[], &[]);
        deleting.deletion_timestamp = Some(k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(
            k8s_openapi::jiff::Timestamp::from_second(1_700_000_000).unwrap(),
        ));
        assert!(finalizer_patch(&deleting, true).is_none());
    }
}
