//! Validate: what the CRD's schema and CEL rules cannot judge. A problem ends the pass before
//! anything is written, and is reported as `Valid=False` with a reason and a message that names
//! the field.

use k8s_openapi::api::apps::v1::StatefulSet;
use k8ssandra_api::{cassandra::CassandraDatacenter, labels, names, validation};
use kube::ResourceExt;

use crate::build::{self, images::ImageConfig};

/// Why the spec cannot be acted on.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Problem {
    /// CamelCase reason of the `Valid` condition.
    pub reason: &'static str,
    /// What is wrong and how to fix it.
    pub message: String,
}

impl Problem {
    fn new(reason: &'static str, message: impl Into<String>) -> Self {
        Self {
            reason,
            message: message.into(),
        }
    }
}

/// Whether a problem lies in the datacenter's spec alone, so that only a change of the
/// datacenter can fix it; other problems (a Secret, a StorageClass) are looked at again soon.
#[must_use]
pub fn is_spec_problem(problem: &Problem) -> bool {
    !matches!(
        problem.reason,
        "ManagementApiAuthInvalid"
            | "SuperuserSecretMissing"
            | "SuperuserSecretInvalid"
            | "StorageExpansionUnsupported"
            | "StorageExpansionRefused"
    )
}

/// Checks the spec alone: the API crate's rules, fields not acted on yet, and whether every
/// child can be built.
#[must_use]
pub fn validate_spec(dc: &CassandraDatacenter, images: &ImageConfig) -> Option<Problem> {
    if let Err(errors) = validation::validate_datacenter(dc) {
        return Some(Problem::new("InvalidSpec", errors.to_string()));
    }
    if dc
        .spec
        .config_secret
        .as_deref()
        .is_some_and(|s| !s.is_empty())
    {
        return Some(Problem::new(
            "UnsupportedField",
            "spec.configSecret is not supported by this operator yet; put the configuration in \
             spec.config",
        ));
    }
    if let Err(error) = build::statefulset::desired_statefulsets(dc, images) {
        return Some(Problem::new("InvalidSpec", error.to_string()));
    }
    None
}

/// Checks the spec against what runs: a rack removed from `spec.racks` while its StatefulSet
/// still has nodes (CEL admits removing the last rack, and cannot tell renaming it from
/// removing it).
#[must_use]
pub fn validate_against_live(
    dc: &CassandraDatacenter,
    statefulsets: &[StatefulSet],
) -> Option<Problem> {
    let spec_racks: Vec<String> = dc
        .spec
        .racks_or_default()
        .iter()
        .map(|r| names::clean_label_value(&r.name))
        .collect();
    let mut removed: Vec<String> = statefulsets
        .iter()
        .filter(|sts| sts.spec.as_ref().and_then(|s| s.replicas).unwrap_or(0) > 0)
        .filter_map(|sts| sts.labels().get(labels::RACK).cloned())
        .filter(|rack| !spec_racks.contains(rack))
        .collect();
    removed.sort();
    if removed.is_empty() {
        return None;
    }
    Some(Problem::new(
        "RackRemovedWithNodes",
        format!(
            "spec.racks no longer lists rack(s) {} but they still run Cassandra nodes; put the \
             rack(s) back, lower spec.size until they are empty, then remove them",
            removed.join(", ")
        ),
    ))
}
