//! Acceptance of the CassandraTask controller on a local cluster, with the fake Management API on
//! the pods' IPs: a cleanup on every pod (also across an operator restart), a rolling restart, a
//! job that fails on one pod, and a command that is not supported.
#![allow(clippy::expect_used)]

use std::{collections::BTreeMap, time::Duration};

use k8ssandra_api::{
    conditions::{self, Condition},
    control::{CassandraTask, task_condition},
};
use k8ssandra_e2e::scenario::{NAMESPACE, Scenario, node_status};
use k8ssandra_mgmt_api::{
    Route,
    fake::{Fault, Times},
};
use kube::{Api, ResourceExt};

/// How long a task may take on three pods.
const TASK_LIMIT: Duration = Duration::from_secs(90);

fn pod(rack: &str) -> String {
    k8ssandra_e2e::scenario::sample_pod(rack, 0)
}

fn all_pods() -> Vec<String> {
    ["rack1", "rack2", "rack3"].map(pod).to_vec()
}

/// A task as a user writes it; `extra` is added to its spec.
fn task_yaml(name: &str, command: &str, extra: &str) -> String {
    format!(
        "apiVersion: control.k8ssandra.io/v1alpha1
kind: CassandraTask
metadata:
  name: {name}
spec:
  datacenter:
    name: dc1
    namespace: {NAMESPACE}
  jobs:
    - name: {command}-dc1
      command: {command}
{extra}"
    )
}

fn tasks(scenario: &Scenario) -> Api<CassandraTask> {
    Api::namespaced(scenario.cluster().client(), NAMESPACE)
}

fn condition<'a>(task: &'a CassandraTask, type_: &str) -> Option<&'a Condition> {
    conditions::find(task.status.as_ref()?.conditions.as_deref()?, type_)
}

fn is_true(task: &CassandraTask, type_: &str) -> bool {
    condition(task, type_).is_some_and(Condition::is_true)
}

/// Creates the task and waits until it has a completion time.
async fn run_task(scenario: &Scenario, name: &str, yaml: &str) -> CassandraTask {
    scenario.apply(yaml).await.expect("the task applies");
    k8ssandra_e2e::wait::object(
        &tasks(scenario),
        name,
        &format!("task {name} finished"),
        TASK_LIMIT,
        |task: &CassandraTask| {
            task.status
                .as_ref()
                .is_some_and(|s| s.completion_time.is_some())
        },
    )
    .await
    .expect("the task finishes")
}

/// The status of each pod's record.
fn pod_statuses(task: &CassandraTask) -> BTreeMap<String, String> {
    task.status
        .as_ref()
        .and_then(|s| s.pod_statuses.as_ref())
        .map(|records| {
            records
                .iter()
                .map(|(pod, record)| (pod.clone(), record.status.clone()))
                .collect()
        })
        .unwrap_or_default()
}

/// Pods that got a cleanup call (v1 job or blocking v0), in call order, once per call.
fn cleanup_calls(scenario: &Scenario) -> Vec<String> {
    scenario
        .mgmt
        .cassandra()
        .calls()
        .pods_called(&[Route::CleanupV1, Route::CleanupV0])
}

async fn started_scenario(name: &str) -> Scenario {
    Scenario::with_sample(name).await.expect("dc1 comes up").0
}

