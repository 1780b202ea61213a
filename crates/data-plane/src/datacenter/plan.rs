//! The node planner: from what a pass observed, the actions of this pass. Pure, so every rule of
//! the node lifecycle is a table test.
//!
//! Rules, in the order they are tried (the first that has something to do ends the plan):
//! 1. a stopped datacenter scales every rack to zero (the pods drain on their way out);
//! 2. missing StatefulSets are created; a rack below its share is scaled up;
//! 3. `Starting` pods that turned ready are marked `Started`; a failed start is rolled back;
//! 4. a decommission in progress is followed until the node left the ring, then its rack shrinks
//!    by one and its volumes are deleted;
//! 5. a requested replacement is recorded in the status, then the old pod and its volumes are
//!    deleted (the new node starts with `replace_ip`);
//! 6. one node starts at a time: first one per rack in rack order, then the rest, highest ordinal
//!    first, each waited for until its pod runs; the first node starts as a seed when no seed is
//!    up; a node joining for the first time once every rack has one up waits for a healthy
//!    cluster ([`Action::RequireHealthyCluster`]);
//! 7. once every node is up: seed labels follow the wanted seed count, a surplus node is
//!    decommissioned (largest rack first, the last such rack on a tie, highest ordinal), a
//!    changed pod template is rolled out one rack at a time (both after a health check), and an
//!    empty rack removed from the spec loses its StatefulSet.

use std::{collections::BTreeSet, net::IpAddr, time::Duration};

use k8ssandra_mgmt_api::{KeyspaceReplication, NodeStatus};

/// The node-state label of a pod, as upstream names its values.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NodeState {
    /// Not started yet (every new or recreated pod).
    ReadyToStart,
    /// `lifecycle/start` was called.
    Starting,
    /// Started and seen ready.
    Started,
    /// Started before, not ready now.
    StartedNotReady,
    /// Leaving the ring.
    Decommissioning,
}

impl NodeState {
    /// Parses the label value; a missing or unknown value is `ReadyToStart`.
    #[must_use]
    pub fn from_label(value: Option<&str>) -> Self {
        use k8ssandra_api::labels::node_state as label;
        match value {
            Some(label::STARTING) => Self::Starting,
            Some(label::STARTED) => Self::Started,
            Some(label::STARTED_NOT_READY) => Self::StartedNotReady,
            Some(label::DECOMMISSIONING) => Self::Decommissioning,
            _ => Self::ReadyToStart,
        }
    }

    /// The label value.
    #[must_use]
    pub fn label(self) -> &'static str {
        use k8ssandra_api::labels::node_state as label;
        match self {
            Self::ReadyToStart => label::READY_TO_START,
            Self::Starting => label::STARTING,
            Self::Started => label::STARTED,
            Self::StartedNotReady => label::STARTED_NOT_READY,
            Self::Decommissioning => label::DECOMMISSIONING,
        }
    }
}

/// A Management API call this operator has under way or finished for a pod.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CallProgress {
    /// No call known (none made, or the operator restarted since).
    Unknown,
    /// Still running.
    Running {
        /// How long ago it was made.
        for_: Duration,
    },
    /// Answered with success (a finished job, or a 2xx).
    Succeeded {
        /// How long ago it was made.
        for_: Duration,
    },
    /// Failed, with the error a user reads.
    Failed(String),
}

/// One Cassandra pod as the planner sees it.
#[derive(Clone, Debug, PartialEq)]
pub struct NodeView {
    /// Pod name.
    pub pod: String,
    /// Rack label.
    pub rack: String,
    /// StatefulSet ordinal.
    pub ordinal: u32,
    /// node-state label.
    pub state: NodeState,
    /// Labelled as a seed.
    pub seed: bool,
    /// Running, with an IP, not being deleted.
    pub running: bool,
    /// The pod's Ready condition.
    pub ready: bool,
    /// Pod IP.
    pub ip: Option<IpAddr>,
    /// The ring state of the node's IP, when the gossip view was read and lists it.
    pub gossip: Option<NodeStatus>,
    /// The last start call of this pod.
    pub start: CallProgress,
    /// The last decommission call of this pod.
    pub decommission: CallProgress,
    /// The pod's start failed before and its backoff has not expired yet.
    pub start_backing_off: bool,
    /// The pod's start failed before (it starts after the others).
    pub failed_before: bool,
    /// The pod is annotated for replacement (a replacenode task asked for it).
    pub replace_requested: bool,
    /// The pod is listed in `status.nodeReplacements`: its node is being replaced.
    pub replacing: bool,
    /// The scheduler cannot place the pod.
    pub unschedulable: bool,
    /// A Cassandra node ran on the pod before: it is in `status.nodeStatuses` or the ring, or its
    /// label says it was started. A pod that never joined holds no data.
    pub joined: bool,
}

impl NodeView {
    /// Running and ready (whatever its label says yet), and not leaving.
    fn up(&self) -> bool {
        self.running && self.ready && self.state != NodeState::Decommissioning
    }
}

/// A rack's StatefulSet as observed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StatefulSetView {
    /// `spec.replicas`.
    pub replicas: u32,
    /// Its template hash equals the one this operator builds now.
    pub template_current: bool,
    /// The StatefulSet controller finished rolling out the template to every pod.
    pub rolled_out: bool,
    /// Someone else changed its spec after this operator's last write (`kubectl edit`, a patch).
    pub edited: bool,
}

/// A rack: in the spec, or removed from it while its StatefulSet is still there.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RackView {
    /// Rack name.
    pub name: String,
    /// Listed in `spec.racks`.
    pub in_spec: bool,
    /// Nodes the spec wants in the rack (0 for a removed rack).
    pub desired_nodes: u32,
    /// Seeds the spec wants in the rack.
    pub desired_seeds: u32,
    /// The StatefulSet, if it exists.
    pub statefulset: Option<StatefulSetView>,
}

impl RackView {
    fn replicas(&self) -> u32 {
        self.statefulset.as_ref().map_or(0, |s| s.replicas)
    }
}

/// Everything the planner decides from.
#[derive(Clone, Debug, PartialEq)]
pub struct PlanInput {
    /// Racks in spec order, then removed racks.
    pub racks: Vec<RackView>,
    /// The datacenter's pods.
    pub nodes: Vec<NodeView>,
    /// `spec.stopped`.
    pub stopped: bool,
    /// A changed pod template may be rolled out (the spec changed, a rollout is under way, or
    /// the user allowed updates); otherwise only `RequiresUpdate` is reported.
    pub update_allowed: bool,
    /// A node of another datacenter of the cluster is up in gossip (it can serve as a seed).
    pub remote_seed_up: bool,
    /// `spec.additionalSeeds` lists seeds outside the datacenter (another cluster's
    /// datacenters): its first node then joins them, as upstream, instead of starting as a seed.
    pub additional_seeds: bool,
    /// How long a start that answered may leave its node neither ready nor joining.
    pub start_timeout: Duration,
    /// Nodes that ran before start together once a seed is up (upstream's default; off with
    /// `cassandra.datastax.com/allow-parallel-starts: "false"`).
    pub parallel_starts: bool,
    /// The gossip view could be read.
    pub gossip_known: bool,
}

