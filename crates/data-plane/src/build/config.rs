//! What the datacenter's spec means for the pods: the node configuration handed to the config
//! builder (`CONFIG_FILE_DATA`), which builder runs, whether the root filesystem is read-only, and
//! the NodePort ports.

use k8s_openapi::api::core::v1::PodTemplateSpec;
use k8ssandra_api::{
    cassandra::{CassandraDatacenter, NodePortConfig, ServerType},
    defaults::{INTERNODE_PORT, MANAGEMENT_API_PORT, NATIVE_PORT},
    labels::annotations::USE_NEW_CONFIG_BUILDER,
    names,
};
use serde_json::{Map, Value, json};

use k8ssandra_api::version::parse_version;

use k8ssandra_reconcile::hash::canonical_json;

use super::{BuildError, Result, cluster_name};

/// Name of the `cassandra` container port whose number is the Management API port.
pub const MGMT_API_PORT_NAME: &str = "mgmt-api-http";

/// Whether the configuration is built by k8ssandra-client (`config build`) with the server's own
/// configuration files copied in by `server-config-init-base`, rather than by the legacy
/// cass-config-builder: HCD, Cassandra 4.1 and later, or the `use-new-config-builder` annotation.
#[must_use]
pub fn uses_client_builder(dc: &CassandraDatacenter) -> bool {
    let annotated = dc
        .metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get(USE_NEW_CONFIG_BUILDER))
        .is_some_and(|v| v == "true");
    annotated
        || match dc.spec.server_type {
            ServerType::Hcd => true,
            ServerType::Cassandra => {
                parse_version(&dc.spec.server_version).is_some_and(|v| v >= (4, 1, 0))
            }
            ServerType::Dse => false,
        }
}

/// Whether the server container runs with a read-only root filesystem: `readOnlyRootFilesystem`
/// when set; otherwise on for the versions whose images support it (Cassandra 4.1 and later,
/// DSE 6.8/6.9, HCD) unless a custom `serverImage` is used.
#[must_use]
pub fn read_only_root_filesystem(dc: &CassandraDatacenter) -> bool {
    if let Some(explicit) = dc.spec.read_only_root_filesystem {
        return explicit;
    }
    if dc
        .spec
        .server_image
        .as_deref()
        .is_some_and(|i| !i.is_empty())
    {
        return false;
    }
    let version = parse_version(&dc.spec.server_version);
    match dc.spec.server_type {
        ServerType::Cassandra => version.is_some_and(|v| v >= (4, 1, 0)),
        ServerType::Dse => version.is_some_and(|(major, minor, _)| major == 6 && minor >= 8),
        ServerType::Hcd => true,
    }
}

/// Whether the legacy internode keystore (`<dc>-keystore`, mounted at `/etc/encryption/`) is in use:
/// a client or server encryption option points its keystore at `/etc/encryption/node-keystore.jks`.
#[must_use]
pub fn legacy_internode_enabled(dc: &CassandraDatacenter) -> bool {
    let Some(yaml) = dc
        .spec
        .config
        .as_ref()
        .and_then(|c| c.get("cassandra-yaml"))
    else {
        return false;
    };
    ["client_encryption_options", "server_encryption_options"]
        .iter()
        .filter_map(|key| yaml.get(key))
        .filter_map(|options| options.get("keystore").and_then(Value::as_str))
        .any(|keystore| keystore.trim() == "/etc/encryption/node-keystore.jks")
}

/// The NodePort settings, when `networking.nodePort` is set.
#[must_use]
pub fn node_port(dc: &CassandraDatacenter) -> Option<&NodePortConfig> {
    dc.spec
        .networking
        .as_ref()
        .and_then(|n| n.node_port.as_ref())
}

/// Whether pods use the host's network.
#[must_use]
pub fn host_network(dc: &CassandraDatacenter) -> bool {
    dc.spec
        .networking
        .as_ref()
        .and_then(|n| n.host_network)
        .unwrap_or(false)
}

fn non_zero(port: Option<i32>) -> Option<i32> {
    port.filter(|p| *p != 0)
}

