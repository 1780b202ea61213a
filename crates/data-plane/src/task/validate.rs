//! Validate: what the task asks for, read once into an [`Operation`], or the reason it cannot run.
//! A task that cannot run ends `Failed` at once, with a message that names the field; it is never
//! retried, since only an edit of the task could change the answer.

use std::collections::BTreeMap;

use k8ssandra_api::control::{CassandraCommand, CassandraJob, CassandraTask, JobArguments};
use k8ssandra_mgmt_api::{KeyspaceRequest, TableOperation};

/// Why the task cannot run.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Problem {
    /// CamelCase reason of the `Failed` condition.
    pub reason: &'static str,
    /// What is wrong and how to fix it.
    pub message: String,
}

impl Problem {
    /// A problem with the given reason and message.
    #[must_use]
    pub fn new(reason: &'static str, message: impl Into<String>) -> Self {
        Self {
            reason,
            message: message.into(),
        }
    }
}

/// A Management API call made on each pod.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum NodeCall {
    /// A table operation: a v1 job when the server has the feature, else the blocking v0 call.
    Table(TableOperation),
    /// `rebuild` from another datacenter (v1 job only).
    Rebuild {
        /// Datacenter to stream from; Cassandra picks when unset.
        source_datacenter: Option<String>,
    },
    /// Reads each keyspace's replication and alters the ones that differ (on one node: the schema
    /// reaches every node).
    UpdateReplication(BTreeMap<String, BTreeMap<String, u32>>),
    /// Lists the keyspaces other than the system ones that replicate to the task's datacenter,
    /// and fails naming them (on one node).
    CheckDecommission,
}

impl NodeCall {
    /// Whether one node suffices: the call changes or reads the cluster's schema.
    #[must_use]
    pub fn one_node(&self) -> bool {
        matches!(self, Self::UpdateReplication(_) | Self::CheckDecommission)
    }
}

/// What the task does on each pod.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Operation {
    /// A Management API call per pod, polled as a job.
    Call(NodeCall),
    /// Delete each pod in turn and wait until it is back and ready.
    Restart,
    /// Replace the pod's node: the datacenter controller, asked through an annotation, deletes
    /// its volume and pod and starts the new node with `replace_ip` in the old one's place.
    Replace {
        /// The pod to replace.
        pod: String,
    },
}

/// The command's name as the task's YAML spells it.
#[must_use]
pub fn command_name(command: CassandraCommand) -> &'static str {
    match command {
        CassandraCommand::Cleanup => "cleanup",
        CassandraCommand::Rebuild => "rebuild",
        CassandraCommand::Restart => "restart",
        CassandraCommand::Upgradesstables => "upgradesstables",
        CassandraCommand::Replacenode => "replacenode",
        CassandraCommand::Compact => "compact",
        CassandraCommand::Scrub => "scrub",
        CassandraCommand::Move => "move",
        CassandraCommand::Garbagecollect => "garbagecollect",
        CassandraCommand::Flush => "flush",
        CassandraCommand::Refresh => "refresh",
        CassandraCommand::Tsreload => "tsreload",
        CassandraCommand::Updatereplication => "updatereplication",
        CassandraCommand::Checkdecommission => "checkdecommission",
    }
}

/// The task's job (the CRD allows at most one).
///
/// # Errors
/// When the task has no job.
pub fn job(task: &CassandraTask) -> Result<&CassandraJob, Problem> {
    task.spec
        .template
        .jobs
        .as_deref()
        .and_then(<[CassandraJob]>::first)
        .ok_or_else(|| Problem::new("NoJob", "spec.jobs is empty: the task has nothing to run"))
}