/// One thing a pass does.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Action {
    /// Create the rack's StatefulSet with this many pods.
    CreateStatefulSet {
        /// Rack.
        rack: String,
        /// Pods.
        replicas: u32,
    },
    /// Set the rack's replica count (scale up, or stop).
    ScaleStatefulSet {
        /// Rack.
        rack: String,
        /// New replica count.
        replicas: u32,
    },
    /// Apply the current pod template to the rack's StatefulSet (Kubernetes then replaces its
    /// pods one at a time, and each replaced pod is started by a later pass).
    UpdateStatefulSet {
        /// Rack.
        rack: String,
    },
    /// Delete the StatefulSet of a rack removed from the spec, with no pods left.
    DeleteStatefulSet {
        /// Rack.
        rack: String,
    },
    /// Set or remove the seed label.
    LabelSeed {
        /// Pod.
        pod: String,
        /// Seed or not.
        seed: bool,
    },
    /// Set the node-state label.
    SetState {
        /// Pod.
        pod: String,
        /// New state.
        state: NodeState,
    },
    /// Ask the started nodes whether every token range still reaches LOCAL_QUORUM
    /// (`GET /api/v0/probes/cluster`); when one does not, the rest of the plan waits.
    RequireHealthyCluster,
    /// Call `lifecycle/start` (the pod is labelled `Starting` first).
    Start {
        /// Pod.
        pod: String,
    },
    /// A start failed: record it for backoff and label the pod `Ready-to-Start` again.
    StartFailed {
        /// Pod.
        pod: String,
        /// The error.
        error: String,
    },
    /// Check that the rest can hold the data, then decommission (labelled `Decommissioning`).
    Decommission {
        /// Pod.
        pod: String,
    },
    /// A decommission failed: record it for backoff and label the pod `Started` again.
    DecommissionFailed {
        /// Pod.
        pod: String,
        /// The error.
        error: String,
    },
    /// Replace the pod's node: record it in `status.nodeReplacements` (written with this pass's
    /// status, before anything is deleted).
    BeginReplace {
        /// Pod.
        pod: String,
    },
    /// Delete the volumes and the pod of a node being replaced, so that the StatefulSet
    /// recreates both and the new node takes over the old one's place (its start passes
    /// `replace_ip`).
    DeleteReplaced {
        /// Pod.
        pod: String,
    },
    /// Pods above the rack's share that never ran Cassandra (the StatefulSet was scaled by hand,
    /// or the size lowered before they started): scale the rack back and delete their volumes.
    /// No decommission is needed: they hold no data.
    TrimStatefulSet {
        /// Rack.
        rack: String,
        /// The rack's new replica count.
        replicas: u32,
        /// The pods removed.
        pods: Vec<String>,
    },
    /// The node left the ring: shrink its rack by one and delete the pod's volumes.
    FinishDecommission {
        /// Pod.
        pod: String,
        /// Rack.
        rack: String,
        /// The rack's new replica count.
        replicas: u32,
    },
}

/// What the pass is doing or waiting for, for the status conditions.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Activity {
    /// Nodes are being added or started: the message.
    pub scaling_up: Option<String>,
    /// A node is being decommissioned: the message.
    pub scaling_down: Option<String>,
    /// A pod template is being rolled out: the message.
    pub updating: Option<String>,
    /// A changed pod template waits for permission: the message.
    pub requires_update: Option<String>,
    /// Anything else the pass waits for, a sentence each.
    pub waiting: Vec<String>,
}

/// The actions of one pass and what they are about.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Plan {
    /// In order.
    pub actions: Vec<Action>,
    /// For the status.
    pub activity: Activity,
}

impl Plan {
    /// Nothing to do and nothing to wait for: the datacenter is as the spec asks. A template
    /// update that waits for the user's permission is no work under way.
    #[must_use]
    pub fn is_settled(&self) -> bool {
        let Activity {
            scaling_up,
            scaling_down,
            updating,
            requires_update: _,
            waiting,
        } = &self.activity;
        self.actions.is_empty()
            && scaling_up.is_none()
            && scaling_down.is_none()
            && updating.is_none()
            && waiting.is_empty()
    }
}

impl Action {
    /// Whether the action belongs to taking nodes out of the ring (decommissions and what they
    /// need: a node started so that it can leave, a rack shrunk after it left).
    #[must_use]
    pub fn decommissions(&self) -> bool {
        matches!(
            self,
            Self::RequireHealthyCluster
                | Self::Decommission { .. }
                | Self::DecommissionFailed { .. }
                | Self::FinishDecommission { .. }
                | Self::TrimStatefulSet { .. }
                | Self::SetState { .. }
                | Self::Start { .. }
                | Self::StartFailed { .. }
        )
    }
}

/// Decides the actions of one pass.
#[must_use]
pub fn plan(input: &PlanInput) -> Plan {
    let mut plan = Plan::default();
    if input.stopped {
        stop(input, &mut plan);
        return plan;
    }
    create_and_grow(input, &mut plan);
    note_rollout(input, &mut plan);
    revert_edits(input, &mut plan);
    follow_starts(input, &mut plan);
    if follow_decommission(input, &mut plan)
        || begin_replace(input, &mut plan)
        || start_next(input, &mut plan)
    {
        return plan;
    }
    if !all_up(input, &mut plan) {
        return plan;
    }
    if label_seeds(input, &mut plan) {
        return plan;
    }
    if shrink(input, &mut plan) {
        return plan;
    }
    roll_out(input, &mut plan);
    remove_empty_racks(input, &mut plan);
    plan
}

fn stop(input: &PlanInput, plan: &mut Plan) {
    for rack in &input.racks {
        if rack.replicas() > 0 {
            plan.actions.push(Action::ScaleStatefulSet {
                rack: rack.name.clone(),
                replicas: 0,
            });
        }
    }
    let remaining = input.nodes.len();
    if remaining > 0 {
        plan.activity
            .waiting
            .push(format!("stopping: {remaining} pods still running"));
    }
}

/// The replica count a rack may be trimmed to: its share, or above it the highest pod that
/// joined (it leaves by decommission, not by a trim).
fn trim_target(input: &PlanInput, rack: &RackView) -> u32 {
    input
        .nodes
        .iter()
        .filter(|n| n.rack == rack.name && n.joined)
        .map(|n| n.ordinal + 1)
        .fold(rack.desired_nodes, u32::max)
}

fn create_and_grow(input: &PlanInput, plan: &mut Plan) {
    for rack in input.racks.iter().filter(|r| r.in_spec) {
        match &rack.statefulset {
            // Pods left without a StatefulSet (it was deleted without them) are taken over.
            None => plan.actions.push(Action::CreateStatefulSet {
                rack: rack.name.clone(),
                replicas: trim_target(input, rack),
            }),
            Some(sts)
                if sts.replicas > trim_target(input, rack) && !decommission_under_way(input) =>
            {
                let target = trim_target(input, rack);
                let mut pods: Vec<String> = input
                    .nodes
                    .iter()
                    .filter(|n| n.rack == rack.name && n.ordinal >= target)
                    .map(|n| n.pod.clone())
                    .collect();
                pods.sort();
                plan.actions.push(Action::TrimStatefulSet {
                    rack: rack.name.clone(),
                    replicas: target,
                    pods,
                });
            }
            // A scale up while a decommission runs waits for it (the rack would shrink under it).
            Some(sts) if sts.replicas < rack.desired_nodes && !decommission_under_way(input) => {
                plan.actions.push(Action::ScaleStatefulSet {
                    rack: rack.name.clone(),
                    replicas: rack.desired_nodes,
                });
            }
            Some(_) => {}
        }
    }
    let desired: u32 = input.racks.iter().map(|r| r.desired_nodes).sum();
    let up = input.nodes.iter().filter(|n| n.up()).count();
    let current: u32 = input.racks.iter().map(RackView::replicas).sum();
    let rolling = input.racks.iter().any(|r| {
        r.statefulset
            .as_ref()
            .is_some_and(|s| !s.rolled_out || !s.template_current)
    });
    if !plan.actions.is_empty()
        || (!rolling && current <= desired && (up as u64) < u64::from(desired))
    {
        plan.activity.scaling_up = Some(format!("{up} of {desired} nodes up"));
    }
}

