//! Pure builders of what the control plane writes into the clusters: each datacenter's
//! CassandraDatacenter, its server configuration, the initial system replication, the shared
//! credentials, the seeds each datacenter learns of the others, the CassandraTasks of the
//! cluster's operations, and each datacenter's CassandraTask of a K8ssandraTask.

pub mod cluster_tasks;
pub mod config;
pub mod credentials;
pub mod datacenter;
pub mod k8ssandra_task;
pub mod replication;
pub mod seeds;

use std::collections::BTreeMap;

use k8ssandra_api::{cassandra::CassandraDatacenter, k8ssandra::K8ssandraCluster, merge};

use datacenter::{BuildError, DatacenterInputs};

/// A CassandraDatacenter to be, and the Kubernetes context it goes to (`""`: the control
/// plane's own cluster).
#[derive(Clone, Debug, PartialEq)]
pub struct DesiredDatacenter {
    /// Context of the cluster it runs in.
    pub context: String,
    /// The object.
    pub datacenter: CassandraDatacenter,
}

/// Every datacenter of the cluster, in the spec's order (the first seeds the Cassandra cluster),
/// with the cluster template merged in.
///
/// # Errors
/// When a datacenter cannot be built; validation refuses such a spec first.
pub fn desired_datacenters(
    cluster: &K8ssandraCluster,
    initial_replication: &BTreeMap<String, u32>,
) -> Result<Vec<DesiredDatacenter>, BuildError> {
    merge::resolve_datacenters(cluster)
        .iter()
        .enumerate()
        .map(|(index, dc)| {
            let datacenter = datacenter::datacenter(&DatacenterInputs {
                cluster,
                datacenter: dc,
                first: index == 0,
                initial_replication,
            })?;
            Ok(DesiredDatacenter {
                context: dc.k8s_context.clone(),
                datacenter,
            })
        })
        .collect()
}
