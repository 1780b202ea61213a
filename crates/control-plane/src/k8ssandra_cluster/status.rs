//! The status step (pure, apart from [`write`]): each datacenter's CassandraDatacenter status
//! copied from its cluster (upstream's `status.datacenters[dc].cassandra`), and conditions that
//! say in one place what the whole cluster is doing, naming the datacenter, its cluster and why:
//!
//! - `Valid`: whether the spec can be acted on;
//! - `Ready`: every datacenter is Ready (or stopped, as asked);
//! - `Progressing`: a datacenter is being created, changed, or waits for another;
//! - `Degraded`: a datacenter's cluster is unreachable, its write failed, or it is refused;
//! - `CassandraInitialized` (upstream's): every datacenter was Ready once; never reset;
//! - `RequiresUpdate` (upstream's): the operator would build a datacenter differently, and waits
//!   for `k8ssandra.io/autoupdate-spec`.

use k8ssandra_api::{
    cassandra::{CassandraDatacenter, ProgressState, condition as dc_condition},
    conditions::{self, Condition, ConditionStatus},
    k8ssandra::{K8ssandraCluster, K8ssandraClusterStatus, condition},
};

use super::{
    datacenters::Outcome,
    observe::{Live, Observed, display_context},
    operations::Operations,
};

/// `Progressing`.
pub const PROGRESSING: &str = "Progressing";
/// `Degraded`.
pub const DEGRADED: &str = "Degraded";

/// Whether a CassandraDatacenter is Ready for the spec it has: upstream's Ready condition and
/// progress, for its current generation.
#[must_use]
pub fn datacenter_ready(dc: &CassandraDatacenter) -> bool {
    let Some(status) = dc.status.as_ref() else {
        return false;
    };
    let ready = status
        .conditions
        .as_deref()
        .and_then(|c| conditions::find(c, dc_condition::READY))
        .is_some_and(Condition::is_true);
    ready
        && status.cassandra_operator_progress == Some(ProgressState::Ready)
        && status.observed_generation >= dc.metadata.generation
}

/// Whether a CassandraDatacenter is stopped as its spec asks.
#[must_use]
pub fn stopped(dc: &CassandraDatacenter) -> bool {
    dc.spec.stopped == Some(true)
        && dc
            .status
            .as_ref()
            .and_then(|s| s.conditions.as_deref())
            .and_then(|c| conditions::find(c, dc_condition::STOPPED))
            .is_some_and(Condition::is_true)
}

/// Where one datacenter stands.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Standing {
    Ready,
    Stopped,
    Progressing(String),
    Degraded(String),
}

fn standing(name: &str, context: &str, outcome: &Outcome, live: &Live) -> Standing {
    let at = format!("{name} in {}", display_context(context));
    match outcome {
        Outcome::Unreachable(problem) => Standing::Degraded(format!("{name} in {problem}")),
        Outcome::Conflict(why) => Standing::Degraded(format!("{at}: {why}")),
        Outcome::Failed(error) => Standing::Degraded(format!("{at}: could not apply: {error}")),
        Outcome::SeedsFailed(error) => {
            Standing::Degraded(format!("{at}: could not write its seeds: {error}"))
        }
        Outcome::WaitingFor(other) => {
            Standing::Progressing(format!("{name}: waiting for {other} to be ready"))
        }
        Outcome::WaitingForSecret => Standing::Progressing(format!(
            "{at}: waiting for the superuser Secret to be replicated"
        )),
        Outcome::Applied | Outcome::Current | Outcome::RequiresUpdate => match live {
            Live::Ours(dc) if datacenter_ready(dc) && *outcome != Outcome::Applied => {
                Standing::Ready
            }
            Live::Ours(dc) if stopped(dc) => Standing::Stopped,
            Live::Ours(dc) => {
                if let Some(refused) = dc
                    .status
                    .as_ref()
                    .and_then(|s| s.conditions.as_deref())
                    .and_then(|c| conditions::find(c, dc_condition::VALID))
                    .filter(|c| c.status == ConditionStatus::False)
                {
                    return Standing::Degraded(format!(
                        "{at}: refused by the data plane: {}",
                        refused.message.clone().unwrap_or_default()
                    ));
                }
                let ready = dc.status.as_ref().and_then(|s| s.ready_nodes).unwrap_or(0);
                Standing::Progressing(format!("{at}: {ready}/{} nodes ready", dc.spec.size))
            }
            _ => Standing::Progressing(format!("{at}: being created")),
        },
    }
}