/// Puts back the operator's StatefulSet of a rack whose spec someone else changed: at once, as
/// the edit may already be rolling pods out.
fn revert_edits(input: &PlanInput, plan: &mut Plan) {
    for rack in input.racks.iter().filter(|r| r.in_spec) {
        if rack.statefulset.as_ref().is_some_and(|s| s.edited) {
            plan.actions.push(Action::UpdateStatefulSet {
                rack: rack.name.clone(),
            });
            plan.activity.updating = Some(format!(
                "the StatefulSet of rack {} was changed by hand; putting back what the spec says",
                rack.name
            ));
        }
    }
}

/// Reports a rollout under way: a rack whose pods Kubernetes is replacing, or (when updates are
/// allowed) a rack still waiting for the new template. Said on every pass of the rollout, also
/// those busy with something else (a seed label, a start), so that `Updating` stays True from the
/// first rack to the last and the rollout is not mistaken for an unasked update.
fn note_rollout(input: &PlanInput, plan: &mut Plan) {
    let statefulset = |r: &&RackView| r.statefulset.clone();
    if let Some(rack) = input
        .racks
        .iter()
        .find(|r| statefulset(r).is_some_and(|s| !s.rolled_out))
    {
        plan.activity.updating = Some(format!(
            "replacing the pods of rack {} one at a time",
            rack.name
        ));
    } else if input.update_allowed
        && let Some(rack) = input
            .racks
            .iter()
            .filter(|r| r.in_spec)
            .find(|r| statefulset(r).is_some_and(|s| !s.template_current))
    {
        plan.activity.updating = Some(format!(
            "rolling out a new pod template: rack {} is next",
            rack.name
        ));
    }
}

fn decommission_under_way(input: &PlanInput) -> bool {
    input
        .nodes
        .iter()
        .any(|n| n.state == NodeState::Decommissioning)
}

/// Marks ready `Starting` pods `Started`, and rolls back failed starts.
fn follow_starts(input: &PlanInput, plan: &mut Plan) {
    for node in input.nodes.iter().filter(|n| n.running) {
        match (node.state, node.ready, &node.start) {
            (
                NodeState::Starting | NodeState::ReadyToStart | NodeState::StartedNotReady,
                true,
                _,
            ) => {
                plan.actions.push(Action::SetState {
                    pod: node.pod.clone(),
                    state: NodeState::Started,
                });
            }
            (NodeState::Starting, false, CallProgress::Failed(error)) => {
                plan.actions.push(Action::StartFailed {
                    pod: node.pod.clone(),
                    error: error.clone(),
                });
            }
            // The process was launched but never came up (a bootstrap may take long: a joining
            // node is waited for).
            (NodeState::Starting, false, CallProgress::Succeeded { for_ })
                if *for_ > input.start_timeout && node.gossip != Some(NodeStatus::Joining) =>
            {
                plan.actions.push(Action::StartFailed {
                    pod: node.pod.clone(),
                    error: format!(
                        "Cassandra was started but neither became ready nor joined the ring \
                         within {}s",
                        input.start_timeout.as_secs()
                    ),
                });
            }
            (NodeState::Started, false, _) => {
                plan.actions.push(Action::SetState {
                    pod: node.pod.clone(),
                    state: NodeState::StartedNotReady,
                });
            }
            _ => {}
        }
    }
}

/// Follows the decommission under way, if any; true when there is one (nothing else happens then).
fn follow_decommission(input: &PlanInput, plan: &mut Plan) -> bool {
    let Some(node) = input
        .nodes
        .iter()
        .find(|n| n.state == NodeState::Decommissioning)
    else {
        return false;
    };
    let left = input.gossip_known
        && matches!(node.gossip, None | Some(NodeStatus::Left))
        && !matches!(node.decommission, CallProgress::Running { .. });
    if left || !node.running {
        let rack = input.racks.iter().find(|r| r.name == node.rack);
        let replicas = rack.map_or(0, RackView::replicas);
        if replicas == node.ordinal + 1 {
            plan.actions.push(Action::FinishDecommission {
                pod: node.pod.clone(),
                rack: node.rack.clone(),
                replicas: node.ordinal,
            });
        }
        plan.activity.scaling_down = Some(format!("{} left the ring; removing it", node.pod));
        return true;
    }
    let message = match (&node.decommission, &node.gossip) {
        (CallProgress::Failed(error), _) => {
            plan.actions.push(Action::DecommissionFailed {
                pod: node.pod.clone(),
                error: error.clone(),
            });
            format!("decommission of {} failed: {error}", node.pod)
        }
        (_, Some(NodeStatus::Leaving)) => match &node.decommission {
            CallProgress::Running { for_ } | CallProgress::Succeeded { for_ } => format!(
                "decommissioning {}: the node is LEAVING the ring (requested {})",
                node.pod,
                ago(*for_)
            ),
            _ => format!("decommissioning {}: the node is LEAVING the ring", node.pod),
        },
        (CallProgress::Running { for_ }, _) => format!(
            "decommissioning {}: the decommission request has not been answered (made {}); \
             the node is still {}",
            node.pod,
            ago(*for_),
            ring_state(node.gossip.as_ref())
        ),
        (CallProgress::Succeeded { for_ }, _) => format!(
            "decommissioning {}: requested {}; the node is {}",
            node.pod,
            ago(*for_),
            ring_state(node.gossip.as_ref())
        ),
        (CallProgress::Unknown, Some(NodeStatus::Normal)) => {
            // The request was lost (operator restart): make it again.
            plan.actions.push(Action::Decommission {
                pod: node.pod.clone(),
            });
            format!("decommissioning {}: requesting it again", node.pod)
        }
        (CallProgress::Unknown, _) => format!(
            "decommissioning {}: waiting for the ring to show the node ({})",
            node.pod,
            ring_state(node.gossip.as_ref())
        ),
    };
    plan.activity.scaling_down = Some(message);
    true
}

/// A duration as a status message says it: in whole minutes, so that the message (and the
/// status) does not change every second.
fn ago(duration: Duration) -> String {
    match duration.as_secs() / 60 {
        0 => "less than a minute ago".to_owned(),
        1 => "1 minute ago".to_owned(),
        minutes => format!("{minutes} minutes ago"),
    }
}

fn ring_state(status: Option<&NodeStatus>) -> String {
    match status {
        None => "not in the ring view".to_owned(),
        Some(NodeStatus::Normal) => "NORMAL".to_owned(),
        Some(NodeStatus::Joining) => "JOINING".to_owned(),
        Some(NodeStatus::Leaving) => "LEAVING".to_owned(),
        Some(NodeStatus::Left) => "LEFT".to_owned(),
        Some(other) => format!("{other:?}"),
    }
}

/// Moves one requested replacement on: first recorded in the status, then (next pass) the old
/// pod and its volumes deleted. Not during a decommission (checked before).
fn begin_replace(input: &PlanInput, plan: &mut Plan) -> bool {
    let Some(node) = input.nodes.iter().find(|n| n.replace_requested) else {
        return false;
    };
    let pod = node.pod.clone();
    plan.actions.push(if node.replacing {
        Action::DeleteReplaced { pod }
    } else {
        Action::BeginReplace { pod }
    });
    true
}

