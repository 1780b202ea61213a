//! ClientConfigs, live: the control plane picks up a ClientConfig and its kubeconfig Secret as
//! they are created, broken, fixed, rotated and deleted, with no restart; each ClientConfig's
//! `Reachable` condition names the server and the error, never a credential; one unreachable
//! cluster leaves the others alone.
#![allow(clippy::expect_used)]

use std::{collections::BTreeMap, time::Duration};

use k8s_openapi::{
    ByteString,
    api::{core::v1::Secret, events::v1::Event},
};
use k8ssandra_api::{
    cassandra::CassandraDatacenter,
    conditions::{Condition, ConditionStatus},
    config::ClientConfig,
};
use k8ssandra_control_plane::remote::{Health, Remote};
use k8ssandra_e2e::{ControlPlaneOperator, FleetConfig, LocalCluster, wait};
use kube::{
    Api, ResourceExt,
    api::{DeleteParams, Patch, PatchParams, PostParams},
};

const NAMESPACE: &str = "k8ssandra-operator";
const LIMIT: Duration = Duration::from_secs(60);

fn client_config(name: &str, context: &str, secret: &str) -> ClientConfig {
    serde_json::from_value(serde_json::json!({
        "apiVersion": "config.k8ssandra.io/v1beta1",
        "kind": "ClientConfig",
        "metadata": { "name": name },
        "spec": { "contextName": context, "kubeConfigSecret": { "name": secret } }
    }))
    .expect("ClientConfig")
}

/// Writes Secret `name` with `data` (created or replaced).
async fn put_secret(cluster: &LocalCluster, name: &str, data: &[(&str, &str)]) {
    let secret = Secret {
        metadata: kube::api::ObjectMeta {
            name: Some(name.into()),
            ..Default::default()
        },
        data: Some(
            data.iter()
                .map(|(k, v)| ((*k).to_owned(), ByteString(v.as_bytes().to_vec())))
                .collect::<BTreeMap<_, _>>(),
        ),
        ..Secret::default()
    };
    let api: Api<Secret> = Api::namespaced(cluster.client(), NAMESPACE);
    // Replacing `data` whole: a merge would keep keys the test removes.
    let patch = serde_json::json!({ "data": secret.data });
    if api.get_opt(name).await.expect("read").is_some() {
        api.patch(
            name,
            &PatchParams::default(),
            &Patch::Merge(&serde_json::json!({ "data": null })),
        )
        .await
        .expect("clear");
        api.patch(name, &PatchParams::default(), &Patch::Merge(&patch))
            .await
            .expect("replace");
    } else {
        api.create(&PostParams::default(), &secret)
            .await
            .expect("create");
    }
}

fn reachable(cc: &ClientConfig) -> Option<Condition> {
    cc.status
        .as_ref()?
        .conditions
        .as_ref()?
        .iter()
        .find(|c| c.type_ == "Reachable")
        .cloned()
}

/// Waits until ClientConfig `name`'s `Reachable` has `status` and `reason` and its message holds
/// `text`; returns the message.
async fn wait_condition(
    api: &Api<ClientConfig>,
    name: &str,
    status: ConditionStatus,
    reason: &str,
    text: &str,
) -> String {
    let what = format!("{name} Reachable={status:?} ({reason}) saying {text:?}");
    let (reason, text) = (reason.to_owned(), text.to_owned());
    let cc = wait::object(api, name, &what, LIMIT, move |cc: &ClientConfig| {
        reachable(cc).is_some_and(|c| {
            c.status == status
                && c.reason.as_deref() == Some(reason.as_str())
                && c.message
                    .as_deref()
                    .is_some_and(|m| m.contains(text.as_str()))
        })
    })
    .await
    .unwrap_or_else(|error| panic!("{error}"));
    reachable(&cc).and_then(|c| c.message).unwrap_or_default()
}

fn datacenter(name: &str) -> CassandraDatacenter {
    serde_json::from_value(serde_json::json!({
        "apiVersion": "cassandra.datastax.com/v1beta1",
        "kind": "CassandraDatacenter",
        "metadata": {
            "name": name,
            "labels": {
                "k8ssandra.io/cluster-name": "demo",
                "k8ssandra.io/cluster-namespace": NAMESPACE
            }
        },
        "spec": {
            "clusterName": "demo",
            "serverType": "cassandra",
            "serverVersion": "4.1.5",
            "size": 1,
            "storageConfig": { "cassandraDataVolumeClaimSpec": {
                "accessModes": ["ReadWriteOnce"],
                "resources": { "requests": { "storage": "1Gi" } }
            } }
        }
    }))
    .expect("CassandraDatacenter")
}

