//! The fleet's pod network: pod IPs that Kubernetes accepts everywhere, and that the test process
//! can listen on and reach.
//!
//! Each fleet makes one network namespace of its own and a veth pair into it. Every cluster of
//! the fleet has a `/21` of the benchmarking range `198.18.0.0/15` (RFC 2544, used by no real
//! network), local inside the namespace (a `local` route on its loopback device, so any address
//! of the range can be bound there). The root namespace gets one route per cluster range through
//! the veth, and nothing else on the host changes. Pods' stand-ins (the fake Management API) bind
//! their sockets inside the namespace from a helper thread ([`PodNetwork::bind_tcp`]) and are
//! served by the test process; the operator, the tests and kubectl stay in the root namespace.
//!
//! Where no namespace can be made (not root, no `CAP_NET_ADMIN`, no `ip`), the fleet falls back
//! to loopback addresses (`127.<slot>.0.0/21`), which the API server refuses in Endpoints and
//! EndpointSlices: it says so once, and [`PodNetwork::endpoints_unavailable`] tells tests why
//! they skip.

use std::{
    collections::BTreeSet,
    fs::File,
    net::{Ipv4Addr, SocketAddr, TcpListener},
    os::fd::AsFd,
    path::{Path, PathBuf},
    process::Command,
    sync::{Arc, Once},
};

use k8ssandra_mgmt_api::fake::Binder;

/// The range every fleet's pod IPs are taken from.
pub const POD_RANGE: &str = "198.18.0.0/15";
/// Environment variable that chooses the pod network: `auto` (default: a namespace where one can
/// be made), `namespace` (fail where none can be made) or `loopback`.
pub const POD_NETWORK_ENV: &str = "K8SSANDRA_E2E_POD_NETWORK";
/// Most nodes a cluster can have: each takes a `/25` of the cluster's `/21`; the last `/25` holds
/// the nodes' own addresses.
pub const MAX_NODES: usize = 15;
/// Most slots (clusters running at once on the machine): 63 `/21`s fit below the link block.
pub const MAX_SLOTS: u8 = 63;

/// Prefix length of one cluster's range.
const CLUSTER_PREFIX: u8 = 21;
/// Prefix length of one node's pod CIDR.
const NODE_PREFIX: u8 = 25;
/// Addresses in one node's pod CIDR.
const NODE_BLOCK: u32 = 1 << (32 - NODE_PREFIX);
/// First address of the range.
const RANGE_START: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 0);
/// The root namespace's end of fleet `s`'s veth has `198.19.255.s`, outside every cluster range.
const LINK_BLOCK: [u8; 3] = [198, 19, 255];
/// Name prefix of the fleets' network namespaces (`ip netns`), followed by the owning slot.
const NAMESPACE_PREFIX: &str = "k8ssandra-e2e-";
/// Name prefix of the fleets' veth ends in the root namespace, followed by the owning slot.
const LINK_PREFIX: &str = "k8se2e-";
/// Name of the veth end inside the namespace.
const INNER_LINK: &str = "eth0";
/// Where `ip netns` keeps its namespaces.
const NETNS_DIR: &str = "/run/netns";

/// What can go wrong while making the pod network.
#[derive(Debug, thiserror::Error)]
pub enum NetworkError {
    /// An `ip` command failed.
    #[error("`ip {command}` failed: {message}")]
    Ip {
        /// The arguments.
        command: String,
        /// What `ip` said, or why it did not run.
        message: String,
    },
    /// The environment variable has a value it does not know.
    #[error("{POD_NETWORK_ENV}={value}: expected auto, namespace or loopback")]
    Choice {
        /// The variable's value.
        value: String,
    },
}

/// The addresses of one cluster, fixed by its slot and the kind of pod network.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ClusterAddresses {
    base: Ipv4Addr,
}

impl ClusterAddresses {
    /// The addresses of the cluster on `slot` (1 to [`MAX_SLOTS`]): `198.18.0.0 + (slot - 1) *
    /// 2048` in a namespace, `127.<slot>.0.0` on loopback.
    pub fn new(routed: bool, slot: u8) -> Self {
        let base = if routed {
            let offset = u32::from(slot.saturating_sub(1)) << (32 - CLUSTER_PREFIX);
            Ipv4Addr::from(u32::from(RANGE_START) + offset)
        } else {
            Ipv4Addr::new(127, slot, 0, 0)
        };
        Self { base }
    }

    /// The cluster's whole range, as a CIDR.
    pub fn range(&self) -> String {
        format!("{}/{CLUSTER_PREFIX}", self.base)
    }

