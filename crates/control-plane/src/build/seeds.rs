//! The seeds of the other datacenters (pure): for each datacenter, EndpointSlices behind its
//! additional-seed Service that list the pod IPs of every other datacenter's seed pods, one per
//! address family, as upstream writes them. The datacenter's nodes resolve that Service when they
//! start and when the data plane asks them to reload their seeds, so a node of a new datacenter
//! knows the running ones' seeds before it starts, and every node learns of seeds that move.

use std::{collections::BTreeMap, net::IpAddr};

use k8s_openapi::{
    api::discovery::v1::{Endpoint, EndpointSlice},
    apimachinery::pkg::apis::meta::v1::ObjectMeta,
};
use k8ssandra_api::{
    k8ssandra::K8ssandraCluster,
    labels::{self, annotations},
    names,
};
use k8ssandra_reconcile::hash;
use kube::ResourceExt;

use super::DesiredDatacenter;

/// The two address families a slice can hold; IPv4-mapped IPv6 addresses count as IPv4.
const FAMILIES: [(&str, bool); 2] = [("IPv4", true), ("IPv6", false)];

/// The labels that tie a seed slice to its K8ssandraCluster and datacenter, which the control
/// plane's narrow watch of each cluster selects.
#[must_use]
pub fn slice_labels(
    cluster: &K8ssandraCluster,
    datacenter: &DesiredDatacenter,
) -> BTreeMap<String, String> {
    let dc = &datacenter.datacenter;
    let mut out = labels::datacenter_labels(&dc.spec.cluster_name, &dc.label_resource_name());
    out.extend([
        (
            labels::MANAGED_BY.to_owned(),
            labels::CONTROL_PLANE_MANAGER.to_owned(),
        ),
        (
            labels::K8SSANDRA_CLUSTER_NAME.to_owned(),
            cluster.name_any(),
        ),
        (
            labels::K8SSANDRA_CLUSTER_NAMESPACE.to_owned(),
            cluster.namespace().unwrap_or_default(),
        ),
        (
            labels::SERVICE_NAME.to_owned(),
            names::additional_seed_service(&dc.spec.cluster_name, &dc.label_resource_name()),
        ),
    ]);
    out
}

/// The seed slices of `datacenter`, given the seed addresses of the other datacenters: for each
/// family with addresses, `<k8ssandracluster>-<additional-seed-service>-ipv4` or `-ipv6` in the
/// datacenter's namespace, hash-stamped. None when no other datacenter has a seed yet.
///
/// # Errors
/// When the slice cannot be hashed (a bug).
pub fn seed_endpoint_slices(
    cluster: &K8ssandraCluster,
    datacenter: &DesiredDatacenter,
    other_seeds: &[IpAddr],
) -> Result<Vec<EndpointSlice>, serde_json::Error> {
    let dc = &datacenter.datacenter;
    let service = names::additional_seed_service(&dc.spec.cluster_name, &dc.label_resource_name());
    let mut out = Vec::with_capacity(FAMILIES.len());
    for (family, v4) in FAMILIES {
        let mut addresses: Vec<String> = other_seeds
            .iter()
            .filter(|ip| is_v4(ip) == v4)
            .map(|ip| canonical(ip).to_string())
            .collect();
        addresses.sort();
        addresses.dedup();
        if addresses.is_empty() {
            continue;
        }
        let mut slice = EndpointSlice {
            metadata: ObjectMeta {
                name: Some(format!(
                    "{}-{service}-{}",
                    cluster.name_any(),
                    family.to_lowercase()
                )),
                namespace: dc.namespace(),
                labels: Some(slice_labels(cluster, datacenter)),
                ..ObjectMeta::default()
            },
            address_type: family.to_owned(),
            endpoints: vec![Endpoint {
                addresses,
                ..Endpoint::default()
            }],
            ports: None,
        };
        hash::stamp(&mut slice, annotations::RESOURCE_HASH, &[])?;
        out.push(slice);
    }
    Ok(out)
}

