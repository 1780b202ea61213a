//! A simulated Cassandra cluster serving the Management API over real HTTP (feature `fake`).
//!
//! A [`FakeCluster`] holds what Cassandra nodes share: the gossip table, keyspaces, roles and the
//! schema version. Each [`FakeNode`] is one pod's Management API server bound to its own address;
//! before `lifecycle/start` it answers liveness 200 and readiness 500, like the real image.
//!
//! Cassandra rules an operator depends on:
//! - `lifecycle/start` answers 201 once the process is launched; a process that cannot start
//!   exits afterwards ([`FakeNode::exit_reason`]) and the node never becomes ready: no seed up
//!   (NORMAL and alive) that it knows, another range movement under way, a decommissioned volume, a replacement
//!   of a live or unknown node;
//! - whether a node is a seed is decided when its start runs ([`NodeSpec::seed_check`], else the
//!   flag [`FakeNode::set_seed`] keeps);
//! - with a [`NodeSpec::seed_resolver`], a node starts only when a node at an address its seed
//!   list resolves to is up; a seed that knows none starts alone only where no other node of the
//!   cluster is alive (a new cluster): so a datacenter whose seeds omit the others' fails to join;
//! - a new non-seed node bootstraps (`BOOT`, reported as joining) for
//!   [`FakeTimings::bootstrap`], and only one range movement (bootstrap, replacement,
//!   decommission) runs at a time;
//! - a node with data (same [`NodeSpec::data_id`]) restarts without bootstrap and keeps its host ID,
//!   even on a new IP; `replace_ip` gives a node with empty disks the dead node's host ID and token;
//! - decommission refuses when the rest of the datacenter could not hold every replica (see
//!   [`DecommissionCheck`]), else shows `LEAVING`, then `LEFT` for
//!   [`FakeTimings::left_retention`], then the entry disappears; a decommissioned volume never
//!   starts again;
//! - drain stops gossip and clients as Cassandra does: readiness 500, and the node's entry stays in
//!   the ring (it still owns its tokens) with `IS_ALIVE=false` and `STATUS=shutdown,true`, the value
//!   Cassandra gossips when it announces a graceful stop. `lifecycle/stop` does the same. A dropped
//!   node (pod deleted) just dies: its entry stays `NORMAL` and not alive.
//!
//! Tests observe and steer it through [`FakeNode::calls`] / [`FakeCluster::calls`] (every request),
//! [`FakeNode::inject`] (failures per route), [`FakeNode::release`], [`FakeNode::evict_jobs`], and
//! [`FakeCluster::subscribe`] (readiness changes, to mirror on pods).

mod calls;
mod cluster;
mod config;
mod events;
mod faults;
mod handlers;
mod ring;
mod server;
mod state;

pub use calls::{CallLog, RecordedCall};
pub use cluster::FakeCluster;
pub use config::{DecommissionCheck, FakeClusterConfig, FakeTimings};
pub use events::{NodeEvent, NotReadyReason, ReadinessChange};
pub use faults::{Fault, Times};
pub use server::{Binder, FakeNode, FakeTls, NodeSpec, SeedCheck, SeedResolver};
pub use state::{FakeRole, NodeProcess};

use std::net::SocketAddr;

/// Why a fake node could not start.
#[derive(Debug, thiserror::Error)]
pub enum FakeError {
    /// The address could not be bound (in use, or not a local address).
    #[error("cannot listen on {address}: {source}")]
    Bind {
        /// The address.
        address: SocketAddr,
        /// The cause.
        source: std::io::Error,
    },
    /// The TLS material was refused.
    #[error("invalid TLS material: {0}")]
    Tls(String),
    /// Another running node uses the same data volume.
    #[error("data volume {data_id} is already used by a running node")]
    DataInUse {
        /// The volume identity.
        data_id: String,
    },
}
