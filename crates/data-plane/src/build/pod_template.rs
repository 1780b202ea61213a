//! The pod template of a rack's StatefulSet, laid out like upstream's:
//!
//! - init containers `server-config-init-base` (Cassandra 4.1+ and HCD: copies the image's own
//!   configuration files) and `server-config-init` (builds the configuration from
//!   `CONFIG_FILE_DATA` into the `server-config` volume);
//! - containers `cassandra` (the server with the Management API, started explicitly by the
//!   operator) and `server-system-logger` (tails `system.log`) unless disabled;
//! - volumes, security context, grace period, affinity (zone from the rack, one pod per worker
//!   unless `allowMultipleNodesPerWorker`), tolerations, node selector;
//! - `spec.podTemplateSpec` as the base: its containers, init containers, volumes, env vars, ports
//!   and mounts win over the operator's same-named ones, and it keeps everything else.

use std::collections::BTreeMap;

use k8s_openapi::{
    api::core::v1::{
        Affinity, Container, ContainerPort, EmptyDirVolumeSource, EnvVar, EnvVarSource, ExecAction,
        HTTPGetAction, Lifecycle, LifecycleHandler, NodeAffinity, NodeSelector,
        NodeSelectorRequirement, NodeSelectorTerm, ObjectFieldSelector, PodAffinityTerm,
        PodAntiAffinity, PodSecurityContext, PodSpec, PodTemplateSpec, Probe, ResourceRequirements,
        SecretKeySelector, SecretVolumeSource, SecurityContext, Volume, VolumeMount,
    },
    apimachinery::pkg::{
        api::resource::Quantity,
        apis::meta::v1::{LabelSelector, LabelSelectorRequirement},
        util::intstr::IntOrString,
    },
};
use k8ssandra_api::{
    cassandra::{CassandraDatacenter, ManagementApiAuthManual, Rack, ServerType},
    labels::{self, annotations::CONFIG_HASH, node_state},
    names,
};

use super::{
    BuildError, Result, cluster_name, config, images::ImageConfig, images::server_image,
    operator_annotations, operator_labels, rack_labels, services::has_thrift,
};

/// The server container.
pub const CASSANDRA_CONTAINER: &str = "cassandra";
/// The log sidecar.
pub const SYSTEM_LOGGER_CONTAINER: &str = "server-system-logger";
/// The init container that builds the configuration.
pub const CONFIG_INIT_CONTAINER: &str = "server-config-init";
/// The init container that copies the server image's configuration files (client builder only).
pub const CONFIG_BASE_INIT_CONTAINER: &str = "server-config-init-base";
/// The data volume claim template.
pub const DATA_VOLUME: &str = "server-data";
/// Node label the deprecated `rack.zone` selects on (upstream's key).
pub const ZONE_LABEL: &str = "failure-domain.beta.kubernetes.io/zone";
/// Seconds a pod gets to drain before it is killed.
pub const TERMINATION_GRACE_PERIOD_SECONDS: i64 = 120;
/// User, group and fsGroup of the server images.
pub const SERVER_USER_ID: i64 = 999;
/// Liveness endpoint of the Management API.
pub const LIVENESS_PATH: &str = "/api/v0/probes/liveness";
/// Readiness endpoint of the Management API.
pub const READINESS_PATH: &str = "/api/v0/probes/readiness";
/// Drain endpoint, called before the server container stops.
pub const DRAIN_PATH: &str = "/api/v0/ops/node/drain";
/// Volume of the Management API's server certificates (`managementApiAuth.manual`).
pub const MGMT_API_CERTS_VOLUME: &str = "management-api-server-certs-volume";
/// Where the Management API's certificates are mounted.
pub const MGMT_API_CERTS_PATH: &str = "/management-api-certs";
/// Default probe timeout, in seconds.
const PROBE_TIMEOUT_SECONDS: i32 = 10;

const SERVER_CONFIG_VOLUME: &str = "server-config";
const SERVER_CONFIG_BASE_VOLUME: &str = "server-config-base";
const SERVER_LOGS_VOLUME: &str = "server-logs";
const VECTOR_LIB_VOLUME: &str = "vector-lib";
const ENCRYPTION_VOLUME: &str = "encryption-cred-storage";

fn env(name: &str, value: impl Into<String>) -> EnvVar {
    EnvVar {
        name: name.to_owned(),
        value: Some(value.into()),
        value_from: None,
    }
}

fn field_env(name: &str, field_path: &str) -> EnvVar {
    EnvVar {
        name: name.to_owned(),
        value: None,
        value_from: Some(EnvVarSource {
            field_ref: Some(ObjectFieldSelector {
                field_path: field_path.to_owned(),
                api_version: None,
            }),
            ..EnvVarSource::default()
        }),
    }
}

fn mount(name: &str, path: &str) -> VolumeMount {
    VolumeMount {
        name: name.to_owned(),
        mount_path: path.to_owned(),
        ..VolumeMount::default()
    }
}

fn empty_dir(name: &str) -> Volume {
    Volume {
        name: name.to_owned(),
        empty_dir: Some(EmptyDirVolumeSource::default()),
        ..Volume::default()
    }
}

