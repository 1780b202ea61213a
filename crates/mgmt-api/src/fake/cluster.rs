//! [`FakeCluster`]: the shared state of one simulated Cassandra cluster, and its delayed work.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use tokio::sync::{mpsc, oneshot};

use crate::fake::FakeError;
use crate::fake::calls::CallLog;
use crate::fake::config::FakeClusterConfig;
use crate::fake::events::NodeEvent;
use crate::fake::server::{FakeNode, NodeSpec};
use crate::fake::state::{ClusterState, FakeRole, Scheduled};
use crate::model::endpoints::{EndpointStates, EndpointsBody};
use crate::model::keyspace::KeyspaceReplication;

/// State shared by every node of a cluster.
#[derive(Debug)]
pub(crate) struct Shared {
    state: Mutex<ClusterState>,
}

impl Shared {
    /// The state. Never held across an await.
    pub(crate) fn lock(&self) -> MutexGuard<'_, ClusterState> {
        // A panicking test thread must not wedge every other node.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// Runs `work` after its delay (and its release, when stalled); the receiver gets the outcome.
/// Must not be called while holding the lock.
pub(crate) fn schedule(
    shared: &Arc<Shared>,
    work: Scheduled,
) -> oneshot::Receiver<Result<(), String>> {
    let (done, outcome) = oneshot::channel();
    // Register the stall now, so a release that comes before the delay ends is not lost.
    let gate = match (work.stall, work.node) {
        (Some(route), Some((key, _))) => Some(shared.lock().stall(key, route)),
        _ => None,
    };
    let shared = Arc::clone(shared);
    tokio::spawn(async move {
        tokio::time::sleep(work.after).await;
        if let Some(gate) = gate
            && gate.await.is_err()
        {
            let _ = done.send(Err("interrupted: the node stopped".into()));
            return;
        }
        let (result, more) = shared.lock().apply(work);
        for next in more {
            drop(schedule(&shared, next));
        }
        let _ = done.send(result);
    });
    outcome
}

/// One simulated Cassandra cluster: gossip, schema, roles. Its nodes may live in several
/// datacenters and several Kubernetes clusters. Cheap to clone; clones share the cluster.
#[derive(Debug, Clone)]
pub struct FakeCluster {
    shared: Arc<Shared>,
}

impl Default for FakeCluster {
    fn default() -> Self {
        Self::new(FakeClusterConfig::default())
    }
}

impl FakeCluster {
    /// An empty cluster with Cassandra's system keyspaces and the default `cassandra` role.
    pub fn new(config: FakeClusterConfig) -> Self {
        Self {
            shared: Arc::new(Shared {
                state: Mutex::new(ClusterState::new(config)),
            }),
        }
    }

    /// The cluster's settings.
    pub fn config(&self) -> FakeClusterConfig {
        self.shared.lock().config.clone()
    }

    /// Starts the Management API server of a node (Cassandra itself waits for `lifecycle/start`).
    pub async fn start_node(&self, spec: NodeSpec) -> Result<FakeNode, FakeError> {
        FakeNode::start(Arc::clone(&self.shared), spec).await
    }

    /// Readiness changes of every node, from now on.
    pub fn subscribe(&self) -> mpsc::UnboundedReceiver<NodeEvent> {
        self.shared.lock().subscribe()
    }

    /// The gossip view (no entry is local).
    pub fn endpoints(&self) -> EndpointStates {
        let value = self.shared.lock().endpoints_snapshot();
        serde_json::from_value::<EndpointsBody>(value)
            .map(EndpointStates::from)
            .unwrap_or_default()
    }

    /// Every exit of a Cassandra process right after `lifecycle/start`, in order: the pod, and
    /// why, as its log would say (e.g. no seed it knows is up).
    pub fn exits(&self) -> Vec<(String, String)> {
        self.shared.lock().exit_history()
    }

    /// Every request any node of the cluster received.
    pub fn calls(&self) -> CallLog {
        CallLog {
            calls: self.shared.lock().calls(),
        }
    }

    /// Creates a NetworkTopologyStrategy keyspace directly, as a test fixture.
    pub fn create_keyspace(&self, name: &str, factors: &[(&str, u32)]) {
        let factors: BTreeMap<String, u32> = factors
            .iter()
            .map(|(dc, factor)| ((*dc).to_string(), *factor))
            .collect();
        self.shared.lock().insert_keyspace(name, factors);
    }

    /// The replication of a keyspace.
    pub fn keyspace_replication(&self, name: &str) -> Option<KeyspaceReplication> {
        let value = self.shared.lock().replication_json(name)?;
        serde_json::from_value(value).ok()
    }

    /// A role of the role store.
    pub fn role(&self, name: &str) -> Option<FakeRole> {
        self.shared.lock().role(name)
    }

    /// The role an identity maps to.
    pub fn identity_role(&self, identity: &str) -> Option<String> {
        self.shared.lock().identity_role(identity)
    }
}
