//! The data plane (cass-operator's role): turns a `CassandraDatacenter` into its Kubernetes
//! children and drives every Cassandra node through the Management API.
//!
//! - [`datacenter`]: the CassandraDatacenter controller (validate, observe, children, the pure
//!   node planner, act, status);
//! - [`task`]: the CassandraTask controller (cleanup, flush, upgradesstables, rebuild, restart,
//!   replacenode on the pods of a datacenter);
//! - [`schedule`]: the ScheduledTask controller (a CassandraTask on a cron schedule);
//! - [`caches`]: the watch caches both controllers read, one watch per kind;
//! - [`build`]: the **pure builders** of every child object, with upstream's names, labels,
//!   annotations and shapes: Services and additional-seed EndpointSlices, one StatefulSet per rack
//!   with its pod template, the PodDisruptionBudget, the generated superuser Secret (from random
//!   bytes the caller passes in), the resource hash stamped for change detection, and the
//!   controller owner reference.

pub mod build;
pub mod caches;
pub mod datacenter;
pub mod mgmt_access;
pub mod schedule;
pub mod task;

use std::sync::Arc;

/// The contexts of the data plane's controllers.
pub struct Controllers {
    /// The CassandraDatacenter controller's.
    pub datacenters: Arc<datacenter::Context>,
    /// The CassandraTask controller's.
    pub tasks: Arc<task::Context>,
    /// The ScheduledTask controller's.
    pub schedules: Arc<schedule::Context>,
}

/// Runs the controllers and the watches that feed them, until a watch or a controller ends.
pub async fn run(controllers: Controllers, mut feeds: caches::Feeds) {
    let datacenters = datacenter::run(controllers.datacenters, &mut feeds);
    let tasks = task::run(controllers.tasks, &mut feeds);
    let schedules = schedule::run(controllers.schedules, &mut feeds);
    tokio::select! {
        () = feeds.run() => tracing::warn!("the watches ended"),
        _ = futures::future::join3(datacenters, tasks, schedules) => {
            tracing::warn!("the controllers stopped");
        }
    }
}
