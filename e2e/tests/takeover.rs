//! Taking over a running datacenter from cass-operator: with upstream's CassandraDatacenter CRD
//! still installed the status cannot be written, which the operator says (an Event naming the
//! fix) without touching a node; once this operator's CRDs are applied it takes over, and no node
//! restarts at any point.
#![allow(clippy::expect_used)]

use std::{collections::BTreeMap, time::Duration};

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use k8ssandra_api::cassandra::{CassandraDatacenter, condition};
use k8ssandra_e2e::scenario::{NAMESPACE, Scenario, is_true};
use k8ssandra_mgmt_api::Route;
use kube::{
    Api, Resource, ResourceExt,
    api::{Patch, PatchParams, PostParams},
};

/// Our CassandraDatacenter CRD as upstream's schema has it: without the status fields upstream
/// does not declare (`readyNodes`, `conditions[].observedGeneration`) and the column that shows
/// `readyNodes`.
fn upstream_shaped_crd() -> CustomResourceDefinition {
    let ours = k8ssandra_api::crd::all()
        .into_iter()
        .find(|crd| crd.spec.names.kind == CassandraDatacenter::kind(&()))
        .expect("the CassandraDatacenter CRD");
    let mut value = serde_json::to_value(&ours).expect("encodes");
    for version in value["spec"]["versions"].as_array_mut().expect("versions") {
        let status =
            &mut version["schema"]["openAPIV3Schema"]["properties"]["status"]["properties"];
        status
            .as_object_mut()
            .expect("status properties")
            .remove("readyNodes");
        status["conditions"]["items"]["properties"]
            .as_object_mut()
            .expect("condition properties")
            .remove("observedGeneration");
        version["additionalPrinterColumns"]
            .as_array_mut()
            .expect("columns")
            .retain(|c| c["jsonPath"] != ".status.readyNodes");
    }
    serde_json::from_value(value).expect("decodes")
}

fn pod_uids(pods: &[k8s_openapi::api::core::v1::Pod]) -> BTreeMap<String, String> {
    pods.iter()
        .map(|p| (p.name_any(), p.uid().unwrap_or_default()))
        .collect()
}

#[tokio::test]
async fn a_datacenter_is_taken_over_from_upstream_without_restarting_a_node() {
    let (mut scenario, _) = Scenario::with_sample("takeover")
        .await
        .expect("dc1 comes up");
    let client = scenario.cluster().client();
    // The previous operator stops; what it leaves is upstream's CRD and its own StatefulSet
    // template (another resource hash).
    scenario.crash_operator();
    let crds: Api<CustomResourceDefinition> = Api::all(client.clone());
    let mut upstream = upstream_shaped_crd();
    let live = crds.get(&upstream.name_any()).await.expect("the CRD");
    upstream.metadata.resource_version = live.resource_version();
    crds.replace(&upstream.name_any(), &PostParams::default(), &upstream)
        .await
        .expect("upstream's CRD replaces ours");
    // The API server serves the new schema a moment later: until a status with `readyNodes` is
    // refused, the takeover has not begun.
    let datacenters: Api<CassandraDatacenter> = Api::namespaced(client.clone(), NAMESPACE);
    k8ssandra_e2e::wait::until(
        "the API server serves upstream's schema",
        Duration::from_secs(30),
        || async {
            let probe = serde_json::json!({
                "apiVersion": "cassandra.datastax.com/v1beta1",
                "kind": "CassandraDatacenter",
                "status": { "readyNodes": 3 },
            });
            let refused = datacenters
                .patch_status(
                    "dc1",
                    &PatchParams::apply("takeover-probe").dry_run().force(),
                    &Patch::Apply(&probe),
                )
                .await
                .is_err_and(|e| e.to_string().contains("field not declared in schema"));
            refused.then_some(())
        },
    )
    .await
    .expect("upstream's schema is served");
    let statefulsets: Api<k8s_openapi::api::apps::v1::StatefulSet> =
        Api::namespaced(client.clone(), NAMESPACE);
    for sts in statefulsets
        .list(&Default::default())
        .await
        .expect("list")
        .items
    {
        let patch = serde_json::json!({
            "metadata": { "annotations": { "cassandra.datastax.com/resource-hash": "upstream" } }
        });
        statefulsets
            .patch(
                &sts.name_any(),
                &PatchParams::default(),
                &Patch::Merge(&patch),
            )
            .await
            .expect("annotated");
    }
    let pods_before = pod_uids(&scenario.pods().await.expect("pods"));
    let starts_before = scenario
        .mgmt
        .cassandra()
        .calls()
        .pods_called(&[Route::LifecycleStart, Route::Drain]);

    // This operator starts with upstream's CRD still installed: it says what to do.
    scenario.restart_operator().expect("the operator starts");
    k8ssandra_e2e::wait::until(
        "the outdated CRD is reported",
        Duration::from_secs(60),
        || async {
            let notes = scenario
                .event_notes(NAMESPACE, "dc1", "OutdatedCRD")
                .await
                .ok()?;
            notes.into_iter().next()
        },
    )
    .await
    .map(|note| {
        assert!(note.contains("k8ssandra-operator crd"), "{note}");
        assert!(note.contains("readyNodes"), "{note}");
    })
    .expect("an Event names the fix");

    // The documented fix: this operator's CRDs, applied server-side over upstream's.
    scenario
        .cluster()
        .install_crds()
        .await
        .expect("our CRDs apply over upstream's");
    let dc = scenario
        .wait_for("dc1", "dc1 taken over", |dc: &CassandraDatacenter| {
            dc.status.as_ref().and_then(|s| s.ready_nodes) == Some(3)
                && is_true(dc, condition::READY)
        })
        .await
        .expect("the status is written once the CRD is ours");
    // The template differs from this operator's, and the spec did not change: it is reported,
    // and no node is rolled.
    assert!(
        is_true(&dc, condition::REQUIRES_UPDATE),
        "{:?}",
        dc.status.as_ref().and_then(|s| s.conditions.clone())
    );
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(
        pod_uids(&scenario.pods().await.expect("pods")),
        pods_before,
        "no pod was recreated"
    );
    assert_eq!(
        scenario
            .mgmt
            .cassandra()
            .calls()
            .pods_called(&[Route::LifecycleStart, Route::Drain]),
        starts_before,
        "no node was started or drained"
    );
}
