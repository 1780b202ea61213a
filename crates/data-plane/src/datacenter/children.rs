//! Children: the Services, additional-seed EndpointSlices and PodDisruptionBudget. Each is built
//! by its pure builder; [`changed_children`] finds those whose live resource hash differs,
//! [`apply_children`] writes them once admission let them through, and
//! [`delete_unwanted_children`] removes those the spec no longer asks for. Live objects are read
//! from the watch caches, so an unchanged datacenter costs no request at all. (StatefulSets are
//! the planner's: their replicas and rollouts are node operations.)

use std::collections::BTreeMap;

use k8s_openapi::api::{discovery::v1::EndpointSlice, policy::v1::PodDisruptionBudget};
use k8ssandra_api::{
    cassandra::CassandraDatacenter,
    labels::{self, annotations},
};
use k8ssandra_reconcile::{
    apply::{apply, delete_if_present},
    cache::Cache,
};
use kube::{
    Api, Resource, ResourceExt,
    api::{ApiResource, DeleteParams, DynamicObject},
};
use serde::Serialize;

use super::{Context, FIELD_MANAGER};
use crate::build::{self, BuildError, hash};

/// Why a child could not be made.
#[derive(Debug, thiserror::Error)]
pub enum ChildrenError {
    /// A builder failed.
    #[error(transparent)]
    Build(#[from] BuildError),
    /// The API server refused a read or a write.
    #[error("could not apply {kind} {name}: {source}")]
    Apply {
        /// Kind of the child.
        kind: String,
        /// Its name.
        name: String,
        /// The API error.
        source: kube::Error,
    },
    /// The API server refused to list or delete a child no longer wanted.
    #[error("could not delete {kind} {name}: {source}")]
    Delete {
        /// Kind of the child.
        kind: &'static str,
        /// Its name.
        name: String,
        /// The API error.
        source: kube::Error,
    },
    /// A built object could not be turned into a request body.
    #[error("could not encode {kind} {name}: {source}")]
    Encode {
        /// Kind of the child.
        kind: String,
        /// Its name.
        name: String,
        /// The error.
        source: serde_json::Error,
    },
}

/// An object that differs from its live version (or has none) and is to be written.
#[derive(Clone, Debug)]
pub struct Pending {
    /// The object, as it will be applied.
    pub object: DynamicObject,
    /// Its kind and API.
    pub resource: ApiResource,
}

impl Pending {
    /// A pending write of `object`.
    ///
    /// # Errors
    /// When the object cannot be encoded.
    pub fn of<K>(object: &K) -> Result<Self, ChildrenError>
    where
        K: Resource<DynamicType = ()> + Serialize,
    {
        let encode = |source| ChildrenError::Encode {
            kind: K::kind(&()).into_owned(),
            name: object.meta().name.clone().unwrap_or_default(),
            source,
        };
        let value = serde_json::to_value(object).map_err(encode)?;
        let object = serde_json::from_value(value).map_err(encode)?;
        Ok(Self {
            object,
            resource: ApiResource::erase::<K>(&()),
        })
    }

    /// `Kind name`, as messages name it.
    #[must_use]
    pub fn describe(&self) -> String {
        format!("{} {}", self.resource.kind, self.object.name_any())
    }

    /// Its API in `namespace`.
    #[must_use]
    pub fn api(&self, ctx: &Context, namespace: &str) -> Api<DynamicObject> {
        Api::namespaced_with(ctx.client.clone(), namespace, &self.resource)
    }

