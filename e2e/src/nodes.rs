//! Fake Nodes of a local cluster: run by kwok, spread over zones, each with its own slice of the
//! cluster's range for pod IPs.

use std::collections::BTreeMap;

use k8s_openapi::{
    api::core::v1::{Node, NodeAddress, NodeSpec, NodeStatus},
    apimachinery::pkg::{api::resource::Quantity, apis::meta::v1::ObjectMeta},
};

use crate::pod_network::ClusterAddresses;

/// Annotation that tells kwok to run a node (its `--manage-nodes-with-annotation-selector`).
pub const KWOK_NODE_ANNOTATION: (&str, &str) = ("kwok.x-k8s.io/node", "fake");
/// The zone label that racks are spread over.
pub const ZONE_LABEL: &str = "topology.kubernetes.io/zone";
/// The region label.
pub const REGION_LABEL: &str = "topology.kubernetes.io/region";
/// Region of every node.
pub const REGION: &str = "region1";
/// Most nodes one cluster can have: each takes a slice of the cluster's range.
pub const MAX_NODES: usize = crate::pod_network::MAX_NODES;

/// Node name in kind's style: `<cluster>-worker`, `<cluster>-worker2`, ...
pub fn node_name(cluster: &str, index: usize) -> String {
    match index {
        0 => format!("{cluster}-worker"),
        n => format!("{cluster}-worker{}", n + 1),
    }
}

/// Node `index` of the cluster named `cluster` with `addresses`, in `zone`.
pub fn fake_node(cluster: &str, addresses: &ClusterAddresses, index: usize, zone: &str) -> Node {
    let name = node_name(cluster, index);
    let labels = BTreeMap::from([
        ("kubernetes.io/hostname".to_string(), name.clone()),
        ("kubernetes.io/os".to_string(), "linux".to_string()),
        ("kubernetes.io/arch".to_string(), "amd64".to_string()),
        (ZONE_LABEL.to_string(), zone.to_string()),
        (REGION_LABEL.to_string(), REGION.to_string()),
        ("type".to_string(), "kwok".to_string()),
    ]);
    let annotations = BTreeMap::from([
        (
            KWOK_NODE_ANNOTATION.0.to_string(),
            KWOK_NODE_ANNOTATION.1.to_string(),
        ),
        ("node.alpha.kubernetes.io/ttl".to_string(), "0".to_string()),
    ]);
    let resources = BTreeMap::from([
        ("cpu".to_string(), Quantity("16".to_string())),
        ("memory".to_string(), Quantity("64Gi".to_string())),
        (
            "ephemeral-storage".to_string(),
            Quantity("500Gi".to_string()),
        ),
        ("pods".to_string(), Quantity("110".to_string())),
    ]);
    let cidr = addresses.node_pod_cidr(index);
    Node {
        metadata: ObjectMeta {
            name: Some(name.clone()),
            labels: Some(labels),
            annotations: Some(annotations),
            ..ObjectMeta::default()
        },
        spec: Some(NodeSpec {
            pod_cidr: Some(cidr.clone()),
            pod_cidrs: Some(vec![cidr]),
            ..NodeSpec::default()
        }),
        status: Some(NodeStatus {
            allocatable: Some(resources.clone()),
            capacity: Some(resources),
            addresses: Some(vec![
                NodeAddress {
                    type_: "InternalIP".to_string(),
                    address: addresses.node_ip(index).to_string(),
                },
                NodeAddress {
                    type_: "Hostname".to_string(),
                    address: name,
                },
            ]),
            ..NodeStatus::default()
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nodes_are_named_like_kind_and_get_their_slice_of_the_cluster_range() {
        assert_eq!(node_name("k8ssandra-0", 0), "k8ssandra-0-worker");
        assert_eq!(node_name("k8ssandra-0", 2), "k8ssandra-0-worker3");
        let addresses = ClusterAddresses::new(true, 2);
        let node = fake_node("k8ssandra-1", &addresses, 2, "zone-c");
        let spec = node.spec.unwrap();
        assert_eq!(spec.pod_cidr.as_deref(), Some("198.18.9.0/25"));
        let labels = node.metadata.labels.unwrap();
        assert_eq!(labels[ZONE_LABEL], "zone-c");
        assert_eq!(labels["kubernetes.io/hostname"], "k8ssandra-1-worker3");
        let annotations = node.metadata.annotations.unwrap();
        assert_eq!(annotations[KWOK_NODE_ANNOTATION.0], KWOK_NODE_ANNOTATION.1);
        let addresses = node.status.unwrap().addresses.unwrap();
        assert_eq!(addresses[0].address, "198.18.15.131");
    }
}
