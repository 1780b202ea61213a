//! Observe: one read of everything a pass decides from (the datacenter's StatefulSets, pods and
//! volume claims, and the ring as a ready node sees it), then a pure translation into the
//! planner's input.

use std::{
    collections::{BTreeMap, BTreeSet},
    net::IpAddr,
    time::{Duration, Instant},
};

use k8s_openapi::api::{
    apps::v1::StatefulSet,
    core::v1::{PersistentVolumeClaim, Pod},
};
use k8ssandra_api::{
    cassandra::{CassandraDatacenter, condition},
    conditions, labels, names,
};
use k8ssandra_mgmt_api::{ClientSettings, EndpointStates, JobStatus, NodeStatus};
use k8ssandra_reconcile::cache::Cache;
use kube::{Resource, ResourceExt};

use super::{
    Context,
    operations::{CallKind, NodeCalls},
    plan::{NodeState, NodeView, PlanInput, RackView, StatefulSetView},
};
use crate::build::{self, BuildError, hash, images::ImageConfig};

/// What one pass read.
#[derive(Clone, Debug, Default)]
pub struct Observed {
    /// The datacenter's StatefulSets (one per rack, removed racks included).
    pub statefulsets: Vec<StatefulSet>,
    /// The datacenter's pods.
    pub pods: Vec<Pod>,
    /// The datacenter's volume claims.
    pub claims: Vec<PersistentVolumeClaim>,
    /// The ring as a ready node of the datacenter sees it; `None` when no node answered.
    pub gossip: Option<EndpointStates>,
    /// StatefulSets whose spec someone else changed since this operator last wrote them.
    pub edited: Vec<String>,
    /// Seed addresses that others (the control plane, for the other datacenters) list behind
    /// the datacenter's additional-seed Service, sorted.
    pub external_seeds: Vec<String>,
}

/// The labels of everything the datacenter owns.
#[must_use]
pub fn selector(dc: &CassandraDatacenter) -> BTreeMap<String, String> {
    labels::datacenter_labels(&dc.spec.cluster_name, &dc.label_resource_name())
}

/// The datacenter's objects of one cache, as owned copies.
fn owned<K>(cache: &Cache<K>, dc: &CassandraDatacenter) -> Vec<K>
where
    K: Resource<DynamicType = ()> + Clone + 'static,
{
    cache
        .list(&dc.namespace().unwrap_or_default(), &selector(dc))
        .into_iter()
        .map(|object| (*object).clone())
        .collect()
}

/// Reads the datacenter's objects from the watch caches, then the ring and how pending
/// decommission jobs went from the Management API.
pub async fn observe(
    ctx: &Context,
    dc: &CassandraDatacenter,
    mgmt: Option<&ClientSettings>,
) -> Observed {
    let statefulsets = owned(&ctx.caches.statefulsets, dc);
    let pods = owned(&ctx.caches.pods, dc);
    let claims = owned(&ctx.caches.claims, dc);
    // Without a way to reach the Management API (its TLS Secret is wrong), the ring is unknown.
    let mut gossip = None;
    if let Some(mgmt) = mgmt {
        gossip = read_gossip(mgmt, &pods).await;
        poll_decommission_jobs(ctx, mgmt, &pods).await;
    }
    // An edit is reverted once: an edit of fields this operator does not set leaves the
    // generation where its revert found it, and is then left alone.
    let edited = statefulsets
        .iter()
        .filter(|sts| edited_by_hand(sts) && !ctx.written.is_current(sts))
        .map(ResourceExt::name_any)
        .collect();
    Observed {
        statefulsets,
        pods,
        claims,
        gossip,
        edited,
        external_seeds: external_seeds(ctx, dc),
    }
}

/// The addresses of the EndpointSlices behind the additional-seed Service that the datacenter
/// does not own: the seeds of the other datacenters, which the control plane lists there.
fn external_seeds(ctx: &Context, dc: &CassandraDatacenter) -> Vec<String> {
    let service = names::additional_seed_service(&dc.spec.cluster_name, &dc.label_resource_name());
    let selector = BTreeMap::from([(labels::SERVICE_NAME.to_owned(), service)]);
    let uid = dc.uid().unwrap_or_default();
    let mut addresses: Vec<String> = ctx
        .caches
        .endpoint_slices
        .list(&dc.namespace().unwrap_or_default(), &selector)
        .iter()
        .filter(|slice| !slice.owner_references().iter().any(|o| o.uid == uid))
        .flat_map(|slice| slice.endpoints.iter().flat_map(|e| e.addresses.clone()))
        .collect();
    addresses.sort();
    addresses.dedup();
    addresses
}

