//! The datacenter's Services, as upstream names and shapes them, and the EndpointSlices that list
//! the additional seeds behind the selector-less additional-seed Service.
//!
//! | Service | Selects | Notes |
//! |---|---|---|
//! | `<cluster>-<dc>-service` | the datacenter's ready pods | CQL, mgmt API, metrics ports |
//! | `<cluster>-seed-service` | seed pods of the whole cluster | publishes not-ready addresses |
//! | `<cluster>-<dc>-all-pods-service` | every pod, ready or not | the StatefulSets' service; `prom-metrics` label |
//! | `<cluster>-<dc>-additional-seed-service` | nothing (EndpointSlices, with `additionalSeeds`) | always: the seed list names it |
//! | `<cluster>-<dc>-node-port-service` | the datacenter's pods | only with `networking.nodePort` |

use std::{collections::BTreeMap, net::IpAddr};

use k8s_openapi::{
    api::{
        core::v1::{Service, ServicePort, ServiceSpec},
        discovery::v1::{Endpoint, EndpointSlice},
    },
    apimachinery::pkg::util::intstr::IntOrString,
};
use k8ssandra_api::{
    cassandra::{CassandraDatacenter, ServerType, ServiceConfigAdditions},
    defaults::MANAGEMENT_API_PORT,
    labels, names,
};

use super::{
    Result, cluster_name, config, dc_labels, hash, merged, non_empty, operator_annotations,
    operator_labels, owned_meta,
};

/// Prometheus exporter port.
const PROMETHEUS_PORT: i32 = 9103;
/// Metrics endpoint of the Management API (MCAC replacement).
const METRICS_PORT: i32 = 9000;
/// CQL over TLS.
const TLS_NATIVE_PORT: i32 = 9142;
/// Thrift (Cassandra 3.x and DSE).
const THRIFT_PORT: i32 = 9160;

fn port(name: &str, number: i32) -> ServicePort {
    ServicePort {
        name: Some(name.to_owned()),
        port: number,
        target_port: Some(IntOrString::Int(number)),
        ..ServicePort::default()
    }
}

fn mgmt_port() -> i32 {
    i32::from(MANAGEMENT_API_PORT)
}

/// Whether the server still speaks Thrift (Cassandra 3.x, DSE).
pub(crate) fn has_thrift(dc: &CassandraDatacenter) -> bool {
    dc.spec.server_version.starts_with("3.") || dc.spec.server_type == ServerType::Dse
}

/// Adds a Service's `additionalServiceConfig` labels and annotations.
fn add_service_config(service: &mut Service, additions: Option<&ServiceConfigAdditions>) {
    let Some(additions) = additions else { return };
    if let Some(extra) = additions
        .additional_labels
        .as_ref()
        .filter(|m| !m.is_empty())
    {
        service
            .metadata
            .labels
            .get_or_insert_with(BTreeMap::new)
            .extend(extra.clone());
    }
    if let Some(extra) = additions
        .additional_annotations
        .as_ref()
        .filter(|m| !m.is_empty())
    {
        service
            .metadata
            .annotations
            .get_or_insert_with(BTreeMap::new)
            .extend(extra.clone());
    }
}

/// A headless Service selecting the datacenter's pods, with the datacenter and operator labels.
fn headless_service(dc: &CassandraDatacenter, name: String) -> Result<Service> {
    let labels = merged(dc_labels(dc)?, operator_labels(dc));
    Ok(Service {
        metadata: owned_meta(dc, name, labels, operator_annotations(dc))?,
        spec: Some(ServiceSpec {
            type_: Some("ClusterIP".into()),
            cluster_ip: Some("None".into()),
            selector: non_empty(dc_labels(dc)?),
            ..ServiceSpec::default()
        }),
        status: None,
    })
}

fn spec_mut(service: &mut Service) -> &mut ServiceSpec {
    service.spec.get_or_insert_with(ServiceSpec::default)
}

fn finish(mut service: Service, additions: Option<&ServiceConfigAdditions>) -> Result<Service> {
    add_service_config(&mut service, additions);
    hash::stamp(&mut service, &[])?;
    Ok(service)
}

fn service_config(dc: &CassandraDatacenter) -> Option<&k8ssandra_api::cassandra::ServiceConfig> {
    dc.spec.additional_service_config.as_ref()
}

