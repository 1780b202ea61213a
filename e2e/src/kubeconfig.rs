//! Kubeconfig files in kind's shape: cluster, user and context all named `kind-<cluster>`.

use base64::Engine;
use kube::config::Kubeconfig;
use serde_json::{Value, json};

use crate::HarnessError;

/// How to reach one local cluster as its administrator.
#[derive(Clone, Debug)]
pub struct ClusterAccess {
    /// Context (and cluster and user) name, e.g. `kind-k8ssandra-0`.
    pub context: String,
    /// `https://127.0.0.1:<port>`.
    pub server: String,
    /// PEM of the CA that signed the apiserver's certificate.
    pub ca_pem: String,
    /// Admin bearer token.
    pub token: String,
}

/// A kubeconfig holding `clusters`, with the first one as the current context.
pub fn kubeconfig_yaml(clusters: &[&ClusterAccess]) -> String {
    let entries = |entry: fn(&ClusterAccess) -> Value| -> Vec<Value> {
        clusters.iter().map(|access| entry(access)).collect()
    };
    let document = json!({
        "apiVersion": "v1",
        "kind": "Config",
        "preferences": {},
        "current-context": clusters.first().map(|access| access.context.clone()),
        "clusters": entries(|access| json!({
            "name": access.context,
            "cluster": {
                "server": access.server,
                "certificate-authority-data":
                    base64::engine::general_purpose::STANDARD.encode(&access.ca_pem),
            },
        })),
        "users": entries(|access| json!({
            "name": access.context,
            "user": { "token": access.token },
        })),
        "contexts": entries(|access| json!({
            "name": access.context,
            "context": { "cluster": access.context, "user": access.context },
        })),
    });
    // A JSON value of strings, lists and maps always serialises.
    serde_yaml::to_string(&document).unwrap_or_default()
}

/// Parses kubeconfig YAML into kube's typed form.
pub fn parse(yaml: &str) -> Result<Kubeconfig, HarnessError> {
    Kubeconfig::from_yaml(yaml).map_err(|error| HarnessError::Kubeconfig(error.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn access(index: usize) -> ClusterAccess {
        ClusterAccess {
            context: format!("kind-k8ssandra-{index}"),
            server: format!("https://127.0.0.1:2100{index}"),
            ca_pem: "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n".into(),
            token: format!("token-{index}"),
        }
    }

    #[test]
    fn merged_kubeconfig_has_kind_style_contexts() {
        let (a, b) = (access(0), access(1));
        let config = parse(&kubeconfig_yaml(&[&a, &b])).unwrap();
        assert_eq!(config.current_context.as_deref(), Some("kind-k8ssandra-0"));
        let contexts: Vec<_> = config.contexts.iter().map(|c| c.name.as_str()).collect();
        assert_eq!(contexts, ["kind-k8ssandra-0", "kind-k8ssandra-1"]);
        let second = config.clusters[1].cluster.as_ref().unwrap();
        assert_eq!(second.server.as_deref(), Some("https://127.0.0.1:21001"));
        let ca = second.certificate_authority_data.as_deref().unwrap();
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(ca)
            .unwrap();
        assert_eq!(decoded, a.ca_pem.as_bytes());
        let context = config.contexts[1].context.as_ref().unwrap();
        assert_eq!(context.user.as_deref(), Some("kind-k8ssandra-1"));
    }
}
