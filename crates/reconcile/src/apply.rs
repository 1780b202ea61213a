//! Server-side apply: every write of the operator goes through here, with one field manager per
//! controller and `force`, so that the operator owns the fields it sets and nothing else. Also
//! the one delete that tolerates an object already gone.

use std::fmt::Debug;

use kube::{
    Api, Resource,
    api::{DeleteParams, Patch, PatchParams},
};
use serde::{Serialize, de::DeserializeOwned};

/// Applies `object` (which carries `apiVersion` and `kind`) as `manager`, taking over conflicting
/// fields; returns the object as stored.
///
/// # Errors
/// When the API server refuses the object.
pub async fn apply<K>(api: &Api<K>, manager: &str, object: &K) -> Result<K, kube::Error>
where
    K: Resource + Serialize + DeserializeOwned + Clone + Debug,
{
    let name = object.meta().name.clone().unwrap_or_default();
    api.patch(&name, &params(manager), &Patch::Apply(object))
        .await
}

/// Deletes object `name` with `params`; an object already gone is no error (two passes, or the
/// garbage collector, may get there first).
///
/// # Errors
/// When the API server refuses the delete.
pub async fn delete_if_present<K>(
    api: &Api<K>,
    name: &str,
    params: &DeleteParams,
) -> Result<(), kube::Error>
where
    K: Clone + DeserializeOwned + Debug,
{
    match api.delete(name, params).await {
        Ok(_) => Ok(()),
        Err(kube::Error::Api(status)) if status.code == 404 => Ok(()),
        Err(error) => Err(error),
    }
}

/// Applies the `status` of object `name` as `manager`: `status` is the whole status this manager
/// owns, so fields it set before and leaves out now are removed.
///
/// # Errors
/// When the API server refuses the status.
pub async fn apply_status<K>(
    api: &Api<K>,
    manager: &str,
    name: &str,
    status: &serde_json::Value,
) -> Result<K, kube::Error>
where
    K: Resource<DynamicType = ()> + DeserializeOwned + Clone + Debug,
{
    let body = serde_json::json!({
        "apiVersion": K::api_version(&()),
        "kind": K::kind(&()),
        "status": status,
    });
    api.patch_status(name, &params(manager), &Patch::Apply(&body))
        .await
}

fn params(manager: &str) -> PatchParams {
    PatchParams::apply(manager).force()
}
