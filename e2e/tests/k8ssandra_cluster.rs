//! The K8ssandraCluster across a fleet of three clusters: the control plane in cluster 0, a data
//! plane in each of clusters 1 and 2, ClientConfigs with ServiceAccount kubeconfigs, and the fake
//! Management API on every Cassandra pod (whose nodes start only when a seed they know is up).
//! The docs' two-datacenter sample converges into one Cassandra cluster with its status in one
//! place; changes reach the right cluster; a steady state makes no request; an unreachable
//! cluster holds up only its own datacenter; ClientConfigs are picked up live; bad input is
//! refused with a reason; no secret is published; deletion removes everything it made.
#![allow(clippy::expect_used)]

use std::{
    collections::BTreeMap,
    time::{Duration, Instant},
};

use k8s_openapi::api::{
    core::v1::{Pod, ServiceAccount},
    discovery::v1::EndpointSlice,
};
use k8ssandra_api::{
    cassandra::CassandraDatacenter, conditions::ConditionStatus, k8ssandra::K8ssandraCluster,
};
use k8ssandra_e2e::{LocalCluster, wait};
use k8ssandra_mgmt_api::NodeStatus;
use kube::{
    Api, ResourceExt,
    api::{DeleteParams, ListParams, Patch, PatchParams},
};

mod support;

use support::*;

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

/// The addresses of a seed EndpointSlice the control plane wrote.
async fn seed_slice_addresses(cluster: &LocalCluster, name: &str) -> Option<Vec<String>> {
    let slice = Api::<EndpointSlice>::namespaced(cluster.client(), NAMESPACE)
        .get_opt(name)
        .await
        .expect("read")?;
    let mut addresses: Vec<String> = slice
        .endpoints
        .iter()
        .flat_map(|e| e.addresses.clone())
        .collect();
    addresses.sort();
    Some(addresses)
}

/// The IPs of the seed pods of a datacenter.
async fn seed_pod_ips(cluster: &LocalCluster, dc: &str) -> Vec<String> {
    let pods = Api::<Pod>::namespaced(cluster.client(), NAMESPACE)
        .list(&ListParams::default().labels(&format!(
            "cassandra.datastax.com/datacenter={dc},cassandra.datastax.com/seed-node=true"
        )))
        .await
        .expect("pods");
    let mut ips: Vec<String> = pods
        .items
        .iter()
        .filter_map(|p| p.status.as_ref()?.pod_ip.clone())
        .collect();
    ips.sort();
    ips
}

