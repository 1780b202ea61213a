//! Failure injection and bad input for the CassandraDatacenter controller: each scenario ends
//! converged with no data lost, and says what went wrong while it lasted.
#![allow(clippy::expect_used)]

use std::time::Duration;

use k8s_openapi::api::{apps::v1::StatefulSet, core::v1::Pod};
use k8ssandra_api::{cassandra::condition, labels};
use k8ssandra_e2e::{
    scenario::{NAMESPACE, Scenario, condition, is_true},
    wait,
};
use k8ssandra_mgmt_api::{
    NodeStatus, Route,
    fake::{Fault, Times},
};
use kube::{Api, ResourceExt, api::DeleteParams};

use k8ssandra_e2e::scenario::THREE_RACK_SAMPLE as SAMPLE;
const LIMIT: Duration = Duration::from_secs(60);

use k8ssandra_e2e::scenario::sample_pod as pod;

/// Notes of the Events about dc1 with `reason`.
async fn event_notes(scenario: &Scenario, reason: &str) -> Vec<String> {
    scenario
        .event_notes(NAMESPACE, "dc1", reason)
        .await
        .expect("events")
}

async fn pod_label(scenario: &Scenario, name: &str, label: &str) -> Option<String> {
    Api::<Pod>::namespaced(scenario.cluster().client(), NAMESPACE)
        .get_opt(name)
        .await
        .ok()
        .flatten()?
        .labels()
        .get(label)
        .cloned()
}

fn host_id(dc: &k8ssandra_api::cassandra::CassandraDatacenter, pod: &str) -> Option<String> {
    k8ssandra_e2e::scenario::node_status(dc, pod)?.host_id
}

#[tokio::test]
async fn a_start_that_fails_twice_is_retried_with_backoff_and_reported() {
    let scenario = Scenario::start("dc_start_fails", "cluster1")
        .await
        .expect("scenario");
    let first = pod("rack1", 0);
    scenario.mgmt.inject_when_running(
        &first,
        Route::LifecycleStart,
        Fault::Status(500),
        Times::Next(2),
    );
    scenario.apply(SAMPLE).await.expect("sample applies");
    let uid = wait::until("the first pod", LIMIT, || async {
        scenario
            .pods()
            .await
            .ok()?
            .into_iter()
            .find(|p| p.name_any() == first)?
            .uid()
    })
    .await
    .expect("first pod");

    let failing = scenario
        .wait_for("dc1", "the failed start reported", |dc| {
            condition(dc, condition::READY)
                .is_some_and(|c| c.reason.as_deref() == Some("StartFailed"))
        })
        .await
        .expect("Ready=False, StartFailed");
    let message = condition(&failing, condition::READY)
        .and_then(|c| c.message.clone())
        .unwrap_or_default();
    assert!(
        message.contains(&first) && message.contains("500"),
        "{message}"
    );
    assert_eq!(
        failing
            .status
            .as_ref()
            .and_then(|s| s.failed_starts.clone()),
        Some(vec![first.clone()])
    );

    let dc = scenario.wait_converged("dc1", 3).await.expect("converges");
    let calls = scenario.mgmt.cassandra().calls().for_pod(&first);
    assert_eq!(
        calls.count(Route::LifecycleStart),
        3,
        "two failures, then the start that worked"
    );
    assert_eq!(
        dc.status.as_ref().and_then(|s| s.failed_starts.clone()),
        None
    );
    assert_eq!(
        scenario.pods().await.expect("pods")[0].uid(),
        Some(uid),
        "the pod was not deleted"
    );
    let notes = event_notes(&scenario, "StartFailed").await;
    assert!(notes.iter().any(|n| n.contains(&first)), "{notes:?}");
}

