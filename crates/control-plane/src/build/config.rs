//! A datacenter's server configuration (pure): the `config` of its CassandraDatacenter, in the
//! config builder's shape (`cassandra-yaml`, `jvm-options`, `jvm-server-options`, ...), from the
//! K8ssandraCluster's `cassandraYaml`, `dseYaml` and typed `jvmOptions`, with what upstream adds:
//! the `num_tokens` default, authentication, the initial system replication and the flag that lets
//! replication change while nodes join.

use std::collections::BTreeMap;

use k8ssandra_api::{
    cassandra::ServerType, defaults, k8ssandra::JvmOptions, version::parse_version,
};
use serde_json::{Map, Value, json};

use super::datacenter::DatacenterInputs;

/// Why a server configuration cannot be built.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The version is not `major.minor.patch`, or not one whose configuration keys are known.
    #[error(
        "datacenter {datacenter}: server version {version:?} is not a supported {server_type} version"
    )]
    Version {
        /// The datacenter.
        datacenter: String,
        /// The distribution.
        server_type: &'static str,
        /// The version.
        version: String,
    },
    /// `cassandraYaml` or `dseYaml` is not an object.
    #[error("datacenter {datacenter}: config.{field} must be an object of settings")]
    NotAnObject {
        /// The datacenter.
        datacenter: String,
        /// `cassandraYaml` or `dseYaml`.
        field: &'static str,
    },
    /// The JVM options cannot be read back as JSON (a bug).
    #[error("datacenter {datacenter}: JVM options: {source}")]
    Serialize {
        /// The datacenter.
        datacenter: String,
        /// The cause.
        source: serde_json::Error,
    },
}

/// Which set of configuration keys a server version has.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Keys {
    /// Cassandra 3.11: `jvm-options`.
    V3,
    /// Cassandra 4 and later, DSE 6.8 and later, HCD: `jvm-server-options` and `jvm11-server-options`.
    V4,
}

