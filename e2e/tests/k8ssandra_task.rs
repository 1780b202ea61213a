//! The K8ssandraTask across a fleet of three clusters: the control plane in cluster 0, a data
//! plane in each of clusters 1 and 2, ClientConfigs with ServiceAccount kubeconfigs, and the fake
//! Management API on every Cassandra pod. On the docs' two-datacenter sample, one fleet runs
//! every scenario in turn: a cleanup runs datacenter by datacenter in the order the task gives
//! and completes; a job failing in one datacenter fails the task, names that datacenter and
//! starts no later one; a task naming an unknown datacenter is refused and creates nothing; a
//! finished task goes with its CassandraTasks when its TTL is up. A finished task costs no write.
#![allow(clippy::expect_used)]

use std::{
    collections::BTreeMap,
    time::{Duration, Instant},
};

use k8s_openapi::api::core::v1::{Event, Pod};
use k8ssandra_api::{
    conditions::{self, Condition},
    control::{CassandraTask, K8ssandraTask, task_condition},
    labels,
};
use k8ssandra_e2e::wait;
use k8ssandra_mgmt_api::{
    Route,
    fake::{Fault, Times},
};
use kube::{
    Api, ResourceExt,
    api::{DeleteParams, ListParams, Patch, PatchParams},
};

mod support;

use support::*;

const TASK_LIMIT: Duration = Duration::from_secs(90);

/// What the K8ssandraTask scenarios read and wait for.
impl Setup {
    fn tasks(&self) -> Api<K8ssandraTask> {
        Api::namespaced(self.fleet.cluster(0).client(), NAMESPACE)
    }

    fn remote_tasks(&self, index: usize) -> Api<CassandraTask> {
        Api::namespaced(self.fleet.cluster(index).client(), NAMESPACE)
    }

    /// Waits until the K8ssandraTask `name` has condition `type_` True; returns it.
    async fn wait_task(&self, name: &str, type_: &str) -> K8ssandraTask {
        let what = format!("K8ssandraTask {name} {type_}=True");
        let wanted = type_.to_owned();
        let waited = wait::object(
            &self.tasks(),
            name,
            &what,
            TASK_LIMIT,
            move |t: &K8ssandraTask| condition(t, &wanted).is_some_and(|c| c.is_true()),
        )
        .await;
        match waited {
            Ok(task) => task,
            Err(error) => {
                let last = self.tasks().get_opt(name).await.ok().flatten();
                panic!("{error}; last status: {:#?}", last.and_then(|t| t.status));
            }
        }
    }

    /// The CassandraTasks of K8ssandraTask `name` in cluster `index`, by name.
    async fn remote_tasks_of(&self, index: usize, name: &str) -> BTreeMap<String, CassandraTask> {
        self.remote_tasks(index)
            .list(&ListParams::default().labels(&format!("{}={name}", labels::TASK_NAME)))
            .await
            .expect("list")
            .items
            .into_iter()
            .map(|t| (t.name_any(), t))
            .collect()
    }

    /// The pods that got a call of `route`, in call order.
    fn called(&self, route: Route) -> Vec<String> {
        self.flushed_or(&[route])
    }

    /// The pods that got a call of one of `routes`, in call order.
    fn flushed_or(&self, routes: &[Route]) -> Vec<String> {
        self.mgmt.cassandra().calls().pods_called(routes)
    }

    /// The first pod of datacenter `dc` in cluster `index`.
    async fn first_pod(&self, index: usize, dc: &str) -> String {
        let mut pods: Vec<String> =
            Api::<Pod>::namespaced(self.fleet.cluster(index).client(), NAMESPACE)
                .list(
                    &ListParams::default()
                        .labels(&format!("cassandra.datastax.com/datacenter={dc}")),
                )
                .await
                .expect("pods")
                .items
                .iter()
                .map(ResourceExt::name_any)
                .collect();
        pods.sort();
        pods.first().cloned().expect("a pod")
    }

    /// Events about the K8ssandraTask `name`, as `type reason: message`.
    async fn task_events(&self, name: &str) -> Vec<String> {
        Api::<Event>::namespaced(self.fleet.cluster(0).client(), NAMESPACE)
            .list(&Default::default())
            .await
            .expect("events")
            .items
            .into_iter()
            .filter(|e| e.involved_object.name.as_deref() == Some(name))
            .map(|e| {
                format!(
                    "{} {}: {}",
                    e.type_.unwrap_or_default(),
                    e.reason.unwrap_or_default(),
                    e.message.unwrap_or_default()
                )
            })
            .collect()
    }
}

