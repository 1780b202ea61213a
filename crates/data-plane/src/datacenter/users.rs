//! Users: the superuser and every `spec.users` entry become Cassandra roles through the Management
//! API (`POST /api/v0/ops/auth/role`) once the datacenter is as its spec asks, as upstream does.
//!
//! - The Secrets are marked as upstream marks them (label `cassandra.datastax.com/watched`,
//!   annotation `cassandra.datastax.com/watched-by` listing the datacenters), and the controller
//!   watches only Secrets so labelled: a password change starts a pass that updates the role.
//! - Unlike upstream, which upserts every role on every pass, a role set is upserted only when it
//!   changed since this process last did it (a SHA-256 of the credentials is remembered, never
//!   the password), so a steady-state pass makes no Management API write.
//! - `cassandra.datastax.com/skip-user-creation: "true"` skips it all.
//! - A password never reaches a log line, an Event, a status or an error: the Management API
//!   client scrubs it from its errors.

use k8s_openapi::api::core::v1::Secret;
use k8ssandra_api::{cassandra::CassandraDatacenter, labels};
use k8ssandra_mgmt_api::{ClientSettings, model::roles::NewRole};
use k8ssandra_reconcile::events::Severity;
use kube::{
    Api, Resource, ResourceExt,
    api::{Patch, PatchParams},
};

use super::{
    Context, done,
    observe::{Observed, is_ready, is_running, pod_ip},
    secrets::{missing_keys, value},
    validate::Problem,
};

/// Why the roles could not be made.
#[derive(Debug, thiserror::Error)]
pub enum UsersError {
    /// The API server refused a read or a write of a Secret.
    #[error("could not {what} Secret {name}: {source}")]
    Kube {
        /// What the pass tried.
        what: &'static str,
        /// The Secret.
        name: String,
        /// The API error.
        source: kube::Error,
    },
    /// The Management API refused a role (the error never carries the password).
    #[error("could not create or update role {username} on {pod}: {source}")]
    Role {
        /// The role.
        username: String,
        /// The pod asked.
        pod: String,
        /// The Management API error.
        source: k8ssandra_mgmt_api::Error,
    },
}

/// A Secret the datacenter makes a role from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RoleSecret {
    /// Name of the Secret.
    pub secret: String,
    /// Whether the role is a superuser.
    pub superuser: bool,
    /// Where the spec names it, for messages.
    pub field: &'static str,
}

/// The Secrets of the datacenter's roles: the superuser's first, then `spec.users` in order.
#[must_use]
pub fn role_secrets(dc: &CassandraDatacenter) -> Vec<RoleSecret> {
    let mut secrets = vec![RoleSecret {
        secret: dc.spec.superuser_secret_name(),
        superuser: true,
        field: "spec.superuserSecretName",
    }];
    for user in dc.spec.users.iter().flatten() {
        secrets.push(RoleSecret {
            secret: user.secret_name.clone(),
            superuser: user.superuser,
            field: "spec.users",
        });
    }
    secrets
}

/// Whether the datacenter asks for no roles (`skip-user-creation`).
#[must_use]
pub fn skips_user_creation(dc: &CassandraDatacenter) -> bool {
    dc.annotations()
        .get(labels::annotations::SKIP_USER_CREATION)
        .is_some_and(|v| v == "true")
}

/// The datacenters a Secret's watched-by annotation lists (an unreadable one lists none).
#[must_use]
pub fn watchers(secret: &Secret) -> Vec<(String, String)> {
    secret
        .annotations()
        .get(labels::annotations::WATCHED_BY)
        .and_then(|v| serde_json::from_str::<Vec<String>>(v).ok())
        .unwrap_or_default()
        .into_iter()
        .filter_map(|entry| {
            let (namespace, name) = entry.rsplit_once('/')?;
            Some((namespace.to_owned(), name.to_owned()))
        })
        .collect()
}

/// The labels and annotations that mark `secret` as read by `dc` (or no longer, when `add` is
/// false); `None` when it is marked so already.
fn marking(secret: &Secret, dc: &CassandraDatacenter, add: bool) -> Option<serde_json::Value> {
    let me = crate::build::superuser_secret::watcher_name(dc);
    let mut list: Vec<String> = secret
        .annotations()
        .get(labels::annotations::WATCHED_BY)
        .and_then(|v| serde_json::from_str::<Vec<String>>(v).ok())
        .unwrap_or_default();
    let labelled = secret
        .labels()
        .get(labels::WATCHED)
        .is_some_and(|v| v == "true");
    let listed = list.contains(&me);
    if add && listed && labelled {
        return None;
    }
    if !add && !listed {
        return None;
    }
    if add {
        if !listed {
            list.push(me);
        }
    } else {
        list.retain(|w| *w != me);
    }
    let (label, annotation) = if list.is_empty() {
        (serde_json::Value::Null, serde_json::Value::Null)
    } else {
        (
            serde_json::Value::from("true"),
            serde_json::Value::from(serde_json::to_string(&list).unwrap_or_default()),
        )
    };
    Some(serde_json::json!({
        "metadata": {
            "labels": { labels::WATCHED: label },
            "annotations": { labels::annotations::WATCHED_BY: annotation },
        }
    }))
}

