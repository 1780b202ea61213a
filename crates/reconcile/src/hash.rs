//! A stable hash of a desired object, stamped in an annotation so that a controller can tell a
//! real change from a re-apply without comparing fields the API server defaults.
//!
//! The hash is SHA-256 over a canonical JSON rendering (object keys sorted at every level, no
//! whitespace), base64-encoded like upstream's. It depends only on the object, never on the
//! process: no `RandomState`, no map iteration order.

use std::fmt::Write as _;

use base64::Engine as _;
use kube::Resource;
use serde::Serialize;
use serde_json::Value;

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

/// The hash of `object` as it would be stamped in `annotation`: computed without that annotation and
/// without the parts named by `ignore` (JSON pointers such as `/spec/replicas`).
///
/// # Errors
/// When the object cannot be serialised.
pub fn object_hash<K: Serialize>(
    object: &K,
    annotation: &str,
    ignore: &[&str],
) -> serde_json::Result<String> {
    let mut value = serde_json::to_value(object)?;
    // Without its hash an object hashes the same whether it was stamped before or not; an
    // annotation map left empty counts as absent.
    let emptied = value
        .pointer_mut("/metadata/annotations")
        .and_then(Value::as_object_mut)
        .is_some_and(|annotations| {
            annotations.remove(annotation);
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

/// Stamps the hash of `object` (ignoring the `ignore` pointers) into its `annotation`.
///
/// # Errors
/// When the object cannot be serialised.
pub fn stamp<K: Resource + Serialize>(
    object: &mut K,
    annotation: &str,
    ignore: &[&str],
) -> serde_json::Result<()> {
    let hash = object_hash(object, annotation, ignore)?;
    object
        .meta_mut()
        .annotations
        .get_or_insert_with(Default::default)
        .insert(annotation.to_owned(), hash);
    Ok(())
}

/// The hash an object carries in `annotation`, if any.
#[must_use]
pub fn stamped_hash<'a, K: Resource>(object: &'a K, annotation: &str) -> Option<&'a str> {
    object
        .meta()
        .annotations
        .as_ref()
        .and_then(|a| a.get(annotation))
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
}