/// Where each typed JVM option goes: its JSON name, then `file/key` for 3.11 and for 4.x (`None`
/// where that version has no such option; the option is then left out, as upstream does).
const JVM_OPTION_KEYS: &[(&str, Option<&str>, Option<&str>)] = &[
    (
        "heap_initial_size",
        Some("jvm-options/initial_heap_size"),
        Some("jvm-server-options/initial_heap_size"),
    ),
    (
        "heap_max_size",
        Some("jvm-options/max_heap_size"),
        Some("jvm-server-options/max_heap_size"),
    ),
    (
        "vm_enable_assertions",
        Some("jvm-options/enable_assertions"),
        Some("jvm-server-options/enable_assertions"),
    ),
    (
        "vm_enable_thread_priorities",
        Some("jvm-options/use_thread_priorities"),
        Some("jvm-server-options/use_thread_priorities"),
    ),
    (
        "vm_enable_non_root_thread_priority",
        Some("jvm-options/thread_priority_policy_42"),
        None,
    ),
    (
        "vm_heap_dump_on_out_of_memory_error",
        Some("jvm-options/heap_dump_on_out_of_memory_error"),
        Some("jvm-server-options/heap_dump_on_out_of_memory_error"),
    ),
    (
        "vm_per_thread_stack_size",
        Some("jvm-options/per_thread_stack_size"),
        Some("jvm-server-options/per_thread_stack_size"),
    ),
    (
        "vm_string_table_size",
        Some("jvm-options/string_table_size"),
        Some("jvm-server-options/string_table_size"),
    ),
    (
        "vm_always_pre_touch",
        Some("jvm-options/always_pre_touch"),
        Some("jvm-server-options/always_pre_touch"),
    ),
    (
        "vm_disable_biased_locking",
        Some("jvm-options/use_biased_locking"),
        Some("jvm-server-options/use-biased-locking"),
    ),
    (
        "vm_use_tlab",
        Some("jvm-options/use_tlb"),
        Some("jvm-server-options/use_tlb"),
    ),
    (
        "vm_resize_tlab",
        Some("jvm-options/resize_tlb"),
        Some("jvm-server-options/resize_tlb"),
    ),
    (
        "vm_disable_perf_shared_mem",
        Some("jvm-options/perf_disable_shared_mem"),
        Some("jvm-server-options/perf_disable_shared_mem"),
    ),
    (
        "vm_prefer_ipv4",
        Some("jvm-options/java_net_prefer_ipv4_stack"),
        Some("jvm-server-options/java_net_prefer_ipv4_stack"),
    ),
    ("vm_use_numa", None, Some("jvm-server-options/use_numa")),
    (
        "vm_print_heap_histogram_on_out_of_memory_error",
        None,
        Some("jvm-server-options/print_heap_histogram_on_out_of_memory_error"),
    ),
    (
        "vm_exit_on_out_of_memory_error",
        None,
        Some("jvm-server-options/exit_on_out_of_memory_error"),
    ),
    (
        "vm_crash_on_out_of_memory_error",
        None,
        Some("jvm-server-options/crash_on_out_of_memory_error"),
    ),
    (
        "vm_guaranteed_safepoint_interval_ms",
        None,
        Some("jvm-server-options/guaranteed-safepoint-interval"),
    ),
    (
        "netty_eventloop_maxpendingtasks",
        None,
        Some("jvm-server-options/io_netty_eventloop_maxpendingtasks"),
    ),
    (
        "netty_try_reflection_set_accessible",
        None,
        Some("jvm11-server-options/io_netty_try_reflection_set_accessible"),
    ),
    (
        "nio_maxcachedbuffersize",
        None,
        Some("jvm-server-options/jdk_nio_maxcachedbuffersize"),
    ),
    (
        "nio_align_direct_memory",
        None,
        Some("jvm-server-options/page-align-direct-memory"),
    ),
    (
        "jdk_allow_attach_self",
        None,
        Some("jvm11-server-options/jdk_attach_allow_attach_self"),
    ),
    (
        "cassandra_available_processors",
        Some("jvm-options/cassandra_available_processors"),
        Some("jvm-server-options/cassandra_available_processors"),
    ),
    (
        "cassandra_metrics_reporter_config_file",
        Some("jvm-options/cassandra_metrics_reporter_config_file"),
        Some("jvm-server-options/cassandra_metrics_reporter_config_file"),
    ),
    (
        "cassandra_ring_delay_ms",
        Some("jvm-options/cassandra_ring_delay_ms"),
        Some("jvm-server-options/cassandra_ring_delay_ms"),
    ),
    (
        "cassandra_triggers_directory",
        Some("jvm-options/cassandra_triggers_dir"),
        Some("jvm-server-options/cassandra_triggers_dir"),
    ),
    (
        "cassandra_write_survey",
        Some("jvm-options/cassandra_write_survey"),
        Some("jvm-server-options/cassandra_write_survey"),
    ),
    (
        "cassandra_disable_auth_caches_remote_configuration",
        Some("jvm-options/cassandra_disable_auth_caches_remote_configuration"),
        Some("jvm-server-options/cassandra_disable_auth_caches_remote_configuration"),
    ),
    (
        "cassandra_force_default_indexing_page_size",
        Some("jvm-options/cassandra_force_default_indexing_page_size"),
        Some("jvm-server-options/cassandra_force_default_indexing_page_size"),
    ),
    (
        "cassandra_force_3_0_protocol_version",
        Some("jvm-options/cassandra_force_3_0_protocol_version"),
        None,
    ),
    (
        "cassandra_expiration_date_overflow_policy",
        None,
        Some("jvm-server-options/cassandra_expiration_date_overflow_policy"),
    ),
    (
        "cassandra_max_hint_ttl_seconds",
        None,
        Some("jvm-server-options/cassandra_max_hint_ttl"),
    ),
    (
        "gc",
        Some("jvm-options/garbage_collector"),
        Some("jvm11-server-options/garbage_collector"),
    ),
    (
        "gc_cms_heap_size_young_generation",
        Some("jvm-options/heap_size_young_generation"),
        None,
    ),
    (
        "gc_cms_survivor_ratio",
        Some("jvm-options/survivor_ratio"),
        None,
    ),
    (
        "gc_cms_max_tenuring_threshold",
        Some("jvm-options/max_tenuring_threshold"),
        None,
    ),
    (
        "gc_cms_initiating_occupancy_fraction",
        Some("jvm-options/cms_initiating_occupancy_fraction"),
        None,
    ),
    (
        "gc_cms_wait_duration_ms",
        Some("jvm-options/cms_wait_duration"),
        None,
    ),
    (
        "gc_g1_rset_updating_pause_time_percent",
        Some("jvm-options/g1r_set_updating_pause_time_percent"),
        Some("jvm11-server-options/g1r_set_updating_pause_time_percent"),
    ),
    (
        "gc_g1_max_gc_pause_ms",
        Some("jvm-options/max_gc_pause_millis"),
        Some("jvm11-server-options/max_gc_pause_millis"),
    ),
    (
        "gc_g1_initiating_heap_occupancy_percent",
        Some("jvm-options/initiating_heap_occupancy_percent"),
        Some("jvm11-server-options/initiating_heap_occupancy_percent"),
    ),
    (
        "gc_g1_parallel_threads",
        Some("jvm-options/parallel_gc_threads"),
        Some("jvm11-server-options/parallel_gc_threads"),
    ),
    (
        "gc_g1_conc_threads",
        Some("jvm-options/conc_gc_threads"),
        Some("jvm11-server-options/conc_gc_threads"),
    ),
    (
        "gc_print_details",
        Some("jvm-options/print_gc_details"),
        None,
    ),
    (
        "gc_print_date_stamps",
        Some("jvm-options/print_gc_date_stamps"),
        None,
    ),
    ("gc_print_heap", Some("jvm-options/print_heap_at_gc"), None),
    (
        "gc_print_tenuring_distribution",
        Some("jvm-options/print_tenuring_distribution"),
        None,
    ),
    (
        "gc_print_application_stopped_time",
        Some("jvm-options/print_gc_application_stopped_time"),
        None,
    ),
    (
        "gc_print_promotion_failure",
        Some("jvm-options/print_promotion_failure"),
        None,
    ),
    (
        "gc_print_flss_statistics",
        Some("jvm-options/print_flss_statistics"),
        None,
    ),
    ("gc_print_use_log_file", Some("jvm-options/log_gc"), None),
    (
        "gc_print_use_log_file_rotation",
        Some("jvm-options/use_gc_log_file_rotation"),
        None,
    ),
    (
        "gc_print_number_of_log_files",
        Some("jvm-options/number_of_gc_log_files"),
        None,
    ),
    (
        "gc_print_log_file_size",
        Some("jvm-options/gc_log_file_size"),
        None,
    ),
    (
        "jmx_port",
        Some("jvm-options/jmx-port"),
        Some("jvm-server-options/jmx-port"),
    ),
    (
        "jmx_connection_type",
        Some("jvm-options/jmx-connection-type"),
        Some("jvm-server-options/jmx-connection-type"),
    ),
    (
        "jmx_remote_ssl",
        Some("jvm-options/jmx-remote-ssl"),
        Some("jvm-server-options/jmx-remote-ssl"),
    ),
    (
        "jmx_remote_ssl_opts",
        Some("jvm-options/jmx-remote-ssl-opts"),
        Some("jvm-server-options/jmx-remote-ssl-opts"),
    ),
    (
        "jmx_remote_ssl_require_client_auth",
        None,
        Some("jvm-server-options/jmx-remote-ssl-require-client-auth"),
    ),
    (
        "debug_unlock_commercial_features",
        Some("jvm-options/unlock_commercial_features"),
        Some("jvm-server-options/unlock_commercial_features"),
    ),
    (
        "debug_enable_flight_recorder",
        Some("jvm-options/flight_recorder"),
        Some("jvm-server-options/flight_recorder"),
    ),
    (
        "debug_listen_remote_debuggers",
        Some("jvm-options/agent_lib_jdwp"),
        Some("jvm-server-options/agent_lib_jdwp"),
    ),
    (
        "debug_disable_contended_annotations",
        None,
        Some("jvm-server-options/restrict-contended"),
    ),
    (
        "debug_non_safepoints",
        None,
        Some("jvm-server-options/debug-non-safepoints"),
    ),
    (
        "debug_unlock_diagnostic_vm_options",
        None,
        Some("jvm-server-options/unlock-diagnostic-vm-options"),
    ),
    (
        "debug_log_compilation",
        None,
        Some("jvm-server-options/log_compilation"),
    ),
    (
        "debug_preserve_frame_pointer",
        None,
        Some("jvm-server-options/preserve-frame-pointer"),
    ),
    (
        "additionalOptions",
        Some("cassandra-env-sh/additional-jvm-opts"),
        Some("cassandra-env-sh/additional-jvm-opts"),
    ),
    (
        "additionalJvmServerOptions",
        None,
        Some("jvm-server-options/additional-jvm-opts"),
    ),
    (
        "additionalJvm8ServerOptions",
        None,
        Some("jvm8-server-options/additional-jvm-opts"),
    ),
    (
        "additionalJvm11ServerOptions",
        None,
        Some("jvm11-server-options/additional-jvm-opts"),
    ),
];