/// The datacenter's role Secrets that exist, read from the watch cache once they are marked,
/// and marked (one merge patch each) when they are not yet. The Management API client Secret
/// (`managementApiAuth.manual`) is marked too, so that it is read from the cache and its rotation
/// starts a pass. Secrets it no longer reads are unmarked.
///
/// # Errors
/// When a Secret cannot be read or marked.
pub async fn read_role_secrets(
    ctx: &Context,
    dc: &CassandraDatacenter,
) -> Result<Vec<(RoleSecret, Secret)>, UsersError> {
    let wanted = role_secrets(dc);
    let mut found = Vec::new();
    for role in &wanted {
        if let Some(secret) = read_marked(ctx, dc, &role.secret).await? {
            found.push((role.clone(), secret));
        }
    }
    let client_secret = crate::mgmt_access::client_secret_name(dc);
    if let Some(name) = &client_secret {
        read_marked(ctx, dc, name).await?;
    }
    // Secrets this datacenter read before and reads no more.
    unmark(ctx, dc, |name| {
        wanted.iter().any(|w| w.secret == name) || client_secret.as_deref() == Some(name)
    })
    .await?;
    Ok(found)
}

/// The Secret `name` of the datacenter's namespace, from the cache once it is marked as read by
/// the datacenter, else read and marked; `None` when it does not exist.
async fn read_marked(
    ctx: &Context,
    dc: &CassandraDatacenter,
    name: &str,
) -> Result<Option<Secret>, UsersError> {
    let namespace = dc.namespace().unwrap_or_default();
    if let Some(cached) = ctx.caches.secrets.get(&namespace, name)
        && marking(&cached, dc, true).is_none()
    {
        return Ok(Some(Secret::clone(&cached)));
    }
    let api = Api::<Secret>::namespaced(ctx.client.clone(), &namespace);
    let Some(live) = api.get_opt(name).await.map_err(kube_error("read", name))? else {
        return Ok(None);
    };
    if let Some(patch) = marking(&live, dc, true) {
        let marked = api
            .patch(name, &PatchParams::default(), &Patch::Merge(&patch))
            .await
            .map_err(kube_error("mark", name))?;
        ctx.caches.secrets.wrote(marked.meta());
    }
    Ok(Some(live))
}

/// Takes the datacenter off every Secret it was marked on (it is being deleted).
///
/// # Errors
/// When a Secret cannot be unmarked.
pub async fn unmark_all(ctx: &Context, dc: &CassandraDatacenter) -> Result<(), UsersError> {
    unmark(ctx, dc, |_| false).await
}

/// Takes the datacenter off the cached Secrets of its namespace that it marked and `keep`s not.
async fn unmark(
    ctx: &Context,
    dc: &CassandraDatacenter,
    keep: impl Fn(&str) -> bool,
) -> Result<(), UsersError> {
    let namespace = dc.namespace().unwrap_or_default();
    let api = Api::<Secret>::namespaced(ctx.client.clone(), &namespace);
    for stale in
        ctx.caches.secrets.state().iter().filter(|s| {
            s.namespace().as_deref() == Some(namespace.as_str()) && !keep(&s.name_any())
        })
    {
        if let Some(patch) = marking(stale, dc, false) {
            let unmarked = api
                .patch(
                    &stale.name_any(),
                    &PatchParams::default(),
                    &Patch::Merge(&patch),
                )
                .await
                .map_err(kube_error("unmark", &stale.name_any()))?;
            ctx.caches.secrets.wrote(unmarked.meta());
        }
    }
    Ok(())
}

fn kube_error(what: &'static str, name: &str) -> impl FnOnce(kube::Error) -> UsersError {
    let name = name.to_owned();
    move |source| UsersError::Kube { what, name, source }
}