/// Starts the next node, or waits for the one starting; true when a start is under way or
/// blocked (nothing else disruptive happens then).
fn start_next(input: &PlanInput, plan: &mut Plan) -> bool {
    if let Some(starting) = input
        .nodes
        .iter()
        .find(|n| n.running && n.state == NodeState::Starting && !n.ready)
    {
        match &starting.start {
            CallProgress::Failed(_) => {}
            CallProgress::Unknown if !matches!(starting.gossip, Some(NodeStatus::Joining)) => {
                // The operator restarted during the start and the node is not joining: again.
                plan.actions.push(Action::Start {
                    pod: starting.pod.clone(),
                });
            }
            _ => plan
                .activity
                .waiting
                .push(format!("waiting for {} to finish starting", starting.pod)),
        }
        return true;
    }
    if start_in_parallel(input, plan) {
        return true;
    }
    let slots = slots_to_start(input);
    if slots.is_empty() {
        return false;
    }
    let Some(next) = next_to_start(input, &slots) else {
        for slot in &slots {
            plan.activity.waiting.push(format!(
                "{} waits to retry its start after a failure",
                slot.name()
            ));
        }
        return true;
    };
    // Nodes start in order: a pod that comes first but does not run yet is waited for (the
    // StatefulSet creates it, the scheduler places it), so the order does not depend on which
    // pod the scheduler happened to place first.
    let Some(node) = next.node.filter(|n| n.running) else {
        plan.activity.waiting.push(format!(
            "waiting for {} to run: it starts next",
            next.name()
        ));
        return true;
    };
    let seed_up = seed_reachable(input);
    if !seed_up && !node.seed {
        plan.actions.push(Action::LabelSeed {
            pod: node.pod.clone(),
            seed: true,
        });
    } else {
        // A node that joins for the first time, once every rack has one up, streams its data
        // from the others: only while the cluster is healthy (upstream's rule). A node that ran
        // before only makes the cluster healthier.
        if !node.joined && every_rack_has_a_node_up(input) {
            plan.actions.push(Action::RequireHealthyCluster);
        }
        plan.actions.push(Action::Start {
            pod: node.pod.clone(),
        });
    }
    true
}

/// Starts at once every node that ran before and waits to start, once a seed is up: they join
/// no ring anew, so starting them one by one (a resume, pods recreated after a node failure)
/// only makes the datacenter come back slower. True when it started any.
fn start_in_parallel(input: &PlanInput, plan: &mut Plan) -> bool {
    let seed_up = seed_reachable(input);
    if !input.parallel_starts || !seed_up {
        return false;
    }
    let mut any = false;
    for node in input.nodes.iter().filter(|n| {
        n.joined
            && n.running
            && n.state == NodeState::ReadyToStart
            && !n.start_backing_off
            && !n.replacing
            && !n.replace_requested
    }) {
        plan.actions.push(Action::Start {
            pod: node.pod.clone(),
        });
        any = true;
    }
    any
}

/// Whether a starting node can reach a seed: one of this datacenter is up, a node of another
/// datacenter is up in the ring, or the spec names additional seeds.
fn seed_reachable(input: &PlanInput) -> bool {
    input.remote_seed_up || input.additional_seeds || input.nodes.iter().any(|n| n.seed && n.up())
}

fn every_rack_has_a_node_up(input: &PlanInput) -> bool {
    input
        .racks
        .iter()
        .filter(|r| r.in_spec && r.desired_nodes > 0)
        .all(|r| input.nodes.iter().any(|n| n.rack == r.name && n.up()))
}

/// A place where a node is to start: a pod a rack's StatefulSet has or is about to have.
struct Slot<'a> {
    rack: &'a str,
    rack_index: usize,
    ordinal: u32,
    /// The pod, once it exists.
    node: Option<&'a NodeView>,
}

impl Slot<'_> {
    fn name(&self) -> String {
        match self.node {
            Some(node) => node.pod.clone(),
            None => format!("pod {} of rack {}", self.ordinal, self.rack),
        }
    }

    fn failed_before(&self) -> bool {
        self.node.is_some_and(|n| n.failed_before)
    }

    fn backing_off(&self) -> bool {
        self.node.is_some_and(|n| n.start_backing_off)
    }
}

/// Every pod of the StatefulSets that still has to start: not started yet (or not ready since),
/// missing or not running yet; pods the scheduler cannot place are left out, so that they do not
/// hold the others back.
fn slots_to_start(input: &PlanInput) -> Vec<Slot<'_>> {
    let mut slots = Vec::new();
    for (rack_index, rack) in input.racks.iter().enumerate() {
        // Pods above the rack's share that never joined are trimmed, never started.
        let limit = if rack.in_spec {
            rack.replicas().min(trim_target(input, rack))
        } else {
            rack.replicas()
        };
        for ordinal in 0..limit {
            let node = input
                .nodes
                .iter()
                .find(|n| n.rack == rack.name && n.ordinal == ordinal);
            let waiting = match node {
                None => true,
                Some(n) => {
                    !n.unschedulable
                        && !n.ready
                        && matches!(
                            n.state,
                            NodeState::ReadyToStart | NodeState::StartedNotReady
                        )
                }
            };
            if waiting {
                slots.push(Slot {
                    rack: &rack.name,
                    rack_index,
                    ordinal,
                    node,
                });
            }
        }
    }
    slots
}

/// The first pod of a rack that has no node up, in rack order; else the highest ordinal (racks in
/// order on a tie), nodes that failed before last. `None` when every one backs off.
fn next_to_start<'s, 'a>(input: &PlanInput, slots: &'s [Slot<'a>]) -> Option<&'s Slot<'a>> {
    let eligible: Vec<&Slot<'a>> = slots.iter().filter(|s| !s.backing_off()).collect();
    for rack in &input.racks {
        let rack_has_up = input.nodes.iter().any(|n| n.rack == rack.name && n.up());
        if rack_has_up {
            continue;
        }
        if let Some(first) = eligible
            .iter()
            .filter(|s| s.rack == rack.name)
            .min_by_key(|s| (s.failed_before(), s.ordinal))
        {
            return Some(first);
        }
    }
    eligible.into_iter().min_by_key(|s| {
        (
            s.failed_before(),
            std::cmp::Reverse(s.ordinal),
            s.rack_index,
        )
    })
}

/// Whether every wanted pod exists and is up; says what is missing otherwise.
fn all_up(input: &PlanInput, plan: &mut Plan) -> bool {
    let expected: u32 = input.racks.iter().map(RackView::replicas).sum();
    let up = input.nodes.iter().filter(|n| n.up()).count();
    let mut missing: Vec<&str> = input
        .nodes
        .iter()
        .filter(|n| !n.up())
        .map(|n| n.pod.as_str())
        .collect();
    missing.sort_unstable();
    if (up as u64) == u64::from(expected) && missing.is_empty() {
        return true;
    }
    let message = if missing.is_empty() {
        format!("waiting for pods: {up} of {expected} exist and are up")
    } else {
        format!("waiting for {} to be up", missing.join(", "))
    };
    plan.activity.waiting.push(message);
    false
}