/// The server configuration of `inputs.datacenter` running `server_version`.
///
/// # Errors
/// When the version's keys are unknown or `cassandraYaml` / `dseYaml` is not an object.
pub fn server_config(
    inputs: &DatacenterInputs<'_>,
    server_version: &str,
) -> Result<Value, ConfigError> {
    let dc = inputs.datacenter;
    let name = &dc.meta.name;
    let server_type = dc.server_type;
    let keys = keys(server_type, server_version).ok_or_else(|| ConfigError::Version {
        datacenter: name.clone(),
        server_type: server_type.as_str(),
        version: server_version.to_owned(),
    })?;
    let config = dc.options.config.clone().unwrap_or_default();
    let object = |value: Option<Value>, field| match value {
        None | Some(Value::Null) => Ok(Map::new()),
        Some(Value::Object(map)) => Ok(map),
        Some(_) => Err(ConfigError::NotAnObject {
            datacenter: name.clone(),
            field,
        }),
    };
    let mut cassandra_yaml = object(config.cassandra_yaml, "cassandraYaml")?;
    let dse_yaml = object(config.dse_yaml, "dseYaml")?;

    if server_type == ServerType::Cassandra {
        set_default(
            &mut cassandra_yaml,
            "num_tokens",
            json!(defaults::num_tokens(server_type, server_version)),
        );
    } else {
        set_default(
            &mut cassandra_yaml,
            "allocate_tokens_for_local_replication_factor",
            json!(3),
        );
    }
    if keys == Keys::V3 {
        set_default(&mut cassandra_yaml, "start_rpc", json!(false));
    }
    for (setting, class) in auth_classes(server_type, inputs.cluster.auth_enabled()) {
        set_default(&mut cassandra_yaml, setting, json!(class));
    }

    let jvm = jvm_options(
        inputs,
        config.jvm_options.unwrap_or_default(),
        server_type,
        keys,
    );
    let jvm = serde_json::to_value(jvm).map_err(|source| ConfigError::Serialize {
        datacenter: name.clone(),
        source,
    })?;
    let mut files: BTreeMap<&str, Map<String, Value>> = BTreeMap::new();
    for (option, value) in jvm.as_object().into_iter().flatten() {
        let Some(&(_, v3, v4)) = JVM_OPTION_KEYS.iter().find(|(json, ..)| json == option) else {
            continue;
        };
        let Some((file, key)) = (match keys {
            Keys::V3 => v3,
            Keys::V4 => v4,
        })
        .and_then(|k| k.split_once('/')) else {
            continue;
        };
        files
            .entry(file)
            .or_default()
            .insert(key.to_owned(), value.clone());
    }
    files.insert("cassandra-yaml", cassandra_yaml);
    if server_type == ServerType::Dse {
        files.insert("dse-yaml", dse_yaml);
    }
    Ok(Value::Object(
        files
            .into_iter()
            .filter(|(_, settings)| !settings.is_empty())
            .map(|(file, settings)| (file.to_owned(), Value::Object(settings)))
            .collect(),
    ))
}

