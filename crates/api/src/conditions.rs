//! Status conditions shared by every custom resource, and the one rule for updating them.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// One observed aspect of an object's state.
///
/// A superset of upstream's condition types: `reason` and `message` are optional so that statuses
/// written by upstream operators still parse.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Condition {
    /// Kind of condition, e.g. `Ready`; unique within the list.
    #[serde(rename = "type")]
    pub type_: String,
    /// `True`, `False` or `Unknown`.
    pub status: ConditionStatus,
    /// Machine-readable, CamelCase reason for the last transition.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// Human-readable details: what is wrong and which node or operation it concerns.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// When `status` last changed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_transition_time: Option<Time>,
    /// Generation of the object the condition was computed from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
}

/// Status of a [`Condition`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum ConditionStatus {
    /// The condition holds.
    True,
    /// The condition does not hold.
    False,
    /// Not known yet.
    #[default]
    Unknown,
}

impl Condition {
    /// A condition of `type_` with the given status, reason and message, not stamped yet.
    #[must_use]
    pub fn new(
        type_: &str,
        status: ConditionStatus,
        reason: &str,
        message: impl Into<String>,
    ) -> Self {
        Self {
            type_: type_.to_owned(),
            status,
            reason: Some(reason.to_owned()),
            message: Some(message.into()),
            last_transition_time: None,
            observed_generation: None,
        }
    }

    /// Whether the condition's status is `True`.
    #[must_use]
    pub fn is_true(&self) -> bool {
        self.status == ConditionStatus::True
    }
}

/// The condition of `type_` in `conditions`, if present.
#[must_use]
pub fn find<'a>(conditions: &'a [Condition], type_: &str) -> Option<&'a Condition> {
    conditions.iter().find(|c| c.type_ == type_)
}

/// Puts `condition` into `conditions`, replacing the one of the same type.
///
/// `lastTransitionTime` moves to `now` only when the status flips (or the condition is new), so a
/// reconcile that observes the same state writes the same status, and does not trigger itself.
/// Returns whether anything changed.
pub fn set(conditions: &mut Vec<Condition>, mut condition: Condition, now: &Time) -> bool {
    match conditions.iter_mut().find(|c| c.type_ == condition.type_) {
        Some(existing) => {
            condition.last_transition_time = if existing.status == condition.status {
                existing
                    .last_transition_time
                    .clone()
                    .or_else(|| Some(now.clone()))
            } else {
                Some(now.clone())
            };
            if *existing == condition {
                return false;
            }
            *existing = condition;
            true
        }
        None => {
            condition.last_transition_time = Some(now.clone());
            conditions.push(condition);
            true
        }
    }
}

/// Schema of a condition list: a list-map keyed by `type`, so that server-side apply merges
/// conditions one by one instead of replacing the whole list.
pub fn list_schema(generator: &mut schemars::SchemaGenerator) -> schemars::Schema {
    let mut schema = generator.subschema_for::<Vec<Condition>>();
    schema.insert("x-kubernetes-list-type".into(), "map".into());
    schema.insert(
        "x-kubernetes-list-map-keys".into(),
        serde_json::json!(["type"]),
    );
    schema
}

#[cfg(test)]
mod tests {
    use k8s_openapi::jiff::Timestamp;

    use super::*;

    fn at(seconds: i64) -> Time {
        Time(Timestamp::from_second(seconds).expect("valid timestamp"))
    }

    #[test]
    fn a_new_condition_is_stamped() {
        let mut list = Vec::new();
        assert!(set(
            &mut list,
            Condition::new("Ready", ConditionStatus::False, "Starting", "x"),
            &at(10)
        ));
        assert_eq!(list[0].last_transition_time, Some(at(10)));
    }

    #[test]
    fn the_transition_time_moves_only_on_a_flip() {
        let mut list = Vec::new();
        set(
            &mut list,
            Condition::new("Ready", ConditionStatus::False, "Starting", "a"),
            &at(10),
        );
        assert!(!set(
            &mut list,
            Condition::new("Ready", ConditionStatus::False, "Starting", "a"),
            &at(20)
        ));
        assert!(set(
            &mut list,
            Condition::new("Ready", ConditionStatus::False, "Starting", "b"),
            &at(30)
        ));
        assert_eq!(list[0].last_transition_time, Some(at(10)));
        assert!(set(
            &mut list,
            Condition::new("Ready", ConditionStatus::True, "Ready", "ok"),
            &at(40)
        ));
        assert_eq!(list[0].last_transition_time, Some(at(40)));
        assert_eq!(list.len(), 1);
        assert!(find(&list, "Ready").is_some_and(Condition::is_true));
    }

    #[test]
    fn the_list_is_a_map_keyed_by_type() {
        let mut generator = schemars::SchemaGenerator::default();
        let schema = list_schema(&mut generator);
        assert_eq!(
            schema.get("x-kubernetes-list-type"),
            Some(&serde_json::json!("map"))
        );
        assert_eq!(
            schema.get("x-kubernetes-list-map-keys"),
            Some(&serde_json::json!(["type"]))
        );
    }
}
