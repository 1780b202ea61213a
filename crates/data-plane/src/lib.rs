//! The data plane (cass-operator's role): turns a `CassandraDatacenter` into its Kubernetes
//! children and drives every Cassandra node through the Management API.
//!
//! - [`datacenter`]: the CassandraDatacenter controller (validate, observe, children, the pure
//!   node planner, act, status);
//! - [`task`]: the CassandraTask controller (cleanup, flush, upgradesstables, rebuild, restart,
//!   replacenode on the pods of a datacenter);
//! - [`build`]: the **pure builders** of every child object, with upstream's names, labels,
//!   annotations and shapes: Services and additional-seed EndpointSlices, one StatefulSet per rack
//!   with its pod template, the PodDisruptionBudget, the generated superuser Secret (from random
//!   bytes the caller passes in), the resource hash stamped for change detection, and the
//!   controller owner reference.

pub mod build;
pub mod datacenter;
pub mod mgmt_access;
pub mod task;
