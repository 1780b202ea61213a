//! `k8ssandra-operator clientconfig create`: gives the control plane access to a remote cluster.
//! In the remote cluster it makes a ServiceAccount with a long-lived token and exactly the RBAC
//! the control plane uses there; it returns the kubeconfig Secret and the ClientConfig that the
//! control-plane cluster needs (upstream's `create-clientconfig.sh`, without a shell).

use std::{collections::BTreeMap, time::Duration};

use k8s_openapi::{
    ByteString,
    api::{
        core::v1::{LocalObjectReference, Namespace, Secret, ServiceAccount},
        rbac::v1::{ClusterRole, ClusterRoleBinding, PolicyRule, RoleRef, Subject},
    },
    apimachinery::pkg::apis::meta::v1::ObjectMeta,
};
use k8ssandra_api::{
    config::{ClientConfig, ClientConfigSpec},
    labels, names,
};
use k8ssandra_reconcile::apply::apply;
use kube::{Api, Client, api::PostParams};

/// Field manager of the writes.
const FIELD_MANAGER: &str = "k8ssandra-operator-clientconfig";
/// How long the token controller is waited for.
const TOKEN_WAIT: Duration = Duration::from_secs(60);

/// What to make.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Request {
    /// The remote cluster's context name, as datacenters name it in `k8sContext`.
    pub context: String,
    /// Where the ServiceAccount goes in the remote cluster, and the Secret and ClientConfig in
    /// the control-plane cluster.
    pub namespace: String,
    /// The ServiceAccount's name.
    pub service_account: String,
    /// The remote API server's URL, as the control plane reaches it.
    pub server: String,
}

/// Why access could not be made.
#[derive(Debug, thiserror::Error)]
pub enum CreateError {
    /// The remote API server refused a write.
    #[error("could not {what} in context {context}: {source}")]
    Kube {
        /// What was tried.
        what: String,
        /// The context.
        context: String,
        /// The API error.
        source: kube::Error,
    },
    /// The token controller did not fill the token Secret in time.
    #[error(
        "the token of ServiceAccount {namespace}/{account} in context {context} was not issued within {seconds} s: is kube-controller-manager running with --service-account-private-key-file?"
    )]
    NoToken {
        /// The context.
        context: String,
        /// Namespace of the ServiceAccount.
        namespace: String,
        /// Its name.
        account: String,
        /// How long was waited.
        seconds: u64,
    },
}

/// What the control-plane cluster gets: the kubeconfig Secret and the ClientConfig.
#[derive(Clone, Debug)]
pub struct Access {
    /// The Secret whose `kubeconfig` key holds the kubeconfig.
    pub secret: Secret,
    /// The ClientConfig naming it.
    pub client_config: ClientConfig,
}

/// The ClusterRole of the control plane in a remote cluster: what its watches and writes there
/// need, nothing more (checked by the multi-cluster tests, which use it).
#[must_use]
pub fn remote_rules() -> Vec<PolicyRule> {
    let rule = |groups: &[&str], resources: &[&str], verbs: &[&str]| PolicyRule {
        api_groups: Some(groups.iter().map(|g| (*g).to_owned()).collect()),
        resources: Some(resources.iter().map(|r| (*r).to_owned()).collect()),
        verbs: verbs.iter().map(|v| (*v).to_owned()).collect(),
        ..PolicyRule::default()
    };
    let all = [
        "get", "list", "watch", "create", "update", "patch", "delete",
    ];
    vec![
        // Each datacenter's CassandraDatacenter, applied and deleted.
        rule(&["cassandra.datastax.com"], &["cassandradatacenters"], &all),
        // The cluster's operations and the K8ssandraTasks' CassandraTasks.
        rule(
            &["control.k8ssandra.io"],
            &["cassandratasks"],
            &["get", "list", "watch", "create", "delete"],
        ),
        // The superuser Secret's copies.
        rule(&[""], &["secrets"], &all),
        // Seed pods' addresses.
        rule(&[""], &["pods"], &["list", "watch"]),
        // The other datacenters' seeds behind each additional-seed Service.
        rule(&["discovery.k8s.io"], &["endpointslices"], &all),
    ]
}

/// A name made of `context` that Kubernetes takes.
fn object_name(context: &str) -> String {
    names::cleanup_for_kubernetes(context)
}

