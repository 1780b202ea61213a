//! A ClientConfig's kubeconfig: read from its Secret, checked, and turned into a client with
//! timeouts.
//!
//! Only what the Secret holds is used. A kubeconfig that names files (`token-file`,
//! `client-certificate`, `certificate-authority`, ...) or runs commands (`exec`, `auth-provider`)
//! is refused: whoever can write the Secret must not make the operator read its own files (its
//! service account token, say) or start programs.

use std::time::Duration;

use k8s_openapi::api::core::v1::Secret;
use k8ssandra_api::config::KUBECONFIG_KEY;
use kube::{
    Config,
    config::{KubeConfigOptions, Kubeconfig},
};

/// Longest wait for a TCP connection to a remote API server.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// Longest silence on a connection to a remote API server before the request fails, so that a
/// server that accepts connections but never answers cannot hang a pass or a watch.
pub const READ_TIMEOUT: Duration = Duration::from_secs(30);
/// Server-side timeout of remote watches: the API server ends each watch before [`READ_TIMEOUT`]
/// could, and the watcher resumes it from where it was.
pub const WATCH_TIMEOUT_SECONDS: u32 = 25;

/// Why a ClientConfig's Secret gives no usable kubeconfig. Messages name keys, contexts and
/// servers, never a credential.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum KubeconfigError {
    /// The Secret the ClientConfig names does not exist.
    #[error("Secret {secret} does not exist in namespace {namespace}")]
    SecretMissing {
        /// The Secret.
        secret: String,
        /// Its namespace (the ClientConfig's).
        namespace: String,
    },
    /// The Secret has no `kubeconfig` key.
    #[error("Secret {secret} has no key `{KUBECONFIG_KEY}`")]
    MissingKey {
        /// The Secret.
        secret: String,
    },
    /// The key does not hold a kubeconfig.
    #[error("key `{KUBECONFIG_KEY}` of Secret {secret} is not a kubeconfig: {problem}")]
    Malformed {
        /// The Secret.
        secret: String,
        /// Where the YAML is wrong (never its content, which may be a credential).
        problem: String,
    },
    /// The context is not in the kubeconfig.
    #[error("context {context} is not in the kubeconfig of Secret {secret} (it has: {available})")]
    ContextNotFound {
        /// The Secret.
        secret: String,
        /// The context asked for.
        context: String,
        /// The contexts it has.
        available: String,
    },
    /// The context is unusable as written.
    #[error("context {context} of the kubeconfig in Secret {secret}: {problem}")]
    Unusable {
        /// The Secret.
        secret: String,
        /// The context.
        context: String,
        /// What is wrong.
        problem: String,
    },
}

impl KubeconfigError {
    /// A short reason for conditions and Events.
    #[must_use]
    pub fn reason(&self) -> &'static str {
        match self {
            Self::SecretMissing { .. } => "SecretMissing",
            Self::MissingKey { .. } | Self::Malformed { .. } => "KubeconfigInvalid",
            Self::ContextNotFound { .. } => "ContextNotFound",
            Self::Unusable { .. } => "KubeconfigUnusable",
        }
    }
}

/// A checked kubeconfig context: what a client is built from.
#[derive(Clone, Debug)]
pub struct RemoteAccess {
    /// The context's name.
    pub context: String,
    /// The API server's URL.
    pub server: String,
    kubeconfig: Kubeconfig,
    /// Identifies the exact kubeconfig and context, so that a rotation is seen.
    pub fingerprint: String,
}

impl RemoteAccess {
    /// Reads context `context` from `secret`'s kubeconfig.
    ///
    /// # Errors
    /// When the key is missing, the YAML is not a kubeconfig, the context is absent, or it names
    /// files or commands.
    pub fn from_secret(secret: &Secret, context: &str) -> Result<Self, KubeconfigError> {
        let secret_name = secret.metadata.name.clone().unwrap_or_default();
        let bytes = secret
            .data
            .as_ref()
            .and_then(|data| data.get(KUBECONFIG_KEY))
            .map(|value| value.0.clone())
            .or_else(|| {
                let string_data = secret.string_data.as_ref()?;
                string_data
                    .get(KUBECONFIG_KEY)
                    .map(|v| v.clone().into_bytes())
            })
            .filter(|bytes| !bytes.is_empty())
            .ok_or_else(|| KubeconfigError::MissingKey {
                secret: secret_name.clone(),
            })?;
        Self::parse(&secret_name, &bytes, context)
    }

