//! The gossip view of `GET /api/v0/metadata/endpoints`: `{"entity":[{string map}, ...]}`.

use std::collections::BTreeMap;
use std::net::IpAddr;

use serde::{Deserialize, Serialize};

/// Gossip keys this crate reads or the fake writes.
pub mod keys {
    /// Datacenter name.
    pub const DC: &str = "DC";
    /// Rack name.
    pub const RACK: &str = "RACK";
    /// Host ID (UUID).
    pub const HOST_ID: &str = "HOST_ID";
    /// `true` when the failure detector sees the node up.
    pub const IS_ALIVE: &str = "IS_ALIVE";
    /// `true` on the entry of the node that answered.
    pub const IS_LOCAL: &str = "IS_LOCAL";
    /// Broadcast address of the endpoint.
    pub const ENDPOINT_IP: &str = "ENDPOINT_IP";
    /// Client address (Cassandra 3.11).
    pub const RPC_ADDRESS: &str = "RPC_ADDRESS";
    /// Client address and port (Cassandra 4.0+).
    pub const NATIVE_ADDRESS_AND_PORT: &str = "NATIVE_ADDRESS_AND_PORT";
    /// Client address (DSE).
    pub const NATIVE_TRANSPORT_ADDRESS: &str = "NATIVE_TRANSPORT_ADDRESS";
    /// Internode address and port.
    pub const INTERNAL_ADDRESS_AND_PORT: &str = "INTERNAL_ADDRESS_AND_PORT";
    /// Gossip status, like `NORMAL,-123` or `LEFT,-123,1700000000000`.
    pub const STATUS: &str = "STATUS";
    /// Gossip status (4.0+ spelling).
    pub const STATUS_WITH_PORT: &str = "STATUS_WITH_PORT";
    /// Data size on disk in bytes, as a float.
    pub const LOAD: &str = "LOAD";
    /// Schema version UUID.
    pub const SCHEMA: &str = "SCHEMA";
    /// Cassandra version.
    pub const RELEASE_VERSION: &str = "RELEASE_VERSION";
    /// SSTable format versions.
    pub const SSTABLE_VERSIONS: &str = "SSTABLE_VERSIONS";
    /// Token list (hidden by Cassandra).
    pub const TOKENS: &str = "TOKENS";
}

/// Ring state of a node, from the prefix of its gossip `STATUS`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NodeStatus {
    /// `NORMAL`: owns its tokens.
    Normal,
    /// `BOOT` (or `JOINING`): bootstrapping.
    Joining,
    /// `LEAVING`: decommissioning.
    Leaving,
    /// `LEFT`: decommissioned, out of the ring.
    Left,
    /// `MOVING`: moving to a new token.
    Moving,
    /// `removing` / `removed`: being removed by another node.
    Removed,
    /// `shutdown`: announced a graceful stop (drain).
    Shutdown,
    /// `hibernate`: replacing another node.
    Hibernate,
    /// Anything else, as written (empty when the entry has no status).
    Other(String),
}

impl NodeStatus {
    /// Parses a gossip status by its prefix, case-insensitively.
    pub fn parse(raw: &str) -> Self {
        let upper = raw.trim().to_ascii_uppercase();
        let known = [
            ("NORMAL", NodeStatus::Normal),
            ("BOOT", NodeStatus::Joining),
            ("JOINING", NodeStatus::Joining),
            ("LEAVING", NodeStatus::Leaving),
            ("LEFT", NodeStatus::Left),
            ("MOVING", NodeStatus::Moving),
            ("REMOV", NodeStatus::Removed),
            ("SHUTDOWN", NodeStatus::Shutdown),
            ("HIBERNATE", NodeStatus::Hibernate),
        ];
        known
            .into_iter()
            .find(|(prefix, _)| upper.starts_with(prefix))
            .map(|(_, status)| status)
            .unwrap_or_else(|| NodeStatus::Other(raw.to_string()))
    }
}

/// One node's gossip state. Unknown keys are kept.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct EndpointState {
    fields: BTreeMap<String, String>,
}

impl EndpointState {
    /// Wraps a key/value map.
    pub fn from_fields(fields: BTreeMap<String, String>) -> Self {
        Self { fields }
    }

    /// Every key and value.
    pub fn fields(&self) -> &BTreeMap<String, String> {
        &self.fields
    }