/// The ring, from the first ready pod that answers.
async fn read_gossip(mgmt: &ClientSettings, pods: &[Pod]) -> Option<EndpointStates> {
    for pod in pods.iter().filter(|p| is_ready(p) && is_running(p)) {
        let Some(ip) = pod_ip(pod) else { continue };
        match mgmt.client(&pod.name_any(), ip).endpoints().await {
            Ok(states) => return Some(states),
            Err(error) => tracing::debug!(%error, "reading the ring"),
        }
    }
    None
}

/// Polls the jobs of decommissions accepted as jobs, and records how they ended.
async fn poll_decommission_jobs(ctx: &Context, mgmt: &ClientSettings, pods: &[Pod]) {
    for pod in pods {
        let uid = pod.uid().unwrap_or_default();
        let Some(job) = ctx.calls.pending_job(&uid, CallKind::Decommission) else {
            continue;
        };
        let Some(ip) = pod_ip(pod) else { continue };
        match mgmt.client(&pod.name_any(), ip).job(&job).await {
            Ok(Some(job)) => match job.status {
                JobStatus::Completed => ctx.calls.finish(&uid, CallKind::Decommission, Ok(None)),
                JobStatus::Error => ctx.calls.finish(
                    &uid,
                    CallKind::Decommission,
                    Err(job
                        .error
                        .unwrap_or_else(|| "the decommission job failed".to_owned())),
                ),
                _ => {}
            },
            // The server forgot the job (restarted, evicted): the ring tells the rest.
            Ok(None) => ctx.calls.finish(&uid, CallKind::Decommission, Ok(None)),
            Err(error) => tracing::debug!(%error, "polling a decommission job"),
        }
    }
}

/// The pod's IP, when it has one.
#[must_use]
pub fn pod_ip(pod: &Pod) -> Option<IpAddr> {
    pod.status.as_ref()?.pod_ip.as_ref()?.parse().ok()
}

/// Pods whose Cassandra runs (labelled Started, running and ready), with their addresses: the
/// nodes asked about the cluster and told to reload their seeds.
#[must_use]
pub fn started_nodes(observed: &Observed) -> Vec<(String, IpAddr)> {
    observed
        .pods
        .iter()
        .filter(|p| {
            is_running(p)
                && is_ready(p)
                && p.labels().get(labels::NODE_STATE).map(String::as_str)
                    == Some(labels::node_state::STARTED)
        })
        .filter_map(|p| Some((p.name_any(), pod_ip(p)?)))
        .collect()
}

