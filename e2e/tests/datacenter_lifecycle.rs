//! Acceptance of the CassandraDatacenter controller on a local cluster, with the fake Management
//! API on the pods' IPs: bring-up, quiet passes, scaling, rolling restarts, stop and resume.
#![allow(clippy::expect_used)]

use std::time::Duration;

use k8ssandra_api::{cassandra::condition, labels};
use k8ssandra_e2e::scenario::{Scenario, condition, is_true};
use k8ssandra_mgmt_api::{KeyspaceReplicationRequest, NodeStatus, Route};
use kube::{
    ResourceExt,
    api::{Patch, PatchParams},
};

use k8ssandra_e2e::scenario::THREE_RACK_SAMPLE as SAMPLE;

use k8ssandra_e2e::scenario::sample_pod as pod;

/// Pods that got a `lifecycle/start` call, in call order (each once).
fn start_order(scenario: &Scenario) -> Vec<String> {
    let mut order: Vec<String> = Vec::new();
    for call in scenario.mgmt.cassandra().calls().calls {
        if call.route == Some(Route::LifecycleStart) && !order.contains(&call.pod) {
            order.push(call.pod.clone());
        }
    }
    order
}

#[tokio::test]
async fn three_racks_come_up_one_node_at_a_time_and_a_quiet_pass_sends_no_request() {
    let (scenario, dc) = Scenario::with_sample("dc_bring_up")
        .await
        .expect("dc1 comes up");

    // One node per rack, in rack order, the first as the seed.
    assert_eq!(
        start_order(&scenario),
        vec![pod("rack1", 0), pod("rack2", 0), pod("rack3", 0)]
    );
    for type_ in [
        condition::VALID,
        condition::READY,
        condition::INITIALIZED,
        condition::HEALTHY,
    ] {
        assert!(is_true(&dc, type_), "{type_}: {:?}", condition(&dc, type_));
    }
    for type_ in [
        condition::SCALING_UP,
        condition::SCALING_DOWN,
        condition::UPDATING,
        condition::STOPPED,
        condition::REQUIRES_UPDATE,
    ] {
        assert!(!is_true(&dc, type_), "{type_}: {:?}", condition(&dc, type_));
    }
    let status = dc.status.clone().expect("status");
    let node_statuses = status.node_statuses.expect("node statuses");
    let ring = scenario.mgmt.cassandra().endpoints();
    assert_eq!(node_statuses.len(), 3);
    for (pod_name, node) in &node_statuses {
        let host_id = node.host_id.as_deref().expect("host ID");
        let entry = ring.by_host_id(host_id).expect("host ID in the ring");
        assert_eq!(entry.status(), NodeStatus::Normal, "{pod_name}");
    }
    // Every Management API call names the operator.
    let calls = scenario.mgmt.cassandra().calls().calls;
    assert!(
        calls
            .iter()
            .all(|c| c.user_agent.as_deref() == Some(k8ssandra_mgmt_api::USER_AGENT)),
        "{:?}",
        calls
            .iter()
            .map(|c| &c.user_agent)
            .collect::<std::collections::BTreeSet<_>>()
    );
    let pods = scenario.pods().await.expect("pods");
    for p in &pods {
        assert_eq!(
            p.labels().get(labels::NODE_STATE).map(String::as_str),
            Some("Started")
        );
        assert_eq!(
            p.labels().get(labels::SEED_NODE).map(String::as_str),
            Some("true"),
            "{}",
            p.name_any()
        );
    }

    // The additional-seed Service the pods' seed list names exists; without additional seeds
    // it has no EndpointSlices.
    let client = scenario.cluster().client();
    let namespace = k8ssandra_e2e::scenario::NAMESPACE;
    let additional = "cluster1-dc1-additional-seed-service";
    let service =
        kube::Api::<k8s_openapi::api::core::v1::Service>::namespaced(client.clone(), namespace)
            .get(additional)
            .await
            .expect("the additional-seed Service exists");
    let spec = service.spec.expect("spec");
    assert_eq!(spec.selector, None);
    assert_eq!(spec.publish_not_ready_addresses, Some(true));
    assert_eq!(spec.cluster_ip.as_deref(), Some("None"));
    let slices =
        kube::Api::<k8s_openapi::api::discovery::v1::EndpointSlice>::namespaced(client, namespace)
            .list(
                &kube::api::ListParams::default()
                    .labels(&format!("kubernetes.io/service-name={additional}")),
            )
            .await
            .expect("slices");
    assert!(slices.items.is_empty(), "{:?}", slices.items);

    // Metrics: passes by result, Management API calls by route and result.
    let operator = scenario.operator();
    let metrics = operator.metrics_text();
    assert!(
        metrics.contains(r#"reconciles_total{controller="cassandradatacenter",result="success"}"#),
        "{metrics}"
    );
    assert!(
        metrics.contains(
            r#"mgmt_api_call_duration_seconds_count{method="POST",route="/api/v0/lifecycle/start",result="success"} 3"#
        ),
        "{metrics}"
    );
    assert!(
        metrics.contains(r#"route="/api/v0/metadata/endpoints",result="success""#),
        "{metrics}"
    );

    // A pass over the unchanged datacenter (triggered by an annotation) writes nothing. First
    // the status settles: the passes right after convergence may still record what they did.
    let mut before = scenario.datacenters().get("dc1").await.expect("dc1").status;
    for _ in 0..10 {
        tokio::time::sleep(Duration::from_secs(1)).await;
        let now = scenario.datacenters().get("dc1").await.expect("dc1").status;
        if now == before {
            break;
        }
        before = now;
    }
    let passes = operator.passes();
    operator.requests().clear();
    let mgmt_writes = scenario.mgmt.cassandra().calls().write_count();
    let patch =
        serde_json::json!({ "metadata": { "annotations": { "example.com/touched": "yes" } } });
    scenario
        .datacenters()
        .patch("dc1", &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .expect("annotated");
    k8ssandra_e2e::wait::until(
        "a pass after the annotation",
        Duration::from_secs(30),
        || async { (operator.passes() > passes).then_some(()) },
    )
    .await
    .expect("the operator passes again");
    tokio::time::sleep(Duration::from_secs(1)).await;
    let after = scenario.datacenters().get("dc1").await.expect("dc1").status;
    assert_eq!(
        operator.requests().writes(),
        Vec::<String>::new(),
        "writes of a quiet pass; status before {before:?}, after {after:?}"
    );
    assert_eq!(
        scenario.mgmt.cassandra().calls().write_count(),
        mgmt_writes,
        "Management API writes of a quiet pass"
    );
    // It reads from the watch caches: no request at all besides the open watches.
    assert_eq!(
        operator.requests().all(),
        Vec::<String>::new(),
        "requests of a quiet pass"
    );
}

/// Pods that got a decommission call, in call order.
fn decommission_order(scenario: &Scenario) -> Vec<String> {
    let mut order: Vec<String> = Vec::new();
    for call in scenario.mgmt.cassandra().calls().calls {
        let decommission = matches!(
            call.route,
            Some(Route::DecommissionV0 | Route::DecommissionV1)
        );
        if decommission && !order.contains(&call.pod) {
            order.push(call.pod.clone());
        }
    }
    order
}

fn normal_nodes(scenario: &Scenario) -> usize {
    scenario
        .mgmt
        .cassandra()
        .endpoints()
        .entries
        .iter()
        .filter(|e| e.status() == NodeStatus::Normal)
        .count()
}

#[tokio::test]
async fn scaling_three_to_six_to_three_decommissions_largest_rack_first_and_an_empty_rack_is_removed()
 {
    let (scenario, _) = Scenario::with_sample("dc_scale")
        .await
        .expect("dc1 comes up");

    // Scaling is no outage: Ready stays True all the way, 3 → 6 → 3.
    let ready =
        k8ssandra_e2e::scenario::ConditionRecorder::start(&scenario, "dc1", condition::READY);
    scenario
        .patch_spec("dc1", serde_json::json!({ "size": 6 }))
        .await
        .expect("size 6");
    let dc = scenario.wait_converged("dc1", 6).await.expect("six nodes");
    assert_eq!(
        start_order(&scenario)[3..],
        [pod("rack1", 1), pod("rack2", 1), pod("rack3", 1)]
    );
    assert_eq!(
        dc.status
            .as_ref()
            .and_then(|s| s.node_statuses.as_ref())
            .map(|n| n.len()),
        Some(6)
    );
    assert_eq!(normal_nodes(&scenario), 6);

    scenario
        .patch_spec("dc1", serde_json::json!({ "size": 3 }))
        .await
        .expect("size 3");
    let dc = scenario
        .wait_converged("dc1", 3)
        .await
        .expect("back to three nodes");
    let seen = ready.seen();
    assert!(
        seen.iter().all(|(ready, _)| *ready),
        "Ready while scaling: {seen:?}"
    );
    assert!(
        seen.iter().any(|(_, reason)| reason == "Scaling"),
        "{seen:?}"
    );
    drop(ready);
    // Every rack had two nodes: the last rack in spec order goes first, highest ordinal.
    assert_eq!(
        decommission_order(&scenario),
        vec![pod("rack3", 1), pod("rack2", 1), pod("rack1", 1)]
    );
    let claims = k8ssandra_e2e::wait::until(
        "the decommissioned pods' volumes deleted",
        Duration::from_secs(30),
        || async {
            let claims = scenario.claim_names().await.ok()?;
            (claims.len() == 3).then_some(claims)
        },
    )
    .await
    .expect("volumes deleted");
    assert_eq!(
        claims,
        ["rack1", "rack2", "rack3"].map(|r| format!("server-data-{}", pod(r, 0)))
    );
    k8ssandra_e2e::wait::until(
        "three NORMAL nodes in the ring",
        Duration::from_secs(10),
        || async {
            (normal_nodes(&scenario) == 3
                && scenario.mgmt.cassandra().endpoints().entries.len() == 3)
                .then_some(())
        },
    )
    .await
    .expect("the ring has 3 NORMAL nodes and nothing else");
    let host_ids = dc
        .status
        .and_then(|s| s.node_statuses)
        .expect("node statuses");
    assert_eq!(
        host_ids.keys().cloned().collect::<Vec<_>>(),
        ["rack1", "rack2", "rack3"].map(|r| pod(r, 0))
    );

    // Two nodes over three racks leave rack3 empty. First refused: a keyspace keeps three
    // replicas in dc1, and nothing is touched.
    scenario
        .patch_spec("dc1", serde_json::json!({ "size": 2 }))
        .await
        .expect("size 2");
    let refused = scenario
        .wait_for("dc1", "the scale down refused", |dc| {
            condition(dc, condition::VALID)
                .is_some_and(|c| c.reason.as_deref() == Some("ReplicationFactorTooHigh"))
        })
        .await
        .expect("Valid=False");
    let message = condition(&refused, condition::VALID)
        .and_then(|c| c.message.clone())
        .unwrap_or_default();
    assert!(
        message.contains(&pod("rack3", 0)) && message.contains("system_distributed"),
        "{message}"
    );
    assert_eq!(
        decommission_order(&scenario).len(),
        3,
        "no decommission began"
    );
    assert_eq!(scenario.pods().await.expect("pods").len(), 3);
    // Once the keyspace is down to two replicas, the scale down goes on by itself; then rack3
    // can be removed from the spec.
    let first = &scenario.pods().await.expect("pods")[0];
    let ip = first
        .status
        .as_ref()
        .and_then(|s| s.pod_ip.as_ref())
        .and_then(|ip| ip.parse().ok())
        .expect("pod IP");
    k8ssandra_e2e::scenario::settings()
        .client(&first.name_any(), ip)
        .alter_keyspace(&KeyspaceReplicationRequest::new(
            "system_distributed",
            [("dc1", 2)],
        ))
        .await
        .expect("keyspace altered");
    scenario.wait_converged("dc1", 2).await.expect("two nodes");
    assert_eq!(decommission_order(&scenario).last(), Some(&pod("rack3", 0)));
    let racks = serde_json::json!([
        { "name": "rack1", "nodeAffinityLabels": { "topology.kubernetes.io/zone": "zone-a" } },
        { "name": "rack2", "nodeAffinityLabels": { "topology.kubernetes.io/zone": "zone-b" } },
    ]);
    scenario
        .patch_spec("dc1", serde_json::json!({ "racks": racks }))
        .await
        .expect("rack3 removed");
    let statefulsets: kube::Api<k8s_openapi::api::apps::v1::StatefulSet> = kube::Api::namespaced(
        scenario.cluster().client(),
        k8ssandra_e2e::scenario::NAMESPACE,
    );
    k8ssandra_e2e::wait::until(
        "rack3's StatefulSet deleted",
        Duration::from_secs(30),
        || async {
            statefulsets
                .get_opt("cluster1-dc1-rack3-sts")
                .await
                .ok()?
                .is_none()
                .then_some(())
        },
    )
    .await
    .expect("the empty rack's StatefulSet is deleted");
    let dc = scenario
        .wait_converged("dc1", 2)
        .await
        .expect("two racks, two nodes");
    assert!(is_true(&dc, condition::VALID));
}

#[tokio::test]
async fn a_config_change_restarts_every_node_once_rack_by_rack_and_the_same_spec_restarts_none() {
    let (mut scenario, _) = Scenario::with_sample("dc_rolling")
        .await
        .expect("dc1 comes up");
    let uids = |pods: &[k8s_openapi::api::core::v1::Pod]| -> Vec<String> {
        pods.iter().filter_map(|p| p.uid()).collect()
    };
    let before = uids(&scenario.pods().await.expect("pods"));
    let starts_before = scenario
        .mgmt
        .cassandra()
        .calls()
        .count(Route::LifecycleStart);

    // The same spec again, then a new operator process (as after an upgrade), which passes over
    // the datacenter as it starts: no restart, no start call.
    scenario.apply(SAMPLE).await.expect("sample applies again");
    scenario.restart_operator().expect("operator restarts");
    let operator = scenario.operator();
    k8ssandra_e2e::wait::until(
        "a pass of the new operator",
        Duration::from_secs(30),
        || async { (operator.passes() > 0).then_some(()) },
    )
    .await
    .expect("the new operator passes over the datacenter");
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(
        uids(&scenario.pods().await.expect("pods")),
        before,
        "no pod restarted"
    );
    assert_eq!(
        scenario
            .mgmt
            .cassandra()
            .calls()
            .count(Route::LifecycleStart),
        starts_before
    );

    // A config value changes: every node restarts once, rack by rack.
    let dc = scenario
        .patch_spec(
            "dc1",
            serde_json::json!({ "config": { "cassandra-yaml": { "num_tokens": 8 } } }),
        )
        .await
        .expect("config change");
    let generation = dc.metadata.generation;
    scenario
        .wait_for("dc1", "the rollout to begin", |dc| {
            is_true(dc, condition::UPDATING)
        })
        .await
        .expect("Updating=True during the rollout");
    let dc = scenario
        .wait_for("dc1", "the rollout to end", move |dc| {
            dc.metadata.generation == generation
                && k8ssandra_e2e::scenario::is_converged(dc, 3)
                && !is_true(dc, condition::UPDATING)
        })
        .await
        .expect("rolled out");
    let after = uids(&scenario.pods().await.expect("pods"));
    assert!(
        before.iter().all(|uid| !after.contains(uid)),
        "every pod was replaced"
    );
    let restarts: Vec<String> = start_order_since(&scenario, starts_before);
    assert_eq!(
        restarts,
        vec![pod("rack1", 0), pod("rack2", 0), pod("rack3", 0)]
    );
    assert_eq!(
        scenario
            .mgmt
            .cassandra()
            .calls()
            .count(Route::LifecycleStart)
            - starts_before,
        3,
        "one start per node"
    );
    assert!(is_true(&dc, condition::READY));
}

/// Pods started after the first `skip` start calls, in order.
fn start_order_since(scenario: &Scenario, skip: usize) -> Vec<String> {
    scenario
        .mgmt
        .cassandra()
        .calls()
        .calls
        .into_iter()
        .filter(|c| c.route == Some(Route::LifecycleStart))
        .skip(skip)
        .map(|c| c.pod)
        .collect()
}

#[tokio::test]
async fn stopping_and_resuming_keeps_every_volume_and_host_id() {
    let (scenario, dc) = Scenario::with_sample("dc_stop")
        .await
        .expect("dc1 comes up");
    let host_ids: Vec<Option<String>> = dc
        .status
        .and_then(|s| s.node_statuses)
        .expect("node statuses")
        .values()
        .map(|n| n.host_id.clone())
        .collect();
    let claims = scenario.claim_names().await.expect("claims");
    assert_eq!(claims.len(), 3);

    scenario
        .patch_spec("dc1", serde_json::json!({ "stopped": true }))
        .await
        .expect("stop");
    scenario
        .wait_for("dc1", "Stopped=True", |dc| is_true(dc, condition::STOPPED))
        .await
        .expect("stopped");
    k8ssandra_e2e::wait::until("every pod gone", Duration::from_secs(30), || async {
        scenario.pods().await.ok()?.is_empty().then_some(())
    })
    .await
    .expect("pods gone");
    assert_eq!(
        scenario.claim_names().await.expect("claims"),
        claims,
        "volumes kept while stopped"
    );

    // Nodes that ran before start together once the seed is up: rack3's node starts while
    // rack2's start hangs.
    let starts = |name: &str| {
        scenario
            .mgmt
            .cassandra()
            .calls()
            .for_pod(name)
            .count(Route::LifecycleStart)
    };
    let (second, third) = (pod("rack2", 0), pod("rack3", 0));
    scenario.mgmt.inject_when_running(
        &second,
        Route::LifecycleStart,
        k8ssandra_mgmt_api::fake::Fault::Hang,
        k8ssandra_mgmt_api::fake::Times::Once,
    );
    scenario
        .patch_spec("dc1", serde_json::json!({ "stopped": false }))
        .await
        .expect("resume");
    k8ssandra_e2e::wait::until(
        "rack3's node started beside rack2's",
        Duration::from_secs(60),
        || async { (starts(&second) == 2 && starts(&third) == 2).then_some(()) },
    )
    .await
    .expect("parallel starts");
    scenario
        .mgmt
        .with_node(&second, |node| node.release(Route::LifecycleStart));
    let dc = scenario.wait_converged("dc1", 3).await.expect("resumed");
    assert!(!is_true(&dc, condition::STOPPED));
    let resumed: Vec<Option<String>> = dc
        .status
        .and_then(|s| s.node_statuses)
        .expect("node statuses")
        .values()
        .map(|n| n.host_id.clone())
        .collect();
    assert_eq!(resumed, host_ids, "same host IDs after resume");
    assert_eq!(scenario.claim_names().await.expect("claims"), claims);
}

/// A CA and certificates it signs, as a user's PKI would give them.
struct Pki {
    ca_pem: String,
    issuer: rcgen::Issuer<'static, rcgen::KeyPair>,
}

impl Pki {
    fn new() -> Self {
        let key = rcgen::KeyPair::generate().expect("key");
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).expect("params");
        params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "management-api-ca");
        params.key_usages = vec![
            rcgen::KeyUsagePurpose::KeyCertSign,
            rcgen::KeyUsagePurpose::DigitalSignature,
        ];
        let cert = params.self_signed(&key).expect("CA");
        Self {
            ca_pem: cert.pem(),
            issuer: rcgen::Issuer::new(params, key),
        }
    }

    /// (certificate, key) PEM for `name`.
    fn issue(&self, name: &str, usage: rcgen::ExtendedKeyUsagePurpose) -> (String, String) {
        let key = rcgen::KeyPair::generate().expect("key");
        let mut params = rcgen::CertificateParams::new(vec![name.to_owned()]).expect("params");
        params.extended_key_usages = vec![usage];
        let cert = params.signed_by(&key, &self.issuer).expect("certificate");
        (cert.pem(), key.serialize_pem())
    }
}

#[tokio::test]
async fn the_management_api_is_reached_over_mutual_tls_once_its_secret_exists() {
    let pki = Pki::new();
    let (server_cert, server_key) =
        pki.issue("cassandra", rcgen::ExtendedKeyUsagePurpose::ServerAuth);
    let (client_cert, client_key) =
        pki.issue("operator", rcgen::ExtendedKeyUsagePurpose::ClientAuth);
    let tls = k8ssandra_mgmt_api::fake::FakeTls {
        server_chain_pem: server_cert,
        server_key_pem: server_key,
        client_ca_pem: pki.ca_pem.clone(),
    };
    let scenario = Scenario::start_with_tls("dc_mutual_tls", "cluster1", Some(tls))
        .await
        .expect("scenario");
    let manual = "  managementApiAuth:\n    manual:\n      clientSecretName: mgmt-client\n      \
                  serverSecretName: mgmt-server\n";
    let yaml = SAMPLE.replace("  managementApiAuth:\n    insecure: {}\n", manual);
    assert!(
        yaml.contains("clientSecretName"),
        "the sample changed: {SAMPLE}"
    );

    // Without the client Secret: refused with its name, and nothing is started.
    scenario.apply(&yaml).await.expect("datacenter applies");
    let dc = scenario
        .wait_for("dc1", "Valid=False", |dc| {
            condition(dc, condition::VALID)
                .is_some_and(|c| c.reason.as_deref() == Some("ManagementApiAuthInvalid"))
        })
        .await
        .expect("refused");
    let message = condition(&dc, condition::VALID)
        .and_then(|c| c.message.clone())
        .unwrap_or_default();
    assert!(message.contains("mgmt-client"), "{message}");
    assert_eq!(scenario.mgmt.cassandra().calls().len(), 0);

    let b64 = |pem: &str| {
        use base64::Engine as _;
        base64::engine::general_purpose::STANDARD.encode(pem)
    };
    let secret = format!(
        "apiVersion: v1\nkind: Secret\nmetadata:\n  name: mgmt-client\ntype: kubernetes.io/tls\n\
         data:\n  ca.crt: {}\n  tls.crt: {}\n  tls.key: {}\n",
        b64(&pki.ca_pem),
        b64(&client_cert),
        b64(&client_key)
    );
    scenario.apply(&secret).await.expect("Secret applies");
    let dc = scenario
        .wait_converged("dc1", 3)
        .await
        .expect("comes up over TLS");
    assert!(is_true(&dc, condition::VALID));
    assert!(is_true(&dc, condition::HEALTHY));
    let metrics = scenario.operator().metrics_text();
    assert!(
        metrics.contains(
            r#"mgmt_api_call_duration_seconds_count{method="POST",route="/api/v0/lifecycle/start",result="success"} 3"#
        ),
        "{metrics}"
    );
}
