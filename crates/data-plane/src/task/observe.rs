//! Observe: what a task pass decides from (its datacenter and the datacenter's pods, from the
//! watch caches, and how the recorded jobs are going), then a pure translation into the
//! planner's input.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::Pod;
use k8ssandra_api::{
    cassandra::CassandraDatacenter,
    control::{CassandraTask, PodJobStatus},
    labels, names,
};
use k8ssandra_mgmt_api::{ClientSettings, JobStatus};
use kube::ResourceExt;

use super::{
    Context,
    operations::TaskCalls,
    plan::{self, JobPoll, Kind, LivePod, Marker, PlanInput, PodInput, PodView, Progress},
    validate::Operation,
};
use crate::datacenter::observe::{is_ready, is_running, pod_ip, selector};

/// What one pass read.
#[derive(Clone, Debug, Default)]
pub struct Observed {
    /// The datacenter; `None` when it does not exist.
    pub datacenter: Option<CassandraDatacenter>,
    /// The datacenter's pods.
    pub pods: Vec<Pod>,
    /// What polling each recorded job said, by pod.
    pub polls: BTreeMap<String, JobPoll>,
    /// How to reach the datacenter's Management API; `None` when it cannot be (see
    /// `access_error`).
    pub mgmt: Option<ClientSettings>,
    /// Why the datacenter's Management API cannot be reached as configured.
    pub access_error: Option<String>,
}

/// Namespace and name of the task's datacenter: always in the task's own namespace (validation
/// refuses a task that names another).
#[must_use]
pub fn datacenter_ref(task: &CassandraTask) -> (String, String) {
    let name = task.spec.datacenter.name.clone().unwrap_or_default();
    (task.namespace().unwrap_or_default(), name)
}

/// Reads the datacenter, its pods, and polls the jobs the task's status records.
///
/// # Errors
/// When a Kubernetes read fails (a Management API failure is an observation, not an error).
pub async fn observe(ctx: &Context, task: &CassandraTask) -> Observed {
    let (namespace, name) = datacenter_ref(task);
    // A datacenter that cannot be read is reported on itself; the task waits for it.
    let Some(dc) = ctx
        .caches
        .datacenters
        .get(&namespace, &name)
        .and_then(|dc| dc.decoded().ok().cloned())
    else {
        return Observed::default();
    };
    let pods: Vec<Pod> = ctx
        .caches
        .pods
        .list(&namespace, &selector(&dc))
        .into_iter()
        .map(|pod| (*pod).clone())
        .collect();
    let (mgmt, access_error) =
        match crate::mgmt_access::settings_for(&ctx.client, &ctx.caches.secrets, &ctx.mgmt, &dc)
            .await
        {
            Ok(mgmt) => (Some(mgmt), None),
            Err(error) => (None, Some(error.to_string())),
        };
    let polls = match &mgmt {
        Some(mgmt) => poll_jobs(mgmt, task, &pods).await,
        None => BTreeMap::new(),
    };
    Observed {
        datacenter: Some(dc),
        pods,
        polls,
        mgmt,
        access_error,
    }
}

/// Asks each running pod with a recorded job how the job goes.
async fn poll_jobs(
    mgmt: &ClientSettings,
    task: &CassandraTask,
    pods: &[Pod],
) -> BTreeMap<String, JobPoll> {
    let mut polls = BTreeMap::new();
    for (name, record) in records(task) {
        let Progress::Running(Marker::Job(job)) = plan::progress(Some(&record)) else {
            continue;
        };
        let Some(pod) = pods.iter().find(|p| p.name_any() == name) else {
            continue;
        };
        let Some(ip) = pod_ip(pod).filter(|_| is_running(pod)) else {
            continue;
        };
        let poll = match mgmt.client(&name, ip).job(&job).await {
            Ok(Some(job)) => match job.status {
                JobStatus::Completed => JobPoll::Completed,
                JobStatus::Error => JobPoll::Failed(
                    job.error
                        .filter(|e| !e.is_empty())
                        .unwrap_or_else(|| format!("job {} ended in ERROR", job.id)),
                ),
                JobStatus::Waiting | JobStatus::Other(_) => JobPoll::Waiting,
            },
            Ok(None) => JobPoll::Unknown,
            Err(error) => JobPoll::Unreachable(error.to_string()),
        };
        polls.insert(name, poll);
    }
    polls
}

