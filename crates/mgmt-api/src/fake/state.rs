//! The simulated cluster's state and its Cassandra rules, without any I/O.
//!
//! Every transition runs under the cluster lock; what happens later (end of a bootstrap, of a
//! decommission, of a job) is returned as [`Scheduled`] work that the cluster runs after a delay and
//! applies with [`ClusterState::apply`], ignoring it when the node restarted meanwhile.

use std::collections::{BTreeMap, BTreeSet};
use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde_json::{Value, json};
use tokio::sync::{mpsc, oneshot};

use crate::fake::calls::RecordedCall;
use crate::fake::config::{DecommissionCheck, FakeClusterConfig};
use crate::fake::events::{NodeEvent, NotReadyReason, ReadinessChange};
use crate::fake::faults::{Fault, FaultTable};
use crate::fake::ring::{self, Replication, RingMember};
use crate::model::features::FeatureSet;
use crate::model::job::JobStatus;
use crate::model::keyspace::{LOCAL_STRATEGY, NETWORK_TOPOLOGY_STRATEGY, SIMPLE_STRATEGY};
use crate::model::probe::ConsistencyLevel;
use crate::route::Route;

/// Identifies one running server (one pod incarnation).
pub(crate) type NodeKey = u64;

/// Port of the CQL native transport in gossip addresses.
const NATIVE_PORT: u16 = 9042;
/// Port of internode messaging in gossip addresses.
const STORAGE_PORT: u16 = 7000;
/// The keyspaces `-Dcassandra.system_distributed_replication` sets.
const SYSTEM_REPLICATED_KEYSPACES: [&str; 3] =
    ["system_auth", "system_distributed", "system_traces"];

/// What the Cassandra process of a fake node is doing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NodeProcess {
    /// Management API up, Cassandra not started (or stopped).
    NotStarted,
    /// Starting without bootstrap (restart, or a new seed); not alive in gossip yet.
    Starting,
    /// Bootstrapping: `BOOT` in gossip.
    Joining,
    /// Replacing a dead node: `hibernate` in gossip.
    Replacing,
    /// NORMAL and serving.
    Normal,
    /// Decommissioning: `LEAVING` in gossip, still serving.
    Leaving,
    /// Left the ring; the process still runs but serves nothing.
    Decommissioned,
    /// Drained: gossip and client transport stopped.
    Drained,
}

impl NodeProcess {
    /// Whether the Management API can reach Cassandra (needed by metadata and ops routes).
    fn reachable(self) -> bool {
        !matches!(self, NodeProcess::NotStarted | NodeProcess::Starting)
    }

    /// Whether the readiness probe answers 200.
    fn ready(self) -> bool {
        matches!(self, NodeProcess::Normal | NodeProcess::Leaving)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum GossipStatus {
    Boot,
    Normal,
    Leaving,
    Left { expire_ms: i64 },
    Shutdown,
    Hibernate,
}

/// One endpoint of the gossip table.
#[derive(Debug, Clone)]
struct Host {
    host_id: String,
    ip: IpAddr,
    datacenter: String,
    rack: String,
    token: i64,
    status: GossipStatus,
    alive: bool,
    load: f64,
    schema: String,
}

impl Host {
    fn status_value(&self) -> String {
        let token = self.token;
        match self.status {
            GossipStatus::Boot => format!("BOOT,{token}"),
            GossipStatus::Normal => format!("NORMAL,{token}"),
            GossipStatus::Leaving => format!("LEAVING,{token}"),
            GossipStatus::Left { expire_ms } => format!("LEFT,{token},{expire_ms}"),
            GossipStatus::Shutdown => "shutdown,true".to_string(),
            GossipStatus::Hibernate => "hibernate,true".to_string(),
        }
    }

    /// Owns tokens: counted by the probe and the decommission check (dead owners included).
    fn owns_tokens(&self) -> bool {
        matches!(
            self.status,
            GossipStatus::Normal | GossipStatus::Leaving | GossipStatus::Shutdown
        )
    }
}

/// What a data volume remembers across restarts.
#[derive(Debug, Clone, Default)]
struct DataDir {
    host_id: Option<String>,
    bootstrapped: bool,
    decommissioned: bool,
}

#[derive(Debug, Clone)]
struct JobRecord {
    id: String,
    job_type: &'static str,
    status: JobStatus,
    submit_ms: i64,
    end_ms: Option<i64>,
    error: Option<String>,
    changes: Vec<(JobStatus, i64, Option<String>)>,
}

impl JobRecord {
    fn finish(&mut self, error: Option<String>) {
        let now = now_ms();
        self.status = if error.is_some() {
            JobStatus::Error
        } else {
            JobStatus::Completed
        };
        self.end_ms = Some(now);
        self.changes.push((self.status.clone(), now, error.clone()));
        self.error = error;
    }

    /// The real server's shape: timestamps serialised as strings.
    fn to_json(&self) -> Value {
        let changes: Vec<Value> = self
            .changes
            .iter()
            .map(|(status, at, message)| {
                json!({"status": status.as_str(), "change_time": at.to_string(), "message": message})
            })
            .collect();
        json!({
            "id": self.id,
            "type": self.job_type,
            "status": self.status.as_str(),
            "submit_time": self.submit_ms.to_string(),
            "end_time": self.end_ms.unwrap_or(0).to_string(),
            "error": self.error,
            "status_changes": changes,
        })
    }
}

/// Who a node is; fixed for the life of its server.
#[derive(Debug, Clone)]
pub(crate) struct NodeIdentity {
    pub(crate) pod: String,
    pub(crate) datacenter: String,
    pub(crate) rack: String,
    pub(crate) data_id: String,
    pub(crate) ip: IpAddr,
    /// `-Dcassandra.system_distributed_replication`, applied when the node is the first.
    pub(crate) system_replication: Option<BTreeMap<String, u32>>,
}

#[derive(Debug)]
struct NodeRecord {
    identity: NodeIdentity,
    seed: bool,
    process: NodeProcess,
    /// Bumped whenever the process changes under scheduled work, which then no longer applies.
    epoch: u64,
    ready: bool,
    features: Option<FeatureSet>,
    jobs: BTreeMap<String, JobRecord>,
    full_query_logging: bool,
    faults: FaultTable,
    hung_requests: Vec<(Route, oneshot::Sender<()>)>,
    stalled_work: Vec<(Route, oneshot::Sender<()>)>,
    load: Option<f64>,
    /// Why the last process launched by `lifecycle/start` exited at once, as its log would say.
    exit_reason: Option<String>,
    /// The addresses its seed list resolved to at the last start or reload; `None` when the test
    /// gives no resolver.
    known_seeds: Option<Vec<IpAddr>>,
}

/// Work to do later.
#[derive(Debug)]
pub(crate) struct Scheduled {
    pub(crate) node: Option<(NodeKey, u64)>,
    pub(crate) after: Duration,
    /// Wait for a release of this route after the delay.
    pub(crate) stall: Option<Route>,
    pub(crate) work: Work,
}

/// What scheduled work does.
#[derive(Debug)]
pub(crate) enum Work {
    /// End of startup or bootstrap or replacement: NORMAL and alive.
    Join,
    /// End of decommission: LEFT.
    Leave { job: Option<String> },
    /// End of a job (or of a blocking call when `job` is None).
    FinishJob {
        job: Option<String>,
        error: Option<String>,
    },
    /// End of a move: the node owns `token`.
    FinishMove { job: Option<String>, token: i64 },
    /// A LEFT entry expires from gossip.
    ForgetHost { host_id: String },
}

/// A request refused by the simulated server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Refusal {
    pub(crate) status: u16,
    pub(crate) message: String,
}

impl Refusal {
    pub(crate) fn new(status: u16, message: impl Into<String>) -> Self {
        Self {
            status,
            message: message.into(),
        }
    }
}

#[derive(Debug, Clone)]
struct KeyspaceRecord {
    replication: Replication,
    tables: BTreeSet<String>,
}

/// A role of the fake's role store.
#[derive(Clone, PartialEq, Eq)]
pub struct FakeRole {
    /// Role name.
    pub name: String,
    /// Password it was created with.
    pub password: String,
    /// Superuser flag.
    pub superuser: bool,
    /// Login flag.
    pub login: bool,
}

impl std::fmt::Debug for FakeRole {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FakeRole")
            .field("name", &self.name)
            .field("superuser", &self.superuser)
            .field("login", &self.login)
            .finish_non_exhaustive()
    }
}