/// The superuser's Secret among those read, found by name.
#[must_use]
pub fn superuser_secret<'a>(
    dc: &CassandraDatacenter,
    secrets: &'a [(RoleSecret, Secret)],
) -> Option<&'a Secret> {
    let name = dc.spec.superuser_secret_name();
    secrets
        .iter()
        .find(|(role, _)| role.secret == name)
        .map(|(_, secret)| secret)
}

/// The first Secret of `spec.users` that is missing or lacks a key (the superuser's is checked
/// by the secrets step, which also generates it).
#[must_use]
pub fn user_secret_problem(
    dc: &CassandraDatacenter,
    secrets: &[(RoleSecret, Secret)],
) -> Option<Problem> {
    for role in role_secrets(dc).iter().skip(1) {
        let Some((_, secret)) = secrets.iter().find(|(r, _)| r.secret == role.secret) else {
            return Some(Problem {
                reason: "UserSecretMissing",
                message: format!(
                    "{} names Secret {}, which does not exist in namespace {}; create it with \
                     keys username and password",
                    role.field,
                    role.secret,
                    dc.namespace().unwrap_or_default()
                ),
            });
        };
        let missing = missing_keys(secret);
        if !missing.is_empty() {
            return Some(Problem {
                reason: "UserSecretInvalid",
                message: format!(
                    "Secret {} ({}) lacks key(s) {}: it needs a non-empty username and password",
                    role.secret,
                    role.field,
                    missing.join(", ")
                ),
            });
        }
    }
    None
}

/// The roles the Secrets make, in order.
#[must_use]
pub fn roles(secrets: &[(RoleSecret, Secret)]) -> Vec<NewRole> {
    secrets
        .iter()
        .filter_map(|(role, secret)| {
            Some(NewRole {
                username: value(secret, "username")?,
                password: value(secret, "password")?,
                is_superuser: role.superuser,
                can_login: true,
            })
        })
        .collect()
}

/// SHA-256 of a role set: what is remembered of it.
fn fingerprint(roles: &[NewRole]) -> [u8; 32] {
    let flags: Vec<[u8; 2]> = roles
        .iter()
        .map(|r| [u8::from(r.is_superuser), u8::from(r.can_login)])
        .collect();
    done::fingerprint(roles.iter().zip(&flags).flat_map(|(role, flags)| {
        [
            role.username.as_bytes(),
            role.password.as_bytes(),
            flags.as_slice(),
        ]
    }))
}