/// `<cluster>-<dc>-service`: headless, the datacenter's ready pods, for clients (CQL) and the
/// Management API; Thrift for Cassandra 3.x and DSE, DSE workload ports when enabled.
///
/// # Errors
/// When the datacenter lacks name or uid.
pub fn datacenter_service(dc: &CassandraDatacenter) -> Result<Service> {
    let name = names::datacenter_service(cluster_name(dc), &dc.label_resource_name());
    let mut service = headless_service(dc, name)?;
    let native = config::service_native_port(dc);
    let mut ports = vec![
        port("native", native),
        port("tls-native", TLS_NATIVE_PORT),
        port("mgmt-api", mgmt_port()),
        port("prometheus", PROMETHEUS_PORT),
        port("metrics", METRICS_PORT),
    ];
    if has_thrift(dc) {
        ports.push(port("thrift", THRIFT_PORT));
    }
    if let Some(workloads) = &dc.spec.dse_workloads {
        if workloads.analytics_enabled == Some(true) {
            ports.extend([
                port("dsefs-public", 5598),
                port("spark-worker", 7081),
                port("jobserver", 8090),
                port("always-on-sql", 9077),
                port("sql-thrift", 10000),
                port("spark-history", 18080),
            ]);
        }
        if workloads.graph_enabled == Some(true) {
            ports.push(port("gremlin", 8182));
        }
        if workloads.search_enabled == Some(true) {
            ports.push(port("solr", 8983));
        }
    }
    spec_mut(&mut service).ports = Some(ports);
    finish(
        service,
        service_config(dc).and_then(|c| c.dc_service.as_ref()),
    )
}

/// `<cluster>-seed-service`: headless, every seed pod of the Cassandra cluster (all datacenters in
/// the namespace), published before the pods are ready so that new nodes find the seeds.
///
/// The Service is shared by the cluster's datacenters in the namespace (`peers`; `dc` is always
/// one of them), so every one of them builds the same object: each is an owner (none the
/// controller), and labels, annotations and `additionalServiceConfig.seedService` come from the
/// datacenter whose name sorts first. Deleting one datacenter leaves the Service to the others,
/// and no two passes ever disagree on it.
///
/// # Errors
/// When a datacenter lacks name or uid.
pub fn seed_service(dc: &CassandraDatacenter, peers: &[&CassandraDatacenter]) -> Result<Service> {
    let cluster = cluster_name(dc);
    let mut owners: Vec<&CassandraDatacenter> = peers
        .iter()
        .copied()
        .filter(|peer| {
            cluster_name(peer) == cluster
                && peer.metadata.namespace == dc.metadata.namespace
                && peer.metadata.deletion_timestamp.is_none()
        })
        .chain([dc])
        .collect();
    owners.sort_by(|a, b| a.metadata.name.cmp(&b.metadata.name));
    owners.dedup_by(|a, b| a.metadata.uid == b.metadata.uid);
    let source = owners.first().copied().unwrap_or(dc);
    let mut service = headless_service(source, names::seed_service(cluster))?;
    service.metadata.labels = non_empty(merged(
        labels::cluster_labels(cluster),
        operator_labels(source),
    ));
    service.metadata.owner_references = Some(
        owners
            .iter()
            .map(|owner| {
                let mut reference = super::owner::controller_reference(owner)?;
                reference.controller = Some(false);
                Ok(reference)
            })
            .collect::<Result<_>>()?,
    );
    let mut selector = labels::cluster_labels(cluster);
    selector.insert(labels::SEED_NODE.to_owned(), "true".to_owned());
    let spec = spec_mut(&mut service);
    spec.selector = Some(selector);
    spec.publish_not_ready_addresses = Some(true);
    finish(
        service,
        service_config(source).and_then(|c| c.seed_service.as_ref()),
    )
}

/// `<cluster>-<dc>-all-pods-service`: headless, every pod of the datacenter ready or not; the
/// StatefulSets' governing service and the one metrics scrapers select.
///
/// # Errors
/// When the datacenter lacks name or uid.
pub fn all_pods_service(dc: &CassandraDatacenter) -> Result<Service> {
    let name = names::all_pods_service(cluster_name(dc), &dc.label_resource_name());
    let mut service = headless_service(dc, name)?;
    service
        .metadata
        .labels
        .get_or_insert_with(BTreeMap::new)
        .insert(labels::PROM_METRICS.to_owned(), "true".to_owned());
    let spec = spec_mut(&mut service);
    spec.publish_not_ready_addresses = Some(true);
    spec.ports = Some(vec![
        port("native", config::service_native_port(dc)),
        port("mgmt-api", mgmt_port()),
        port("prometheus", PROMETHEUS_PORT),
        port("metrics", METRICS_PORT),
    ]);
    finish(
        service,
        service_config(dc).and_then(|c| c.allpods_service.as_ref()),
    )
}