/// The whole simulated cluster.
#[derive(Debug)]
pub(crate) struct ClusterState {
    pub(crate) config: FakeClusterConfig,
    random: SplitMix,
    schema_version: String,
    hosts: BTreeMap<String, Host>,
    data_dirs: BTreeMap<String, DataDir>,
    nodes: BTreeMap<NodeKey, NodeRecord>,
    next_key: NodeKey,
    keyspaces: BTreeMap<String, KeyspaceRecord>,
    roles: BTreeMap<String, FakeRole>,
    identities: BTreeMap<String, String>,
    calls: Vec<RecordedCall>,
    exits: Vec<(String, String)>,
    subscribers: Vec<mpsc::UnboundedSender<NodeEvent>>,
}

impl ClusterState {
    pub(crate) fn new(config: FakeClusterConfig) -> Self {
        let mut random = SplitMix::from_clock();
        let schema_version = random.uuid();
        let simple = |factor| KeyspaceRecord {
            replication: Replication::Simple(factor),
            tables: BTreeSet::new(),
        };
        let local = || KeyspaceRecord {
            replication: Replication::Local,
            tables: BTreeSet::new(),
        };
        // Cassandra's defaults for a fresh cluster.
        let keyspaces = BTreeMap::from([
            ("system".to_string(), local()),
            ("system_schema".to_string(), local()),
            ("system_auth".to_string(), simple(1)),
            ("system_distributed".to_string(), simple(3)),
            ("system_traces".to_string(), simple(2)),
        ]);
        let roles = BTreeMap::from([(
            "cassandra".to_string(),
            FakeRole {
                name: "cassandra".into(),
                password: "cassandra".into(),
                superuser: true,
                login: true,
            },
        )]);
        Self {
            config,
            random,
            schema_version,
            hosts: BTreeMap::new(),
            data_dirs: BTreeMap::new(),
            nodes: BTreeMap::new(),
            next_key: 1,
            keyspaces,
            roles,
            identities: BTreeMap::new(),
            calls: Vec::new(),
            exits: Vec::new(),
            subscribers: Vec::new(),
        }
    }

    // ---- nodes, calls, faults, events ----

    /// Registers a server; refuses a data volume that a running server already uses.
    pub(crate) fn add_node(
        &mut self,
        identity: NodeIdentity,
        seed: bool,
        features: Option<FeatureSet>,
    ) -> Result<NodeKey, String> {
        if self
            .nodes
            .values()
            .any(|node| node.identity.data_id == identity.data_id)
        {
            return Err(identity.data_id);
        }
        let key = self.next_key;
        self.next_key += 1;
        self.nodes.insert(
            key,
            NodeRecord {
                identity,
                seed,
                process: NodeProcess::NotStarted,
                epoch: 0,
                ready: false,
                features,
                jobs: BTreeMap::new(),
                full_query_logging: false,
                faults: FaultTable::default(),
                hung_requests: Vec::new(),
                stalled_work: Vec::new(),
                load: None,
                exit_reason: None,
                known_seeds: None,
            },
        );
        Ok(key)
    }

    /// The server is gone (pod deleted): the process dies without announcing anything.
    pub(crate) fn remove_node(&mut self, key: NodeKey) {
        self.halt(key, false, NotReadyReason::ShutDown);
        self.nodes.remove(&key);
    }

    pub(crate) fn subscribe(&mut self) -> mpsc::UnboundedReceiver<NodeEvent> {
        let (sender, receiver) = mpsc::unbounded_channel();
        self.subscribers.push(sender);
        receiver
    }