fn condition(task: &K8ssandraTask, type_: &str) -> Option<Condition> {
    conditions::find(
        task.status.as_ref()?.aggregate.conditions.as_deref()?,
        type_,
    )
    .cloned()
}

fn message(task: &K8ssandraTask, type_: &str) -> String {
    condition(task, type_)
        .and_then(|c| c.message)
        .unwrap_or_default()
}

fn task_yaml(name: &str, command: &str, extra: &str) -> String {
    format!(
        "apiVersion: control.k8ssandra.io/v1alpha1\nkind: K8ssandraTask\nmetadata:\n  name: {name}\n\
         spec:\n  cluster:\n    name: demo\n{extra}  template:\n    jobs:\n      - name: {command}\n        \
         command: {command}\n"
    )
}

#[tokio::test]
async fn k8ssandra_tasks_run_datacenter_by_datacenter_across_the_fleet() {
    let started = Instant::now();
    let mut setup = Setup::start("k8ssandra_task").await;
    setup.least_privilege_client_config(1).await;
    setup.least_privilege_client_config(2).await;
    setup.apply(&sample()).await;
    setup.wait_ready().await;
    eprintln!("the sample converged after {:?}", started.elapsed());

    ordered_cleanup(&setup).await;
    eprintln!("(a) ordered cleanup done after {:?}", started.elapsed());
    failure_in_dc2(&setup).await;
    eprintln!("(b) failure done after {:?}", started.elapsed());
    invalid_datacenter(&setup).await;
    eprintln!("(c) invalid task done after {:?}", started.elapsed());
    ttl_deletes_everything(&setup).await;
    eprintln!("(d) TTL done after {:?}", started.elapsed());
    unreachable_cluster(&mut setup).await;
    eprintln!("(e) unreachable cluster done after {:?}", started.elapsed());
    cluster_deletion_takes_the_tasks(&setup).await;
    eprintln!("(f) cluster deletion done after {:?}", started.elapsed());
}

