//! Leader election through a `coordination.k8s.io/v1` Lease, as client-go does it: one replica
//! holds the Lease and renews it; the others watch its record and take it once it has not
//! changed for a whole lease duration (measured on their own clock, so clocks need not agree).
//! A leader that cannot renew within the renew deadline stops leading; one that shuts down
//! releases the Lease, so that another takes over at once.

use std::time::{Duration, Instant};

use k8s_openapi::{
    api::coordination::v1::{Lease, LeaseSpec},
    apimachinery::pkg::apis::meta::v1::MicroTime,
    jiff::Timestamp,
};
use kube::{
    Api, Client,
    api::{ObjectMeta, PostParams},
};
use prometheus_client::{metrics::gauge::Gauge, registry::Registry};

/// Timings of the election.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Timings {
    /// How long a Lease not renewed stays its holder's.
    pub lease_duration: Duration,
    /// How long a leader tries to renew before it gives up leading.
    pub renew_deadline: Duration,
    /// Pause between two attempts.
    pub retry_period: Duration,
}

impl Default for Timings {
    /// client-go's defaults: 15 s, 10 s, 2 s.
    fn default() -> Self {
        Self {
            lease_duration: Duration::from_secs(15),
            renew_deadline: Duration::from_secs(10),
            retry_period: Duration::from_secs(2),
        }
    }
}

/// What a candidate does with the Lease as it reads it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Decision {
    /// Take it (absent, released, expired, or its own): `transitions` is the count to write.
    Take {
        /// `leaseTransitions` to write.
        transitions: i32,
    },
    /// Another holds it.
    Wait {
        /// The holder.
        holder: String,
    },
}

/// The decision (pure). `unchanged_for` is how long this candidate has seen the record
/// unchanged.
#[must_use]
pub fn decide(
    spec: Option<&LeaseSpec>,
    me: &str,
    unchanged_for: Duration,
    lease_duration: Duration,
) -> Decision {
    let Some(spec) = spec else {
        return Decision::Take { transitions: 0 };
    };
    let holder = spec.holder_identity.clone().unwrap_or_default();
    let transitions = spec.lease_transitions.unwrap_or(0);
    let duration = spec
        .lease_duration_seconds
        .and_then(|s| u64::try_from(s).ok())
        .map_or(lease_duration, Duration::from_secs);
    if holder == me {
        return Decision::Take { transitions };
    }
    if holder.is_empty() || unchanged_for >= duration {
        return Decision::Take {
            transitions: transitions.saturating_add(1),
        };
    }
    Decision::Wait { holder }
}

/// Why the election stopped.
#[derive(Debug, thiserror::Error)]
pub enum LeaderError {
    /// Leading was lost: the Lease could not be renewed in time.
    #[error("lost the leader Lease {namespace}/{name}: not renewed for {after:?} ({last_error})")]
    Lost {
        /// Namespace of the Lease.
        namespace: String,
        /// Its name.
        name: String,
        /// How long renewals failed.
        after: Duration,
        /// The last failure.
        last_error: String,
    },
}

/// One candidate of the election.
pub struct Elector {
    api: Api<Lease>,
    namespace: String,
    name: String,
    identity: String,
    timings: Timings,
    leader: Gauge,
    /// The record last seen, and since when (local clock).
    seen: Option<(LeaseSpec, Instant)>,
}

impl Elector {
    /// A candidate `identity` for Lease `namespace/name`; registers the gauge `leader` (1 while
    /// this process leads).
    pub fn new(
        client: Client,
        namespace: &str,
        name: &str,
        identity: &str,
        timings: Timings,
        registry: &mut Registry,
    ) -> Self {
        let leader = Gauge::default();
        registry.register(
            "leader",
            "1 while this process holds the leader Lease, else 0",
            leader.clone(),
        );
        Self {
            api: Api::namespaced(client, namespace),
            namespace: namespace.to_owned(),
            name: name.to_owned(),
            identity: identity.to_owned(),
            timings,
            leader,
            seen: None,
        }
    }

    fn now() -> MicroTime {
        MicroTime(Timestamp::now())
    }