    pub(crate) fn record_call(&mut self, call: RecordedCall) {
        self.calls.push(call);
    }

    pub(crate) fn calls(&self) -> Vec<RecordedCall> {
        self.calls.clone()
    }

    pub(crate) fn inject(&mut self, key: NodeKey, route: Route, fault: Fault, times: super::Times) {
        if let Some(node) = self.nodes.get_mut(&key) {
            node.faults.inject(route, fault, times);
        }
    }

    pub(crate) fn clear_faults(&mut self, key: NodeKey) {
        if let Some(node) = self.nodes.get_mut(&key) {
            node.faults.clear();
        }
    }

    pub(crate) fn take_fault(&mut self, key: NodeKey, route: Route) -> Option<Fault> {
        self.nodes.get_mut(&key)?.faults.take(route)
    }

    /// A receiver that fires when `route` is released on the node (dropped if the node goes away).
    pub(crate) fn hang(&mut self, key: NodeKey, route: Route) -> oneshot::Receiver<()> {
        let (sender, receiver) = oneshot::channel();
        if let Some(node) = self.nodes.get_mut(&key) {
            node.hung_requests.push((route, sender));
        }
        receiver
    }

    pub(crate) fn stall(&mut self, key: NodeKey, route: Route) -> oneshot::Receiver<()> {
        let (sender, receiver) = oneshot::channel();
        if let Some(node) = self.nodes.get_mut(&key) {
            node.stalled_work.push((route, sender));
        }
        receiver
    }

    /// Releases hung requests and stalled work of `route`; returns how many.
    pub(crate) fn release(&mut self, key: NodeKey, route: Route) -> usize {
        let Some(node) = self.nodes.get_mut(&key) else {
            return 0;
        };
        let mut released = 0;
        for list in [&mut node.hung_requests, &mut node.stalled_work] {
            let (matching, rest): (Vec<_>, Vec<_>) =
                list.drain(..).partition(|(held, _)| *held == route);
            *list = rest;
            for (_, sender) in matching {
                released += usize::from(sender.send(()).is_ok());
            }
        }
        released
    }

    /// Emits a readiness event when the node's readiness changed.
    fn settle_readiness(&mut self, key: NodeKey, reason: NotReadyReason) {
        let Some(node) = self.nodes.get_mut(&key) else {
            return;
        };
        let ready = node.process.ready();
        if ready == node.ready {
            return;
        }
        node.ready = ready;
        let event = NodeEvent {
            pod: node.identity.pod.clone(),
            datacenter: node.identity.datacenter.clone(),
            ip: node.identity.ip,
            change: if ready {
                ReadinessChange::Ready
            } else {
                ReadinessChange::NotReady(reason)
            },
        };
        self.subscribers
            .retain(|subscriber| subscriber.send(event.clone()).is_ok());
    }

    // ---- node queries and settings ----

    pub(crate) fn process(&self, key: NodeKey) -> NodeProcess {
        self.nodes
            .get(&key)
            .map_or(NodeProcess::NotStarted, |node| node.process)
    }

    pub(crate) fn exit_reason(&self, key: NodeKey) -> Option<String> {
        self.nodes
            .get(&key)
            .and_then(|node| node.exit_reason.clone())
    }

    pub(crate) fn is_ready(&self, key: NodeKey) -> bool {
        self.nodes.get(&key).is_some_and(|node| node.ready)
    }

    pub(crate) fn reachable(&self, key: NodeKey) -> bool {
        self.process(key).reachable()
    }

    pub(crate) fn host_id(&self, key: NodeKey) -> Option<String> {
        let node = self.nodes.get(&key)?;
        self.data_dirs.get(&node.identity.data_id)?.host_id.clone()
    }

    pub(crate) fn set_seed(&mut self, key: NodeKey, seed: bool) {
        if let Some(node) = self.nodes.get_mut(&key) {
            node.seed = seed;
        }
    }

    pub(crate) fn set_features(&mut self, key: NodeKey, features: Option<FeatureSet>) {
        if let Some(node) = self.nodes.get_mut(&key) {
            node.features = features;
        }
    }

    pub(crate) fn features(&self, key: NodeKey) -> Option<FeatureSet> {
        self.nodes.get(&key)?.features.clone()
    }

    pub(crate) fn set_load(&mut self, key: NodeKey, bytes: f64) {
        if let Some(node) = self.nodes.get_mut(&key) {
            node.load = Some(bytes);
        }
        if let Some(host) = self
            .host_id(key)
            .and_then(|host_id| self.hosts.get_mut(&host_id))
        {
            host.load = bytes;
        }
    }

    pub(crate) fn evict_jobs(&mut self, key: NodeKey) {
        if let Some(node) = self.nodes.get_mut(&key) {
            node.jobs.clear();
        }
    }

    pub(crate) fn set_full_query_logging(&mut self, key: NodeKey, enabled: bool) {
        if let Some(node) = self.nodes.get_mut(&key) {
            node.full_query_logging = enabled;
        }
    }

    pub(crate) fn full_query_logging(&self, key: NodeKey) -> bool {
        self.nodes
            .get(&key)
            .is_some_and(|node| node.full_query_logging)
    }

    // ---- lifecycle ----