/// The remote objects (pure): the ServiceAccount, its token Secret, the ClusterRole and its
/// binding.
#[must_use]
pub fn remote_objects(
    request: &Request,
) -> (ServiceAccount, Secret, ClusterRole, ClusterRoleBinding) {
    let managed = || {
        Some(BTreeMap::from([(
            labels::MANAGED_BY.to_owned(),
            labels::CONTROL_PLANE_MANAGER.to_owned(),
        )]))
    };
    let account = ServiceAccount {
        metadata: ObjectMeta {
            name: Some(request.service_account.clone()),
            namespace: Some(request.namespace.clone()),
            labels: managed(),
            ..ObjectMeta::default()
        },
        ..ServiceAccount::default()
    };
    let token = Secret {
        metadata: ObjectMeta {
            name: Some(format!("{}-token", request.service_account)),
            namespace: Some(request.namespace.clone()),
            labels: managed(),
            annotations: Some(BTreeMap::from([(
                "kubernetes.io/service-account.name".to_owned(),
                request.service_account.clone(),
            )])),
            ..ObjectMeta::default()
        },
        type_: Some("kubernetes.io/service-account-token".to_owned()),
        ..Secret::default()
    };
    let role_name = format!("{}-{}", request.namespace, request.service_account);
    let role = ClusterRole {
        metadata: ObjectMeta {
            name: Some(role_name.clone()),
            labels: managed(),
            ..ObjectMeta::default()
        },
        rules: Some(remote_rules()),
        ..ClusterRole::default()
    };
    let binding = ClusterRoleBinding {
        metadata: ObjectMeta {
            name: Some(role_name.clone()),
            labels: managed(),
            ..ObjectMeta::default()
        },
        role_ref: RoleRef {
            api_group: "rbac.authorization.k8s.io".to_owned(),
            kind: "ClusterRole".to_owned(),
            name: role_name,
        },
        subjects: Some(vec![Subject {
            kind: "ServiceAccount".to_owned(),
            name: request.service_account.clone(),
            namespace: Some(request.namespace.clone()),
            ..Subject::default()
        }]),
    };
    (account, token, role, binding)
}

/// The kubeconfig of the token (pure).
#[must_use]
pub fn kubeconfig(request: &Request, ca_data: Option<&[u8]>, token: &str) -> String {
    use base64::Engine as _;
    let mut cluster = serde_json::json!({ "server": request.server });
    if let Some(ca) = ca_data {
        cluster["certificate-authority-data"] =
            base64::engine::general_purpose::STANDARD.encode(ca).into();
    }
    let value = serde_json::json!({
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{ "name": request.context, "cluster": cluster }],
        "users": [{ "name": request.service_account, "user": { "token": token } }],
        "contexts": [{ "name": request.context, "context": {
            "cluster": request.context, "user": request.service_account } }],
        "current-context": request.context,
    });
    serde_yaml::to_string(&value).unwrap_or_default()
}

/// The control-plane objects (pure): the kubeconfig Secret and the ClientConfig.
#[must_use]
pub fn control_plane_objects(request: &Request, kubeconfig: &str) -> Access {
    let name = object_name(&request.context);
    let secret_name = format!("{name}-kubeconfig");
    let secret = Secret {
        metadata: ObjectMeta {
            name: Some(secret_name.clone()),
            namespace: Some(request.namespace.clone()),
            labels: Some(BTreeMap::from([(
                labels::MANAGED_BY.to_owned(),
                labels::CONTROL_PLANE_MANAGER.to_owned(),
            )])),
            ..ObjectMeta::default()
        },
        data: Some(BTreeMap::from([(
            "kubeconfig".to_owned(),
            ByteString(kubeconfig.as_bytes().to_vec()),
        )])),
        ..Secret::default()
    };
    let mut client_config = ClientConfig::new(
        &name,
        ClientConfigSpec {
            context_name: Some(request.context.clone()),
            kube_config_secret: LocalObjectReference { name: secret_name },
        },
    );
    client_config.metadata.namespace = Some(request.namespace.clone());
    Access {
        secret,
        client_config,
    }
}