/// `<cluster>-<dc>-additional-seed-service`: headless without selector; its endpoints are the
/// EndpointSlices of [`additional_seed_endpoint_slices`]. Always made, as upstream: every pod's
/// seed list names it, with or without `additionalSeeds`.
///
/// # Errors
/// When the datacenter lacks name or uid.
pub fn additional_seed_service(dc: &CassandraDatacenter) -> Result<Service> {
    let name = names::additional_seed_service(cluster_name(dc), &dc.label_resource_name());
    let mut service = headless_service(dc, name)?;
    let spec = spec_mut(&mut service);
    spec.selector = None;
    spec.publish_not_ready_addresses = Some(true);
    finish(
        service,
        service_config(dc).and_then(|c| c.additional_seed_service.as_ref()),
    )
}

/// `<cluster>-<dc>-node-port-service`: NodePort with `externalTrafficPolicy: Local` (clients keep
/// their source address) on the internode and CQL ports. `None` without `networking.nodePort`.
///
/// # Errors
/// When the datacenter lacks name or uid.
pub fn node_port_service(dc: &CassandraDatacenter) -> Result<Option<Service>> {
    let (Some(native), Some(internode)) = (
        config::node_port_native(dc),
        config::node_port_internode(dc),
    ) else {
        return Ok(None);
    };
    let name = names::node_port_service(cluster_name(dc), &dc.label_resource_name());
    let mut service = headless_service(dc, name)?;
    let node_port = |name: &str, number: i32| ServicePort {
        node_port: Some(number),
        ..port(name, number)
    };
    let spec = spec_mut(&mut service);
    spec.type_ = Some("NodePort".into());
    // A NodePort Service cannot be headless; the API server allocates the cluster IP.
    spec.cluster_ip = None;
    spec.external_traffic_policy = Some("Local".into());
    spec.ports = Some(vec![
        node_port("internode", internode),
        node_port("native", native),
    ]);
    finish(
        service,
        service_config(dc).and_then(|c| c.node_port_service.as_ref()),
    )
    .map(Some)
}

/// Every Service the datacenter wants, in upstream's order: datacenter, seed, all-pods,
/// additional-seed, then the NodePort Service when configured. `peers` are the other datacenters in
/// the namespace, with which the cluster's seed Service is shared.
///
/// # Errors
/// When a datacenter lacks name or uid.
pub fn services(dc: &CassandraDatacenter, peers: &[&CassandraDatacenter]) -> Result<Vec<Service>> {
    let mut out = vec![
        datacenter_service(dc)?,
        seed_service(dc, peers)?,
        all_pods_service(dc)?,
    ];
    out.push(additional_seed_service(dc)?);
    out.extend(node_port_service(dc)?);
    Ok(out)
}

fn additional_seeds(dc: &CassandraDatacenter) -> &[String] {
    dc.spec.additional_seeds.as_deref().unwrap_or_default()
}

/// Address family of an additional seed, as EndpointSlices name them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SeedAddressType {
    /// An IPv4 address (IPv4-mapped IPv6 addresses count as IPv4, as upstream's parser does).
    IPv4,
    /// An IPv6 address.
    IPv6,
    /// Anything else: a host name.
    Fqdn,
}

impl SeedAddressType {
    /// The EndpointSlice `addressType`.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::IPv4 => "IPv4",
            Self::IPv6 => "IPv6",
            Self::Fqdn => "FQDN",
        }
    }

    /// Classifies one `additionalSeeds` entry.
    #[must_use]
    pub fn of(seed: &str) -> Self {
        match seed.parse::<IpAddr>() {
            Ok(IpAddr::V4(_)) => Self::IPv4,
            Ok(IpAddr::V6(v6)) if v6.to_ipv4_mapped().is_some() => Self::IPv4,
            Ok(IpAddr::V6(_)) => Self::IPv6,
            Err(_) => Self::Fqdn,
        }
    }
}

