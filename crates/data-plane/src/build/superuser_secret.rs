//! The superuser Secret, `<cluster>-superuser`, generated when `superuserSecretName` is empty:
//! `username` `<cluster>-superuser` (cleaned up for Kubernetes), and a generated `password` (see
//! [`k8ssandra_reconcile::password`]).
//!
//! It is born marked as read by this datacenter (the watched label and watched-by annotation), so
//! that the watch on marked Secrets sees it at once and its password reaches the role.
//!
//! The Secret carries the operator's labels but **no owner reference**, as upstream: it holds the
//! credentials of the whole Cassandra cluster, which other datacenters share and which must outlive
//! the deletion of this one.

use std::collections::BTreeMap;

use k8s_openapi::{
    ByteString, api::core::v1::Secret, apimachinery::pkg::apis::meta::v1::ObjectMeta,
};
use k8ssandra_api::{cassandra::CassandraDatacenter, labels, names};
pub use k8ssandra_reconcile::password::{PASSWORD_RANDOM_BYTES, password_from_random};

use super::{cluster_name, non_empty, operator_labels};

/// `namespace/name` of the datacenter, as the watched-by annotation lists it.
#[must_use]
pub fn watcher_name(dc: &CassandraDatacenter) -> String {
    format!(
        "{}/{}",
        dc.metadata.namespace.as_deref().unwrap_or_default(),
        dc.metadata.name.as_deref().unwrap_or_default()
    )
}

/// Username of the generated superuser.
#[must_use]
pub fn superuser_username(dc: &CassandraDatacenter) -> String {
    names::default_superuser_secret(cluster_name(dc))
}

/// Whether the operator generates the superuser Secret (no `superuserSecretName`).
#[must_use]
pub fn generates_superuser_secret(dc: &CassandraDatacenter) -> bool {
    dc.spec
        .superuser_secret_name
        .as_deref()
        .is_none_or(str::is_empty)
}

/// The generated superuser Secret, with the password made from `random` (the caller draws the
/// bytes from a secure source); `None` when the spec names its own Secret.
#[must_use]
pub fn superuser_secret(
    dc: &CassandraDatacenter,
    random: &[u8; PASSWORD_RANDOM_BYTES],
) -> Option<Secret> {
    if !generates_superuser_secret(dc) {
        return None;
    }
    let mut watched_labels = operator_labels(dc);
    watched_labels.insert(labels::WATCHED.to_owned(), "true".to_owned());
    Some(Secret {
        metadata: ObjectMeta {
            name: Some(dc.spec.superuser_secret_name()),
            namespace: dc.metadata.namespace.clone(),
            labels: non_empty(watched_labels),
            annotations: Some(BTreeMap::from([(
                labels::annotations::WATCHED_BY.to_owned(),
                serde_json::Value::from(vec![watcher_name(dc)]).to_string(),
            )])),
            ..ObjectMeta::default()
        },
        data: Some(BTreeMap::from([
            (
                "username".to_owned(),
                ByteString(superuser_username(dc).into_bytes()),
            ),
            (
                "password".to_owned(),
                ByteString(password_from_random(random).into_bytes()),
            ),
        ])),
        ..Secret::default()
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8ssandra_api::cassandra::CassandraDatacenterSpec;

    #[test]
    fn passwords_use_the_url_safe_alphabet_and_fit_bcrypt() {
        let all_ones = [0xff_u8; PASSWORD_RANDOM_BYTES];
        let password = password_from_random(&all_ones);
        assert_eq!(password.len(), 54);
        // 320 random bits fill 53 full characters; the last one carries 2 bits.
        assert!(password[..53].chars().all(|c| c == '_'));
        let mut counting = [0_u8; PASSWORD_RANDOM_BYTES];
        for (i, b) in counting.iter_mut().enumerate() {
            *b = u8::try_from(i * 7).unwrap_or_default();
        }
        let password = password_from_random(&counting);
        assert_eq!(password.len(), 54);
        assert!(password.len() <= 55);
        assert!(
            password
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        );
        assert_eq!(password, password_from_random(&counting));
        assert_ne!(password, password_from_random(&all_ones));
    }

    #[test]
    fn the_secret_is_generated_only_without_a_named_one() {
        let mut dc = CassandraDatacenter::new(
            "dc1",
            CassandraDatacenterSpec {
                cluster_name: "Test_Cluster".into(),
                server_version: "4.1.5".into(),
                ..Default::default()
            },
        );
        dc.metadata.namespace = Some("cass".into());
        let secret = superuser_secret(&dc, &[1; PASSWORD_RANDOM_BYTES]).unwrap();
        assert_eq!(
            secret.metadata.name.as_deref(),
            Some("test-cluster-superuser")
        );
        let data = secret.data.unwrap();
        assert_eq!(data["username"].0, b"test-cluster-superuser");
        assert!(secret.metadata.owner_references.is_none());
        // Born watched, so that the watch on marked Secrets sees it.
        let labels = secret.metadata.labels.unwrap();
        assert_eq!(labels[labels::WATCHED], "true");
        let annotations = secret.metadata.annotations.unwrap();
        assert_eq!(
            annotations[labels::annotations::WATCHED_BY],
            r#"["cass/dc1"]"#
        );
        dc.spec.superuser_secret_name = Some("mine".into());
        assert!(superuser_secret(&dc, &[1; PASSWORD_RANDOM_BYTES]).is_none());
    }
}