/// (a) `datacenters: [dc2, dc1]` runs dc2's cleanup first, then dc1's, and completes with each
/// datacenter's status; a pass of the finished task writes nothing.
async fn ordered_cleanup(setup: &Setup) {
    let begun = Instant::now();
    setup
        .apply(&task_yaml(
            "cleanup",
            "cleanup",
            "  datacenters: [dc2, dc1]\n",
        ))
        .await;
    let task = setup.wait_task("cleanup", task_condition::COMPLETE).await;
    eprintln!("cleanup completed in {:?}", begun.elapsed());
    let status = task.status.clone().expect("status");
    assert!(!condition(&task, task_condition::FAILED).is_some_and(|c| c.is_true()));
    assert!(!condition(&task, task_condition::RUNNING).is_some_and(|c| c.is_true()));
    assert_eq!(status.aggregate.succeeded, Some(6), "{status:#?}");
    assert_eq!(status.aggregate.failed, Some(0));
    let per_dc = status.datacenters.clone().expect("per-DC status");
    assert_eq!(per_dc.keys().collect::<Vec<_>>(), ["dc1", "dc2"]);
    for entry in per_dc.values() {
        assert_eq!(entry.succeeded, Some(3), "{entry:#?}");
        assert!(entry.completion_time.is_some());
    }

    // dc2's CassandraTask in cluster 2 ran before dc1's in cluster 1.
    let dc2 = setup
        .remote_tasks_of(2, "cleanup")
        .await
        .remove("cleanup-dc2")
        .expect("cleanup-dc2 in cluster 2");
    let dc1 = setup
        .remote_tasks_of(1, "cleanup")
        .await
        .remove("cleanup-dc1")
        .expect("cleanup-dc1 in cluster 1");
    let time = |t: &CassandraTask, start: bool| {
        let s = t.status.as_ref().expect("status");
        if start {
            s.start_time.clone()
        } else {
            s.completion_time.clone()
        }
        .expect("time")
        .0
    };
    assert!(
        time(&dc2, false) <= time(&dc1, true),
        "dc2 finished before dc1 started"
    );
    let calls = setup.called(Route::CleanupV1);
    let first_dc1 = calls
        .iter()
        .position(|p| p.contains("-dc1-"))
        .expect("dc1 cleaned");
    let last_dc2 = calls
        .iter()
        .rposition(|p| p.contains("-dc2-"))
        .expect("dc2 cleaned");
    assert!(
        last_dc2 < first_dc1,
        "every dc2 pod before any dc1 pod: {calls:?}"
    );
    assert_eq!(calls.len(), 6, "one cleanup per pod: {calls:?}");

    // What the CassandraTasks are: the template, kept (TTL 0), labelled for this task only.
    for remote in [&dc1, &dc2] {
        assert_eq!(remote.spec.template.ttl_seconds_after_finished, Some(0));
        let labels = remote.labels();
        assert_eq!(labels[labels::MANAGED_BY], "k8ssandra-operator");
        assert_eq!(labels[labels::TASK_NAME], "cleanup");
        assert_eq!(labels[labels::TASK_NAMESPACE], NAMESPACE);
        assert!(!labels.contains_key(labels::K8SSANDRA_CLUSTER_NAME));
    }
    assert_eq!(dc2.spec.datacenter.name.as_deref(), Some("dc2"));
    assert_eq!(dc2.spec.datacenter.namespace.as_deref(), Some(NAMESPACE));
    // The task is held by its finalizer and owned by its cluster.
    assert!(
        task.finalizers()
            .iter()
            .any(|f| f == "control.k8ssandra.io/finalizer")
    );
    let owners = task.owner_references();
    assert_eq!(owners.len(), 1);
    assert_eq!(
        (owners[0].kind.as_str(), owners[0].name.as_str()),
        ("K8ssandraCluster", "demo")
    );
    assert!(
        setup
            .task_events("cleanup")
            .await
            .iter()
            .any(|e| e.starts_with("Normal AllDatacentersCompleted")),
        "{:?}",
        setup.task_events("cleanup").await
    );

    // A pass of the finished, unchanged task writes nothing, in any cluster.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let passes = setup.control.passes("k8ssandratask");
    setup.control.requests().clear();
    for context in ["kind-k8ssandra-1", "kind-k8ssandra-2"] {
        setup.control.remote_requests(context).clear();
    }
    let touch =
        serde_json::json!({ "metadata": { "annotations": { "example.com/touched": "yes" } } });
    setup
        .tasks()
        .patch("cleanup", &PatchParams::default(), &Patch::Merge(&touch))
        .await
        .expect("touch");
    wait::until(
        "a pass of the finished task",
        Duration::from_secs(30),
        || async { (setup.control.passes("k8ssandratask") > passes).then_some(()) },
    )
    .await
    .expect("a pass");
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(setup.control.requests().writes(), Vec::<String>::new());
    for context in ["kind-k8ssandra-1", "kind-k8ssandra-2"] {
        assert_eq!(
            setup.control.remote_requests(context).writes(),
            Vec::<String>::new(),
            "{context}"
        );
    }
    assert_eq!(
        setup.called(Route::CleanupV1).len(),
        6,
        "no cleanup ran again"
    );
}

/// (b) A cleanup failing on a dc2 pod fails the task, names dc2, and dc1's never starts.
async fn failure_in_dc2(setup: &Setup) {
    let broken = setup.first_pod(2, "dc2").await;
    setup
        .mgmt
        .inject_when_running(&broken, Route::CleanupV1, Fault::Status(500), Times::Always);
    let before = setup.called(Route::CleanupV1).len();
    setup
        .apply(&task_yaml(
            "cleanup-fails",
            "cleanup",
            "  datacenters: [dc2, dc1]\n",
        ))
        .await;
    let task = setup
        .wait_task("cleanup-fails", task_condition::FAILED)
        .await;
    let failed = message(&task, task_condition::FAILED);
    eprintln!("Failed: {failed}");
    assert!(failed.contains("the task failed in dc2"), "{failed}");
    assert!(failed.contains(&broken), "{failed}");
    assert!(failed.contains("dc1"), "says dc1 was not started: {failed}");
    let complete = condition(&task, task_condition::COMPLETE).expect("Complete");
    assert!(!complete.is_true());
    assert_eq!(complete.reason.as_deref(), Some("StoppedAfterFailure"));
    let status = task.status.clone().expect("status");
    assert!(
        status.aggregate.completion_time.is_some(),
        "the task is over"
    );
    assert!(status.aggregate.failed >= Some(1), "{status:#?}");
    // dc1 was never started, and stays so.
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert!(setup.remote_tasks_of(1, "cleanup-fails").await.is_empty());
    assert!(
        setup
            .remote_tasks_of(2, "cleanup-fails")
            .await
            .contains_key("cleanup-fails-dc2")
    );
    let calls = setup.called(Route::CleanupV1)[before..].to_vec();
    assert!(calls.iter().all(|p| p.contains("-dc2-")), "{calls:?}");
    assert!(
        setup
            .task_events("cleanup-fails")
            .await
            .iter()
            .any(|e| e.starts_with("Warning DatacenterFailed") && e.contains("dc2")),
        "{:?}",
        setup.task_events("cleanup-fails").await
    );
    setup.mgmt.with_node(&broken, |node| node.clear_faults());
}

