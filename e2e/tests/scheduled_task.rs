//! Acceptance of the ScheduledTask controller on a local cluster: a schedule waits for its time,
//! runs missed while the operator was away make one CassandraTask (which then runs), and a bad
//! schedule or a datacenter of another namespace is reported without a task.
#![allow(clippy::expect_used)]

use std::time::Duration;

use k8s_openapi::jiff::Timestamp;
use k8ssandra_api::{
    conditions::{self, Condition},
    control::{CassandraTask, ScheduledTask},
};
use k8ssandra_data_plane::schedule::{SCHEDULED_TASK_LABEL, VALID};
use k8ssandra_e2e::scenario::{NAMESPACE, Scenario};
use kube::{
    Api, ResourceExt,
    api::{ListParams, Patch, PatchParams},
};

const LIMIT: Duration = Duration::from_secs(60);

fn schedule_yaml(name: &str, schedule: &str, dc_namespace: &str) -> String {
    format!(
        "apiVersion: control.k8ssandra.io/v1alpha1
kind: ScheduledTask
metadata:
  name: {name}
spec:
  schedule: \"{schedule}\"
  taskDetails:
    name: {name}
    datacenter:
      name: dc1
      namespace: {dc_namespace}
    jobs:
      - name: cleanup-dc1
        command: cleanup
"
    )
}

fn valid(schedule: &ScheduledTask) -> Option<&Condition> {
    conditions::find(schedule.status.as_ref()?.conditions.as_deref()?, VALID)
}

async fn wait_schedule(
    api: &Api<ScheduledTask>,
    name: &str,
    what: &str,
    done: impl Fn(&ScheduledTask) -> bool + Send + 'static,
) -> ScheduledTask {
    k8ssandra_e2e::wait::object(api, name, what, LIMIT, done)
        .await
        .expect(what)
}

async fn tasks_of(tasks: &Api<CassandraTask>, schedule: &str) -> Vec<CassandraTask> {
    tasks
        .list(&ListParams::default().labels(&format!("{SCHEDULED_TASK_LABEL}={schedule}")))
        .await
        .expect("tasks")
        .items
}

#[tokio::test]
async fn a_schedule_makes_one_task_for_missed_runs_and_reports_what_it_cannot_act_on() {
    let (scenario, dc) = Scenario::with_sample("scheduled_task")
        .await
        .expect("dc1 comes up");
    let client = scenario.cluster().client();
    let schedules: Api<ScheduledTask> = Api::namespaced(client.clone(), NAMESPACE);
    let tasks: Api<CassandraTask> = Api::namespaced(client.clone(), NAMESPACE);

    // Due on 1 January only: it waits, and says when.
    scenario
        .apply(&schedule_yaml("nightly", "0 0 1 1 *", NAMESPACE))
        .await
        .expect("the ScheduledTask applies");
    let waiting = wait_schedule(&schedules, "nightly", "nightly has its next run", |s| {
        s.status.as_ref().is_some_and(|s| s.next_schedule.is_some())
    })
    .await;
    let status = waiting.status.clone().expect("status");
    let next = status.next_schedule.clone().expect("next").0;
    assert_eq!(
        next.to_string().get(4..),
        Some("-01-01T00:00:00Z"),
        "{next}"
    );
    assert_eq!(status.last_execution, None);
    assert!(
        valid(&waiting).is_some_and(Condition::is_true),
        "{status:?}"
    );
    assert!(tasks_of(&tasks, "nightly").await.is_empty());
    // It goes with its datacenter.
    assert!(
        waiting
            .owner_references()
            .iter()
            .any(|o| Some(&o.uid) == dc.metadata.uid.as_ref()),
        "{:?}",
        waiting.owner_references()
    );

    // Every five minutes, last run an hour ago (the operator was away): one task, at once.
    let hour_ago = Timestamp::from_second(Timestamp::now().as_second() - 3600).expect("time");
    schedules
        .patch(
            "nightly",
            &PatchParams::default(),
            &Patch::Merge(serde_json::json!({ "spec": { "schedule": "*/5 * * * *" } })),
        )
        .await
        .expect("schedule changed");
    schedules
        .patch_status(
            "nightly",
            &PatchParams::default(),
            &Patch::Merge(
                serde_json::json!({ "status": { "lastExecution": hour_ago.to_string() } }),
            ),
        )
        .await
        .expect("last execution set");
    let ran = wait_schedule(&schedules, "nightly", "nightly ran", move |s| {
        s.status
            .as_ref()
            .and_then(|s| s.last_execution.as_ref())
            .is_some_and(|t| t.0 > hour_ago)
    })
    .await;
    let made = tasks_of(&tasks, "nightly").await;
    assert_eq!(
        made.len(),
        1,
        "{:?}",
        made.iter().map(ResourceExt::name_any).collect::<Vec<_>>()
    );
    let task = &made[0];
    // Named after the first run due after the last one, with the datacenter's labels.
    let first_due = (hour_ago.as_second() / 300 + 1) * 300;
    assert_eq!(task.name_any(), format!("nightly-{first_due}"));
    assert_eq!(
        task.labels()
            .get("cassandra.datastax.com/datacenter")
            .map(String::as_str),
        Some("dc1")
    );
    let status = ran.status.clone().expect("status");
    let next = status.next_schedule.expect("next").0;
    assert!(next > Timestamp::now(), "{next}");
    assert_eq!(next.as_second() % 300, 0, "{next}");
    let notes = scenario
        .event_notes(NAMESPACE, "nightly", "CreatedTask")
        .await
        .expect("events");
    assert!(
        notes.iter().any(|n| n.contains(&task.name_any())),
        "{notes:?}"
    );

    // The task it made runs on every pod.
    let finished = k8ssandra_e2e::wait::object(
        &tasks,
        &task.name_any(),
        "the scheduled cleanup finished",
        Duration::from_secs(90),
        |t: &CassandraTask| {
            t.status
                .as_ref()
                .is_some_and(|s| s.completion_time.is_some())
        },
    )
    .await
    .expect("the task runs");
    assert_eq!(
        finished
            .status
            .and_then(|s| s.pod_statuses)
            .map(|p| p.len()),
        Some(3)
    );
    // Nothing more until the next run.
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(tasks_of(&tasks, "nightly").await.len(), 1);

    // A schedule that cannot be read: reported, and no task.
    schedules
        .patch(
            "nightly",
            &PatchParams::default(),
            &Patch::Merge(serde_json::json!({ "spec": { "schedule": "every night" } })),
        )
        .await
        .expect("schedule changed");
    let refused = wait_schedule(&schedules, "nightly", "the bad schedule is reported", |s| {
        valid(s).is_some_and(|c| c.reason.as_deref() == Some("InvalidSchedule"))
    })
    .await;
    let message = valid(&refused)
        .and_then(|c| c.message.clone())
        .unwrap_or_default();
    assert!(message.contains("five fields"), "{message}");
    assert!(
        !scenario
            .event_notes(NAMESPACE, "nightly", "InvalidSchedule")
            .await
            .expect("events")
            .is_empty()
    );

    // A datacenter of another namespace: refused, nothing made there or here.
    scenario
        .apply(&schedule_yaml("elsewhere", "* * * * *", "tenant"))
        .await
        .expect("the ScheduledTask applies");
    let refused = wait_schedule(
        &schedules,
        "elsewhere",
        "the other namespace is refused",
        |s| valid(s).is_some_and(|c| c.reason.as_deref() == Some("CrossNamespace")),
    )
    .await;
    assert!(refused.status.and_then(|s| s.next_schedule).is_none());
    assert!(tasks_of(&tasks, "elsewhere").await.is_empty());
}
