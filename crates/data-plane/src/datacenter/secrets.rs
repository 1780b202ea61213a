//! Secrets the datacenter refers to. The superuser Secret is generated when the spec names none
//! (and never touched again: its password is the cluster's); one the spec names must exist and
//! hold `username` and `password`, or the datacenter is `Valid=False` naming it.

use k8s_openapi::api::core::v1::Secret;
use k8ssandra_api::cassandra::CassandraDatacenter;
use k8ssandra_reconcile::{apply::apply, events::Severity};
use kube::{Api, Resource, ResourceExt};

use super::{Context, FIELD_MANAGER, validate::Problem};
use crate::build::superuser_secret;

/// Why the superuser Secret could not be read or made.
#[derive(Debug, thiserror::Error)]
pub enum SecretsError {
    /// The API server refused a read or a write.
    #[error("could not {what} Secret {name}: {source}")]
    Kube {
        /// What the pass tried.
        what: &'static str,
        /// The Secret.
        name: String,
        /// The API error.
        source: kube::Error,
    },
    /// No secure random bytes for the superuser password.
    #[error("no secure random bytes for the superuser password")]
    Random,
}

/// The keys a credentials Secret must hold.
const KEYS: [&str; 2] = ["username", "password"];

/// The non-empty value of `key` in a Secret.
#[must_use]
pub fn value(secret: &Secret, key: &str) -> Option<String> {
    let data = secret
        .data
        .as_ref()
        .and_then(|d| d.get(key))
        .map(|v| String::from_utf8_lossy(&v.0).into_owned());
    let string_data = secret
        .string_data
        .as_ref()
        .and_then(|d| d.get(key))
        .cloned();
    data.or(string_data).filter(|v| !v.is_empty())
}

/// The keys of `username` and `password` a credentials Secret lacks (or holds empty).
#[must_use]
pub fn missing_keys(secret: &Secret) -> Vec<&'static str> {
    KEYS.into_iter()
        .filter(|key| value(secret, key).is_none())
        .collect()
}

/// Checks the Secret the spec names for the superuser (`secret`, as read by the users step): it
/// must exist and hold non-empty `username` and `password`. `None` when it does, or when the
/// operator generates it.
#[must_use]
pub fn superuser_secret_problem(
    dc: &CassandraDatacenter,
    secret: Option<&Secret>,
) -> Option<Problem> {
    if superuser_secret::generates_superuser_secret(dc) {
        return None;
    }
    let name = dc.spec.superuser_secret_name();
    let Some(secret) = secret else {
        return Some(Problem {
            reason: "SuperuserSecretMissing",
            message: format!(
                "spec.superuserSecretName names Secret {name}, which does not exist in namespace \
                 {}; create it with keys username and password",
                dc.namespace().unwrap_or_default()
            ),
        });
    };
    let missing = missing_keys(secret);
    if missing.is_empty() {
        return None;
    }
    Some(Problem {
        reason: "SuperuserSecretInvalid",
        message: format!(
            "Secret {name} (spec.superuserSecretName) lacks key(s) {}: it needs a non-empty \
             username and password",
            missing.join(", ")
        ),
    })
}

/// Creates the generated superuser Secret when the spec names none and it does not `exist`; returns
/// how many Secrets were written. A Secret made for a datacenter that ran before (it was deleted)
/// carries a new password: a Warning Event says so.
///
/// # Errors
/// When the API server refuses the write.
pub async fn create_superuser_secret(
    ctx: &Context,
    dc: &CassandraDatacenter,
    exists: bool,
) -> Result<usize, SecretsError> {
    if exists || !superuser_secret::generates_superuser_secret(dc) {
        return Ok(0);
    }
    let api = Api::<Secret>::namespaced(ctx.client.clone(), &dc.namespace().unwrap_or_default());
    let name = dc.spec.superuser_secret_name();
    let error = |what| {
        let name = name.clone();
        move |source| SecretsError::Kube { what, name, source }
    };
    let random = k8ssandra_reconcile::password::random_bytes().map_err(|_| SecretsError::Random)?;
    let Some(secret) = superuser_secret::superuser_secret(dc, &random) else {
        return Ok(0);
    };
    let written = apply(&api, FIELD_MANAGER, &secret)
        .await
        .map_err(error("create"))?;
    ctx.caches.secrets.wrote(&written.metadata);
    if has_run(dc) {
        ctx.events
            .publish(
                &dc.object_ref(&()),
                Severity::Warning,
                "SuperuserSecretRecreated",
                "Create",
                format!(
                    "Secret {name} was deleted and has been made anew with a new password; the \
                     superuser role takes it once the datacenter is settled, and clients reading \
                     the new Secret cannot log in until then"
                ),
            )
            .await;
    }
    Ok(1)
}

/// Whether the datacenter's nodes ran before (so its superuser role exists in Cassandra).
fn has_run(dc: &CassandraDatacenter) -> bool {
    dc.status
        .as_ref()
        .and_then(|s| s.node_statuses.as_ref())
        .is_some_and(|n| !n.is_empty())
}
