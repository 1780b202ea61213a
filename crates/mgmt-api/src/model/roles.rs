//! Roles (`/api/v0/ops/auth/role`) and identity-to-role mappings.

use serde::{Deserialize, Deserializer, Serialize};

/// A role to create (or update).
#[derive(Clone, PartialEq, Eq)]
pub struct NewRole {
    /// Role name.
    pub username: String,
    /// Password; never logged.
    pub password: String,
    /// Whether the role is a superuser.
    pub is_superuser: bool,
    /// Whether the role may log in.
    pub can_login: bool,
}

impl std::fmt::Debug for NewRole {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NewRole")
            .field("username", &self.username)
            .field("password", &"***")
            .field("is_superuser", &self.is_superuser)
            .field("can_login", &self.can_login)
            .finish()
    }
}

/// A role as `GET /api/v0/ops/auth/role` lists it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Role {
    /// Role name.
    pub name: String,
    /// Superuser flag.
    #[serde(rename = "super", default, deserialize_with = "lenient_bool")]
    pub superuser: bool,
    /// Login flag.
    #[serde(default, deserialize_with = "lenient_bool")]
    pub login: bool,
    /// Role options, as Cassandra prints them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub options: Option<String>,
    /// Datacenters the role may log into.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub datacenters: Option<String>,
}

/// Accepts `true`, `"true"`, `"True"` and null.
fn lenient_bool<'de, D: Deserializer<'de>>(deserializer: D) -> Result<bool, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Raw {
        Bool(bool),
        Text(String),
    }
    Ok(match Option::<Raw>::deserialize(deserializer)? {
        None => false,
        Some(Raw::Bool(value)) => value,
        Some(Raw::Text(text)) => text.trim().eq_ignore_ascii_case("true"),
    })
}

/// Body of `POST /api/v1/ops/auth/identity_to_role`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IdentityToRole {
    /// Certificate identity, like a SPIFFE id.
    pub identity: String,
    /// Role it maps to.
    pub role: String,
    /// Time to live in seconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ttl: Option<i32>,
}

/// Body of `DELETE /api/v1/ops/auth/identity_to_role`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IdentityRequest {
    /// Certificate identity.
    pub identity: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roles_accept_booleans_and_strings() {
        let roles: Vec<Role> = serde_json::from_str(
            r#"[{"name":"a","super":true,"login":"true","options":"{}","datacenters":"ALL"},
                {"name":"b","super":"False"}]"#,
        )
        .unwrap();
        assert!(roles[0].superuser && roles[0].login);
        assert!(!roles[1].superuser && !roles[1].login);
    }

    #[test]
    fn debug_hides_password() {
        let role = NewRole {
            username: "u".into(),
            password: "hunter2".into(),
            is_superuser: false,
            can_login: true,
        };
        assert!(!format!("{role:?}").contains("hunter2"));
    }
}