/// The key set of a version, `None` when it is not one the config builder knows.
fn keys(server_type: ServerType, version: &str) -> Option<Keys> {
    let (major, minor, _) = parse_version(version)?;
    match server_type {
        ServerType::Cassandra if major == 3 && minor == 11 => Some(Keys::V3),
        ServerType::Cassandra if major >= 4 => Some(Keys::V4),
        ServerType::Dse if (major, minor) >= (6, 8) => Some(Keys::V4),
        ServerType::Hcd if major >= 1 => Some(Keys::V4),
        _ => None,
    }
}

/// The authenticator, authorizer and role manager, with authentication on or off.
fn auth_classes(server_type: ServerType, enabled: bool) -> [(&'static str, &'static str); 3] {
    match (server_type, enabled) {
        (ServerType::Dse, true) => [
            (
                "authenticator",
                "com.datastax.bdp.cassandra.auth.DseAuthenticator",
            ),
            (
                "authorizer",
                "com.datastax.bdp.cassandra.auth.DseAuthorizer",
            ),
            (
                "role_manager",
                "com.datastax.bdp.cassandra.auth.DseRoleManager",
            ),
        ],
        (_, true) => [
            ("authenticator", "PasswordAuthenticator"),
            ("authorizer", "CassandraAuthorizer"),
            ("role_manager", "CassandraRoleManager"),
        ],
        (_, false) => [
            ("authenticator", "AllowAllAuthenticator"),
            ("authorizer", "AllowAllAuthorizer"),
            ("role_manager", "CassandraRoleManager"),
        ],
    }
}