#[tokio::test]
async fn a_cleanup_runs_once_on_every_pod_in_rack_order_and_resumes_after_an_operator_restart() {
    let mut scenario = started_scenario("task_cleanup").await;

    let task = run_task(
        &scenario,
        "cleanup-dc1",
        &task_yaml("cleanup-dc1", "cleanup", ""),
    )
    .await;

    assert_eq!(cleanup_calls(&scenario), all_pods(), "one cleanup per pod");
    assert!(
        is_true(&task, task_condition::COMPLETE),
        "{:?}",
        condition(&task, task_condition::COMPLETE)
    );
    assert!(
        !is_true(&task, task_condition::FAILED),
        "{:?}",
        condition(&task, task_condition::FAILED)
    );
    assert!(!is_true(&task, task_condition::RUNNING));
    let status = task.status.clone().expect("status");
    assert_eq!(
        (status.succeeded, status.failed, status.active),
        (Some(3), Some(0), Some(0))
    );
    assert!(status.start_time.is_some());
    let expected: BTreeMap<String, String> = all_pods()
        .into_iter()
        .map(|p| (p, "Completed".to_owned()))
        .collect();
    assert_eq!(pod_statuses(&task), expected);
    for record in status.pod_statuses.expect("pod statuses").values() {
        assert!(
            record.job_id.is_some(),
            "the v1 job was recorded: {record:?}"
        );
    }

    // A finished task is left alone: no more cleanups and the same status.
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(cleanup_calls(&scenario).len(), 3);
    let unchanged = tasks(&scenario).get("cleanup-dc1").await.expect("task");
    assert_eq!(unchanged.status, task.status);

    // The operator restarts while a job runs: the new one polls the recorded job instead of
    // starting another cleanup on that pod.
    let first = pod("rack1");
    scenario
        .mgmt
        .with_node(&first, |node| {
            node.inject(Route::CleanupV1, Fault::Stall, Times::Once);
        })
        .expect("the fake node of rack1 runs");
    scenario
        .apply(&task_yaml("cleanup-again", "cleanup", ""))
        .await
        .expect("the task applies");
    let recorded = first.clone();
    k8ssandra_e2e::wait::object(
        &tasks(&scenario),
        "cleanup-again",
        "the job of rack1 recorded",
        TASK_LIMIT,
        move |task: &CassandraTask| {
            task.status
                .as_ref()
                .and_then(|s| s.pod_statuses.as_ref())
                .and_then(|r| r.get(&recorded))
                .is_some_and(|r| r.job_id.is_some())
        },
    )
    .await
    .expect("the job is recorded");
    scenario.restart_operator().expect("the operator restarts");
    let released = scenario
        .mgmt
        .with_node(&first, |node| node.release(Route::CleanupV1))
        .expect("the fake node of rack1 runs");
    assert_eq!(released, 1, "the job of rack1 was still running");
    let again = run_task(
        &scenario,
        "cleanup-again",
        &task_yaml("cleanup-again", "cleanup", ""),
    )
    .await;
    assert!(
        is_true(&again, task_condition::COMPLETE),
        "{:?}",
        again.status
    );
    assert!(
        !is_true(&again, task_condition::FAILED),
        "{:?}",
        again.status
    );
    let mut twice = all_pods();
    twice.extend(all_pods());
    assert_eq!(cleanup_calls(&scenario), twice, "one more cleanup per pod");

    let compact = run_task(
        &scenario,
        "compact-dc1",
        &task_yaml("compact-dc1", "compact", ""),
    )
    .await;
    let failed = condition(&compact, task_condition::FAILED).expect("Failed condition");
    assert!(failed.is_true());
    assert_eq!(failed.reason.as_deref(), Some("UnsupportedCommand"));
    assert_eq!(
        failed.message.as_deref(),
        Some("command compact is not supported yet")
    );
}

/// Pods of the datacenter that are not running and ready (missing ones included).
#[tokio::test]
async fn a_restart_replaces_every_pod_one_at_a_time() {
    let scenario = started_scenario("task_restart").await;
    let before: BTreeMap<String, String> = scenario
        .pods()
        .await
        .expect("pods")
        .iter()
        .map(|p| (p.name_any(), p.uid().expect("uid")))
        .collect();

    // Samples how many pods are down at once while the task runs.
    let sampler = k8ssandra_e2e::scenario::DownSampler::start(scenario.cluster(), NAMESPACE, 3);
    let task = run_task(
        &scenario,
        "restart-dc1",
        &task_yaml("restart-dc1", "restart", ""),
    )
    .await;

    assert!(
        is_true(&task, task_condition::COMPLETE) && !is_true(&task, task_condition::FAILED),
        "{:?}",
        task.status
    );
    assert_eq!(task.status.as_ref().and_then(|s| s.succeeded), Some(3));
    assert_eq!(sampler.most_down(), 1, "one pod at a time");
    let after: BTreeMap<String, String> = scenario
        .pods()
        .await
        .expect("pods")
        .iter()
        .map(|p| (p.name_any(), p.uid().expect("uid")))
        .collect();
    assert_eq!(
        after.keys().collect::<Vec<_>>(),
        before.keys().collect::<Vec<_>>()
    );
    for (name, uid) in &before {
        assert_ne!(after.get(name), Some(uid), "{name} was recreated");
    }
    // In rack order, each pod after the previous one was back.
    let records = task
        .status
        .as_ref()
        .and_then(|s| s.pod_statuses.clone())
        .expect("records");
    for pair in all_pods().windows(2) {
        let done = records[&pair[0]].completion_time.clone().expect("done");
        let next = records[&pair[1]].start_time.clone().expect("started");
        assert!(
            next.0 >= done.0,
            "{} restarted before {} was back",
            pair[1],
            pair[0]
        );
    }
    scenario
        .wait_converged("dc1", 3)
        .await
        .expect("dc1 is ready again");
}