/// CQL port exposed through the NodePort Service: the TLS one when set, else the plain one, else
/// 9042. `None` without NodePort.
#[must_use]
pub fn node_port_native(dc: &CassandraDatacenter) -> Option<i32> {
    node_port(dc).map(|np| {
        non_zero(np.native_ssl)
            .or(non_zero(np.native))
            .unwrap_or(i32::from(NATIVE_PORT))
    })
}

/// Internode port exposed through the NodePort Service, chosen like [`node_port_native`].
#[must_use]
pub fn node_port_internode(dc: &CassandraDatacenter) -> Option<i32> {
    node_port(dc).map(|np| {
        non_zero(np.internode_ssl)
            .or(non_zero(np.internode))
            .unwrap_or(i32::from(INTERNODE_PORT))
    })
}

/// CQL port of the Services: the NodePort one when NodePort is on, else 9042.
#[must_use]
pub fn service_native_port(dc: &CassandraDatacenter) -> i32 {
    node_port_native(dc).unwrap_or(i32::from(NATIVE_PORT))
}

/// The Management API port: the `mgmt-api-http` port of the `cassandra` container in
/// `podTemplateSpec` when there is one, else 8080.
#[must_use]
pub fn management_api_port(template: Option<&PodTemplateSpec>) -> i32 {
    template
        .and_then(|t| t.spec.as_ref())
        .and_then(|s| s.containers.iter().find(|c| c.name == "cassandra"))
        .and_then(|c| c.ports.as_ref())
        .and_then(|ports| {
            ports
                .iter()
                .find(|p| p.name.as_deref() == Some(MGMT_API_PORT_NAME))
        })
        .map_or(i32::from(MANAGEMENT_API_PORT), |p| p.container_port)
}

/// The operator's part of the node configuration (upstream's model values): cluster name and seed
/// list (the seed Service and the additional-seed Service, so Cassandra resolves the current
/// seeds by DNS), datacenter name and DSE workloads, and the NodePort ports.
#[must_use]
pub fn model_values(dc: &CassandraDatacenter) -> Value {
    let cluster = cluster_name(dc);
    let label_name = dc.label_resource_name();
    let seeds = format!(
        "{},{}",
        names::seed_service(cluster),
        names::additional_seed_service(cluster, &label_name)
    );
    let workloads = dc
        .spec
        .dse_workloads
        .as_ref()
        .filter(|_| dc.spec.server_type == ServerType::Dse);
    let flag = |enabled: Option<bool>| i32::from(enabled.unwrap_or(false));
    let mut cassandra_yaml = Map::new();
    if let Some(np) = node_port(dc) {
        if let Some(port) = non_zero(np.native_ssl) {
            cassandra_yaml.insert("native_transport_port_ssl".into(), port.into());
        } else if let Some(port) = non_zero(np.native) {
            cassandra_yaml.insert("native_transport_port".into(), port.into());
        }
        if let Some(port) = non_zero(np.internode_ssl) {
            cassandra_yaml.insert("ssl_storage_port".into(), port.into());
        } else if let Some(port) = non_zero(np.internode) {
            cassandra_yaml.insert("storage_port".into(), port.into());
        }
    }
    json!({
        "cluster-info": {"name": cluster, "seeds": seeds},
        "datacenter-info": {
            "name": dc.datacenter_name(),
            "graph-enabled": flag(workloads.and_then(|w| w.graph_enabled)),
            "solr-enabled": flag(workloads.and_then(|w| w.search_enabled)),
            "spark-enabled": flag(workloads.and_then(|w| w.analytics_enabled)),
        },
        "cassandra-yaml": cassandra_yaml,
    })
}

/// Merges `overlay` into `base`: objects merge key by key, any other value of `overlay` wins.
fn merge_into(base: &mut Value, overlay: &Value) {
    match (base, overlay) {
        (Value::Object(base), Value::Object(overlay)) => {
            for (key, value) in overlay {
                match base.get_mut(key) {
                    Some(existing) => merge_into(existing, value),
                    None => {
                        base.insert(key.clone(), value.clone());
                    }
                }
            }
        }
        (base, overlay) => *base = overlay.clone(),
    }
}

/// The node configuration as one JSON document: the model values with `spec.config` merged over
/// them. Rendered canonically (sorted keys, compact), so an unchanged spec gives the same string.
///
/// # Errors
/// When `spec.config` is not an object.
pub fn node_config(dc: &CassandraDatacenter) -> Result<Value> {
    let mut config = model_values(dc);
    if let Some(user) = &dc.spec.config {
        if !user.is_object() {
            return Err(BuildError::InvalidConfig);
        }
        merge_into(&mut config, user);
    }
    Ok(config)
}

