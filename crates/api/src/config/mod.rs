//! `config.k8ssandra.io/v1beta1`: the ClientConfig, how the control plane reaches another
//! Kubernetes cluster.

use k8s_openapi::api::core::v1::LocalObjectReference;
use kube::{CustomResource, KubeSchema};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// API group of the ClientConfig.
pub const GROUP: &str = "config.k8ssandra.io";

/// Key of the kubeconfig in the Secret a ClientConfig names.
pub const KUBECONFIG_KEY: &str = "kubeconfig";

/// A remote Kubernetes cluster: a kubeconfig in a Secret and the context to use from it.
#[derive(CustomResource, Clone, Debug, Default, PartialEq, Serialize, Deserialize, KubeSchema)]
#[kube(
    group = "config.k8ssandra.io",
    version = "v1beta1",
    kind = "ClientConfig",
    plural = "clientconfigs",
    namespaced,
    status = "ClientConfigStatus",
    derive = "PartialEq",
    derive = "Default",
    doc = "A remote Kubernetes cluster the control plane manages datacenters in.",
    printcolumn(name = "Context", type_ = "string", json_path = ".spec.contextName"),
    printcolumn(
        name = "Secret",
        type_ = "string",
        json_path = ".spec.kubeConfigSecret.name"
    ),
    printcolumn(
        name = "Age",
        type_ = "date",
        json_path = ".metadata.creationTimestamp"
    )
)]
#[serde(rename_all = "camelCase")]
pub struct ClientConfigSpec {
    /// Context of the kubeconfig to use, and the name datacenters use in `k8sContext`; the
    /// ClientConfig's name when empty.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 253))]
    pub context_name: Option<String>,
    /// Secret (in the same namespace) whose `kubeconfig` key holds the kubeconfig.
    #[x_kube(validation = Rule::new("has(self.name) && self.name != ''").message("kubeConfigSecret.name must name the Secret that holds the kubeconfig"))]
    pub kube_config_secret: LocalObjectReference,
}

/// Observed state of a ClientConfig (not in upstream, which has none): whether the control plane
/// reaches the cluster, and why not.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ClientConfigStatus {
    /// `Reachable`: the kubeconfig works and the API server answers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "crate::conditions::list_schema")]
    pub conditions: Option<Vec<crate::conditions::Condition>>,
    /// Generation of the spec the status was computed from.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
}

impl ClientConfig {
    /// The context name datacenters refer to: `spec.contextName`, else the object name.
    #[must_use]
    pub fn context_name(&self) -> &str {
        self.spec
            .context_name
            .as_deref()
            .filter(|c| !c.is_empty())
            .or(self.metadata.name.as_deref())
            .unwrap_or_default()
    }
}