/// (c) A task naming a datacenter the cluster does not have is refused, with a Warning, and
/// creates nothing anywhere.
async fn invalid_datacenter(setup: &Setup) {
    setup
        .apply(&task_yaml(
            "cleanup-dc9",
            "cleanup",
            "  datacenters: [dc1, dc9]\n",
        ))
        .await;
    let task = setup
        .wait_task("cleanup-dc9", task_condition::INVALID)
        .await;
    let invalid = condition(&task, task_condition::INVALID).expect("Invalid");
    assert_eq!(invalid.reason.as_deref(), Some("DatacenterNotFound"));
    let text = invalid.message.clone().unwrap_or_default();
    eprintln!("Invalid: {text}");
    assert!(
        text.contains("dc9") && text.contains("spec.datacenters"),
        "{text}"
    );
    tokio::time::sleep(Duration::from_secs(3)).await;
    for index in 1..=2 {
        assert!(
            setup.remote_tasks_of(index, "cleanup-dc9").await.is_empty(),
            "nothing created in cluster {index}"
        );
    }
    let events = setup.task_events("cleanup-dc9").await;
    assert!(
        events
            .iter()
            .any(|e| e.starts_with("Warning DatacenterNotFound") && e.contains("dc9")),
        "{events:?}"
    );
    let unchanged = setup.tasks().get("cleanup-dc9").await.expect("task");
    assert!(
        unchanged.finalizers().is_empty(),
        "nothing to clean up, no finalizer"
    );
    assert_eq!(
        unchanged
            .owner_references()
            .first()
            .map(|o| o.name.as_str()),
        Some("demo"),
        "it goes with its cluster all the same"
    );
}

/// (d) `ttlSecondsAfterFinished: 5` on an `Allow` flush: once it finished and five seconds
/// passed, the task is deleted, and its CassandraTasks with it.
async fn ttl_deletes_everything(setup: &Setup) {
    let flushes = || setup.flushed_or(&[Route::FlushV0, Route::FlushV1]).len();
    let before = flushes();
    let begun = Instant::now();
    setup
        .apply(
            &task_yaml("flush", "flush", "  dcConcurrencyPolicy: Allow\n").replace(
                "  template:\n",
                "  template:\n    ttlSecondsAfterFinished: 5\n",
            ),
        )
        .await;
    wait::until("the flush task to be gone", TASK_LIMIT, || async {
        setup
            .tasks()
            .get_opt("flush")
            .await
            .ok()?
            .is_none()
            .then_some(())
    })
    .await
    .expect("deleted after its TTL");
    let gone = begun.elapsed();
    eprintln!("the flush task was deleted {gone:?} after its creation");
    assert!(gone >= Duration::from_secs(5), "not before its TTL");
    assert_eq!(flushes() - before, 6, "flushed every pod");
    for index in 1..=2 {
        let remaining = setup.remote_tasks_of(index, "flush").await;
        assert!(
            remaining.is_empty(),
            "CassandraTasks left in cluster {index}: {:?}",
            remaining.keys()
        );
    }
    // The other tasks are still there: the default TTL is a day.
    assert!(
        setup
            .tasks()
            .get_opt("cleanup")
            .await
            .expect("read")
            .is_some()
    );
}

