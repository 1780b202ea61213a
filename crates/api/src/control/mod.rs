//! `control.k8ssandra.io/v1alpha1`: operations on running datacenters (CassandraTask), made on a
//! schedule (ScheduledTask), and on whole clusters (K8ssandraTask).

mod cassandra_task;
mod k8ssandra_task;
mod scheduled_task;

pub use cassandra_task::*;
pub use k8ssandra_task::*;
pub use scheduled_task::*;

/// API group of the tasks.
pub const GROUP: &str = "control.k8ssandra.io";