    /// Whether `ip` is in the cluster's range.
    pub fn contains(&self, ip: Ipv4Addr) -> bool {
        u32::from(ip) >> (32 - CLUSTER_PREFIX) == u32::from(self.base) >> (32 - CLUSTER_PREFIX)
    }

    /// The pod CIDR of node `index` (below [`MAX_NODES`]).
    pub fn node_pod_cidr(&self, index: usize) -> String {
        format!("{}/{NODE_PREFIX}", self.offset(block(index)))
    }

    /// The own address of node `index`, in the last `/25`.
    pub fn node_ip(&self, index: usize) -> Ipv4Addr {
        self.offset(block(MAX_NODES) + u32::try_from(index).unwrap_or(0) + 1)
    }

    /// kwok's fallback node address (every node has its own).
    pub fn kwok_node_ip(&self) -> Ipv4Addr {
        self.offset(block(MAX_NODES) + NODE_BLOCK - 2)
    }

    /// kwok's fallback pod CIDR (every node has its own): the upper half of the last `/25`.
    pub fn kwok_pod_cidr(&self) -> String {
        format!(
            "{}/{}",
            self.offset(block(MAX_NODES) + NODE_BLOCK / 2),
            NODE_PREFIX + 1
        )
    }

    fn offset(&self, by: u32) -> Ipv4Addr {
        Ipv4Addr::from(u32::from(self.base) + by)
    }
}

/// First address of node block `index`, relative to the cluster's base.
fn block(index: usize) -> u32 {
    u32::try_from(index.min(MAX_NODES)).unwrap_or(0) * NODE_BLOCK
}

/// How a fleet's pods are addressed; cheap to clone, held by every cluster of the fleet.
#[derive(Clone, Debug)]
pub enum PodNetwork {
    /// Pod IPs in the fleet's network namespace, routed from the root namespace.
    Namespace {
        /// The namespace's file, for setns(2).
        path: PathBuf,
        /// The veth end in the root namespace.
        link: String,
    },
    /// Pod IPs on the loopback device: the API server refuses them in endpoints.
    Loopback {
        /// Why no namespace was made.
        reason: Arc<str>,
    },
}

impl PodNetwork {
    /// Whether pod IPs are routed addresses (not loopback ones).
    pub fn is_routed(&self) -> bool {
        matches!(self, Self::Namespace { .. })
    }

    /// The addresses of the cluster on `slot` in this network.
    pub fn addresses(&self, slot: u8) -> ClusterAddresses {
        ClusterAddresses::new(self.is_routed(), slot)
    }

    /// `None` where Services get endpoints; otherwise why they cannot, for a test to skip with.
    pub fn endpoints_unavailable(&self) -> Option<String> {
        match self {
            Self::Namespace { .. } => None,
            Self::Loopback { reason } => Some(format!(
                "the fleet's pods have loopback addresses, which the API server refuses in \
                 Endpoints and EndpointSlices ({reason})"
            )),
        }
    }

    /// A listening socket on `address` where pods live: inside the namespace, bound from a
    /// helper thread that enters it (the socket stays in the namespace it was made in), or here.
    pub fn bind_tcp(&self, address: SocketAddr) -> std::io::Result<TcpListener> {
        let Self::Namespace { path, .. } = self else {
            return bind_nonblocking(address);
        };
        let path = path.clone();
        std::thread::scope(|scope| {
            scope
                .spawn(move || {
                    let namespace = File::open(&path)?;
                    rustix::thread::move_into_link_name_space(
                        namespace.as_fd(),
                        Some(rustix::thread::LinkNameSpaceType::Network),
                    )?;
                    bind_nonblocking(address)
                })
                .join()
                .unwrap_or_else(|_| Err(std::io::Error::other("the binding thread panicked")))
        })
    }

    /// What of this network is still on the machine: its namespace, its link, and routes to
    /// `ranges` (for tests of teardown; nothing for the loopback fallback).
    pub fn leftovers(&self, ranges: &[String]) -> Result<Vec<String>, NetworkError> {
        let Self::Namespace { path, link } = self else {
            return Ok(Vec::new());
        };
        let mut found = Vec::new();
        if path.exists() {
            found.push(format!("network namespace {}", path.display()));
        }
        if Path::new("/sys/class/net").join(link).exists() {
            found.push(format!("link {link}"));
        }
        let routes = ip(&["-4", "route", "show", "root", POD_RANGE])?;
        found.extend(
            routes
                .lines()
                .filter(|route| ranges.iter().any(|range| route.starts_with(range.as_str())))
                .map(|route| format!("route {}", route.trim())),
        );
        Ok(found)
    }

