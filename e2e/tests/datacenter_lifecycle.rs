//! Acceptance of the CassandraDatacenter controller on a local cluster, with the fake Management
//! API on the pods' IPs: bring-up, quiet passes, scaling, rolling restarts, stop and resume.
#![allow(clippy::expect_used)]

use std::time::Duration;

use k8ssandra_api::{cassandra::condition, labels};
use k8ssandra_e2e::scenario::{Scenario, condition, is_true};
use k8ssandra_mgmt_api::{NodeStatus, Route};
use kube::{
    ResourceExt,
    api::{Patch, PatchParams},
};

const SAMPLE: &str = include_str!("../../config/samples/cassandra-datacenter-three-racks.yaml");

fn pod(rack: &str, ordinal: u32) -> String {
    format!("cluster1-dc1-{rack}-sts-{ordinal}")
}

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
async fn three_racks_come_up_one_node_at_a_time_and_a_quiet_pass_writes_nothing() {
    let scenario = Scenario::start("dc_bring_up", "cluster1")
        .await
        .expect("scenario");
    scenario.apply(SAMPLE).await.expect("sample applies");
    let dc = scenario
        .wait_converged("dc1", 3)
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

    // A pass over the unchanged datacenter (triggered by an annotation) writes nothing.
    let operator = scenario.operator();
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
    assert_eq!(
        operator.requests().writes(),
        Vec::<String>::new(),
        "writes of a quiet pass"
    );
    assert_eq!(
        scenario.mgmt.cassandra().calls().write_count(),
        mgmt_writes,
        "Management API writes of a quiet pass"
    );
    assert!(
        !operator.requests().is_empty(),
        "the pass read the datacenter's objects"
    );
}
