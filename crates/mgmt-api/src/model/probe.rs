//! `GET /api/v0/probes/cluster`: can the cluster reach a consistency level.

use std::collections::BTreeMap;
use std::fmt;

/// A CQL consistency level.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConsistencyLevel {
    /// One replica anywhere.
    One,
    /// Two replicas.
    Two,
    /// Three replicas.
    Three,
    /// A quorum of all replicas.
    Quorum,
    /// Every replica.
    All,
    /// One replica in the local datacenter.
    LocalOne,
    /// A quorum in the local datacenter.
    LocalQuorum,
    /// A quorum in every datacenter.
    EachQuorum,
}

impl ConsistencyLevel {
    /// Every level.
    pub const ALL_LEVELS: &'static [ConsistencyLevel] = &[
        ConsistencyLevel::One,
        ConsistencyLevel::Two,
        ConsistencyLevel::Three,
        ConsistencyLevel::Quorum,
        ConsistencyLevel::All,
        ConsistencyLevel::LocalOne,
        ConsistencyLevel::LocalQuorum,
        ConsistencyLevel::EachQuorum,
    ];

    /// Wire name, like `LOCAL_QUORUM`.
    pub fn as_str(self) -> &'static str {
        match self {
            ConsistencyLevel::One => "ONE",
            ConsistencyLevel::Two => "TWO",
            ConsistencyLevel::Three => "THREE",
            ConsistencyLevel::Quorum => "QUORUM",
            ConsistencyLevel::All => "ALL",
            ConsistencyLevel::LocalOne => "LOCAL_ONE",
            ConsistencyLevel::LocalQuorum => "LOCAL_QUORUM",
            ConsistencyLevel::EachQuorum => "EACH_QUORUM",
        }
    }

    /// Parses a wire name, case-insensitively.
    pub fn parse(raw: &str) -> Option<ConsistencyLevel> {
        Self::ALL_LEVELS
            .iter()
            .copied()
            .find(|level| level.as_str().eq_ignore_ascii_case(raw.trim()))
    }
}

impl fmt::Display for ConsistencyLevel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Outcome of the cluster probe.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClusterHealth {
    /// Every token range can reach the consistency level.
    Healthy,
    /// Token ranges that cannot, with the reasons (the server's 500 body).
    Unhealthy(BTreeMap<String, Vec<String>>),
}

impl ClusterHealth {
    /// True when healthy.
    pub fn is_healthy(&self) -> bool {
        matches!(self, ClusterHealth::Healthy)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for level in ConsistencyLevel::ALL_LEVELS {
            assert_eq!(ConsistencyLevel::parse(level.as_str()), Some(*level));
        }
        assert_eq!(
            ConsistencyLevel::parse("local_quorum"),
            Some(ConsistencyLevel::LocalQuorum)
        );
        assert_eq!(ConsistencyLevel::parse("SERIAL"), None);
    }
}