    /// The value of `key`.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.fields.get(key).map(String::as_str)
    }

    /// Datacenter.
    pub fn datacenter(&self) -> Option<&str> {
        self.get(keys::DC)
    }

    /// Rack.
    pub fn rack(&self) -> Option<&str> {
        self.get(keys::RACK)
    }

    /// Host ID.
    pub fn host_id(&self) -> Option<&str> {
        self.get(keys::HOST_ID)
    }

    /// Whether the answering node sees this one up.
    pub fn is_alive(&self) -> bool {
        self.flag(keys::IS_ALIVE)
    }

    /// Whether this is the answering node's own entry.
    pub fn is_local(&self) -> bool {
        self.flag(keys::IS_LOCAL)
    }

    /// Broadcast address.
    pub fn endpoint_ip(&self) -> Option<IpAddr> {
        self.get(keys::ENDPOINT_IP).and_then(parse_ip)
    }

    /// Client (native transport) address, from whichever key the server version uses.
    pub fn rpc_address(&self) -> Option<IpAddr> {
        [
            keys::NATIVE_ADDRESS_AND_PORT,
            keys::NATIVE_TRANSPORT_ADDRESS,
            keys::RPC_ADDRESS,
        ]
        .into_iter()
        .find_map(|key| self.get(key).and_then(parse_ip))
    }

    /// True when the broadcast or client address is `ip`.
    pub fn has_ip(&self, ip: IpAddr) -> bool {
        self.endpoint_ip() == Some(ip) || self.rpc_address() == Some(ip)
    }

    /// Ring status (`STATUS`, else `STATUS_WITH_PORT`).
    pub fn status(&self) -> NodeStatus {
        let raw = self
            .get(keys::STATUS)
            .or_else(|| self.get(keys::STATUS_WITH_PORT))
            .unwrap_or("");
        NodeStatus::parse(raw)
    }

    /// Data size in bytes.
    pub fn load_bytes(&self) -> Option<f64> {
        self.get(keys::LOAD)?.trim().parse().ok()
    }

    /// Schema version.
    pub fn schema_version(&self) -> Option<&str> {
        self.get(keys::SCHEMA)
    }

    /// Cassandra version.
    pub fn release_version(&self) -> Option<&str> {
        self.get(keys::RELEASE_VERSION)
    }

    fn flag(&self, key: &str) -> bool {
        self.get(key)
            .is_some_and(|value| value.trim().eq_ignore_ascii_case("true"))
    }
}

/// Parses `1.2.3.4`, `/1.2.3.4`, `1.2.3.4:9042`, `[::1]:9042` or `::1`.
fn parse_ip(raw: &str) -> Option<IpAddr> {
    let text = raw.trim().trim_start_matches('/');
    if let Ok(ip) = text.parse() {
        return Some(ip);
    }
    if let Some(rest) = text.strip_prefix('[') {
        return rest.split_once(']').and_then(|(ip, _)| ip.parse().ok());
    }
    text.rsplit_once(':').and_then(|(ip, _)| ip.parse().ok())
}

/// The whole gossip view as one node sees it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EndpointStates {
    /// One entry per endpoint.
    pub entries: Vec<EndpointState>,
}

impl EndpointStates {
    /// The answering node's own entry.
    pub fn local(&self) -> Option<&EndpointState> {
        self.entries.iter().find(|entry| entry.is_local())
    }

    /// The entry whose broadcast or client address is `ip`.
    pub fn by_ip(&self, ip: IpAddr) -> Option<&EndpointState> {
        self.entries.iter().find(|entry| entry.has_ip(ip))
    }

    /// The entry of `host_id`.
    pub fn by_host_id(&self, host_id: &str) -> Option<&EndpointState> {
        self.entries
            .iter()
            .find(|entry| entry.host_id() == Some(host_id))
    }

    /// Entries of one datacenter.
    pub fn in_datacenter<'a>(&'a self, dc: &'a str) -> impl Iterator<Item = &'a EndpointState> {
        self.entries
            .iter()
            .filter(move |entry| entry.datacenter() == Some(dc))
    }
}

/// Wire shape: values are strings on real servers, but anything scalar is accepted.
#[derive(Deserialize)]
pub(crate) struct EndpointsBody {
    entity: Vec<BTreeMap<String, serde_json::Value>>,
}

