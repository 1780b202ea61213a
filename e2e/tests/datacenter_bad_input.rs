//! The data plane under changes a careless or hostile user makes: upgrades, storage changes, an
//! object the operator cannot read, a task aimed at another namespace, datacenters sharing a
//! seed Service, tasks racing each other, a StatefulSet scaled by hand, and a spec the API server
//! refuses. Each ends refused or reported, with nothing touched that should not be.
#![allow(clippy::expect_used)]

use std::{collections::BTreeMap, time::Duration};

use k8s_openapi::api::{
    apps::v1::StatefulSet,
    core::v1::{PersistentVolumeClaim, Service},
    storage::v1::StorageClass,
};
use k8ssandra_api::{
    cassandra::condition,
    conditions,
    control::{CassandraTask, task_condition},
    labels,
};
use k8ssandra_e2e::{
    scenario::{NAMESPACE, Scenario, THREE_RACK_SAMPLE, condition, is_true, sample_pod},
    wait,
};
use k8ssandra_mgmt_api::Route;
use kube::{
    Api, ResourceExt,
    api::{DeleteParams, ListParams, Patch, PatchParams},
};

const LIMIT: Duration = Duration::from_secs(90);

/// Notes of the Events with `reason` about object `name` in `namespace`.
async fn event_notes(
    scenario: &Scenario,
    namespace: &str,
    name: &str,
    reason: &str,
) -> Vec<String> {
    scenario
        .event_notes(namespace, name, reason)
        .await
        .expect("events")
}

/// Pod name to UID.
async fn pod_uids(scenario: &Scenario) -> BTreeMap<String, String> {
    scenario
        .pods()
        .await
        .expect("pods")
        .iter()
        .map(|p| (p.name_any(), p.uid().expect("uid")))
        .collect()
}

/// How many `lifecycle/start` calls each pod got.
fn starts(scenario: &Scenario) -> BTreeMap<String, usize> {
    let mut out = BTreeMap::new();
    for call in scenario.mgmt.cassandra().calls().calls {
        if call.route == Some(Route::LifecycleStart) {
            *out.entry(call.pod).or_insert(0) += 1;
        }
    }
    out
}

fn statefulsets(scenario: &Scenario) -> Api<StatefulSet> {
    Api::namespaced(scenario.cluster().client(), NAMESPACE)
}

fn tasks(scenario: &Scenario, namespace: &str) -> Api<CassandraTask> {
    Api::namespaced(scenario.cluster().client(), namespace)
}

/// Waits until task `name` has finished, and returns it.
async fn finished(tasks: &Api<CassandraTask>, name: &str, limit: Duration) -> CassandraTask {
    wait::object(
        tasks,
        name,
        &format!("{name} finished"),
        limit,
        |t: &CassandraTask| {
            t.status
                .as_ref()
                .is_some_and(|s| s.completion_time.is_some())
        },
    )
    .await
    .expect("the task finishes")
}

fn task_condition_of<'a>(
    task: &'a CassandraTask,
    type_: &str,
) -> Option<&'a conditions::Condition> {
    conditions::find(task.status.as_ref()?.conditions.as_deref()?, type_)
}

/// Waits until dc1 is `Valid=False` with `reason`, and returns its message.
async fn refused(scenario: &Scenario, reason: &'static str) -> String {
    let dc = scenario
        .wait_for("dc1", &format!("dc1 Valid=False {reason}"), move |dc| {
            condition(dc, condition::VALID)
                .is_some_and(|c| !c.is_true() && c.reason.as_deref() == Some(reason))
        })
        .await
        .expect("the refusal is reported");
    condition(&dc, condition::VALID)
        .and_then(|c| c.message.clone())
        .unwrap_or_default()
}

async fn valid_again(scenario: &Scenario) {
    scenario
        .wait_for("dc1", "dc1 Valid=True", |dc| is_true(dc, condition::VALID))
        .await
        .expect("dc1 is valid again");
}

