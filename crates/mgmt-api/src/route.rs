//! The Management API routes this crate speaks: method, path, stable name and default timeout.
//!
//! The same enum names a call in client errors and metrics, and a request in the fake's call log and
//! failure injection, so the two sides can never disagree on what a route is called.

use std::fmt;
use std::time::Duration;

const SECOND: Duration = Duration::from_secs(1);
const MINUTE: Duration = Duration::from_secs(60);
/// For blocking calls upstream runs without any timeout: long enough for real work, still bounded.
const BLOCKING: Duration = Duration::from_secs(30 * 60);

macro_rules! routes {
    ($( $(#[doc = $doc:expr])+ $variant:ident => $method:literal $path:literal, $timeout:expr; )+) => {
        /// One Management API operation (method and path).
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum Route {
            $( $(#[doc = $doc])+ $variant, )+
        }

        impl Route {
            /// Every route, in declaration order.
            pub const ALL: &'static [Route] = &[$(Route::$variant),+];

            /// HTTP method, upper case.
            pub fn method(self) -> &'static str {
                match self { $(Route::$variant => $method,)+ }
            }

            /// Path without query string.
            pub fn path(self) -> &'static str {
                match self { $(Route::$variant => $path,)+ }
            }

            /// Stable name used in errors, logs and metrics, like `POST /api/v0/lifecycle/start`.
            pub fn name(self) -> &'static str {
                match self { $(Route::$variant => concat!($method, " ", $path),)+ }
            }

            /// Timeout of the call when the caller does not override it (upstream's where it has one).
            pub fn default_timeout(self) -> Duration {
                match self { $(Route::$variant => $timeout,)+ }
            }
        }
    };
}

routes! {
    /// Liveness probe of the Management API process.
    Liveness => "GET" "/api/v0/probes/liveness", 10 * SECOND;
    /// Readiness probe: 200 once Cassandra bootstrapped and serves CQL.
    Readiness => "GET" "/api/v0/probes/readiness", 10 * SECOND;
    /// Start Cassandra (optionally replacing a dead node).
    LifecycleStart => "POST" "/api/v0/lifecycle/start", 10 * MINUTE;
    /// Stop Cassandra.
    LifecycleStop => "POST" "/api/v0/lifecycle/stop", 2 * MINUTE;
    /// Gossip view of the cluster.
    Endpoints => "GET" "/api/v0/metadata/endpoints", MINUTE;
    /// Feature set of the Management API.
    Features => "GET" "/api/v0/metadata/versions/features", 30 * SECOND;
    /// Can the cluster reach a consistency level for a replication factor per datacenter.
    ClusterProbe => "GET" "/api/v0/probes/cluster", MINUTE;
    /// Re-read the seed list.
    SeedsReload => "POST" "/api/v0/ops/seeds/reload", MINUTE;
    /// Drain the node (flush, stop gossip and client transports).
    Drain => "POST" "/api/v0/ops/node/drain", 2 * MINUTE;
    /// Decommission the node, blocking until it left.
    DecommissionV0 => "POST" "/api/v0/ops/node/decommission", MINUTE;
    /// Decommission the node as a job.
    DecommissionV1 => "POST" "/api/v1/ops/node/decommission", MINUTE;
    /// Rebuild the node's data from another datacenter, as a job.
    RebuildV1 => "POST" "/api/v1/ops/node/rebuild", MINUTE;
    /// Move the node to a new token, as a job.
    Move => "POST" "/api/v0/ops/node/move", MINUTE;
    /// Reload the internode truststore.
    TruststoreReload => "POST" "/api/v0/ops/node/encryption/internode/truststore/reload", MINUTE;
    /// Is full query logging enabled.
    FullQueryLoggingGet => "GET" "/api/v0/ops/node/fullquerylogging", 2 * MINUTE;
    /// Enable or disable full query logging.
    FullQueryLoggingSet => "POST" "/api/v0/ops/node/fullquerylogging", 2 * MINUTE;
    /// Create or update a role.
    RoleCreate => "POST" "/api/v0/ops/auth/role", MINUTE;
    /// List roles.
    RoleList => "GET" "/api/v0/ops/auth/role", MINUTE;
    /// Drop a role.
    RoleDelete => "DELETE" "/api/v0/ops/auth/role", MINUTE;
    /// Map a certificate identity to a role.
    IdentityToRoleCreate => "POST" "/api/v1/ops/auth/identity_to_role", MINUTE;
    /// Remove an identity-to-role mapping.
    IdentityToRoleDelete => "DELETE" "/api/v1/ops/auth/identity_to_role", MINUTE;
    /// List keyspaces.
    KeyspaceList => "GET" "/api/v0/ops/keyspace", MINUTE;
    /// Create a keyspace with NetworkTopologyStrategy.
    KeyspaceCreate => "POST" "/api/v0/ops/keyspace/create", MINUTE;
    /// Change a keyspace's replication.
    KeyspaceAlter => "POST" "/api/v0/ops/keyspace/alter", MINUTE;
    /// Read a keyspace's replication.
    KeyspaceReplication => "GET" "/api/v0/ops/keyspace/replication", MINUTE;
    /// Cleanup, blocking.
    CleanupV0 => "POST" "/api/v0/ops/keyspace/cleanup", BLOCKING;
    /// Cleanup as a job.
    CleanupV1 => "POST" "/api/v1/ops/keyspace/cleanup", 20 * SECOND;
    /// Flush, blocking.
    FlushV0 => "POST" "/api/v0/ops/tables/flush", MINUTE;
    /// Flush as a job.
    FlushV1 => "POST" "/api/v1/ops/tables/flush", 20 * SECOND;
    /// Major compaction, blocking.
    CompactV0 => "POST" "/api/v0/ops/tables/compact", MINUTE;
    /// Major compaction as a job.
    CompactV1 => "POST" "/api/v1/ops/tables/compact", 20 * SECOND;
    /// Scrub, blocking.
    ScrubV0 => "POST" "/api/v0/ops/tables/scrub", MINUTE;
    /// Scrub as a job.
    ScrubV1 => "POST" "/api/v1/ops/tables/scrub", 20 * SECOND;
    /// Upgrade SSTables, blocking.
    UpgradeSstablesV0 => "POST" "/api/v0/ops/tables/sstables/upgrade", 20 * SECOND;
    /// Upgrade SSTables as a job.
    UpgradeSstablesV1 => "POST" "/api/v1/ops/tables/sstables/upgrade", 20 * SECOND;
    /// Garbage-collect tombstones, blocking.
    GarbageCollectV0 => "POST" "/api/v0/ops/tables/garbagecollect", MINUTE;
    /// Garbage-collect tombstones as a job.
    GarbageCollectV1 => "POST" "/api/v1/ops/tables/garbagecollect", 20 * SECOND;
    /// List the tables of a keyspace.
    TableList => "GET" "/api/v0/ops/tables", MINUTE;
    /// Create a table.
    TableCreate => "POST" "/api/v0/ops/tables/create", MINUTE;
    /// Status of a job started by an asynchronous call.
    JobStatus => "GET" "/api/v0/ops/executor/job", 30 * SECOND;
    /// Schema version of every node (schema agreement).
    SchemaVersions => "GET" "/api/v1/ops/node/schema/versions", MINUTE;
}

impl Route {
    /// True for calls that change something on the node (every method but GET).
    pub fn is_write(self) -> bool {
        self.method() != "GET"
    }

    /// The route serving `method` on `path`, if any.
    pub fn from_method_and_path(method: &str, path: &str) -> Option<Route> {
        Route::ALL
            .iter()
            .copied()
            .find(|route| route.method() == method && route.path() == path)
    }

    /// True when some route serves `path` with another method (the server answers 405).
    pub fn path_is_known(path: &str) -> bool {
        Route::ALL.iter().any(|route| route.path() == path)
    }
}

impl fmt::Display for Route {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeSet;

    #[test]
    fn names_are_method_and_path() {
        assert_eq!(Route::LifecycleStart.name(), "POST /api/v0/lifecycle/start");
        assert_eq!(Route::JobStatus.to_string(), "GET /api/v0/ops/executor/job");
    }

    #[test]
    fn every_method_and_path_pair_is_unique() {
        let pairs: BTreeSet<_> = Route::ALL.iter().map(|r| (r.method(), r.path())).collect();
        assert_eq!(pairs.len(), Route::ALL.len());
    }

    #[test]
    fn lookup_finds_the_route_and_distinguishes_methods() {
        assert_eq!(
            Route::from_method_and_path("DELETE", "/api/v0/ops/auth/role"),
            Some(Route::RoleDelete)
        );
        assert_eq!(
            Route::from_method_and_path("PUT", "/api/v0/ops/auth/role"),
            None
        );
        assert!(Route::path_is_known("/api/v0/ops/auth/role"));
        assert!(!Route::path_is_known("/api/v0/nope"));
    }

    #[test]
    fn upstream_timeouts() {
        assert_eq!(
            Route::LifecycleStart.default_timeout(),
            Duration::from_secs(600)
        );
        assert_eq!(Route::Drain.default_timeout(), Duration::from_secs(120));
        assert_eq!(Route::Endpoints.default_timeout(), Duration::from_secs(60));
        assert_eq!(Route::CleanupV1.default_timeout(), Duration::from_secs(20));
        assert!(!Route::Readiness.is_write());
        assert!(Route::RoleDelete.is_write());
    }
}