/// (e) While cluster 2's API server is down: a task over `[dc2, dc1]` waits for dc2, naming it and
/// its context, and starts nothing in dc1; a task being deleted keeps its finalizer for the
/// CassandraTask it cannot reach, and says so. Once the server is back, both finish.
async fn unreachable_cluster(setup: &mut Setup) {
    setup.fleet.cluster_mut(2).stop_apiserver();
    setup
        .apply(&task_yaml(
            "flush-wait",
            "flush",
            "  datacenters: [dc2, dc1]\n",
        ))
        .await;
    let task = wait::object(
        &setup.tasks(),
        "flush-wait",
        "flush-wait waiting for cluster 2",
        TASK_LIMIT,
        |t: &K8ssandraTask| {
            condition(t, task_condition::RUNNING).is_some_and(|c| {
                c.is_true()
                    && c.reason.as_deref() == Some("ClusterUnreachable")
                    && c.message
                        .as_deref()
                        .is_some_and(|m| m.contains("dc2 in kind-k8ssandra-2"))
            })
        },
    )
    .await
    .expect("the wait is reported");
    eprintln!("Running: {}", message(&task, task_condition::RUNNING));
    let entry = &task
        .status
        .clone()
        .expect("status")
        .datacenters
        .expect("per-DC")["dc2"];
    let reachable = conditions::find(entry.conditions.as_deref().unwrap_or_default(), "Reachable")
        .expect("dc2's entry says its cluster is away");
    assert!(!reachable.is_true());
    assert!(!condition(&task, task_condition::COMPLETE).is_some_and(|c| c.is_true()));
    assert!(
        setup.remote_tasks_of(1, "flush-wait").await.is_empty(),
        "dc1 waits for dc2"
    );

    setup
        .tasks()
        .delete("cleanup", &DeleteParams::default())
        .await
        .expect("delete");
    let blocked = wait::object(
        &setup.tasks(),
        "cleanup",
        "cleanup's deletion blocked by cluster 2",
        TASK_LIMIT,
        |t: &K8ssandraTask| {
            condition(t, "Degraded").is_some_and(|c| {
                c.is_true()
                    && c.message
                        .as_deref()
                        .is_some_and(|m| m.contains("kind-k8ssandra-2"))
            })
        },
    )
    .await
    .expect("the blocked deletion is reported");
    eprintln!("Degraded: {}", message(&blocked, "Degraded"));
    wait::until("cleanup-dc1 to be deleted", TASK_LIMIT, || async {
        setup
            .remote_tasks_of(1, "cleanup")
            .await
            .is_empty()
            .then_some(())
    })
    .await
    .expect("the reachable cluster's task goes at once");

    setup
        .fleet
        .cluster_mut(2)
        .restart_apiserver()
        .await
        .expect("apiserver back");
    let back = Instant::now();
    let done = setup
        .wait_task("flush-wait", task_condition::COMPLETE)
        .await;
    eprintln!(
        "flush-wait completed {:?} after cluster 2 came back",
        back.elapsed()
    );
    let per_dc = done.status.expect("status").datacenters.expect("per-DC");
    assert_eq!(per_dc.len(), 2);
    assert!(
        per_dc.values().all(|e| e.succeeded == Some(3)),
        "{per_dc:#?}"
    );
    wait::until("cleanup to be gone", TASK_LIMIT, || async {
        setup
            .tasks()
            .get_opt("cleanup")
            .await
            .ok()?
            .is_none()
            .then_some(())
    })
    .await
    .expect("the deletion finishes once the cluster is back");
    assert!(setup.remote_tasks_of(2, "cleanup").await.is_empty());
}

/// (f) Deleting the K8ssandraCluster deletes its K8ssandraTasks (their owner references), and
/// their finalizers remove their CassandraTasks from both clusters.
async fn cluster_deletion_takes_the_tasks(setup: &Setup) {
    let left: Vec<String> = setup
        .tasks()
        .list(&ListParams::default())
        .await
        .expect("list")
        .items
        .iter()
        .map(ResourceExt::name_any)
        .collect();
    assert_eq!(left, ["cleanup-dc9", "cleanup-fails", "flush-wait"]);
    let begun = Instant::now();
    Api::<k8ssandra_api::k8ssandra::K8ssandraCluster>::namespaced(
        setup.fleet.cluster(0).client(),
        NAMESPACE,
    )
    .delete("demo", &DeleteParams::default())
    .await
    .expect("delete");
    wait::until("every K8ssandraTask to be gone", CONVERGE, || async {
        setup
            .tasks()
            .list(&ListParams::default())
            .await
            .ok()?
            .items
            .is_empty()
            .then_some(())
    })
    .await
    .expect("the tasks go with their cluster");
    eprintln!(
        "the tasks were gone {:?} after the cluster's deletion",
        begun.elapsed()
    );
    for index in 1..=2 {
        let remaining: Vec<String> = setup
            .remote_tasks(index)
            .list(&ListParams::default())
            .await
            .expect("list")
            .items
            .iter()
            .map(ResourceExt::name_any)
            .collect();
        assert_eq!(
            remaining,
            Vec::<String>::new(),
            "CassandraTasks left in cluster {index}"
        );
    }
}