/// Waits until the registry's watch of `context` holds CassandraDatacenter `name`.
async fn wait_remote_datacenter(operator: &ControlPlaneOperator, context: &str, name: &str) {
    wait::until(
        &format!("{context}'s watch to show {name}"),
        LIMIT,
        || async {
            match operator.registry().get(context)? {
                Remote::Connected(cluster) => cluster.datacenters.get("default", name).map(drop),
                Remote::Invalid { .. } => None,
            }
        },
    )
    .await
    .expect("the remote watch sees the datacenter");
}

#[tokio::test]
async fn client_configs_are_picked_up_live_and_report_whether_their_cluster_answers() {
    let mut fleet = FleetConfig::new("client_configs", 3)
        .nodes_per_cluster(1)
        .start()
        .await
        .expect("fleet starts");
    fleet
        .cluster(0)
        .create_namespace(NAMESPACE)
        .await
        .expect("namespace");
    let operator =
        ControlPlaneOperator::start(fleet.cluster(0), Some(NAMESPACE)).expect("control plane");
    let configs: Api<ClientConfig> = Api::namespaced(fleet.cluster(0).client(), NAMESPACE);
    let context1 = fleet.cluster(1).context().to_owned();
    let server1 = fleet.cluster(1).access().server.clone();
    let mut secrets_seen: Vec<String> = vec![fleet.cluster(1).access().token.clone()];

    // A ClientConfig before its Secret: which Secret is missing, then each broken kubeconfig.
    configs
        .create(
            &PostParams::default(),
            &client_config("one", &context1, "one-kubeconfig"),
        )
        .await
        .expect("ClientConfig");
    wait_condition(
        &configs,
        "one",
        ConditionStatus::False,
        "SecretMissing",
        "Secret one-kubeconfig does not exist in namespace k8ssandra-operator",
    )
    .await;
    put_secret(fleet.cluster(0), "one-kubeconfig", &[("other", "x")]).await;
    wait_condition(
        &configs,
        "one",
        ConditionStatus::False,
        "KubeconfigInvalid",
        "has no key `kubeconfig`",
    )
    .await;
    let token_in_yaml = "token: [broken-secret-token";
    secrets_seen.push("broken-secret-token".into());
    put_secret(
        fleet.cluster(0),
        "one-kubeconfig",
        &[("kubeconfig", token_in_yaml)],
    )
    .await;
    wait_condition(
        &configs,
        "one",
        ConditionStatus::False,
        "KubeconfigInvalid",
        "is not a kubeconfig: invalid at line",
    )
    .await;
    put_secret(
        fleet.cluster(0),
        "one-kubeconfig",
        &[("kubeconfig", &fleet.cluster(2).kubeconfig_yaml())],
    )
    .await;
    let message = wait_condition(
        &configs,
        "one",
        ConditionStatus::False,
        "ContextNotFound",
        &context1,
    )
    .await;
    assert!(message.contains("(it has: kind-k8ssandra-2)"), "{message}");

    // A working kubeconfig, with a ServiceAccount token: Reachable, and the narrow watch works.
    let kubeconfig = fleet
        .cluster(1)
        .service_account_kubeconfig("control-plane")
        .await
        .expect("token");
    secrets_seen.push(token_of(&kubeconfig));
    put_secret(
        fleet.cluster(0),
        "one-kubeconfig",
        &[("kubeconfig", &kubeconfig)],
    )
    .await;
    wait_condition(
        &configs,
        "one",
        ConditionStatus::True,
        "Reachable",
        &format!("{server1} answers"),
    )
    .await;
    let remote1: Api<CassandraDatacenter> = Api::namespaced(fleet.cluster(1).client(), "default");
    remote1
        .create(&PostParams::default(), &datacenter("dc1"))
        .await
        .expect("dc1");
    wait_remote_datacenter(&operator, &context1, "dc1").await;

    // A second cluster, and a ClientConfig that claims the first one's context.
    let context2 = fleet.cluster(2).context().to_owned();
    let server2 = fleet.cluster(2).access().server.clone();
    put_secret(
        fleet.cluster(0),
        "two-kubeconfig",
        &[("kubeconfig", &fleet.cluster(2).kubeconfig_yaml())],
    )
    .await;
    configs
        .create(
            &PostParams::default(),
            &client_config("two", &context2, "two-kubeconfig"),
        )
        .await
        .expect("ClientConfig two");
    wait_condition(
        &configs,
        "two",
        ConditionStatus::True,
        "Reachable",
        &server2,
    )
    .await;
    configs
        .create(
            &PostParams::default(),
            &client_config("one-again", &context1, "two-kubeconfig"),
        )
        .await
        .expect("duplicate");
    wait_condition(
        &configs,
        "one-again",
        ConditionStatus::False,
        "DuplicateContext",
        "ClientConfig k8ssandra-operator/one already names context kind-k8ssandra-1",
    )
    .await;
    configs
        .delete("one-again", &DeleteParams::default())
        .await
        .expect("delete duplicate");

    // The token revoked: the watch fails, and the condition names the server and the error.
    Api::<k8s_openapi::api::core::v1::ServiceAccount>::namespaced(
        fleet.cluster(1).client(),
        "kube-system",
    )
    .delete("control-plane", &DeleteParams::default())
    .await
    .expect("revoke");
    let revoked = std::time::Instant::now();
    let message = wait_condition(
        &configs,
        "one",
        ConditionStatus::False,
        "Unreachable",
        &server1,
    )
    .await;
    eprintln!("revoked token reported after {:.1?}", revoked.elapsed());
    assert!(
        message.contains("401") || message.to_lowercase().contains("unauthorized"),
        "{message}"
    );
    // Rotated to a new token: picked up with no restart.
    let rotated = fleet
        .cluster(1)
        .service_account_kubeconfig("control-plane-2")
        .await
        .expect("token");
    secrets_seen.push(token_of(&rotated));
    put_secret(
        fleet.cluster(0),
        "one-kubeconfig",
        &[("kubeconfig", &rotated)],
    )
    .await;
    wait_condition(
        &configs,
        "one",
        ConditionStatus::True,
        "Reachable",
        &server1,
    )
    .await;
    remote1
        .create(&PostParams::default(), &datacenter("dc1b"))
        .await
        .expect("dc1b");
    wait_remote_datacenter(&operator, &context1, "dc1b").await;

    // Cluster 2's API server stops: only its ClientConfig says so; it recovers when it is back.
    fleet.cluster_mut(2).stop_apiserver();
    let stopped = std::time::Instant::now();
    wait_condition(
        &configs,
        "two",
        ConditionStatus::False,
        "Unreachable",
        &server2,
    )
    .await;
    eprintln!(
        "stopped API server reported after {:.1?}",
        stopped.elapsed()
    );
    let one = configs.get("one").await.expect("one");
    assert_eq!(
        reachable(&one).map(|c| c.status),
        Some(ConditionStatus::True),
        "cluster 1 is unaffected"
    );
    fleet
        .cluster_mut(2)
        .restart_apiserver()
        .await
        .expect("apiserver back");
    let back = std::time::Instant::now();
    wait_condition(
        &configs,
        "two",
        ConditionStatus::True,
        "Reachable",
        &server2,
    )
    .await;
    eprintln!("API server back reported after {:.1?}", back.elapsed());

    // A deleted ClientConfig's context is forgotten, and its watches stop.
    configs
        .delete("two", &DeleteParams::default())
        .await
        .expect("delete two");
    wait::until("the registry to forget kind-k8ssandra-2", LIMIT, || async {
        operator.registry().get(&context2).is_none().then_some(())
    })
    .await
    .expect("forgotten");
    assert!(
        matches!(operator.registry().get(""), Some(Remote::Connected(local)) if local.health() == Health::Reachable)
    );

    // No credential in any status or Event.
    let events = Api::<Event>::namespaced(fleet.cluster(0).client(), NAMESPACE)
        .list(&Default::default())
        .await
        .expect("events");
    let reasons: Vec<String> = events
        .items
        .iter()
        .filter_map(|e| e.reason.clone())
        .collect();
    for reason in [
        "SecretMissing",
        "KubeconfigInvalid",
        "ContextNotFound",
        "DuplicateContext",
        "Unreachable",
    ] {
        assert!(
            reasons.iter().any(|r| r == reason),
            "a {reason} Event: {reasons:?}"
        );
    }
    let statuses =
        serde_json::to_string(&configs.list(&Default::default()).await.expect("list").items)
            .expect("json");
    let notes = serde_json::to_string(&events.items).expect("json");
    for secret in &secrets_seen {
        assert!(!secret.is_empty());
        assert!(
            !statuses.contains(secret.as_str()),
            "a credential in a status"
        );
        assert!(!notes.contains(secret.as_str()), "a credential in an Event");
    }
    let one = configs.get("one").await.expect("one");
    assert!(
        one.labels().is_empty(),
        "the ClientConfig itself is not labelled"
    );
}

/// The bearer token of a kubeconfig of the fleet.
fn token_of(kubeconfig: &str) -> String {
    kubeconfig
        .lines()
        .find_map(|line| line.trim().strip_prefix("token: "))
        .unwrap_or_default()
        .trim_matches('\'')
        .trim_matches('"')
        .to_owned()
}
