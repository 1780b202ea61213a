//! Status: what the pass saw and did, as conditions, node statuses and progress. Computed by a
//! pure function; written only when it differs from the stored status.

use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8ssandra_api::{
    cassandra::{
        CassandraDatacenter, CassandraDatacenterStatus, CassandraNodeStatus, ProgressState,
        condition,
    },
    conditions::{self, Condition, ConditionStatus},
    labels, names,
};
use k8ssandra_mgmt_api::NodeStatus;
use kube::ResourceExt;

use super::{
    observe::{Observed, is_ready, is_running, pod_ip},
    plan::Plan,
    validate::Problem,
};

/// What the status is computed from.
pub struct StatusInput<'a> {
    /// The datacenter as read at the start of the pass.
    pub dc: &'a CassandraDatacenter,
    /// What the pass observed.
    pub observed: &'a Observed,
    /// The plan of the pass (`None` when the spec is invalid).
    pub plan: Option<&'a Plan>,
    /// Why the spec cannot be acted on, if so.
    pub problem: Option<&'a Problem>,
    /// Pods whose replacement began in this pass.
    pub replacements_begun: &'a [String],
    /// Whether the roles were created or updated in this pass.
    pub roles_upserted: bool,
    /// Why the cluster health probe held node operations back, if it did.
    pub cluster_unhealthy: Option<&'a str>,
    /// The cleanup after a scale-up.
    pub cleanup: &'a super::cleanup::CleanupProgress,
    /// Pods whose last start failed, with the error.
    pub failed_starts: Vec<(String, u32, String)>,
    /// Now.
    pub now: Time,
}

fn condition_from(type_: &str, active: Option<&String>, reason: &str, idle: &str) -> Condition {
    match active {
        Some(message) => Condition::new(type_, ConditionStatus::True, reason, message.clone()),
        None => Condition::new(type_, ConditionStatus::False, idle, ""),
    }
}

