//! Keyspaces: creation, replication changes and replication reads.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// Replication factor of one datacenter.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReplicationSetting {
    /// Datacenter name.
    pub dc_name: String,
    /// Replicas in that datacenter.
    pub replication_factor: u32,
}

/// Body of keyspace create and alter: NetworkTopologyStrategy with one factor per datacenter.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyspaceReplicationRequest {
    /// Keyspace name.
    pub keyspace_name: String,
    /// Factor per datacenter.
    #[serde(default)]
    pub replication_settings: Vec<ReplicationSetting>,
}

impl KeyspaceReplicationRequest {
    /// A request from `(datacenter, factor)` pairs.
    pub fn new<'a>(keyspace: &str, factors: impl IntoIterator<Item = (&'a str, u32)>) -> Self {
        Self {
            keyspace_name: keyspace.to_string(),
            replication_settings: factors
                .into_iter()
                .map(|(dc, factor)| ReplicationSetting {
                    dc_name: dc.to_string(),
                    replication_factor: factor,
                })
                .collect(),
        }
    }
}

/// Class name Cassandra reports for NetworkTopologyStrategy.
pub const NETWORK_TOPOLOGY_STRATEGY: &str = "org.apache.cassandra.locator.NetworkTopologyStrategy";
/// Class name Cassandra reports for SimpleStrategy.
pub const SIMPLE_STRATEGY: &str = "org.apache.cassandra.locator.SimpleStrategy";
/// Class name Cassandra reports for LocalStrategy (node-local system keyspaces).
pub const LOCAL_STRATEGY: &str = "org.apache.cassandra.locator.LocalStrategy";

/// A keyspace's replication as `GET /api/v0/ops/keyspace/replication` reports it (a string map).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct KeyspaceReplication {
    /// `class` plus either `replication_factor` or one entry per datacenter.
    pub options: BTreeMap<String, String>,
}

impl KeyspaceReplication {
    /// Replication strategy class.
    pub fn class(&self) -> Option<&str> {
        self.options.get("class").map(String::as_str)
    }

    /// Factor per datacenter (NetworkTopologyStrategy); empty for other strategies.
    pub fn datacenter_factors(&self) -> BTreeMap<String, u32> {
        self.options
            .iter()
            .filter(|(key, _)| key.as_str() != "class" && key.as_str() != "replication_factor")
            .filter_map(|(dc, factor)| Some((dc.clone(), parse_factor(factor)?)))
            .collect()
    }

    /// The single factor of SimpleStrategy.
    pub fn simple_factor(&self) -> Option<u32> {
        self.options
            .get("replication_factor")
            .and_then(|f| parse_factor(f))
    }
}

/// Reads `3`, or `3/1` (full/transient replicas) as 3.
fn parse_factor(raw: &str) -> Option<u32> {
    raw.split('/').next()?.trim().parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_network_topology_factors() {
        let replication: KeyspaceReplication = serde_json::from_str(
            r#"{"class":"org.apache.cassandra.locator.NetworkTopologyStrategy","dc1":"3","dc2":"2/1"}"#,
        )
        .unwrap();
        assert_eq!(replication.class(), Some(NETWORK_TOPOLOGY_STRATEGY));
        let factors = replication.datacenter_factors();
        assert_eq!(factors.get("dc1"), Some(&3));
        assert_eq!(factors.get("dc2"), Some(&2));
        assert_eq!(replication.simple_factor(), None);
    }

    #[test]
    fn request_serialises_like_the_api() {
        let request = KeyspaceReplicationRequest::new("ks", [("dc1", 3)]);
        assert_eq!(
            serde_json::to_string(&request).unwrap(),
            r#"{"keyspace_name":"ks","replication_settings":[{"dc_name":"dc1","replication_factor":3}]}"#
        );
    }
}