/// Adds the seed label where a rack lacks seeds, removes it where it has too many (one change
/// per pass, so that the seed set never shrinks below what was wanted).
fn label_seeds(input: &PlanInput, plan: &mut Plan) -> bool {
    for rack in input.racks.iter().filter(|r| r.in_spec) {
        let mut nodes: Vec<&NodeView> =
            input.nodes.iter().filter(|n| n.rack == rack.name).collect();
        nodes.sort_by_key(|n| n.ordinal);
        let seeds = nodes.iter().filter(|n| n.seed).count();
        let wanted = rack.desired_seeds as usize;
        if seeds < wanted
            && let Some(node) = nodes.iter().find(|n| !n.seed)
        {
            plan.actions.push(Action::LabelSeed {
                pod: node.pod.clone(),
                seed: true,
            });
            return true;
        }
        if seeds > wanted
            && let Some(node) = nodes.iter().rev().find(|n| n.seed)
        {
            plan.actions.push(Action::LabelSeed {
                pod: node.pod.clone(),
                seed: false,
            });
            return true;
        }
    }
    false
}

/// Decommissions one surplus node: in the rack with the most nodes among those above their share
/// (the last such rack in spec order on a tie, as upstream, so that the layouts on the way down are
/// upstream's), the highest ordinal.
fn shrink(input: &PlanInput, plan: &mut Plan) -> bool {
    let Some(rack) = input
        .racks
        .iter()
        .filter(|r| r.replicas() > r.desired_nodes)
        // `max_by_key` keeps the last of equals.
        .max_by_key(|r| r.replicas())
    else {
        return false;
    };
    let ordinal = rack.replicas() - 1;
    let Some(node) = input
        .nodes
        .iter()
        .find(|n| n.rack == rack.name && n.ordinal == ordinal)
    else {
        return false;
    };
    plan.actions.push(Action::RequireHealthyCluster);
    plan.actions.push(Action::Decommission {
        pod: node.pod.clone(),
    });
    plan.activity.scaling_down = Some(format!("decommissioning {}", node.pod));
    true
}

/// Rolls a changed template out to the first rack (spec order) that lacks it, once the racks
/// before it are done.
fn roll_out(input: &PlanInput, plan: &mut Plan) {
    for rack in input.racks.iter().filter(|r| r.in_spec) {
        let Some(sts) = &rack.statefulset else {
            continue;
        };
        if !sts.rolled_out {
            return;
        }
        if sts.template_current {
            continue;
        }
        if input.update_allowed {
            plan.actions.push(Action::RequireHealthyCluster);
            plan.actions.push(Action::UpdateStatefulSet {
                rack: rack.name.clone(),
            });
        } else {
            plan.activity.requires_update = Some(format!(
                "the pods of rack {} differ from what this operator version builds; they are \
                 updated with the next spec change, or now with the annotation {}=once",
                rack.name,
                k8ssandra_api::labels::annotations::AUTOUPDATE_SPEC
            ));
        }
        return;
    }
}

fn remove_empty_racks(input: &PlanInput, plan: &mut Plan) {
    for rack in input.racks.iter().filter(|r| !r.in_spec) {
        let has_pods = input.nodes.iter().any(|n| n.rack == rack.name);
        if rack.statefulset.is_some() && rack.replicas() == 0 && !has_pods {
            plan.actions.push(Action::DeleteStatefulSet {
                rack: rack.name.clone(),
            });
        }
    }
}

/// Why the rest of the datacenter could not take over a node's data.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ScaleDownRefusal {
    /// A keyspace wants more replicas in this datacenter than nodes would remain.
    ReplicationFactorTooHigh {
        /// Keyspace.
        keyspace: String,
        /// Its factor in this datacenter.
        factor: u32,
        /// Nodes that would remain.
        remaining: u32,
    },
    /// The free space of the remaining nodes is smaller than the leaving node's data.
    NotEnoughSpace {
        /// Bytes the leaving node holds.
        load: u64,
        /// Free bytes on the others.
        free: u64,
    },
    /// The whole datacenter leaves, and a keyspace has no replica in any other live datacenter.
    DataWouldBeLost {
        /// Keyspace.
        keyspace: String,
    },
}

impl ScaleDownRefusal {
    /// The CamelCase reason of the status condition.
    #[must_use]
    pub fn reason(&self) -> &'static str {
        match self {
            Self::ReplicationFactorTooHigh { .. } => "ReplicationFactorTooHigh",
            Self::NotEnoughSpace { .. } => "NotEnoughSpaceToScaleDown",
            Self::DataWouldBeLost { .. } => "DataWouldBeLost",
        }
    }
}

/// Checks that every keyspace keeps its replicas and that the datacenter's remaining nodes have
/// room for the leaving node's data. `factors` are each keyspace's factor with the nodes that
/// would remain to hold it (this datacenter's for NetworkTopologyStrategy, the whole ring's for
/// SimpleStrategy); `loads` the data of the datacenter's other nodes, `capacity` one node's
/// volume size, in bytes. The last node of a datacenter has no space check: what it holds goes to
/// other datacenters or nowhere.
#[must_use]
pub fn scale_down_check(
    factors: &[(String, u32, u32)],
    leaving_load: u64,
    loads: &[u64],
    capacity: u64,
) -> Option<ScaleDownRefusal> {
    if let Some((keyspace, factor, remaining)) = factors.iter().find(|(_, f, r)| f > r) {
        return Some(ScaleDownRefusal::ReplicationFactorTooHigh {
            keyspace: keyspace.clone(),
            factor: *factor,
            remaining: *remaining,
        });
    }
    if loads.is_empty() {
        return None;
    }
    let free: u64 = loads
        .iter()
        .map(|load| capacity.saturating_sub(*load))
        .sum();
    (leaving_load > free).then_some(ScaleDownRefusal::NotEnoughSpace {
        load: leaving_load,
        free,
    })
}

/// Checks, when the whole datacenter `own` leaves, that every keyspace with replicas in it has
/// replicas in another datacenter with live nodes (`live_elsewhere`). Its own factors do not
/// matter then: its nodes are decommissioned with force, as every one of them goes.
#[must_use]
pub fn datacenter_leave_check(
    own: &str,
    keyspaces: &[(String, KeyspaceReplication)],
    live_elsewhere: &BTreeSet<String>,
) -> Option<ScaleDownRefusal> {
    keyspaces
        .iter()
        .find(|(_, replication)| {
            let factors = replication.datacenter_factors();
            factors.get(own).is_some_and(|f| *f > 0)
                && !factors
                    .iter()
                    .any(|(dc, f)| *f > 0 && dc != own && live_elsewhere.contains(dc))
        })
        .map(|(keyspace, _)| ScaleDownRefusal::DataWouldBeLost {
            keyspace: keyspace.clone(),
        })
}

