//! The initial replication of the system keyspaces, `k8ssandra.io/initial-system-replication`:
//! min(3, size) for each datacenter the cluster had when it was first seen, recorded once on the
//! K8ssandraCluster so that later size changes or new datacenters do not change what the first
//! datacenter's nodes were started with (upstream's fix for its #829).

use std::collections::BTreeMap;

use k8ssandra_api::merge::ResolvedDatacenter;

/// Replicas a system keyspace gets in a datacenter at most.
const MAX_SYSTEM_REPLICAS: i32 = 3;

/// The annotation holds something other than a JSON object of datacenter name to replicas.
#[derive(Debug, thiserror::Error)]
#[error(
    "annotation k8ssandra.io/initial-system-replication is not a JSON object of datacenter to replicas: {0}"
)]
pub struct ReplicationAnnotationError(#[source] serde_json::Error);

/// Replicas per Cassandra datacenter name: min(3, size), at least 1.
#[must_use]
pub fn initial_system_replication(datacenters: &[ResolvedDatacenter]) -> BTreeMap<String, u32> {
    datacenters
        .iter()
        .map(|dc| {
            let name = dc
                .options
                .datacenter_name
                .clone()
                .filter(|n| !n.is_empty())
                .unwrap_or_else(|| dc.meta.name.clone());
            let replicas = dc.size.clamp(1, MAX_SYSTEM_REPLICAS).unsigned_abs();
            (name, replicas)
        })
        .collect()
}

/// The annotation's value.
#[must_use]
pub fn to_annotation(replication: &BTreeMap<String, u32>) -> String {
    serde_json::to_string(replication).unwrap_or_default()
}

/// The replication an annotation records.
///
/// # Errors
/// When it is not a JSON object of datacenter name to replica count.
pub fn from_annotation(value: &str) -> Result<BTreeMap<String, u32>, ReplicationAnnotationError> {
    serde_json::from_str(value).map_err(ReplicationAnnotationError)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn annotation_round_trips_and_refuses_other_shapes() {
        let replication = BTreeMap::from([("dc1".to_owned(), 3), ("dc2".to_owned(), 1)]);
        let text = to_annotation(&replication);
        assert_eq!(text, r#"{"dc1":3,"dc2":1}"#);
        assert_eq!(from_annotation(&text).expect("parses"), replication);
        assert!(from_annotation(r#"{"dc1":"three"}"#).is_err());
        assert!(from_annotation("dc1:3").is_err());
    }
}
