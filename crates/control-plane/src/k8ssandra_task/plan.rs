//! The plan step (pure): from where each datacenter's CassandraTask stands, what this pass does
//! with it. `Forbid` runs the datacenters one after the other in the task's order and stops at
//! the first failure; `Allow` runs them all at once. A datacenter whose cluster cannot be reached
//! is waited for, never skipped: the task does not finish without it.

use k8ssandra_api::{
    conditions::{self, Condition},
    control::{CassandraTaskStatus, task_condition},
};

/// Where one datacenter's CassandraTask stands, as the caches (or, while its cluster cannot be
/// reached, the K8ssandraTask's own record) tell it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DcState {
    /// Not made yet, and its cluster can be written.
    Absent,
    /// Made, and not finished.
    Running,
    /// Finished; with the failure's message when it failed.
    Finished {
        /// The Failed condition's message of a task that failed.
        failure: Option<String>,
    },
    /// Its cluster cannot be used: why, naming the context.
    Unreachable(String),
    /// A CassandraTask of that name exists and is not this K8ssandraTask's: which.
    Conflict(String),
}

/// What this pass does with, or says of, one datacenter.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Standing {
    /// Its task finished (with the failure's message when it failed).
    Done {
        /// The failure's message.
        failure: Option<String>,
    },
    /// Its task runs.
    Running,
    /// Its task is to be created now.
    Create,
    /// Its task could not be created: the API server's answer.
    CreateFailed(String),
    /// Waits for this earlier datacenter (`Forbid`).
    WaitingFor(String),
    /// Not started, and never will be: this earlier datacenter's task failed (`Forbid`).
    Stopped {
        /// The datacenter that failed.
        after: String,
    },
    /// Its cluster cannot be used: why.
    Unreachable(String),
    /// Its task's name is taken: by what.
    Conflict(String),
}

impl Standing {
    /// Whether nothing more will happen to this datacenter.
    #[must_use]
    pub fn is_over(&self) -> bool {
        matches!(self, Self::Done { .. } | Self::Stopped { .. })
    }
}

/// Whether a CassandraTask's status says it finished: `Some(failure)` when it did, with the
/// Failed condition's message when it failed.
#[must_use]
pub fn finished(status: &CassandraTaskStatus) -> Option<Option<String>> {
    let list = status.conditions.as_deref().unwrap_or_default();
    let complete = conditions::find(list, task_condition::COMPLETE).is_some_and(Condition::is_true);
    if status.completion_time.is_none() && !complete {
        return None;
    }
    let failure = conditions::find(list, task_condition::FAILED)
        .filter(|c| c.is_true())
        .map(|c| {
            c.message
                .clone()
                .filter(|m| !m.is_empty())
                .unwrap_or_else(|| c.reason.clone().unwrap_or_else(|| "failed".to_owned()))
        });
    Some(failure)
}

/// The standing of each datacenter (`states` and `names` in the task's order).
#[must_use]
pub fn plan(names: &[String], states: &[DcState], concurrent: bool) -> Vec<Standing> {
    if concurrent {
        return states.iter().map(on_its_own).collect();
    }
    // The first datacenter that holds up the later ones: still under way, or failed.
    let mut blocker: Option<Blocker> = None;
    names
        .iter()
        .zip(states)
        .map(|(name, state)| {
            match (&blocker, state) {
                // Ran already (the policy was Allow once, or the record says so).
                (Some(_), DcState::Finished { failure }) => Standing::Done {
                    failure: failure.clone(),
                },
                (Some(_), DcState::Running) => Standing::Running,
                (Some(_), DcState::Conflict(what)) => Standing::Conflict(what.clone()),
                (Some(Blocker::Failed(after)), _) => Standing::Stopped {
                    after: after.clone(),
                },
                (Some(Blocker::Waiting(earlier)), _) => Standing::WaitingFor(earlier.clone()),
                (None, state) => {
                    let standing = on_its_own(state);
                    blocker = match &standing {
                        Standing::Done { failure: None } => None,
                        Standing::Done { failure: Some(_) } => Some(Blocker::Failed(name.clone())),
                        _ => Some(Blocker::Waiting(name.clone())),
                    };
                    standing
                }
            }
        })
        .collect()
}