fn claim_template_storage(sts: &StatefulSet) -> Option<String> {
    sts.spec
        .as_ref()?
        .volume_claim_templates
        .as_ref()?
        .first()?
        .spec
        .as_ref()?
        .resources
        .as_ref()?
        .requests
        .as_ref()?
        .get("storage")
        .map(|q| q.0.clone())
}

#[tokio::test]
async fn an_upgrade_with_new_labels_rolls_every_node_once_and_converges() {
    let (scenario, _) = Scenario::with_sample("bad_upgrade")
        .await
        .expect("dc1 comes up");
    let claims_before: Vec<_> = statefulsets(&scenario)
        .list(&ListParams::default().labels(labels::DATACENTER))
        .await
        .expect("statefulsets")
        .items
        .into_iter()
        .map(|s| s.spec.and_then(|s| s.volume_claim_templates))
        .collect();
    let before = starts(&scenario);
    assert!(before.values().all(|n| *n == 1), "{before:?}");

    // 4.1.5 -> 4.1.6 and a new label: both used to reach the immutable claim templates.
    scenario
        .patch_spec(
            "dc1",
            serde_json::json!({ "serverVersion": "4.1.6", "additionalLabels": { "team": "storage" } }),
        )
        .await
        .expect("the upgrade is admitted");
    let dc = scenario
        .wait_for("dc1", "dc1 upgraded and converged", |dc| {
            k8ssandra_e2e::scenario::is_converged(dc, 3)
        })
        .await
        .expect("the upgrade converges");
    assert!(is_true(&dc, condition::VALID));
    let after = starts(&scenario);
    assert_eq!(
        after.values().copied().collect::<Vec<_>>(),
        vec![2, 2, 2],
        "every node restarted exactly once: {after:?}"
    );
    for pod in scenario.pods().await.expect("pods") {
        assert_eq!(
            pod.labels().get(labels::VERSION).map(String::as_str),
            Some("4.1.6")
        );
        assert_eq!(
            pod.labels().get("team").map(String::as_str),
            Some("storage")
        );
    }
    let claims_after: Vec<_> = statefulsets(&scenario)
        .list(&ListParams::default().labels(labels::DATACENTER))
        .await
        .expect("statefulsets")
        .items
        .into_iter()
        .map(|s| s.spec.and_then(|s| s.volume_claim_templates))
        .collect();
    assert_eq!(claims_after, claims_before, "claim templates never change");
}

