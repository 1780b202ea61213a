//! Seeds: the additional-seed EndpointSlices exist only while there are additional seeds, and a
//! change of the seed set makes every running node reload its seeds, once per change.
#![allow(clippy::expect_used)]

use std::{collections::BTreeMap, time::Duration};

use k8s_openapi::api::discovery::v1::EndpointSlice;
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
    for call in scenario.mgmt.cassandra().calls().calls {
        if call.route == Some(Route::SeedsReload) {
            *count.entry(call.pod).or_insert(0) += 1;
        }
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
