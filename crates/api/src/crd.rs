//! The CustomResourceDefinitions of every custom resource, as they are installed.

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::{
    CustomResourceDefinition, JSON, JSONSchemaProps, ValidationRule,
};
use kube::CustomResourceExt;

use crate::{
    cassandra::CassandraDatacenter,
    config::ClientConfig,
    control::{CassandraTask, K8ssandraTask, ScheduledTask},
    k8ssandra::K8ssandraCluster,
    replication::ReplicatedSecret,
};

/// Fields whose schema is an embedded Kubernetes core type (pod template, containers, volumes,
/// affinity, ...). Their field-level description is ours and kept; the descriptions inside are
/// Kubernetes' own and dropped, as controller-gen's `maxDescLen=0` does, because with them a
/// K8ssandraCluster CRD comes close to etcd's 1.5 MiB object limit.
const EMBEDDED_CORE_TYPE_FIELDS: &[&str] = &[
    "affinity",
    "cassandraDataVolumeClaimSpec",
    "cluster",
    "configBuilderResources",
    "containers",
    "datacenter",
    "initContainers",
    "kubeConfigSecret",
    "maxUnavailable",
    "nameSelector",
    "perNodeConfigMapRef",
    "podSecurityContext",
    "podTemplateSpec",
    "pullSecretRef",
    "pvcSpec",
    "resources",
    "selector",
    "superuserSecretRef",
    "systemLoggerResources",
    "tolerations",
    "trackedTasks",
    "volumeSource",
    "volumes",
];

/// Every CRD the operator serves, in a stable order.
#[must_use]
pub fn all() -> Vec<CustomResourceDefinition> {
    let mut crds = vec![
        CassandraDatacenter::crd(),
        ClientConfig::crd(),
        CassandraTask::crd(),
        K8ssandraTask::crd(),
        ScheduledTask::crd(),
        K8ssandraCluster::crd(),
        ReplicatedSecret::crd(),
    ];
    for crd in &mut crds {
        // Upstream's K8ssandraTask spec is optional: its own fixtures write an empty `spec:`.
        let optional_spec = crd.spec.names.kind == "K8ssandraTask";
        for version in &mut crd.spec.versions {
            if let Some(schema) = version
                .schema
                .as_mut()
                .and_then(|s| s.open_api_v3_schema.as_mut())
            {
                drop_embedded_descriptions(schema);
                bound_numbers(schema);
                if optional_spec {
                    optional_empty_spec(schema);
                }
            }
        }
    }
    crds
}

/// Makes `spec` optional, with `{}` as its default, so that the API server turns an empty
/// `spec:` (null) into an empty object instead of refusing it; a task that runs a job must still
/// name its K8ssandraCluster.
fn optional_empty_spec(schema: &mut JSONSchemaProps) {
    if let Some(required) = &mut schema.required {
        required.retain(|field| field != "spec");
        if required.is_empty() {
            schema.required = None;
        }
    }
    if let Some(spec) = schema.properties.as_mut().and_then(|p| p.get_mut("spec")) {
        spec.default = Some(JSON(serde_json::json!({})));
        spec.x_kubernetes_validations
            .get_or_insert_with(Vec::new)
            .push(ValidationRule {
                rule: "!has(self.template) || !has(self.template.jobs) || \
                       size(self.template.jobs) == 0 || (has(self.cluster) && \
                       has(self.cluster.name) && self.cluster.name != '')"
                    .to_owned(),
                message: Some(
                    "a task that runs a job names its K8ssandraCluster in spec.cluster.name"
                        .to_owned(),
                ),
                ..ValidationRule::default()
            });
    }
}

/// What a resource quantity may be in a spec: a non-negative decimal with an optional suffix, as
/// Kubernetes writes them (`500m`, `2Gi`, `1e3`). Upstream's pattern, without the sign: no
/// resource of a Cassandra pod is negative.
pub const QUANTITY_PATTERN: &str = r"^\+?(([0-9]+(\.[0-9]*)?)|(\.[0-9]+))(([KMGTPE]i)|[numkMGTPE]|([eE](\+|-)?(([0-9]+(\.[0-9]*)?)|(\.[0-9]+))))?$";