fn container_port(name: &str, number: i32) -> ContainerPort {
    ContainerPort {
        name: Some(name.to_owned()),
        container_port: number,
        ..ContainerPort::default()
    }
}

/// What the user wrote first, then every default whose name the user did not use (upstream's
/// "user wins" merge of env vars, ports, mounts and volumes).
fn combine<T, F>(defaults: Vec<T>, overrides: Vec<T>, name: F) -> Vec<T>
where
    F: Fn(&T) -> Option<&str>,
{
    let mut out = overrides;
    let taken: Vec<Option<String>> = out.iter().map(|o| name(o).map(str::to_owned)).collect();
    out.extend(
        defaults
            .into_iter()
            .filter(|d| !taken.iter().any(|t| t.as_deref() == name(d))),
    );
    out
}

fn combine_env(defaults: Vec<EnvVar>, overrides: Vec<EnvVar>) -> Vec<EnvVar> {
    combine(defaults, overrides, |e| Some(e.name.as_str()))
}

fn combine_mounts(defaults: Vec<VolumeMount>, overrides: Vec<VolumeMount>) -> Vec<VolumeMount> {
    combine(defaults, overrides, |m| Some(m.name.as_str()))
}

fn combine_ports(
    defaults: Vec<ContainerPort>,
    overrides: Vec<ContainerPort>,
) -> Vec<ContainerPort> {
    combine(defaults, overrides, |p| p.name.as_deref())
}

fn combine_volumes(defaults: Vec<Volume>, overrides: Vec<Volume>) -> Vec<Volume> {
    combine(defaults, overrides, |v| Some(v.name.as_str()))
}

/// Upstream v1.32's default resources of a sidecar: `requests` and `limits` as (resource,
/// quantity) pairs; a resource it does not limit is left out.
fn default_resources(requests: &[(&str, &str)], limits: &[(&str, &str)]) -> ResourceRequirements {
    let list = |pairs: &[(&str, &str)]| {
        pairs
            .iter()
            .map(|(name, quantity)| ((*name).to_owned(), Quantity((*quantity).to_owned())))
            .collect::<BTreeMap<_, _>>()
    };
    ResourceRequirements {
        limits: Some(list(limits)),
        requests: Some(list(requests)),
        claims: None,
    }
}

fn is_empty_resources(r: &ResourceRequirements) -> bool {
    r.limits.as_ref().is_none_or(BTreeMap::is_empty)
        && r.requests.as_ref().is_none_or(BTreeMap::is_empty)
        && r.claims.as_ref().is_none_or(Vec::is_empty)
}

/// Resources of a sidecar: the spec's field when set; else what the template's container sets
/// (upstream ignores it; we keep it rather than silently drop it); else the default.
fn sidecar_resources(
    spec: Option<&ResourceRequirements>,
    template: Option<&ResourceRequirements>,
    default: ResourceRequirements,
) -> ResourceRequirements {
    spec.filter(|r| !is_empty_resources(r))
        .or(template.filter(|r| !is_empty_resources(r)))
        .cloned()
        .unwrap_or(default)
}

/// A `curl` command against the local Management API (probes and preStop with mutual TLS, and
/// the preStop drain), shaped like upstream's.
fn mgmt_api_curl(method: &str, path: &str, timeout: i32, port: i32, tls: bool) -> ExecAction {
    let mut command: Vec<String> = vec!["curl".into(), "-X".into(), method.into(), "-s".into()];
    if tls {
        command.extend(
            [
                "-k",
                "--cert",
                "/management-api-certs/tls.crt",
                "--key",
                "/management-api-certs/tls.key",
                "--cacert",
                "/management-api-certs/ca.crt",
            ]
            .map(String::from),
        );
    }
    command.extend(["-m".to_owned(), timeout.to_string()]);
    command.extend(["-o", "/dev/null", "--show-error", "--fail"].map(String::from));
    let scheme = if tls { "https" } else { "http" };
    command.push(format!("{scheme}://localhost:{port}{path}"));
    ExecAction {
        command: Some(command),
    }
}

fn http_probe(port: i32, path: &str, initial_delay: i32, period: i32) -> Probe {
    Probe {
        http_get: Some(HTTPGetAction {
            port: IntOrString::Int(port),
            path: Some(path.to_owned()),
            ..HTTPGetAction::default()
        }),
        initial_delay_seconds: Some(initial_delay),
        period_seconds: Some(period),
        timeout_seconds: Some(PROBE_TIMEOUT_SECONDS),
        ..Probe::default()
    }
}

/// The node labels a rack's pods require: the datacenter's, the rack's, and the deprecated zone.
#[must_use]
pub fn rack_node_affinity_labels(
    dc: &CassandraDatacenter,
    rack: &Rack,
) -> BTreeMap<String, String> {
    let mut out = dc.spec.node_affinity_labels.clone().unwrap_or_default();
    out.extend(rack.node_affinity_labels.clone().unwrap_or_default());
    if let Some(zone) = rack.zone.as_deref().filter(|z| !z.is_empty()) {
        out.insert(ZONE_LABEL.to_owned(), zone.to_owned());
    }
    out
}

