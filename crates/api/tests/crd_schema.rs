//! The generated CRDs are ones a kube-apiserver accepts: structural schemas, transition rules only
//! where Kubernetes can evaluate them, printer columns that point at real fields, upstream's names,
//! and a size well within etcd's object limit.

// Test helpers fail loudly on malformed fixtures.
#![allow(clippy::expect_used)]

use k8ssandra_api::crd;
use serde_json::Value;

/// Largest CRD (as JSON) we accept; etcd refuses objects over 1.5 MiB, and a CRD is stored with
/// managed fields on top.
const MAX_CRD_BYTES: usize = 1024 * 1024;

fn crds() -> Vec<Value> {
    crd::all()
        .iter()
        .map(|c| serde_json::to_value(c).expect("CRD serialises"))
        .collect()
}

fn schema_of(crd: &Value) -> &Value {
    &crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
}

/// Walks a schema and reports every rule of structural schemas it breaks, and every transition
/// rule (`oldSelf`) below a list whose items Kubernetes cannot correlate.
fn check_node(path: &str, node: &Value, correlatable: bool, problems: &mut Vec<String>) {
    let Some(object) = node.as_object() else {
        problems.push(format!("{path}: not a schema object"));
        return;
    };
    if object.contains_key("$ref") {
        problems.push(format!("{path}: $ref is not allowed"));
    }
    let int_or_string = object.get("x-kubernetes-int-or-string") == Some(&Value::Bool(true));
    let preserve = object.get("x-kubernetes-preserve-unknown-fields") == Some(&Value::Bool(true));
    match object.get("type").and_then(Value::as_str) {
        Some("object" | "array" | "string" | "integer" | "number" | "boolean") => {}
        Some(other) => problems.push(format!("{path}: unknown type {other}")),
        None if int_or_string || preserve => {}
        None => problems.push(format!("{path}: type is required")),
    }
    if object.contains_key("properties") && object.contains_key("additionalProperties") {
        problems.push(format!(
            "{path}: properties and additionalProperties are exclusive"
        ));
    }
    for junction in ["allOf", "anyOf", "oneOf"] {
        for (i, branch) in object
            .get(junction)
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .enumerate()
        {
            for forbidden in [
                "type",
                "description",
                "default",
                "additionalProperties",
                "nullable",
            ] {
                if branch.get(forbidden).is_some() && !(int_or_string && forbidden == "type") {
                    problems.push(format!(
                        "{path}.{junction}[{i}]: {forbidden} is not allowed inside {junction}"
                    ));
                }
            }
        }
    }
    if let Some(rules) = object
        .get("x-kubernetes-validations")
        .and_then(Value::as_array)
    {
        for rule in rules {
            let text = rule["rule"].as_str().unwrap_or_default();
            if text.contains("oldSelf") && !correlatable {
                problems.push(format!("{path}: transition rule {text:?} sits where Kubernetes cannot correlate old and new values"));
            }
            if rule
                .get("message")
                .and_then(Value::as_str)
                .is_none_or(str::is_empty)
            {
                problems.push(format!("{path}: rule {text:?} has no message"));
            }
        }
    }
    if object.get("x-kubernetes-list-type").and_then(Value::as_str) == Some("map") {
        let required: Vec<&str> = object["items"]["required"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .collect();
        for key in object["x-kubernetes-list-map-keys"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
        {
            if !required.contains(&key) {
                problems.push(format!(
                    "{path}: list-map key {key} must be required in the items"
                ));
            }
        }
    }
    if let Some(properties) = object.get("properties").and_then(Value::as_object) {
        for (name, child) in properties {
            check_node(&format!("{path}.{name}"), child, correlatable, problems);
        }
    }
    if let Some(items) = object.get("items") {
        let keyed = matches!(
            object.get("x-kubernetes-list-type").and_then(Value::as_str),
            Some("map")
        );
        check_node(&format!("{path}[]"), items, correlatable && keyed, problems);
    }
    if let Some(extra) = object.get("additionalProperties").filter(|v| v.is_object()) {
        check_node(&format!("{path}{{}}"), extra, correlatable, problems);
    }
}

#[test]
fn every_schema_is_structural_and_its_rules_can_be_evaluated() {
    let mut problems = Vec::new();
    for crd in crds() {
        let name = crd["metadata"]["name"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        check_node(&name, schema_of(&crd), true, &mut problems);
    }
    assert!(
        problems.is_empty(),
        "schema problems:\n{}",
        problems.join("\n")
    );
}

#[test]
fn the_checker_catches_what_kubernetes_refuses() {
    let bad = serde_json::json!({
        "type": "object",
        "properties": {
            "untyped": {"description": "no type"},
            "list": {"type": "array", "items": {"type": "object", "x-kubernetes-validations": [{"rule": "self == oldSelf", "message": "m"}]}},
        },
    });
    let mut problems = Vec::new();
    check_node("bad", &bad, true, &mut problems);
    assert_eq!(problems.len(), 2, "{problems:?}");
}

#[test]
fn crds_carry_upstream_names() {
    let crds = crds();
    let find = |name: &str| {
        crds.iter()
            .find(|c| c["metadata"]["name"] == name)
            .unwrap_or_else(|| panic!("no CRD {name}"))
    };
    let names = |name: &str| find(name)["spec"]["names"].clone();
    let k8c = names("k8ssandraclusters.k8ssandra.io");
    assert_eq!(k8c["kind"], "K8ssandraCluster");
    assert_eq!(k8c["shortNames"], serde_json::json!(["k8c", "k8cs"]));
    let cassdc = names("cassandradatacenters.cassandra.datastax.com");
    assert_eq!(cassdc["kind"], "CassandraDatacenter");
    assert_eq!(
        cassdc["shortNames"],
        serde_json::json!(["cassdc", "cassdcs"])
    );
    for (name, version) in [
        ("k8ssandraclusters.k8ssandra.io", "v1alpha1"),
        ("cassandradatacenters.cassandra.datastax.com", "v1beta1"),
        ("clientconfigs.config.k8ssandra.io", "v1beta1"),
        ("cassandratasks.control.k8ssandra.io", "v1alpha1"),
        ("k8ssandratasks.control.k8ssandra.io", "v1alpha1"),
        ("replicatedsecrets.replication.k8ssandra.io", "v1alpha1"),
    ] {
        let crd = find(name);
        assert_eq!(crd["spec"]["scope"], "Namespaced", "{name}");
        assert_eq!(crd["spec"]["versions"][0]["name"], version, "{name}");
        assert_eq!(crd["spec"]["versions"][0]["storage"], true, "{name}");
        assert!(
            crd["spec"]["versions"][0]["subresources"]["status"].is_object(),
            "{name}: status subresource"
        );
    }
}

/// Resolves a printer column's simple JSONPath (`.a.b`, `.a.b[?(...)].c`) against a schema.
fn resolves(schema: &Value, json_path: &str) -> bool {
    if json_path.starts_with(".metadata.") {
        return true;
    }
    let mut node = schema;
    for segment in json_path.trim_start_matches('.').split('.') {
        let (field, filtered) = match segment.split_once('[') {
            Some((field, _)) => (field, true),
            None => (segment, false),
        };
        let next = &node["properties"][field];
        if next.is_null() {
            return false;
        }
        node = if filtered { &next["items"] } else { next };
    }
    true
}

#[test]
fn printer_columns_point_at_real_fields() {
    let mut problems = Vec::new();
    for crd in crds() {
        let name = crd["metadata"]["name"].as_str().unwrap_or_default();
        for column in crd["spec"]["versions"][0]["additionalPrinterColumns"]
            .as_array()
            .into_iter()
            .flatten()
        {
            let path = column["jsonPath"].as_str().unwrap_or_default();
            // `...[?(@.type=="Ready")].status` filters conditions; resolve the path without the filter.
            let path = path.replace("[?(@.type==\"Ready\")]", "[]");
            if !resolves(schema_of(&crd), &path) {
                problems.push(format!(
                    "{name}: column {} points at {path}, which the schema lacks",
                    column["name"]
                ));
            }
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
    assert!(!resolves(schema_of(&crds()[0]), ".status.noSuchField"));
}

#[test]
fn users_see_readiness_in_kubectl_get() {
    let crds = crds();
    let columns = |name: &str| -> Vec<String> {
        let crd = crds
            .iter()
            .find(|c| c["metadata"]["name"] == name)
            .expect("CRD exists");
        crd["spec"]["versions"][0]["additionalPrinterColumns"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|c| c["name"].as_str().unwrap_or_default().to_owned())
            .collect()
    };
    let k8c = columns("k8ssandraclusters.k8ssandra.io");
    for expected in ["Ready", "Datacenters", "Error", "Age"] {
        assert!(
            k8c.iter().any(|c| c == expected),
            "K8ssandraCluster lacks column {expected}: {k8c:?}"
        );
    }
    let cassdc = columns("cassandradatacenters.cassandra.datastax.com");
    for expected in ["Size", "Ready", "Progress", "Age"] {
        assert!(
            cassdc.iter().any(|c| c == expected),
            "CassandraDatacenter lacks column {expected}: {cassdc:?}"
        );
    }
}

#[test]
fn sizes_cannot_be_below_one() {
    let crds = crds();
    let schema = |name: &str| {
        schema_of(
            crds.iter()
                .find(|c| c["metadata"]["name"] == name)
                .expect("CRD exists"),
        )
        .clone()
    };
    let cassdc = schema("cassandradatacenters.cassandra.datastax.com");
    assert_eq!(
        cassdc["properties"]["spec"]["properties"]["size"]["minimum"],
        1.0
    );
    let k8c = schema("k8ssandraclusters.k8ssandra.io");
    let dc =
        &k8c["properties"]["spec"]["properties"]["cassandra"]["properties"]["datacenters"]["items"];
    assert_eq!(dc["properties"]["size"]["minimum"], 1.0);
    assert!(
        dc["required"]
            .as_array()
            .is_some_and(|r| r.contains(&"size".into()))
    );
}

#[test]
fn crds_fit_well_within_the_object_size_limit() {
    for crd in crds() {
        let size = serde_json::to_vec(&crd).expect("serialises").len();
        assert!(
            size < MAX_CRD_BYTES,
            "{} is {size} bytes",
            crd["metadata"]["name"]
        );
    }
}