    /// [`PodNetwork::bind_tcp`] as the fake Management API takes it.
    pub fn binder(&self) -> Binder {
        let network = self.clone();
        Arc::new(move |address| network.bind_tcp(address))
    }
}

impl std::fmt::Display for PodNetwork {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Namespace { path, link } => write!(
                f,
                "network namespace {} (`ip netns exec` it to listen on a pod IP), routed through {link}",
                path.file_name().unwrap_or_default().to_string_lossy()
            ),
            Self::Loopback { reason } => write!(f, "loopback addresses ({reason})"),
        }
    }
}

fn bind_nonblocking(address: SocketAddr) -> std::io::Result<TcpListener> {
    let listener = TcpListener::bind(address)?;
    listener.set_nonblocking(true)?;
    Ok(listener)
}

/// Which pod network a fleet makes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum PodNetworkChoice {
    /// A namespace where one can be made, else loopback (said once per process).
    #[default]
    Auto,
    /// A namespace, or the fleet fails to start.
    Namespace,
    /// Loopback addresses.
    Loopback,
}

impl PodNetworkChoice {
    /// The choice [`POD_NETWORK_ENV`] makes (unset: [`PodNetworkChoice::Auto`]).
    pub fn from_env() -> Result<Self, NetworkError> {
        let value = std::env::var(POD_NETWORK_ENV).unwrap_or_default();
        match value.as_str() {
            "" | "auto" => Ok(Self::Auto),
            "namespace" => Ok(Self::Namespace),
            "loopback" => Ok(Self::Loopback),
            _ => Err(NetworkError::Choice { value }),
        }
    }
}

/// The network namespace, veth and routes of one fleet. Dropping it removes them.
#[derive(Debug)]
pub struct FleetNetwork {
    slot: u8,
}

impl FleetNetwork {
    /// The pod network for a fleet whose clusters hold `slots` (the first owns the namespace's
    /// names), as `choice` says.
    pub fn make(
        choice: PodNetworkChoice,
        slots: &[u8],
    ) -> Result<(Option<Self>, PodNetwork), NetworkError> {
        if choice == PodNetworkChoice::Loopback {
            let reason = "the fleet was asked for loopback addresses".into();
            return Ok((None, PodNetwork::Loopback { reason }));
        }
        match Self::create(slots) {
            Ok(network) => {
                let pod_network = PodNetwork::Namespace {
                    path: Path::new(NETNS_DIR).join(namespace_name(network.slot)),
                    link: link_name(network.slot),
                };
                Ok((Some(network), pod_network))
            }
            Err(error) if choice == PodNetworkChoice::Namespace => Err(error),
            Err(error) => {
                let reason = format!("no network namespace: {error}");
                warn_once(&reason);
                Ok((
                    None,
                    PodNetwork::Loopback {
                        reason: reason.into(),
                    },
                ))
            }
        }
    }

    /// Makes the namespace, the veth pair, the pod ranges of `slots` local inside, and a route to
    /// each from the root namespace. What was made is removed again on error.
    fn create(slots: &[u8]) -> Result<Self, NetworkError> {
        let owner = *slots.first().ok_or_else(|| NetworkError::Ip {
            command: "netns add".into(),
            message: "a fleet without clusters".into(),
        })?;
        let namespace = namespace_name(owner);
        let link = link_name(owner);
        let host = host_address(owner).to_string();
        ip(&["netns", "add", &namespace])?;
        // From here on, dropping `network` removes what was made.
        let network = Self { slot: owner };
        ip(&[
            "link", "add", &link, "type", "veth", "peer", "name", INNER_LINK, "netns", &namespace,
        ])?;
        ip(&["addr", "add", &format!("{host}/32"), "dev", &link])?;
        ip(&["link", "set", &link, "up"])?;
        ip(&["-n", &namespace, "link", "set", "lo", "up"])?;
        ip(&["-n", &namespace, "link", "set", INNER_LINK, "up"])?;
        ip(&[
            "-n",
            &namespace,
            "route",
            "add",
            &format!("{host}/32"),
            "dev",
            INNER_LINK,
        ])?;
        for slot in slots {
            let range = ClusterAddresses::new(true, *slot).range();
            ip(&[
                "-n", &namespace, "route", "add", "local", &range, "dev", "lo",
            ])?;
            ip(&["route", "add", &range, "dev", &link, "src", &host])?;
        }
        tracing::info!(%namespace, %link, ?slots, "fleet pod network made");
        Ok(network)
    }
}

