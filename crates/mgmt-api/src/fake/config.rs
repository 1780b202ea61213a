//! Settings of a simulated cluster: versions, timings and how strict decommission is.

use std::time::Duration;

/// How long the simulated operations take. Everything is small so tests stay fast.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FakeTimings {
    /// From `lifecycle/start` to alive for a node that does not bootstrap (restart, or new seed).
    pub startup: Duration,
    /// Time a new node spends JOINING (and a replacement in hibernate) before NORMAL.
    pub bootstrap: Duration,
    /// Time a node spends LEAVING before LEFT.
    pub decommission: Duration,
    /// Time `ops/node/drain` takes.
    pub drain: Duration,
    /// Time a job (cleanup, flush, rebuild, ...) stays WAITING; blocking v0 calls take as long.
    pub job: Duration,
    /// How long a LEFT entry stays in the gossip view before it disappears (days on real clusters).
    pub left_retention: Duration,
}

impl Default for FakeTimings {
    /// Slow enough for an operator to observe every state, fast enough for end-to-end tests.
    fn default() -> Self {
        Self {
            startup: Duration::from_millis(500),
            bootstrap: Duration::from_secs(2),
            decommission: Duration::from_secs(2),
            drain: Duration::from_millis(200),
            job: Duration::from_secs(1),
            left_retention: Duration::from_secs(10),
        }
    }
}

impl FakeTimings {
    /// Tens of milliseconds everywhere, for unit and integration tests.
    pub fn fast() -> Self {
        Self {
            startup: Duration::from_millis(20),
            bootstrap: Duration::from_millis(80),
            decommission: Duration::from_millis(80),
            drain: Duration::from_millis(10),
            job: Duration::from_millis(40),
            left_retention: Duration::from_millis(300),
        }
    }
}

/// When decommission refuses because the rest of the datacenter could not hold every replica.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum DecommissionCheck {
    /// Always check, even with `force=true` (the default: an operator must not lose replicas).
    #[default]
    Always,
    /// Check unless `force=true`, exactly like Cassandra.
    UnlessForced,
    /// Never check.
    Never,
}

/// Settings of a simulated cluster.
#[derive(Debug, Clone, PartialEq)]
pub struct FakeClusterConfig {
    /// Cassandra version in `RELEASE_VERSION` and the feature set.
    pub release_version: String,
    /// Management API version in the feature set.
    pub mgmt_version: String,
    /// Durations of simulated operations.
    pub timings: FakeTimings,
    /// Decommission replica check.
    pub decommission_check: DecommissionCheck,
    /// `LOAD` of a node that just joined, in bytes.
    pub initial_load_bytes: f64,
}

impl Default for FakeClusterConfig {
    fn default() -> Self {
        Self {
            release_version: "4.1.5".to_string(),
            mgmt_version: "0.1.90".to_string(),
            timings: FakeTimings::default(),
            decommission_check: DecommissionCheck::default(),
            initial_load_bytes: 102_400.0,
        }
    }
}

impl FakeClusterConfig {
    /// Default settings with [`FakeTimings::fast`].
    pub fn fast() -> Self {
        Self {
            timings: FakeTimings::fast(),
            ..Self::default()
        }
    }
}