#[tokio::test]
async fn storage_grows_only_when_allowed_and_a_refused_grow_can_be_set_back() {
    let (scenario, _) = Scenario::with_sample("bad_storage")
        .await
        .expect("dc1 comes up");
    let uids = pod_uids(&scenario).await;
    let grow = serde_json::json!({ "storageConfig": { "cassandraDataVolumeClaimSpec": {
        "resources": { "requests": { "storage": "10Gi" } } } } });

    // Without the annotation: refused, and said how to proceed.
    scenario
        .patch_spec("dc1", grow.clone())
        .await
        .expect("admitted");
    let message = refused(&scenario, "StorageChangeNotAllowed").await;
    assert!(
        message.contains("cassandra.datastax.com/allow-storage-changes=true")
            && message.contains("10Gi")
            && message.contains("5Gi"),
        "{message}"
    );
    assert!(
        !event_notes(&scenario, NAMESPACE, "dc1", "StorageChangeNotAllowed")
            .await
            .is_empty()
    );
    // The way back is admitted and ends the refusal.
    let back = serde_json::json!({ "storageConfig": { "cassandraDataVolumeClaimSpec": {
        "resources": { "requests": { "storage": "5Gi" } } } } });
    scenario.patch_spec("dc1", back).await.expect("set back");
    valid_again(&scenario).await;
    // Below what the volumes have: refused.
    let shrink = serde_json::json!({ "storageConfig": { "cassandraDataVolumeClaimSpec": {
        "resources": { "requests": { "storage": "1Gi" } } } } });
    scenario.patch_spec("dc1", shrink).await.expect("admitted");
    refused(&scenario, "StorageShrinkRefused").await;

    // Allowed, but the StorageClass cannot expand volumes: refused, naming it.
    let annotate = serde_json::json!({ "metadata": { "annotations": {
        "cassandra.datastax.com/allow-storage-changes": "true" } } });
    scenario
        .datacenters()
        .patch("dc1", &PatchParams::default(), &Patch::Merge(&annotate))
        .await
        .expect("annotated");
    scenario.patch_spec("dc1", grow).await.expect("admitted");
    let message = refused(&scenario, "StorageExpansionUnsupported").await;
    assert!(message.contains("StorageClass standard"), "{message}");

    // Once the class allows it, the volumes grow and the pods keep running.
    let expandable = serde_json::json!({ "allowVolumeExpansion": true });
    Api::<StorageClass>::all(scenario.cluster().client())
        .patch(
            "standard",
            &PatchParams::default(),
            &Patch::Merge(&expandable),
        )
        .await
        .expect("the class allows expansion");
    valid_again(&scenario).await;
    wait::until("every claim asks for 10Gi", LIMIT, || async {
        let claims =
            Api::<PersistentVolumeClaim>::namespaced(scenario.cluster().client(), NAMESPACE)
                .list(&ListParams::default().labels(labels::DATACENTER))
                .await
                .ok()?
                .items;
        let grown = claims.iter().all(|c| {
            c.spec
                .as_ref()
                .and_then(|s| s.resources.as_ref())
                .and_then(|r| r.requests.as_ref())
                .and_then(|r| r.get("storage"))
                .is_some_and(|q| q.0 == "10Gi")
        });
        (claims.len() == 3 && grown).then_some(())
    })
    .await
    .expect("the claims grow");
    wait::until(
        "every StatefulSet has 10Gi claim templates",
        LIMIT,
        || async {
            let list = statefulsets(&scenario)
                .list(&ListParams::default().labels(labels::DATACENTER))
                .await
                .ok()?;
            list.items
                .iter()
                .all(|s| claim_template_storage(s).as_deref() == Some("10Gi"))
                .then_some(())
        },
    )
    .await
    .expect("the StatefulSets are made anew");
    scenario
        .wait_converged("dc1", 3)
        .await
        .expect("dc1 converges");
    assert_eq!(pod_uids(&scenario).await, uids, "no pod was restarted");
}

/// The status of an object, whatever its spec holds.
#[derive(serde::Deserialize)]
struct StatusOnly {
    status: Option<serde_json::Value>,
}

/// A datacenter whose configuration nests deeper than the operator can read.
fn unreadable_datacenter() -> String {
    let mut nested = String::from("1");
    for _ in 0..200 {
        nested = format!("{{\"a\": {nested}}}");
    }
    format!(
        r#"{{"apiVersion": "cassandra.datastax.com/v1beta1", "kind": "CassandraDatacenter",
        "metadata": {{"name": "deep"}},
        "spec": {{"clusterName": "cluster9", "serverType": "cassandra", "serverVersion": "4.1.5",
          "size": 1, "storageConfig": {{"cassandraDataVolumeClaimSpec": {{
            "accessModes": ["ReadWriteOnce"], "resources": {{"requests": {{"storage": "1Gi"}}}}}}}},
          "config": {{"cassandra-yaml": {{"deep": {nested}}}}}}}}}"#
    )
}