    /// `lifecycle/start`: the status to answer and the work that finishes the start.
    pub(crate) fn start(
        &mut self,
        key: NodeKey,
        replace_ip: Option<IpAddr>,
        stall: bool,
    ) -> Result<(u16, Option<Scheduled>), Refusal> {
        let node = self.node(key)?;
        match node.process {
            NodeProcess::Normal | NodeProcess::Leaving => return Ok((202, None)),
            NodeProcess::NotStarted => {}
            _ => return Ok((204, None)),
        }
        let identity = node.identity.clone();
        let seed = node.seed;
        let data = self
            .data_dirs
            .get(&identity.data_id)
            .cloned()
            .unwrap_or_default();
        // As the Management API does, the start answers once the process is launched; a process
        // that cannot start exits soon after, and the node never becomes ready.
        if data.decommissioned {
            return self.exits(
                key,
                "This node was decommissioned and will not rejoin the ring unless \
                 cassandra.override_decommission=true has been set, or all existing data is \
                 removed and the node is bootstrapped again",
            );
        }
        if let Some(refusal) = self.unreachable_seeds(key, seed) {
            return self.exits(key, &refusal);
        }
        let timings = self.config.timings;
        let stall_route = stall.then_some(Route::LifecycleStart);
        let (process, after) = match (replace_ip, data.host_id.clone()) {
            (Some(replaced), _) => {
                if let Err(refusal) = self.take_over(&identity, &data, replaced) {
                    return self.exits(key, &refusal.message);
                }
                (NodeProcess::Replacing, timings.bootstrap)
            }
            (None, Some(host_id)) if data.bootstrapped => {
                let Some(host) = self.hosts.get_mut(&host_id) else {
                    return self.exits(
                        key,
                        "a replacement node took over this node's host ID: wipe its data to rejoin",
                    );
                };
                // A recreated pod comes back on a new IP with the same host ID.
                host.ip = identity.ip;
                host.alive = false;
                (NodeProcess::Starting, timings.startup)
            }
            (None, previous_id) => {
                if !seed && self.range_movement_in_progress() {
                    return self.exits(
                        key,
                        "Other bootstrapping/leaving/moving nodes detected, cannot bootstrap \
                         while cassandra.consistent.rangemovement is true",
                    );
                }
                // Seeds do not bootstrap; other new nodes show BOOT while streaming.
                let (status, alive, process, after) = if seed {
                    (
                        GossipStatus::Normal,
                        false,
                        NodeProcess::Starting,
                        timings.startup,
                    )
                } else {
                    (
                        GossipStatus::Boot,
                        true,
                        NodeProcess::Joining,
                        timings.bootstrap,
                    )
                };
                if self.hosts.is_empty()
                    && let Some(factors) = &identity.system_replication
                {
                    // The first node of a cluster creates the system keyspaces.
                    for keyspace in SYSTEM_REPLICATED_KEYSPACES {
                        if let Some(record) = self.keyspaces.get_mut(keyspace) {
                            record.replication = Replication::PerDatacenter(factors.clone());
                        }
                    }
                }
                let host_id = previous_id.unwrap_or_else(|| self.random.uuid());
                let load = self
                    .node(key)?
                    .load
                    .unwrap_or(self.config.initial_load_bytes);
                let host = Host {
                    host_id: host_id.clone(),
                    ip: identity.ip,
                    datacenter: identity.datacenter.clone(),
                    rack: identity.rack.clone(),
                    token: self.unused_token(),
                    status,
                    alive,
                    load,
                    schema: self.schema_version.clone(),
                };
                self.hosts.insert(host_id.clone(), host);
                let dir = self.data_dirs.entry(identity.data_id.clone()).or_default();
                dir.host_id = Some(host_id);
                (process, after)
            }
        };
        let node = self.node_mut(key)?;
        node.process = process;
        node.exit_reason = None;
        node.epoch += 1;
        let epoch = node.epoch;
        Ok((
            201,
            Some(Scheduled {
                node: Some((key, epoch)),
                after,
                stall: stall_route,
                work: Work::Join,
            }),
        ))
    }

    /// A launched process that exits at once: the start answers 201, the node stays not started.
    fn exits(&mut self, key: NodeKey, reason: &str) -> Result<(u16, Option<Scheduled>), Refusal> {
        let node = self.node_mut(key)?;
        node.exit_reason = Some(reason.to_owned());
        let pod = node.identity.pod.clone();
        self.exits.push((pod, reason.to_owned()));
        Ok((201, None))
    }

    /// Every exit of a process launched by `lifecycle/start`, in order: the pod, and why.
    pub(crate) fn exit_history(&self) -> Vec<(String, String)> {
        self.exits.clone()
    }

    /// `replace_ip`: the new node takes the dead node's host ID and tokens; the old entry goes.
    fn take_over(
        &mut self,
        identity: &NodeIdentity,
        data: &DataDir,
        replaced: IpAddr,
    ) -> Result<(), Refusal> {
        if data.bootstrapped {
            return Err(Refusal::new(
                500,
                "cannot replace: this node already bootstrapped",
            ));
        }
        let Some(host) = self
            .hosts
            .values_mut()
            .find(|host| host.ip == replaced && !matches!(host.status, GossipStatus::Left { .. }))
        else {
            return Err(Refusal::new(
                500,
                format!("cannot replace {replaced}: no such endpoint in gossip"),
            ));
        };
        if host.alive {
            return Err(Refusal::new(
                500,
                format!("cannot replace {replaced}: that node is alive"),
            ));
        }
        host.ip = identity.ip;
        host.status = GossipStatus::Hibernate;
        let host_id = host.host_id.clone();
        // The dead node's volume no longer owns this identity.
        for dir in self.data_dirs.values_mut() {
            if dir.host_id.as_deref() == Some(&host_id) {
                dir.host_id = None;
                dir.bootstrapped = false;
            }
        }
        let dir = self.data_dirs.entry(identity.data_id.clone()).or_default();
        dir.host_id = Some(host_id);
        dir.bootstrapped = false;
        Ok(())
    }

    /// `lifecycle/stop`: a graceful stop.
    pub(crate) fn stop(&mut self, key: NodeKey) {
        self.halt(key, true, NotReadyReason::Stopped);
    }

    /// Stops the process; `graceful` announces the shutdown in gossip as Cassandra does on drain.
    fn halt(&mut self, key: NodeKey, graceful: bool, reason: NotReadyReason) {
        let host_id = self.host_id(key);
        let Some(node) = self.nodes.get_mut(&key) else {
            return;
        };
        let previous = node.process;
        node.process = NodeProcess::NotStarted;
        node.epoch += 1;
        node.stalled_work.clear();
        for job in node.jobs.values_mut() {
            if job.status == JobStatus::Waiting {
                job.finish(Some("Cassandra stopped before the job finished".into()));
            }
        }
        let ip = node.identity.ip;
        if let Some(host_id) = host_id {
            if previous == NodeProcess::Joining {
                // An interrupted bootstrap leaves no trace; the next start bootstraps again.
                self.hosts.remove(&host_id);
            } else if let Some(host) = self.hosts.get_mut(&host_id) {
                // Only the process that owns the entry now can take it down.
                if previous != NodeProcess::NotStarted && host.ip == ip {
                    host.alive = false;
                    if graceful && host.status == GossipStatus::Normal {
                        host.status = GossipStatus::Shutdown;
                    }
                }
            }
        }
        self.settle_readiness(key, reason);
    }