/// Reads what the task's job does.
///
/// # Errors
/// When the task has no job, its command is not supported, or its arguments do not fit it.
pub fn validate(task: &CassandraTask) -> Result<Operation, Problem> {
    if task
        .spec
        .datacenter
        .name
        .as_deref()
        .is_none_or(str::is_empty)
    {
        return Err(Problem::new(
            "InvalidDatacenter",
            "spec.datacenter.name is empty: name the CassandraDatacenter to run on",
        ));
    }
    // Namespaces are a boundary: whoever may create a task in one namespace must not reach the
    // nodes of another.
    let own_namespace = task.metadata.namespace.as_deref().unwrap_or_default();
    if let Some(namespace) = task
        .spec
        .datacenter
        .namespace
        .as_deref()
        .filter(|ns| !ns.is_empty() && *ns != own_namespace)
    {
        return Err(Problem::new(
            "CrossNamespace",
            format!(
                "spec.datacenter.namespace is {namespace:?}, but a task acts only on a \
                 datacenter of its own namespace {own_namespace:?}; create the task in \
                 namespace {namespace:?} instead"
            ),
        ));
    }
    let job = job(task)?;
    let args = job.args.clone().unwrap_or_default();
    let keyspace = || keyspace_request(&args);
    Ok(match job.command {
        CassandraCommand::Cleanup => {
            Operation::Call(NodeCall::Table(TableOperation::Cleanup(keyspace())))
        }
        CassandraCommand::Flush => {
            // Flush has no parallelism argument.
            let request = KeyspaceRequest {
                jobs: None,
                ..keyspace()
            };
            Operation::Call(NodeCall::Table(TableOperation::Flush(request)))
        }
        CassandraCommand::Upgradesstables => {
            Operation::Call(NodeCall::Table(TableOperation::UpgradeSstables {
                request: keyspace(),
                exclude_current_version: true,
            }))
        }
        CassandraCommand::Rebuild => Operation::Call(NodeCall::Rebuild {
            source_datacenter: args.source_datacenter.filter(|dc| !dc.is_empty()),
        }),
        CassandraCommand::Updatereplication => {
            Operation::Call(NodeCall::UpdateReplication(replication(&args)?))
        }
        CassandraCommand::Checkdecommission => Operation::Call(NodeCall::CheckDecommission),
        CassandraCommand::Restart => Operation::Restart,
        CassandraCommand::Replacenode => match args.pod_name.filter(|p| !p.is_empty()) {
            Some(pod) => Operation::Replace { pod },
            None => {
                return Err(Problem::new(
                    "InvalidArguments",
                    "replacenode needs args.pod_name",
                ));
            }
        },
        other => {
            return Err(Problem::new(
                "UnsupportedCommand",
                format!("command {} is not supported yet", command_name(other)),
            ));
        }
    })
}

/// The factors `args.replication` asks for: at least one keyspace, each with a datacenter, no
/// factor below 0.
fn replication(args: &JobArguments) -> Result<BTreeMap<String, BTreeMap<String, u32>>, Problem> {
    let invalid = |message: String| Problem::new("InvalidArguments", message);
    let wanted = args.replication.clone().unwrap_or_default();
    if wanted.is_empty() {
        return Err(invalid(
            "updatereplication needs args.replication: {keyspace: {datacenter: factor}}".into(),
        ));
    }
    let mut out = BTreeMap::new();
    for (keyspace, factors) in wanted {
        if keyspace.is_empty() || factors.is_empty() {
            return Err(invalid(format!(
                "args.replication[{keyspace:?}] must name a keyspace and at least one datacenter"
            )));
        }
        let mut converted = BTreeMap::new();
        for (dc, factor) in factors {
            let factor = u32::try_from(factor).map_err(|_| {
                invalid(format!(
                    "args.replication[{keyspace:?}][{dc:?}] is {factor}: a factor is 0 or more"
                ))
            })?;
            converted.insert(dc, factor);
        }
        out.insert(keyspace, converted);
    }
    Ok(out)
}

fn keyspace_request(args: &JobArguments) -> KeyspaceRequest {
    KeyspaceRequest {
        // Out of range means "as many as Cassandra likes", which is what leaving it out asks.
        jobs: args.jobs.and_then(|j| i32::try_from(j).ok()),
        keyspace_name: args.keyspace_name.clone().filter(|k| !k.is_empty()),
        tables: args.tables.clone().unwrap_or_default(),
    }
}

#[cfg(test)]
mod tests {
    use k8ssandra_api::control::{CassandraTaskSpec, CassandraTaskTemplate};

    use super::*;

    fn task(command: CassandraCommand, args: Option<JobArguments>) -> CassandraTask {
        CassandraTask::new(
            "t",
            CassandraTaskSpec {
                template: CassandraTaskTemplate {
                    jobs: Some(vec![CassandraJob {
                        name: "j".into(),
                        command,
                        args,
                    }]),
                    ..CassandraTaskTemplate::default()
                },
                datacenter: k8s_openapi::api::core::v1::ObjectReference {
                    name: Some("dc1".into()),
                    ..Default::default()
                },
            },
        )
    }

    #[test]
    fn cleanup_carries_its_keyspace_arguments() {
        let args = JobArguments {
            keyspace_name: Some("ks".into()),
            tables: Some(vec!["t1".into()]),
            jobs: Some(2),
            ..JobArguments::default()
        };
        assert_eq!(
            validate(&task(CassandraCommand::Cleanup, Some(args))),
            Ok(Operation::Call(NodeCall::Table(TableOperation::Cleanup(
                KeyspaceRequest {
                    jobs: Some(2),
                    keyspace_name: Some("ks".into()),
                    tables: vec!["t1".into()],
                }
            ))))
        );
    }

    #[test]
    fn flush_drops_the_parallelism() {
        let args = JobArguments {
            jobs: Some(4),
            ..JobArguments::default()
        };
        assert_eq!(
            validate(&task(CassandraCommand::Flush, Some(args))),
            Ok(Operation::Call(NodeCall::Table(TableOperation::Flush(
                KeyspaceRequest::default()
            ))))
        );
    }

