//! The data plane's resource hash, stamped in the `cassandra.datastax.com/resource-hash`
//! annotation (upstream's key) so the controller can tell a real change from a re-apply without
//! comparing fields the API server defaults (see [`k8ssandra_reconcile::hash`]). The values differ
//! from upstream's (Go hashes a spew dump), so a datacenter moved from upstream gets its children
//! rewritten once.

use k8s_openapi::api::apps::v1::StatefulSet;
use kube::Resource;
use serde::Serialize;

use k8ssandra_api::labels::annotations::DATA_PLANE_RESOURCE_HASH;
use k8ssandra_reconcile::hash;

use super::Result;

/// The annotation that holds the hash.
pub const ANNOTATION: &str = DATA_PLANE_RESOURCE_HASH;

/// The hash of `object` as it would be stamped (see [`k8ssandra_reconcile::hash::object_hash`]).
///
/// # Errors
/// When the object cannot be serialised.
pub fn object_hash<K: Serialize>(object: &K, ignore: &[&str]) -> Result<String> {
    Ok(hash::object_hash(object, ANNOTATION, ignore)?)
}

/// Stamps the hash of `object` (ignoring the `ignore` pointers) into its annotations.
///
/// # Errors
/// When the object cannot be serialised.
pub fn stamp<K: Resource + Serialize>(object: &mut K, ignore: &[&str]) -> Result<()> {
    Ok(hash::stamp(object, ANNOTATION, ignore)?)
}

/// Parts of a StatefulSet left out of its hash: the replica count is decided by the controller
/// (scaling is not a template change), and the claim templates never change in place (a change
/// of the data volumes is judged against the live templates by the storage step).
pub const STATEFULSET_IGNORED: &[&str] = &["/spec/replicas", "/spec/volumeClaimTemplates"];

/// The hash stamped on a StatefulSet (replicas excluded).
///
/// # Errors
/// When the object cannot be serialised.
pub fn statefulset_hash(sts: &StatefulSet) -> Result<String> {
    object_hash(sts, STATEFULSET_IGNORED)
}

/// The hash an object carries, if any.
#[must_use]
pub fn stamped_hash<K: Resource>(object: &K) -> Option<&str> {
    hash::stamped_hash(object, ANNOTATION)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_stamp_ignores_itself_and_the_named_parts() {
        let mut sts = StatefulSet::default();
        sts.metadata.name = Some("x".into());
        sts.spec = Some(Default::default());
        if let Some(spec) = sts.spec.as_mut() {
            spec.replicas = Some(3);
        }
        stamp(&mut sts, STATEFULSET_IGNORED).unwrap();
        let first = stamped_hash(&sts).unwrap().to_owned();
        // Re-stamping an already stamped object gives the same hash.
        stamp(&mut sts, STATEFULSET_IGNORED).unwrap();
        assert_eq!(stamped_hash(&sts), Some(first.as_str()));
        if let Some(spec) = sts.spec.as_mut() {
            spec.replicas = Some(5);
        }
        assert_eq!(statefulset_hash(&sts).unwrap(), first);
        if let Some(spec) = sts.spec.as_mut() {
            spec.service_name = Some("other".into());
        }
        assert_ne!(statefulset_hash(&sts).unwrap(), first);
    }
}