/// Required node affinity from the labels (sorted, so every StatefulSet renders the same), with the
/// template's and then the rack's terms added.
fn node_affinity(
    labels: &BTreeMap<String, String>,
    template: Option<NodeAffinity>,
    rack: Option<NodeAffinity>,
) -> Option<NodeAffinity> {
    let mut out = NodeAffinity::default();
    if !labels.is_empty() {
        let expressions = labels
            .iter()
            .map(|(key, value)| NodeSelectorRequirement {
                key: key.clone(),
                operator: "In".into(),
                values: Some(vec![value.clone()]),
            })
            .collect();
        out.required_during_scheduling_ignored_during_execution = Some(NodeSelector {
            node_selector_terms: vec![NodeSelectorTerm {
                match_expressions: Some(expressions),
                match_fields: None,
            }],
        });
    }
    for other in [template, rack].into_iter().flatten() {
        if let Some(required) = other.required_during_scheduling_ignored_during_execution {
            match out
                .required_during_scheduling_ignored_during_execution
                .as_mut()
            {
                None => out.required_during_scheduling_ignored_during_execution = Some(required),
                Some(existing) => existing
                    .node_selector_terms
                    .extend(required.node_selector_terms),
            }
        }
        if let Some(preferred) = other.preferred_during_scheduling_ignored_during_execution {
            out.preferred_during_scheduling_ignored_during_execution
                .get_or_insert_with(Vec::new)
                .extend(preferred);
        }
    }
    let empty = out
        .required_during_scheduling_ignored_during_execution
        .is_none()
        && out
            .preferred_during_scheduling_ignored_during_execution
            .as_ref()
            .is_none_or(Vec::is_empty);
    (!empty).then_some(out)
}

/// One Cassandra pod per worker node (any pod with the cluster, datacenter and rack labels) unless
/// several are allowed, with the template's and then the rack's terms added.
fn pod_anti_affinity(
    allow_multiple: bool,
    template: Option<PodAntiAffinity>,
    rack: Option<PodAntiAffinity>,
) -> Option<PodAntiAffinity> {
    let mut out = PodAntiAffinity::default();
    if !allow_multiple {
        let exists = |key: &str| LabelSelectorRequirement {
            key: key.to_owned(),
            operator: "Exists".into(),
            values: None,
        };
        out.required_during_scheduling_ignored_during_execution = Some(vec![PodAffinityTerm {
            label_selector: Some(LabelSelector {
                match_expressions: Some(vec![
                    exists(labels::CLUSTER),
                    exists(labels::DATACENTER),
                    exists(labels::RACK),
                ]),
                match_labels: None,
            }),
            topology_key: "kubernetes.io/hostname".into(),
            ..PodAffinityTerm::default()
        }]);
    }
    for other in [template, rack].into_iter().flatten() {
        if let Some(required) = other.required_during_scheduling_ignored_during_execution {
            out.required_during_scheduling_ignored_during_execution
                .get_or_insert_with(Vec::new)
                .extend(required);
        }
        if let Some(preferred) = other.preferred_during_scheduling_ignored_during_execution {
            out.preferred_during_scheduling_ignored_during_execution
                .get_or_insert_with(Vec::new)
                .extend(preferred);
        }
    }
    let empty = out
        .required_during_scheduling_ignored_during_execution
        .as_ref()
        .is_none_or(Vec::is_empty)
        && out
            .preferred_during_scheduling_ignored_during_execution
            .as_ref()
            .is_none_or(Vec::is_empty);
    (!empty).then_some(out)
}

fn affinity(dc: &CassandraDatacenter, rack: &Rack, template: Option<Affinity>) -> Option<Affinity> {
    let template = template.unwrap_or_default();
    let rack_affinity = rack.affinity.clone().unwrap_or_default();
    let mut pod_affinity = template.pod_affinity;
    // Upstream drops a rack's podAffinity; we add its terms rather than lose them silently.
    if let Some(rack_pod) = rack_affinity.pod_affinity {
        let target = pod_affinity.get_or_insert_with(Default::default);
        if let Some(required) = rack_pod.required_during_scheduling_ignored_during_execution {
            target
                .required_during_scheduling_ignored_during_execution
                .get_or_insert_with(Vec::new)
                .extend(required);
        }
        if let Some(preferred) = rack_pod.preferred_during_scheduling_ignored_during_execution {
            target
                .preferred_during_scheduling_ignored_during_execution
                .get_or_insert_with(Vec::new)
                .extend(preferred);
        }
    }
    let out = Affinity {
        node_affinity: node_affinity(
            &rack_node_affinity_labels(dc, rack),
            template.node_affinity,
            rack_affinity.node_affinity,
        ),
        pod_affinity,
        pod_anti_affinity: pod_anti_affinity(
            dc.spec.allows_multiple_nodes_per_worker(),
            template.pod_anti_affinity,
            rack_affinity.pod_anti_affinity,
        ),
    };
    (out != Affinity::default()).then_some(out)
}