#[tokio::test]
async fn a_job_failing_on_one_pod_fails_the_task_after_its_retry() {
    let scenario = started_scenario("task_failure").await;
    let broken = pod("rack2");
    scenario
        .mgmt
        .with_node(&broken, |node| {
            node.inject(Route::CleanupV1, Fault::Status(500), Times::Always);
        })
        .expect("the fake node of rack2 runs");

    let task = run_task(
        &scenario,
        "cleanup-dc1",
        &task_yaml("cleanup-dc1", "cleanup", "  retries: 1\n"),
    )
    .await;

    let failed = condition(&task, task_condition::FAILED).expect("Failed condition");
    assert!(failed.is_true(), "{failed:?}");
    let message = failed.message.clone().unwrap_or_default();
    assert!(message.contains(&broken), "{message}");
    assert!(message.contains("500"), "{message}");
    let statuses = pod_statuses(&task);
    assert_eq!(statuses[&broken], "Failed");
    assert_eq!(statuses[&pod("rack1")], "Completed");
    assert_eq!(statuses[&pod("rack3")], "Completed");
    let status = task.status.clone().expect("status");
    assert_eq!((status.succeeded, status.failed), (Some(2), Some(1)));
    let record = &status.pod_statuses.expect("records")[&broken];
    assert_eq!(record.retries, Some(1));
    assert!(
        record.error.as_deref().is_some_and(|e| e.contains("500")),
        "{record:?}"
    );
    // Tried once, then retried once.
    let calls = cleanup_calls(&scenario);
    assert_eq!(
        calls.iter().filter(|p| **p == broken).count(),
        2,
        "{calls:?}"
    );
}

#[tokio::test]
async fn replacenode_gives_the_pod_a_new_volume_and_starts_it_in_the_old_nodes_place() {
    let (scenario, dc) = Scenario::with_sample("task_replacenode")
        .await
        .expect("dc1 comes up");
    let replaced = pod("rack2");
    let old = node_status(&dc, &replaced).expect("node status of rack2");
    let claims: Api<k8s_openapi::api::core::v1::PersistentVolumeClaim> =
        Api::namespaced(scenario.cluster().client(), NAMESPACE);
    let claim_name = format!("server-data-{replaced}");
    let old_claim = claims.get(&claim_name).await.expect("claim").uid();

    let yaml = task_yaml(
        "replace-rack2",
        "replacenode",
        &format!("      args:\n        pod_name: {replaced}\n"),
    );
    let task = run_task(&scenario, "replace-rack2", &yaml).await;
    assert!(
        is_true(&task, task_condition::COMPLETE),
        "{:?}",
        task.status
    );
    assert!(!is_true(&task, task_condition::FAILED), "{:?}", task.status);

    // The new node started with replace_ip, the old node's address, on a new volume.
    let old_ip = old.ip.clone().expect("old IP");
    let replace_starts: Vec<String> = scenario
        .mgmt
        .cassandra()
        .calls()
        .for_pod(&replaced)
        .calls
        .into_iter()
        .filter(|c| c.route == Some(Route::LifecycleStart))
        .map(|c| c.query)
        .filter(|q| q.contains("replace_ip"))
        .collect();
    assert_eq!(replace_starts, vec![format!("replace_ip={old_ip}")]);
    let new_claim = claims.get(&claim_name).await.expect("new claim").uid();
    assert_ne!(new_claim, old_claim, "the volume was replaced");

    let dc = scenario
        .wait_for("dc1", "the replacement done", |dc| {
            k8ssandra_e2e::scenario::is_converged(dc, 3)
                && dc
                    .status
                    .as_ref()
                    .is_some_and(|s| s.node_replacements.is_none())
        })
        .await
        .expect("converges");
    assert!(!k8ssandra_e2e::scenario::is_true(
        &dc,
        k8ssandra_api::cassandra::condition::REPLACING_NODES
    ));
    let now = node_status(&dc, &replaced).expect("node status");
    assert_eq!(
        now.host_id, old.host_id,
        "the new node took over the host ID"
    );
    let ring = scenario.mgmt.cassandra().endpoints();
    assert_eq!(ring.entries.len(), 3, "no dead entry left: {ring:?}");
    assert!(
        ring.entries
            .iter()
            .all(|e| e.status() == k8ssandra_mgmt_api::NodeStatus::Normal && e.is_alive())
    );
}
