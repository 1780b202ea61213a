//! Children: the Services, additional-seed EndpointSlices, PodDisruptionBudget and superuser
//! Secret. Each is built by its pure builder and applied only when the live object's resource
//! hash differs, so an unchanged datacenter costs reads only. (StatefulSets are the planner's:
//! their replicas and rollouts are node operations.)

use std::fmt::Debug;

use k8s_openapi::api::{
    core::v1::{Secret, Service},
    discovery::v1::EndpointSlice,
    policy::v1::PodDisruptionBudget,
};
use k8ssandra_api::{cassandra::CassandraDatacenter, labels::annotations};
use k8ssandra_reconcile::apply::apply;
use kube::{Api, Resource, ResourceExt};
use serde::{Serialize, de::DeserializeOwned};

use super::{Context, FIELD_MANAGER};
use crate::build::{self, BuildError, hash, superuser_secret};

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
        kind: &'static str,
        /// Its name.
        name: String,
        /// The API error.
        source: kube::Error,
    },
    /// No secure random bytes for the superuser password.
    #[error("no secure random bytes for the superuser password")]
    Random,
}

/// Applies every child that is missing or differs; returns how many were written.
///
/// # Errors
/// When a builder or the API server fails.
pub async fn apply_children(
    ctx: &Context,
    dc: &CassandraDatacenter,
) -> Result<usize, ChildrenError> {
    let namespace = dc.namespace().unwrap_or_default();
    let client = &ctx.client;
    let mut written = 0;
    for service in build::services::services(dc)? {
        written += apply_if_changed(
            &Api::<Service>::namespaced(client.clone(), &namespace),
            &service,
            "Service",
        )
        .await?;
    }
    for slice in build::services::additional_seed_endpoint_slices(dc)? {
        written += apply_if_changed(
            &Api::<EndpointSlice>::namespaced(client.clone(), &namespace),
            &slice,
            "EndpointSlice",
        )
        .await?;
    }
    let pdb_disabled = dc
        .annotations()
        .get(annotations::DISABLE_PDB_CREATION)
        .is_some_and(|v| v == "true");
    if !pdb_disabled {
        let pdb = build::pdb::pod_disruption_budget(dc)?;
        written += apply_if_changed(
            &Api::<PodDisruptionBudget>::namespaced(client.clone(), &namespace),
            &pdb,
            "PodDisruptionBudget",
        )
        .await?;
    }
    written += create_superuser_secret(ctx, dc, &namespace).await?;
    Ok(written)
}

/// Applies `desired` unless the live object carries the same resource hash.
async fn apply_if_changed<K>(
    api: &Api<K>,
    desired: &K,
    kind: &'static str,
) -> Result<usize, ChildrenError>
where
    K: Resource + Serialize + DeserializeOwned + Clone + Debug,
{
    let name = desired.meta().name.clone().unwrap_or_default();
    let error = |source| ChildrenError::Apply {
        kind,
        name: name.clone(),
        source,
    };
    let live = api.get_opt(&name).await.map_err(error)?;
    if let Some(live) = &live
        && hash::stamped_hash(live) == hash::stamped_hash(desired)
    {
        return Ok(0);
    }
    apply(api, FIELD_MANAGER, desired).await.map_err(error)?;
    Ok(1)
}

/// Creates the generated superuser Secret when the spec names none and it does not exist yet.
/// An existing one is never touched: its password is the cluster's.
async fn create_superuser_secret(
    ctx: &Context,
    dc: &CassandraDatacenter,
    namespace: &str,
) -> Result<usize, ChildrenError> {
    if !superuser_secret::generates_superuser_secret(dc) {
        return Ok(0);
    }
    let api = Api::<Secret>::namespaced(ctx.client.clone(), namespace);
    let name = dc.spec.superuser_secret_name();
    let error = |source| ChildrenError::Apply {
        kind: "Secret",
        name: name.clone(),
        source,
    };
    if api.get_metadata_opt(&name).await.map_err(error)?.is_some() {
        return Ok(0);
    }
    let mut random = [0_u8; superuser_secret::PASSWORD_RANDOM_BYTES];
    ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut random)
        .map_err(|_| ChildrenError::Random)?;
    let Some(secret) = superuser_secret::superuser_secret(dc, &random) else {
        return Ok(0);
    };
    apply(&api, FIELD_MANAGER, &secret).await.map_err(error)?;
    Ok(1)
}
