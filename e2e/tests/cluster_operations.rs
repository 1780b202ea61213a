//! The cluster-wide Cassandra operations of a K8ssandraCluster across a fleet of four clusters:
//! the control plane in cluster 0, a data plane in each of clusters 1 to 3, the fake Management
//! API on every Cassandra pod. The system keyspaces follow the datacenters; a datacenter added
//! to the running cluster is rebuilt (a failed rebuild is reported and retried); a datacenter
//! removed while a keyspace replicates to it is refused, then decommissioned; a stopped
//! datacenter keeps its data; and every Management API call is made by the data plane of the
//! pod's own cluster, none by the control plane.
#![allow(clippy::expect_used)]

mod support;

use std::{collections::BTreeMap, time::Duration};

use k8s_openapi::api::core::v1::PersistentVolumeClaim;
use k8ssandra_api::{conditions::ConditionStatus, k8ssandra::K8ssandraCluster};
use k8ssandra_e2e::wait;
use k8ssandra_mgmt_api::{
    Route,
    fake::{DecommissionCheck, FakeClusterConfig, Fault, Times},
};
use kube::{
    Api,
    api::{ListParams, Patch, PatchParams},
};
use support::*;

const SYSTEM_KEYSPACES: [&str; 3] = ["system_auth", "system_distributed", "system_traces"];

fn factors(pairs: &[(&str, u32)]) -> BTreeMap<String, u32> {
    pairs.iter().map(|(dc, f)| ((*dc).to_owned(), *f)).collect()
}

/// The sample with a third datacenter in cluster 3, and the annotation that replicates `orders`
/// to it.
fn with_dc3() -> String {
    let mut yaml = sample().replace(
        "metadata:\n  name: demo\n",
        "metadata:\n  name: demo\n  annotations:\n    k8ssandra.io/dc-replication: '{\"dc3\": {\"orders\": 3}}'\n",
    );
    yaml.push_str(
        "      - metadata:\n          name: dc3\n        k8sContext: kind-k8ssandra-3\n        size: 3\n",
    );
    yaml
}

impl Setup {
    /// Waits until each system keyspace replicates as `wanted` in the fake's schema.
    async fn wait_system_replication(&self, wanted: &BTreeMap<String, u32>) {
        let what = format!("system keyspaces at {wanted:?}");
        let outcome = wait::until(&what, CONVERGE, || async {
            SYSTEM_KEYSPACES
                .iter()
                .all(|k| {
                    self.mgmt
                        .cassandra()
                        .keyspace_replication(k)
                        .is_some_and(|r| r.datacenter_factors() == *wanted)
                })
                .then_some(())
        })
        .await;
        if outcome.is_err() {
            let now: Vec<_> = SYSTEM_KEYSPACES
                .iter()
                .map(|k| self.mgmt.cassandra().keyspace_replication(k))
                .collect();
            panic!("{what}: now {now:?}");
        }
    }

    /// The Management API calls that change something, so far.
    fn management_writes(&self) -> usize {
        self.mgmt
            .cassandra()
            .calls()
            .calls
            .iter()
            .filter(|c| c.method != "GET")
            .count()
    }

    async fn k8c(&self) -> K8ssandraCluster {
        self.clusters().get("demo").await.expect("demo")
    }
}