/// Upserts the roles when they changed since this process last did; true when it did. The
/// first ready, started pod is asked.
///
/// # Errors
/// When the Management API refuses a role; the pass is retried.
pub async fn upsert_roles(
    ctx: &Context,
    mgmt: &ClientSettings,
    dc: &CassandraDatacenter,
    observed: &Observed,
    roles: &[NewRole],
) -> Result<bool, UsersError> {
    if skips_user_creation(dc) || roles.is_empty() {
        return Ok(false);
    }
    let uid = dc.uid().unwrap_or_default();
    let print = fingerprint(roles);
    if ctx.roles.is_current(&uid, &print) {
        return Ok(false);
    }
    let Some((pod, ip)) = observed
        .pods
        .iter()
        .filter(|p| is_ready(p) && is_running(p))
        .find_map(|p| Some((p.name_any(), pod_ip(p)?)))
    else {
        return Ok(false);
    };
    let client = mgmt.client(&pod, ip);
    for role in roles {
        client
            .create_role(role)
            .await
            .map_err(|source| UsersError::Role {
                username: role.username.clone(),
                pod: pod.clone(),
                source,
            })?;
    }
    ctx.roles.record(&uid, print);
    let (superusers, users): (Vec<&NewRole>, Vec<&NewRole>) =
        roles.iter().partition(|r| r.is_superuser);
    let names = |list: &[&NewRole]| {
        list.iter()
            .map(|r| r.username.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    };
    let reference = dc.object_ref(&());
    if !superusers.is_empty() {
        ctx.events
            .publish(
                &reference,
                Severity::Normal,
                "CreatedSuperuser",
                "CreateUsers",
                format!(
                    "created or updated superuser role(s) {}",
                    names(&superusers)
                ),
            )
            .await;
    }
    if !users.is_empty() {
        ctx.events
            .publish(
                &reference,
                Severity::Normal,
                "CreatedUsers",
                "CreateUsers",
                format!("created or updated role(s) {}", names(&users)),
            )
            .await;
    }
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::ByteString;
    use k8ssandra_api::cassandra::{CassandraDatacenterSpec, CassandraUser};
    use std::collections::BTreeMap;

    fn dc() -> CassandraDatacenter {
        let mut dc = CassandraDatacenter::new(
            "dc1",
            CassandraDatacenterSpec {
                cluster_name: "demo".into(),
                server_version: "4.1.5".into(),
                users: Some(vec![CassandraUser {
                    secret_name: "app".into(),
                    superuser: false,
                }]),
                ..Default::default()
            },
        );
        dc.metadata.namespace = Some("ns".into());
        dc
    }

    fn secret(name: &str, username: &str, password: &str) -> Secret {
        let mut s = Secret::default();
        s.metadata.name = Some(name.into());
        s.data = Some(BTreeMap::from([
            ("username".into(), ByteString(username.into())),
            ("password".into(), ByteString(password.into())),
        ]));
        s
    }

    #[test]
    fn the_superuser_comes_first_then_the_users() {
        let secrets = role_secrets(&dc());
        assert_eq!(secrets[0].secret, "demo-superuser");
        assert!(secrets[0].superuser);
        assert_eq!(secrets[1].secret, "app");
        assert!(!secrets[1].superuser);
    }

    #[test]
    fn marking_adds_this_datacenter_once_and_removes_only_it() {
        let dc = dc();
        let plain = secret("app", "a", "b");
        let patch = marking(&plain, &dc, true).expect("marked");
        assert_eq!(patch["metadata"]["labels"][labels::WATCHED], "true");
        assert_eq!(
            patch["metadata"]["annotations"][labels::annotations::WATCHED_BY],
            r#"["ns/dc1"]"#
        );
        let mut marked = plain.clone();
        marked.metadata.labels = Some(BTreeMap::from([(labels::WATCHED.into(), "true".into())]));
        marked.metadata.annotations = Some(BTreeMap::from([(
            labels::annotations::WATCHED_BY.into(),
            r#"["other/dc2","ns/dc1"]"#.into(),
        )]));
        assert!(marking(&marked, &dc, true).is_none(), "already marked");
        assert_eq!(
            watchers(&marked),
            vec![
                ("other".to_owned(), "dc2".to_owned()),
                ("ns".to_owned(), "dc1".to_owned())
            ]
        );
        let unmark = marking(&marked, &dc, false).expect("unmarked");
        assert_eq!(
            unmark["metadata"]["annotations"][labels::annotations::WATCHED_BY],
            r#"["other/dc2"]"#
        );
        let mut last = marked.clone();
        last.metadata.annotations = Some(BTreeMap::from([(
            labels::annotations::WATCHED_BY.into(),
            r#"["ns/dc1"]"#.into(),
        )]));
        let unmark = marking(&last, &dc, false).expect("unmarked");
        assert!(unmark["metadata"]["labels"][labels::WATCHED].is_null());
        assert!(unmark["metadata"]["annotations"][labels::annotations::WATCHED_BY].is_null());
    }

    #[test]
    fn a_generated_superuser_secret_needs_no_marking() {
        let dc = dc();
        let generated = crate::build::superuser_secret::superuser_secret(&dc, &[7; 40]).unwrap();
        assert!(marking(&generated, &dc, true).is_none());
    }

    #[test]
    fn a_missing_or_keyless_user_secret_is_a_problem_that_names_it() {
        let dc = dc();
        let superuser = (
            role_secrets(&dc)[0].clone(),
            secret("demo-superuser", "s", "p"),
        );
        let problem = user_secret_problem(&dc, std::slice::from_ref(&superuser)).expect("missing");
        assert_eq!(problem.reason, "UserSecretMissing");
        assert!(problem.message.contains("app"), "{}", problem.message);
        let keyless = (role_secrets(&dc)[1].clone(), secret("app", "a", ""));
        let problem = user_secret_problem(&dc, &[superuser.clone(), keyless]).expect("keyless");
        assert_eq!(problem.reason, "UserSecretInvalid");
        assert!(!problem.message.contains("\"a\""));
        let good = (role_secrets(&dc)[1].clone(), secret("app", "a", "pw"));
        assert!(user_secret_problem(&dc, &[superuser, good]).is_none());
    }

    #[test]
    fn a_password_change_changes_the_fingerprint() {
        let one = |password: &str| NewRole {
            username: "app".into(),
            password: password.into(),
            is_superuser: false,
            can_login: true,
        };
        assert_eq!(fingerprint(&[one("a")]), fingerprint(&[one("a")]));
        assert_ne!(fingerprint(&[one("a")]), fingerprint(&[one("b")]));
        let superuser = NewRole {
            is_superuser: true,
            ..one("a")
        };
        assert_ne!(fingerprint(&[one("a")]), fingerprint(&[superuser]));
    }
}
