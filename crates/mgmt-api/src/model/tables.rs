//! Table and SSTable operations: request bodies, and the blocking (v0) / job (v1) pairs.

use serde::{Deserialize, Serialize};

use crate::model::features::Feature;
use crate::model::job::lenient_i32;
use crate::route::Route;

/// Body shared by cleanup, flush, upgradesstables and garbagecollect.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyspaceRequest {
    /// Parallel jobs; omitted when unset.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "lenient_i32"
    )]
    pub jobs: Option<i32>,
    /// Keyspace; all keyspaces when unset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub keyspace_name: Option<String>,
    /// Tables; all tables when empty.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tables: Vec<String>,
}

/// Body of compact.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CompactRequest {
    /// Keyspace; all keyspaces when unset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub keyspace_name: Option<String>,
    /// Tables; all tables when empty.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tables: Vec<String>,
    /// Split the output into several SSTables.
    #[serde(default)]
    pub split_output: bool,
    /// Compact the given SSTable files only.
    #[serde(default)]
    pub user_defined: bool,
    /// SSTable files for a user-defined compaction.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub user_defined_files: Vec<String>,
    /// First token of a token-range compaction.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start_token: Option<String>,
    /// Last token of a token-range compaction.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub end_token: Option<String>,
}

/// Body of scrub.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScrubRequest {
    /// Do not snapshot before scrubbing.
    #[serde(default)]
    pub disable_snapshot: bool,
    /// Skip corrupted partitions.
    #[serde(default)]
    pub skip_corrupted: bool,
    /// Check data as well as structure.
    #[serde(default)]
    pub check_data: bool,
    /// Fix rows whose TTL overflowed.
    #[serde(default)]
    pub reinsert_overflowed_ttl: bool,
    /// Parallel jobs; omitted when unset.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "lenient_i32"
    )]
    pub jobs: Option<i32>,
    /// Keyspace; all keyspaces when unset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub keyspace_name: Option<String>,
    /// Tables; all tables when empty.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tables: Vec<String>,
}

/// Which tombstones garbagecollect removes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum TombstoneOption {
    /// Whole deleted rows (Cassandra's default).
    #[default]
    Row,
    /// Deleted cells too.
    Cell,
}

impl TombstoneOption {
    /// Wire value.
    pub fn as_str(self) -> &'static str {
        match self {
            TombstoneOption::Row => "ROW",
            TombstoneOption::Cell => "CELL",
        }
    }
}

/// A table maintenance operation that exists both as a blocking v0 call and a v1 job.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TableOperation {
    /// Remove data the node no longer owns.
    Cleanup(KeyspaceRequest),
    /// Flush memtables.
    Flush(KeyspaceRequest),
    /// Major compaction.
    Compact(CompactRequest),
    /// Rebuild SSTables, dropping corrupt data.
    Scrub(ScrubRequest),
    /// Rewrite SSTables in the current format.
    UpgradeSstables {
        /// Tables to upgrade.
        request: KeyspaceRequest,
        /// Skip SSTables already on the current version (Cassandra's default is true).
        exclude_current_version: bool,
    },
    /// Remove tombstones.
    GarbageCollect {
        /// Tables to collect.
        request: KeyspaceRequest,
        /// Row or cell granularity.
        tombstone_option: TombstoneOption,
    },
}

impl TableOperation {
    /// The blocking v0 route.
    pub fn blocking_route(&self) -> Route {
        self.routes_and_feature().0
    }

    /// The v1 route that answers with a job id.
    pub fn job_route(&self) -> Route {
        self.routes_and_feature().1
    }

    /// The feature that announces the v1 route.
    pub fn job_feature(&self) -> Feature {
        self.routes_and_feature().2
    }

