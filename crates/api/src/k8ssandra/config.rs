//! Server configuration of a K8ssandraCluster: cassandra.yaml, dse.yaml and typed JVM options.

use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use kube::KubeSchema;
use serde::{Deserialize, Serialize};

/// Server configuration, set at cluster level and overridable per datacenter (maps merge key by key).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct CassandraConfig {
    /// cassandra.yaml settings, as they are written in cassandra.yaml.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "crate::schema::preserve_unknown_object")]
    pub cassandra_yaml: Option<serde_json::Value>,
    /// JVM options.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub jvm_options: Option<JvmOptions>,
    /// dse.yaml settings (DSE only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "crate::schema::preserve_unknown_object")]
    pub dse_yaml: Option<serde_json::Value>,
}

/// Declares [`JvmOptions`] from one list, so that every option is a documented optional field with
/// upstream's JSON name.
macro_rules! jvm_options {
    ($( $(#[$attr:meta])* $json:literal => $field:ident : $ty:ty, )*) => {
        /// JVM options of the Cassandra process, with upstream's names; each maps to the
        /// `jvm-options` (Cassandra 3.11) or `jvm-server-options` (4.0 and later) keys of the server
        /// configuration.
        #[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, KubeSchema)]
        pub struct JvmOptions {
            $(
                $(#[$attr])*
                #[serde(rename = $json, skip_serializing_if = "Option::is_none")]
                pub $field: Option<$ty>,
            )*
        }

        impl JvmOptions {
            /// Takes every option `other` sets; lists of additional options are replaced whole.
            pub(crate) fn take_set_options(&mut self, other: Self) {
                $(
                    if other.$field.is_some() {
                        self.$field = other.$field;
                    }
                )*
            }
        }
    };
}

jvm_options! {
    /// Deprecated: initial and maximum heap size; use heap_initial_size and heap_max_size.
    "heapSize" => heap_size: Quantity,
    /// Initial heap size (-Xms).
    "heap_initial_size" => heap_initial_size: Quantity,
    /// Maximum heap size (-Xmx).
    "heap_max_size" => heap_max_size: Quantity,
    /// Enable assertions.
    "vm_enable_assertions" => vm_enable_assertions: bool,
    /// Enable thread priorities.
    "vm_enable_thread_priorities" => vm_enable_thread_priorities: bool,
    /// Enable thread priorities for non-root users (3.11 only).
    "vm_enable_non_root_thread_priority" => vm_enable_non_root_thread_priority: bool,
    /// Dump the heap on OutOfMemoryError.
    "vm_heap_dump_on_out_of_memory_error" => vm_heap_dump_on_out_of_memory_error: bool,
    /// Per-thread stack size (-Xss).
    "vm_per_thread_stack_size" => vm_per_thread_stack_size: Quantity,
    /// String table size.
    "vm_string_table_size" => vm_string_table_size: Quantity,
    /// Touch every heap page at start.
    "vm_always_pre_touch" => vm_always_pre_touch: bool,
    /// Disable biased locking.
    "vm_disable_biased_locking" => vm_disable_biased_locking: bool,
    /// Use thread-local allocation blocks.
    "vm_use_tlab" => vm_use_tlab: bool,
    /// Resize thread-local allocation blocks.
    "vm_resize_tlab" => vm_resize_tlab: bool,
    /// Disable the shared performance memory file.
    "vm_disable_perf_shared_mem" => vm_disable_perf_shared_mem: bool,
    /// Prefer IPv4.
    "vm_prefer_ipv4" => vm_prefer_ipv4: bool,
    /// Use NUMA (4.0 and later).
    "vm_use_numa" => vm_use_numa: bool,
    /// Print a heap histogram on OutOfMemoryError.
    "vm_print_heap_histogram_on_out_of_memory_error" => vm_print_heap_histogram_on_out_of_memory_error: bool,
    /// Exit on OutOfMemoryError.
    "vm_exit_on_out_of_memory_error" => vm_exit_on_out_of_memory_error: bool,
    /// Crash on OutOfMemoryError.
    "vm_crash_on_out_of_memory_error" => vm_crash_on_out_of_memory_error: bool,
    /// Guaranteed safepoint interval, in milliseconds.
    "vm_guaranteed_safepoint_interval_ms" => vm_guaranteed_safepoint_interval_ms: i64,
    /// Netty event loop maximum pending tasks.
    "netty_eventloop_maxpendingtasks" => netty_eventloop_maxpendingtasks: i64,
    /// Let Netty use reflection to set fields accessible.
    "netty_try_reflection_set_accessible" => netty_try_reflection_set_accessible: bool,
    /// Maximum cached NIO buffer size.
    "nio_maxcachedbuffersize" => nio_maxcachedbuffersize: Quantity,
    /// Align direct memory.
    "nio_align_direct_memory" => nio_align_direct_memory: bool,
    /// Allow the JVM to attach to itself.
    "jdk_allow_attach_self" => jdk_allow_attach_self: bool,
    /// Processors Cassandra uses.
    "cassandra_available_processors" => cassandra_available_processors: i64,
    /// Metrics reporter configuration file.
    "cassandra_metrics_reporter_config_file" => cassandra_metrics_reporter_config_file: String,
    /// Ring delay, in milliseconds.
    "cassandra_ring_delay_ms" => cassandra_ring_delay_ms: i64,
    /// Triggers directory.
    "cassandra_triggers_directory" => cassandra_triggers_directory: String,
    /// Join in write-survey mode.
    "cassandra_write_survey" => cassandra_write_survey: bool,
    /// Disable remote configuration of auth caches.
    "cassandra_disable_auth_caches_remote_configuration" => cassandra_disable_auth_caches_remote_configuration: bool,
    /// Force the default indexing page size.
    "cassandra_force_default_indexing_page_size" => cassandra_force_default_indexing_page_size: bool,
    /// Force protocol version 3 (3.11 only).
    "cassandra_force_3_0_protocol_version" => cassandra_force_3_0_protocol_version: bool,
    /// Policy for expiration dates past 2038: REJECT, CAP or CAP_NOWARN.
    "cassandra_expiration_date_overflow_policy" => cassandra_expiration_date_overflow_policy: String,
    /// Maximum hint TTL, in seconds.
    "cassandra_max_hint_ttl_seconds" => cassandra_max_hint_ttl_seconds: i64,
    /// Garbage collector: G1GC, CMS, ZGC, Shenandoah, Graal or Custom.
    #[schemars(extend("enum" = ["G1GC", "CMS", "ZGC", "Shenandoah", "Graal", "Custom"]))]
    "gc" => gc: String,
    /// Deprecated: young generation size (CMS, 3.11 only).
    "heapNewGenSize" => heap_new_gen_size: Quantity,
    /// CMS young generation size (-Xmn).
    "gc_cms_heap_size_young_generation" => gc_cms_heap_size_young_generation: Quantity,
    /// CMS survivor ratio.
    "gc_cms_survivor_ratio" => gc_cms_survivor_ratio: i64,
    /// CMS maximum tenuring threshold.
    "gc_cms_max_tenuring_threshold" => gc_cms_max_tenuring_threshold: i64,
    /// CMS initiating occupancy fraction, in percent.
    #[schemars(range(min = 0, max = 100))]
    "gc_cms_initiating_occupancy_fraction" => gc_cms_initiating_occupancy_fraction: i64,
    /// CMS wait duration, in milliseconds.
    "gc_cms_wait_duration_ms" => gc_cms_wait_duration_ms: i64,
    /// G1 remembered-set updating pause time, in percent.
    #[schemars(range(min = 0, max = 100))]
    "gc_g1_rset_updating_pause_time_percent" => gc_g1_rset_updating_pause_time_percent: i64,
    /// G1 maximum pause, in milliseconds.
    "gc_g1_max_gc_pause_ms" => gc_g1_max_gc_pause_ms: i64,
    /// G1 initiating heap occupancy, in percent.
    #[schemars(range(min = 0, max = 100))]
    "gc_g1_initiating_heap_occupancy_percent" => gc_g1_initiating_heap_occupancy_percent: i64,
    /// G1 parallel threads.
    "gc_g1_parallel_threads" => gc_g1_parallel_threads: i64,
    /// G1 concurrent threads.
    "gc_g1_conc_threads" => gc_g1_conc_threads: i64,
    /// Print GC details (3.11 only).
    "gc_print_details" => gc_print_details: bool,
    /// Print GC date stamps (3.11 only).
    "gc_print_date_stamps" => gc_print_date_stamps: bool,
    /// Print the heap at GC (3.11 only).
    "gc_print_heap" => gc_print_heap: bool,
    /// Print the tenuring distribution (3.11 only).
    "gc_print_tenuring_distribution" => gc_print_tenuring_distribution: bool,
    /// Print application stopped time (3.11 only).
    "gc_print_application_stopped_time" => gc_print_application_stopped_time: bool,
    /// Print promotion failures (3.11 only).
    "gc_print_promotion_failure" => gc_print_promotion_failure: bool,
    /// Print free-list statistics (3.11 only).
    "gc_print_flss_statistics" => gc_print_flss_statistics: bool,
    /// Log GC to a file (3.11 only).
    "gc_print_use_log_file" => gc_print_use_log_file: bool,
    /// Rotate the GC log file (3.11 only).
    "gc_print_use_log_file_rotation" => gc_print_use_log_file_rotation: bool,
    /// Number of GC log files (3.11 only).
    "gc_print_number_of_log_files" => gc_print_number_of_log_files: i64,
    /// Size of a GC log file (3.11 only).
    "gc_print_log_file_size" => gc_print_log_file_size: Quantity,
    /// JMX port.
    "jmx_port" => jmx_port: i64,
    /// JMX connection type: local-no-auth, remote-no-auth or remote-dse-unified-auth.
    "jmx_connection_type" => jmx_connection_type: String,
    /// JMX over TLS.
    "jmx_remote_ssl" => jmx_remote_ssl: bool,
    /// JMX TLS options.
    "jmx_remote_ssl_opts" => jmx_remote_ssl_opts: String,
    /// Require JMX client certificates.
    "jmx_remote_ssl_require_client_auth" => jmx_remote_ssl_require_client_auth: bool,
    /// Unlock commercial features.
    "debug_unlock_commercial_features" => debug_unlock_commercial_features: bool,
    /// Enable the flight recorder.
    "debug_enable_flight_recorder" => debug_enable_flight_recorder: bool,
    /// Listen for remote debuggers.
    "debug_listen_remote_debuggers" => debug_listen_remote_debuggers: bool,
    /// Disable @Contended annotations.
    "debug_disable_contended_annotations" => debug_disable_contended_annotations: bool,
    /// Debug non-safepoints.
    "debug_non_safepoints" => debug_non_safepoints: bool,
    /// Unlock diagnostic VM options.
    "debug_unlock_diagnostic_vm_options" => debug_unlock_diagnostic_vm_options: bool,
    /// Log compilation.
    "debug_log_compilation" => debug_log_compilation: bool,
    /// Preserve frame pointers.
    "debug_preserve_frame_pointer" => debug_preserve_frame_pointer: bool,
    /// Options for cassandra-env.sh.
    "additionalOptions" => additional_options: Vec<String>,
    /// Options for jvm11-server.options.
    "additionalJvm11ServerOptions" => additional_jvm11_server_options: Vec<String>,
    /// Options for jvm8-server.options.
    "additionalJvm8ServerOptions" => additional_jvm8_server_options: Vec<String>,
    /// Options for jvm-server.options.
    "additionalJvmServerOptions" => additional_jvm_server_options: Vec<String>,
}