    #[test]
    fn rebuild_and_restart_and_upgrade_are_supported() {
        let args = JobArguments {
            source_datacenter: Some("dc2".into()),
            ..JobArguments::default()
        };
        assert_eq!(
            validate(&task(CassandraCommand::Rebuild, Some(args))),
            Ok(Operation::Call(NodeCall::Rebuild {
                source_datacenter: Some("dc2".into())
            }))
        );
        assert_eq!(
            validate(&task(CassandraCommand::Restart, None)),
            Ok(Operation::Restart)
        );
        assert!(matches!(
            validate(&task(CassandraCommand::Upgradesstables, None)),
            Ok(Operation::Call(NodeCall::Table(
                TableOperation::UpgradeSstables { .. }
            )))
        ));
    }

    #[test]
    fn a_datacenter_of_another_namespace_is_refused() {
        let mut task = task(CassandraCommand::Restart, None);
        task.metadata.namespace = Some("tenant".into());
        task.spec.datacenter.namespace = Some("tenant".into());
        assert_eq!(validate(&task), Ok(Operation::Restart));
        task.spec.datacenter.namespace = Some("victim".into());
        let problem = validate(&task).unwrap_err();
        assert_eq!(problem.reason, "CrossNamespace");
        assert!(
            problem.message.contains("\"victim\""),
            "{}",
            problem.message
        );
        assert!(
            problem.message.contains("\"tenant\""),
            "{}",
            problem.message
        );
    }

    #[test]
    fn replacenode_needs_a_pod() {
        let problem = validate(&task(CassandraCommand::Replacenode, None)).unwrap_err();
        assert_eq!(problem.reason, "InvalidArguments");
        assert_eq!(problem.message, "replacenode needs args.pod_name");
        let args = JobArguments {
            pod_name: Some("p-0".into()),
            ..JobArguments::default()
        };
        assert_eq!(
            validate(&task(CassandraCommand::Replacenode, Some(args))),
            Ok(Operation::Replace { pod: "p-0".into() })
        );
    }

    #[test]
    fn other_commands_are_reported_unsupported() {
        for command in [
            CassandraCommand::Compact,
            CassandraCommand::Scrub,
            CassandraCommand::Move,
            CassandraCommand::Garbagecollect,
            CassandraCommand::Refresh,
            CassandraCommand::Tsreload,
        ] {
            let problem = validate(&task(command, None)).unwrap_err();
            assert_eq!(problem.reason, "UnsupportedCommand");
            assert_eq!(
                problem.message,
                format!("command {} is not supported yet", command_name(command))
            );
        }
    }

    #[test]
    fn updatereplication_reads_its_factors_and_refuses_bad_ones() {
        let args = |map: &[(&str, &[(&str, i32)])]| JobArguments {
            replication: Some(
                map.iter()
                    .map(|(ks, f)| {
                        (
                            (*ks).to_owned(),
                            f.iter().map(|(dc, n)| ((*dc).to_owned(), *n)).collect(),
                        )
                    })
                    .collect(),
            ),
            ..JobArguments::default()
        };
        let ok = validate(&task(
            CassandraCommand::Updatereplication,
            Some(args(&[("system_auth", &[("dc1", 3), ("dc3", 0)])])),
        ))
        .unwrap();
        let Operation::Call(call) = ok else {
            panic!("{ok:?}")
        };
        assert!(call.one_node());
        assert_eq!(
            call,
            NodeCall::UpdateReplication(BTreeMap::from([(
                "system_auth".to_owned(),
                BTreeMap::from([("dc1".to_owned(), 3), ("dc3".to_owned(), 0)])
            )]))
        );
        for bad in [
            args(&[]),
            args(&[("ks", &[])]),
            args(&[("ks", &[("dc1", -1)])]),
        ] {
            let problem =
                validate(&task(CassandraCommand::Updatereplication, Some(bad))).unwrap_err();
            assert_eq!(problem.reason, "InvalidArguments", "{}", problem.message);
        }
    }

    #[test]
    fn checkdecommission_runs_on_one_node() {
        let operation = validate(&task(CassandraCommand::Checkdecommission, None));
        assert_eq!(operation, Ok(Operation::Call(NodeCall::CheckDecommission)));
        assert!(matches!(operation, Ok(Operation::Call(call)) if call.one_node()));
    }

    #[test]
    fn a_task_names_its_datacenter() {
        let mut t = task(CassandraCommand::Cleanup, None);
        t.spec.datacenter.name = None;
        assert_eq!(validate(&t).unwrap_err().reason, "InvalidDatacenter");
    }

    #[test]
    fn a_task_without_job_cannot_run() {
        let mut t = task(CassandraCommand::Cleanup, None);
        t.spec.template.jobs = Some(vec![]);
        assert_eq!(validate(&t).unwrap_err().reason, "NoJob");
    }
}