/// Volumes: the template's first, then the operator's (config, logs, read-only filesystem scratch,
/// base config, vector state, legacy keystore, additional plain volumes); additional volumes that
/// are claim templates are left to the StatefulSet.
fn volumes(dc: &CassandraDatacenter, template: Vec<Volume>) -> Result<Vec<Volume>> {
    let read_only = config::read_only_root_filesystem(dc);
    let client = config::uses_client_builder(dc);
    let mut defaults = vec![
        empty_dir(SERVER_CONFIG_VOLUME),
        empty_dir(SERVER_LOGS_VOLUME),
    ];
    if read_only {
        defaults.extend([empty_dir("tmp"), empty_dir("etc-cassandra")]);
        if dc.spec.server_type == ServerType::Dse {
            defaults.push(empty_dir("dse-conf"));
            if !client {
                defaults.extend([empty_dir("spark-conf"), empty_dir("collectd-conf")]);
            }
        }
    }
    if client {
        defaults.push(empty_dir(SERVER_CONFIG_BASE_VOLUME));
    }
    if !logger_disabled(dc) {
        defaults.push(empty_dir(VECTOR_LIB_VOLUME));
    }
    if config::legacy_internode_enabled(dc) {
        defaults.push(Volume {
            name: ENCRYPTION_VOLUME.into(),
            secret: Some(SecretVolumeSource {
                secret_name: Some(format!("{}-keystore", dc.label_resource_name())),
                ..SecretVolumeSource::default()
            }),
            ..Volume::default()
        });
    }
    for additional in additional_volumes(dc) {
        if let Some(source) = &additional.volume_source {
            defaults.push(source.to_volume(&additional.name).map_err(|source| {
                BuildError::InvalidVolumeSource {
                    name: additional.name.clone(),
                    source,
                }
            })?);
        }
    }
    let claim_volumes: Vec<&str> = additional_volumes(dc)
        .iter()
        .filter(|v| v.volume_source.is_none())
        .map(|v| v.name.as_str())
        .collect();
    Ok(combine_volumes(defaults, template)
        .into_iter()
        .filter(|v| !claim_volumes.contains(&v.name.as_str()))
        .collect())
}

fn additional_volumes(dc: &CassandraDatacenter) -> &[k8ssandra_api::cassandra::AdditionalVolumes] {
    dc.spec
        .storage_config
        .additional_volumes
        .as_deref()
        .unwrap_or_default()
}

fn additional_volume_mounts(dc: &CassandraDatacenter) -> Vec<VolumeMount> {
    additional_volumes(dc)
        .iter()
        .map(|v| mount(&v.name, &v.mount_path))
        .collect()
}

fn logger_disabled(dc: &CassandraDatacenter) -> bool {
    dc.spec.disable_system_logger_sidecar.unwrap_or(false)
}

/// `CONFIG_FILE_DATA` (and `CONFIG_HASH` with `configSecret`).
fn config_env(dc: &CassandraDatacenter) -> Result<Vec<EnvVar>> {
    if dc
        .spec
        .config_secret
        .as_deref()
        .is_some_and(|s| !s.is_empty())
    {
        let hash = dc
            .metadata
            .annotations
            .as_ref()
            .and_then(|a| a.get(CONFIG_HASH))
            .ok_or(BuildError::MissingConfigHash)?;
        let secret = names::datacenter_config_secret(cluster_name(dc), &dc.label_resource_name());
        return Ok(vec![
            EnvVar {
                name: "CONFIG_FILE_DATA".into(),
                value: None,
                value_from: Some(EnvVarSource {
                    secret_key_ref: Some(SecretKeySelector {
                        name: secret,
                        key: "config".into(),
                        optional: None,
                    }),
                    ..EnvVarSource::default()
                }),
            },
            env("CONFIG_HASH", hash.clone()),
        ]);
    }
    Ok(vec![env("CONFIG_FILE_DATA", config::node_config_json(dc)?)])
}

/// Takes the container named `name` out of `containers`, remembering where it was.
fn take_container(containers: &mut Vec<Container>, name: &str) -> (Option<usize>, Container) {
    match containers.iter().position(|c| c.name == name) {
        Some(index) => (Some(index), containers.remove(index)),
        None => (
            None,
            Container {
                name: name.to_owned(),
                ..Container::default()
            },
        ),
    }
}

fn base_config_copy_args(server_type: ServerType) -> Vec<String> {
    let source = match server_type {
        ServerType::Cassandra => "/etc/cassandra",
        ServerType::Dse => "/opt/dse/resources/cassandra/conf",
        ServerType::Hcd => "/opt/hcd/resources/cassandra/conf",
    };
    vec![
        "-c".into(),
        format!("cp -rf {source}/* /cassandra-base-config/"),
    ]
}