/// The task's pod records.
#[must_use]
pub fn records(task: &CassandraTask) -> BTreeMap<String, PodJobStatus> {
    task.status
        .as_ref()
        .and_then(|s| s.pod_statuses.clone())
        .unwrap_or_default()
}

/// A pod as the planner sees it: its rack (from its label, else from its name, which starts with
/// its rack's StatefulSet name) and whether it runs now.
#[must_use]
pub fn pod_view(dc: &CassandraDatacenter, name: &str, live: Option<&Pod>) -> PodView {
    let racks = dc.spec.racks_or_default();
    let label = live.and_then(|p| p.labels().get(labels::RACK).cloned());
    let by_label = label.as_deref().and_then(|label| {
        racks
            .iter()
            .position(|r| names::clean_label_value(&r.name) == label)
    });
    let by_name = || {
        racks.iter().position(|r| {
            let sts =
                names::rack_statefulset(&dc.spec.cluster_name, &dc.label_resource_name(), &r.name);
            name.strip_prefix(&sts)
                .and_then(|rest| rest.strip_prefix('-'))
                .is_some_and(|n| n.parse::<u32>().is_ok())
        })
    };
    let index = by_label.or_else(by_name);
    let rack = match (index, label) {
        (Some(i), _) => racks
            .get(i)
            .map(|r| names::clean_label_value(&r.name))
            .unwrap_or_default(),
        (None, label) => label.unwrap_or_default(),
    };
    PodView {
        name: name.to_owned(),
        rack,
        // Pods of racks no longer in the spec come after the others.
        rack_index: index.unwrap_or(racks.len()),
        ordinal: names::pod_ordinal(name),
        live: live.map(|pod| LivePod {
            uid: pod.uid().unwrap_or_default(),
            ready: is_running(pod) && is_ready(pod),
            deleting: pod.metadata.deletion_timestamp.is_some(),
            replace_requested: pod
                .annotations()
                .get(labels::annotations::REPLACE_NODE)
                .is_some_and(|v| v == "true"),
        }),
    }
}

/// The planner's input: the target pods (running ones and recorded ones), each with its record,
/// its call under way and its poll.
#[must_use]
pub fn plan_input(
    task: &CassandraTask,
    operation: &Operation,
    dc: &CassandraDatacenter,
    observed: &Observed,
    calls: &TaskCalls,
) -> PlanInput {
    let records = records(task);
    let mut views: Vec<PodView> = observed
        .pods
        .iter()
        .map(|pod| pod_view(dc, &pod.name_any(), Some(pod)))
        .collect();
    // A pod being recreated is still a target: its record says where it stands.
    for name in records.keys() {
        if !views.iter().any(|v| &v.name == name) {
            views.push(pod_view(dc, name, None));
        }
    }
    let args = task
        .spec
        .template
        .jobs
        .as_deref()
        .and_then(<[_]>::first)
        .and_then(|j| j.args.clone())
        .unwrap_or_default();
    let task_uid = task.uid().unwrap_or_default();
    let mut selected = plan::select(views, operation, &args);
    if matches!(operation, Operation::Call(call) if call.one_node()) {
        selected = plan::one_node(selected, &records);
    }
    let pods = selected
        .into_iter()
        .map(|view| PodInput {
            record: records.get(&view.name).cloned(),
            call: calls.progress(&task_uid, &view.name),
            poll: observed.polls.get(&view.name).cloned(),
            view,
        })
        .collect();
    let template = &task.spec.template;
    PlanInput {
        kind: Kind::from(operation),
        pods,
        max_concurrent: template
            .max_concurrent_pods
            .and_then(|n| usize::try_from(n).ok())
            .unwrap_or(1)
            .max(1),
        retries: template
            .retries
            .and_then(|n| u32::try_from(n).ok())
            .unwrap_or(0),
        all_ready: !observed.pods.is_empty()
            && observed.pods.iter().all(|p| is_running(p) && is_ready(p))
            && !datacenter_disrupting(dc),
    }
}

/// Whether the datacenter controller is taking nodes down itself (a rollout, a decommission, a
/// replacement), as its status says: a restart waits for it, so that the two never take two
/// nodes down together.
fn datacenter_disrupting(dc: &CassandraDatacenter) -> bool {
    use k8ssandra_api::cassandra::condition;
    let Some(list) = dc.status.as_ref().and_then(|s| s.conditions.as_deref()) else {
        return false;
    };
    [
        condition::UPDATING,
        condition::SCALING_DOWN,
        condition::REPLACING_NODES,
    ]
    .iter()
    .any(|type_| k8ssandra_api::conditions::find(list, type_).is_some_and(|c| c.is_true()))
}

