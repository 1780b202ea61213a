//! Cleanup after a scale-up, as upstream: a `cleanup` CassandraTask once the new nodes are up
//! (none after the first bring-up, none with `no-cleanup`), tracked in the status with
//! `track-cleanup-tasks`; and a cleanup that Cassandra refuses while ranges move is retried.
#![allow(clippy::expect_used)]

use std::time::Duration;

use k8ssandra_api::{
    cassandra::condition,
    control::{CassandraTask, task_condition},
    labels,
};
use k8ssandra_e2e::{
    scenario::{NAMESPACE, Scenario, condition, is_true, sample_pod},
    wait,
};
use k8ssandra_mgmt_api::{
    NodeStatus, Route,
    fake::{Fault, Times},
};
use kube::{Api, ResourceExt, api::ListParams};

const LIMIT: Duration = Duration::from_secs(90);

fn tasks(scenario: &Scenario) -> Api<CassandraTask> {
    Api::namespaced(scenario.cluster().client(), NAMESPACE)
}

async fn task_names(scenario: &Scenario) -> Vec<String> {
    tasks(scenario)
        .list(&ListParams::default())
        .await
        .expect("tasks")
        .items
        .iter()
        .map(ResourceExt::name_any)
        .collect()
}

/// Cleanup calls per pod, in call order.
fn cleanups(scenario: &Scenario) -> Vec<String> {
    scenario
        .mgmt
        .cassandra()
        .calls()
        .pods_called(&[Route::CleanupV0, Route::CleanupV1])
}

fn task_complete(task: &CassandraTask) -> bool {
    task.status
        .as_ref()
        .and_then(|s| s.conditions.as_deref())
        .and_then(|c| k8ssandra_api::conditions::find(c, task_condition::COMPLETE))
        .is_some_and(k8ssandra_api::conditions::Condition::is_true)
}

#[tokio::test]
async fn a_scale_up_is_followed_by_a_tracked_cleanup_on_every_node() {
    let (scenario, dc) = Scenario::with_sample("dc_cleanup")
        .await
        .expect("dc1 comes up");
    assert!(
        task_names(&scenario).await.is_empty(),
        "no cleanup after the first bring-up"
    );
    assert!(!is_true(&dc, condition::SCALING_UP));
    scenario
        .annotate("dc1", labels::annotations::TRACK_CLEANUP_TASKS, "true")
        .await
        .expect("annotated");

    scenario
        .patch_spec("dc1", serde_json::json!({ "size": 4 }))
        .await
        .expect("size 4");
    let tracking = scenario
        .wait_for("dc1", "the cleanup task tracked", |dc| {
            dc.status
                .as_ref()
                .and_then(|s| s.tracked_tasks.as_ref())
                .is_some_and(|t| !t.is_empty())
        })
        .await
        .expect("tracked");
    let tracked = tracking
        .status
        .as_ref()
        .and_then(|s| s.tracked_tasks.clone())
        .unwrap_or_default();
    let name = tracked[0].name.clone().expect("name");
    assert!(name.starts_with("cleanup-dc1-g"), "{name}");
    assert!(
        is_true(&tracking, condition::SCALING_UP),
        "ScalingUp until the cleanup ends"
    );

    let done = scenario
        .wait_for("dc1", "the scale-up over once the cleanup ended", |dc| {
            !is_true(dc, condition::SCALING_UP)
                && dc
                    .status
                    .as_ref()
                    .is_some_and(|s| s.tracked_tasks.is_none())
        })
        .await
        .expect("ScalingUp=False");
    assert!(is_true(&done, condition::READY));
    let task = tasks(&scenario).get(&name).await.expect("the task");
    assert!(task_complete(&task), "{:?}", task.status);
    let mut cleaned = cleanups(&scenario);
    cleaned.sort();
    let mut every = vec![
        sample_pod("rack1", 0),
        sample_pod("rack1", 1),
        sample_pod("rack2", 0),
        sample_pod("rack3", 0),
    ];
    every.sort();
    assert_eq!(cleaned, every, "once on every node");
    assert_eq!(task_names(&scenario).await, [name], "one task");
}

#[tokio::test]
async fn no_cleanup_makes_no_task_and_a_cleanup_refused_while_ranges_move_is_retried() {
    let (scenario, _) = Scenario::with_sample("dc_no_cleanup")
        .await
        .expect("dc1 comes up");
    scenario
        .annotate("dc1", labels::annotations::NO_CLEANUP, "true")
        .await
        .expect("annotated");
    scenario
        .patch_spec("dc1", serde_json::json!({ "size": 4 }))
        .await
        .expect("size 4");
    scenario.wait_converged("dc1", 4).await.expect("four nodes");
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert!(
        task_names(&scenario).await.is_empty(),
        "no-cleanup: no task"
    );

    // A fifth node whose bootstrap does not end: its ranges are pending.
    let joining = sample_pod("rack2", 1);
    scenario
        .mgmt
        .inject_when_running(&joining, Route::LifecycleStart, Fault::Stall, Times::Once);
    scenario
        .patch_spec("dc1", serde_json::json!({ "size": 5 }))
        .await
        .expect("size 5");
    wait::until("the fifth node joining", LIMIT, || async {
        let ring = scenario.mgmt.cassandra().endpoints();
        ring.entries
            .iter()
            .any(|e| e.status() == NodeStatus::Joining)
            .then_some(())
    })
    .await
    .expect("joining");
    let yaml = format!(
        "apiVersion: control.k8ssandra.io/v1alpha1
kind: CassandraTask
metadata:
  name: cleanup-by-hand
spec:
  datacenter:
    name: dc1
    namespace: {NAMESPACE}
  restartPolicy: OnFailure
  retries: 10
  jobs:
    - name: cleanup-dc1
      command: cleanup
"
    );
    scenario.apply(&yaml).await.expect("task");
    wait::until("a cleanup refused", LIMIT, || async {
        (!cleanups(&scenario).is_empty()).then_some(())
    })
    .await
    .expect("tried");
    tokio::time::sleep(Duration::from_secs(2)).await;
    let task = tasks(&scenario).get("cleanup-by-hand").await.expect("task");
    assert!(!task_complete(&task), "not done while ranges move");

    // The bootstrap ends: the retries go through.
    scenario
        .mgmt
        .with_node(&joining, |node| node.release(Route::LifecycleStart));
    let task = wait::until("the task complete", LIMIT, || async {
        let task = tasks(&scenario).get("cleanup-by-hand").await.ok()?;
        task_complete(&task).then_some(task)
    })
    .await
    .expect("complete");
    let failed = task.status.as_ref().and_then(|s| s.failed).unwrap_or(0);
    assert_eq!(failed, 0, "{:?}", task.status);
    let first = sample_pod("rack1", 0);
    let tries = cleanups(&scenario).iter().filter(|p| **p == first).count();
    assert!(tries >= 2, "the refused cleanup was retried: {tries}");
    let dc = scenario.wait_converged("dc1", 5).await.expect("five nodes");
    assert!(condition(&dc, condition::VALID).is_some());
}
