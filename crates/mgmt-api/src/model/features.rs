//! `GET /api/v0/metadata/versions/features`: what this Management API version can do.

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};

/// A Management API capability.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Feature {
    /// v1 job endpoints for decommission, cleanup and rebuild.
    AsyncSstableTasks,
    /// Full query logging endpoints.
    FullQueryLogging,
    /// The rebuild endpoint.
    Rebuild,
    /// v1 job endpoint for upgradesstables.
    AsyncUpgradeSstableTask,
    /// v1 job endpoint for compaction.
    AsyncCompactionTask,
    /// v1 job endpoint for scrub.
    AsyncScrubTask,
    /// Move returns a job id.
    AsyncMoveTask,
    /// v1 job endpoint for garbagecollect.
    AsyncGcTask,
    /// The internode truststore reload endpoint.
    ReloadInternodeTruststore,
    /// v1 job endpoint for flush (and `IS_LOCAL` in the gossip view).
    AsyncFlushTask,
    /// A feature this crate does not know, as written.
    Unknown(String),
}

const KNOWN: &[(&str, Feature)] = &[
    ("async_sstable_tasks", Feature::AsyncSstableTasks),
    ("full_query_logging", Feature::FullQueryLogging),
    ("rebuild", Feature::Rebuild),
    (
        "async_upgrade_sstable_task",
        Feature::AsyncUpgradeSstableTask,
    ),
    ("async_compaction_task", Feature::AsyncCompactionTask),
    ("async_scrub_task", Feature::AsyncScrubTask),
    ("async_move_task", Feature::AsyncMoveTask),
    ("async_gc_task", Feature::AsyncGcTask),
    (
        "reload_internode_truststore",
        Feature::ReloadInternodeTruststore,
    ),
    ("async_flush_task", Feature::AsyncFlushTask),
];

impl Feature {
    /// Every feature this crate knows.
    pub fn all_known() -> Vec<Feature> {
        KNOWN.iter().map(|(_, feature)| feature.clone()).collect()
    }

    /// Parses the wire name; unknown names are kept.
    pub fn parse(name: &str) -> Feature {
        KNOWN
            .iter()
            .find(|(known, _)| *known == name)
            .map(|(_, feature)| feature.clone())
            .unwrap_or_else(|| Feature::Unknown(name.to_string()))
    }

    /// The wire name.
    pub fn as_str(&self) -> &str {
        match self {
            Feature::Unknown(name) => name,
            known => KNOWN
                .iter()
                .find(|(_, feature)| feature == known)
                .map(|(name, _)| *name)
                .unwrap_or_default(),
        }
    }
}

/// The feature set of one Management API; empty for servers too old to have the endpoint (404).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FeatureSet {
    /// Cassandra version, when reported.
    pub cassandra_version: Option<String>,
    /// Management API version, when reported.
    pub mgmt_version: Option<String>,
    /// The features.
    pub features: BTreeSet<Feature>,
}

impl FeatureSet {
    /// True when `feature` is supported.
    pub fn supports(&self, feature: &Feature) -> bool {
        self.features.contains(feature)
    }
}

/// Wire shape.
#[derive(Debug, Default, Serialize, Deserialize)]
pub(crate) struct FeatureSetBody {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) cassandra_version: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) mgmt_version: Option<String>,
    #[serde(default)]
    pub(crate) features: Vec<String>,
}

impl From<FeatureSetBody> for FeatureSet {
    fn from(body: FeatureSetBody) -> Self {
        FeatureSet {
            cassandra_version: body.cassandra_version,
            mgmt_version: body.mgmt_version,
            features: body
                .features
                .iter()
                .map(|name| Feature::parse(name))
                .collect(),
        }
    }
}

impl From<&FeatureSet> for FeatureSetBody {
    fn from(set: &FeatureSet) -> Self {
        FeatureSetBody {
            cassandra_version: set.cassandra_version.clone(),
            mgmt_version: set.mgmt_version.clone(),
            features: set
                .features
                .iter()
                .map(|f| f.as_str().to_string())
                .collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_known_and_keeps_unknown() {
        let body: FeatureSetBody = serde_json::from_str(
            r#"{"cassandra_version":"4.1.5","features":["async_sstable_tasks","brand_new"],"mgmt_version":"0.1.80"}"#,
        )
        .unwrap();
        let set = FeatureSet::from(body);
        assert!(set.supports(&Feature::AsyncSstableTasks));
        assert!(set.supports(&Feature::Unknown("brand_new".into())));
        assert!(!set.supports(&Feature::Rebuild));
        assert_eq!(set.cassandra_version.as_deref(), Some("4.1.5"));
    }

    #[test]
    fn names_round_trip() {
        for feature in Feature::all_known() {
            assert_eq!(Feature::parse(feature.as_str()), feature);
        }
        assert_eq!(Feature::AsyncGcTask.as_str(), "async_gc_task");
    }
}