    /// `ops/node/drain`: stop gossip and clients; the entry says `shutdown` and not alive.
    pub(crate) fn drain(&mut self, key: NodeKey) {
        let host_id = self.host_id(key);
        let Some(node) = self.nodes.get_mut(&key) else {
            return;
        };
        if !matches!(
            node.process,
            NodeProcess::Normal
                | NodeProcess::Leaving
                | NodeProcess::Joining
                | NodeProcess::Replacing
        ) {
            return;
        }
        node.process = NodeProcess::Drained;
        node.epoch += 1;
        if let Some(host) = host_id.and_then(|id| self.hosts.get_mut(&id)) {
            host.alive = false;
            if host.status == GossipStatus::Normal {
                host.status = GossipStatus::Shutdown;
            }
        }
        self.settle_readiness(key, NotReadyReason::Drained);
    }

    /// Starts a decommission; the returned work ends it.
    pub(crate) fn begin_decommission(
        &mut self,
        key: NodeKey,
        force: bool,
        job: Option<String>,
        stall: Option<Route>,
    ) -> Result<Scheduled, String> {
        let node = self.nodes.get(&key).ok_or("node is gone")?;
        match node.process {
            NodeProcess::Normal => {}
            NodeProcess::Leaving => return Err("the node is already leaving".into()),
            NodeProcess::Decommissioned => return Err("the node already left the ring".into()),
            other => {
                return Err(format!(
                    "the node is not a NORMAL ring member ({other:?}): cannot decommission"
                ));
            }
        }
        let dc = node.identity.datacenter.clone();
        let check = match self.config.decommission_check {
            DecommissionCheck::Always => true,
            DecommissionCheck::UnlessForced => !force,
            DecommissionCheck::Never => false,
        };
        let members = self.ring_members();
        let keyspaces: BTreeMap<String, Replication> = if check {
            self.keyspaces
                .iter()
                .map(|(name, ks)| (name.clone(), ks.replication.clone()))
                .collect()
        } else {
            BTreeMap::new()
        };
        if let Some(refusal) = ring::decommission_refusal(&members, &dc, &keyspaces) {
            return Err(refusal);
        }
        let host_id = self.host_id(key).ok_or("node has no host ID")?;
        if let Some(host) = self.hosts.get_mut(&host_id) {
            host.status = GossipStatus::Leaving;
        }
        let after = self.config.timings.decommission;
        let node = self.node_mut(key).map_err(|refusal| refusal.message)?;
        node.process = NodeProcess::Leaving;
        node.epoch += 1;
        Ok(Scheduled {
            node: Some((key, node.epoch)),
            after,
            stall,
            work: Work::Leave { job },
        })
    }

    // ---- jobs ----

    /// A new WAITING job on the node.
    pub(crate) fn new_job(&mut self, key: NodeKey, job_type: &'static str) -> String {
        let id = self.random.uuid();
        let now = now_ms();
        if let Some(node) = self.nodes.get_mut(&key) {
            node.jobs.insert(
                id.clone(),
                JobRecord {
                    id: id.clone(),
                    job_type,
                    status: JobStatus::Waiting,
                    submit_ms: now,
                    end_ms: None,
                    error: None,
                    changes: vec![(JobStatus::Waiting, now, None)],
                },
            );
        }
        id
    }

    pub(crate) fn finish_job(&mut self, key: NodeKey, id: &str, error: Option<String>) {
        if let Some(job) = self
            .nodes
            .get_mut(&key)
            .and_then(|node| node.jobs.get_mut(id))
        {
            job.finish(error);
        }
    }

    pub(crate) fn job_json(&self, key: NodeKey, id: &str) -> Option<Value> {
        Some(self.nodes.get(&key)?.jobs.get(id)?.to_json())
    }

    /// Work that ends a job (or a blocking call) after the job duration.
    pub(crate) fn job_work(
        &self,
        key: NodeKey,
        job: Option<String>,
        error: Option<String>,
        stall: Option<Route>,
    ) -> Scheduled {
        let epoch = self.nodes.get(&key).map_or(0, |node| node.epoch);
        Scheduled {
            node: Some((key, epoch)),
            after: self.config.timings.job,
            stall,
            work: Work::FinishJob { job, error },
        }
    }

    /// Work that moves the node to `token`.
    pub(crate) fn move_work(
        &self,
        key: NodeKey,
        job: Option<String>,
        token: i64,
        stall: Option<Route>,
    ) -> Scheduled {
        let mut work = self.job_work(key, None, None, stall);
        work.work = Work::FinishMove { job, token };
        work
    }