#[tokio::test]
async fn datacenters_join_leave_and_stop_through_their_own_data_planes() {
    // A datacenter's last nodes leave only with `force`, as Cassandra decides it.
    let cassandra = FakeClusterConfig {
        decommission_check: DecommissionCheck::UnlessForced,
        ..FakeClusterConfig::fast()
    };
    let setup = Setup::start_configured("cluster_operations", 3, cassandra).await;
    for index in 1..=3 {
        setup.least_privilege_client_config(index).await;
    }
    setup.apply(&sample()).await;
    setup.wait_ready().await;

    // The system keyspaces replicate to both datacenters, and the status records it.
    setup
        .wait_system_replication(&factors(&[("dc1", 3), ("dc2", 3)]))
        .await;
    wait::until("systemReplication recorded", CONVERGE, || async {
        let k8c = setup.k8c().await;
        (k8c.status?.system_replication? == [("dc1".into(), 3), ("dc2".into(), 3)].into())
            .then_some(())
    })
    .await
    .expect("recorded");
    setup.settle().await;

    // A pass over an unchanged cluster makes no Management API write (nor any call at all).
    let passes = setup.control.passes("k8ssandracluster");
    let writes = setup.management_writes();
    let calls = setup.mgmt.cassandra().calls().calls.len();
    let clusters = setup.clusters();
    clusters
        .patch(
            "demo",
            &PatchParams::default(),
            &Patch::Merge(&serde_json::json!({"metadata": {"labels": {"touched": "yes"}}})),
        )
        .await
        .expect("label");
    wait::until("a pass", CONVERGE, || async {
        (setup.control.passes("k8ssandracluster") > passes).then_some(())
    })
    .await
    .expect("pass");
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(
        setup.management_writes(),
        writes,
        "a steady-state pass wrote"
    );
    eprintln!(
        "steady-state pass: {} Management API calls (reads) by the data planes meanwhile",
        setup.mgmt.cassandra().calls().calls.len() - calls
    );

    // A user keyspace, then dc3 added in cluster 3, its first pod's rebuild failing once.
    setup
        .mgmt
        .cassandra()
        .create_keyspace("orders", &[("dc1", 3), ("dc2", 3)]);
    setup.mgmt.inject_when_running(
        "demo-dc3-default-sts-0",
        Route::RebuildV1,
        Fault::Status(500),
        Times::Once,
    );
    let added_at = std::time::Instant::now();
    setup.apply(&with_dc3()).await;
    let failed = wait::object(
        &clusters,
        "demo",
        "a failed rebuild attempt reported",
        CONVERGE,
        |k8c: &K8ssandraCluster| {
            k8c.status
                .as_ref()
                .and_then(|s| s.datacenters.as_ref()?.get("dc3")?.rebuild.clone())
                .and_then(|r| r.last_failure)
                .is_some()
        },
    )
    .await
    .expect("the failure is reported");
    let rebuild = failed.status.unwrap().datacenters.unwrap()["dc3"]
        .rebuild
        .clone()
        .unwrap();
    let failure = rebuild.last_failure.unwrap();
    assert!(
        failure.contains("demo-dc3-default-sts-0") && failure.contains("from dc1"),
        "{failure}"
    );
    let k8c = setup
        .wait_condition(
            "Ready",
            ConditionStatus::True,
            "3/3 datacenters ready",
            CONVERGE,
        )
        .await;
    eprintln!("dc3 added and rebuilt in {:?}", added_at.elapsed());
    let status = k8c.status.unwrap();
    assert!(status.datacenters.unwrap()["dc3"].rebuild.is_none());
    setup
        .wait_system_replication(&factors(&[("dc1", 3), ("dc2", 3), ("dc3", 3)]))
        .await;
    assert_eq!(
        setup
            .mgmt
            .cassandra()
            .keyspace_replication("orders")
            .unwrap()
            .datacenter_factors(),
        factors(&[("dc1", 3), ("dc2", 3), ("dc3", 3)])
    );
    let rebuilds: Vec<(String, String)> = setup
        .mgmt
        .cassandra()
        .calls()
        .calls
        .into_iter()
        .filter(|c| c.route == Some(Route::RebuildV1))
        .map(|c| (c.pod, c.query))
        .collect();
    // The pod whose rebuild failed is rebuilt again, and only it.
    for (ordinal, times) in [(0, 2), (1, 1), (2, 1)] {
        let pod = format!("demo-dc3-default-sts-{ordinal}");
        let made = rebuilds.iter().filter(|(p, _)| *p == pod).count();
        assert_eq!(made, times, "rebuilds of {pod}: {rebuilds:?}");
    }
    assert!(
        rebuilds.iter().all(|(_, q)| q.contains("src_dc=dc1")),
        "{rebuilds:?}"
    );
    let dc3_starts = setup
        .mgmt
        .cassandra()
        .calls()
        .calls
        .iter()
        .filter(|c| c.route == Some(Route::LifecycleStart) && c.pod.contains("-dc3-"))
        .count();
    assert!(dc3_starts >= 3, "dc3's nodes started");

    // Removing dc3 while `orders` replicates to it is refused, and nothing is touched.
    setup.apply(&sample()).await;
    setup
        .wait_condition("Valid", ConditionStatus::False, "orders", CONVERGE)
        .await;
    let refused = setup.k8c().await;
    assert_eq!(
        refused.status.unwrap().datacenters.unwrap()["dc3"]
            .decommission_progress
            .as_deref(),
        Some("UpdatingReplication")
    );
    assert!(setup.datacenter_names(3).await.contains(&"dc3".to_owned()));
    assert!(
        setup
            .events_of("demo")
            .await
            .iter()
            .any(|e| e.contains("orders") && e.contains("dc3")),
        "a Warning Event names the keyspace"
    );
    let decommissions = |setup: &Setup| {
        setup
            .mgmt
            .cassandra()
            .calls()
            .calls
            .iter()
            .filter(|c| matches!(c.route, Some(Route::DecommissionV0 | Route::DecommissionV1)))
            .map(|c| c.pod.clone())
            .collect::<Vec<_>>()
    };
    assert!(decommissions(&setup).is_empty());

    // Once the user dropped dc3 from it, dc3 leaves, node by node.
    setup
        .mgmt
        .cassandra()
        .create_keyspace("orders", &[("dc1", 3), ("dc2", 3)]);
    let removed_at = std::time::Instant::now();
    let gone = wait::until("dc3 gone", CONVERGE, || async {
        setup.datacenter_names(3).await.is_empty().then_some(())
    })
    .await;
    if let Err(error) = gone {
        let dc3 = setup.datacenters(3).get_opt("dc3").await.ok().flatten();
        panic!(
            "{error}; dc3: {:#?}; cluster: {:#?}",
            dc3.and_then(|d| d.status),
            setup.k8c().await.status
        );
    }
    setup
        .wait_system_replication(&factors(&[("dc1", 3), ("dc2", 3)]))
        .await;
    let k8c = setup.wait_ready().await;
    eprintln!("dc3 removed in {:?}", removed_at.elapsed());
    let status = k8c.status.unwrap();
    assert!(!status.datacenters.unwrap().contains_key("dc3"));
    wait::object(
        &clusters,
        "demo",
        "systemReplication back to dc1 and dc2",
        CONVERGE,
        |k8c: &K8ssandraCluster| {
            k8c.status
                .as_ref()
                .and_then(|s| s.system_replication.clone())
                == Some([("dc1".into(), 3), ("dc2".into(), 3)].into())
        },
    )
    .await
    .expect("recorded");
    let mut left = decommissions(&setup);
    left.sort();
    left.dedup();
    assert_eq!(
        left,
        (0..3)
            .map(|o| format!("demo-dc3-default-sts-{o}"))
            .collect::<Vec<_>>()
    );
    wait::until("no dc3 node in gossip", CONVERGE, || async {
        setup
            .mgmt
            .cassandra()
            .endpoints()
            .entries
            .iter()
            .all(|e| e.datacenter() != Some("dc3"))
            .then_some(())
    })
    .await
    .expect("gossip forgot dc3");

    // Stopping dc2 keeps its volumes and host IDs; it is reported as stopped; resuming converges.
    let host_ids = |setup: &Setup| {
        let mut ids: Vec<String> = setup
            .mgmt
            .cassandra()
            .endpoints()
            .entries
            .iter()
            .filter(|e| e.datacenter() == Some("dc2"))
            .filter_map(|e| e.host_id().map(str::to_owned))
            .collect();
        ids.sort();
        ids
    };
    let before = host_ids(&setup);
    assert_eq!(before.len(), 3);
    let stopped = sample().replace(
        "name: dc2\n        k8sContext: kind-k8ssandra-2\n        size: 3\n",
        "name: dc2\n        k8sContext: kind-k8ssandra-2\n        size: 3\n        stopped: true\n",
    );
    assert_ne!(stopped, sample());
    setup.apply(&stopped).await;
    let k8c = setup
        .wait_condition("Ready", ConditionStatus::True, "dc2 stopped", CONVERGE)
        .await;
    assert_eq!(
        k8c.status.unwrap().ready_datacenters.as_deref(),
        Some("1/2 (1 stopped)")
    );
    let claims =
        Api::<PersistentVolumeClaim>::namespaced(setup.fleet.cluster(2).client(), NAMESPACE)
            .list(&ListParams::default())
            .await
            .expect("claims");
    assert_eq!(claims.items.len(), 3, "dc2's volumes stay");
    setup.apply(&sample()).await;
    setup.wait_ready().await;
    assert_eq!(
        host_ids(&setup),
        before,
        "dc2's nodes came back as themselves"
    );

    // Every Management API call came from the data plane of the pod's own cluster.
    let calls = setup.mgmt.cassandra().calls().calls;
    assert!(!calls.is_empty());
    for call in &calls {
        let dc = call.pod.split('-').nth(1).unwrap_or_default();
        let index = dc.trim_start_matches("dc");
        let expected = data_plane_agent(&format!("kind-k8ssandra-{index}"));
        assert_eq!(
            call.user_agent.as_deref(),
            Some(expected.as_str()),
            "{} {} on {}",
            call.method,
            call.path,
            call.pod
        );
    }
    eprintln!("{} Management API calls, all by data planes", calls.len());

    // Deleting the cluster removes its datacenters and its operations' tasks everywhere.
    setup.delete_and_wait().await;
    setup.assert_nothing_left().await;
}
