//! The ClientConfig's `Reachable` condition, from what the registry knows of its context (pure).

use k8ssandra_api::conditions::{Condition, ConditionStatus};

use crate::remote::{Health, Remote};

/// Type of the condition.
pub const REACHABLE: &str = "Reachable";

/// What the pass found for one ClientConfig.
#[derive(Debug)]
pub enum Finding<'a> {
    /// Its context is the registry's `remote`.
    Registered(&'a Remote),
    /// Another ClientConfig names the same context first.
    Duplicate {
        /// The context.
        context: &'a str,
        /// `namespace/name` of the ClientConfig that has it.
        owner: String,
    },
}

/// The `Reachable` condition: True when the API server answers, Unknown while connecting, False
/// with the server and the error otherwise. It names servers, Secrets, keys and contexts, never
/// a credential.
#[must_use]
pub fn reachable(finding: &Finding<'_>) -> Condition {
    let (status, reason, message) = match finding {
        Finding::Duplicate { context, owner } => (
            ConditionStatus::False,
            "DuplicateContext",
            format!(
                "ClientConfig {owner} already names context {context}; this one is not used \
                 (give it another contextName, or delete it)"
            ),
        ),
        Finding::Registered(Remote::Invalid { reason, message }) => {
            (ConditionStatus::False, *reason, message.clone())
        }
        Finding::Registered(Remote::Connected(cluster)) => match cluster.health() {
            Health::Connecting => (
                ConditionStatus::Unknown,
                "Connecting",
                format!("connecting to {}", cluster.server),
            ),
            Health::Reachable => (
                ConditionStatus::True,
                "Reachable",
                format!("{} answers", cluster.server),
            ),
            Health::Unreachable(error) => (
                ConditionStatus::False,
                "Unreachable",
                format!("{}: {error}", cluster.server),
            ),
        },
    };
    Condition::new(REACHABLE, status, reason, message)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_invalid_kubeconfig_and_a_duplicate_context_are_not_reachable() {
        let invalid = Remote::Invalid {
            reason: "SecretMissing",
            message: "Secret s does not exist in namespace n".into(),
        };
        let condition = reachable(&Finding::Registered(&invalid));
        assert_eq!(condition.status, ConditionStatus::False);
        assert_eq!(condition.reason.as_deref(), Some("SecretMissing"));
        let duplicate = reachable(&Finding::Duplicate {
            context: "kind-k8ssandra-1",
            owner: "ns/first".into(),
        });
        assert_eq!(duplicate.reason.as_deref(), Some("DuplicateContext"));
        assert!(
            duplicate
                .message
                .as_deref()
                .is_some_and(|m| m.contains("ns/first") && m.contains("kind-k8ssandra-1"))
        );
    }
}
