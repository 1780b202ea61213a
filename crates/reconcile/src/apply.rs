//! Server-side apply: every write of the operator goes through here, with one field manager per
//! controller and `force`, so that the operator owns the fields it sets and nothing else.

use std::fmt::Debug;

use kube::{
    Api, Resource,
    api::{Patch, PatchParams},
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