#[tokio::test]
async fn a_hanging_decommission_is_reported_with_its_node_and_finishes_once_unblocked() {
    let (scenario, _) = Scenario::with_sample("dc_decommission_hangs")
        .await
        .expect("dc1 comes up");
    scenario
        .patch_spec("dc1", serde_json::json!({ "size": 4 }))
        .await
        .expect("size 4");
    scenario.wait_converged("dc1", 4).await.expect("four nodes");

    // Rack1 has two nodes: its highest ordinal leaves, and stays LEAVING.
    let leaving = pod("rack1", 1);
    scenario
        .mgmt
        .with_node(&leaving, |node| {
            node.inject(Route::DecommissionV1, Fault::Stall, Times::Always)
        })
        .expect("fake node");
    scenario
        .patch_spec("dc1", serde_json::json!({ "size": 3 }))
        .await
        .expect("size 3");
    let stuck = scenario
        .wait_for("dc1", "the node LEAVING", |dc| {
            condition(dc, condition::SCALING_DOWN)
                .and_then(|c| c.message.as_deref())
                .is_some_and(|m| m.contains("LEAVING"))
        })
        .await
        .expect("ScalingDown says the node is leaving");
    let message = condition(&stuck, condition::SCALING_DOWN)
        .and_then(|c| c.message.clone())
        .unwrap_or_default();
    assert!(message.contains(&leaving), "{message}");
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(
        pod_label(&scenario, &leaving, labels::NODE_STATE)
            .await
            .as_deref(),
        Some("Decommissioning"),
        "still leaving while blocked"
    );
    assert_eq!(scenario.pods().await.expect("pods").len(), 4);

    scenario.mgmt.with_node(&leaving, |node| {
        node.clear_faults();
        node.release(Route::DecommissionV1)
    });
    scenario
        .wait_converged("dc1", 3)
        .await
        .expect("converges once unblocked");
    wait::until("the leaving node's volume deleted", LIMIT, || async {
        let claims = scenario.claim_names().await.ok()?;
        (!claims.contains(&format!("server-data-{leaving}")) && claims.len() == 3).then_some(())
    })
    .await
    .expect("volume deleted");
}

#[tokio::test]
async fn a_pod_deleted_during_a_scale_up_comes_back_with_its_host_id() {
    let (scenario, dc) = Scenario::with_sample("dc_pod_deleted")
        .await
        .expect("dc1 comes up");
    let victim = pod("rack2", 0);
    let before = host_id(&dc, &victim).expect("host ID");

    scenario
        .patch_spec("dc1", serde_json::json!({ "size": 6 }))
        .await
        .expect("size 6");
    scenario
        .wait_for("dc1", "the scale up under way", |dc| {
            dc.status.as_ref().and_then(|s| s.ready_nodes) >= Some(4)
        })
        .await
        .expect("a new node is up");
    Api::<Pod>::namespaced(scenario.cluster().client(), NAMESPACE)
        .delete(&victim, &DeleteParams::default())
        .await
        .expect("pod deleted");

    let dc = scenario.wait_converged("dc1", 6).await.expect("converges");
    assert_eq!(
        host_id(&dc, &victim),
        Some(before),
        "same host ID after the pod came back"
    );
    let normal = scenario
        .mgmt
        .cassandra()
        .endpoints()
        .entries
        .iter()
        .filter(|e| e.status() == NodeStatus::Normal)
        .count();
    assert_eq!(normal, 6);
    assert_eq!(scenario.claim_names().await.expect("claims").len(), 6);
}

#[tokio::test]
async fn an_operator_restarted_mid_scale_up_and_mid_decommission_converges() {
    let (mut scenario, _) = Scenario::with_sample("dc_operator_restart")
        .await
        .expect("dc1 comes up");

    scenario
        .patch_spec("dc1", serde_json::json!({ "size": 6 }))
        .await
        .expect("size 6");
    scenario
        .wait_for("dc1", "four nodes up", |dc| {
            dc.status.as_ref().and_then(|s| s.ready_nodes) >= Some(4)
        })
        .await
        .expect("mid scale up");
    scenario.restart_operator().expect("operator restarts");
    scenario
        .wait_converged("dc1", 6)
        .await
        .expect("scale up finishes");

    scenario
        .patch_spec("dc1", serde_json::json!({ "size": 3 }))
        .await
        .expect("size 3");
    let leaving = pod("rack1", 1);
    wait::until("the first decommission", LIMIT, || async {
        (pod_label(&scenario, &leaving, labels::NODE_STATE)
            .await
            .as_deref()
            == Some("Decommissioning"))
        .then_some(())
    })
    .await
    .expect("decommission under way");
    scenario.restart_operator().expect("operator restarts");
    let dc = scenario
        .wait_converged("dc1", 3)
        .await
        .expect("scale down finishes");
    assert_eq!(
        dc.status.and_then(|s| s.node_statuses).map(|n| n.len()),
        Some(3)
    );
    wait::until("three volumes and three NORMAL nodes", LIMIT, || async {
        let claims = scenario.claim_names().await.ok()?;
        let ring = scenario.mgmt.cassandra().endpoints();
        let normal = ring
            .entries
            .iter()
            .filter(|e| e.status() == NodeStatus::Normal)
            .count();
        (claims.len() == 3 && normal == 3).then_some(())
    })
    .await
    .expect("no volume or node left over");
}