/// The init containers: the template's, with `server-config-init-base` (client builder only) placed
/// just before `server-config-init`, which runs last unless the template placed it.
fn init_containers(
    dc: &CassandraDatacenter,
    rack: &Rack,
    images: &ImageConfig,
    mut containers: Vec<Container>,
) -> Result<Vec<Container>> {
    let client = config::uses_client_builder(dc);
    let (config_index, mut config_container) =
        take_container(&mut containers, CONFIG_INIT_CONTAINER);
    let base_index = containers
        .iter()
        .position(|c| c.name == CONFIG_BASE_INIT_CONTAINER);

    if config_container.image.as_deref().is_none_or(str::is_empty) {
        if client {
            config_container.image = Some(images.client_image());
            config_container.args = Some(vec!["config".into(), "build".into()]);
        } else {
            config_container.image = Some(
                dc.spec
                    .config_builder_image
                    .clone()
                    .filter(|i| !i.is_empty())
                    .unwrap_or_else(|| images.config_builder_image()),
            );
        }
        config_container
            .image_pull_policy
            .clone_from(&images.pull_policy);
    }
    let mut config_mounts = vec![mount(SERVER_CONFIG_VOLUME, "/config")];
    let base_mount = mount(SERVER_CONFIG_BASE_VOLUME, "/cassandra-base-config");
    if client {
        config_mounts.push(base_mount.clone());
    }
    config_container.volume_mounts = Some(combine_mounts(
        config_mounts,
        config_container.volume_mounts.take().unwrap_or_default(),
    ));
    config_container.resources = Some(sidecar_resources(
        dc.spec.config_builder_resources.as_ref(),
        config_container.resources.as_ref(),
        default_resources(
            &[("cpu", "1"), ("memory", "256M")],
            &[("cpu", "1"), ("memory", "384M")],
        ),
    ));
    let mut env_defaults = vec![
        field_env("POD_NAME", "metadata.name"),
        field_env("POD_IP", "status.podIP"),
        field_env("HOST_IP", "status.hostIP"),
        env(
            "USE_HOST_IP_FOR_BROADCAST",
            config::node_port(dc).is_some().to_string(),
        ),
        env("RACK_NAME", rack.name.clone()),
        env("PRODUCT_VERSION", dc.spec.server_version.clone()),
        env("PRODUCT_NAME", dc.spec.server_type.as_str()),
    ];
    env_defaults.extend(config_env(dc)?);
    config_container.env = Some(combine_env(
        env_defaults,
        config_container.env.take().unwrap_or_default(),
    ));

    // The base container is built only when the template does not bring one.
    let base_container = match (client, base_index) {
        (true, None) => Some(Container {
            name: CONFIG_BASE_INIT_CONTAINER.into(),
            image: Some(server_image(dc, images)?),
            image_pull_policy: images.pull_policy.clone(),
            command: Some(vec!["/bin/sh".into()]),
            args: Some(base_config_copy_args(dc.spec.server_type)),
            volume_mounts: Some(vec![base_mount]),
            ..Container::default()
        }),
        (true, Some(index)) => {
            if let Some(existing) = containers.get_mut(index) {
                existing.volume_mounts = Some(vec![base_mount]);
            }
            None
        }
        (false, _) => None,
    };

    match config_index {
        Some(index) => {
            let index = index.min(containers.len());
            containers.insert(index, config_container);
            if let Some(base) = base_container {
                containers.insert(index, base);
            }
        }
        None => {
            containers.extend(base_container);
            containers.push(config_container);
        }
    }
    Ok(containers)
}

/// The `cassandra` container's ports (upstream's names; Thrift, DSE and workload ports as
/// configured).
fn server_ports(dc: &CassandraDatacenter, mgmt_port: i32) -> Vec<ContainerPort> {
    let mut ports = vec![
        container_port("native", 9042),
        container_port("tls-native", 9142),
        container_port("internode", 7000),
        container_port("tls-internode", 7001),
        container_port("jmx", 7199),
        container_port(config::MGMT_API_PORT_NAME, mgmt_port),
        container_port("prometheus", 9103),
        container_port("metrics", 9000),
    ];
    if has_thrift(dc) {
        ports.push(container_port("thrift", 9160));
    }
    if dc.spec.server_type == ServerType::Dse {
        ports.push(container_port("internode-msg", 8609));
    }
    if let Some(workloads) = &dc.spec.dse_workloads {
        if workloads.analytics_enabled == Some(true) {
            ports.extend((4040..=4050).map(|p| container_port(&format!("spark-app-{p}"), p)));
            ports.extend([
                container_port("dsefs-public", 5598),
                container_port("dsefs-internode", 5599),
                container_port("spark-internode", 7077),
                container_port("spark-master", 7080),
                container_port("spark-worker", 7081),
                container_port("jobserver", 8090),
                container_port("always-on-sql", 9077),
                container_port("jobserver-jmx", 9999),
                container_port("sql-thrift", 10000),
                container_port("spark-history", 18080),
            ]);
        }
        if workloads.graph_enabled == Some(true) {
            ports.push(container_port("gremlin", 8182));
        }
        if workloads.search_enabled == Some(true) {
            ports.push(container_port("solr", 8983));
        }
    }
    ports
}

fn jvm_extra_opts(dc: &CassandraDatacenter) -> String {
    let Some(workloads) = &dc.spec.dse_workloads else {
        return String::new();
    };
    let mut flags = String::new();
    if workloads.analytics_enabled == Some(true) {
        flags.push_str("-Dspark-trackers=true ");
    }
    if workloads.graph_enabled == Some(true) {
        flags.push_str("-Dgraph-enabled=true ");
    }
    if workloads.search_enabled == Some(true) {
        flags.push_str("-Dsearch-service=true");
    }
    flags
}