fn is_v4(ip: &IpAddr) -> bool {
    match ip {
        IpAddr::V4(_) => true,
        IpAddr::V6(v6) => v6.to_ipv4_mapped().is_some(),
    }
}

/// An IPv4-mapped IPv6 address as the IPv4 address an IPv4 slice must hold.
fn canonical(ip: &IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(*ip, IpAddr::V4),
        IpAddr::V4(_) => *ip,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8ssandra_api::cassandra::{CassandraDatacenter, CassandraDatacenterSpec};

    fn cluster() -> K8ssandraCluster {
        let mut cluster: K8ssandraCluster = serde_json::from_value(serde_json::json!({
            "apiVersion": "k8ssandra.io/v1alpha1",
            "kind": "K8ssandraCluster",
            "metadata": {"name": "demo", "namespace": "k8ssandra"},
            "spec": {"cassandra": {"serverVersion": "4.1.5", "datacenters": []}}
        }))
        .unwrap();
        cluster.metadata.uid = Some("uid".into());
        cluster
    }

    fn datacenter() -> DesiredDatacenter {
        let mut dc = CassandraDatacenter::new(
            "dc2",
            CassandraDatacenterSpec {
                cluster_name: "Demo Cluster".into(),
                server_version: "4.1.5".into(),
                ..Default::default()
            },
        );
        dc.metadata.namespace = Some("east".into());
        DesiredDatacenter {
            context: "kind-k8ssandra-2".into(),
            datacenter: dc,
        }
    }

    #[test]
    fn each_family_gets_a_slice_behind_the_additional_seed_service() {
        let seeds: Vec<IpAddr> = ["10.0.0.2", "fd00::1", "::ffff:10.0.0.1", "10.0.0.2"]
            .iter()
            .map(|s| s.parse().unwrap())
            .collect();
        let slices = seed_endpoint_slices(&cluster(), &datacenter(), &seeds).unwrap();
        let shape: Vec<(String, String, Vec<String>)> = slices
            .iter()
            .map(|s| {
                (
                    s.name_any(),
                    s.address_type.clone(),
                    s.endpoints[0].addresses.clone(),
                )
            })
            .collect();
        assert_eq!(
            shape,
            [
                (
                    "demo-democluster-dc2-additional-seed-service-ipv4".to_owned(),
                    "IPv4".to_owned(),
                    vec!["10.0.0.1".to_owned(), "10.0.0.2".to_owned()]
                ),
                (
                    "demo-democluster-dc2-additional-seed-service-ipv6".to_owned(),
                    "IPv6".to_owned(),
                    vec!["fd00::1".to_owned()]
                ),
            ]
        );
        let labels = slices[0].labels();
        assert_eq!(
            labels[labels::SERVICE_NAME],
            "democluster-dc2-additional-seed-service"
        );
        assert_eq!(labels[labels::MANAGED_BY], labels::CONTROL_PLANE_MANAGER);
        assert_eq!(labels[labels::K8SSANDRA_CLUSTER_NAME], "demo");
        assert_eq!(slices[0].namespace().as_deref(), Some("east"));
        assert!(
            slices[0]
                .annotations()
                .contains_key(annotations::RESOURCE_HASH)
        );
    }

    #[test]
    fn no_other_seed_means_no_slice_and_order_does_not_change_the_hash() {
        assert!(
            seed_endpoint_slices(&cluster(), &datacenter(), &[])
                .unwrap()
                .is_empty()
        );
        let a: IpAddr = "10.0.0.1".parse().unwrap();
        let b: IpAddr = "10.0.0.2".parse().unwrap();
        let hash_of = |seeds: &[IpAddr]| {
            seed_endpoint_slices(&cluster(), &datacenter(), seeds).unwrap()[0]
                .annotations()
                .get(annotations::RESOURCE_HASH)
                .cloned()
        };
        assert_eq!(hash_of(&[a, b]), hash_of(&[b, a]));
        assert_ne!(hash_of(&[a]), hash_of(&[a, b]));
    }
}