/// The pod's Ready condition is True.
#[must_use]
pub fn is_ready(pod: &Pod) -> bool {
    pod.status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .is_some_and(|c| c.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
}

/// The scheduler said it cannot place the pod.
#[must_use]
pub fn is_unschedulable(pod: &Pod) -> bool {
    pod.status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .is_some_and(|c| {
            c.iter().any(|c| {
                c.type_ == "PodScheduled"
                    && c.status == "False"
                    && c.reason.as_deref() == Some("Unschedulable")
            })
        })
}

/// Running, with an IP, and not being deleted.
#[must_use]
pub fn is_running(pod: &Pod) -> bool {
    pod.metadata.deletion_timestamp.is_none()
        && pod.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Running")
        && pod_ip(pod).is_some()
}

/// Whether the datacenter may roll a changed pod template out now: the spec changed since the
/// last pass, a rollout is under way, or the user allows updates.
#[must_use]
pub fn update_allowed(dc: &CassandraDatacenter) -> bool {
    let status = dc.status.as_ref();
    let spec_changed = status.and_then(|s| s.observed_generation) != dc.metadata.generation;
    let updating = status
        .and_then(|s| s.conditions.as_deref())
        .and_then(|c| conditions::find(c, condition::UPDATING))
        .is_some_and(conditions::Condition::is_true);
    let allowed_by_user = dc
        .annotations()
        .get(labels::annotations::AUTOUPDATE_SPEC)
        .is_some_and(|v| v == "once" || v == "always");
    spec_changed || updating || allowed_by_user
}

/// The planner's input, from the spec, what was observed and the calls under way.
///
/// # Errors
/// When the desired StatefulSets cannot be built.
pub fn plan_input(
    dc: &CassandraDatacenter,
    observed: &Observed,
    calls: &NodeCalls,
    images: &ImageConfig,
    now: Instant,
    start_timeout: Duration,
) -> Result<PlanInput, BuildError> {
    let rack_of = |sts: &StatefulSet| sts.labels().get(labels::RACK).cloned().unwrap_or_default();
    let mut racks = Vec::new();
    for rack_plan in build::statefulset::rack_plan(dc) {
        let live = observed
            .statefulsets
            .iter()
            .find(|s| rack_of(s) == names::clean_label_value(&rack_plan.rack.name));
        let statefulset = match live {
            Some(live) => {
                let desired = build::statefulset::statefulset(dc, &rack_plan.rack, 0, images)?;
                Some(statefulset_view(
                    live,
                    hash::stamped_hash(&desired),
                    observed.edited.contains(&live.name_any()),
                ))
            }
            None => None,
        };
        racks.push(RackView {
            name: names::clean_label_value(&rack_plan.rack.name),
            in_spec: true,
            desired_nodes: rack_plan.nodes,
            desired_seeds: rack_plan.seeds,
            statefulset,
        });
    }
    let spec_racks: BTreeSet<String> = racks
        .iter()
        .map(|r| names::clean_label_value(&r.name))
        .collect();
    for live in &observed.statefulsets {
        let rack = rack_of(live);
        if !spec_racks.contains(&rack) {
            racks.push(RackView {
                name: rack,
                in_spec: false,
                desired_nodes: 0,
                desired_seeds: 0,
                statefulset: Some(statefulset_view(live, None, false)),
            });
        }
    }

    let gossip = observed.gossip.as_ref();
    let replacing = dc
        .status
        .as_ref()
        .and_then(|s| s.node_replacements.clone())
        .unwrap_or_default();
    let known = dc.status.as_ref().and_then(|s| s.node_statuses.as_ref());
    let nodes = observed
        .pods
        .iter()
        .map(|pod| {
            let name = pod.name_any();
            let state =
                NodeState::from_label(pod.labels().get(labels::NODE_STATE).map(String::as_str));
            let uid = pod.uid().unwrap_or_default();
            let ip = pod_ip(pod);
            let (may_start, failures) = calls.start_failures(&name, now);
            NodeView {
                ordinal: names::pod_ordinal(&name),
                rack: pod.labels().get(labels::RACK).cloned().unwrap_or_default(),
                state,
                seed: pod
                    .labels()
                    .get(labels::SEED_NODE)
                    .is_some_and(|v| v == "true"),
                running: is_running(pod),
                ready: is_ready(pod),
                ip,
                gossip: gossip
                    .zip(ip)
                    .and_then(|(g, ip)| g.by_ip(ip))
                    .map(k8ssandra_mgmt_api::EndpointState::status),
                start: calls.progress(&uid, CallKind::Start, now),
                decommission: calls.progress(&uid, CallKind::Decommission, now),
                start_backing_off: !may_start,
                failed_before: failures.is_some(),
                replace_requested: pod
                    .annotations()
                    .get(labels::annotations::REPLACE_NODE)
                    .is_some_and(|v| v == "true"),
                replacing: replacing.contains(&name),
                unschedulable: is_unschedulable(pod),
                joined: state != NodeState::ReadyToStart
                    || is_ready(pod)
                    || known.is_some_and(|k| k.contains_key(&name))
                    || gossip.zip(ip).and_then(|(g, ip)| g.by_ip(ip)).is_some(),
                pod: name,
            }
        })
        .collect();
    let own_dc = dc.datacenter_name();
    let remote_seed_up = gossip.is_some_and(|g| {
        g.entries.iter().any(|e| {
            e.datacenter().is_some_and(|d| d != own_dc)
                && e.is_alive()
                && e.status() == NodeStatus::Normal
        })
    });
    Ok(PlanInput {
        racks,
        nodes,
        stopped: dc.spec.is_stopped(),
        update_allowed: update_allowed(dc),
        start_timeout,
        parallel_starts: dc
            .annotations()
            .get(labels::annotations::ALLOW_PARALLEL_STARTS)
            .is_none_or(|v| v != "false"),
        remote_seed_up,
        additional_seeds: dc
            .spec
            .additional_seeds
            .as_ref()
            .is_some_and(|seeds| !seeds.is_empty()),
        gossip_known: gossip.is_some(),
    })
}

fn statefulset_view(
    live: &StatefulSet,
    desired_hash: Option<&str>,
    edited: bool,
) -> StatefulSetView {
    let replicas = live
        .spec
        .as_ref()
        .and_then(|s| s.replicas)
        .and_then(|r| u32::try_from(r).ok())
        .unwrap_or(0);
    let rolled_out = live.status.as_ref().is_none_or(|status| {
        status.observed_generation >= live.metadata.generation
            && (status.update_revision.is_none()
                || status.update_revision == status.current_revision)
    });
    StatefulSetView {
        replicas,
        template_current: desired_hash.is_none_or(|h| hash::stamped_hash(live) == Some(h)),
        rolled_out,
        edited,
    }
}

/// Whether someone else wrote the StatefulSet's spec after this operator's last apply: its
/// managed fields show another manager's write of `spec` (not through the scale or status
/// subresource, which the trim and the StatefulSet controller own) later than ours. Times are
/// whole seconds, so an edit in the second of the operator's own write goes unnoticed until the
/// next one.
#[must_use]
pub fn edited_by_hand(live: &StatefulSet) -> bool {
    let entries = live.metadata.managed_fields.as_deref().unwrap_or_default();
    let ours = entries
        .iter()
        .filter(|e| e.manager.as_deref() == Some(super::FIELD_MANAGER) && e.subresource.is_none())
        .filter_map(|e| e.time.as_ref())
        .max();
    entries
        .iter()
        .filter(|e| e.manager.as_deref() != Some(super::FIELD_MANAGER) && e.subresource.is_none())
        .filter(|e| {
            e.fields_v1
                .as_ref()
                .is_some_and(|f| f.0.get("f:spec").is_some())
        })
        .filter_map(|e| e.time.as_ref())
        .any(|theirs| ours.is_none_or(|ours| theirs.0 > ours.0))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn managed(
        manager: &str,
        subresource: Option<&str>,
        second: i64,
        spec: bool,
    ) -> serde_json::Value {
        let fields = if spec {
            serde_json::json!({ "f:spec": { "f:template": {} } })
        } else {
            serde_json::json!({ "f:metadata": { "f:ownerReferences": {} } })
        };
        let time = k8s_openapi::jiff::Timestamp::from_second(1_700_000_000 + second)
            .map(|t| t.to_string())
            .unwrap_or_default();
        serde_json::json!({
            "manager": manager, "operation": "Update", "subresource": subresource,
            "time": time, "fieldsType": "FieldsV1", "fieldsV1": fields,
        })
    }

    fn sts_with(entries: Vec<serde_json::Value>) -> StatefulSet {
        serde_json::from_value(
            serde_json::json!({ "metadata": { "name": "s", "managedFields": entries } }),
        )
        .unwrap_or_default()
    }

    #[test]
    fn an_edit_by_hand_is_a_later_write_of_spec_by_another_manager() {
        let ours = || managed(super::super::FIELD_MANAGER, None, 10, true);
        assert!(!edited_by_hand(&sts_with(vec![ours()])));
        assert!(edited_by_hand(&sts_with(vec![
            ours(),
            managed("kubectl-edit", None, 20, true)
        ])));
        // Earlier than ours, through the scale subresource, or only metadata: not an edit.
        assert!(!edited_by_hand(&sts_with(vec![
            ours(),
            managed("kubectl-edit", None, 5, true)
        ])));
        assert!(!edited_by_hand(&sts_with(vec![
            ours(),
            managed("kubectl", Some("scale"), 20, true)
        ])));
        assert!(!edited_by_hand(&sts_with(vec![
            ours(),
            managed("kube-controller-manager", None, 20, false)
        ])));
    }
}
