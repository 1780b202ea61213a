//! Admission: before a pass writes anything, every object it may write that differs from the
//! live one (children, and the StatefulSets the planner may create or update) is sent to the API
//! server as a dry run. A refusal is reported as `Valid=False`, naming the object and quoting the
//! API server, and the pass writes nothing: no half-applied change, no error retried in silence.
//!
//! StatefulSets are checked with their live claim templates and replica count, which is what the
//! planner will write. A StatefulSet that passed is remembered by its hash, so that a rollout
//! waiting rack by rack, or for permission, is not sent again on every pass.

use std::{collections::HashMap, sync::Mutex};

use k8s_openapi::api::apps::v1::StatefulSet;
use k8ssandra_api::cassandra::CassandraDatacenter;
use kube::{
    ResourceExt,
    api::{Patch, PatchParams},
};

use super::{
    Context, FIELD_MANAGER,
    children::{ChildrenError, Pending},
    validate::Problem,
};
use crate::build::{self, BuildError, hash, images::ImageConfig};

/// Why the dry run could not be made (the pass is retried; a refusal is not an error).
#[derive(Debug, thiserror::Error)]
pub enum AdmissionError {
    /// A builder failed.
    #[error(transparent)]
    Build(#[from] BuildError),
    /// A pending write could not be encoded.
    #[error(transparent)]
    Children(#[from] ChildrenError),
    /// The API server could not be asked.
    #[error("could not dry-run {what}: {source}")]
    Kube {
        /// The object.
        what: String,
        /// The API error.
        source: kube::Error,
    },
}

/// StatefulSet hashes the API server accepted, by namespace and name.
#[derive(Debug, Default)]
pub struct Admitted(Mutex<HashMap<(String, String), String>>);

impl Admitted {
    fn contains(&self, key: &(String, String), hash: &str) -> bool {
        self.0
            .lock()
            .map(|m| m.get(key).is_some_and(|h| h == hash))
            .unwrap_or(false)
    }

    fn insert(&self, key: (String, String), hash: String) {
        if let Ok(mut m) = self.0.lock() {
            m.insert(key, hash);
        }
    }
}

/// The StatefulSets the planner may write: for each rack, the desired one when the live one is
/// missing or carries another hash, with the live claim templates (they cannot change in place)
/// and the live replica count.
///
/// # Errors
/// When a builder fails.
pub fn pending_statefulsets(
    dc: &CassandraDatacenter,
    live: &[StatefulSet],
    images: &ImageConfig,
) -> Result<Vec<StatefulSet>, BuildError> {
    let mut out = Vec::new();
    for plan in build::statefulset::rack_plan(dc) {
        let nodes = i32::try_from(plan.nodes).unwrap_or(i32::MAX);
        let mut desired = build::statefulset::statefulset(dc, &plan.rack, nodes, images)?;
        let current = live.iter().find(|s| s.name_any() == desired.name_any());
        if let Some(current) = current {
            if hash::stamped_hash(current) == hash::stamped_hash(&desired) {
                continue;
            }
            build::statefulset::keep_live_claims(&mut desired, current);
        }
        out.push(desired);
    }
    Ok(out)
}

/// Dry-runs every pending write; the first refusal, as the problem to report.
///
/// # Errors
/// When the API server cannot be asked (not when it refuses).
pub async fn dry_run(
    ctx: &Context,
    dc: &CassandraDatacenter,
    children: &[Pending],
    statefulsets: &[StatefulSet],
) -> Result<Option<Problem>, AdmissionError> {
    let namespace = dc.namespace().unwrap_or_default();
    let params = PatchParams::apply(FIELD_MANAGER).force().dry_run();
    for pending in children {
        let api = pending.api(ctx, &namespace);
        let result = api
            .patch(
                &pending.object.name_any(),
                &params,
                &Patch::Apply(&pending.object),
            )
            .await;
        if let Some(problem) = refusal(&pending.describe(), result)? {
            return Ok(Some(problem));
        }
    }
    for sts in statefulsets {
        let key = (namespace.clone(), sts.name_any());
        let stamp = hash::stamped_hash(sts).unwrap_or_default().to_owned();
        if ctx.admitted.contains(&key, &stamp) {
            continue;
        }
        let pending = Pending::of(sts)?;
        let result = pending
            .api(ctx, &namespace)
            .patch(&sts.name_any(), &params, &Patch::Apply(&pending.object))
            .await;
        if let Some(problem) = refusal(&pending.describe(), result)? {
            return Ok(Some(problem));
        }
        ctx.admitted.insert(key, stamp);
    }
    Ok(None)
}

/// A refusal of the API server (a 4xx answer) as a problem; other failures as errors.
fn refusal<T>(
    what: &str,
    result: Result<T, kube::Error>,
) -> Result<Option<Problem>, AdmissionError> {
    match result {
        Ok(_) => Ok(None),
        Err(kube::Error::Api(status)) if (400..500).contains(&status.code) => Ok(Some(Problem {
            reason: "RefusedByApiServer",
            message: format!(
                "the API server refuses {what}: {}",
                bounded(&status.message)
            ),
        })),
        Err(source) => Err(AdmissionError::Kube {
            what: what.to_owned(),
            source,
        }),
    }
}

/// At most about 1 KiB of the API server's words (it may list every invalid field).
fn bounded(message: &str) -> String {
    const MAX: usize = 1024;
    if message.len() <= MAX {
        return message.to_owned();
    }
    let mut end = MAX;
    while !message.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &message[..end])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_messages_are_cut_on_a_character() {
        assert_eq!(bounded("short"), "short");
        let long = "é".repeat(1000);
        let cut = bounded(&long);
        assert!(cut.len() <= 1024 + '…'.len_utf8());
        assert!(cut.ends_with('…'));
    }

    #[test]
    fn only_client_errors_are_refusals() {
        let status = |code| {
            kube::Error::Api(
                kube::core::Status::failure("spec.x: Invalid value", "Invalid")
                    .with_code(code)
                    .boxed(),
            )
        };
        let refused = refusal::<()>("Service s", Err(status(422))).unwrap();
        let problem = refused.unwrap();
        assert_eq!(problem.reason, "RefusedByApiServer");
        assert_eq!(
            problem.message,
            "the API server refuses Service s: spec.x: Invalid value"
        );
        assert!(refusal::<()>("Service s", Err(status(503))).is_err());
        assert!(refusal::<()>("Service s", Ok(())).unwrap().is_none());
    }
}