#[tokio::test]
async fn the_two_datacenter_sample_converges_and_follows_changes() {
    let setup = Setup::start("k8ssandra_cluster_sample").await;
    let mut secrets = [setup.client_config(1).await, setup.client_config(2).await]
        .iter()
        .map(|k| token_of(k))
        .collect::<Vec<_>>();
    let sample = sample();
    setup.apply(&sample).await;

    let k8c = setup.wait_ready().await;
    let status = k8c.status.clone().expect("status");
    assert_eq!(status.ready_datacenters.as_deref(), Some("2/2"));
    assert_eq!(status.error.as_deref(), Some("None"));
    assert_eq!(status.observed_generation, k8c.metadata.generation);
    for (dc, context) in [("dc1", "kind-k8ssandra-1"), ("dc2", "kind-k8ssandra-2")] {
        let entry = &status.datacenters.as_ref().expect("datacenters")[dc];
        assert_eq!(entry.context_name.as_deref(), Some(context));
        let cassandra = entry.cassandra.as_ref().expect("rolled-up status");
        assert_eq!(cassandra.ready_nodes, Some(3), "{dc}: {cassandra:?}");
    }
    assert!(
        condition(&k8c, "CassandraInitialized").is_some_and(|c| c.is_true()),
        "{status:?}"
    );

    // Each datacenter in its own cluster only.
    for (index, present) in [(0, &[][..]), (1, &["dc1"][..]), (2, &["dc2"][..])] {
        assert_eq!(
            setup.datacenter_names(index).await,
            present,
            "CassandraDatacenters in cluster {index}"
        );
    }

    // One gossip table: six NORMAL nodes, three in each datacenter.
    let count_by_dc = || {
        let mut by_dc: BTreeMap<String, usize> = BTreeMap::new();
        for entry in &setup.mgmt.cassandra().endpoints().entries {
            assert_eq!(entry.status(), NodeStatus::Normal, "{entry:?}");
            *by_dc
                .entry(entry.datacenter().unwrap_or_default().to_owned())
                .or_default() += 1;
        }
        by_dc
    };
    assert_eq!(
        count_by_dc(),
        BTreeMap::from([("dc1".into(), 3), ("dc2".into(), 3)])
    );
    // Every node started at its first try: a dc2 node knew a live dc1 seed before it started.
    assert_eq!(
        setup.mgmt.cassandra().exits(),
        Vec::<(String, String)>::new(),
        "Cassandra processes that exited at start"
    );
    // Each datacenter's additional-seed Service lists the other datacenter's seed pods.
    for (index, dc, other, other_dc) in [(2, "dc2", 1, "dc1"), (1, "dc1", 2, "dc2")] {
        let slice = format!("demo-demo-{dc}-additional-seed-service-ipv4");
        let listed = seed_slice_addresses(setup.fleet.cluster(index), &slice).await;
        let seeds = seed_pod_ips(setup.fleet.cluster(other), other_dc).await;
        assert!(!seeds.is_empty());
        assert_eq!(listed, Some(seeds), "{slice} in cluster {index}");
    }

    // The same superuser password in both datacenters' namespaces.
    let source = setup.password(0).await;
    assert_eq!(source.len(), 54);
    assert_eq!(setup.password(1).await, source);
    assert_eq!(setup.password(2).await, source);
    secrets.push(String::from_utf8(source).expect("utf-8"));

    // Steady state: a pass of everything (each object touched) makes no request but the watches,
    // in any of the three clusters, and no Management API write.
    setup.settle().await;
    let data_plane_passes: Vec<u64> = setup.data_planes.iter().map(|d| d.passes()).collect();
    let control_passes = setup.control.passes("k8ssandracluster");
    setup.control.requests().clear();
    for context in ["kind-k8ssandra-1", "kind-k8ssandra-2"] {
        setup.control.remote_requests(context).clear();
    }
    for data_plane in &setup.data_planes {
        data_plane.requests().clear();
    }
    let mgmt_writes = setup.mgmt.cassandra().calls().write_count();
    let touch =
        serde_json::json!({ "metadata": { "annotations": { "example.com/touched": "yes" } } });
    setup
        .clusters()
        .patch("demo", &PatchParams::default(), &Patch::Merge(&touch))
        .await
        .expect("touch demo");
    for (index, dc) in [(1, "dc1"), (2, "dc2")] {
        setup
            .datacenters(index)
            .patch(dc, &PatchParams::default(), &Patch::Merge(&touch))
            .await
            .expect("touch dc");
    }
    wait::until(
        "a pass of every controller",
        Duration::from_secs(30),
        || async {
            let data_planes_passed = setup
                .data_planes
                .iter()
                .zip(&data_plane_passes)
                .all(|(d, before)| d.passes() > *before);
            // The K8ssandraCluster and each datacenter's change trigger one pass each.
            let control_passed = setup.control.passes("k8ssandracluster") >= control_passes + 3;
            (data_planes_passed && control_passed).then_some(())
        },
    )
    .await
    .expect("passes");
    // The passes the other touches trigger (they may be merged into one) end too.
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(
        setup.control.requests().all(),
        Vec::<String>::new(),
        "control plane requests to its own cluster"
    );
    for context in ["kind-k8ssandra-1", "kind-k8ssandra-2"] {
        assert_eq!(
            setup.control.remote_requests(context).all(),
            Vec::<String>::new(),
            "control plane requests to {context}"
        );
    }
    for (index, data_plane) in setup.data_planes.iter().enumerate() {
        assert_eq!(
            data_plane.requests().all(),
            Vec::<String>::new(),
            "data plane requests in cluster {}",
            index + 1
        );
    }
    assert_eq!(
        setup.mgmt.cassandra().calls().write_count(),
        mgmt_writes,
        "Management API writes"
    );

    // dc2 grows to 4 nodes through the K8ssandraCluster: Progressing, then Ready.
    let grown = sample.replacen(
        "name: dc2\n        k8sContext: kind-k8ssandra-2\n        size: 3",
        "name: dc2\n        k8sContext: kind-k8ssandra-2\n        size: 4",
        1,
    );
    assert_ne!(grown, sample);
    let before_growth = setup.starts();
    setup.apply(&grown).await;
    setup
        .wait_condition(
            "Progressing",
            ConditionStatus::True,
            "dc2 in kind-k8ssandra-2",
            CONVERGE,
        )
        .await;
    let k8c = setup.wait_ready().await;
    let dc2 = &k8c
        .status
        .as_ref()
        .expect("status")
        .datacenters
        .as_ref()
        .expect("dcs")["dc2"];
    assert_eq!(dc2.cassandra.as_ref().and_then(|c| c.ready_nodes), Some(4));
    assert_eq!(
        setup
            .datacenters(2)
            .get("dc2")
            .await
            .expect("dc2")
            .spec
            .size,
        4
    );
    assert_eq!(
        count_by_dc(),
        BTreeMap::from([("dc1".into(), 3), ("dc2".into(), 4)])
    );
    let after_growth = setup.starts();
    let restarted: Vec<&String> = before_growth
        .iter()
        .filter(|(pod, n)| after_growth.get(*pod) != Some(n))
        .map(|(pod, _)| pod)
        .collect();
    assert!(
        restarted.is_empty(),
        "restarted by the scale-up: {restarted:?}"
    );

    // A configuration change rolls every node of both datacenters.
    let tuned = grown.replacen("heapSize: 512M", "heapSize: 768M", 1);
    assert_ne!(tuned, grown);
    setup.apply(&tuned).await;
    wait::until("every node restarted", CONVERGE, || async {
        let now = setup.starts();
        (after_growth.len() == 7
            && after_growth
                .iter()
                .all(|(pod, n)| now.get(pod).is_some_and(|m| m > n)))
        .then_some(())
    })
    .await
    .expect("a rolling restart of both datacenters");
    setup.wait_ready().await;
    for (index, dc) in [(1, "dc1"), (2, "dc2")] {
        let config = setup
            .datacenters(index)
            .get(dc)
            .await
            .expect("dc")
            .spec
            .config
            .expect("config");
        assert!(config.to_string().contains("768M"), "{dc}: {config}");
    }

    // Re-applying the same spec restarts nothing and writes nothing anywhere.
    setup.settle().await;
    let starts = setup.starts();
    for context in ["kind-k8ssandra-1", "kind-k8ssandra-2"] {
        setup.control.remote_requests(context).clear();
    }
    let passes = setup.control.passes("k8ssandracluster");
    setup.apply(&tuned).await;
    setup
        .clusters()
        .patch("demo", &PatchParams::default(), &Patch::Merge(&serde_json::json!({ "metadata": { "annotations": { "example.com/touched": "again" } } })))
        .await
        .expect("touch");
    wait::until("a pass", Duration::from_secs(30), || async {
        (setup.control.passes("k8ssandracluster") > passes).then_some(())
    })
    .await
    .expect("a pass");
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(setup.starts(), starts, "starts after re-applying");
    for context in ["kind-k8ssandra-1", "kind-k8ssandra-2"] {
        assert_eq!(
            setup.control.remote_requests(context).writes(),
            Vec::<String>::new(),
            "control plane writes to {context} after re-applying"
        );
    }

    setup.assert_secrets_stay_secret(&secrets).await;

    // Deleting the K8ssandraCluster removes what it made everywhere.
    setup.delete_and_wait().await;
    setup.assert_nothing_left().await;
}

