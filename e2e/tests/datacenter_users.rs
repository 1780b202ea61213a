//! Users: the superuser Secret and `spec.users` become Cassandra roles once the datacenter is up,
//! a password change updates the role, a missing user Secret is reported, and no password ever
//! shows in an Event or the status.
#![allow(clippy::expect_used)]

use std::time::Duration;

use k8s_openapi::api::core::v1::Secret;
use k8ssandra_api::{cassandra::condition, labels};
use k8ssandra_e2e::{
    scenario::{NAMESPACE, Scenario, condition},
    wait,
};
use kube::{
    Api, ResourceExt,
    api::{Patch, PatchParams, PostParams},
};

const LIMIT: Duration = Duration::from_secs(60);

fn value(secret: &Secret, key: &str) -> String {
    secret
        .data
        .as_ref()
        .and_then(|d| d.get(key))
        .map(|v| String::from_utf8_lossy(&v.0).into_owned())
        .expect("key")
}

fn user_secret(name: &str, username: &str, password: &str) -> Secret {
    let mut secret = Secret::default();
    secret.metadata.name = Some(name.into());
    secret.string_data = Some(
        [
            ("username".to_owned(), username.to_owned()),
            ("password".to_owned(), password.to_owned()),
        ]
        .into(),
    );
    secret
}

#[tokio::test]
async fn roles_follow_the_secrets_and_no_password_leaks() {
    let (scenario, _) = Scenario::with_sample("dc_users")
        .await
        .expect("dc1 comes up");
    let secrets: Api<Secret> = Api::namespaced(scenario.cluster().client(), NAMESPACE);

    // The generated superuser Secret became a superuser role with its password.
    let superuser = secrets.get("cluster1-superuser").await.expect("secret");
    let username = value(&superuser, "username");
    let password = value(&superuser, "password");
    let role = wait::until("the superuser role", LIMIT, || async {
        scenario.mgmt.cassandra().role(&username)
    })
    .await
    .expect("superuser role");
    assert!(role.superuser && role.login);
    assert_eq!(role.password, password);
    let superuser = secrets.get("cluster1-superuser").await.expect("secret");
    assert_eq!(
        superuser.labels().get(labels::WATCHED).map(String::as_str),
        Some("true")
    );
    assert_eq!(
        superuser
            .annotations()
            .get(labels::annotations::WATCHED_BY)
            .map(String::as_str),
        Some(r#"["cass/dc1"]"#)
    );
    scenario
        .wait_for("dc1", "usersUpserted", |dc| {
            dc.status
                .as_ref()
                .is_some_and(|s| s.users_upserted.is_some() && s.super_user_upserted.is_some())
        })
        .await
        .expect("recorded");
    assert!(
        !scenario
            .event_notes(NAMESPACE, "dc1", "CreatedSuperuser")
            .await
            .expect("events")
            .is_empty()
    );

    // A user that names a Secret not made yet: reported, and nothing else happens.
    scenario
        .patch_spec(
            "dc1",
            serde_json::json!({ "users": [{ "secretName": "app-user", "superuser": false }] }),
        )
        .await
        .expect("users");
    let dc_missing = scenario
        .wait_for("dc1", "Valid=False UserSecretMissing", |dc| {
            condition(dc, condition::VALID)
                .is_some_and(|c| !c.is_true() && c.reason.as_deref() == Some("UserSecretMissing"))
        })
        .await
        .expect("reported");
    let message = condition(&dc_missing, condition::VALID)
        .and_then(|c| c.message.clone())
        .unwrap_or_default();
    assert!(message.contains("app-user"), "{message}");

    // Once the Secret exists, the role is made; a password change updates it.
    secrets
        .create(
            &PostParams::default(),
            &user_secret("app-user", "app", "first-pw"),
        )
        .await
        .expect("user secret");
    wait::until("role app with the first password", LIMIT, || async {
        let role = scenario.mgmt.cassandra().role("app")?;
        (role.password == "first-pw" && !role.superuser).then_some(())
    })
    .await
    .expect("role app");
    let patch = serde_json::json!({ "stringData": { "password": "second-pw" } });
    secrets
        .patch("app-user", &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .expect("password changed");
    wait::until("role app with the second password", LIMIT, || async {
        let role = scenario.mgmt.cassandra().role("app")?;
        (role.password == "second-pw").then_some(())
    })
    .await
    .expect("password updated");
    assert!(
        !scenario
            .event_notes(NAMESPACE, "dc1", "CreatedUsers")
            .await
            .expect("events")
            .is_empty()
    );

    // The superuser Secret deleted by mistake: made anew, said so, and the role follows it.
    secrets
        .delete("cluster1-superuser", &Default::default())
        .await
        .expect("deleted");
    let renewed = wait::until("a new superuser Secret", LIMIT, || async {
        let secret = secrets.get_opt("cluster1-superuser").await.ok()??;
        let new = value(&secret, "password");
        (new != password).then_some(new)
    })
    .await
    .expect("recreated");
    wait::until(
        "the superuser role with the new password",
        LIMIT,
        || async {
            let role = scenario.mgmt.cassandra().role(&username)?;
            (role.password == renewed).then_some(())
        },
    )
    .await
    .expect("role updated");
    assert!(
        !scenario
            .event_notes(NAMESPACE, "dc1", "SuperuserSecretRecreated")
            .await
            .expect("events")
            .is_empty()
    );

    // No password anywhere a user or a log collector reads.
    let dc_now = scenario.datacenters().get("dc1").await.expect("dc");
    let status = serde_json::to_string(&dc_now.status).expect("status");
    let events = scenario
        .cluster()
        .client()
        .request_text(
            http::Request::get(format!("/api/v1/namespaces/{NAMESPACE}/events"))
                .body(Vec::new())
                .expect("request"),
        )
        .await
        .expect("events");
    for secret in [password.as_str(), renewed.as_str(), "first-pw", "second-pw"] {
        assert!(!status.contains(secret), "a password in the status");
        assert!(!events.contains(secret), "a password in an Event");
    }
}

#[tokio::test]
async fn skip_user_creation_makes_no_role() {
    let scenario = Scenario::start("dc_users_skip", "cluster1")
        .await
        .expect("fleet");
    let sample = k8ssandra_e2e::scenario::THREE_RACK_SAMPLE.replacen(
        "metadata:\n",
        "metadata:\n  annotations:\n    cassandra.datastax.com/skip-user-creation: \"true\"\n",
        1,
    );
    assert_ne!(sample, k8ssandra_e2e::scenario::THREE_RACK_SAMPLE);
    scenario.apply(&sample).await.expect("applied");
    scenario.wait_converged("dc1", 3).await.expect("up");
    let secrets: Api<Secret> = Api::namespaced(scenario.cluster().client(), NAMESPACE);
    let superuser = secrets.get("cluster1-superuser").await.expect("secret");
    let username = value(&superuser, "username");
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert!(scenario.mgmt.cassandra().role(&username).is_none());
}