#[cfg(test)]
mod tests {
    use super::*;

    const DC: &str = r"
apiVersion: cassandra.datastax.com/v1beta1
kind: CassandraDatacenter
metadata:
  name: dc1
  namespace: cass
spec:
  clusterName: cluster1
  serverType: cassandra
  serverVersion: 4.1.5
  size: 3
  racks:
    - name: rack1
    - name: rack2
  storageConfig: {}
";

    fn dc() -> CassandraDatacenter {
        serde_yaml::from_str(DC).unwrap()
    }

    fn pod(name: &str, rack: &str) -> Pod {
        let mut pod = Pod::default();
        pod.metadata.name = Some(name.into());
        pod.metadata.uid = Some(format!("{name}-uid"));
        pod.metadata.labels = Some([(labels::RACK.to_owned(), rack.to_owned())].into());
        pod
    }

    #[test]
    fn the_datacenters_own_disruptions_hold_a_restart_back() {
        use k8ssandra_api::conditions::{Condition, ConditionStatus};
        let mut dc = dc();
        assert!(!datacenter_disrupting(&dc));
        for (type_, disrupting) in [
            ("Updating", true),
            ("ScalingDown", true),
            ("ReplacingNodes", true),
            ("ScalingUp", false),
        ] {
            dc.status = Some(k8ssandra_api::cassandra::CassandraDatacenterStatus {
                conditions: Some(vec![Condition::new(type_, ConditionStatus::True, "X", "y")]),
                ..Default::default()
            });
            assert_eq!(datacenter_disrupting(&dc), disrupting, "{type_}");
        }
    }

    #[test]
    fn a_pod_is_placed_by_its_rack_label_or_its_name() {
        let dc = dc();
        let live = pod("cluster1-dc1-rack2-sts-1", "rack2");
        let view = pod_view(&dc, "cluster1-dc1-rack2-sts-1", Some(&live));
        assert_eq!((view.rack_index, view.ordinal), (1, 1));
        assert_eq!(view.rack, "rack2");
        let live = view.live.unwrap();
        assert_eq!(live.uid, "cluster1-dc1-rack2-sts-1-uid");
        assert!(!live.ready);
        let gone = pod_view(&dc, "cluster1-dc1-rack1-sts-0", None);
        assert_eq!((gone.rack_index, gone.rack.as_str()), (0, "rack1"));
        assert!(gone.live.is_none());
        let removed = pod_view(&dc, "cluster1-dc1-old-sts-0", None);
        assert_eq!(removed.rack_index, 2);
    }

    #[test]
    fn recorded_pods_stay_targets_and_limits_are_read() {
        let dc = dc();
        let mut task: CassandraTask = serde_yaml::from_str(
            r"
apiVersion: control.k8ssandra.io/v1alpha1
kind: CassandraTask
metadata:
  name: t
  namespace: cass
spec:
  datacenter:
    name: dc1
  maxConcurrentPods: 2
  retries: 3
  jobs:
    - name: restart-dc1
      command: restart
",
        )
        .unwrap();
        let mut status = k8ssandra_api::control::CassandraTaskStatus::default();
        status.pod_statuses = Some(
            [(
                "cluster1-dc1-rack1-sts-0".to_owned(),
                PodJobStatus {
                    status: "Running".into(),
                    job_id: Some("uid:old".into()),
                    ..PodJobStatus::default()
                },
            )]
            .into(),
        );
        task.status = Some(status);
        let observed = Observed {
            datacenter: Some(dc.clone()),
            pods: vec![pod("cluster1-dc1-rack2-sts-0", "rack2")],
            ..Observed::default()
        };
        let input = plan_input(
            &task,
            &Operation::Restart,
            &dc,
            &observed,
            &TaskCalls::new(),
        );
        let names: Vec<_> = input.pods.iter().map(|p| p.view.name.as_str()).collect();
        assert_eq!(
            names,
            ["cluster1-dc1-rack1-sts-0", "cluster1-dc1-rack2-sts-0"]
        );
        assert!(input.pods[0].record.is_some());
        assert_eq!((input.max_concurrent, input.retries), (2, 3));
        assert!(!input.all_ready);
        assert_eq!(datacenter_ref(&task), ("cass".to_owned(), "dc1".to_owned()));
    }
}