/// The `cassandra` container, built over the template's one.
fn server_container(
    dc: &CassandraDatacenter,
    images: &ImageConfig,
    mut container: Container,
    volumes: &[Volume],
    mgmt_port: i32,
) -> Result<Container> {
    let read_only = config::read_only_root_filesystem(dc);
    let tls = dc.spec.management_api_tls().is_some();
    if container.image.as_deref().is_none_or(str::is_empty) {
        container.image = Some(server_image(dc, images)?);
        container.image_pull_policy.clone_from(&images.pull_policy);
    }
    if container.resources.as_ref().is_none_or(is_empty_resources) {
        container.resources.clone_from(&dc.spec.resources);
    }
    if container.liveness_probe.is_none() {
        container.liveness_probe = Some(http_probe(mgmt_port, LIVENESS_PATH, 15, 15));
    }
    if container.readiness_probe.is_none() {
        container.readiness_probe = Some(http_probe(mgmt_port, READINESS_PATH, 20, 10));
    }
    let lifecycle = container.lifecycle.get_or_insert_with(Lifecycle::default);
    if lifecycle.pre_stop.is_none() {
        lifecycle.pre_stop = Some(LifecycleHandler {
            exec: Some(mgmt_api_curl("POST", DRAIN_PATH, 0, mgmt_port, tls)),
            ..LifecycleHandler::default()
        });
    }
    if read_only {
        container
            .security_context
            .get_or_insert_with(SecurityContext::default)
            .read_only_root_filesystem = Some(true);
    }

    let mut env_defaults = vec![
        field_env("POD_NAME", "metadata.name"),
        field_env("NODE_NAME", "spec.nodeName"),
        env("DS_LICENSE", "accept"),
        env("USE_MGMT_API", "true"),
        env("MGMT_API_NO_KEEP_ALIVE", "true"),
        env("MGMT_API_EXPLICIT_START", "true"),
        env("MGMT_API_LISTEN_TCP_PORT", mgmt_port.to_string()),
    ];
    match dc.spec.server_type {
        ServerType::Dse => {
            env_defaults.push(env("DSE_AUTO_CONF_OFF", "all"));
            env_defaults.push(env("DSE_MGMT_EXPLICIT_START", "true"));
            if dc.spec.dse_workloads.is_some() {
                env_defaults.push(env("JVM_EXTRA_OPTS", jvm_extra_opts(dc)));
            }
        }
        ServerType::Hcd => env_defaults.push(env("HCD_AUTO_CONF_OFF", "all")),
        ServerType::Cassandra => {}
    }
    if read_only {
        env_defaults.push(env("MGMT_API_DISABLE_MCAC", "true"));
    }
    container.env = Some(combine_env(
        env_defaults,
        container.env.take().unwrap_or_default(),
    ));
    container.ports = Some(combine_ports(
        server_ports(dc, mgmt_port),
        container.ports.take().unwrap_or_default(),
    ));

    // Mounts: additional volumes first, then the template's, then the operator's.
    let mut defaults = vec![mount(SERVER_CONFIG_VOLUME, "/config")];
    defaults.extend(
        additional_volumes(dc)
            .iter()
            .filter(|v| v.volume_source.is_some())
            .map(|v| mount(&v.name, &v.mount_path)),
    );
    let mut operator_mounts = combine_mounts(
        defaults,
        vec![
            mount(SERVER_LOGS_VOLUME, "/var/log/cassandra"),
            mount(DATA_VOLUME, "/var/lib/cassandra"),
        ],
    );
    if volumes.iter().any(|v| v.name == ENCRYPTION_VOLUME) {
        operator_mounts.push(mount(ENCRYPTION_VOLUME, "/etc/encryption/"));
    }
    let mut own = container.volume_mounts.take().unwrap_or_default();
    if read_only {
        own.push(mount("tmp", "/tmp"));
        match dc.spec.server_type {
            ServerType::Hcd => {
                own.push(mount("etc-cassandra", "/opt/hcd/resources/cassandra/conf"))
            }
            ServerType::Dse => {
                own.push(mount("etc-cassandra", "/opt/dse/resources/cassandra/conf"));
                own.push(mount("dse-conf", "/opt/dse/resources/dse/conf"));
                if !config::uses_client_builder(dc) {
                    own.push(mount("spark-conf", "/opt/dse/resources/spark/conf"));
                    own.push(mount(
                        "collectd-conf",
                        "/opt/dse/resources/dse/collectd/etc/collectd",
                    ));
                }
            }
            ServerType::Cassandra => own.push(mount("etc-cassandra", "/etc/cassandra")),
        }
    }
    let mounts = combine_mounts(operator_mounts, own);
    container.volume_mounts = Some(combine_mounts(mounts, additional_volume_mounts(dc)));
    Ok(container)
}

