//! Client of the Cassandra Management API, the HTTP sidecar that runs in every Cassandra pod, and
//! (feature `fake`) a simulated Cassandra cluster that serves the same API for tests.
//!
//! Build [`ClientSettings`] once per datacenter (plain HTTP or mutual TLS, port, per-route timeouts,
//! optional [`ManagementApiMetrics`]), then [`ClientSettings::client`] per pod. Every call has a
//! typed method on [`ManagementApiClient`], sends `Connection: close` on a fresh connection, and
//! fails with an [`Error`] that names the pod and the [`Route`]; passwords never reach errors or
//! logs.
//!
//! ```no_run
//! # async fn example() -> Result<(), k8ssandra_mgmt_api::Error> {
//! use k8ssandra_mgmt_api::ClientSettings;
//! let pod_ip = std::net::Ipv4Addr::new(10, 0, 0, 5).into();
//! let client = ClientSettings::insecure().client("demo-dc1-default-sts-0", pod_ip);
//! let features = client.features().await?;
//! let gossip = client.endpoints().await?;
//! let host_id = gossip.local().and_then(|entry| entry.host_id());
//! # let _ = (features, host_id);
//! # Ok(())
//! # }
//! ```

mod client;
mod error;
mod metrics;
pub mod model;
mod query;
mod route;
mod tls;
mod transport;

#[cfg(feature = "fake")]
pub mod fake;

/// The `User-Agent` of every request: the operator and its version, as in a server's access log.
pub const USER_AGENT: &str = concat!("k8ssandra-operator/", env!("CARGO_PKG_VERSION"));

pub use client::{ClientSettings, DEFAULT_PORT, ManagementApiClient, StartOutcome, Submission};
pub use error::Error;
pub use metrics::ManagementApiMetrics;
pub use model::endpoints::{EndpointState, EndpointStates, NodeStatus};
pub use model::features::{Feature, FeatureSet};
pub use model::job::{Job, JobId, JobStatus, StatusChange};
pub use model::keyspace::{KeyspaceReplication, KeyspaceReplicationRequest, ReplicationSetting};
pub use model::probe::{ClusterHealth, ConsistencyLevel};
pub use model::roles::{IdentityToRole, NewRole, Role};
pub use model::tables::{
    Column, CompactRequest, CreateTableRequest, KeyspaceRequest, ScrubRequest, TableOperation,
    TombstoneOption,
};
pub use query::redact as redact_query;
pub use route::Route;
pub use tls::{MutualTls, TlsConfigError};
pub use transport::Transport;