#[tokio::test]
async fn an_unreadable_datacenter_is_reported_and_blinds_nothing_after_a_restart() {
    let mut scenario = Scenario::start("bad_unreadable", "cluster1")
        .await
        .expect("scenario");
    // What the operator could not read before is refused at admission now.
    let too_big = THREE_RACK_SAMPLE.replace("size: 3", "size: 2147483648");
    let error = scenario.apply(&too_big).await.expect_err("size is bounded");
    assert!(error.to_string().contains("1000"), "{error}");
    let late = "apiVersion: control.k8ssandra.io/v1alpha1
kind: CassandraTask
metadata:
  name: late
spec:
  datacenter:
    name: dc1
  scheduledTime: \"9999-12-31T23:59:59Z\"
  jobs:
    - name: j
      command: cleanup
";
    let error = scenario.apply(late).await.expect_err("time is bounded");
    assert!(error.to_string().contains("9000"), "{error}");

    // An object stored that the operator cannot read, then a restart of the operator. (Sent as
    // raw JSON: any JSON or YAML parser with a depth limit refuses it on the way.)
    let client = scenario.cluster().client();
    let path =
        format!("/apis/cassandra.datastax.com/v1beta1/namespaces/{NAMESPACE}/cassandradatacenters");
    let create = http::Request::post(path.as_str())
        .header("Content-Type", "application/json")
        .body(unreadable_datacenter().into_bytes())
        .expect("request");
    client
        .request::<StatusOnly>(create)
        .await
        .expect("the API server stores it");
    scenario.restart_operator().expect("restarted");
    scenario
        .apply(THREE_RACK_SAMPLE)
        .await
        .expect("dc1 applies");
    scenario
        .wait_converged("dc1", 3)
        .await
        .expect("dc1 comes up all the same");
    let deep = wait::until("deep reported", LIMIT, || async {
        let get = http::Request::get(format!("{path}/deep"))
            .body(Vec::new())
            .ok()?;
        let object = client.request::<StatusOnly>(get).await.ok()?;
        let conditions = object.status?.get("conditions")?.as_array()?.clone();
        conditions.into_iter().find(|c| {
            c["type"] == "Valid" && c["status"] == "False" && c["reason"] == "Undecodable"
        })
    })
    .await
    .expect("the unreadable datacenter is reported on itself");
    let message = deep["message"].as_str().unwrap_or_default();
    assert!(message.contains("recursion limit"), "{message}");
    assert!(
        !event_notes(&scenario, NAMESPACE, "deep", "Undecodable")
            .await
            .is_empty()
    );
    // Nothing was made for it.
    let services = Api::<Service>::namespaced(scenario.cluster().client(), NAMESPACE)
        .list(&ListParams::default().labels("cassandra.datastax.com/cluster=cluster9"))
        .await
        .expect("services");
    assert!(services.items.is_empty());
}

fn restart_task(name: &str, namespace: &str, policy: &str) -> String {
    format!(
        "apiVersion: control.k8ssandra.io/v1alpha1
kind: CassandraTask
metadata:
  name: {name}
  namespace: {namespace}
spec:
  datacenter:
    name: dc1
    namespace: {NAMESPACE}
{policy}  jobs:
    - name: restart
      command: restart
"
    )
}

#[tokio::test]
async fn a_task_acts_only_on_a_datacenter_of_its_own_namespace() {
    let (scenario, _) = Scenario::with_sample("bad_cross_namespace")
        .await
        .expect("dc1 comes up");
    let uids = pod_uids(&scenario).await;
    scenario
        .cluster()
        .create_namespace("tenant")
        .await
        .expect("namespace");
    scenario
        .cluster()
        .apply_yaml("tenant", &restart_task("wipe", "tenant", ""))
        .await
        .expect("the task is admitted");
    let task = finished(&tasks(&scenario, "tenant"), "wipe", LIMIT).await;
    let failed = task_condition_of(&task, task_condition::FAILED).expect("Failed condition");
    assert!(failed.is_true());
    assert_eq!(failed.reason.as_deref(), Some("CrossNamespace"));
    assert!(
        failed
            .message
            .as_deref()
            .unwrap_or_default()
            .contains("\"tenant\""),
        "{failed:?}"
    );
    assert!(
        !event_notes(&scenario, "tenant", "wipe", "CrossNamespace")
            .await
            .is_empty()
    );
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(
        pod_uids(&scenario).await,
        uids,
        "no pod of cass was touched"
    );
}

fn second_datacenter() -> String {
    k8ssandra_e2e::scenario::one_rack_datacenter(
        "dc2",
        1,
        "",
        "  additionalLabels:\n    team: second\n",
    )
}