    /// The v0 route, the v1 route and the feature of the v1 route, in one table.
    fn routes_and_feature(&self) -> (Route, Route, Feature) {
        match self {
            TableOperation::Cleanup(_) => (
                Route::CleanupV0,
                Route::CleanupV1,
                Feature::AsyncSstableTasks,
            ),
            TableOperation::Flush(_) => (Route::FlushV0, Route::FlushV1, Feature::AsyncFlushTask),
            TableOperation::Compact(_) => (
                Route::CompactV0,
                Route::CompactV1,
                Feature::AsyncCompactionTask,
            ),
            TableOperation::Scrub(_) => (Route::ScrubV0, Route::ScrubV1, Feature::AsyncScrubTask),
            TableOperation::UpgradeSstables { .. } => (
                Route::UpgradeSstablesV0,
                Route::UpgradeSstablesV1,
                Feature::AsyncUpgradeSstableTask,
            ),
            TableOperation::GarbageCollect { .. } => (
                Route::GarbageCollectV0,
                Route::GarbageCollectV1,
                Feature::AsyncGcTask,
            ),
        }
    }

    /// Query parameters of either route.
    pub(crate) fn query(&self) -> Vec<(&'static str, String)> {
        match self {
            TableOperation::UpgradeSstables {
                exclude_current_version,
                ..
            } => vec![("excludeCurrentVersion", exclude_current_version.to_string())],
            TableOperation::GarbageCollect {
                tombstone_option, ..
            } => vec![("tombstoneOption", tombstone_option.as_str().to_string())],
            _ => Vec::new(),
        }
    }

    /// JSON body of either route.
    pub(crate) fn body(&self) -> Result<Vec<u8>, serde_json::Error> {
        match self {
            TableOperation::Cleanup(request)
            | TableOperation::Flush(request)
            | TableOperation::UpgradeSstables { request, .. }
            | TableOperation::GarbageCollect { request, .. } => serde_json::to_vec(request),
            TableOperation::Compact(request) => serde_json::to_vec(request),
            TableOperation::Scrub(request) => serde_json::to_vec(request),
        }
    }
}

/// A column of a new table.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Column {
    /// Column name.
    pub name: String,
    /// CQL type, like `text`.
    #[serde(rename = "type")]
    pub cql_type: String,
    /// `PARTITION_KEY`, `CLUSTERING_COLUMN`, `REGULAR` or `STATIC`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    /// Position within the key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub position: Option<i32>,
    /// `ASC` or `DESC` for clustering columns.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub order: Option<String>,
}

/// Body of `POST /api/v0/ops/tables/create`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CreateTableRequest {
    /// Keyspace.
    pub keyspace_name: String,
    /// Table.
    pub table_name: String,
    /// Columns.
    pub columns: Vec<Column>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keyspace_request_omits_unset_and_accepts_string_jobs() {
        let request = KeyspaceRequest {
            keyspace_name: Some("ks".into()),
            ..KeyspaceRequest::default()
        };
        assert_eq!(
            serde_json::to_string(&request).unwrap(),
            r#"{"keyspace_name":"ks"}"#
        );
        let upstream: KeyspaceRequest =
            serde_json::from_str(r#"{"jobs":"4","keyspace_name":"ks","tables":["t"]}"#).unwrap();
        assert_eq!(upstream.jobs, Some(4));
        let typed: KeyspaceRequest = serde_json::from_str(r#"{"jobs":2}"#).unwrap();
        assert_eq!(typed.jobs, Some(2));
    }

    #[test]
    fn operations_pair_routes_and_features() {
        let gc = TableOperation::GarbageCollect {
            request: KeyspaceRequest::default(),
            tombstone_option: TombstoneOption::Cell,
        };
        assert_eq!(gc.blocking_route(), Route::GarbageCollectV0);
        assert_eq!(gc.job_route(), Route::GarbageCollectV1);
        assert_eq!(gc.job_feature(), Feature::AsyncGcTask);
        assert_eq!(gc.query(), vec![("tombstoneOption", "CELL".to_string())]);
    }
}
