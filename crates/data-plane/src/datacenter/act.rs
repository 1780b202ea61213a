//! Act: carries out the plan of a pass. Kubernetes writes happen here; Management API calls that
//! can take long (start, decommission) run in tasks of their own whose outcome later passes read
//! from [`NodeCalls`](super::operations::NodeCalls). Every node operation is reported as an Event.

use std::{net::IpAddr, time::Instant};

use k8s_openapi::api::{
    apps::v1::StatefulSet,
    core::v1::{PersistentVolumeClaim, Pod},
};
use k8ssandra_api::{
    cassandra::{CassandraDatacenter, condition},
    conditions, labels, names, quantity,
};
use k8ssandra_mgmt_api::{
    ClientSettings, ClusterHealth, ConsistencyLevel, ManagementApiClient, Submission,
};
use k8ssandra_reconcile::{
    apply::{apply, delete_if_present},
    events::Severity,
};
use kube::{
    Api, Resource, ResourceExt,
    api::{DeleteParams, Patch, PatchParams},
};
use serde_json::json;

use super::{
    Context, FIELD_MANAGER,
    observe::{Observed, pod_ip, started_nodes},
    operations::CallKind,
    plan::{Action, NodeState, Plan, ScaleDownRefusal, datacenter_leave_check, scale_down_check},
    validate::Problem,
};
use crate::build::{self, BuildError, pod_template::DATA_VOLUME};

/// Reason of `Healthy=False` while the cluster health probe holds node operations back.
pub const CLUSTER_UNHEALTHY: &str = "ClusterUnhealthy";

/// Why an action could not be carried out.
#[derive(Debug, thiserror::Error)]
pub enum ActError {
    /// A builder failed.
    #[error(transparent)]
    Build(#[from] BuildError),
    /// The API server refused a write.
    #[error("could not {what}: {source}")]
    Kube {
        /// What the pass tried.
        what: String,
        /// The API error.
        source: kube::Error,
    },
    /// The plan names a pod or rack that is not there (it changed since the observation).
    #[error("{0} is gone since the pass observed it")]
    Gone(String),
}

/// What acting found that the status must say.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ActReport {
    /// A scale down refused to protect the data.
    pub refusal: Option<Problem>,
    /// Pods whose replacement began in this pass.
    pub replacements_begun: Vec<String>,
    /// Whether the roles were created or updated in this pass.
    pub roles_upserted: bool,
    /// Why the cluster health probe held the plan back, if it did.
    pub cluster_unhealthy: Option<String>,
    /// The cleanup after a scale-up (filled in after the actions).
    pub cleanup: super::cleanup::CleanupProgress,
}

/// Carries out `plan`.
///
/// # Errors
/// When a Kubernetes write fails; the actions before it stay done, and the next pass plans anew.
pub async fn act(
    ctx: &Context,
    mgmt: &ClientSettings,
    dc: &CassandraDatacenter,
    observed: &Observed,
    plan: &Plan,
) -> Result<ActReport, ActError> {
    let mut report = ActReport::default();
    let live_uids: Vec<String> = observed.pods.iter().filter_map(|p| p.uid()).collect();
    ctx.calls
        .retain_pods(&live_uids.iter().map(String::as_str).collect::<Vec<_>>());
    let act = Acting {
        ctx,
        mgmt,
        dc,
        observed,
    };
    let mut healthy = false;
    for action in &plan.actions {
        if *action == Action::RequireHealthyCluster {
            if healthy {
                continue;
            }
            if let Some(why) = act.cluster_unhealthy().await {
                act.report_unhealthy(&why).await;
                report.cluster_unhealthy = Some(why);
                break;
            }
            healthy = true;
            continue;
        }
        act.one(action, &mut report).await?;
    }
    Ok(report)
}

struct Acting<'a> {
    ctx: &'a Context,
    mgmt: &'a ClientSettings,
    dc: &'a CassandraDatacenter,
    observed: &'a Observed,
}