    /// Applies scheduled work; Err when it no longer applies (the node restarted or is gone), and
    /// more work to schedule.
    pub(crate) fn apply(&mut self, scheduled: Scheduled) -> (Result<(), String>, Vec<Scheduled>) {
        if let Some((key, epoch)) = scheduled.node
            && self.nodes.get(&key).map(|node| node.epoch) != Some(epoch)
        {
            if let Work::Leave { job: Some(job) } | Work::FinishJob { job: Some(job), .. } =
                &scheduled.work
            {
                self.finish_job(key, job, Some("interrupted".into()));
            }
            return (
                Err("interrupted: the node changed state".into()),
                Vec::new(),
            );
        }
        let key = scheduled.node.map(|(key, _)| key).unwrap_or_default();
        match scheduled.work {
            Work::Join => {
                self.finish_join(key);
                (Ok(()), Vec::new())
            }
            Work::Leave { job } => {
                let next = self.finish_leave(key);
                if let Some(job) = job {
                    self.finish_job(key, &job, None);
                }
                (Ok(()), next.into_iter().collect())
            }
            Work::FinishJob { job, error } => {
                if let Some(job) = job {
                    self.finish_job(key, &job, error.clone());
                }
                (error.map_or(Ok(()), Err), Vec::new())
            }
            Work::FinishMove { job, token } => {
                if let Some(host) = self.host_id(key).and_then(|id| self.hosts.get_mut(&id)) {
                    host.token = token;
                }
                if let Some(job) = job {
                    self.finish_job(key, &job, None);
                }
                (Ok(()), Vec::new())
            }
            Work::ForgetHost { host_id } => {
                let left = self
                    .hosts
                    .get(&host_id)
                    .is_some_and(|host| matches!(host.status, GossipStatus::Left { .. }));
                if left {
                    self.hosts.remove(&host_id);
                }
                (Ok(()), Vec::new())
            }
        }
    }

    fn finish_join(&mut self, key: NodeKey) {
        let Some(host_id) = self.host_id(key) else {
            return;
        };
        let schema = self.schema_version.clone();
        if let Some(host) = self.hosts.get_mut(&host_id) {
            host.status = GossipStatus::Normal;
            host.alive = true;
            host.schema = schema;
        }
        if let Some(node) = self.nodes.get_mut(&key) {
            node.process = NodeProcess::Normal;
            if let Some(dir) = self.data_dirs.get_mut(&node.identity.data_id) {
                dir.bootstrapped = true;
            }
        }
        self.settle_readiness(key, NotReadyReason::Stopped);
    }

    fn finish_leave(&mut self, key: NodeKey) -> Option<Scheduled> {
        let host_id = self.host_id(key)?;
        let retention = self.config.timings.left_retention;
        let expire_ms = now_ms() + i64::try_from(retention.as_millis()).unwrap_or(i64::MAX);
        if let Some(host) = self.hosts.get_mut(&host_id) {
            host.status = GossipStatus::Left { expire_ms };
            host.alive = false;
        }
        if let Some(node) = self.nodes.get_mut(&key) {
            node.process = NodeProcess::Decommissioned;
            if let Some(dir) = self.data_dirs.get_mut(&node.identity.data_id) {
                dir.decommissioned = true;
            }
        }
        self.settle_readiness(key, NotReadyReason::Decommissioned);
        Some(Scheduled {
            node: None,
            after: retention,
            stall: None,
            work: Work::ForgetHost { host_id },
        })
    }

    // ---- cluster queries ----

    /// `{"entity":[...]}` as node `key` sees the cluster.
    pub(crate) fn endpoints_json(&self, key: NodeKey) -> Value {
        let local = self.host_id(key);
        let release = &self.config.release_version;
        let entity: Vec<Value> = self
            .hosts
            .values()
            .map(|host| {
                let status = host.status_value();
                json!({
                    "DC": host.datacenter,
                    "RACK": host.rack,
                    "HOST_ID": host.host_id,
                    "ENDPOINT_IP": host.ip.to_string(),
                    "RPC_ADDRESS": host.ip.to_string(),
                    "NATIVE_ADDRESS_AND_PORT": SocketAddr::new(host.ip, NATIVE_PORT).to_string(),
                    "INTERNAL_ADDRESS_AND_PORT": SocketAddr::new(host.ip, STORAGE_PORT).to_string(),
                    "STATUS": status,
                    "STATUS_WITH_PORT": status,
                    "LOAD": format!("{:?}", host.load),
                    "SCHEMA": host.schema,
                    "RELEASE_VERSION": release,
                    "SSTABLE_VERSIONS": "big-nb",
                    "TOKENS": "<hidden>",
                    "IS_ALIVE": host.alive.to_string(),
                    "IS_LOCAL": (local.as_deref() == Some(host.host_id.as_str())).to_string(),
                })
            })
            .collect();
        json!({ "entity": entity })
    }

    /// Problems of the cluster probe as node `key` sees it.
    pub(crate) fn probe(
        &self,
        key: NodeKey,
        level: ConsistencyLevel,
        rf_per_dc: u32,
    ) -> BTreeMap<String, Vec<String>> {
        let local_dc = self
            .nodes
            .get(&key)
            .map(|node| node.identity.datacenter.clone())
            .unwrap_or_default();
        ring::probe(&self.ring_members(), &local_dc, level, rf_per_dc)
    }

    fn ring_members(&self) -> Vec<RingMember> {
        self.hosts
            .values()
            .filter(|host| host.owns_tokens())
            .map(|host| RingMember {
                datacenter: host.datacenter.clone(),
                token: host.token,
                alive: host.alive,
                leaving: host.status == GossipStatus::Leaving,
            })
            .collect()
    }

    /// What a seed reload answers: the addresses the node's seed list resolved to, else those of
    /// the seeds that currently have a server.
    pub(crate) fn seeds(&self, key: NodeKey) -> Vec<String> {
        if let Some(known) = self.nodes.get(&key).and_then(|n| n.known_seeds.as_ref()) {
            return known.iter().map(ToString::to_string).collect();
        }
        self.nodes
            .values()
            .filter(|node| node.seed)
            .map(|node| node.identity.ip.to_string())
            .collect()
    }

    /// Records what a node's seed list resolved to.
    pub(crate) fn set_known_seeds(&mut self, key: NodeKey, known: Option<Vec<IpAddr>>) {
        if let Some(node) = self.nodes.get_mut(&key) {
            node.known_seeds = known;
        }
    }