fn owners(service: &Service) -> Vec<(String, Option<bool>)> {
    service
        .owner_references()
        .iter()
        .map(|o| (o.name.clone(), o.controller))
        .collect()
}

#[tokio::test]
async fn two_datacenters_share_the_seed_service_without_writes_and_one_leaves_it_to_the_other() {
    let (scenario, _) = Scenario::with_sample("bad_shared_seed")
        .await
        .expect("dc1 comes up");
    scenario
        .apply(&second_datacenter())
        .await
        .expect("dc2 applies");
    scenario
        .wait_converged("dc2", 1)
        .await
        .expect("dc2 comes up");
    let services: Api<Service> = Api::namespaced(scenario.cluster().client(), NAMESPACE);
    let seed = services
        .get("cluster1-seed-service")
        .await
        .expect("seed service");
    assert_eq!(
        owners(&seed),
        vec![
            ("dc1".to_owned(), Some(false)),
            ("dc2".to_owned(), Some(false))
        ]
    );

    // Passes of both datacenters, triggered by annotations, write nothing once their statuses
    // settled (a status may still say something new right after convergence); the shared seed
    // Service is never written in any of them.
    let operator = scenario.operator();
    let mut rounds = Vec::new();
    for round in 0..3 {
        let passes = operator.passes();
        operator.requests().clear();
        for dc in ["dc1", "dc2"] {
            let touch = serde_json::json!({ "metadata": { "annotations": {
                "example.com/touched": round.to_string() } } });
            scenario
                .datacenters()
                .patch(dc, &PatchParams::default(), &Patch::Merge(&touch))
                .await
                .expect("annotated");
        }
        wait::until("a pass of each datacenter", LIMIT, || async {
            (operator.passes() >= passes + 2).then_some(())
        })
        .await
        .expect("passes");
        tokio::time::sleep(Duration::from_secs(2)).await;
        let writes = operator.requests().writes();
        let quiet = writes.is_empty();
        rounds.push(writes);
        if quiet {
            break;
        }
    }
    assert!(
        rounds.iter().flatten().all(|w| !w.contains("services")),
        "the seed Service was written: {rounds:?}"
    );
    assert_eq!(
        rounds.last(),
        Some(&Vec::new()),
        "passes over settled datacenters write nothing: {rounds:?}"
    );

    // Deleting dc1 leaves the seed Service to dc2.
    scenario
        .datacenters()
        .delete("dc1", &DeleteParams::default())
        .await
        .expect("dc1 deleted");
    wait::until("dc1 gone and dc2 the only owner", LIMIT, || async {
        let gone = scenario.datacenters().get_opt("dc1").await.ok()?.is_none();
        let seed = services.get_opt("cluster1-seed-service").await.ok()??;
        (gone && owners(&seed) == vec![("dc2".to_owned(), Some(false))]).then_some(())
    })
    .await
    .expect("the seed Service stays, owned by dc2");
    let seed = services
        .get("cluster1-seed-service")
        .await
        .expect("still there");
    assert_eq!(
        seed.labels().get("team").map(String::as_str),
        Some("second"),
        "its labels now come from dc2"
    );
    let dc2 = scenario.datacenters().get("dc2").await.expect("dc2");
    assert!(is_true(&dc2, condition::VALID), "{:?}", dc2.status);
}

/// Runs two restart tasks created together with `policy`, and returns the most pods that were
/// down at once while they ran.
async fn two_restarts(scenario: &Scenario, policy: &str) -> usize {
    let sampler = k8ssandra_e2e::scenario::DownSampler::start(scenario.cluster(), NAMESPACE, 3);
    let both = format!(
        "{}---\n{}",
        restart_task("first", NAMESPACE, policy),
        restart_task("second", NAMESPACE, policy)
    );
    scenario.apply(&both).await.expect("both tasks apply");
    for name in ["first", "second"] {
        let task = finished(&tasks(scenario, NAMESPACE), name, Duration::from_secs(180)).await;
        let complete = task_condition_of(&task, task_condition::COMPLETE)
            .is_some_and(conditions::Condition::is_true);
        assert!(complete, "{name}: {:?}", task.status);
    }
    sampler.most_down()
}