/// Makes the ServiceAccount, its token and its RBAC in the remote cluster of `remote`, waits
/// for the token, and returns what the control-plane cluster needs.
///
/// # Errors
/// When a write is refused or the token is not issued.
pub async fn create(remote: &Client, request: &Request) -> Result<Access, CreateError> {
    let kube = |what: String| {
        let context = request.context.clone();
        move |source| CreateError::Kube {
            what,
            context,
            source,
        }
    };
    let namespaces = Api::<Namespace>::all(remote.clone());
    if namespaces
        .get_opt(&request.namespace)
        .await
        .map_err(kube(format!("read namespace {}", request.namespace)))?
        .is_none()
    {
        let namespace = Namespace {
            metadata: ObjectMeta {
                name: Some(request.namespace.clone()),
                ..ObjectMeta::default()
            },
            ..Namespace::default()
        };
        match namespaces.create(&PostParams::default(), &namespace).await {
            Ok(_) => {}
            Err(kube::Error::Api(status)) if status.code == 409 => {}
            Err(source) => {
                return Err(kube(format!("create namespace {}", request.namespace))(
                    source,
                ));
            }
        }
    }
    let (account, token, role, binding) = remote_objects(request);
    apply(
        &Api::<ServiceAccount>::namespaced(remote.clone(), &request.namespace),
        FIELD_MANAGER,
        &account,
    )
    .await
    .map_err(kube(format!(
        "apply ServiceAccount {}",
        request.service_account
    )))?;
    let secrets = Api::<Secret>::namespaced(remote.clone(), &request.namespace);
    apply(&secrets, FIELD_MANAGER, &token)
        .await
        .map_err(kube("apply the token Secret".to_owned()))?;
    apply(
        &Api::<ClusterRole>::all(remote.clone()),
        FIELD_MANAGER,
        &role,
    )
    .await
    .map_err(kube("apply the ClusterRole".to_owned()))?;
    apply(
        &Api::<ClusterRoleBinding>::all(remote.clone()),
        FIELD_MANAGER,
        &binding,
    )
    .await
    .map_err(kube("apply the ClusterRoleBinding".to_owned()))?;
    let token_name = token.metadata.name.clone().unwrap_or_default();
    let deadline = tokio::time::Instant::now() + TOKEN_WAIT;
    let (token, ca) = loop {
        let issued = secrets
            .get(&token_name)
            .await
            .map_err(kube(format!("read Secret {token_name}")))?;
        let data = issued.data.unwrap_or_default();
        if let Some(token) = data.get("token").filter(|t| !t.0.is_empty()) {
            break (
                String::from_utf8_lossy(&token.0).into_owned(),
                data.get("ca.crt").map(|c| c.0.clone()),
            );
        }
        if tokio::time::Instant::now() >= deadline {
            return Err(CreateError::NoToken {
                context: request.context.clone(),
                namespace: request.namespace.clone(),
                account: request.service_account.clone(),
                seconds: TOKEN_WAIT.as_secs(),
            });
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    };
    Ok(control_plane_objects(
        request,
        &kubeconfig(request, ca.as_deref(), &token),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request() -> Request {
        Request {
            context: "kind-k8ssandra-1".into(),
            namespace: "k8ssandra-operator".into(),
            service_account: "k8ssandra-control-plane".into(),
            server: "https://10.0.0.1:6443".into(),
        }
    }

    #[test]
    fn the_remote_role_is_exactly_what_the_control_plane_does_there() {
        let (account, token, role, binding) = remote_objects(&request());
        assert_eq!(
            account.metadata.namespace.as_deref(),
            Some("k8ssandra-operator")
        );
        assert_eq!(
            token.type_.as_deref(),
            Some("kubernetes.io/service-account-token")
        );
        let rules = role.rules.unwrap();
        let secrets = rules
            .iter()
            .find(|r| r.resources.as_deref() == Some(&["secrets".to_owned()][..]))
            .unwrap();
        assert!(secrets.verbs.contains(&"delete".to_owned()));
        let pods = rules
            .iter()
            .find(|r| r.resources.as_deref() == Some(&["pods".to_owned()][..]))
            .unwrap();
        assert_eq!(pods.verbs, vec!["list", "watch"], "pods are only read");
        assert!(
            rules.iter().all(|r| !r.verbs.contains(&"*".to_owned())
                && !r.resources.iter().flatten().any(|x| x == "*")),
            "no wildcard"
        );
        assert_eq!(binding.role_ref.name, role.metadata.name.unwrap());
    }

    #[test]
    fn the_kubeconfig_and_the_client_config_name_the_context() {
        let text = kubeconfig(&request(), Some(b"PEM"), "t0k3n");
        let access = control_plane_objects(&request(), &text);
        assert_eq!(
            access.client_config.spec.context_name.as_deref(),
            Some("kind-k8ssandra-1")
        );
        assert_eq!(
            access.client_config.spec.kube_config_secret.name,
            "kind-k8ssandra-1-kubeconfig"
        );
        let stored = &access.secret.data.unwrap()["kubeconfig"];
        let parsed: serde_yaml::Value = serde_yaml::from_slice(&stored.0).unwrap();
        assert_eq!(parsed["current-context"], "kind-k8ssandra-1");
        assert_eq!(parsed["users"][0]["user"]["token"], "t0k3n");
        assert_eq!(
            parsed["clusters"][0]["cluster"]["certificate-authority-data"],
            "UEVN"
        );
    }
}
