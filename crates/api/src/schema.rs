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

/// Configuration files a CassandraDatacenter's `config` commonly holds. Declaring them (as free-form
/// objects) lets CEL rules test for them by name (`has(self.config.dse__dash__yaml)`), with the same
/// result in every CEL implementation; other files are kept too.
const SERVER_CONFIG_FILES: &[&str] = &[
    "cassandra-yaml",
    "dse-yaml",
    "jvm-options",
    "jvm-server-options",
    "jvm11-server-options",
    "jvm17-server-options",
];

/// Schema of a CassandraDatacenter's `config`: an object of configuration files, each an object.
pub fn server_config(generator: &mut SchemaGenerator) -> Schema {
    let properties: serde_json::Map<String, serde_json::Value> = SERVER_CONFIG_FILES
        .iter()
        .map(|file| {
            (
                (*file).to_owned(),
                preserve_unknown_object(generator).to_value(),
            )
        })
        .collect();
    json_schema!({
        "type": "object",
        "properties": properties,
        "x-kubernetes-preserve-unknown-fields": true,
    })
}
