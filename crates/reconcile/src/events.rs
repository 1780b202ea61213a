//! Kubernetes Events about the objects a controller works on. Publishing is best effort: an Event
//! that cannot be written is logged and never fails a reconcile.

use k8s_openapi::api::core::v1::ObjectReference;
use kube::{
    Client,
    runtime::events::{Event, EventType, Recorder, Reporter},
};

/// Severity of an Event.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Severity {
    /// Something the operator did or saw, as planned.
    Normal,
    /// Something that needs a look: a failure, a refusal.
    Warning,
}

/// Publishes Events as one controller. Cheap to clone; clones share the de-duplication cache, so a
/// repeated Event becomes a series instead of a new object.
#[derive(Clone)]
pub struct EventPublisher {
    recorder: Recorder,
}

impl EventPublisher {
    /// A publisher reporting as `controller`.
    #[must_use]
    pub fn new(client: Client, controller: &str) -> Self {
        let reporter = Reporter {
            controller: controller.to_owned(),
            instance: std::env::var("POD_NAME").ok(),
        };
        Self {
            recorder: Recorder::new(client, reporter),
        }
    }

    /// Publishes an Event about `regarding`: `reason` is CamelCase, `action` what the operator did,
    /// `note` the sentence a user reads in `kubectl describe`.
    pub async fn publish(
        &self,
        regarding: &ObjectReference,
        severity: Severity,
        reason: &str,
        action: &str,
        note: String,
    ) {
        let event = Event {
            type_: match severity {
                Severity::Normal => EventType::Normal,
                Severity::Warning => EventType::Warning,
            },
            reason: reason.to_owned(),
            note: Some(bounded(note)),
            action: action.to_owned(),
            secondary: None,
        };
        if let Err(error) = self.recorder.publish(&event, regarding).await {
            tracing::warn!(%error, reason, object = ?regarding.name, "could not publish an Event");
        }
    }
}

/// The most an Event's note may hold (the API server refuses longer ones).
pub const MAX_NOTE_CHARS: usize = 1024;

/// `note`, cut to [`MAX_NOTE_CHARS`] characters with an ellipsis when longer.
fn bounded(note: String) -> String {
    if note.chars().count() <= MAX_NOTE_CHARS {
        return note;
    }
    let mut cut: String = note.chars().take(MAX_NOTE_CHARS - 1).collect();
    cut.push('…');
    cut
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_long_note_is_cut_to_what_the_api_server_accepts() {
        assert_eq!(bounded("short".to_owned()), "short");
        let long = "é".repeat(2000);
        let cut = bounded(long);
        assert_eq!(cut.chars().count(), MAX_NOTE_CHARS);
        assert!(cut.ends_with('…'));
    }
}
