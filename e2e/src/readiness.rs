//! The readiness signal of local pods: kwok marks a pod Ready only while this annotation is
//! `"true"` (see `stages/pod-lifecycle.yaml`).

use k8s_openapi::api::core::v1::Pod;
use kube::{
    Api, Client,
    api::{Patch, PatchParams},
};
use serde_json::json;

use crate::HarnessError;

/// Annotation that makes a running pod Ready when `"true"`.
pub const READY_ANNOTATION: &str = "e2e.k8ssandra.io/ready";

/// Sets (`ready`) or clears the readiness signal of a pod.
pub async fn set_pod_ready(
    client: &Client,
    namespace: &str,
    pod: &str,
    ready: bool,
) -> Result<(), HarnessError> {
    let value = if ready { json!("true") } else { json!(null) };
    let patch = json!({ "metadata": { "annotations": { READY_ANNOTATION: value } } });
    Api::<Pod>::namespaced(client.clone(), namespace)
        .patch(pod, &PatchParams::default(), &Patch::Merge(&patch))
        .await?;
    Ok(())
}

/// Whether the pod's Ready condition is True.
pub fn is_pod_ready(pod: &Pod) -> bool {
    pod_condition(pod, "Ready") == Some("True")
}

/// The status of the pod condition `type_`, if the pod has it.
pub fn pod_condition<'a>(pod: &'a Pod, type_: &str) -> Option<&'a str> {
    pod.status
        .as_ref()?
        .conditions
        .as_ref()?
        .iter()
        .find(|condition| condition.type_ == type_)
        .map(|condition| condition.status.as_str())
}