impl std::fmt::Display for ScaleDownRefusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::ReplicationFactorTooHigh {
                keyspace,
                factor,
                remaining,
            } => write!(
                f,
                "keyspace {keyspace} has replication factor {factor} in this datacenter, but \
                 only {remaining} nodes would remain"
            ),
            Self::NotEnoughSpace { load, free } => write!(
                f,
                "the leaving node holds {load} bytes, but the remaining nodes have only {free} \
                 bytes free"
            ),
            Self::DataWouldBeLost { keyspace } => write!(
                f,
                "keyspace {keyspace} has replicas in no other live datacenter: its data would be \
                 lost with this datacenter; ALTER it to replicate elsewhere first"
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_leaving_datacenter_needs_every_keyspace_replicated_elsewhere() {
        let nts = |pairs: &[(&str, &str)]| KeyspaceReplication {
            options: std::iter::once((
                "class".to_owned(),
                "org.apache.cassandra.locator.NetworkTopologyStrategy".to_owned(),
            ))
            .chain(
                pairs
                    .iter()
                    .map(|(k, v)| ((*k).to_owned(), (*v).to_owned())),
            )
            .collect(),
        };
        let live = BTreeSet::from(["dc1".to_owned()]);
        let fine = vec![
            ("system_auth".to_owned(), nts(&[("dc1", "3"), ("dc3", "3")])),
            ("elsewhere".to_owned(), nts(&[("dc1", "1")])),
        ];
        assert_eq!(datacenter_leave_check("dc3", &fine, &live), None);
        let mut lost = fine.clone();
        lost.push(("only_here".to_owned(), nts(&[("dc3", "3"), ("dc2", "3")])));
        // dc2 has no live node: its replicas do not count.
        assert_eq!(
            datacenter_leave_check("dc3", &lost, &live),
            Some(ScaleDownRefusal::DataWouldBeLost {
                keyspace: "only_here".into()
            })
        );
    }

    const RACKS: [&str; 3] = ["r1", "r2", "r3"];

    fn rack(name: &str, desired: u32, replicas: Option<u32>) -> RackView {
        RackView {
            name: name.to_owned(),
            in_spec: true,
            desired_nodes: desired,
            desired_seeds: 1,
            statefulset: replicas.map(|replicas| StatefulSetView {
                replicas,
                template_current: true,
                rolled_out: true,
                edited: false,
            }),
        }
    }

    fn node(rack: &str, ordinal: u32, state: NodeState, ready: bool) -> NodeView {
        NodeView {
            pod: format!("{rack}-{ordinal}"),
            rack: rack.to_owned(),
            ordinal,
            state,
            seed: false,
            running: true,
            ready,
            ip: None,
            gossip: ready.then_some(NodeStatus::Normal),
            start: CallProgress::Unknown,
            decommission: CallProgress::Unknown,
            start_backing_off: false,
            failed_before: false,
            replace_requested: false,
            replacing: false,
            unschedulable: false,
            joined: state != NodeState::ReadyToStart || ready,
        }
    }

    fn up(rack: &str, ordinal: u32) -> NodeView {
        NodeView {
            seed: ordinal == 0,
            ..node(rack, ordinal, NodeState::Started, true)
        }
    }

    fn fresh(rack: &str, ordinal: u32) -> NodeView {
        node(rack, ordinal, NodeState::ReadyToStart, false)
    }

    /// Three racks with `per_rack` pods each wanted and `replicas` each running.
    fn input(desired: u32, replicas: u32, nodes: Vec<NodeView>) -> PlanInput {
        PlanInput {
            racks: RACKS
                .iter()
                .map(|r| rack(r, desired, Some(replicas)))
                .collect(),
            nodes,
            stopped: false,
            update_allowed: false,
            start_timeout: Duration::from_secs(600),
            parallel_starts: true,
            remote_seed_up: false,
            additional_seeds: false,
            gossip_known: true,
        }
    }

    fn all_up(per_rack: u32) -> Vec<NodeView> {
        RACKS
            .iter()
            .flat_map(|r| (0..per_rack).map(move |o| up(r, o)))
            .collect()
    }

    fn start(pod: &str) -> Action {
        Action::Start { pod: pod.into() }
    }

    #[test]
    fn a_new_datacenter_gets_a_statefulset_per_rack() {
        let mut new = input(1, 0, vec![]);
        for rack in &mut new.racks {
            rack.statefulset = None;
        }
        let plan = plan(&new);
        assert_eq!(
            plan.actions,
            RACKS
                .iter()
                .map(|r| Action::CreateStatefulSet {
                    rack: (*r).into(),
                    replicas: 1
                })
                .collect::<Vec<_>>()
        );
        assert!(plan.activity.scaling_up.is_some());
    }

    #[test]
    fn a_statefulset_scaled_by_hand_is_trimmed_and_its_extra_pods_never_start() {
        // r1 was scaled from 1 to 3 by hand: its new pods never ran Cassandra.
        let mut nodes = all_up(1);
        nodes.extend([fresh("r1", 1), fresh("r1", 2)]);
        let mut scaled = input(1, 1, nodes);
        scaled.racks[0].statefulset = Some(StatefulSetView {
            replicas: 3,
            template_current: true,
            rolled_out: true,
            edited: false,
        });
        let plan = plan(&scaled);
        assert_eq!(
            plan.actions,
            [Action::TrimStatefulSet {
                rack: "r1".into(),
                replicas: 1,
                pods: vec!["r1-1".into(), "r1-2".into()],
            }]
        );
        assert!(
            !plan
                .actions
                .iter()
                .any(|a| matches!(a, Action::Start { .. }))
        );
    }

    #[test]
    fn a_trim_stops_at_the_highest_pod_that_joined() {
        // r1 went 2 -> 4 -> 2: r1-2 joined, so it leaves by decommission; r1-3 never started
        // and is trimmed.
        let mut nodes = all_up(2);
        nodes.push(node("r1", 2, NodeState::Started, true));
        nodes.push(fresh("r1", 3));
        let mut shrinking = input(2, 2, nodes);
        shrinking.racks[0].statefulset = Some(StatefulSetView {
            replicas: 4,
            template_current: true,
            rolled_out: true,
            edited: false,
        });
        assert_eq!(
            plan(&shrinking).actions,
            [Action::TrimStatefulSet {
                rack: "r1".into(),
                replicas: 3,
                pods: vec!["r1-3".into()],
            }]
        );
        // Once trimmed, the joined surplus node is decommissioned as usual.
        shrinking.nodes.pop();
        shrinking.racks[0].statefulset = Some(StatefulSetView {
            replicas: 3,
            template_current: true,
            rolled_out: true,
            edited: false,
        });
        assert_eq!(
            plan(&shrinking).actions,
            [
                Action::RequireHealthyCluster,
                Action::Decommission { pod: "r1-2".into() }
            ]
        );
    }

    #[test]
    fn a_statefulset_edited_by_hand_is_put_back_at_once() {
        let mut edited = input(1, 1, all_up(1));
        edited.racks[1].statefulset = Some(StatefulSetView {
            replicas: 1,
            template_current: true,
            rolled_out: false,
            edited: true,
        });
        let plan = plan(&edited);
        assert_eq!(
            plan.actions,
            [Action::UpdateStatefulSet { rack: "r2".into() }]
        );
        assert!(
            plan.activity
                .updating
                .as_deref()
                .is_some_and(|m| m.contains("changed by hand")),
            "{:?}",
            plan.activity
        );
    }

    #[test]
    fn pods_without_a_statefulset_are_taken_over_at_their_count() {
        let mut orphaned = input(
            1,
            1,
            vec![up("r1", 0), up("r1", 1), up("r2", 0), up("r3", 0)],
        );
        orphaned.racks[0].statefulset = None;
        assert_eq!(
            plan(&orphaned).actions,
            [Action::CreateStatefulSet {
                rack: "r1".into(),
                replicas: 2
            }]
        );
    }

    #[test]
    fn the_first_node_becomes_a_seed_before_it_starts_then_one_per_rack_in_rack_order() {
        let nodes = vec![fresh("r1", 0), fresh("r2", 0), fresh("r3", 0)];
        assert_eq!(
            plan(&input(1, 1, nodes.clone())).actions,
            [Action::LabelSeed {
                pod: "r1-0".into(),
                seed: true
            }]
        );
        let mut seeded = nodes.clone();
        seeded[0].seed = true;
        assert_eq!(plan(&input(1, 1, seeded)).actions, [start("r1-0")]);
        let first_up = vec![up("r1", 0), fresh("r2", 0), fresh("r3", 0)];
        assert_eq!(plan(&input(1, 1, first_up)).actions, [start("r2-0")]);
        // Joining another cluster's datacenters through additional seeds: no seed of its own
        // first, as upstream.
        let mut joining = input(1, 1, nodes);
        joining.additional_seeds = true;
        assert_eq!(plan(&joining).actions, [start("r1-0")]);
    }

    #[test]
    fn nodes_that_ran_before_start_together_once_a_seed_is_up_unless_told_otherwise() {
        let ran_before = |rack: &str, ordinal: u32| NodeView {
            joined: true,
            ..fresh(rack, ordinal)
        };
        // A resume: r1-0 is up as the seed; the others ran before.
        let nodes = vec![
            up("r1", 0),
            ran_before("r2", 0),
            ran_before("r3", 0),
            fresh("r1", 1),
        ];
        let mut resuming = input(1, 1, nodes);
        resuming.racks[0] = rack("r1", 2, Some(2));
        assert_eq!(
            plan(&resuming).actions,
            [start("r2-0"), start("r3-0")],
            "together, and the new node not with them"
        );
        resuming.parallel_starts = false;
        assert_eq!(plan(&resuming).actions, [start("r2-0")]);
        // No seed up yet: one at a time, the first as a seed.
        resuming.parallel_starts = true;
        resuming.nodes[0] = ran_before("r1", 0);
        assert_eq!(
            plan(&resuming).actions,
            [Action::LabelSeed {
                pod: "r1-0".into(),
                seed: true
            }]
        );
    }

    #[test]
    fn only_one_node_starts_at_a_time() {
        let mut starting = node("r1", 0, NodeState::Starting, false);
        starting.seed = true;
        starting.start = CallProgress::Running {
            for_: Duration::from_secs(1),
        };
        let plan = plan(&input(1, 1, vec![starting, fresh("r2", 0), fresh("r3", 0)]));
        assert!(plan.actions.is_empty(), "{:?}", plan.actions);
        assert!(plan.activity.waiting[0].contains("r1-0"));
    }

    /// Racks r1, r2, r3 with these replica counts (the wanted counts too).
    fn with_replicas(replicas: [u32; 3], nodes: Vec<NodeView>) -> PlanInput {
        let mut input = input(0, 0, nodes);
        for (slot, count) in input.racks.iter_mut().zip(replicas) {
            let name = slot.name.clone();
            *slot = rack(&name, count, Some(count));
        }
        input
    }

    #[test]
    fn after_one_per_rack_the_highest_ordinal_starts_and_failed_nodes_go_last() {
        let mut nodes = all_up(1);
        nodes.extend([fresh("r1", 1), fresh("r1", 2), fresh("r2", 1)]);
        let replicas = [3, 2, 1];
        // New nodes join only while the cluster is healthy.
        let gated = |pod: &str| [Action::RequireHealthyCluster, start(pod)];
        assert_eq!(
            plan(&with_replicas(replicas, nodes.clone())).actions,
            gated("r1-2")
        );
        nodes[4].failed_before = true;
        assert_eq!(
            plan(&with_replicas(replicas, nodes.clone())).actions,
            gated("r1-1")
        );
        nodes[3].start_backing_off = true;
        nodes[3].failed_before = true;
        assert_eq!(
            plan(&with_replicas(replicas, nodes.clone())).actions,
            gated("r2-1")
        );
        // A node that ran before (a restart, a resume) starts without asking: it only makes the
        // cluster healthier.
        nodes[5].joined = true;
        assert_eq!(
            plan(&with_replicas(replicas, nodes)).actions,
            [start("r2-1")]
        );
    }

    #[test]
    fn the_next_node_in_order_is_waited_for_until_its_pod_runs_unless_it_cannot_be_scheduled() {
        // r1-0 does not run yet: r2-0, which runs, does not jump the queue.
        let mut pending = fresh("r1", 0);
        pending.running = false;
        let nodes = vec![pending.clone(), fresh("r2", 0), fresh("r3", 0)];
        let waiting = plan(&input(1, 1, nodes));
        assert!(waiting.actions.is_empty(), "{:?}", waiting.actions);
        assert!(waiting.activity.waiting[0].contains("r1-0"));
        // Nor does a pod that does not exist yet let a later one go first.
        let missing = plan(&input(1, 1, vec![fresh("r2", 0), fresh("r3", 0)]));
        assert!(missing.actions.is_empty(), "{:?}", missing.actions);
        assert!(missing.activity.waiting[0].contains("pod 0 of rack r1"));
        // A pod the scheduler cannot place does not hold the others back.
        pending.unschedulable = true;
        let mut seeded = fresh("r2", 0);
        seeded.seed = true;
        assert_eq!(
            plan(&input(1, 1, vec![pending, seeded, fresh("r3", 0)])).actions,
            [start("r2-0")]
        );
    }

    #[test]
    fn a_node_backing_off_is_waited_for() {
        let mut nodes = all_up(1);
        let mut failed = fresh("r1", 1);
        failed.start_backing_off = true;
        failed.failed_before = true;
        nodes.push(failed);
        let plan = plan(&with_replicas([2, 1, 1], nodes));
        assert!(plan.actions.is_empty());
        assert!(plan.activity.waiting[0].contains("r1-1"));
    }

    #[test]
    fn a_start_that_answered_but_never_came_up_fails_after_the_timeout_unless_joining() {
        let mut nodes = all_up(1);
        let mut starting = node("r1", 1, NodeState::Starting, false);
        starting.gossip = None;
        starting.start = CallProgress::Succeeded {
            for_: Duration::from_secs(601),
        };
        nodes.push(starting);
        let mut input = with_replicas([2, 1, 1], nodes);
        let failed = plan(&input);
        assert!(
            matches!(
                failed.actions.first(),
                Some(Action::StartFailed { pod, error }) if pod == "r1-1" && error.contains("600s")
            ),
            "{:?}",
            failed.actions
        );
        // Bootstrapping: streaming may take hours.
        input.nodes[3].gossip = Some(NodeStatus::Joining);
        assert!(
            !plan(&input)
                .actions
                .iter()
                .any(|a| matches!(a, Action::StartFailed { .. }))
        );
        // Within the timeout: waited for.
        input.nodes[3].gossip = None;
        input.nodes[3].start = CallProgress::Succeeded {
            for_: Duration::from_secs(30),
        };
        assert!(
            !plan(&input)
                .actions
                .iter()
                .any(|a| matches!(a, Action::StartFailed { .. }))
        );
    }

    #[test]
    fn ready_starting_nodes_are_marked_started_and_failed_starts_rolled_back() {
        let mut nodes = all_up(1);
        nodes[1].state = NodeState::Starting;
        let mut failed = node("r3", 1, NodeState::Starting, false);
        failed.start = CallProgress::Failed("500: boom".into());
        nodes.push(failed);
        let actions = plan(&input(1, 1, nodes)).actions;
        assert!(actions.contains(&Action::SetState {
            pod: "r2-0".into(),
            state: NodeState::Started
        }));
        assert!(actions.contains(&Action::StartFailed {
            pod: "r3-1".into(),
            error: "500: boom".into()
        }));
    }

    #[test]
    fn a_restart_of_the_operator_during_a_start_calls_start_again_unless_the_node_joins() {
        let mut nodes = all_up(1);
        nodes.push(node("r1", 1, NodeState::Starting, false));
        assert_eq!(plan(&input(2, 2, nodes.clone())).actions, [start("r1-1")]);
        nodes[3].gossip = Some(NodeStatus::Joining);
        assert!(plan(&input(2, 2, nodes)).actions.is_empty());
    }

    #[test]
    fn a_settled_datacenter_plans_nothing() {
        let plan = plan(&input(2, 2, all_up(2)));
        assert!(plan.is_settled(), "{plan:?}");
    }

    #[test]
    fn scale_down_takes_the_highest_ordinal_of_the_largest_rack_the_last_on_a_tie() {
        let plan_for = |replicas: [u32; 3]| {
            let mut input = input(1, 0, vec![]);
            for (rack, count) in input.racks.iter_mut().zip(replicas) {
                rack.statefulset = Some(StatefulSetView {
                    replicas: count,
                    template_current: true,
                    rolled_out: true,
                    edited: false,
                });
                input.nodes.extend((0..count).map(|o| up(&rack.name, o)));
            }
            plan(&input).actions
        };
        let decommission = |pod: &str| {
            vec![
                Action::RequireHealthyCluster,
                Action::Decommission { pod: pod.into() },
            ]
        };
        assert_eq!(plan_for([2, 2, 2]), decommission("r3-1"));
        assert_eq!(plan_for([2, 2, 1]), decommission("r2-1"));
        assert_eq!(plan_for([2, 1, 1]), decommission("r1-1"));
        assert_eq!(plan_for([3, 1, 1]), decommission("r1-2"));
    }

    #[test]
    fn a_decommission_is_followed_until_the_node_left_then_its_rack_shrinks() {
        let mut nodes = all_up(2);
        nodes[1].state = NodeState::Decommissioning;
        nodes[1].gossip = Some(NodeStatus::Leaving);
        nodes[1].decommission = CallProgress::Running {
            for_: Duration::from_secs(5),
        };
        let leaving = plan(&input(1, 2, nodes.clone()));
        assert!(leaving.actions.is_empty());
        let message = leaving.activity.scaling_down.unwrap_or_default();
        assert!(
            message.contains("r1-1") && message.contains("LEAVING"),
            "{message}"
        );

        nodes[1].gossip = Some(NodeStatus::Left);
        nodes[1].decommission = CallProgress::Succeeded {
            for_: Duration::from_secs(9),
        };
        assert_eq!(
            plan(&input(1, 2, nodes.clone())).actions,
            [Action::FinishDecommission {
                pod: "r1-1".into(),
                rack: "r1".into(),
                replicas: 1
            }]
        );

        nodes[1].gossip = Some(NodeStatus::Normal);
        nodes[1].decommission = CallProgress::Failed("job failed".into());
        assert_eq!(
            plan(&input(1, 2, nodes.clone())).actions,
            [Action::DecommissionFailed {
                pod: "r1-1".into(),
                error: "job failed".into()
            }]
        );

        // After an operator restart the call is unknown: a NORMAL node is asked again.
        nodes[1].decommission = CallProgress::Unknown;
        assert_eq!(
            plan(&input(1, 2, nodes)).actions,
            [Action::Decommission { pod: "r1-1".into() }]
        );
    }

    #[test]
    fn a_changed_template_rolls_out_one_rack_at_a_time_only_when_allowed() {
        let mut changed = input(1, 1, all_up(1));
        for rack in &mut changed.racks {
            if let Some(sts) = &mut rack.statefulset {
                sts.template_current = false;
            }
        }
        let refused = plan(&changed);
        assert!(refused.actions.is_empty());
        assert!(
            refused.is_settled(),
            "waiting for permission is no work under way"
        );
        assert!(
            refused
                .activity
                .requires_update
                .is_some_and(|m| m.contains("r1"))
        );

        changed.update_allowed = true;
        assert_eq!(
            plan(&changed).actions,
            [
                Action::RequireHealthyCluster,
                Action::UpdateStatefulSet { rack: "r1".into() }
            ]
        );

        // Rack r1 is being rolled by Kubernetes: nothing else happens meanwhile.
        if let Some(sts) = &mut changed.racks[0].statefulset {
            sts.template_current = true;
            sts.rolled_out = false;
        }
        let rolling = plan(&changed);
        assert!(rolling.actions.is_empty());
        assert!(rolling.activity.updating.is_some());

        if let Some(sts) = &mut changed.racks[0].statefulset {
            sts.rolled_out = true;
        }
        assert_eq!(
            plan(&changed).actions,
            [
                Action::RequireHealthyCluster,
                Action::UpdateStatefulSet { rack: "r2".into() }
            ]
        );

        // A pass busy with something else between two racks still says the rollout goes on.
        changed.nodes[0].seed = false;
        let between = plan(&changed);
        assert_eq!(
            between.actions,
            [Action::LabelSeed {
                pod: "r1-0".into(),
                seed: true
            }]
        );
        assert!(between.activity.updating.is_some_and(|m| m.contains("r2")));
    }

    #[test]
    fn a_requested_replacement_begins_once_even_when_nodes_are_down() {
        let mut nodes = all_up(1);
        nodes[1].replace_requested = true;
        nodes[2].ready = false;
        let actions = plan(&input(1, 1, nodes.clone())).actions;
        assert!(
            actions.contains(&Action::BeginReplace { pod: "r2-0".into() }),
            "{actions:?}"
        );
        nodes[1].replacing = true;
        let actions = plan(&input(1, 1, nodes)).actions;
        assert!(
            actions.contains(&Action::DeleteReplaced { pod: "r2-0".into() }),
            "{actions:?}"
        );
    }

    #[test]
    fn stopping_scales_every_rack_to_zero() {
        let mut stopped = input(1, 1, all_up(1));
        stopped.stopped = true;
        assert_eq!(
            plan(&stopped).actions,
            RACKS
                .iter()
                .map(|r| Action::ScaleStatefulSet {
                    rack: (*r).into(),
                    replicas: 0
                })
                .collect::<Vec<_>>()
        );
    }

    #[test]
    fn an_empty_rack_removed_from_the_spec_loses_its_statefulset() {
        let mut removed = input(1, 1, all_up(1));
        removed.racks.push(RackView {
            in_spec: false,
            desired_seeds: 0,
            ..rack("old", 0, Some(0))
        });
        assert_eq!(
            plan(&removed).actions,
            [Action::DeleteStatefulSet { rack: "old".into() }]
        );
    }

    #[test]
    fn seeds_follow_the_wanted_count_per_rack() {
        let mut nodes = all_up(2);
        nodes[2].seed = false;
        assert_eq!(
            plan(&input(2, 2, nodes.clone())).actions,
            [Action::LabelSeed {
                pod: "r2-0".into(),
                seed: true
            }]
        );
        nodes[2].seed = true;
        nodes[3].seed = true;
        assert_eq!(
            plan(&input(2, 2, nodes)).actions,
            [Action::LabelSeed {
                pod: "r2-1".into(),
                seed: false
            }]
        );
    }

    #[test]
    fn scale_down_is_refused_when_replicas_or_space_would_be_lost() {
        let factors = |remaining| vec![("ks".to_owned(), 3, remaining)];
        assert_eq!(
            scale_down_check(&factors(2), 10, &[10, 10], 100),
            Some(ScaleDownRefusal::ReplicationFactorTooHigh {
                keyspace: "ks".into(),
                factor: 3,
                remaining: 2
            })
        );
        assert_eq!(scale_down_check(&factors(3), 10, &[10, 10, 10], 100), None);
        assert_eq!(
            scale_down_check(&[], 150, &[30, 30], 100),
            Some(ScaleDownRefusal::NotEnoughSpace {
                load: 150,
                free: 140
            })
        );
        assert_eq!(scale_down_check(&[], 140, &[30, 30], 100), None);
        // The last node of a datacenter: only the factors count.
        assert_eq!(scale_down_check(&factors(3), 500, &[], 100), None);
    }
}
