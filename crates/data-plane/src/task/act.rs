//! Act: carries out the plan of a task pass and updates the pod records to match. Management API
//! calls run in tasks of their own whose outcome later passes read from
//! [`TaskCalls`](super::operations::TaskCalls); pod and claim deletions happen here. Every step on a
//! pod is reported as an Event on the task.

use std::collections::BTreeMap;

use k8s_openapi::{api::core::v1::Pod, apimachinery::pkg::apis::meta::v1::Time};
use k8ssandra_api::{
    control::{CassandraTask, PodJobStatus},
    labels,
};
use k8ssandra_mgmt_api::{JobId, ManagementApiClient, Submission};
use k8ssandra_reconcile::events::Severity;
use kube::{
    Api, Resource, ResourceExt,
    api::{DeleteParams, EvictParams, Patch, PatchParams, Preconditions},
};

use super::{
    Context,
    observe::Observed,
    plan::{Action, Plan},
    schema,
    status::pod_after,
    validate::{NodeCall, Operation},
};
use crate::datacenter::observe::pod_ip;

/// Why an action could not be carried out.
#[derive(Debug, thiserror::Error)]
pub enum ActError {
    /// The API server refused a write.
    #[error("could not {what}: {source}")]
    Kube {
        /// What the pass tried.
        what: String,
        /// The API error.
        source: kube::Error,
    },
    /// The plan names a pod that is not there (it changed since the observation).
    #[error("{0} is gone since the pass observed it")]
    Gone(String),
}

/// What the pass acts on.
pub struct Acting<'a> {
    /// Shared parts.
    pub ctx: &'a Context,
    /// The task.
    pub task: &'a CassandraTask,
    /// Its command's name, for Events.
    pub command: &'a str,
    /// What it does.
    pub operation: &'a Operation,
    /// What the pass read.
    pub observed: &'a Observed,
    /// Now.
    pub now: &'a Time,
}

/// Carries out `plan`, updating `records` after each action; returns why actions were put off
/// (a restart the PodDisruptionBudget does not allow yet).
///
/// # Errors
/// When a Kubernetes write fails; the actions before it stay done in the cluster, and the next
/// pass plans anew from the status as last written (a call made stays known in memory).
pub async fn act(
    acting: &Acting<'_>,
    plan: &Plan,
    records: &mut BTreeMap<String, PodJobStatus>,
) -> Result<Vec<String>, ActError> {
    let mut deferred = Vec::new();
    for action in &plan.actions {
        if let Some(why) = acting.one(action, records.get(action.pod())).await? {
            deferred.push(why);
            continue;
        }
        let record = pod_after(action, records.get(action.pod()), acting.now);
        records.insert(action.pod().to_owned(), record);
    }
    Ok(deferred)
}

