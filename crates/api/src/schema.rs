//! Schema pieces the derived schemas cannot express by themselves.

use schemars::{Schema, SchemaGenerator, json_schema};

/// A free-form object kept as the user wrote it (`x-kubernetes-preserve-unknown-fields`): for
/// configuration maps such as `cassandraYaml`, and for upstream sections this operator does not act
/// on yet, which must still be accepted and preserved.
pub fn preserve_unknown_object(_: &mut SchemaGenerator) -> Schema {
    json_schema!({
        "type": "object",
        "x-kubernetes-preserve-unknown-fields": true,
    })
}