/// The JVM options with upstream's additions: the deprecated heap fields translated where the
/// new ones are unset, the initial system replication (first datacenter, not DSE) and, from
/// Cassandra 4, permission to change replication while nodes join. Added options come first, so
/// that the user's own can override them.
fn jvm_options(
    inputs: &DatacenterInputs<'_>,
    mut jvm: JvmOptions,
    server_type: ServerType,
    keys: Keys,
) -> JvmOptions {
    if let Some(heap) = jvm.heap_size.take() {
        jvm.heap_initial_size.get_or_insert_with(|| heap.clone());
        jvm.heap_max_size.get_or_insert(heap);
    }
    if let Some(young) = jvm.heap_new_gen_size.take() {
        jvm.gc_cms_heap_size_young_generation.get_or_insert(young);
    }
    let mut added = Vec::new();
    if inputs.first && server_type != ServerType::Dse && !inputs.initial_replication.is_empty() {
        let replication: Vec<String> = inputs
            .initial_replication
            .iter()
            .map(|(dc, rf)| format!("{dc}:{rf}"))
            .collect();
        added.push(format!(
            "-Dcassandra.system_distributed_replication={}",
            replication.join(",")
        ));
    }
    if keys == Keys::V4 && server_type != ServerType::Dse {
        added.push("-Dcassandra.allow_alter_rf_during_range_movement=true".to_owned());
    }
    if !added.is_empty() {
        added.extend(jvm.additional_options.take().unwrap_or_default());
        jvm.additional_options = Some(added);
    }
    jvm
}

/// Sets `key` unless the user did.
fn set_default(settings: &mut Map<String, Value>, key: &str, value: Value) {
    settings.entry(key).or_insert(value);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_typed_option_has_a_place() {
        use k8ssandra_api::k8ssandra::K8ssandraCluster;
        use kube::CustomResourceExt;

        let crd = serde_json::to_value(K8ssandraCluster::crd()).expect("CRD");
        let options = &crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]
            ["properties"]["cassandra"]["properties"]["config"]["properties"]["jvmOptions"]["properties"];
        let options = options.as_object().expect("jvmOptions properties");
        // The deprecated heap fields are translated to the new ones first.
        for name in options
            .keys()
            .filter(|n| *n != "heapSize" && *n != "heapNewGenSize")
        {
            assert!(
                JVM_OPTION_KEYS.iter().any(|(json, ..)| json == name),
                "{name} has no configuration key"
            );
        }
        for (json, ..) in JVM_OPTION_KEYS {
            assert!(options.contains_key(*json), "{json} is not a JVM option");
        }
    }

    #[test]
    fn versions_map_to_key_sets() {
        assert_eq!(keys(ServerType::Cassandra, "3.11.17"), Some(Keys::V3));
        assert_eq!(keys(ServerType::Cassandra, "4.0.1"), Some(Keys::V4));
        assert_eq!(keys(ServerType::Cassandra, "5.0.2"), Some(Keys::V4));
        assert_eq!(keys(ServerType::Cassandra, "3.0.29"), None);
        assert_eq!(keys(ServerType::Dse, "6.8.50"), Some(Keys::V4));
        assert_eq!(keys(ServerType::Dse, "6.7.0"), None);
        assert_eq!(keys(ServerType::Cassandra, "latest"), None);
    }
}
