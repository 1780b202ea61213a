//! The controller owner reference that ties every owned child to its `CassandraDatacenter`, so
//! that Kubernetes garbage-collects the children with the datacenter and watches map back to it.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;
use k8ssandra_api::cassandra::CassandraDatacenter;
use kube::Resource;

use super::{BuildError, Result};

/// The controller owner reference to `dc` (`controller` and `blockOwnerDeletion` set, as
/// controller-runtime's `SetControllerReference` does upstream).
///
/// # Errors
/// When the datacenter has no name or uid, i.e. was not read from the API server.
pub fn controller_reference(dc: &CassandraDatacenter) -> Result<OwnerReference> {
    if dc.metadata.name.as_deref().is_none_or(str::is_empty) {
        return Err(BuildError::MissingMetadata("metadata.name"));
    }
    if dc.metadata.uid.as_deref().is_none_or(str::is_empty) {
        return Err(BuildError::MissingMetadata("metadata.uid"));
    }
    let mut owner = dc
        .controller_owner_ref(&())
        .ok_or(BuildError::MissingMetadata("metadata.uid"))?;
    // Deleting the datacenter in the foreground waits for its children, as upstream's reference does.
    owner.controller = Some(true);
    owner.block_owner_deletion = Some(true);
    Ok(owner)
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8ssandra_api::cassandra::CassandraDatacenterSpec;

    #[test]
    fn the_owner_is_the_datacenter_as_controller() {
        let mut dc = CassandraDatacenter::new("dc1", CassandraDatacenterSpec::default());
        assert!(matches!(
            controller_reference(&dc),
            Err(BuildError::MissingMetadata("metadata.uid"))
        ));
        dc.metadata.uid = Some("1234".into());
        let owner = controller_reference(&dc).unwrap_or_default();
        assert_eq!(owner.api_version, "cassandra.datastax.com/v1beta1");
        assert_eq!(owner.kind, "CassandraDatacenter");
        assert_eq!(owner.name, "dc1");
        assert_eq!(owner.uid, "1234");
        assert_eq!(owner.controller, Some(true));
        assert_eq!(owner.block_owner_deletion, Some(true));
    }
}
