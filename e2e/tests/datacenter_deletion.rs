//! Deleting a datacenter, as upstream: the finalizer holds it until its pods are stopped and its
//! volume claims deleted; `delete-pvc: "false"` keeps the claims (and a datacenter made again
//! takes its nodes back with their host IDs); `no-finalizer` leaves the deletion to Kubernetes;
//! `decommission-on-delete` takes a datacenter's nodes out of a running cluster first.
#![allow(clippy::expect_used)]

use std::{collections::BTreeMap, time::Duration};

use k8s_openapi::api::core::v1::Secret;
use k8ssandra_api::labels;
use k8ssandra_e2e::{
    scenario::{NAMESPACE, Scenario, THREE_RACK_SAMPLE},
    wait,
};
use k8ssandra_mgmt_api::{NodeStatus, Route};
use kube::{Api, ResourceExt, api::DeleteParams};

const LIMIT: Duration = Duration::from_secs(60);
const FINALIZER: &str = "finalizer.cassandra.datastax.com";

fn host_ids(dc: &k8ssandra_api::cassandra::CassandraDatacenter) -> BTreeMap<String, String> {
    dc.status
        .as_ref()
        .and_then(|s| s.node_statuses.clone())
        .unwrap_or_default()
        .into_iter()
        .map(|(pod, node)| (pod, node.host_id.unwrap_or_default()))
        .collect()
}

async fn delete_and_wait(scenario: &Scenario, name: &str) {
    scenario
        .datacenters()
        .delete(name, &DeleteParams::default())
        .await
        .expect("deleted");
    let gone = wait::until("the datacenter gone", LIMIT, || async {
        scenario
            .datacenters()
            .get_opt(name)
            .await
            .ok()?
            .is_none()
            .then_some(())
    })
    .await;
    if let Err(error) = gone {
        let left = scenario.datacenters().get_opt(name).await.ok().flatten();
        panic!("{error}; still there: {:?}", left.and_then(|dc| dc.status));
    }
}

#[tokio::test]
async fn a_deleted_datacenter_takes_its_claims_unless_asked_to_keep_them() {
    let (scenario, dc) = Scenario::with_sample("dc_delete")
        .await
        .expect("dc1 comes up");
    assert!(
        dc.finalizers().iter().any(|f| f == FINALIZER),
        "{:?}",
        dc.finalizers()
    );
    let before = host_ids(&dc);
    assert_eq!(before.len(), 3);

    // Kept: pods stop, the claims stay, the finalizer goes.
    scenario
        .annotate("dc1", labels::annotations::DELETE_PVC, "false")
        .await
        .expect("annotated");
    delete_and_wait(&scenario, "dc1").await;
    wait::until("no pod left", LIMIT, || async {
        scenario.pods().await.ok()?.is_empty().then_some(())
    })
    .await
    .expect("pods gone");
    assert_eq!(scenario.claim_names().await.expect("claims").len(), 3);
    // The superuser Secret outlives the datacenter, no longer marked as read by it.
    let secrets: Api<Secret> = Api::namespaced(scenario.cluster().client(), NAMESPACE);
    let superuser = secrets.get("cluster1-superuser").await.expect("kept");
    assert!(
        !superuser
            .annotations()
            .get(labels::annotations::WATCHED_BY)
            .is_some_and(|w| w.contains("dc1")),
        "{:?}",
        superuser.annotations()
    );

    // Made again, the datacenter finds its volumes: the same nodes, the same host IDs.
    scenario
        .apply(THREE_RACK_SAMPLE)
        .await
        .expect("applied again");
    let again = scenario.wait_converged("dc1", 3).await.expect("back");
    assert_eq!(host_ids(&again), before, "the nodes kept their data");

    // Deleted with the default: the claims go too.
    delete_and_wait(&scenario, "dc1").await;
    wait::until("no claim left", LIMIT, || async {
        scenario.claim_names().await.ok()?.is_empty().then_some(())
    })
    .await
    .expect("the claims are deleted with the datacenter");
    let notes = scenario
        .event_notes(NAMESPACE, "dc1", "DeletedVolumeClaims")
        .await
        .expect("events");
    assert!(notes.iter().any(|n| n.contains('3')), "{notes:?}");

    // Without the finalizer, Kubernetes alone deletes it: the claims stay.
    let unfinalized = THREE_RACK_SAMPLE.replacen(
        "metadata:\n",
        "metadata:\n  annotations:\n    cassandra.datastax.com/no-finalizer: \"true\"\n",
        1,
    );
    scenario.apply(&unfinalized).await.expect("applied");
    let dc = scenario.wait_converged("dc1", 3).await.expect("up");
    assert!(dc.finalizers().is_empty(), "{:?}", dc.finalizers());
    delete_and_wait(&scenario, "dc1").await;
    assert_eq!(scenario.claim_names().await.expect("claims").len(), 3);
}

#[tokio::test]
async fn decommission_on_delete_takes_the_nodes_out_of_the_ring_first() {
    let (scenario, _) = Scenario::with_sample("dc_delete_decommission")
        .await
        .expect("dc1 comes up");
    let dc2 = k8ssandra_e2e::scenario::one_rack_datacenter(
        "dc2",
        2,
        "  annotations:\n    cassandra.datastax.com/decommission-on-delete: \"true\"\n",
        "",
    );
    scenario.apply(&dc2).await.expect("dc2");
    scenario.wait_converged("dc2", 2).await.expect("dc2 up");
    let in_ring = |dc: &str| {
        scenario
            .mgmt
            .cassandra()
            .endpoints()
            .entries
            .iter()
            .filter(|e| e.datacenter() == Some(dc) && e.status() == NodeStatus::Normal)
            .count()
    };
    assert_eq!(in_ring("dc2"), 2);

    delete_and_wait(&scenario, "dc2").await;
    let decommissioned = scenario
        .mgmt
        .cassandra()
        .calls()
        .pods_called(&[Route::DecommissionV0, Route::DecommissionV1]);
    assert_eq!(
        decommissioned,
        ["cluster1-dc2-default-sts-1", "cluster1-dc2-default-sts-0"],
        "one at a time, highest ordinal first"
    );
    assert_eq!(in_ring("dc2"), 0, "dc2 left the ring");
    assert_eq!(in_ring("dc1"), 3);
    let dc2_claims = scenario
        .claim_names()
        .await
        .expect("claims")
        .into_iter()
        .filter(|c| c.contains("dc2"))
        .count();
    assert_eq!(dc2_claims, 0);
}