#[tokio::test]
async fn refused_changes_say_why_and_change_nothing() {
    let (scenario, _) = Scenario::with_sample("dc_bad_input")
        .await
        .expect("dc1 comes up");
    let uids: Vec<Option<String>> = scenario
        .pods()
        .await
        .expect("pods")
        .iter()
        .map(ResourceExt::uid)
        .collect();

    // Refused at admission by the CRD's rules, with their message.
    let refusals = [
        (serde_json::json!({ "clusterName": "other" }), "clusterName"),
        (
            serde_json::json!({ "size": 5000 }),
            "less than or equal to 1000",
        ),
        (
            serde_json::json!({ "additionalLabels": { "cassandra.datastax.com/seed-node": "true" } }),
            "additionalLabels may not set the operator's own labels",
        ),
        (
            serde_json::json!({ "racks": [
                { "name": "rack1" }, { "name": "renamed" }, { "name": "rack3" }
            ] }),
            "rack",
        ),
    ];
    for (spec, word) in refusals {
        let error = scenario
            .patch_spec("dc1", spec.clone())
            .await
            .expect_err("refused");
        let text = error.to_string();
        assert!(text.contains(word), "{spec}: {text}");
    }

    // Refused by the operator: a rack that still has a node removed from the spec.
    let generation = scenario
        .patch_spec(
            "dc1",
            serde_json::json!({ "racks": [
            { "name": "rack1", "nodeAffinityLabels": { "topology.kubernetes.io/zone": "zone-a" } },
            { "name": "rack2", "nodeAffinityLabels": { "topology.kubernetes.io/zone": "zone-b" } },
        ] }),
        )
        .await
        .expect("admitted")
        .metadata
        .generation;
    let dc = scenario
        .wait_for("dc1", "Valid=False", move |dc| {
            dc.status.as_ref().and_then(|s| s.observed_generation) == generation
                && !is_true(dc, condition::VALID)
        })
        .await
        .expect("refused");
    let valid = condition(&dc, condition::VALID).expect("Valid");
    assert_eq!(valid.reason.as_deref(), Some("RackRemovedWithNodes"));
    assert!(
        valid
            .message
            .as_deref()
            .unwrap_or_default()
            .contains("rack3"),
        "{valid:?}"
    );
    let notes = event_notes(&scenario, "RackRemovedWithNodes").await;
    assert!(notes.iter().any(|n| n.contains("rack3")), "{notes:?}");
    tokio::time::sleep(Duration::from_secs(2)).await;
    let statefulsets: Api<StatefulSet> = Api::namespaced(scenario.cluster().client(), NAMESPACE);
    let rack3 = statefulsets
        .get("cluster1-dc1-rack3-sts")
        .await
        .expect("rack3 kept");
    assert_eq!(rack3.spec.and_then(|s| s.replicas), Some(1));
    let now: Vec<Option<String>> = scenario
        .pods()
        .await
        .expect("pods")
        .iter()
        .map(ResourceExt::uid)
        .collect();
    assert_eq!(now, uids, "no pod touched");

    // Putting the rack back makes the spec valid again, still without a restart.
    scenario.apply(SAMPLE).await.expect("sample applies");
    let dc = scenario
        .wait_converged("dc1", 3)
        .await
        .expect("valid again");
    assert!(is_true(&dc, condition::VALID));
    let now: Vec<Option<String>> = scenario
        .pods()
        .await
        .expect("pods")
        .iter()
        .map(ResourceExt::uid)
        .collect();
    assert_eq!(now, uids, "no pod touched");

    // Upstream's webhook bypass cannot bypass CEL rules: said once, and nothing else changes.
    scenario
        .annotate(
            "dc1",
            "cassandra.datastax.com/bypass-webhook-validations",
            "true",
        )
        .await
        .expect("annotated");
    let said = wait::until("the bypass reported", LIMIT, || async {
        let notes = event_notes(&scenario, "BypassWebhookValidationsIgnored").await;
        (!notes.is_empty()).then_some(notes)
    })
    .await
    .expect("reported");
    assert!(said[0].contains("no effect"), "{said:?}");
    let refused = scenario
        .patch_spec("dc1", serde_json::json!({ "clusterName": "other" }))
        .await;
    assert!(refused.is_err(), "clusterName stays immutable");
    scenario
        .annotate("dc1", "example.com/touched", "again")
        .await
        .expect("annotated");
    scenario.wait_converged("dc1", 3).await.expect("converged");
    assert_eq!(
        event_notes(&scenario, "BypassWebhookValidationsIgnored")
            .await
            .len(),
        1,
        "once"
    );
}