/// The status the datacenter should have after this pass.
#[must_use]
pub fn desired_status(input: &StatusInput<'_>) -> CassandraDatacenterStatus {
    let dc = input.dc;
    let previous = dc.status.clone().unwrap_or_default();
    let mut status = previous.clone();
    if input.roles_upserted {
        status.users_upserted = Some(input.now.clone());
        status.super_user_upserted = Some(input.now.clone());
    }
    let mut list = previous.conditions.clone().unwrap_or_default();
    let was_initialized =
        conditions::find(&list, condition::INITIALIZED).is_some_and(Condition::is_true);
    let was_ready = conditions::find(&list, condition::READY).is_some_and(Condition::is_true);
    let was_scaling_up =
        conditions::find(&list, condition::SCALING_UP).is_some_and(Condition::is_true);
    let generation = dc.metadata.generation;
    let mut set = |mut c: Condition| {
        c.observed_generation = generation;
        if c.message.as_deref() == Some("") {
            c.message = None;
        }
        conditions::set(&mut list, c, &input.now);
    };

    // A ready pod whose node the ring does not list, or lists as LEFT, is no Cassandra node:
    // Ready never counts it, so that Ready and the ring never contradict each other.
    let in_ring = |pod: &k8s_openapi::api::core::v1::Pod| {
        let Some(gossip) = &input.observed.gossip else {
            return true;
        };
        pod_ip(pod)
            .and_then(|ip| gossip.by_ip(ip))
            .is_some_and(|entry| entry.status() != NodeStatus::Left)
    };
    let up: Vec<&str> = input
        .observed
        .pods
        .iter()
        .filter(|p| is_running(p) && is_ready(p) && in_ring(p))
        .map(|p| p.metadata.name.as_deref().unwrap_or_default())
        .collect();
    let out_of_ring: Vec<&str> = input
        .observed
        .pods
        .iter()
        .filter(|p| is_running(p) && is_ready(p) && !in_ring(p))
        .map(|p| p.metadata.name.as_deref().unwrap_or_default())
        .collect();
    let desired = if dc.spec.is_stopped() {
        0
    } else {
        u32::try_from(dc.spec.size).unwrap_or(0)
    };
    let ready_nodes = i32::try_from(up.len()).unwrap_or(i32::MAX);

    set(match input.problem {
        Some(problem) => Condition::new(
            condition::VALID,
            ConditionStatus::False,
            problem.reason,
            problem.message.clone(),
        ),
        None => Condition::new(condition::VALID, ConditionStatus::True, "ValidSpec", ""),
    });

    let activity = input.plan.map(|plan| &plan.activity);
    let all_up = !dc.spec.is_stopped() && (up.len() as u64) == u64::from(desired) && desired > 0;
    // What keeps nodes from being ready, for either message.
    let mut not_ready = String::new();
    if !out_of_ring.is_empty() {
        not_ready.push_str(&format!(
            "; {} ready but not in the ring (or LEFT)",
            out_of_ring.join(", ")
        ));
    }
    for (pod, count, error) in &input.failed_starts {
        not_ready.push_str(&format!("; start of {pod} failed {count} time(s): {error}"));
    }
    for waiting in activity.map(|a| a.waiting.as_slice()).unwrap_or_default() {
        not_ready.push_str("; ");
        not_ready.push_str(waiting);
    }
    if let Some(why) = input.cluster_unhealthy {
        not_ready.push_str("; waiting for a healthy cluster: ");
        not_ready.push_str(why);
    }
    set(if all_up {
        Condition::new(
            condition::READY,
            ConditionStatus::True,
            "AllNodesReady",
            format!("{} of {desired} nodes ready", up.len()),
        )
    } else if let Some(scaling) = ready_while_scaling(input, was_ready, &up, desired) {
        Condition::new(
            condition::READY,
            ConditionStatus::True,
            "Scaling",
            format!("{scaling}{not_ready}"),
        )
    } else {
        let message = if dc.spec.is_stopped() {
            format!("the datacenter is stopped{not_ready}")
        } else {
            format!("{} nodes ready, {desired} wanted{not_ready}", up.len())
        };
        let reason = if input.failed_starts.is_empty() {
            "NodesNotReady"
        } else {
            "StartFailed"
        };
        Condition::new(condition::READY, ConditionStatus::False, reason, message)
    });

    set(if was_initialized || all_up {
        Condition::new(
            condition::INITIALIZED,
            ConditionStatus::True,
            "DatacenterInitialized",
            "every node of the datacenter started once",
        )
    } else {
        Condition::new(
            condition::INITIALIZED,
            ConditionStatus::False,
            "NotInitialized",
            "the datacenter has not had every node up yet",
        )
    });

    set(match input.cluster_unhealthy {
        Some(why) => Condition::new(
            condition::HEALTHY,
            ConditionStatus::False,
            super::act::CLUSTER_UNHEALTHY,
            why,
        ),
        None => healthy(dc, input.observed),
    });

    // As upstream, a scale-up is one of a datacenter that was Ready: the first bring-up and a
    // resume are not (so no cleanup follows them). It ends with a settled pass (which makes the
    // cleanup task), or once the tracked cleanup finished.
    let unsettled = input.plan.is_some_and(|p| !p.is_settled());
    let finishing = "the new nodes are up; the scale-up ends with the next settled pass".to_owned();
    let scaling_up = activity
        .and_then(|a| a.scaling_up.as_ref())
        .filter(|_| was_ready || was_scaling_up)
        .or(input.cleanup.waiting.as_ref())
        .or((was_scaling_up && unsettled).then_some(&finishing));
    set(condition_from(
        condition::SCALING_UP,
        scaling_up,
        "ScalingUp",
        "NotScalingUp",
    ));
    set(condition_from(
        condition::SCALING_DOWN,
        activity.and_then(|a| a.scaling_down.as_ref()),
        "ScalingDown",
        "NotScalingDown",
    ));
    let updating = activity.and_then(|a| a.updating.as_ref());
    set(condition_from(
        condition::UPDATING,
        updating,
        "UpdatingPods",
        "NotUpdating",
    ));
    set(condition_from(
        condition::ROLLING_RESTART,
        updating,
        "RollingRestart",
        "NoRollingRestart",
    ));
    set(condition_from(
        condition::REQUIRES_UPDATE,
        activity.and_then(|a| a.requires_update.as_ref()),
        "RequiresUpdate",
        "UpToDate",
    ));
    let stopped_message = dc
        .spec
        .is_stopped()
        .then(|| "the datacenter is stopped; its volumes and host IDs are kept".to_owned());
    set(condition_from(
        condition::STOPPED,
        stopped_message.as_ref(),
        "Stopped",
        "Running",
    ));
    let replacements = node_replacements(&previous, input);
    let replacing = (!replacements.is_empty())
        .then(|| format!("replacing the node of {}", replacements.join(", ")));
    set(condition_from(
        condition::REPLACING_NODES,
        replacing.as_ref(),
        "ReplacingNodes",
        "NoReplacement",
    ));

    status.conditions = Some(list);
    let settled = input.problem.is_none() && input.plan.is_some_and(Plan::is_settled);
    status.cassandra_operator_progress = Some(if settled {
        ProgressState::Ready
    } else {
        ProgressState::Updating
    });
    status.node_statuses = node_statuses(
        input.observed,
        previous.node_statuses.as_ref(),
        &replacements,
    );
    status.node_replacements = (!replacements.is_empty()).then_some(replacements);
    status.tracked_tasks =
        (!input.cleanup.tracked.is_empty()).then(|| input.cleanup.tracked.clone());
    status.observed_generation = generation;
    status.ready_nodes = Some(ready_nodes);
    let mut failed: Vec<String> = input
        .failed_starts
        .iter()
        .map(|(p, _, _)| p.clone())
        .collect();
    failed.sort();
    status.failed_starts = (!failed.is_empty()).then_some(failed);
    status
}

