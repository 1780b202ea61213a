//! A stable hash of a desired object, stamped in the `cassandra.datastax.com/resource-hash`
//! annotation (upstream's key) so the controller can tell a real change from a re-apply without
//! comparing fields the API server defaults.
//!
//! The hash is SHA-256 over a canonical JSON rendering (object keys sorted at every level, no
//! whitespace), base64-encoded like upstream's. It depends only on the object, never on the process:
//! no `RandomState`, no map iteration order. The values differ from upstream's (Go hashes a spew
//! dump), so a datacenter moved from upstream gets its children rewritten once.

use std::fmt::Write as _;

use base64::Engine as _;
use k8s_openapi::api::apps::v1::StatefulSet;
use kube::Resource;
use serde::Serialize;
use serde_json::Value;

use k8ssandra_api::labels::annotations::DATA_PLANE_RESOURCE_HASH;

use super::Result;

/// The annotation that holds the hash.
pub const ANNOTATION: &str = DATA_PLANE_RESOURCE_HASH;

/// Canonical JSON of `value`: object keys sorted at every level, compact.
///
/// Sorting is done here rather than trusted to `serde_json::Map`, whose order depends on a cargo
/// feature (`preserve_order`) any crate in the build may switch on.
#[must_use]
pub fn canonical_json(value: &Value) -> String {
    let mut out = String::new();
    write_canonical(value, &mut out);
    out
}

fn write_canonical(value: &Value, out: &mut String) {
    match value {
        Value::Object(map) => {
            let mut entries: Vec<(&String, &Value)> = map.iter().collect();
            entries.sort_by(|a, b| a.0.cmp(b.0));
            out.push('{');
            for (i, (key, item)) in entries.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str(&Value::String(key.clone()).to_string());
                out.push(':');
                write_canonical(item, out);
            }
            out.push('}');
        }
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_canonical(item, out);
            }
            out.push(']');
        }
        scalar => {
            // Scalars have a single rendering in serde_json.
            let _ = write!(out, "{scalar}");
        }
    }
}

/// Base64 of the SHA-256 of the canonical JSON of `value`.
#[must_use]
pub fn hash_value(value: &Value) -> String {
    let digest = ring::digest::digest(&ring::digest::SHA256, canonical_json(value).as_bytes());
    base64::engine::general_purpose::STANDARD.encode(digest.as_ref())
}

/// The hash of `object` as it would be stamped: computed without the hash annotation itself and
/// without the parts named by `ignore` (JSON pointers such as `/spec/replicas`).
///
/// # Errors
/// When the object cannot be serialised.
pub fn object_hash<K: Serialize>(object: &K, ignore: &[&str]) -> Result<String> {
    let mut value = serde_json::to_value(object)?;
    // Without its hash an object hashes the same whether it was stamped before or not; an
    // annotation map left empty counts as absent.
    let emptied = value
        .pointer_mut("/metadata/annotations")
        .and_then(Value::as_object_mut)
        .is_some_and(|annotations| {
            annotations.remove(ANNOTATION);
            annotations.is_empty()
        });
    if emptied {
        remove_pointer(&mut value, "/metadata/annotations");
    }
    for pointer in ignore {
        remove_pointer(&mut value, pointer);
    }
    Ok(hash_value(&value))
}

fn remove_pointer(value: &mut Value, pointer: &str) {
    let Some((parent, key)) = pointer.rsplit_once('/') else {
        return;
    };
    if let Some(object) = value.pointer_mut(parent).and_then(Value::as_object_mut) {
        object.remove(key);
    }
}

/// Stamps the hash of `object` (ignoring the `ignore` pointers) into its annotations.
///
/// # Errors
/// When the object cannot be serialised.
pub fn stamp<K: Resource + Serialize>(object: &mut K, ignore: &[&str]) -> Result<()> {
    let hash = object_hash(object, ignore)?;
    object
        .meta_mut()
        .annotations
        .get_or_insert_with(Default::default)
        .insert(ANNOTATION.to_owned(), hash);
    Ok(())
}

/// Parts of a StatefulSet left out of its hash: the replica count is decided by the controller
/// (scaling is not a template change), and the claim templates never change in place (a change
/// of the data volumes is judged against the live templates by the storage step).
pub const STATEFULSET_IGNORED: &[&str] = &["/spec/replicas", "/spec/volumeClaimTemplates"];

/// The hash stamped on a StatefulSet (replicas excluded).
///
/// # Errors
/// When the object cannot be serialised.
pub fn statefulset_hash(sts: &StatefulSet) -> Result<String> {
    object_hash(sts, STATEFULSET_IGNORED)
}

/// The hash an object carries, if any.
#[must_use]
pub fn stamped_hash<K: Resource>(object: &K) -> Option<&str> {
    object
        .meta()
        .annotations
        .as_ref()
        .and_then(|a| a.get(ANNOTATION))
        .map(String::as_str)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn canonical_json_sorts_keys_at_every_level() {
        let a = json!({"b": 1, "a": {"z": [3, {"y": 1, "x": 2}], "c": "s\"q"}});
        assert_eq!(
            canonical_json(&a),
            r#"{"a":{"c":"s\"q","z":[3,{"x":2,"y":1}]},"b":1}"#
        );
    }

    #[test]
    fn the_hash_is_fixed_for_a_value() {
        // A known value, so a change of algorithm or rendering cannot go unnoticed.
        assert_eq!(
            hash_value(&json!({})),
            "RBNvo1WzZ4oRRq0W9+hknpT7T8If536DEMBg9hyq/4o="
        );
        assert_eq!(
            hash_value(&json!({"a":1,"b":2})),
            hash_value(&json!({"b":2,"a":1}))
        );
        assert_ne!(hash_value(&json!({"a":1})), hash_value(&json!({"a":2})));
    }

    #[test]
    fn the_stamp_ignores_itself_and_the_named_parts() {
        let mut sts = StatefulSet::default();
        sts.metadata.name = Some("x".into());
        sts.spec = Some(Default::default());
        if let Some(spec) = sts.spec.as_mut() {
            spec.replicas = Some(3);
        }
        stamp(&mut sts, STATEFULSET_IGNORED).unwrap();
        let first = stamped_hash(&sts).unwrap().to_owned();
        // Re-stamping an already stamped object gives the same hash.
        stamp(&mut sts, STATEFULSET_IGNORED).unwrap();
        assert_eq!(stamped_hash(&sts), Some(first.as_str()));
        if let Some(spec) = sts.spec.as_mut() {
            spec.replicas = Some(5);
        }
        assert_eq!(statefulset_hash(&sts).unwrap(), first);
        if let Some(spec) = sts.spec.as_mut() {
            spec.service_name = Some("other".into());
        }
        assert_ne!(statefulset_hash(&sts).unwrap(), first);
    }
}