#[tokio::test]
async fn an_unreachable_cluster_holds_up_only_its_own_datacenter() {
    let mut setup = Setup::start("k8ssandra_cluster_outage").await;
    setup.client_config(1).await;
    setup.client_config(2).await;
    let sample = sample();
    setup.apply(&sample).await;
    setup.wait_ready().await;

    // Cluster 2's API server stops: dc1 still follows the spec, and the status names cluster 2.
    setup.fleet.cluster_mut(2).stop_apiserver();
    let stopped = Instant::now();
    setup
        .wait_condition(
            "Degraded",
            ConditionStatus::True,
            "dc2 in kind-k8ssandra-2: cluster unreachable",
            CONVERGE,
        )
        .await;
    eprintln!(
        "unreachable cluster reported after {:.1?}",
        stopped.elapsed()
    );
    let grown = sample.replacen(
        "name: dc1\n        k8sContext: kind-k8ssandra-1\n        size: 3",
        "name: dc1\n        k8sContext: kind-k8ssandra-1\n        size: 4",
        1,
    );
    assert_ne!(grown, sample);
    setup.apply(&grown).await;
    wait::object(
        &setup.datacenters(1),
        "dc1",
        "dc1 with 4 ready nodes",
        CONVERGE,
        |dc: &CassandraDatacenter| {
            dc.spec.size == 4 && dc.status.as_ref().and_then(|s| s.ready_nodes) == Some(4)
        },
    )
    .await
    .expect("dc1 grows while cluster 2 is away");
    let k8c = setup.clusters().get("demo").await.expect("demo");
    let degraded = condition(&k8c, "Degraded").expect("Degraded");
    assert!(degraded.is_true(), "{degraded:?}");
    let ready = condition(&k8c, "Ready").expect("Ready");
    assert_eq!(ready.status, ConditionStatus::False, "{ready:?}");

    // About a minute later it is back, and everything converges.
    let away = Duration::from_secs(60).saturating_sub(stopped.elapsed());
    tokio::time::sleep(away).await;
    setup
        .fleet
        .cluster_mut(2)
        .restart_apiserver()
        .await
        .expect("apiserver back");
    let back = Instant::now();
    setup.wait_ready().await;
    setup
        .wait_condition("Degraded", ConditionStatus::False, "", CONVERGE)
        .await;
    eprintln!(
        "converged {:.1?} after cluster 2's API server came back",
        back.elapsed()
    );
    assert!(
        setup
            .events_of("demo")
            .await
            .iter()
            .any(|e| e.contains("kind-k8ssandra-2: cluster unreachable")),
        "an Event names the unreachable cluster"
    );
    let dc1_nodes = setup
        .mgmt
        .cassandra()
        .endpoints()
        .entries
        .iter()
        .filter(|e| e.datacenter() == Some("dc1") && e.status() == NodeStatus::Normal)
        .count();
    assert_eq!(dc1_nodes, 4);

    // Deleting while cluster 2 is away: dc1 goes, the status says what waits, and the deletion
    // ends once cluster 2 is back.
    setup.fleet.cluster_mut(2).stop_apiserver();
    setup
        .wait_condition(
            "Degraded",
            ConditionStatus::True,
            "kind-k8ssandra-2: cluster unreachable",
            CONVERGE,
        )
        .await;
    setup
        .clusters()
        .delete("demo", &DeleteParams::default())
        .await
        .expect("delete");
    let k8c = setup
        .wait_condition(
            "Degraded",
            ConditionStatus::True,
            "its datacenters are deleted once it is back",
            CONVERGE,
        )
        .await;
    assert_eq!(
        condition(&k8c, "Degraded")
            .and_then(|c| c.reason)
            .as_deref(),
        Some("DeletionBlocked")
    );
    wait::until("dc1 gone from cluster 1", CONVERGE, || async {
        setup.datacenter_names(1).await.is_empty().then_some(())
    })
    .await
    .expect("dc1 deleted");
    assert!(
        setup
            .events_of("demo")
            .await
            .iter()
            .any(|e| e.starts_with("DeletionBlocked") && e.contains("kind-k8ssandra-2")),
        "a DeletionBlocked Event names cluster 2"
    );
    setup
        .fleet
        .cluster_mut(2)
        .restart_apiserver()
        .await
        .expect("apiserver back");
    setup.wait_gone().await;
    setup.assert_nothing_left().await;
}

