//! The secrets step: the superuser Secret exists (generated, or the user's marked as
//! replicated), and the cluster's ReplicatedSecret copies it into every datacenter's namespace.
//! Nothing here with `secretsProvider: external`. A password is never logged.

use k8s_openapi::api::core::v1::Secret;
use k8ssandra_api::{
    k8ssandra::{K8ssandraCluster, SecretsProvider},
    labels::annotations,
    replication::ReplicatedSecret,
};
use k8ssandra_reconcile::{apply::apply, hash, password, tolerant::Tolerant};
use kube::{
    Api, ResourceExt,
    api::{Patch, PatchParams, PostParams},
};

use super::{Context, FIELD_MANAGER, observe::Observed};
use crate::build::{DesiredDatacenter, credentials};

/// Why the step failed; the pass is retried.
#[derive(Debug, thiserror::Error)]
pub enum SecretsError {
    /// No random bytes for a password.
    #[error(transparent)]
    Random(#[from] password::RandomUnavailable),
    /// The API server refused.
    #[error("could not {what} {kind} {name}: {source}")]
    Kube {
        /// What the step tried.
        what: &'static str,
        /// `Secret` or `ReplicatedSecret`.
        kind: &'static str,
        /// The object.
        name: String,
        /// The API error.
        source: kube::Error,
    },
    /// The ReplicatedSecret cannot be rendered (a bug).
    #[error("could not build the ReplicatedSecret: {0}")]
    Build(#[source] serde_json::Error),
}

/// Makes the superuser Secret and the ReplicatedSecret what the cluster needs; returns how many
/// writes it made.
///
/// # Errors
/// When the API server refuses a write.
pub async fn reconcile(
    ctx: &Context,
    cluster: &K8ssandraCluster,
    observed: &Observed,
    desired: &[DesiredDatacenter],
) -> Result<usize, SecretsError> {
    if cluster.secrets_provider() == SecretsProvider::External {
        return Ok(0);
    }
    let mut writes = superuser(ctx, cluster, observed).await?;
    let wanted = credentials::replicated_secret(cluster, desired).map_err(SecretsError::Build)?;
    let current = observed.replicated_secret.as_deref().and_then(|r| match r {
        Tolerant::Decoded(replicated) => hash::stamped_hash(replicated, annotations::RESOURCE_HASH),
        Tolerant::Undecodable { .. } => None,
    });
    if current != hash::stamped_hash(&wanted, annotations::RESOURCE_HASH) {
        let api = Api::<ReplicatedSecret>::namespaced(
            ctx.client.clone(),
            &cluster.namespace().unwrap_or_default(),
        );
        let written = apply(&api, FIELD_MANAGER, &wanted)
            .await
            .map_err(|source| SecretsError::Kube {
                what: "apply",
                kind: "ReplicatedSecret",
                name: wanted.name_any(),
                source,
            })?;
        ctx.caches.replicated_secrets.wrote(&written.metadata);
        writes += 1;
    }
    Ok(writes)
}

/// The superuser Secret: from the cache when it is marked; else read once, and marked (the
/// user's) or made (none).
async fn superuser(
    ctx: &Context,
    cluster: &K8ssandraCluster,
    observed: &Observed,
) -> Result<usize, SecretsError> {
    if let Some(secret) = &observed.superuser
        && credentials::mark_user_secret(cluster, secret).is_none()
    {
        return Ok(0);
    }
    let name = cluster.superuser_secret_name();
    let api =
        Api::<Secret>::namespaced(ctx.client.clone(), &cluster.namespace().unwrap_or_default());
    let error = |what| {
        let name = name.clone();
        move |source| SecretsError::Kube {
            what,
            kind: "Secret",
            name,
            source,
        }
    };
    match api.get_opt(&name).await.map_err(error("read"))? {
        Some(secret) => {
            let Some(patch) = credentials::mark_user_secret(cluster, &secret) else {
                return Ok(0);
            };
            let written = api
                .patch(&name, &PatchParams::default(), &Patch::Merge(&patch))
                .await
                .map_err(error("mark"))?;
            ctx.caches.secrets.wrote(&written.metadata);
            tracing::info!(secret = %name, "superuser Secret marked for replication");
        }
        None => {
            let secret = credentials::superuser_secret(cluster, &password::random_bytes()?);
            // A create, not an apply: a Secret made meanwhile (by the user) must not be replaced.
            let written = api
                .create(&PostParams::default(), &secret)
                .await
                .map_err(error("create"))?;
            ctx.caches.secrets.wrote(&written.metadata);
            tracing::info!(secret = %name, "superuser Secret generated");
        }
    }
    Ok(1)
}