#[tokio::test]
async fn restart_tasks_created_together_run_one_after_the_other() {
    let (scenario, _) = Scenario::with_sample("bad_two_restarts")
        .await
        .expect("dc1 comes up");
    let most_down = two_restarts(&scenario, "").await;
    assert_eq!(most_down, 1, "never two nodes down at once");
    assert!(
        !event_notes(&scenario, NAMESPACE, "second", "WaitingForOtherTask")
            .await
            .is_empty(),
        "the second task said it waited"
    );
}

#[tokio::test]
async fn restart_tasks_that_allow_concurrency_are_held_to_the_disruption_budget() {
    let (scenario, _) = Scenario::with_sample("bad_two_allowed")
        .await
        .expect("dc1 comes up");
    let most_down = two_restarts(&scenario, "  concurrencyPolicy: Allow\n").await;
    assert_eq!(most_down, 1, "never two nodes down at once");
    scenario
        .wait_converged("dc1", 3)
        .await
        .expect("dc1 is ready again");
}

#[tokio::test]
async fn a_statefulset_scaled_or_edited_by_hand_goes_back_and_extra_pods_never_start() {
    let (scenario, _) = Scenario::with_sample("bad_hand_scaled")
        .await
        .expect("dc1 comes up");
    let rack1 = "cluster1-dc1-rack1-sts";
    let scale = serde_json::json!({ "spec": { "replicas": 3 } });
    statefulsets(&scenario)
        .patch_scale(rack1, &PatchParams::default(), &Patch::Merge(&scale))
        .await
        .expect("scaled by hand");
    wait::until("rack1 back to one pod", LIMIT, || async {
        let sts = statefulsets(&scenario).get(rack1).await.ok()?;
        let replicas = sts.spec.as_ref()?.replicas?;
        let pods = scenario.pods().await.ok()?;
        let extra = pods.iter().any(|p| {
            p.name_any().starts_with("cluster1-dc1-rack1-sts-")
                && p.name_any() != sample_pod("rack1", 0)
        });
        (replicas == 1 && !extra).then_some(())
    })
    .await
    .expect("the StatefulSet is trimmed");
    let started = starts(&scenario);
    for extra in [sample_pod("rack1", 1), sample_pod("rack1", 2)] {
        assert!(
            !started.contains_key(&extra),
            "{extra} was started: {started:?}"
        );
    }
    assert!(
        !event_notes(&scenario, NAMESPACE, "dc1", "TrimmedStatefulSet")
            .await
            .is_empty()
    );
    scenario
        .wait_converged("dc1", 3)
        .await
        .expect("dc1 stays converged");

    // An image changed by hand goes back to what the spec says.
    let image = |sts: &StatefulSet| {
        sts.spec
            .as_ref()
            .and_then(|s| s.template.spec.as_ref())
            .and_then(|s| s.containers.iter().find(|c| c.name == "cassandra"))
            .and_then(|c| c.image.clone())
    };
    let rack2 = "cluster1-dc1-rack2-sts";
    let wanted = image(&statefulsets(&scenario).get(rack2).await.expect("rack2"));
    let edit = serde_json::json!({ "spec": { "template": { "spec": { "containers": [
        { "name": "cassandra", "image": "example.com/not-cassandra:1" } ] } } } });
    let by_hand = PatchParams {
        field_manager: Some("kubectl-edit".into()),
        ..PatchParams::default()
    };
    statefulsets(&scenario)
        .patch(rack2, &by_hand, &Patch::Strategic(&edit))
        .await
        .expect("edited by hand");
    wait::until("rack2's image put back", LIMIT, || async {
        let sts = statefulsets(&scenario).get(rack2).await.ok()?;
        (image(&sts) == wanted).then_some(())
    })
    .await
    .expect("the edit is reverted");
    scenario
        .wait_converged("dc1", 3)
        .await
        .expect("dc1 converges again");
}