#[tokio::test]
async fn client_configs_are_picked_up_live_and_bad_input_is_refused() {
    let setup = Setup::start("k8ssandra_cluster_inputs").await;
    let mut secrets = vec![token_of(&setup.client_config(1).await)];
    // Cluster 2's ClientConfig is there, its Secret not yet.
    let context2 = setup.fleet.cluster(2).context().to_owned();
    setup
        .client_config_object(&context2, &format!("{context2}-kubeconfig"))
        .await;
    setup.apply(&sample()).await;
    setup
        .wait_condition(
            "Degraded",
            ConditionStatus::True,
            "dc2 in kind-k8ssandra-2: ClientConfig unusable: Secret kind-k8ssandra-2-kubeconfig \
             does not exist",
            CONVERGE,
        )
        .await;
    assert!(setup.datacenter_names(2).await.is_empty());
    secrets.push(token_of(
        &setup.kubeconfig_secret(2, "k8ssandra-control-plane").await,
    ));
    setup.wait_ready().await;

    // Cluster 1's kubeconfig rotated to a new token, the old one revoked: the control plane
    // still writes there (a seed EndpointSlice deleted by hand comes back).
    let rotated = setup
        .kubeconfig_secret(1, "k8ssandra-control-plane-2")
        .await;
    secrets.push(token_of(&rotated));
    wait::until("the rotated client", CONVERGE, || async {
        let Some(k8ssandra_control_plane::remote::Remote::Connected(remote)) =
            setup.control.registry().get("kind-k8ssandra-1")
        else {
            return None;
        };
        (remote.health() == k8ssandra_control_plane::remote::Health::Reachable
            && remote.seed_slices.is_ready())
        .then_some(())
    })
    .await
    .expect("reachable");
    tokio::time::sleep(Duration::from_secs(2)).await;
    Api::<ServiceAccount>::namespaced(setup.fleet.cluster(1).client(), "kube-system")
        .delete("k8ssandra-control-plane", &DeleteParams::default())
        .await
        .expect("revoke");
    let slice = "demo-demo-dc1-additional-seed-service-ipv4";
    let slices = Api::<EndpointSlice>::namespaced(setup.fleet.cluster(1).client(), NAMESPACE);
    let uid = slices.get(slice).await.expect("slice").uid();
    slices
        .delete(slice, &DeleteParams::default())
        .await
        .expect("delete slice");
    wait::until("the seed slice written again", CONVERGE, || async {
        let again = slices.get_opt(slice).await.ok()??;
        (again.uid() != uid).then_some(())
    })
    .await
    .expect("rewritten with the new token");
    setup.wait_ready().await;

    // Bad input: each refused with a reason and an Event; nothing is applied; the operator runs on.
    let bad = |name: &str, datacenters: &str| {
        format!(
            "apiVersion: k8ssandra.io/v1alpha1\nkind: K8ssandraCluster\nmetadata:\n  name: {name}\n\
             spec:\n  cassandra:\n    serverVersion: \"4.1.5\"\n    storageConfig:\n      \
             cassandraDataVolumeClaimSpec:\n        storageClassName: standard\n        \
             accessModes: [ReadWriteOnce]\n        resources: {{requests: {{storage: 1Gi}}}}\n    \
             datacenters:\n{datacenters}"
        )
    };
    let dc = |name: &str, context: &str, extra: &str| {
        format!(
            "      - metadata:\n          name: {name}\n        k8sContext: {context}\n        size: 1\n{extra}"
        )
    };
    // CEL refuses two datacenters of one name at admission, also in two contexts.
    let refused = setup
        .fleet
        .cluster(0)
        .apply_yaml(
            NAMESPACE,
            &bad(
                "same-name",
                &(dc("dc1", "kind-k8ssandra-1", "") + &dc("dc1", "kind-k8ssandra-2", "")),
            ),
        )
        .await
        .expect_err("refused at admission");
    assert!(
        refused
            .to_string()
            .contains("datacenter names (metadata.name) must be unique"),
        "{refused}"
    );
    for context in ["no-key", "not-yaml", "no-context"] {
        setup
            .client_config_object(context, &format!("{context}-kubeconfig"))
            .await;
    }
    put_secret(
        setup.fleet.cluster(0),
        "no-key-kubeconfig",
        &[("config", "x")],
    )
    .await;
    put_secret(
        setup.fleet.cluster(0),
        "not-yaml-kubeconfig",
        &[("kubeconfig", "clusters: [unclosed")],
    )
    .await;
    put_secret(
        setup.fleet.cluster(0),
        "no-context-kubeconfig",
        &[("kubeconfig", &rotated)],
    )
    .await;
    let cases = [
        (
            "unknown-context",
            dc("dc1", "kind-nowhere", ""),
            "Valid",
            "kind-nowhere",
        ),
        (
            "same-cassandra-name",
            dc("a", "kind-k8ssandra-1", "        datacenterName: shared\n")
                + &dc("b", "kind-k8ssandra-2", "        datacenterName: shared\n"),
            "Valid",
            "datacenters a and b have the same Cassandra datacenter name \"shared\"",
        ),
        (
            "key-missing",
            dc("dc1", "no-key", ""),
            "Degraded",
            "Secret no-key-kubeconfig has no key `kubeconfig`",
        ),
        (
            "malformed",
            dc("dc1", "not-yaml", ""),
            "Degraded",
            "key `kubeconfig` of Secret not-yaml-kubeconfig is not a kubeconfig",
        ),
        (
            "context-absent",
            dc("dc1", "no-context", ""),
            "Degraded",
            "context no-context is not in the kubeconfig of Secret no-context-kubeconfig",
        ),
    ];
    for (name, datacenters, _, _) in &cases {
        setup.apply(&bad(name, datacenters)).await;
    }
    for (name, _, type_, text) in &cases {
        let what = format!("{name}: {type_} naming {text:?}");
        let (type_, wanted_text) = (type_.to_string(), text.to_string());
        let waited = wait::object(
            &setup.clusters(),
            name,
            &what,
            CONVERGE,
            move |k8c: &K8ssandraCluster| {
                condition(k8c, &type_).is_some_and(|c| {
                    let wanted = if type_ == "Valid" {
                        ConditionStatus::False
                    } else {
                        ConditionStatus::True
                    };
                    c.status == wanted
                        && c.message
                            .as_deref()
                            .is_some_and(|m| m.contains(&wanted_text))
                })
            },
        )
        .await;
        if let Err(error) = waited {
            let last = setup.clusters().get_opt(name).await.ok().flatten();
            panic!("{error}; last status: {:#?}", last.and_then(|k| k.status));
        }
        let events = setup.events_of(name).await;
        assert!(
            events.iter().any(|e| e.contains(*text)),
            "{name}: an Event saying {text:?}: {events:?}"
        );
    }
    // Nothing of them anywhere: only the sample's datacenters exist.
    assert_eq!(setup.datacenter_names(0).await, Vec::<String>::new());
    assert_eq!(setup.datacenter_names(1).await, ["dc1"]);
    assert_eq!(setup.datacenter_names(2).await, ["dc2"]);
    // The operator runs on: the sample is still Ready.
    setup.wait_ready().await;

    secrets.push(String::from_utf8(setup.password(0).await).expect("utf-8"));
    setup.assert_secrets_stay_secret(&secrets).await;
    for (name, _, _, _) in &cases {
        setup
            .clusters()
            .delete(name, &DeleteParams::default())
            .await
            .expect("delete");
    }
    setup.delete_and_wait().await;
    setup.assert_nothing_left().await;
}
