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

/// How long until `seconds` have passed since `since` (zero once they have). Times are kept in
/// whole seconds, rounded down: `since` may stand for a moment up to a second later, so a second
/// is added and the wait is never cut short (a TTL deletes nothing early).
#[must_use]
pub fn left_after(since: &Time, seconds: i64, now: &Time) -> std::time::Duration {
    let due = since
        .0
        .as_second()
        .saturating_add(seconds)
        .saturating_add(1);
    u64::try_from(due.saturating_sub(now.0.as_second()))
        .map(std::time::Duration::from_secs)
        .unwrap_or_default()
}

#[cfg(test)]
mod left_after_tests {
    use super::*;

    fn at(seconds: i64) -> Time {
        Time(Timestamp::from_second(seconds).unwrap())
    }

    #[test]
    fn a_second_is_added_for_the_rounding() {
        assert_eq!(left_after(&at(100), 5, &at(100)).as_secs(), 6);
        assert_eq!(left_after(&at(100), 5, &at(105)).as_secs(), 1);
        assert!(left_after(&at(100), 5, &at(106)).is_zero());
        assert!(left_after(&at(100), 5, &at(900)).is_zero());
    }
}