    /// Why a node cannot join, as Cassandra's log says, when no seed it can reach is up.
    fn unreachable_seeds(&self, key: NodeKey, seed: bool) -> Option<String> {
        let known = self.nodes.get(&key).and_then(|n| n.known_seeds.as_ref());
        let Some(known) = known else {
            return (!seed && !self.seed_is_up(key))
                .then(|| "Unable to contact any seeds: no seed node is up and NORMAL".to_owned());
        };
        let up = |other: &NodeKey| {
            self.nodes
                .get(other)
                .is_some_and(|n| n.process == NodeProcess::Normal)
                && self
                    .host_id(*other)
                    .and_then(|id| self.hosts.get(&id))
                    .is_some_and(|host| host.alive)
        };
        let reachable = self
            .nodes
            .iter()
            .any(|(other, node)| *other != key && known.contains(&node.identity.ip) && up(other));
        let others_alive = self.nodes.keys().any(|other| *other != key && up(other));
        // A seed that reaches no other seed forms a ring of its own: right for the first node of
        // a new cluster, a split cluster anywhere else.
        if reachable || (seed && !others_alive) {
            return None;
        }
        let listed: Vec<String> = known.iter().map(ToString::to_string).collect();
        Some(format!(
            "Unable to contact any seeds: none of the seeds this node knows ({}) is up and NORMAL",
            if listed.is_empty() {
                "none".to_owned()
            } else {
                listed.join(", ")
            }
        ))
    }

    fn seed_is_up(&self, except: NodeKey) -> bool {
        self.nodes.iter().any(|(key, node)| {
            *key != except
                && node.seed
                && node.process == NodeProcess::Normal
                && self
                    .host_id(*key)
                    .and_then(|id| self.hosts.get(&id))
                    .is_some_and(|host| host.alive)
        })
    }

    pub(crate) fn range_movement_in_progress(&self) -> bool {
        self.hosts.values().any(|host| {
            matches!(
                host.status,
                GossipStatus::Boot | GossipStatus::Leaving | GossipStatus::Hibernate
            )
        })
    }

    fn unused_token(&mut self) -> i64 {
        loop {
            let token = i64::from_ne_bytes(self.random.next().to_ne_bytes());
            if !self.hosts.values().any(|host| host.token == token) {
                return token;
            }
        }
    }

    /// Schema version to addresses; dead ring members under `UNREACHABLE`, as Cassandra reports.
    pub(crate) fn schema_versions(&self) -> BTreeMap<String, Vec<String>> {
        let mut versions: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for host in self.hosts.values().filter(|host| host.owns_tokens()) {
            let key = if host.alive {
                host.schema.clone()
            } else {
                "UNREACHABLE".to_string()
            };
            versions.entry(key).or_default().push(host.ip.to_string());
        }
        versions
    }

    pub(crate) fn datacenter_exists(&self, dc: &str) -> bool {
        self.hosts.values().any(|host| host.datacenter == dc)
    }

    pub(crate) fn endpoints_snapshot(&self) -> Value {
        self.endpoints_json(0)
    }

    // ---- schema ----

    pub(crate) fn keyspace_names(&self) -> Vec<String> {
        self.keyspaces.keys().cloned().collect()
    }

    pub(crate) fn has_keyspace(&self, name: &str) -> bool {
        self.keyspaces.contains_key(name)
    }

    /// Creates a keyspace unless it exists (`CREATE KEYSPACE IF NOT EXISTS`).
    pub(crate) fn create_keyspace(
        &mut self,
        name: &str,
        factors: BTreeMap<String, u32>,
    ) -> Result<(), Refusal> {
        if self.keyspaces.contains_key(name) {
            return Ok(());
        }
        if let Some(refusal) = self.replication_refusal(name, &factors) {
            return Err(refusal);
        }
        self.insert_keyspace(name, factors);
        Ok(())
    }

    /// Creates or replaces a keyspace without Cassandra's checks (a test's starting schema).
    pub(crate) fn insert_keyspace(&mut self, name: &str, factors: BTreeMap<String, u32>) {
        self.keyspaces.insert(
            name.to_string(),
            KeyspaceRecord {
                replication: Replication::PerDatacenter(factors),
                tables: BTreeSet::new(),
            },
        );
        self.schema_changed();
    }

    /// Cassandra 4.0+ refuses a factor for a datacenter it does not know (no node in gossip),
    /// and 4.1+ refuses to drop `system_auth` replicas from a datacenter with live nodes.
    fn replication_refusal(&self, name: &str, factors: &BTreeMap<String, u32>) -> Option<Refusal> {
        let major = self
            .config
            .release_version
            .split('.')
            .next()
            .and_then(|m| m.parse::<u32>().ok())
            .unwrap_or(4);
        let minor = self
            .config
            .release_version
            .split('.')
            .nth(1)
            .and_then(|m| m.parse::<u32>().ok())
            .unwrap_or(0);
        if major < 4 {
            return None;
        }
        if let Some((dc, _)) = factors
            .iter()
            .find(|(dc, factor)| **factor > 0 && !self.datacenter_exists(dc))
        {
            return Some(Refusal::new(
                500,
                format!(
                    "Unrecognized strategy option {{{dc}}} passed to NetworkTopologyStrategy for \
                     keyspace {name}"
                ),
            ));
        }
        if name == "system_auth" && (major, minor) >= (4, 1) {
            let live: BTreeSet<&str> = self
                .hosts
                .values()
                .filter(|h| h.alive && h.owns_tokens())
                .map(|h| h.datacenter.as_str())
                .filter(|dc| factors.get(*dc).is_none_or(|f| *f == 0))
                .collect();
            if !live.is_empty() {
                let list: Vec<&str> = live.into_iter().collect();
                return Some(Refusal::new(
                    500,
                    format!(
                        "Following datacenters have active nodes and must be present in \
                         replication options for keyspace {name}: [{}]",
                        list.join(", ")
                    ),
                ));
            }
        }
        None
    }

    /// Sets the replication of an existing keyspace.
    pub(crate) fn alter_keyspace(
        &mut self,
        name: &str,
        factors: BTreeMap<String, u32>,
    ) -> Result<(), Refusal> {
        if !self.keyspaces.contains_key(name) {
            return Err(Refusal::new(
                500,
                format!("Keyspace '{name}' does not exist"),
            ));
        }
        if let Some(refusal) = self.replication_refusal(name, &factors) {
            return Err(refusal);
        }
        let keyspace = self
            .keyspaces
            .get_mut(name)
            .ok_or_else(|| Refusal::new(500, format!("Keyspace '{name}' does not exist")))?;
        keyspace.replication = Replication::PerDatacenter(factors);
        self.schema_changed();
        Ok(())
    }