#[tokio::test]
async fn a_spec_the_api_server_refuses_is_reported_and_nothing_is_written() {
    let (scenario, _) = Scenario::with_sample("bad_refused_child")
        .await
        .expect("dc1 comes up");
    let uids = pod_uids(&scenario).await;
    let hashes = |list: Vec<StatefulSet>| -> Vec<Option<String>> {
        list.iter()
            .map(|s| {
                s.annotations()
                    .get("cassandra.datastax.com/resource-hash")
                    .cloned()
            })
            .collect()
    };
    let before = hashes(
        statefulsets(&scenario)
            .list(&ListParams::default().labels(labels::DATACENTER))
            .await
            .expect("statefulsets")
            .items,
    );

    // Quantities the operator could not use are refused at admission.
    let error = scenario
        .patch_spec(
            "dc1",
            serde_json::json!({ "resources": { "requests": { "cpu": "lots" } } }),
        )
        .await
        .expect_err("a bad quantity is refused");
    assert!(
        error.to_string().contains("resources.requests.cpu"),
        "{error}"
    );

    // A service account name Kubernetes refuses on the pods: reported, nothing written.
    scenario
        .patch_spec(
            "dc1",
            serde_json::json!({ "serviceAccountName": "Not_A_Name" }),
        )
        .await
        .expect("admitted");
    let message = refused(&scenario, "RefusedByApiServer").await;
    assert!(
        message.contains("StatefulSet cluster1-dc1-rack1-sts")
            && message.contains("serviceAccountName"),
        "{message}"
    );
    assert!(
        !event_notes(&scenario, NAMESPACE, "dc1", "RefusedByApiServer")
            .await
            .is_empty()
    );
    let after = hashes(
        statefulsets(&scenario)
            .list(&ListParams::default().labels(labels::DATACENTER))
            .await
            .expect("statefulsets")
            .items,
    );
    assert_eq!(after, before, "no StatefulSet was written");
    assert_eq!(pod_uids(&scenario).await, uids, "no pod was touched");

    // Set back, the datacenter is valid again.
    scenario
        .patch_spec("dc1", serde_json::json!({ "serviceAccountName": null }))
        .await
        .expect("set back");
    valid_again(&scenario).await;
}

#[tokio::test]
async fn a_node_that_left_the_ring_by_hand_is_not_counted_ready() {
    let (scenario, _) = Scenario::with_sample("bad_left_ring")
        .await
        .expect("dc1 comes up");
    // Four nodes, so that one can leave and the system keyspaces (RF 3) stay whole.
    scenario
        .patch_spec("dc1", serde_json::json!({ "size": 4 }))
        .await
        .expect("scaled");
    scenario.wait_converged("dc1", 4).await.expect("four nodes");
    // A user decommissions a node behind the operator's back (`nodetool decommission`).
    let name = sample_pod("rack1", 1);
    let pod = scenario
        .pods()
        .await
        .expect("pods")
        .into_iter()
        .find(|p| p.name_any() == name)
        .expect("the pod");
    let ip = pod
        .status
        .as_ref()
        .and_then(|s| s.pod_ip.as_deref())
        .and_then(|ip| ip.parse().ok())
        .expect("pod IP");
    k8ssandra_e2e::scenario::settings()
        .client(&name, ip)
        .decommission_blocking(false)
        .await
        .expect("decommissioned by hand");
    let dc = scenario
        .wait_for("dc1", "Ready no longer counts the node", |dc| {
            !is_true(dc, condition::READY)
                && dc.status.as_ref().and_then(|s| s.ready_nodes) == Some(3)
        })
        .await
        .expect("Ready follows the ring");
    let ready = condition(&dc, condition::READY).expect("Ready");
    // Whether the pass saw the pod still ready but out of the ring, or already not ready (the
    // fake stops the node soon after it left), Ready names it.
    let message = ready.message.as_deref().unwrap_or_default();
    assert!(message.contains(&name), "{ready:?}");
    assert!(!is_true(&dc, condition::HEALTHY), "{:?}", dc.status);
}
