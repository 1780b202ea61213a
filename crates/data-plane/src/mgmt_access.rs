//! How the controllers reach the Management API of a datacenter's pods: plain HTTP, or mutual TLS
//! with the certificates in the Secret `managementApiAuth.manual.clientSecretName` names (a
//! `kubernetes.io/tls` Secret with `ca.crt`).

use k8s_openapi::api::core::v1::Secret;
use k8ssandra_api::cassandra::CassandraDatacenter;
use k8ssandra_mgmt_api::{ClientSettings, MutualTls, TlsConfigError};
use k8ssandra_reconcile::cache::Cache;
use kube::{Api, Client, ResourceExt};

/// Why the Management API of a datacenter cannot be reached as configured.
#[derive(Debug, thiserror::Error)]
pub enum AccessError {
    /// The client Secret does not exist.
    #[error(
        "managementApiAuth.manual.clientSecretName names Secret {0}, which does not exist in the \
         datacenter's namespace"
    )]
    SecretMissing(String),
    /// The client Secret lacks a key.
    #[error("Secret {secret} (managementApiAuth.manual.clientSecretName) has no {key}")]
    KeyMissing {
        /// The Secret.
        secret: String,
        /// The missing key.
        key: &'static str,
    },
    /// The certificates do not make a TLS configuration.
    #[error("Secret {secret} (managementApiAuth.manual.clientSecretName): {source}")]
    Tls {
        /// The Secret.
        secret: String,
        /// What is wrong with its certificates.
        source: TlsConfigError,
    },
    /// The Secret could not be read.
    #[error("could not read Secret {secret}: {source}")]
    Read {
        /// The Secret.
        secret: String,
        /// The API error.
        source: kube::Error,
    },
}

impl AccessError {
    /// The CamelCase reason of a status condition.
    #[must_use]
    pub fn reason(&self) -> &'static str {
        "ManagementApiAuthInvalid"
    }
}

/// The Secret of the client certificates, when the datacenter asks for mutual TLS.
#[must_use]
pub fn client_secret_name(dc: &CassandraDatacenter) -> Option<String> {
    dc.spec
        .management_api_auth
        .as_ref()
        .and_then(|auth| auth.manual.as_ref())
        .map(|manual| manual.client_secret_name.clone())
}

/// `base` (timeouts, metrics) over the transport the datacenter asks for.
///
/// # Errors
/// When mutual TLS is asked for and its Secret is missing, incomplete or invalid.
pub async fn settings_for(
    client: &Client,
    secrets: &Cache<Secret>,
    base: &ClientSettings,
    dc: &CassandraDatacenter,
) -> Result<ClientSettings, AccessError> {
    let Some(name) = client_secret_name(dc) else {
        return Ok(base.clone());
    };
    let namespace = dc.namespace().unwrap_or_default();
    // The datacenter controller marks the Secret as watched; until then it is read afresh.
    let secret = match secrets.get(&namespace, &name) {
        Some(cached) => (*cached).clone(),
        None => Api::<Secret>::namespaced(client.clone(), &namespace)
            .get_opt(&name)
            .await
            .map_err(|source| AccessError::Read {
                secret: name.clone(),
                source,
            })?
            .ok_or_else(|| AccessError::SecretMissing(name.clone()))?,
    };
    let key = |key: &'static str| {
        secret
            .data
            .as_ref()
            .and_then(|data| data.get(key))
            .map(|bytes| String::from_utf8_lossy(&bytes.0).into_owned())
            .ok_or_else(|| AccessError::KeyMissing {
                secret: name.clone(),
                key,
            })
    };
    let tls = MutualTls::from_pem(&key("ca.crt")?, &key("tls.crt")?, &key("tls.key")?).map_err(
        |source| AccessError::Tls {
            secret: name.clone(),
            source,
        },
    )?;
    Ok(base.clone().with_mutual_tls(tls))
}
