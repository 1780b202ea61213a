//! The default StorageClass of a local cluster, named and behaving like kind's.

use std::collections::BTreeMap;

use k8s_openapi::{api::storage::v1::StorageClass, apimachinery::pkg::apis::meta::v1::ObjectMeta};

/// Name of the default StorageClass, as in kind.
pub const STORAGE_CLASS: &str = "standard";
/// Provisioner served by the kwok stages in `stages/local-volumes.yaml`.
pub const PROVISIONER: &str = "e2e.k8ssandra.io/local-path";

/// The `standard` StorageClass: default, provisioned when a pod is scheduled, deleted on release.
pub fn standard_storage_class() -> StorageClass {
    StorageClass {
        metadata: ObjectMeta {
            name: Some(STORAGE_CLASS.to_string()),
            annotations: Some(BTreeMap::from([(
                "storageclass.kubernetes.io/is-default-class".to_string(),
                "true".to_string(),
            )])),
            ..ObjectMeta::default()
        },
        provisioner: PROVISIONER.to_string(),
        reclaim_policy: Some("Delete".to_string()),
        volume_binding_mode: Some("WaitForFirstConsumer".to_string()),
        ..StorageClass::default()
    }
}
