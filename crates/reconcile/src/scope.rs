//! Small things every controller needs the same way: the API of a kind in the watched namespace
//! (or all of them), and the time as the API server stores it.

use k8s_openapi::{apimachinery::pkg::apis::meta::v1::Time, jiff::Timestamp};
use kube::{Api, Client, Resource};
use serde::de::DeserializeOwned;

/// The API of `K` in `namespace`, or in every namespace when `None`.
#[must_use]
pub fn scoped_api<K>(client: Client, namespace: Option<&str>) -> Api<K>
where
    K: Resource<Scope = k8s_openapi::NamespaceResourceScope, DynamicType = ()>
        + Clone
        + DeserializeOwned
        + std::fmt::Debug,
{
    match namespace {
        Some(ns) => Api::namespaced(client, ns),
        None => Api::all(client),
    }
}

/// Now, in whole seconds as the API server stores times, so that a status computed twice in the
/// same second (or read back) compares equal.
#[must_use]
pub fn now() -> Time {
    let now = Timestamp::now();
    Time(Timestamp::from_second(now.as_second()).unwrap_or(now))
}