    /// Reads context `context` from the kubeconfig `bytes` of Secret `secret`.
    ///
    /// # Errors
    /// As [`RemoteAccess::from_secret`].
    pub fn parse(secret: &str, bytes: &[u8], context: &str) -> Result<Self, KubeconfigError> {
        let malformed = |problem: String| KubeconfigError::Malformed {
            secret: secret.to_owned(),
            problem,
        };
        let text = std::str::from_utf8(bytes).map_err(|_| malformed("not UTF-8 text".into()))?;
        let kubeconfig: Kubeconfig = serde_yaml::from_str(text).map_err(|error| {
            // serde_yaml's message can quote the document (a token): give only where it broke.
            malformed(match error.location() {
                Some(at) => format!("invalid at line {}, column {}", at.line(), at.column()),
                None => "invalid YAML".into(),
            })
        })?;
        let unusable = |problem: String| KubeconfigError::Unusable {
            secret: secret.to_owned(),
            context: context.to_owned(),
            problem,
        };
        let Some(named) = kubeconfig.contexts.iter().find(|c| c.name == context) else {
            let mut available: Vec<&str> = kubeconfig
                .contexts
                .iter()
                .map(|c| c.name.as_str())
                .collect();
            available.sort_unstable();
            return Err(KubeconfigError::ContextNotFound {
                secret: secret.to_owned(),
                context: context.to_owned(),
                available: if available.is_empty() {
                    "none".into()
                } else {
                    available.join(", ")
                },
            });
        };
        let selected = named
            .context
            .as_ref()
            .ok_or_else(|| unusable("it has no cluster".into()))?;
        let cluster = kubeconfig
            .clusters
            .iter()
            .find(|c| c.name == selected.cluster)
            .and_then(|c| c.cluster.as_ref())
            .ok_or_else(|| unusable(format!("cluster {} is not in it", selected.cluster)))?;
        let server = cluster
            .server
            .clone()
            .filter(|s| !s.is_empty())
            .ok_or_else(|| unusable(format!("cluster {} has no server", selected.cluster)))?;
        if cluster.certificate_authority.is_some() {
            return Err(unusable(
                "certificate-authority names a file; give certificate-authority-data".into(),
            ));
        }
        if let Some(user) = &selected.user {
            let auth = kubeconfig
                .auth_infos
                .iter()
                .find(|a| &a.name == user)
                .and_then(|a| a.auth_info.as_ref())
                .ok_or_else(|| unusable(format!("user {user} is not in it")))?;
            let refused = [
                ("tokenFile", auth.token_file.is_some()),
                ("client-certificate", auth.client_certificate.is_some()),
                ("client-key", auth.client_key.is_some()),
                ("exec", auth.exec.is_some()),
                ("auth-provider", auth.auth_provider.is_some()),
            ];
            let named: Vec<&str> = refused
                .iter()
                .filter(|(_, present)| *present)
                .map(|(field, _)| *field)
                .collect();
            if !named.is_empty() {
                return Err(unusable(format!(
                    "user {user} uses {}: only inline credentials (token, \
                     client-certificate-data, client-key-data) are used, never files or commands",
                    named.join(", ")
                )));
            }
        }
        let mut hash = ring::digest::Context::new(&ring::digest::SHA256);
        hash.update(context.as_bytes());
        hash.update(&[0]);
        hash.update(bytes);
        let fingerprint = hash
            .finish()
            .as_ref()
            .iter()
            .map(|byte| format!("{byte:02x}"))
            .collect();
        Ok(Self {
            context: context.to_owned(),
            server,
            kubeconfig,
            fingerprint,
        })
    }

    /// The control plane's own cluster, whose client is given, not built.
    #[must_use]
    pub fn local(server: &str) -> Self {
        Self {
            context: String::new(),
            server: server.to_owned(),
            kubeconfig: Kubeconfig::default(),
            fingerprint: String::new(),
        }
    }