impl Acting<'_> {
    fn namespace(&self) -> String {
        self.dc.namespace().unwrap_or_default()
    }

    fn statefulsets(&self) -> Api<StatefulSet> {
        Api::namespaced(self.ctx.client.clone(), &self.namespace())
    }

    fn pods(&self) -> Api<Pod> {
        Api::namespaced(self.ctx.client.clone(), &self.namespace())
    }

    fn pod(&self, name: &str) -> Result<&Pod, ActError> {
        self.observed
            .pods
            .iter()
            .find(|p| p.name_any() == name)
            .ok_or_else(|| ActError::Gone(format!("pod {name}")))
    }

    fn mgmt(&self, pod: &Pod) -> Result<(ManagementApiClient, IpAddr), ActError> {
        let ip = pod_ip(pod)
            .ok_or_else(|| ActError::Gone(format!("the IP of pod {}", pod.name_any())))?;
        Ok((self.mgmt.client(&pod.name_any(), ip), ip))
    }

    fn statefulset_name(&self, rack: &str) -> String {
        names::rack_statefulset(
            &self.dc.spec.cluster_name,
            &self.dc.label_resource_name(),
            rack,
        )
    }

    async fn event(&self, severity: Severity, reason: &str, action: &str, note: String) {
        let reference = self.dc.object_ref(&());
        self.ctx
            .events
            .publish(&reference, severity, reason, action, note)
            .await;
    }

    /// Asks every started node whether each token range still reaches LOCAL_QUORUM with
    /// `rf_per_dc` the number of racks (upstream's probe); why not, if one says so or cannot
    /// answer. With no started node there is nobody to ask, and nothing to protect.
    async fn cluster_unhealthy(&self) -> Option<String> {
        let racks = u32::try_from(build::statefulset::rack_plan(self.dc).len())
            .unwrap_or(u32::MAX)
            .max(1);
        for (pod, ip) in started_nodes(self.observed) {
            match self
                .mgmt
                .client(&pod, ip)
                .probe_cluster(ConsistencyLevel::LocalQuorum, racks)
                .await
            {
                Ok(ClusterHealth::Healthy) => {}
                Ok(ClusterHealth::Unhealthy(ranges)) => {
                    let first = ranges
                        .iter()
                        .next()
                        .map(|(range, why)| format!(" (first: {range}: {})", why.join(", ")))
                        .unwrap_or_default();
                    return Some(format!(
                        "{pod} sees {} token range(s) below LOCAL_QUORUM{first}",
                        ranges.len()
                    ));
                }
                Err(error) => return Some(format!("the cluster health probe failed: {error}")),
            }
        }
        None
    }

    /// A Warning Event when the cluster turns unhealthy (not again while it stays so).
    async fn report_unhealthy(&self, why: &str) {
        let already = self
            .dc
            .status
            .as_ref()
            .and_then(|s| s.conditions.as_deref())
            .and_then(|c| conditions::find(c, condition::HEALTHY))
            .is_some_and(|c| c.reason.as_deref() == Some(CLUSTER_UNHEALTHY));
        if !already {
            self.event(
                Severity::Warning,
                "UnhealthyDatacenter",
                "ProbeCluster",
                format!("waiting for a healthy cluster before the next node operation: {why}"),
            )
            .await;
        }
    }

    async fn one(&self, action: &Action, report: &mut ActReport) -> Result<(), ActError> {
        match action {
            // Handled by the loop: it decides whether the rest runs.
            Action::RequireHealthyCluster => {}
            Action::CreateStatefulSet { rack, replicas } => {
                let sts = self.build_statefulset(rack, *replicas)?;
                self.apply_statefulset(&sts).await?;
                self.event(
                    Severity::Normal,
                    "CreatedStatefulSet",
                    "Create",
                    format!(
                        "created StatefulSet {} for rack {rack} with {replicas} pods",
                        sts.name_any()
                    ),
                )
                .await;
            }
            Action::ScaleStatefulSet { rack, replicas } => {
                self.scale(rack, *replicas).await?;
                self.event(
                    Severity::Normal,
                    "ScaledStatefulSet",
                    "Scale",
                    format!("rack {rack}: {replicas} pods"),
                )
                .await;
            }
            Action::UpdateStatefulSet { rack } => {
                let name = self.statefulset_name(rack);
                let live = self
                    .observed
                    .statefulsets
                    .iter()
                    .find(|s| s.name_any() == name)
                    .ok_or_else(|| ActError::Gone(format!("StatefulSet {name}")))?;
                let replicas = live.spec.as_ref().and_then(|s| s.replicas).unwrap_or(0);
                let mut sts = self.build_statefulset(rack, u32::try_from(replicas).unwrap_or(0))?;
                // Claim templates never change in place (the storage step handles a change).
                build::statefulset::keep_live_claims(&mut sts, live);
                self.apply_statefulset(&sts).await?;
                self.event(
                    Severity::Normal,
                    "UpdatingRack",
                    "RollingRestart",
                    format!(
                        "updating the pod template of rack {rack}: its pods restart one at a time"
                    ),
                )
                .await;
            }
            Action::DeleteStatefulSet { rack } => {
                let name = self.statefulset_name(rack);
                self.statefulsets()
                    .delete(&name, &DeleteParams::default())
                    .await
                    .map_err(|source| ActError::Kube {
                        what: format!("delete StatefulSet {name}"),
                        source,
                    })?;
                self.event(
                    Severity::Normal,
                    "RemovedRack",
                    "Delete",
                    format!("rack {rack} was removed from the spec and is empty: deleted StatefulSet {name}"),
                )
                .await;
            }
            Action::LabelSeed { pod, seed } => {
                let value = seed.then(|| "true".to_owned());
                self.label(pod, labels::SEED_NODE, value).await?;
                let note = if *seed {
                    format!("{pod} is a seed")
                } else {
                    format!("{pod} is no longer a seed")
                };
                self.event(Severity::Normal, "LabeledSeed", "Label", note)
                    .await;
            }
            Action::SetState { pod, state } => {
                self.set_state(pod, *state).await?;
                if *state == NodeState::Started {
                    self.ctx.calls.start_succeeded(pod);
                    let uid = self.pod(pod)?.uid().unwrap_or_default();
                    self.ctx.calls.forget(&uid, CallKind::Start);
                    self.event(
                        Severity::Normal,
                        "StartedCassandra",
                        "Start",
                        format!("{pod} is up and ready"),
                    )
                    .await;
                }
            }
            Action::Start { pod } => self.start(pod).await?,
            Action::StartFailed { pod, error } => {
                let failures = self.ctx.calls.start_failed(pod, error.clone());
                let uid = self.pod(pod)?.uid().unwrap_or_default();
                self.ctx.calls.forget(&uid, CallKind::Start);
                self.set_state(pod, NodeState::ReadyToStart).await?;
                self.event(
                    Severity::Warning,
                    "StartFailed",
                    "Start",
                    format!(
                        "starting Cassandra on {pod} failed ({} time(s)): {error}; retrying with backoff",
                        failures.count
                    ),
                )
                .await;
            }
            Action::Decommission { pod } => {
                if let Some(refusal) = self.decommission(pod).await? {
                    report.refusal = Some(refusal);
                }
            }
            Action::DecommissionFailed { pod, error } => {
                self.ctx.calls.decommission_failed(pod, error.clone());
                let uid = self.pod(pod)?.uid().unwrap_or_default();
                self.ctx.calls.forget(&uid, CallKind::Decommission);
                self.set_state(pod, NodeState::Started).await?;
                self.event(
                    Severity::Warning,
                    "DecommissionFailed",
                    "Decommission",
                    format!("decommissioning {pod} failed: {error}; retrying with backoff"),
                )
                .await;
            }
            Action::BeginReplace { pod } => report.replacements_begun.push(pod.clone()),
            Action::DeleteReplaced { pod } => self.delete_replaced(pod).await?,
            Action::TrimStatefulSet {
                rack,
                replicas,
                pods,
            } => {
                // Claims first: a crash between the two steps then leaves the pods in place,
                // and the next pass trims again; the other way round would strand the claims.
                for pod in pods {
                    self.delete_claims(pod).await?;
                }
                self.scale(rack, *replicas).await?;
                self.event(
                    Severity::Warning,
                    "TrimmedStatefulSet",
                    "Scale",
                    format!(
                        "rack {rack} had more pods than the spec asks for; scaled it back to \
                         {replicas} and removed {}, which never ran Cassandra",
                        if pods.is_empty() {
                            "pods not created yet".to_owned()
                        } else {
                            pods.join(", ")
                        }
                    ),
                )
                .await;
            }
            Action::FinishDecommission {
                pod,
                rack,
                replicas,
            } => {
                // Claims first (the pod's claim protection keeps them until the pod is gone):
                // a crash before the scale leaves the pod, and the next pass finishes again.
                self.delete_claims(pod).await?;
                self.scale(rack, *replicas).await?;
                self.event(
                    Severity::Normal,
                    "Decommissioned",
                    "Decommission",
                    format!("{pod} left the ring; rack {rack} is down to {replicas} pods and the pod's volumes are deleted"),
                )
                .await;
            }
        }
        Ok(())
    }

    fn build_statefulset(&self, rack: &str, replicas: u32) -> Result<StatefulSet, ActError> {
        let rack = self
            .dc
            .spec
            .racks_or_default()
            .into_iter()
            .find(|r| names::clean_label_value(&r.name) == rack)
            .ok_or_else(|| ActError::Gone(format!("rack {rack}")))?;
        Ok(build::statefulset::statefulset(
            self.dc,
            &rack,
            i32::try_from(replicas).unwrap_or(i32::MAX),
            &self.ctx.images,
        )?)
    }

    async fn apply_statefulset(&self, sts: &StatefulSet) -> Result<(), ActError> {
        let written = apply(&self.statefulsets(), FIELD_MANAGER, sts)
            .await
            .map_err(|source| ActError::Kube {
                what: format!("apply StatefulSet {}", sts.name_any()),
                source,
            })?;
        self.ctx.written.record(&written);
        self.ctx.caches.statefulsets.wrote(&written.metadata);
        Ok(())
    }

    /// Sets a rack's replica count (and nothing else of its StatefulSet).
    async fn scale(&self, rack: &str, replicas: u32) -> Result<(), ActError> {
        let name = self.statefulset_name(rack);
        let patch = json!({ "spec": { "replicas": replicas } });
        let scale = self
            .statefulsets()
            .patch_scale(&name, &PatchParams::default(), &Patch::Merge(&patch))
            .await
            .map_err(|source| ActError::Kube {
                what: format!("scale StatefulSet {name} to {replicas}"),
                source,
            })?;
        self.ctx.caches.statefulsets.wrote(&scale.metadata);
        Ok(())
    }

    async fn label(&self, pod: &str, key: &str, value: Option<String>) -> Result<(), ActError> {
        let patch = json!({ "metadata": { "labels": { key: value } } });
        let labelled = self
            .pods()
            .patch(pod, &PatchParams::default(), &Patch::Merge(&patch))
            .await
            .map_err(|source| ActError::Kube {
                what: format!("label pod {pod}"),
                source,
            })?;
        self.ctx.caches.pods.wrote(&labelled.metadata);
        Ok(())
    }

    async fn set_state(&self, pod: &str, state: NodeState) -> Result<(), ActError> {
        self.label(pod, labels::NODE_STATE, Some(state.label().to_owned()))
            .await
    }

    /// Labels the pod `Starting` and calls `lifecycle/start` in a task of its own; a node being
    /// replaced starts with `replace_ip`, the address of the node it replaces.
    async fn start(&self, name: &str) -> Result<(), ActError> {
        let pod = self.pod(name)?;
        let (client, _) = self.mgmt(pod)?;
        let uid = pod.uid().unwrap_or_default();
        let replace_ip = self.replaced_ip(name);
        self.set_state(name, NodeState::Starting).await?;
        self.ctx.calls.begin(&uid, CallKind::Start);
        let calls = self.ctx.calls.clone();
        tokio::spawn(async move {
            let outcome = client
                .start(replace_ip)
                .await
                .map(|_| None)
                .map_err(|e| e.to_string());
            calls.finish(&uid, CallKind::Start, outcome);
        });
        let note = match replace_ip {
            Some(ip) => format!("starting Cassandra on {name}, replacing the node at {ip}"),
            None => format!("starting Cassandra on {name}"),
        };
        self.event(Severity::Normal, "StartingCassandra", "Start", note)
            .await;
        Ok(())
    }

    /// The address of the node pod `name` replaces, when it is listed in `nodeReplacements`.
    fn replaced_ip(&self, name: &str) -> Option<IpAddr> {
        let status = self.dc.status.as_ref()?;
        if !status.node_replacements.as_ref()?.iter().any(|p| p == name) {
            return None;
        }
        status
            .node_statuses
            .as_ref()?
            .get(name)?
            .ip
            .as_ref()?
            .parse()
            .ok()
    }

    /// Deletes the volumes and the pod of a node whose replacement the status records.
    async fn delete_replaced(&self, name: &str) -> Result<(), ActError> {
        self.delete_claims(name).await?;
        delete_if_present(&self.pods(), name, &DeleteParams::default())
            .await
            .map_err(|source| ActError::Kube {
                what: format!("delete pod {name}"),
                source,
            })?;
        self.event(
            Severity::Normal,
            "ReplacingNode",
            "Replace",
            format!(
                "replacing the node of {name}: its volumes and pod are deleted, and the new \
                 node takes over its place"
            ),
        )
        .await;
        Ok(())
    }

    /// Checks that the others can hold the node's data, then labels the pod `Decommissioning`
    /// and decommissions it in a task of its own. Returns the refusal when the check fails.
    async fn decommission(&self, name: &str) -> Result<Option<Problem>, ActError> {
        if !self.ctx.calls.decommission_ready(name, Instant::now()) {
            return Ok(None);
        }
        let pod = self.pod(name)?;
        let (client, ip) = self.mgmt(pod)?;
        // The datacenter leaves as a whole (its deletion with decommission-on-delete): its own
        // replication factors cannot be kept, so Cassandra is told to go on (force), once no
        // keyspace would lose its last replicas.
        let whole_datacenter = self.dc.metadata.deletion_timestamp.is_some();
        let refusal = if whole_datacenter {
            self.datacenter_leave_refusal(&client).await
        } else {
            self.scale_down_refusal(&client, ip).await
        };
        if let Some(refusal) = refusal {
            let problem = Problem {
                reason: refusal.reason(),
                message: format!("cannot decommission {name}: {refusal}"),
            };
            return Ok(Some(problem));
        }
        let uid = pod.uid().unwrap_or_default();
        self.set_state(name, NodeState::Decommissioning).await?;
        self.ctx.calls.begin(&uid, CallKind::Decommission);
        let calls = self.ctx.calls.clone();
        tokio::spawn(async move {
            let outcome = match client.features().await {
                Ok(features) => client
                    .decommission(whole_datacenter, &features)
                    .await
                    .map(|submission| match submission {
                        Submission::Job(job) => Some(job),
                        Submission::Done => None,
                    })
                    .map_err(|e| e.to_string()),
                Err(error) => Err(error.to_string()),
            };
            calls.finish(&uid, CallKind::Decommission, outcome);
        });
        self.event(
            Severity::Normal,
            "DecommissioningNode",
            "Decommission",
            format!("decommissioning {name}: its data streams to the other nodes"),
        )
        .await;
        Ok(None)
    }

    /// Asks the ring whether every keyspace with replicas in this datacenter has replicas in
    /// another datacenter with a live node. A keyspace whose replication cannot be read counts as
    /// one that would be lost: nothing leaves on a guess.
    async fn datacenter_leave_refusal(
        &self,
        client: &ManagementApiClient,
    ) -> Option<ScaleDownRefusal> {
        let own = self.dc.datacenter_name();
        let live_elsewhere: std::collections::BTreeSet<String> = self
            .observed
            .gossip
            .as_ref()?
            .entries
            .iter()
            .filter(|e| e.is_alive() && e.status() == k8ssandra_mgmt_api::NodeStatus::Normal)
            .filter_map(|e| e.datacenter().filter(|dc| *dc != own).map(str::to_owned))
            .collect();
        let unreadable = |keyspace: String| ScaleDownRefusal::DataWouldBeLost { keyspace };
        let names = match client.list_keyspaces(None).await {
            Ok(names) => names,
            Err(error) => {
                tracing::warn!(%error, "listing keyspaces before a datacenter leaves");
                return Some(unreadable("(keyspaces could not be listed)".to_owned()));
            }
        };
        let mut keyspaces = Vec::new();
        for name in names {
            match client.keyspace_replication(&name).await {
                Ok(Some(replication)) => keyspaces.push((name, replication)),
                Ok(None) => {}
                Err(_) => return Some(unreadable(name)),
            }
        }
        datacenter_leave_check(own, &keyspaces, &live_elsewhere)
    }

    /// Asks the ring whether the rest of the datacenter can take over the node at `ip`.
    async fn scale_down_refusal(
        &self,
        client: &ManagementApiClient,
        ip: IpAddr,
    ) -> Option<ScaleDownRefusal> {
        let gossip = self.observed.gossip.as_ref()?;
        let own_dc = self.dc.datacenter_name();
        let in_dc: Vec<_> = gossip.in_datacenter(own_dc).collect();
        let remaining_in_dc = u32::try_from(in_dc.len().saturating_sub(1)).unwrap_or(0);
        let remaining_in_ring = u32::try_from(
            gossip
                .entries
                .iter()
                .filter(|e| e.status() != k8ssandra_mgmt_api::NodeStatus::Left)
                .count()
                .saturating_sub(1),
        )
        .unwrap_or(0);
        let mut factors = Vec::new();
        match client.list_keyspaces(None).await {
            Ok(keyspaces) => {
                for keyspace in keyspaces {
                    if let Ok(Some(replication)) = client.keyspace_replication(&keyspace).await {
                        // SimpleStrategy places replicas anywhere in the ring.
                        let need = match replication.simple_factor() {
                            Some(factor) => (factor, remaining_in_ring),
                            None => (
                                replication
                                    .datacenter_factors()
                                    .get(own_dc)
                                    .copied()
                                    .unwrap_or(0),
                                remaining_in_dc,
                            ),
                        };
                        factors.push((keyspace, need.0, need.1));
                    }
                }
            }
            Err(error) => tracing::warn!(%error, "listing keyspaces before a decommission"),
        }
        let load =
            |e: &k8ssandra_mgmt_api::EndpointState| e.load_bytes().unwrap_or(0.0).max(0.0) as u64;
        let leaving = in_dc.iter().find(|e| e.has_ip(ip)).map_or(0, |e| load(e));
        let others: Vec<u64> = in_dc
            .iter()
            .filter(|e| !e.has_ip(ip))
            .map(|e| load(e))
            .collect();
        scale_down_check(&factors, leaving, &others, self.volume_capacity())
    }

    /// The requested size of a node's data volume, in bytes.
    fn volume_capacity(&self) -> u64 {
        self.dc
            .spec
            .storage_config
            .cassandra_data_volume_claim_spec
            .as_ref()
            .and_then(|spec| spec.resources.as_ref())
            .and_then(|r| r.requests.as_ref())
            .and_then(|r| r.get("storage"))
            .and_then(|q| quantity::parse(&q.0))
            .map_or(u64::MAX, |bytes| bytes.max(0.0) as u64)
    }

    /// Deletes the volume claims of a decommissioned pod (its data left with it).
    async fn delete_claims(&self, pod: &str) -> Result<(), ActError> {
        let api =
            Api::<PersistentVolumeClaim>::namespaced(self.ctx.client.clone(), &self.namespace());
        let mut templates = vec![DATA_VOLUME.to_owned()];
        templates.extend(
            self.dc
                .spec
                .storage_config
                .additional_volumes
                .iter()
                .flatten()
                .filter(|v| v.pvc_spec.is_some())
                .map(|v| v.name.clone()),
        );
        for template in templates {
            let name = format!("{template}-{pod}");
            if !self.observed.claims.iter().any(|c| c.name_any() == name) {
                continue;
            }
            delete_if_present(&api, &name, &DeleteParams::default())
                .await
                .map_err(|source| ActError::Kube {
                    what: format!("delete volume claim {name}"),
                    source,
                })?;
        }
        Ok(())
    }
}
