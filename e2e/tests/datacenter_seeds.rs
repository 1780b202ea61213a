//! Seeds: the additional-seed EndpointSlices exist only while there are additional seeds, and a
//! change of the seed set makes every running node reload its seeds, once per change.
#![allow(clippy::expect_used)]

use std::{collections::BTreeMap, time::Duration};

use k8s_openapi::api::{core::v1::Pod, discovery::v1::EndpointSlice, events::v1::Event};
use k8ssandra_e2e::{
    scenario::{NAMESPACE, Scenario, sample_pod},
    wait,
};
use k8ssandra_mgmt_api::Route;
use kube::Api;

const LIMIT: Duration = Duration::from_secs(60);

/// Seed reloads per pod so far.
fn reloads(scenario: &Scenario) -> BTreeMap<String, usize> {
    let mut count = BTreeMap::new();
    for pod in scenario
        .mgmt
        .cassandra()
        .calls()
        .pods_called(&[Route::SeedsReload])
    {
        *count.entry(pod).or_insert(0) += 1;
    }
    count
}

fn every_pod(count: usize) -> BTreeMap<String, usize> {
    ["rack1", "rack2", "rack3"]
        .map(|rack| (sample_pod(rack, 0), count))
        .into_iter()
        .collect()
}

#[tokio::test]
async fn a_seed_change_reloads_the_seeds_of_every_running_node_once_per_change() {
    let (scenario, _) = Scenario::with_sample("dc_seeds")
        .await
        .expect("dc1 comes up");
    let slices: Api<EndpointSlice> = Api::namespaced(scenario.cluster().client(), NAMESPACE);
    let service = "cluster1-dc1-additional-seed-service";
    let ipv4 = format!("{service}-ipv4");
    assert!(slices.get_opt(&ipv4).await.expect("read").is_none());
    // The first node was labelled a seed before it started; the seeds of the other racks once
    // every node was up: then every node reloaded, once for both labels.
    wait::until(
        "every node reloaded after the seed labels",
        LIMIT,
        || async { (reloads(&scenario) == every_pod(1)).then_some(()) },
    )
    .await
    .expect("reloaded once");

    // An additional seed: its EndpointSlice appears and every running node reloads, once.
    scenario
        .patch_spec(
            "dc1",
            serde_json::json!({ "additionalSeeds": ["192.0.2.10"] }),
        )
        .await
        .expect("additional seed");
    wait::until("every node reloaded a second time", LIMIT, || async {
        (reloads(&scenario) == every_pod(2)).then_some(())
    })
    .await
    .expect("reloaded");
    let slice = wait::until("the ipv4 EndpointSlice", LIMIT, || async {
        slices.get_opt(&ipv4).await.ok()?
    })
    .await
    .expect("EndpointSlice");
    let addresses: Vec<String> = slice
        .endpoints
        .iter()
        .flat_map(|e| e.addresses.clone())
        .collect();
    assert_eq!(addresses, ["192.0.2.10"]);

    // Later passes (the status writes start some) ask nobody while the seeds stay.
    scenario.wait_converged("dc1", 3).await.expect("converged");
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(reloads(&scenario), every_pod(2));

    // The operator restarted cannot know what the nodes last read: they reload once more.
    let mut scenario = scenario;
    scenario.restart_operator().expect("operator restarts");
    wait::until("every node reloaded a third time", LIMIT, || async {
        (reloads(&scenario) == every_pod(3)).then_some(())
    })
    .await
    .expect("reloaded after the restart");

    // Without additional seeds the slices go, and the nodes reload.
    scenario
        .patch_spec("dc1", serde_json::json!({ "additionalSeeds": null }))
        .await
        .expect("no additional seeds");
    wait::until("every node reloaded a fourth time", LIMIT, || async {
        (reloads(&scenario) == every_pod(4)).then_some(())
    })
    .await
    .expect("reloaded");
    wait::until("the EndpointSlice deleted", LIMIT, || async {
        slices.get_opt(&ipv4).await.ok()?.is_none().then_some(())
    })
    .await
    .expect("EndpointSlice gone");
}

#[tokio::test]
async fn a_datacenter_with_additional_seeds_joins_them_instead_of_seeding_itself() {
    let (scenario, _) = Scenario::with_sample("dc_join_seeds")
        .await
        .expect("dc1 comes up");
    if let Some(reason) = scenario.cluster().pod_network().endpoints_unavailable() {
        eprintln!("skipped: an additional seed by pod IP needs its EndpointSlice: {reason}");
        return;
    }
    // dc1's first pod by IP, as a datacenter in another Kubernetes cluster names its seeds.
    let pods: Api<Pod> = Api::namespaced(scenario.cluster().client(), NAMESPACE);
    let seed = pods
        .get(&sample_pod("rack1", 0))
        .await
        .expect("dc1's first pod")
        .status
        .and_then(|status| status.pod_ip)
        .expect("pod IP");
    let dc2 = k8ssandra_e2e::scenario::one_rack_datacenter(
        "dc2",
        1,
        "",
        &format!("  additionalSeeds: [\"{seed}\"]\n"),
    );
    scenario.apply(&dc2).await.expect("dc2");
    scenario.wait_converged("dc2", 1).await.expect("dc2 joins");
    let ring = scenario.mgmt.cassandra().endpoints();
    let in_dc = |dc: &str| {
        ring.entries
            .iter()
            .filter(|e| e.datacenter() == Some(dc))
            .count()
    };
    assert_eq!((in_dc("dc1"), in_dc("dc2")), (3, 1), "one ring");
    // dc2's additional-seed Service resolves to that pod.
    let slice = Api::<EndpointSlice>::namespaced(scenario.cluster().client(), NAMESPACE)
        .get("cluster1-dc2-additional-seed-service-ipv4")
        .await
        .expect("the additional seed's EndpointSlice is accepted");
    let addresses: Vec<String> = slice
        .endpoints
        .iter()
        .flat_map(|e| e.addresses.clone())
        .collect();
    assert_eq!(addresses, [seed]);
    // Its node joined on its first start, through the additional seed, and was labelled a seed
    // only afterwards (as every datacenter's seeds are, once its nodes are up).
    let starts = scenario
        .mgmt
        .cassandra()
        .calls()
        .for_pod("cluster1-dc2-default-sts-0")
        .count(Route::LifecycleStart);
    assert_eq!(starts, 1);
    let events = Api::<Event>::namespaced(scenario.cluster().client(), NAMESPACE)
        .list(&Default::default())
        .await
        .expect("events")
        .items;
    let first = |reason: &str| {
        events
            .iter()
            .filter(|e| e.reason.as_deref() == Some(reason))
            .filter(|e| e.regarding.as_ref().and_then(|r| r.name.as_deref()) == Some("dc2"))
            .filter_map(|e| e.event_time.as_ref().map(|t| t.0))
            .min()
    };
    let started = first("StartingCassandra").expect("a start");
    let labelled = first("LabeledSeed").expect("a seed label");
    assert!(
        started < labelled,
        "started at {started}, labelled at {labelled}"
    );
}
