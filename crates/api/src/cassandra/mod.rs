//! `cassandra.datastax.com/v1beta1`: the CassandraDatacenter, which the data plane turns into
//! Cassandra nodes, and the pieces of it that the K8ssandraCluster reuses.

mod datacenter;
mod status;
mod storage;

pub use datacenter::*;
pub use status::*;
pub use storage::*;

/// API group of the CassandraDatacenter.
pub const GROUP: &str = "cassandra.datastax.com";