    /// One attempt: `Ok(true)` when this candidate holds the Lease after it.
    async fn try_take(&mut self) -> Result<bool, kube::Error> {
        let current = self.api.get_opt(&self.name).await?;
        let spec = current.as_ref().and_then(|l| l.spec.clone());
        let unchanged_for = match (&self.seen, &spec) {
            (Some((seen, since)), Some(now)) if seen == now => since.elapsed(),
            _ => {
                if let Some(now) = &spec {
                    self.seen = Some((now.clone(), Instant::now()));
                }
                Duration::ZERO
            }
        };
        let transitions = match decide(
            spec.as_ref(),
            &self.identity,
            unchanged_for,
            self.timings.lease_duration,
        ) {
            Decision::Take { transitions } => transitions,
            Decision::Wait { .. } => return Ok(false),
        };
        let held = spec
            .as_ref()
            .is_some_and(|s| s.holder_identity.as_deref() == Some(&self.identity));
        let wanted = LeaseSpec {
            holder_identity: Some(self.identity.clone()),
            lease_duration_seconds: i32::try_from(self.timings.lease_duration.as_secs()).ok(),
            acquire_time: if held {
                spec.as_ref().and_then(|s| s.acquire_time.clone())
            } else {
                Some(Self::now())
            },
            renew_time: Some(Self::now()),
            lease_transitions: Some(transitions),
            ..LeaseSpec::default()
        };
        let written = match current {
            None => {
                let lease = Lease {
                    metadata: ObjectMeta {
                        name: Some(self.name.clone()),
                        namespace: Some(self.namespace.clone()),
                        ..ObjectMeta::default()
                    },
                    spec: Some(wanted),
                };
                self.api.create(&PostParams::default(), &lease).await
            }
            // The resourceVersion makes it a compare-and-swap: of two candidates, one wins.
            Some(mut lease) => {
                lease.spec = Some(wanted);
                self.api
                    .replace(&self.name, &PostParams::default(), &lease)
                    .await
            }
        };
        match written {
            Ok(lease) => {
                if let Some(spec) = lease.spec {
                    self.seen = Some((spec, Instant::now()));
                }
                Ok(true)
            }
            Err(kube::Error::Api(status)) if status.code == 409 => Ok(false),
            Err(error) => Err(error),
        }
    }

    /// Waits until this candidate leads.
    pub async fn acquire(&mut self) {
        loop {
            match self.try_take().await {
                Ok(true) => {
                    self.leader.set(1);
                    tracing::info!(lease = %self.name, identity = %self.identity, "leading");
                    return;
                }
                Ok(false) => {
                    tracing::debug!(lease = %self.name, "another replica leads: waiting");
                }
                Err(error) => tracing::warn!(lease = %self.name, %error, "leader election"),
            }
            tokio::time::sleep(self.timings.retry_period).await;
        }
    }

    /// Renews the Lease until renewals fail for the renew deadline; returns why leading ended.
    pub async fn keep(&mut self) -> LeaderError {
        let mut failing_since: Option<(Instant, String)> = None;
        loop {
            tokio::time::sleep(self.timings.retry_period).await;
            match self.try_take().await {
                Ok(true) => failing_since = None,
                outcome => {
                    let error = match outcome {
                        Ok(_) => "another replica holds the Lease".to_owned(),
                        Err(error) => error.to_string(),
                    };
                    let since = failing_since
                        .get_or_insert_with(|| (Instant::now(), error.clone()))
                        .0;
                    // Taken by another: stop at once, two leaders must never act.
                    let taken = error.starts_with("another replica");
                    if taken || since.elapsed() >= self.timings.renew_deadline {
                        self.leader.set(0);
                        return LeaderError::Lost {
                            namespace: self.namespace.clone(),
                            name: self.name.clone(),
                            after: since.elapsed(),
                            last_error: error,
                        };
                    }
                }
            }
        }
    }

    /// Gives the Lease up (on shutdown), so that another replica takes it at once.
    pub async fn release(&mut self) {
        self.leader.set(0);
        let Ok(Some(mut lease)) = self.api.get_opt(&self.name).await else {
            return;
        };
        let Some(spec) = lease.spec.as_mut() else {
            return;
        };
        if spec.holder_identity.as_deref() != Some(&self.identity) {
            return;
        }
        spec.holder_identity = None;
        spec.lease_duration_seconds = Some(1);
        spec.renew_time = Some(Self::now());
        match self
            .api
            .replace(&self.name, &PostParams::default(), &lease)
            .await
        {
            Ok(_) => tracing::info!(lease = %self.name, "leader Lease released"),
            Err(error) => tracing::warn!(lease = %self.name, %error, "releasing the leader Lease"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(holder: &str, transitions: i32) -> LeaseSpec {
        LeaseSpec {
            holder_identity: (!holder.is_empty()).then(|| holder.to_owned()),
            lease_duration_seconds: Some(15),
            lease_transitions: Some(transitions),
            ..LeaseSpec::default()
        }
    }

    const FIFTEEN: Duration = Duration::from_secs(15);

    #[test]
    fn an_absent_released_or_own_lease_is_taken() {
        assert_eq!(
            decide(None, "a", Duration::ZERO, FIFTEEN),
            Decision::Take { transitions: 0 }
        );
        assert_eq!(
            decide(Some(&spec("", 3)), "a", Duration::ZERO, FIFTEEN),
            Decision::Take { transitions: 4 }
        );
        assert_eq!(
            decide(Some(&spec("a", 3)), "a", Duration::ZERO, FIFTEEN),
            Decision::Take { transitions: 3 }
        );
    }

    #[test]
    fn anothers_lease_is_taken_only_once_unchanged_for_its_duration() {
        assert_eq!(
            decide(Some(&spec("b", 1)), "a", Duration::from_secs(14), FIFTEEN),
            Decision::Wait { holder: "b".into() }
        );
        assert_eq!(
            decide(Some(&spec("b", 1)), "a", Duration::from_secs(15), FIFTEEN),
            Decision::Take { transitions: 2 }
        );
        let mut short = spec("b", 1);
        short.lease_duration_seconds = Some(1);
        assert_eq!(
            decide(Some(&short), "a", Duration::from_secs(1), FIFTEEN),
            Decision::Take { transitions: 2 },
            "the duration the holder wrote counts"
        );
    }
}