impl Acting<'_> {
    fn namespace(&self) -> String {
        self.observed
            .datacenter
            .as_ref()
            .and_then(ResourceExt::namespace)
            .unwrap_or_default()
    }

    fn task_uid(&self) -> String {
        self.task.uid().unwrap_or_default()
    }

    fn pod(&self, name: &str) -> Result<&Pod, ActError> {
        self.observed
            .pods
            .iter()
            .find(|p| p.name_any() == name)
            .ok_or_else(|| ActError::Gone(format!("pod {name}")))
    }

    async fn event(&self, severity: Severity, reason: &str, action: &str, note: String) {
        let reference = self.task.object_ref(&());
        self.ctx
            .events
            .publish(&reference, severity, reason, action, note)
            .await;
    }

    /// Carries out one action; `Some(why)` when it was put off.
    async fn one(
        &self,
        action: &Action,
        record: Option<&PodJobStatus>,
    ) -> Result<Option<String>, ActError> {
        let command = self.command;
        match action {
            Action::Submit { pod } => {
                self.submit(pod)?;
                let attempt = record.and_then(|r| r.retries).unwrap_or(0) + 1;
                self.event(
                    Severity::Normal,
                    "StartingJob",
                    "Submit",
                    format!("starting {command} on pod {pod} (attempt {attempt})"),
                )
                .await;
            }
            Action::RecordJob { pod, job } => {
                self.ctx.calls.forget(&self.task_uid(), pod);
                tracing::debug!(task = %self.task.name_any(), %pod, %job, "job accepted");
            }
            Action::DeletePod { pod, uid, claim } => {
                let (reason, note) = if *claim {
                    self.request_replacement(pod).await?;
                    (
                        "ReplacingNode",
                        format!(
                            "asked for the node of pod {pod} to be replaced: its volume and pod \
                             are deleted and the new node takes over its place"
                        ),
                    )
                } else {
                    if let Some(why) = self.evict_pod(pod, uid).await? {
                        return Ok(Some(why));
                    }
                    (
                        "RestartingPod",
                        format!(
                            "evicted pod {pod}: it restarts, and the task waits until it is ready"
                        ),
                    )
                };
                self.event(Severity::Normal, reason, "Delete", note).await;
            }
            Action::Complete { pod } => {
                self.ctx.calls.forget(&self.task_uid(), pod);
                self.event(
                    Severity::Normal,
                    "JobCompleted",
                    "Complete",
                    format!("{command} completed on pod {pod}"),
                )
                .await;
            }
            Action::Fail { pod, error, retry } => {
                self.ctx.calls.forget(&self.task_uid(), pod);
                let next = if *retry { "retrying" } else { "no retry left" };
                self.event(
                    Severity::Warning,
                    "JobFailed",
                    "Fail",
                    format!("{command} failed on pod {pod}: {error}; {next}"),
                )
                .await;
            }
        }
        Ok(None)
    }

    /// Makes the pod's call in a task of its own; the outcome lands in the call registry.
    fn submit(&self, name: &str) -> Result<(), ActError> {
        let Operation::Call(call) = self.operation else {
            return Ok(());
        };
        let pod = self.pod(name)?;
        let ip = pod_ip(pod).ok_or_else(|| ActError::Gone(format!("the IP of pod {name}")))?;
        let Some(mgmt) = &self.observed.mgmt else {
            return Err(ActError::Gone(format!(
                "the Management API of pod {name} (its access is misconfigured)"
            )));
        };
        let client = mgmt.client(name, ip);
        let ticket = self.ctx.calls.begin(&self.task_uid(), name);
        let calls = self.ctx.calls.clone();
        let call = call.clone();
        let datacenter = self
            .observed
            .datacenter
            .as_ref()
            .map(|dc| dc.datacenter_name().to_owned())
            .unwrap_or_default();
        tokio::spawn(async move {
            let outcome = make_call(&client, &call, &datacenter).await;
            calls.finish(&ticket, outcome);
        });
        Ok(())
    }

    /// Evicts the pod if it still has `uid` (another UID means it was recreated already), so that
    /// the PodDisruptionBudget judges it: whatever else takes nodes down (another task, a
    /// rollout, a drain), no more pods are down at once than it allows. `Some(why)` when it does
    /// not allow it yet.
    async fn evict_pod(&self, name: &str, uid: &str) -> Result<Option<String>, ActError> {
        let api = Api::<Pod>::namespaced(self.ctx.client.clone(), &self.namespace());
        let params = EvictParams {
            delete_options: Some(DeleteParams {
                preconditions: Some(Preconditions {
                    uid: Some(uid.to_owned()),
                    resource_version: None,
                }),
                ..DeleteParams::default()
            }),
            ..EvictParams::default()
        };
        match api.evict(name, &params).await {
            Ok(_) => Ok(None),
            Err(kube::Error::Api(status)) if status.code == 429 => Ok(Some(format!(
                "waiting to restart {name}: the PodDisruptionBudget allows no more pods down now"
            ))),
            // Gone, or recreated with another UID: the restart happened.
            Err(kube::Error::Api(status)) if status.code == 404 || status.code == 409 => Ok(None),
            Err(source) => Err(ActError::Kube {
                what: format!("delete pod {name}"),
                source,
            }),
        }
    }

    /// Annotates the pod for replacement; the datacenter controller does the rest (it owns the
    /// node's lifecycle, and starts the new node with `replace_ip`).
    async fn request_replacement(&self, pod: &str) -> Result<(), ActError> {
        let api = Api::<Pod>::namespaced(self.ctx.client.clone(), &self.namespace());
        let patch = serde_json::json!({
            "metadata": { "annotations": { labels::annotations::REPLACE_NODE: "true" } }
        });
        match api
            .patch(pod, &PatchParams::default(), &Patch::Merge(&patch))
            .await
        {
            Ok(annotated) => {
                self.ctx.caches.pods.wrote(&annotated.metadata);
                Ok(())
            }
            Err(kube::Error::Api(status)) if status.code == 404 => Ok(()),
            Err(source) => Err(ActError::Kube {
                what: format!("annotate pod {pod} for replacement"),
                source,
            }),
        }
    }
}

/// One Management API call: a job id when the server runs it as a job, `None` when it finished.
/// `datacenter` is the Cassandra name of the task's datacenter.
async fn make_call(
    client: &ManagementApiClient,
    call: &NodeCall,
    datacenter: &str,
) -> Result<Option<JobId>, String> {
    let text = |error: k8ssandra_mgmt_api::Error| error.to_string();
    match call {
        NodeCall::Table(operation) => {
            let features = client.features().await.map_err(text)?;
            Ok(
                match client
                    .run_table_operation(operation, &features)
                    .await
                    .map_err(text)?
                {
                    Submission::Job(job) => Some(job),
                    Submission::Done => None,
                },
            )
        }
        NodeCall::Rebuild { source_datacenter } => client
            .rebuild_job(source_datacenter.as_deref())
            .await
            .map(Some)
            .map_err(text),
        NodeCall::UpdateReplication(wanted) => schema::update_replication(client, wanted)
            .await
            .map(|()| None),
        NodeCall::CheckDecommission => schema::check_decommission(client, datacenter)
            .await
            .map(|()| None),
    }
}