    /// The client configuration of the context, with the remote timeouts.
    ///
    /// # Errors
    /// When the kubeconfig's credentials or certificates cannot be loaded.
    pub async fn config(&self) -> Result<Config, String> {
        let options = KubeConfigOptions {
            context: Some(self.context.clone()),
            ..KubeConfigOptions::default()
        };
        let mut config = Config::from_custom_kubeconfig(self.kubeconfig.clone(), &options)
            .await
            .map_err(|error| format!("cannot load context {}: {error}", self.context))?;
        config.connect_timeout = Some(CONNECT_TIMEOUT);
        config.read_timeout = Some(READ_TIMEOUT);
        config.write_timeout = Some(READ_TIMEOUT);
        // The read timeout counts from each request, not from when a pooled connection went idle.
        config.reset_reader_on_write = true;
        Ok(config)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const KUBECONFIG: &str = r#"
apiVersion: v1
kind: Config
clusters:
- name: one
  cluster:
    server: https://one.example:6443
    certificate-authority-data: Zm9v
contexts:
- name: kind-one
  context: { cluster: one, user: admin }
- name: kind-two
  context: { cluster: two, user: admin }
users:
- name: admin
  user: { token: the-secret-token }
current-context: kind-one
"#;

    #[test]
    fn a_context_of_the_kubeconfig_gives_its_server_and_a_stable_fingerprint() {
        let access = RemoteAccess::parse("s", KUBECONFIG.as_bytes(), "kind-one").unwrap();
        assert_eq!(access.server, "https://one.example:6443");
        let again = RemoteAccess::parse("s", KUBECONFIG.as_bytes(), "kind-one").unwrap();
        assert_eq!(access.fingerprint, again.fingerprint);
        let rotated = KUBECONFIG.replace("the-secret-token", "a-new-token");
        let rotated = RemoteAccess::parse("s", rotated.as_bytes(), "kind-one").unwrap();
        assert_ne!(access.fingerprint, rotated.fingerprint);
    }

    #[test]
    fn errors_name_the_secret_and_the_context_but_no_credential() {
        let missing = RemoteAccess::parse("s", KUBECONFIG.as_bytes(), "kind-three").unwrap_err();
        assert_eq!(
            missing.to_string(),
            "context kind-three is not in the kubeconfig of Secret s (it has: kind-one, kind-two)"
        );
        let no_cluster = RemoteAccess::parse("s", KUBECONFIG.as_bytes(), "kind-two").unwrap_err();
        assert!(no_cluster.to_string().contains("cluster two is not in it"));
        // A YAML error that would quote the token names only where it is.
        let broken = KUBECONFIG.replace(
            "user: { token: the-secret-token }",
            "user: [the-secret-token",
        );
        let error = RemoteAccess::parse("s", broken.as_bytes(), "kind-one").unwrap_err();
        let message = error.to_string();
        assert!(
            message
                .starts_with("key `kubeconfig` of Secret s is not a kubeconfig: invalid at line"),
            "{message}"
        );
        assert!(!message.contains("the-secret-token"), "{message}");
        let not_a_map = RemoteAccess::parse("s", b"the-secret-token", "kind-one").unwrap_err();
        assert!(
            !not_a_map.to_string().contains("the-secret-token"),
            "{not_a_map}"
        );
    }

    #[test]
    fn files_and_commands_are_refused() {
        let with_file = KUBECONFIG.replace(
            "token: the-secret-token",
            "tokenFile: /var/run/secrets/token",
        );
        let error = RemoteAccess::parse("s", with_file.as_bytes(), "kind-one").unwrap_err();
        assert!(error.to_string().contains("uses tokenFile"), "{error}");
        let with_exec = KUBECONFIG.replace(
            "user: { token: the-secret-token }",
            "user: { exec: { apiVersion: client.authentication.k8s.io/v1, command: sh } }",
        );
        let error = RemoteAccess::parse("s", with_exec.as_bytes(), "kind-one").unwrap_err();
        assert!(error.to_string().contains("uses exec"), "{error}");
        let with_ca_file = KUBECONFIG.replace(
            "certificate-authority-data: Zm9v",
            "certificate-authority: /etc/ca.crt",
        );
        let error = RemoteAccess::parse("s", with_ca_file.as_bytes(), "kind-one").unwrap_err();
        assert!(
            error
                .to_string()
                .contains("certificate-authority names a file"),
            "{error}"
        );
    }

    #[test]
    fn a_secret_without_the_key_says_so() {
        let secret = Secret {
            metadata: kube::api::ObjectMeta {
                name: Some("remote".into()),
                ..Default::default()
            },
            ..Secret::default()
        };
        assert_eq!(
            RemoteAccess::from_secret(&secret, "kind-one").unwrap_err(),
            KubeconfigError::MissingKey {
                secret: "remote".into()
            }
        );
    }
}