/// The pods being replaced: those listed before or begun now, until the new pod (without the
/// replace annotation) is running and ready.
fn node_replacements(previous: &CassandraDatacenterStatus, input: &StatusInput<'_>) -> Vec<String> {
    let mut pods = previous.node_replacements.clone().unwrap_or_default();
    for pod in input.replacements_begun {
        if !pods.contains(pod) {
            pods.push(pod.clone());
        }
    }
    pods.retain(|name| {
        let done = input.observed.pods.iter().any(|pod| {
            pod.name_any() == *name
                && !pod
                    .annotations()
                    .contains_key(labels::annotations::REPLACE_NODE)
                && is_running(pod)
                && is_ready(pod)
        });
        !done
    });
    pods
}

/// `Healthy`: every node of the datacenter that the ring lists is alive and NORMAL.
fn healthy(dc: &CassandraDatacenter, observed: &Observed) -> Condition {
    let Some(gossip) = &observed.gossip else {
        let status = if observed.pods.is_empty() {
            ConditionStatus::False
        } else {
            ConditionStatus::Unknown
        };
        return Condition::new(
            condition::HEALTHY,
            status,
            "NoNodeAnswered",
            "no node of the datacenter answered for the ring",
        );
    };
    let own = dc.datacenter_name();
    let mut unhealthy: Vec<String> = gossip
        .in_datacenter(own)
        .filter(|e| !e.is_alive() || e.status() != NodeStatus::Normal)
        .map(|e| {
            let who = e
                .endpoint_ip()
                .and_then(|ip| {
                    observed
                        .pods
                        .iter()
                        .find(|p| pod_ip(p) == Some(ip))
                        .map(ResourceExt::name_any)
                })
                .or_else(|| e.endpoint_ip().map(|ip| ip.to_string()))
                .unwrap_or_else(|| "a node".to_owned());
            let state = if e.is_alive() {
                format!("{:?}", e.status()).to_uppercase()
            } else {
                "DOWN".to_owned()
            };
            format!("{who} is {state}")
        })
        .collect();
    // A node of the datacenter (it has a host ID) that the ring no longer lists, or lists as
    // LEFT, and that is not leaving by the operator's decommission, left behind its back.
    let known = dc.status.as_ref().and_then(|s| s.node_statuses.as_ref());
    for (pod, node) in known.into_iter().flatten() {
        let Some(host_id) = node.host_id.as_deref() else {
            continue;
        };
        let leaving = observed.pods.iter().any(|p| {
            p.name_any() == *pod
                && p.labels().get(labels::NODE_STATE).map(String::as_str)
                    == Some(labels::node_state::DECOMMISSIONING)
        });
        let in_ring = gossip
            .by_host_id(host_id)
            .is_some_and(|e| e.status() != NodeStatus::Left);
        if !leaving && !in_ring {
            unhealthy.push(format!("{pod} is not in the ring"));
        }
    }
    unhealthy.sort();
    unhealthy.dedup();
    if unhealthy.is_empty() {
        Condition::new(
            condition::HEALTHY,
            ConditionStatus::True,
            "AllNodesHealthy",
            "every node of the datacenter is alive and NORMAL in the ring",
        )
    } else {
        Condition::new(
            condition::HEALTHY,
            ConditionStatus::False,
            "NodesUnhealthy",
            unhealthy.join(", "),
        )
    }
}