/// The status the cluster should have after this pass. `problems` are the validation's (the
/// datacenters were then left alone); `outcomes` are in the order of `observed.datacenters`;
/// `ops` what the cluster-wide operations report.
#[must_use]
pub fn desired_status(
    cluster: &K8ssandraCluster,
    observed: &Observed,
    problems: &[String],
    outcomes: &[Outcome],
    ops: &Operations,
    now: &k8s_openapi::apimachinery::pkg::apis::meta::v1::Time,
) -> K8ssandraClusterStatus {
    let current = cluster.status.clone().unwrap_or_default();
    let generation = cluster.metadata.generation;
    let mut list = current.conditions.clone().unwrap_or_default();
    let mut put = |type_: &str, status: ConditionStatus, reason: &str, message: String| {
        let mut condition = Condition::new(type_, status, reason, message);
        condition.observed_generation = generation;
        conditions::set(&mut list, condition, now);
    };
    let (yes, no) = (ConditionStatus::True, ConditionStatus::False);

    let mut datacenters = current.datacenters.clone().unwrap_or_default();
    let spec_refused = !problems.is_empty();
    // While the spec is refused, nothing is known of removals: their entries stay as they are.
    datacenters.retain(|name, entry| {
        observed.datacenters.iter().any(|d| d.name == *name)
            || ops.removals.contains_key(name)
            || (spec_refused && entry.decommission_progress.is_some())
    });
    for dc in &observed.datacenters {
        let entry = datacenters.entry(dc.name.clone()).or_default();
        entry.context_name = Some(dc.context.clone());
        entry.decommission_progress = None;
        if let Live::Ours(live) = &dc.live {
            entry.cassandra = live.status.clone();
        }
        if !spec_refused {
            entry.rebuild = ops.rebuilds.get(&dc.name).cloned();
        }
    }
    for (name, removal) in &ops.removals {
        let entry = datacenters.entry(name.clone()).or_default();
        entry.context_name = Some(removal.context.clone());
        entry.decommission_progress = Some(removal.progress.clone());
        entry.cassandra = removal.cassandra.clone();
        entry.rebuild = None;
    }
    let total = observed.datacenters.len();
    let system_replication = ops
        .system_replication
        .clone()
        .or_else(|| current.system_replication.clone());

    if spec_refused {
        let message = problems.join("; ");
        put(condition::VALID, no, "Invalid", message.clone());
        put(
            condition::READY,
            no,
            "Invalid",
            format!("the spec is refused: {message}"),
        );
        put(
            PROGRESSING,
            no,
            "Invalid",
            "nothing is applied while the spec is refused".to_owned(),
        );
        return K8ssandraClusterStatus {
            conditions: Some(list),
            datacenters: Some(datacenters).filter(|d| !d.is_empty()),
            error: Some(message),
            observed_generation: generation,
            ready_datacenters: Some(format!("{}/{total}", ready_count(observed))),
            system_replication,
        };
    }
    if ops.problems.is_empty() {
        put(
            condition::VALID,
            yes,
            "Valid",
            "the spec can be acted on".to_owned(),
        );
    } else {
        put(condition::VALID, no, "Refused", ops.problems.join("; "));
    }

    let standings: Vec<Standing> = observed
        .datacenters
        .iter()
        .zip(outcomes)
        .map(|(dc, outcome)| {
            match standing(&dc.name, &dc.context, outcome, &dc.live) {
                // Ready, but still streaming its data in: the operations say how far.
                Standing::Ready if ops.rebuilds.contains_key(&dc.name) => {
                    Standing::Progressing(String::new())
                }
                other => other,
            }
        })
        .collect();
    let ready = standings
        .iter()
        .filter(|s| matches!(s, Standing::Ready))
        .count();
    let settled = standings
        .iter()
        .filter(|s| matches!(s, Standing::Ready | Standing::Stopped))
        .count();
    let messages = |pick: fn(&Standing) -> Option<&String>| -> Vec<String> {
        standings
            .iter()
            .filter_map(pick)
            .filter(|m| !m.is_empty())
            .cloned()
            .collect()
    };
    let mut progressing = messages(|s| match s {
        Standing::Progressing(m) => Some(m),
        _ => None,
    });
    progressing.extend(ops.progressing.iter().cloned());
    let mut degraded = messages(|s| match s {
        Standing::Degraded(m) => Some(m),
        _ => None,
    });
    degraded.extend(ops.degraded.iter().cloned());
    let stopped: Vec<String> = observed
        .datacenters
        .iter()
        .zip(&standings)
        .filter(|(_, s)| **s == Standing::Stopped)
        .map(|(dc, _)| dc.name.clone())
        .collect();

    let removing = !ops.removals.is_empty();
    if settled == total && total > 0 && !removing {
        let mut message = format!("{ready}/{total} datacenters ready");
        if !stopped.is_empty() {
            message.push_str(&format!(", {} stopped as asked", stopped.join(", ")));
        }
        put(condition::READY, yes, "Ready", message);
        if stopped.is_empty() {
            put(
                condition::CASSANDRA_INITIALIZED,
                yes,
                "Initialized",
                "every datacenter was ready".to_owned(),
            );
        }
    } else {
        let mut reasons = degraded.clone();
        reasons.extend(progressing.iter().cloned());
        let reason = if degraded.is_empty() {
            "NotReady"
        } else {
            "Degraded"
        };
        put(condition::READY, no, reason, reasons.join("; "));
    }
    if progressing.is_empty() {
        put(
            PROGRESSING,
            no,
            "Settled",
            "nothing is being changed".to_owned(),
        );
    } else {
        put(PROGRESSING, yes, "Progressing", progressing.join("; "));
    }
    if degraded.is_empty() {
        put(
            DEGRADED,
            no,
            "Healthy",
            "every datacenter's cluster answers".to_owned(),
        );
    } else {
        put(DEGRADED, yes, "Degraded", degraded.join("; "));
    }
    let waiting: Vec<&str> = observed
        .datacenters
        .iter()
        .zip(outcomes)
        .filter(|(_, o)| **o == Outcome::RequiresUpdate)
        .map(|(dc, _)| dc.name.as_str())
        .collect();
    if waiting.is_empty() {
        put(
            condition::REQUIRES_UPDATE,
            no,
            "UpToDate",
            "every datacenter is as this operator builds it".to_owned(),
        );
    } else {
        put(
            condition::REQUIRES_UPDATE,
            yes,
            "OperatorChanged",
            format!(
                "this operator builds {} differently; annotate the K8ssandraCluster with \
                 k8ssandra.io/autoupdate-spec=once to apply (the nodes restart)",
                waiting.join(", ")
            ),
        );
    }
    let mut ready_datacenters = format!("{ready}/{total}");
    if !stopped.is_empty() {
        ready_datacenters.push_str(&format!(" ({} stopped)", stopped.len()));
    }
    K8ssandraClusterStatus {
        conditions: Some(list),
        datacenters: Some(datacenters).filter(|d| !d.is_empty()),
        error: Some(
            degraded
                .first()
                .or(ops.problems.first())
                .cloned()
                .unwrap_or_else(|| "None".to_owned()),
        ),
        observed_generation: generation,
        ready_datacenters: Some(ready_datacenters),
        system_replication,
    }
}

fn ready_count(observed: &Observed) -> usize {
    observed
        .datacenters
        .iter()
        .filter(|d| matches!(&d.live, Live::Ours(dc) if datacenter_ready(dc)))
        .count()
}

/// The conditions whose change deserves an Event: (type, status) pairs, before and after.
#[must_use]
pub fn transitions(
    before: &K8ssandraClusterStatus,
    after: &K8ssandraClusterStatus,
) -> Vec<Condition> {
    let find = |status: &K8ssandraClusterStatus, type_: &str| {
        status
            .conditions
            .as_deref()
            .and_then(|c| conditions::find(c, type_))
            .cloned()
    };
    [condition::VALID, condition::READY, DEGRADED]
        .iter()
        .filter_map(|type_| {
            let now = find(after, type_)?;
            let was = find(before, type_);
            let changed = was
                .as_ref()
                .is_none_or(|w| w.status != now.status || w.message != now.message);
            changed.then_some(now)
        })
        .collect()
}