/// The `server-system-logger` container, built over the template's one.
fn logger_container(
    dc: &CassandraDatacenter,
    images: &ImageConfig,
    mut container: Container,
) -> Container {
    let env_defaults = vec![
        field_env("POD_NAME", "metadata.name"),
        field_env("NODE_NAME", "spec.nodeName"),
        env("CLUSTER_NAME", cluster_name(dc)),
        env("DATACENTER_NAME", dc.datacenter_name()),
        field_env("RACK_NAME", &format!("metadata.labels['{}']", labels::RACK)),
        field_env("NAMESPACE", "metadata.namespace"),
    ];
    container.env = Some(combine_env(
        env_defaults,
        container.env.take().unwrap_or_default(),
    ));
    if container.image.as_deref().is_none_or(str::is_empty) {
        container.image = Some(
            dc.spec
                .system_logger_image
                .clone()
                .filter(|i| !i.is_empty())
                .unwrap_or_else(|| images.system_logger_image()),
        );
        container.image_pull_policy.clone_from(&images.pull_policy);
    }
    let mounts = combine_mounts(
        vec![
            mount(SERVER_LOGS_VOLUME, "/var/log/cassandra"),
            mount(VECTOR_LIB_VOLUME, "/var/lib/vector"),
        ],
        container.volume_mounts.take().unwrap_or_default(),
    );
    container.volume_mounts = Some(combine_mounts(mounts, additional_volume_mounts(dc)));
    container.resources = Some(sidecar_resources(
        dc.spec.system_logger_resources.as_ref(),
        container.resources.as_ref(),
        // No CPU limit: the log shipper is never throttled.
        default_resources(&[("cpu", "100m"), ("memory", "64M")], &[("memory", "128M")]),
    ));
    container
}

/// Mutual TLS for the Management API: the server certificates mounted, the TLS env vars first in
/// the server container, and exec probes that present the certificates (an HTTP probe cannot).
fn add_management_api_tls(spec: &mut PodSpec, tls: &ManagementApiAuthManual, mgmt_port: i32) {
    spec.volumes.get_or_insert_with(Vec::new).push(Volume {
        name: MGMT_API_CERTS_VOLUME.into(),
        secret: Some(SecretVolumeSource {
            secret_name: Some(tls.server_secret_name.clone()),
            ..SecretVolumeSource::default()
        }),
        ..Volume::default()
    });
    let Some(container) = spec
        .containers
        .iter_mut()
        .find(|c| c.name == CASSANDRA_CONTAINER)
    else {
        return;
    };
    container
        .volume_mounts
        .get_or_insert_with(Vec::new)
        .push(VolumeMount {
            read_only: Some(true),
            ..mount(MGMT_API_CERTS_VOLUME, MGMT_API_CERTS_PATH)
        });
    let mut tls_env: Vec<EnvVar> = [
        ("MGMT_API_TLS_CA_CERT_FILE", "ca.crt"),
        ("MGMT_API_TLS_CERT_FILE", "tls.crt"),
        ("MGMT_API_TLS_KEY_FILE", "tls.key"),
        ("DSE_MGMT_TLS_CA_CERT_FILE", "ca.crt"),
        ("DSE_MGMT_TLS_CERT_FILE", "tls.crt"),
        ("DSE_MGMT_TLS_KEY_FILE", "tls.key"),
    ]
    .iter()
    .map(|(name, file)| env(name, format!("{MGMT_API_CERTS_PATH}/{file}")))
    .collect();
    tls_env.extend(container.env.take().unwrap_or_default());
    container.env = Some(tls_env);
    for (probe, path) in [
        (&mut container.liveness_probe, LIVENESS_PATH),
        (&mut container.readiness_probe, READINESS_PATH),
    ] {
        let probe = probe.get_or_insert_with(Probe::default);
        let timeout = probe
            .timeout_seconds
            .filter(|t| *t >= 1)
            .unwrap_or(PROBE_TIMEOUT_SECONDS);
        probe.http_get = None;
        probe.tcp_socket = None;
        probe.exec = Some(mgmt_api_curl("GET", path, timeout, mgmt_port, true));
    }
}

