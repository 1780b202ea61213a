//! The seeds step: behind each datacenter's additional-seed Service, EndpointSlices that list
//! the seed pods of every other datacenter (see [`crate::build::seeds`]), written only when they
//! differ, removed when they list nothing.
//!
//! - The seed pods are read from each cluster's watch of seed pods, so a seed that moves or goes
//!   triggers a pass and the slices follow; the data plane then asks the running nodes to reload
//!   their seeds, and no node restarts.
//! - A datacenter's slices are written before its CassandraDatacenter is created, so that its
//!   first node already knows the running datacenters' seeds.
//! - While another datacenter's cluster cannot be used, its seeds are unknown: the slices stay as
//!   they are rather than lose that datacenter's seeds.

use std::{collections::BTreeMap, net::IpAddr, sync::Arc};

use futures::future::join_all;
use k8s_openapi::api::{core::v1::Pod, discovery::v1::EndpointSlice};
use k8ssandra_api::{
    k8ssandra::K8ssandraCluster,
    labels::{self, annotations},
};
use k8ssandra_reconcile::{
    apply::{apply, delete_if_present},
    hash,
};
use kube::{Api, ResourceExt, api::DeleteParams};

use super::{
    FIELD_MANAGER,
    observe::{Observed, ObservedDatacenter},
};
use crate::{
    build::{DesiredDatacenter, seeds},
    remote::RemoteCluster,
};

/// Writes every datacenter's seed slices that differ; returns, per datacenter in the spec's
/// order, why its seeds could not be written (`None`: they are as they should be, or cannot be
/// known yet).
pub async fn reconcile(
    cluster: &K8ssandraCluster,
    observed: &Observed,
    desired: &[DesiredDatacenter],
) -> Vec<Option<String>> {
    let seeds_of: Option<Vec<Vec<IpAddr>>> = desired
        .iter()
        .zip(&observed.datacenters)
        .map(|(wanted, seen)| seed_addresses(wanted, seen))
        .collect();
    let Some(seeds_of) = seeds_of else {
        return vec![None; desired.len()];
    };
    let writes =
        desired
            .iter()
            .zip(&observed.datacenters)
            .enumerate()
            .map(|(index, (wanted, seen))| {
                let others: Vec<IpAddr> = seeds_of
                    .iter()
                    .enumerate()
                    .filter(|(other, _)| *other != index)
                    .flat_map(|(_, ips)| ips.iter().copied())
                    .collect();
                async move {
                    let remote = seen.reach.usable()?;
                    write(cluster, remote, wanted, &others)
                        .await
                        .err()
                        .map(|error| error.to_string())
                }
            });
    join_all(writes).await
}

/// The addresses of a datacenter's seed pods; `None` when its cluster cannot tell them now.
fn seed_addresses(wanted: &DesiredDatacenter, seen: &ObservedDatacenter) -> Option<Vec<IpAddr>> {
    let remote = seen.reach.usable()?;
    if !remote.seed_pods.is_ready() || !remote.seed_slices.is_ready() {
        return None;
    }
    let dc = &wanted.datacenter;
    let selector = labels::datacenter_labels(&dc.spec.cluster_name, &dc.label_resource_name());
    Some(
        remote
            .seed_pods
            .list(&seen.namespace, &selector)
            .iter()
            .filter(|pod| pod.metadata.deletion_timestamp.is_none())
            .flat_map(|pod| pod_addresses(pod))
            .collect(),
    )
}

/// Every address of a pod (both families on a dual-stack cluster).
fn pod_addresses(pod: &Pod) -> Vec<IpAddr> {
    let Some(status) = pod.status.as_ref() else {
        return Vec::new();
    };
    let listed: Vec<&str> = match status.pod_ips.as_deref() {
        Some(ips) if !ips.is_empty() => ips.iter().map(|ip| ip.ip.as_str()).collect(),
        _ => status.pod_ip.as_deref().into_iter().collect(),
    };
    listed.iter().filter_map(|ip| ip.parse().ok()).collect()
}

/// Why a seed slice could not be written or removed.
#[derive(Debug, thiserror::Error)]
pub enum SeedsError {
    /// The slice cannot be hashed (a bug).
    #[error("could not build the seed EndpointSlices: {0}")]
    Build(#[from] serde_json::Error),
    /// The API server refused.
    #[error("could not {what} EndpointSlice {name}: {source}")]
    Kube {
        /// `apply` or `delete`.
        what: &'static str,
        /// The slice.
        name: String,
        /// The API error.
        source: kube::Error,
    },
}

/// Makes one datacenter's seed slices what `others` say.
async fn write(
    cluster: &K8ssandraCluster,
    remote: &Arc<RemoteCluster>,
    wanted: &DesiredDatacenter,
    others: &[IpAddr],
) -> Result<(), SeedsError> {
    let slices = seeds::seed_endpoint_slices(cluster, wanted, others)?;
    let namespace = wanted.datacenter.namespace().unwrap_or_default();
    let api = Api::<EndpointSlice>::namespaced(remote.client.clone(), &namespace);
    for slice in &slices {
        let live = remote.seed_slices.get(&namespace, &slice.name_any());
        let current = live
            .as_deref()
            .and_then(|l| hash::stamped_hash(l, annotations::RESOURCE_HASH));
        if current == hash::stamped_hash(slice, annotations::RESOURCE_HASH) {
            continue;
        }
        let written =
            apply(&api, FIELD_MANAGER, slice)
                .await
                .map_err(|source| SeedsError::Kube {
                    what: "apply",
                    name: slice.name_any(),
                    source,
                })?;
        remote.seed_slices.wrote(&written.metadata);
        tracing::info!(context = %remote.context, %namespace, slice = %slice.name_any(), seeds = ?slice.endpoints[0].addresses, "seeds of the other datacenters written");
    }
    let selector: BTreeMap<String, String> = seeds::slice_labels(cluster, wanted);
    for stale in remote
        .seed_slices
        .list(&namespace, &selector)
        .iter()
        .filter(|live| !slices.iter().any(|s| s.name_any() == live.name_any()))
    {
        let name = stale.name_any();
        delete_if_present(&api, &name, &DeleteParams::default())
            .await
            .map_err(|source| SeedsError::Kube {
                what: "delete",
                name: name.clone(),
                source,
            })?;
        tracing::info!(context = %remote.context, %namespace, slice = %name, "seed EndpointSlice removed");
    }
    Ok(())
}