/// Maps of quantities, by property name (their values are quantities).
const QUANTITY_MAPS: &[&str] = &["requests", "limits"];

/// Gives every 32-bit integer its range, and every quantity its pattern, so that the API server
/// refuses at admission what the operator could not read (the API server stores any integer
/// and any string otherwise).
fn bound_numbers(schema: &mut JSONSchemaProps) {
    use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::JSONSchemaPropsOrBool;
    if schema.type_.as_deref() == Some("integer") && schema.format.as_deref() == Some("int32") {
        schema.minimum.get_or_insert(f64::from(i32::MIN));
        schema.maximum.get_or_insert(f64::from(i32::MAX));
    }
    for_each_child(schema, &mut |name, child| {
        let is_quantity_map = name.is_some_and(|n| QUANTITY_MAPS.contains(&n));
        if name == Some("sizeLimit") && child.x_kubernetes_int_or_string == Some(true) {
            child.pattern = Some(QUANTITY_PATTERN.to_owned());
        }
        if is_quantity_map
            && let Some(JSONSchemaPropsOrBool::Schema(value)) = child.additional_properties.as_mut()
            && value.x_kubernetes_int_or_string == Some(true)
        {
            value.pattern = Some(QUANTITY_PATTERN.to_owned());
        }
        bound_numbers(child);
    });
}

/// Drops the descriptions inside [`EMBEDDED_CORE_TYPE_FIELDS`], wherever they appear.
fn drop_embedded_descriptions(schema: &mut JSONSchemaProps) {
    for_each_child(schema, &mut |name, child| {
        if name.is_some_and(|n| EMBEDDED_CORE_TYPE_FIELDS.contains(&n)) {
            for_each_child(child, &mut |_, inner| drop_all_descriptions(inner));
        } else {
            drop_embedded_descriptions(child);
        }
    });
}

fn drop_all_descriptions(schema: &mut JSONSchemaProps) {
    schema.description = None;
    for_each_child(schema, &mut |_, child| drop_all_descriptions(child));
}

/// Calls `f` on every direct sub-schema, with the property name where there is one.
fn for_each_child(
    schema: &mut JSONSchemaProps,
    f: &mut dyn FnMut(Option<&str>, &mut JSONSchemaProps),
) {
    use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::{
        JSONSchemaPropsOrArray, JSONSchemaPropsOrBool,
    };
    if let Some(properties) = schema.properties.as_mut() {
        for (name, child) in properties.iter_mut() {
            f(Some(name), child);
        }
    }
    match schema.items.as_mut() {
        Some(JSONSchemaPropsOrArray::Schema(item)) => f(None, item),
        Some(JSONSchemaPropsOrArray::Schemas(items)) => items.iter_mut().for_each(|i| f(None, i)),
        None => {}
    }
    if let Some(JSONSchemaPropsOrBool::Schema(extra)) = schema.additional_properties.as_mut() {
        f(None, extra);
    }
    for list in [&mut schema.all_of, &mut schema.any_of, &mut schema.one_of] {
        list.iter_mut().flatten().for_each(|s| f(None, s));
    }
}

/// File name of a CRD in `config/crd/bases`: `<group>_<plural>.yaml`, as kubebuilder names them.
#[must_use]
pub fn file_name(crd: &CustomResourceDefinition) -> String {
    format!("{}_{}.yaml", crd.spec.group, crd.spec.names.plural)
}

/// A CRD as a YAML document.
///
/// # Errors
/// When the CRD cannot be serialised (it always can: it is built from plain data).
pub fn to_yaml(crd: &CustomResourceDefinition) -> Result<String, serde_yaml::Error> {
    Ok(format!("---\n{}", serde_yaml::to_string(crd)?))
}