/// The pod template of `rack`'s StatefulSet.
///
/// # Errors
/// When no server image is known for the version, `spec.config` is not an object, an additional
/// volume source is invalid, or `configSecret` is used before its hash annotation exists.
pub fn pod_template(
    dc: &CassandraDatacenter,
    rack: &Rack,
    images: &ImageConfig,
) -> Result<PodTemplateSpec> {
    let mut template = dc.spec.pod_template_spec.clone().unwrap_or_default();
    let mgmt_port = config::management_api_port(dc.spec.pod_template_spec.as_ref());
    let mut spec = template.spec.take().unwrap_or_default();

    if let Some(account) = dc
        .spec
        .service_account_name
        .as_deref()
        .or(dc.spec.service_account.as_deref())
        .filter(|a| !a.is_empty())
    {
        spec.service_account_name = Some(account.to_owned());
    }
    if config::host_network(dc) {
        spec.host_network = Some(true);
        spec.dns_policy = Some("ClusterFirstWithHostNet".into());
    }
    spec.termination_grace_period_seconds
        .get_or_insert(TERMINATION_GRACE_PERIOD_SECONDS);
    if spec.security_context.is_none() {
        spec.security_context = Some(PodSecurityContext {
            run_as_user: Some(SERVER_USER_ID),
            run_as_group: Some(SERVER_USER_ID),
            fs_group: Some(SERVER_USER_ID),
            run_as_non_root: Some(true),
            ..PodSecurityContext::default()
        });
    }
    for secret in &images.pull_secrets {
        spec.image_pull_secrets.get_or_insert_with(Vec::new).push(
            k8s_openapi::api::core::v1::LocalObjectReference {
                name: secret.clone(),
            },
        );
    }

    // Labels and annotations: the template's, with the operator's on top.
    let metadata = template.metadata.get_or_insert_with(Default::default);
    let pod_labels = metadata.labels.get_or_insert_with(BTreeMap::new);
    pod_labels.extend(rack_labels(dc, &rack.name)?);
    pod_labels.extend(operator_labels(dc));
    // Every new or recreated pod starts here; the operator moves it on as it starts Cassandra.
    pod_labels.insert(
        labels::NODE_STATE.to_owned(),
        node_state::READY_TO_START.to_owned(),
    );
    let annotations = operator_annotations(dc);
    if !annotations.is_empty() {
        metadata
            .annotations
            .get_or_insert_with(BTreeMap::new)
            .extend(annotations);
    }

    spec.affinity = affinity(dc, rack, spec.affinity.take());
    // The datacenter's tolerations replace the template's (upstream); without any, the template's stay.
    if let Some(tolerations) = &dc.spec.tolerations {
        spec.tolerations = Some(tolerations.clone());
    }

    let volumes = volumes(dc, spec.volumes.take().unwrap_or_default())?;
    spec.init_containers = Some(init_containers(
        dc,
        rack,
        images,
        spec.init_containers.take().unwrap_or_default(),
    )?);

    let mut containers = std::mem::take(&mut spec.containers);
    let server_index = containers
        .iter()
        .position(|c| c.name == CASSANDRA_CONTAINER);
    let logger_index = containers
        .iter()
        .position(|c| c.name == SYSTEM_LOGGER_CONTAINER);
    let server_base = server_index
        .and_then(|i| containers.get(i).cloned())
        .unwrap_or_else(|| Container {
            name: CASSANDRA_CONTAINER.into(),
            ..Container::default()
        });
    let server = server_container(dc, images, server_base, &volumes, mgmt_port)?;
    let logger_base = logger_index
        .and_then(|i| containers.get(i).cloned())
        .unwrap_or_else(|| Container {
            name: SYSTEM_LOGGER_CONTAINER.into(),
            ..Container::default()
        });
    let logger = logger_container(dc, images, logger_base);
    match server_index.and_then(|i| containers.get_mut(i)) {
        Some(slot) => *slot = server,
        None => containers.push(server),
    }
    match logger_index.and_then(|i| containers.get_mut(i)) {
        // A logger container in the template stays even when the sidecar is disabled (upstream).
        Some(slot) => *slot = logger,
        None if !logger_disabled(dc) => containers.push(logger),
        None => {}
    }
    spec.containers = containers;
    spec.volumes = Some(volumes);

    if let Some(selector) = dc.spec.node_selector.as_ref().filter(|s| !s.is_empty()) {
        spec.node_selector = Some(selector.clone());
    }
    if let Some(tls) = dc.spec.management_api_tls() {
        add_management_api_tls(&mut spec, tls, mgmt_port);
    }
    harden(&mut spec);
    template.spec = Some(spec);
    Ok(template)
}

/// Upstream's container hardening, where the template leaves it unset: no privilege escalation
/// in any container, and read-only root filesystems for the init containers and the logger
/// (they write only to their volumes).
fn harden(spec: &mut PodSpec) {
    let secure = |container: &mut Container, read_only: bool| {
        let context = container
            .security_context
            .get_or_insert_with(SecurityContext::default);
        context.allow_privilege_escalation.get_or_insert(false);
        if read_only {
            context.read_only_root_filesystem.get_or_insert(true);
        }
    };
    for container in spec.init_containers.iter_mut().flatten() {
        secure(container, true);
    }
    for container in &mut spec.containers {
        let read_only = container.name == SYSTEM_LOGGER_CONTAINER;
        secure(container, read_only);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_user_wins_on_same_names_and_keeps_order() {
        let out = combine_env(
            vec![env("A", "default"), env("B", "default")],
            vec![env("B", "user"), env("C", "user")],
        );
        let rendered: Vec<(String, Option<String>)> =
            out.into_iter().map(|e| (e.name, e.value)).collect();
        assert_eq!(
            rendered,
            vec![
                ("B".into(), Some("user".into())),
                ("C".into(), Some("user".into())),
                ("A".into(), Some("default".into())),
            ]
        );
    }

    #[test]
    fn the_tls_curl_presents_certificates() {
        let action = mgmt_api_curl("GET", LIVENESS_PATH, 10, 8080, true);
        let command = action.command.unwrap_or_default();
        assert!(command.contains(&"--cert".to_owned()));
        assert_eq!(
            command.last().map(String::as_str),
            Some("https://localhost:8080/api/v0/probes/liveness")
        );
    }
}