/// Why a ready datacenter stays Ready while it scales (scaling is no outage, and the control
/// plane reads this condition), or `None` when a node it serves with is down. Scaling down, every
/// wanted node's worth is up; scaling up (fewer ready than wanted), no fewer nodes are ready than
/// at the last pass: the ready count only grows then, so a drop is a node that served going down.
fn ready_while_scaling(
    input: &StatusInput<'_>,
    was_ready: bool,
    up: &[&str],
    desired: u32,
) -> Option<String> {
    if !was_ready || input.dc.spec.is_stopped() || desired == 0 {
        return None;
    }
    let ready = up.len();
    let wanted = u64::from(desired);
    if let Some(down) = input.plan.and_then(|p| p.activity.scaling_down.as_ref()) {
        return (ready as u64 >= wanted)
            .then(|| format!("{ready} nodes ready, {desired} wanted; {down}"));
    }
    let ready_before = input.dc.status.as_ref()?.ready_nodes?;
    ((ready as u64) < wanted && i64::try_from(ready).unwrap_or(i64::MAX) >= i64::from(ready_before))
        .then(|| format!("{ready} nodes ready, {desired} wanted; scaling up"))
}

/// Host ID, IP and rack per pod: refreshed from the ring, kept while the pod's data volume
/// exists (a stopped or recreated pod keeps its host ID), dropped once it is deleted.
fn node_statuses(
    observed: &Observed,
    previous: Option<&BTreeMap<String, CassandraNodeStatus>>,
    replacing: &[String],
) -> Option<BTreeMap<String, CassandraNodeStatus>> {
    let mut statuses = previous.cloned().unwrap_or_default();
    // A claim being deleted belongs to a node that left: its entry goes with it.
    let claims: Vec<String> = observed
        .claims
        .iter()
        .filter(|c| c.metadata.deletion_timestamp.is_none())
        .map(ResourceExt::name_any)
        .collect();
    statuses
        .retain(|pod, _| claims.contains(&names::server_data_pvc(pod)) || replacing.contains(pod));
    if let Some(gossip) = &observed.gossip {
        for pod in observed
            .pods
            .iter()
            .filter(|p| !replacing.contains(&p.name_any()))
        {
            let Some(ip) = pod_ip(pod) else { continue };
            let Some(entry) = gossip.by_ip(ip) else {
                continue;
            };
            let Some(host_id) = entry.host_id() else {
                continue;
            };
            if matches!(entry.status(), NodeStatus::Left) {
                continue;
            }
            statuses.insert(
                pod.name_any(),
                CassandraNodeStatus {
                    host_id: Some(host_id.to_owned()),
                    ip: Some(ip.to_string()),
                    rack: pod.labels().get(k8ssandra_api::labels::RACK).cloned(),
                },
            );
        }
    }
    (!statuses.is_empty()).then_some(statuses)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::datacenter::plan::Activity;
    use k8s_openapi::api::core::v1::{Pod, PodCondition, PodStatus};
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
    use k8ssandra_api::cassandra::CassandraDatacenterSpec;

    fn pod(name: &str, ready: bool) -> Pod {
        Pod {
            metadata: ObjectMeta {
                name: Some(name.into()),
                ..ObjectMeta::default()
            },
            status: Some(PodStatus {
                phase: Some("Running".into()),
                pod_ip: Some("10.0.0.1".into()),
                conditions: Some(vec![PodCondition {
                    type_: "Ready".into(),
                    status: if ready { "True" } else { "False" }.into(),
                    ..PodCondition::default()
                }]),
                ..PodStatus::default()
            }),
            ..Pod::default()
        }
    }

    /// A datacenter of `size` whose last status was Ready=True with `ran` nodes ready.
    fn ready_dc(size: i32, ran: &[&str]) -> CassandraDatacenter {
        let mut dc = CassandraDatacenter::new(
            "dc1",
            CassandraDatacenterSpec {
                cluster_name: "demo".into(),
                server_version: "4.1.5".into(),
                size,
                ..Default::default()
            },
        );
        let now = Time(k8s_openapi::jiff::Timestamp::from_second(1_700_000_000).unwrap());
        let mut list = Vec::new();
        conditions::set(
            &mut list,
            Condition::new(condition::READY, ConditionStatus::True, "AllNodesReady", ""),
            &now,
        );
        dc.status = Some(CassandraDatacenterStatus {
            conditions: Some(list),
            ready_nodes: Some(i32::try_from(ran.len()).unwrap()),
            ..CassandraDatacenterStatus::default()
        });
        dc
    }

    fn ready(dc: &CassandraDatacenter, pods: Vec<Pod>, activity: Activity) -> (bool, String) {
        let observed = Observed {
            pods,
            ..Observed::default()
        };
        let plan = Plan {
            actions: Vec::new(),
            activity,
        };
        let status = desired_status(&StatusInput {
            dc,
            observed: &observed,
            plan: Some(&plan),
            problem: None,
            replacements_begun: &[],
            roles_upserted: false,
            cluster_unhealthy: None,
            cleanup: &Default::default(),
            failed_starts: Vec::new(),
            now: Time(k8s_openapi::jiff::Timestamp::from_second(1_700_000_000).unwrap()),
        });
        let list = status.conditions.unwrap_or_default();
        let ready = conditions::find(&list, condition::READY).expect("Ready");
        (ready.is_true(), ready.reason.clone().unwrap_or_default())
    }

    #[test]
    fn a_ready_datacenter_stays_ready_while_it_scales_up_unless_an_old_node_is_down() {
        let dc = ready_dc(4, &["a", "b", "c"]);
        let scaling = Activity {
            scaling_up: Some("3 of 4 nodes up".into()),
            ..Activity::default()
        };
        let pods = |old_ready| {
            vec![
                pod("a", true),
                pod("b", true),
                pod("c", old_ready),
                pod("d", false),
            ]
        };
        assert_eq!(
            ready(&dc, pods(true), scaling.clone()),
            (true, "Scaling".into())
        );
        assert!(!ready(&dc, pods(false), scaling.clone()).0);
        // Never Ready before (a first bring-up): not Ready until every node is up.
        let mut fresh = dc.clone();
        fresh.status = None;
        assert!(!ready(&fresh, pods(true), scaling).0);
    }

    #[test]
    fn a_ready_datacenter_stays_ready_while_it_scales_down_with_enough_nodes_up() {
        let dc = ready_dc(2, &["a", "b", "c"]);
        let scaling = Activity {
            scaling_down: Some("decommissioning c".into()),
            ..Activity::default()
        };
        let all = vec![pod("a", true), pod("b", true), pod("c", true)];
        assert_eq!(ready(&dc, all, scaling.clone()), (true, "Scaling".into()));
        let short = vec![pod("a", true), pod("b", false), pod("c", true)];
        assert!(ready(&dc, short, scaling.clone()).0);
        let shorter = vec![pod("a", true), pod("b", false), pod("c", false)];
        assert!(!ready(&dc, shorter.clone(), scaling).0);
        // Not scaling at all: Ready is every wanted node up.
        assert!(!ready(&dc, shorter, Activity::default()).0);
    }
}