    /// The replication map as Cassandra prints it.
    pub(crate) fn replication_json(&self, name: &str) -> Option<Value> {
        let keyspace = self.keyspaces.get(name)?;
        let mut map = serde_json::Map::new();
        match &keyspace.replication {
            Replication::Local => {
                map.insert("class".into(), LOCAL_STRATEGY.into());
            }
            Replication::Simple(factor) => {
                map.insert("class".into(), SIMPLE_STRATEGY.into());
                map.insert("replication_factor".into(), factor.to_string().into());
            }
            Replication::PerDatacenter(factors) => {
                map.insert("class".into(), NETWORK_TOPOLOGY_STRATEGY.into());
                for (dc, factor) in factors {
                    map.insert(dc.clone(), factor.to_string().into());
                }
            }
        }
        Some(Value::Object(map))
    }

    pub(crate) fn tables(&self, keyspace: &str) -> Vec<String> {
        self.keyspaces
            .get(keyspace)
            .map(|ks| ks.tables.iter().cloned().collect())
            .unwrap_or_default()
    }

    pub(crate) fn create_table(&mut self, keyspace: &str, table: &str) -> Result<(), Refusal> {
        let ks = self.keyspaces.get_mut(keyspace).ok_or_else(|| {
            Refusal::new(
                400,
                format!("Table creation failed: keyspace '{keyspace}' does not exist"),
            )
        })?;
        if ks.tables.insert(table.to_string()) {
            self.schema_changed();
        }
        Ok(())
    }

    /// A new schema version, adopted at once by every live node.
    fn schema_changed(&mut self) {
        self.schema_version = self.random.uuid();
        for host in self.hosts.values_mut().filter(|host| host.alive) {
            host.schema = self.schema_version.clone();
        }
    }

    // ---- roles ----

    pub(crate) fn upsert_role(&mut self, role: FakeRole) {
        self.roles.insert(role.name.clone(), role);
    }

    pub(crate) fn drop_role(&mut self, name: &str) {
        self.roles.remove(name);
        self.identities.retain(|_, role| role != name);
    }

    pub(crate) fn role(&self, name: &str) -> Option<FakeRole> {
        self.roles.get(name).cloned()
    }

    pub(crate) fn roles_json(&self) -> Value {
        let roles: Vec<Value> = self
            .roles
            .values()
            .map(|role| {
                json!({"name": role.name, "super": role.superuser, "login": role.login,
                       "options": "{}", "datacenters": "ALL"})
            })
            .collect();
        Value::Array(roles)
    }

    pub(crate) fn map_identity(&mut self, identity: &str, role: &str) -> Result<(), Refusal> {
        if !self.roles.contains_key(role) {
            return Err(Refusal::new(400, format!("Role '{role}' does not exist")));
        }
        self.identities
            .insert(identity.to_string(), role.to_string());
        Ok(())
    }

    pub(crate) fn unmap_identity(&mut self, identity: &str) {
        self.identities.remove(identity);
    }

    pub(crate) fn identity_role(&self, identity: &str) -> Option<String> {
        self.identities.get(identity).cloned()
    }

    // ---- helpers ----

    fn node(&self, key: NodeKey) -> Result<&NodeRecord, Refusal> {
        self.nodes
            .get(&key)
            .ok_or_else(|| Refusal::new(500, "node is shutting down"))
    }

    fn node_mut(&mut self, key: NodeKey) -> Result<&mut NodeRecord, Refusal> {
        self.nodes
            .get_mut(&key)
            .ok_or_else(|| Refusal::new(500, "node is shutting down"))
    }
}

/// Milliseconds since the epoch.
pub(crate) fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |elapsed| {
            i64::try_from(elapsed.as_millis()).unwrap_or(i64::MAX)
        })
}

/// A small non-cryptographic generator for host IDs, job IDs and tokens.
#[derive(Debug)]
struct SplitMix(u64);

impl SplitMix {
    fn from_clock() -> Self {
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |elapsed| elapsed.as_nanos());
        // Fold the 128-bit count into the seed; distinct clusters in one process differ by time.
        Self((nanos as u64) ^ ((nanos >> 64) as u64) ^ 0x9E37_79B9_7F4A_7C15)
    }

    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A random (version 4) UUID in its usual text form.
    fn uuid(&mut self) -> String {
        let high = (self.next() & 0xFFFF_FFFF_FFFF_0FFF) | 0x0000_0000_0000_4000;
        let low = (self.next() & 0x3FFF_FFFF_FFFF_FFFF) | 0x8000_0000_0000_0000;
        format!(
            "{:08x}-{:04x}-{:04x}-{:04x}-{:012x}",
            high >> 32,
            (high >> 16) & 0xFFFF,
            high & 0xFFFF,
            low >> 48,
            low & 0xFFFF_FFFF_FFFF
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uuids_look_like_uuids_and_differ() {
        let mut random = SplitMix(1);
        let first = random.uuid();
        let second = random.uuid();
        assert_ne!(first, second);
        assert_eq!(first.len(), 36);
        assert_eq!(&first[14..15], "4");
        assert_eq!(first.matches('-').count(), 4);
    }

    #[test]
    fn job_json_uses_string_timestamps() {
        let mut job = JobRecord {
            id: "j".into(),
            job_type: "cleanup",
            status: JobStatus::Waiting,
            submit_ms: 5,
            end_ms: None,
            error: None,
            changes: vec![],
        };
        job.finish(None);
        let value = job.to_json();
        assert!(value["submit_time"].is_string());
        assert!(value["end_time"].is_string());
        assert_eq!(value["status"], "COMPLETED");
        let parsed: crate::model::job::Job = serde_json::from_value(value).unwrap();
        assert_eq!(parsed.submit_time, Some(5));
    }
}