enum Blocker {
    Waiting(String),
    Failed(String),
}

fn on_its_own(state: &DcState) -> Standing {
    match state {
        DcState::Absent => Standing::Create,
        DcState::Running => Standing::Running,
        DcState::Finished { failure } => Standing::Done {
            failure: failure.clone(),
        },
        DcState::Unreachable(why) => Standing::Unreachable(why.clone()),
        DcState::Conflict(what) => Standing::Conflict(what.clone()),
    }
}

#[cfg(test)]
mod tests {
    use k8ssandra_api::conditions::ConditionStatus;

    use super::*;

    fn names() -> Vec<String> {
        vec!["dc2".into(), "dc1".into(), "dc3".into()]
    }

    fn ok() -> DcState {
        DcState::Finished { failure: None }
    }

    fn failed() -> DcState {
        DcState::Finished {
            failure: Some("boom".into()),
        }
    }

    #[test]
    fn forbid_starts_only_the_first_unfinished_datacenter_in_the_tasks_order() {
        let states = [DcState::Absent, DcState::Absent, DcState::Absent];
        assert_eq!(
            plan(&names(), &states, false),
            [
                Standing::Create,
                Standing::WaitingFor("dc2".into()),
                Standing::WaitingFor("dc2".into())
            ]
        );
        let states = [ok(), DcState::Running, DcState::Absent];
        assert_eq!(
            plan(&names(), &states, false),
            [
                Standing::Done { failure: None },
                Standing::Running,
                Standing::WaitingFor("dc1".into())
            ]
        );
        let states = [ok(), ok(), DcState::Absent];
        assert_eq!(plan(&names(), &states, false)[2], Standing::Create);
    }

    #[test]
    fn forbid_stops_at_the_first_failure() {
        let states = [failed(), DcState::Absent, DcState::Absent];
        let standings = plan(&names(), &states, false);
        assert_eq!(
            standings[1..],
            [
                Standing::Stopped {
                    after: "dc2".into()
                },
                Standing::Stopped {
                    after: "dc2".into()
                }
            ]
        );
        assert!(standings.iter().all(Standing::is_over));
    }

    #[test]
    fn forbid_waits_for_an_unreachable_datacenter_instead_of_skipping_it() {
        let states = [
            DcState::Unreachable("ctx-2: down".into()),
            DcState::Absent,
            DcState::Absent,
        ];
        let standings = plan(&names(), &states, false);
        assert_eq!(standings[0], Standing::Unreachable("ctx-2: down".into()));
        assert_eq!(standings[1], Standing::WaitingFor("dc2".into()));
        assert!(!standings.iter().all(Standing::is_over));
    }

    #[test]
    fn allow_starts_every_datacenter_and_runs_on_past_failures_and_outages() {
        let states = [
            failed(),
            DcState::Unreachable("down".into()),
            DcState::Absent,
        ];
        assert_eq!(
            plan(&names(), &states, true),
            [
                Standing::Done {
                    failure: Some("boom".into())
                },
                Standing::Unreachable("down".into()),
                Standing::Create
            ]
        );
    }

    #[test]
    fn a_task_finishes_when_it_has_a_completion_time_or_is_complete() {
        let mut status = CassandraTaskStatus::default();
        assert_eq!(finished(&status), None);
        let mut list = Vec::new();
        let now = k8ssandra_reconcile::scope::now();
        conditions::set(
            &mut list,
            Condition::new(
                task_condition::COMPLETE,
                ConditionStatus::True,
                "Done",
                "done",
            ),
            &now,
        );
        status.conditions = Some(list.clone());
        assert_eq!(finished(&status), Some(None));
        conditions::set(
            &mut list,
            Condition::new(
                task_condition::FAILED,
                ConditionStatus::True,
                "PodFailed",
                "pod x: 500",
            ),
            &now,
        );
        status.conditions = Some(list);
        assert_eq!(finished(&status), Some(Some("pod x: 500".into())));
    }
}
