//! Readiness changes the fake reports, so a harness can mirror them on Kubernetes pods.

use std::net::IpAddr;

/// Why a node stopped being ready.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NotReadyReason {
    /// `ops/node/drain`.
    Drained,
    /// `lifecycle/stop`.
    Stopped,
    /// Decommission finished (LEFT).
    Decommissioned,
    /// The node's server was shut down (pod deleted).
    ShutDown,
}

/// A readiness change.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReadinessChange {
    /// Readiness turned 200: the node is NORMAL and serves.
    Ready,
    /// Readiness turned 500.
    NotReady(NotReadyReason),
}

/// A node's readiness changed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeEvent {
    /// Pod name of the node.
    pub pod: String,
    /// Datacenter of the node.
    pub datacenter: String,
    /// IP the node's server listens on.
    pub ip: IpAddr,
    /// What changed.
    pub change: ReadinessChange,
}
