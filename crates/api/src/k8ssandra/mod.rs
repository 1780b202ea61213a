//! `k8ssandra.io/v1alpha1`: the K8ssandraCluster, one Cassandra cluster whose datacenters may live in
//! several Kubernetes clusters.

mod cluster;
mod config;
mod meta;

pub use cluster::*;
pub use config::*;
pub use meta::*;

/// API group of the K8ssandraCluster.
pub const GROUP: &str = "k8ssandra.io";