/// Injects `fault` into the cluster probe of every node of the sample scaled to four, or clears
/// every fault.
fn probe_fault(scenario: &Scenario, fault: Option<Fault>) {
    for (rack, ordinal) in [("rack1", 0), ("rack2", 0), ("rack3", 0), ("rack1", 1)] {
        scenario
            .mgmt
            .with_node(&pod(rack, ordinal), |node| match fault {
                Some(fault) => node.inject(Route::ClusterProbe, fault, Times::Always),
                None => node.clear_faults(),
            });
    }
}

#[tokio::test]
async fn an_unhealthy_cluster_holds_new_nodes_and_decommissions_back_until_it_recovers() {
    let (scenario, _) = Scenario::with_sample("dc_unhealthy")
        .await
        .expect("dc1 comes up");
    let starts_of = |pod: &str| {
        scenario
            .mgmt
            .cassandra()
            .calls()
            .for_pod(pod)
            .count(Route::LifecycleStart)
    };

    // The probe fails: the fourth node's pod comes, but it does not join.
    probe_fault(&scenario, Some(Fault::Status(500)));
    scenario
        .patch_spec("dc1", serde_json::json!({ "size": 4 }))
        .await
        .expect("size 4");
    let held = scenario
        .wait_for_reason("dc1", condition::HEALTHY, "ClusterUnhealthy")
        .await
        .expect("reported");
    let message = condition(&held, condition::HEALTHY)
        .and_then(|c| c.message.clone())
        .unwrap_or_default();
    assert!(message.contains("probe"), "{message}");
    tokio::time::sleep(Duration::from_secs(3)).await;
    let fourth = pod("rack1", 1);
    assert_eq!(
        starts_of(&fourth),
        0,
        "no new node joins an unhealthy cluster"
    );
    let notes = event_notes(&scenario, "UnhealthyDatacenter").await;
    assert_eq!(notes.len(), 1, "one Event while it lasts: {notes:?}");

    // Healthy again: the node joins.
    probe_fault(&scenario, None);
    scenario
        .wait_converged("dc1", 4)
        .await
        .expect("four nodes once healthy");
    assert_eq!(starts_of(&fourth), 1);

    // A decommission waits the same way.
    probe_fault(&scenario, Some(Fault::Status(500)));
    scenario
        .patch_spec("dc1", serde_json::json!({ "size": 3 }))
        .await
        .expect("size 3");
    scenario
        .wait_for_reason("dc1", condition::HEALTHY, "ClusterUnhealthy")
        .await
        .expect("the decommission held");
    tokio::time::sleep(Duration::from_secs(3)).await;
    let decommissions = || {
        let calls = scenario.mgmt.cassandra().calls();
        calls.count(Route::DecommissionV0) + calls.count(Route::DecommissionV1)
    };
    assert_eq!(decommissions(), 0);
    probe_fault(&scenario, None);
    scenario
        .wait_converged("dc1", 3)
        .await
        .expect("three nodes");
    assert_eq!(decommissions(), 1);
}