/// The EndpointSlices of the additional seeds: `<additional-seed-service>-ipv4`, `-ipv6` and
/// `-fqdn` in that order, each only when it has addresses (none without `additionalSeeds`, as
/// upstream).
///
/// # Errors
/// When the datacenter lacks name or uid.
pub fn additional_seed_endpoint_slices(dc: &CassandraDatacenter) -> Result<Vec<EndpointSlice>> {
    let service = names::additional_seed_service(cluster_name(dc), &dc.label_resource_name());
    let mut out = Vec::with_capacity(3);
    for address_type in [
        SeedAddressType::IPv4,
        SeedAddressType::IPv6,
        SeedAddressType::Fqdn,
    ] {
        let addresses: Vec<String> = additional_seeds(dc)
            .iter()
            .filter(|seed| SeedAddressType::of(seed) == address_type)
            .cloned()
            .collect();
        if addresses.is_empty() {
            continue;
        }
        let mut labels = merged(dc_labels(dc)?, operator_labels(dc));
        labels.insert(labels::SERVICE_NAME.to_owned(), service.clone());
        let name = format!("{service}-{}", address_type.as_str().to_lowercase());
        let mut slice = EndpointSlice {
            metadata: owned_meta(dc, name, labels, operator_annotations(dc))?,
            address_type: address_type.as_str().to_owned(),
            endpoints: vec![Endpoint {
                addresses,
                ..Endpoint::default()
            }],
            ports: None,
        };
        hash::stamp(&mut slice, &[])?;
        out.push(slice);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seeds_split_by_address_type() {
        assert_eq!(SeedAddressType::of("10.0.0.1"), SeedAddressType::IPv4);
        assert_eq!(
            SeedAddressType::of("::ffff:10.0.0.1"),
            SeedAddressType::IPv4
        );
        assert_eq!(SeedAddressType::of("fd00::1"), SeedAddressType::IPv6);
        assert_eq!(
            SeedAddressType::of("seed.example.com"),
            SeedAddressType::Fqdn
        );
        assert_eq!(SeedAddressType::of("10.0.0.1:7000"), SeedAddressType::Fqdn);
    }

    fn datacenter(name: &str, cluster: &str, namespace: &str) -> CassandraDatacenter {
        let mut dc = CassandraDatacenter::new(
            name,
            k8ssandra_api::cassandra::CassandraDatacenterSpec {
                cluster_name: cluster.into(),
                server_version: "4.1.5".into(),
                additional_labels: Some(BTreeMap::from([("team".into(), name.into())])),
                ..Default::default()
            },
        );
        dc.metadata.namespace = Some(namespace.into());
        dc.metadata.uid = Some(format!("uid-{namespace}-{name}"));
        dc
    }

    #[test]
    fn the_seed_service_is_the_same_from_every_datacenter_of_the_cluster() {
        let dc1 = datacenter("dc1", "demo", "cass");
        let dc2 = datacenter("dc2", "demo", "cass");
        let other_cluster = datacenter("dc0", "other", "cass");
        let other_namespace = datacenter("dc0", "demo", "elsewhere");
        let peers = [&dc1, &dc2, &other_cluster, &other_namespace];
        let from_dc1 = seed_service(&dc1, &peers).unwrap();
        let from_dc2 = seed_service(&dc2, &[&dc2, &dc1]).unwrap();
        assert_eq!(from_dc1, from_dc2);
        let owners: Vec<_> = from_dc1
            .metadata
            .owner_references
            .iter()
            .flatten()
            .map(|o| (o.name.as_str(), o.controller))
            .collect();
        assert_eq!(owners, [("dc1", Some(false)), ("dc2", Some(false))]);
        // Labels come from the datacenter whose name sorts first.
        assert_eq!(
            from_dc1
                .metadata
                .labels
                .as_ref()
                .and_then(|l| l.get("team")),
            Some(&"dc1".to_owned())
        );
        // Once dc1 is being deleted, dc2 owns it alone.
        let mut leaving = dc1.clone();
        leaving.metadata.deletion_timestamp =
            Some(k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(
                k8s_openapi::jiff::Timestamp::UNIX_EPOCH,
            ));
        let alone = seed_service(&dc2, &[&leaving, &dc2]).unwrap();
        let owners: Vec<_> = alone
            .metadata
            .owner_references
            .iter()
            .flatten()
            .map(|o| o.name.as_str())
            .collect();
        assert_eq!(owners, ["dc2"]);
    }
}