impl Drop for FleetNetwork {
    fn drop(&mut self) {
        remove(self.slot);
    }
}

/// Removes slot `slot`'s namespace and link (and with the link, its routes), wherever they were
/// left. Only the holder of the slot may call it.
pub(crate) fn remove(slot: u8) {
    if Path::new("/sys/class/net").join(link_name(slot)).exists()
        && let Err(error) = ip(&["link", "del", &link_name(slot)])
    {
        tracing::warn!(%error, "cannot remove the fleet's veth");
    }
    if Path::new(NETNS_DIR).join(namespace_name(slot)).exists()
        && let Err(error) = ip(&["netns", "del", &namespace_name(slot)])
    {
        tracing::warn!(%error, "cannot remove the fleet's network namespace");
    }
}

/// Slots whose namespace or link exists on this machine (a live fleet's, or a killed one's).
pub(crate) fn slots_with_network() -> BTreeSet<u8> {
    let names = |dir: &str, prefix: &'static str| {
        std::fs::read_dir(dir)
            .into_iter()
            .flatten()
            .flatten()
            .filter_map(move |entry| {
                let name = entry.file_name().into_string().ok()?;
                name.strip_prefix(prefix)?.parse::<u8>().ok()
            })
    };
    names(NETNS_DIR, NAMESPACE_PREFIX)
        .chain(names("/sys/class/net", LINK_PREFIX))
        .collect()
}

fn namespace_name(slot: u8) -> String {
    format!("{NAMESPACE_PREFIX}{slot}")
}

fn link_name(slot: u8) -> String {
    format!("{LINK_PREFIX}{slot}")
}

/// The root namespace's address on fleet `slot`'s veth: the source of every connection to its
/// pods, and the one address the namespace routes back.
fn host_address(slot: u8) -> Ipv4Addr {
    let [a, b, c] = LINK_BLOCK;
    Ipv4Addr::new(a, b, c, slot)
}

/// Runs `ip` with `args`; its standard output.
fn ip(args: &[&str]) -> Result<String, NetworkError> {
    let failed = |message: String| NetworkError::Ip {
        command: args.join(" "),
        message,
    };
    let output = Command::new("ip")
        .args(args)
        .output()
        .map_err(|error| failed(error.to_string()))?;
    if !output.status.success() {
        return Err(failed(
            String::from_utf8_lossy(&output.stderr).trim().to_string(),
        ));
    }
    Ok(String::from_utf8_lossy(&output.stdout).into_owned())
}

fn warn_once(reason: &str) {
    static WARNED: Once = Once::new();
    WARNED.call_once(|| {
        eprintln!(
            "local fleet: {reason}; pods get loopback addresses, so Services list no endpoints \
             and tests that need them skip"
        );
        tracing::warn!(%reason, "local fleet pods get loopback addresses");
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clusters_get_disjoint_ranges_inside_the_benchmarking_range() {
        let first = ClusterAddresses::new(true, 1);
        let second = ClusterAddresses::new(true, 2);
        let last = ClusterAddresses::new(true, MAX_SLOTS);
        assert_eq!(first.range(), "198.18.0.0/21");
        assert_eq!(second.range(), "198.18.8.0/21");
        assert_eq!(last.range(), "198.19.240.0/21");
        assert!(!last.contains(host_address(MAX_SLOTS)));
        assert!(!first.contains(second.node_ip(0)));
        assert_eq!(first.node_pod_cidr(0), "198.18.0.0/25");
        assert_eq!(first.node_pod_cidr(1), "198.18.0.128/25");
        assert_eq!(first.node_pod_cidr(MAX_NODES - 1), "198.18.7.0/25");
        assert_eq!(first.node_ip(0), Ipv4Addr::new(198, 18, 7, 129));
        assert_eq!(first.kwok_pod_cidr(), "198.18.7.192/26");
        assert_eq!(first.kwok_node_ip(), Ipv4Addr::new(198, 18, 7, 254));
        for index in 0..MAX_NODES {
            assert!(first.contains(first.node_ip(index)));
        }
    }

    #[test]
    fn the_loopback_fallback_keeps_the_layout() {
        let addresses = ClusterAddresses::new(false, 7);
        assert_eq!(addresses.range(), "127.7.0.0/21");
        assert_eq!(addresses.node_pod_cidr(2), "127.7.1.0/25");
        assert!(addresses.node_ip(2).is_loopback());
    }
}
