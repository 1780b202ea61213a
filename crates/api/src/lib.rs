//! Custom resources of the K8ssandra stack, with upstream's groups, kinds and field names, and the
//! pure logic both planes share: defaults, the cluster-to-datacenter template merge, validation,
//! object names and labels. Nothing here does I/O.

pub mod cassandra;
pub mod cel;
pub mod conditions;
pub mod config;
pub mod control;
pub mod crd;
pub mod defaults;
pub mod k8ssandra;
pub mod labels;
pub mod merge;
pub mod names;
pub mod quantity;
pub mod reference;
pub mod replication;
pub mod schema;
pub mod validation;
pub mod version;