    /// The error of a failed read or write of it.
    fn error(&self, source: kube::Error) -> ChildrenError {
        ChildrenError::Apply {
            kind: self.resource.kind.clone(),
            name: self.object.name_any(),
            source,
        }
    }
}

/// The children whose live object (in the watch cache) is missing or carries another resource
/// hash. `peers` are the other datacenters of the namespace (the cluster's seed Service is shared
/// with them).
///
/// # Errors
/// When a builder fails.
pub fn changed_children(
    ctx: &Context,
    dc: &CassandraDatacenter,
    peers: &[&CassandraDatacenter],
) -> Result<Vec<Pending>, ChildrenError> {
    let namespace = dc.namespace().unwrap_or_default();
    let caches = &ctx.caches;
    let mut changed = Vec::new();
    for service in build::services::services(dc, peers)? {
        push_if_changed(&mut changed, &caches.services, &namespace, &service)?;
    }
    for slice in build::services::additional_seed_endpoint_slices(dc)? {
        push_if_changed(&mut changed, &caches.endpoint_slices, &namespace, &slice)?;
    }
    if !pdb_disabled(dc) {
        let pdb = build::pdb::pod_disruption_budget(dc)?;
        push_if_changed(&mut changed, &caches.pdbs, &namespace, &pdb)?;
    }
    Ok(changed)
}

fn pdb_disabled(dc: &CassandraDatacenter) -> bool {
    dc.annotations()
        .get(annotations::DISABLE_PDB_CREATION)
        .is_some_and(|v| v == "true")
}

fn push_if_changed<K>(
    changed: &mut Vec<Pending>,
    cache: &Cache<K>,
    namespace: &str,
    desired: &K,
) -> Result<(), ChildrenError>
where
    K: Resource<DynamicType = ()> + Clone + Serialize + 'static,
{
    let live = cache.get(namespace, &desired.name_any());
    let same = live
        .as_ref()
        .is_some_and(|live| hash::stamped_hash(live.as_ref()) == hash::stamped_hash(desired));
    if !same {
        changed.push(Pending::of(desired)?);
    }
    Ok(())
}

/// Writes the `changed` children; returns how many objects were written.
///
/// # Errors
/// When the API server refuses a write.
pub async fn apply_children(
    ctx: &Context,
    dc: &CassandraDatacenter,
    changed: &[Pending],
) -> Result<usize, ChildrenError> {
    let namespace = dc.namespace().unwrap_or_default();
    for pending in changed {
        let written = apply(
            &pending.api(ctx, &namespace),
            FIELD_MANAGER,
            &pending.object,
        )
        .await
        .map_err(|source| pending.error(source))?;
        let caches = &ctx.caches;
        match pending.resource.kind.as_str() {
            "Service" => caches.services.wrote(&written.metadata),
            "EndpointSlice" => caches.endpoint_slices.wrote(&written.metadata),
            "PodDisruptionBudget" => caches.pdbs.wrote(&written.metadata),
            _ => {}
        }
    }
    Ok(changed.len())
}

/// Deletes the children this datacenter owns that its spec no longer asks for: additional-seed
/// EndpointSlices of an address type `additionalSeeds` no longer lists, and the
/// PodDisruptionBudget once `disable-pdb-creation` is set. Returns how many were deleted.
///
/// # Errors
/// When a list or a delete is refused.
pub async fn delete_unwanted_children(
    ctx: &Context,
    dc: &CassandraDatacenter,
) -> Result<usize, ChildrenError> {
    let namespace = dc.namespace().unwrap_or_default();
    let uid = dc.uid().unwrap_or_default();
    let owned = |meta: &k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta| {
        meta.owner_references.iter().flatten().any(|o| o.uid == uid)
    };
    let wanted: Vec<String> = build::services::additional_seed_endpoint_slices(dc)?
        .iter()
        .map(ResourceExt::name_any)
        .collect();
    let service = k8ssandra_api::names::additional_seed_service(
        &dc.spec.cluster_name,
        &dc.label_resource_name(),
    );
    let slices = Api::<EndpointSlice>::namespaced(ctx.client.clone(), &namespace);
    let failed = |kind, name: &str| {
        let name = name.to_owned();
        move |source| ChildrenError::Delete { kind, name, source }
    };
    let selector = BTreeMap::from([(labels::SERVICE_NAME.to_owned(), service.clone())]);
    let mut deleted = 0;
    for slice in ctx
        .caches
        .endpoint_slices
        .list(&namespace, &selector)
        .iter()
        .filter(|s| owned(&s.metadata) && !wanted.contains(&s.name_any()))
    {
        let name = slice.name_any();
        delete_if_present(&slices, &name, &DeleteParams::default())
            .await
            .map_err(failed("EndpointSlice", &name))?;
        deleted += 1;
    }
    if pdb_disabled(dc) {
        let name = build::pdb::pod_disruption_budget(dc)?.name_any();
        let live = ctx.caches.pdbs.get(&namespace, &name);
        if live.is_some_and(|pdb| owned(&pdb.metadata)) {
            let pdbs = Api::<PodDisruptionBudget>::namespaced(ctx.client.clone(), &namespace);
            delete_if_present(&pdbs, &name, &DeleteParams::default())
                .await
                .map_err(failed("PodDisruptionBudget", &name))?;
            deleted += 1;
        }
    }
    Ok(deleted)
}