impl From<EndpointsBody> for EndpointStates {
    fn from(body: EndpointsBody) -> Self {
        let entries = body
            .entity
            .into_iter()
            .map(|map| {
                let fields = map
                    .into_iter()
                    .filter_map(|(key, value)| match value {
                        serde_json::Value::String(text) => Some((key, text)),
                        serde_json::Value::Null => None,
                        other => Some((key, other.to_string())),
                    })
                    .collect();
                EndpointState::from_fields(fields)
            })
            .collect();
        EndpointStates { entries }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_is_matched_by_prefix() {
        assert_eq!(
            NodeStatus::parse("NORMAL,-9223372036854775808"),
            NodeStatus::Normal
        );
        assert_eq!(NodeStatus::parse("BOOT,123"), NodeStatus::Joining);
        assert_eq!(NodeStatus::parse("JOINING"), NodeStatus::Joining);
        assert_eq!(NodeStatus::parse("LEAVING,1"), NodeStatus::Leaving);
        assert_eq!(NodeStatus::parse("LEFT,1,1700000000000"), NodeStatus::Left);
        assert_eq!(NodeStatus::parse("MOVING,5"), NodeStatus::Moving);
        assert_eq!(NodeStatus::parse("removed,abc"), NodeStatus::Removed);
        assert_eq!(NodeStatus::parse("shutdown,true"), NodeStatus::Shutdown);
        assert_eq!(NodeStatus::parse("hibernate,true"), NodeStatus::Hibernate);
        assert_eq!(
            NodeStatus::parse("weird"),
            NodeStatus::Other("weird".into())
        );
    }

    #[test]
    fn decodes_real_body_and_reads_fields() {
        let body = r#"{"entity":[
            {"DC":"dc1","RACK":"r1","HOST_ID":"h-1","IS_ALIVE":"true","IS_LOCAL":"true",
             "ENDPOINT_IP":"10.0.0.1","NATIVE_ADDRESS_AND_PORT":"10.0.0.1:9042",
             "STATUS_WITH_PORT":"NORMAL,42","LOAD":"1.5E7","SCHEMA":"s-1",
             "RELEASE_VERSION":"4.1.5","X_CUSTOM":"kept"},
            {"DC":"dc1","HOST_ID":"h-2","IS_ALIVE":false,"RPC_ADDRESS":"/10.0.0.2",
             "STATUS":"LEAVING,7","LOAD":"2048.0"}
        ]}"#;
        let parsed: EndpointsBody = serde_json::from_str(body).unwrap_or_else(|e| panic!("{e}"));
        let view = EndpointStates::from(parsed);
        let Some(local) = view.local() else {
            panic!("no local entry");
        };
        assert_eq!(local.datacenter(), Some("dc1"));
        assert_eq!(local.rack(), Some("r1"));
        assert_eq!(local.host_id(), Some("h-1"));
        assert!(local.is_alive());
        assert_eq!(local.status(), NodeStatus::Normal);
        assert_eq!(local.load_bytes(), Some(1.5e7));
        assert_eq!(local.schema_version(), Some("s-1"));
        assert_eq!(local.release_version(), Some("4.1.5"));
        assert_eq!(local.get("X_CUSTOM"), Some("kept"));
        assert_eq!(local.rpc_address(), "10.0.0.1".parse().ok());
        let Some(other) = view.by_ip("10.0.0.2".parse().unwrap_or_else(|e| panic!("{e}"))) else {
            panic!("no entry for 10.0.0.2");
        };
        assert_eq!(other.host_id(), Some("h-2"));
        assert!(!other.is_alive());
        assert!(!other.is_local());
        assert_eq!(other.status(), NodeStatus::Leaving);
        assert_eq!(other.load_bytes(), Some(2048.0));
        assert!(view.by_host_id("h-2").is_some());
        assert_eq!(view.in_datacenter("dc1").count(), 2);
    }

    #[test]
    fn parses_addresses_in_every_spelling() {
        assert_eq!(parse_ip("/10.1.1.1"), "10.1.1.1".parse().ok());
        assert_eq!(parse_ip("10.1.1.1:9042"), "10.1.1.1".parse().ok());
        assert_eq!(parse_ip("[::1]:9042"), "::1".parse().ok());
        assert_eq!(parse_ip("::1"), "::1".parse().ok());
        assert_eq!(parse_ip("nonsense"), None);
    }
}