/// [`node_config`] as the string passed in `CONFIG_FILE_DATA`.
///
/// # Errors
/// When `spec.config` is not an object.
pub fn node_config_json(dc: &CassandraDatacenter) -> Result<String> {
    node_config(dc).map(|c| canonical_json(&c))
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8ssandra_api::cassandra::{CassandraDatacenterSpec, DseWorkloads, NetworkingConfig};

    fn dc(server_type: ServerType, version: &str) -> CassandraDatacenter {
        CassandraDatacenter::new(
            "dc1",
            CassandraDatacenterSpec {
                cluster_name: "Test_Cluster".into(),
                server_type,
                server_version: version.into(),
                ..Default::default()
            },
        )
    }

    #[test]
    fn the_config_carries_cluster_seeds_and_user_values() {
        let mut dc = dc(ServerType::Cassandra, "4.1.5");
        dc.spec.config = Some(json!({
            "cassandra-yaml": {"num_tokens": 8},
            "jvm-server-options": {"max_heap_size": "1G"}
        }));
        let config = node_config(&dc).unwrap();
        assert_eq!(config["cluster-info"]["name"], "Test_Cluster");
        assert_eq!(
            config["cluster-info"]["seeds"],
            "test-cluster-seed-service,test-cluster-dc1-additional-seed-service"
        );
        assert_eq!(config["datacenter-info"]["name"], "dc1");
        assert_eq!(config["cassandra-yaml"]["num_tokens"], 8);
        assert_eq!(config["jvm-server-options"]["max_heap_size"], "1G");
        assert!(
            node_config_json(&dc)
                .unwrap()
                .starts_with(r#"{"cassandra-yaml":{"num_tokens":8}"#)
        );
    }

    #[test]
    fn node_ports_and_dse_workloads_reach_the_config() {
        let mut dc = dc(ServerType::Dse, "6.8.50");
        dc.spec.networking = Some(NetworkingConfig {
            node_port: Some(NodePortConfig {
                native: Some(30042),
                internode_ssl: Some(30001),
                ..Default::default()
            }),
            host_network: None,
        });
        dc.spec.dse_workloads = Some(DseWorkloads {
            search_enabled: Some(true),
            ..Default::default()
        });
        let config = node_config(&dc).unwrap();
        assert_eq!(config["cassandra-yaml"]["native_transport_port"], 30042);
        assert_eq!(config["cassandra-yaml"]["ssl_storage_port"], 30001);
        assert_eq!(config["datacenter-info"]["solr-enabled"], 1);
        assert_eq!(config["datacenter-info"]["graph-enabled"], 0);
        assert_eq!(node_port_native(&dc), Some(30042));
        assert_eq!(node_port_internode(&dc), Some(30001));
    }

    #[test]
    fn builder_and_filesystem_follow_the_version() {
        assert!(uses_client_builder(&dc(ServerType::Cassandra, "4.1.0")));
        assert!(!uses_client_builder(&dc(ServerType::Cassandra, "4.0.11")));
        assert!(uses_client_builder(&dc(ServerType::Hcd, "1.0.0")));
        assert!(!uses_client_builder(&dc(ServerType::Dse, "6.8.50")));
        assert!(read_only_root_filesystem(&dc(
            ServerType::Cassandra,
            "5.0.2"
        )));
        assert!(!read_only_root_filesystem(&dc(
            ServerType::Cassandra,
            "3.11.17"
        )));
        let mut custom = dc(ServerType::Cassandra, "4.1.5");
        custom.spec.server_image = Some("me/cassandra:1".into());
        assert!(!read_only_root_filesystem(&custom));
        custom.spec.read_only_root_filesystem = Some(true);
        assert!(read_only_root_filesystem(&custom));
    }

    #[test]
    fn a_non_object_config_is_refused() {
        let mut dc = dc(ServerType::Cassandra, "4.0.1");
        dc.spec.config = Some(json!(["x"]));
        assert!(matches!(node_config(&dc), Err(BuildError::InvalidConfig)));
    }
}
