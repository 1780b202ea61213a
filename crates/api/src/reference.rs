//! References to other objects as upstream's YAML writes them.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// An object of the same namespace, by name. Unlike Kubernetes' Rust type, `name` may be left
/// out, as upstream's schema allows: its own fixtures write `perNodeConfigMapRef: {}`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct LocalObjectReference {
    /// Name of the object; none when empty.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
}

impl LocalObjectReference {
    /// The name, when one is given and not empty.
    #[must_use]
    pub fn name(&self) -> Option<&str> {
        self.name.as_deref().filter(|n| !n.is_empty())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_empty_reference_names_nothing() {
        let empty: LocalObjectReference = serde_json::from_str("{}").unwrap_or_default();
        assert_eq!(empty.name(), None);
        assert_eq!(serde_json::to_string(&empty).unwrap_or_default(), "{}");
        let blank = LocalObjectReference {
            name: Some(String::new()),
        };
        assert_eq!(blank.name(), None);
        let named: LocalObjectReference =
            serde_json::from_str(r#"{"name":"cm"}"#).unwrap_or_default();
        assert_eq!(named.name(), Some("cm"));
    }
}
