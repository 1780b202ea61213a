//! Every sample and upstream-style document parses into the types and serialises back without
//! losing or changing a field.

mod support;

use k8s_openapi::api::core::v1::Secret;
use k8ssandra_api::{
    cassandra::CassandraDatacenter,
    config::ClientConfig,
    control::{CassandraTask, K8ssandraTask, ScheduledTask},
    k8ssandra::K8ssandraCluster,
    replication::ReplicatedSecret,
    validation,
};
use serde::{Serialize, de::DeserializeOwned};
use serde_json::Value;

fn round_trip<T: DeserializeOwned + Serialize>(value: &Value) -> Result<(T, Value), String> {
    let typed: T =
        serde_json::from_value(value.clone()).map_err(|e| format!("does not parse: {e}"))?;
    let back = serde_json::to_value(&typed).map_err(|e| format!("does not serialise: {e}"))?;
    Ok((typed, back))
}

/// The first difference between what was written and what came back, as a path and both values.
/// Null values count as absent, and a number written where Kubernetes keeps a string (quantities)
/// equals the same number as a string.
fn first_difference(path: &str, written: &Value, back: &Value) -> Option<String> {
    match (written, back) {
        (Value::Object(a), Value::Object(b)) => {
            for (key, value) in a.iter().filter(|(_, v)| !v.is_null()) {
                let Some(other) = b.get(key) else {
                    return Some(format!("{path}.{key}: lost"));
                };
                if let Some(diff) = first_difference(&format!("{path}.{key}"), value, other) {
                    return Some(diff);
                }
            }
            b.iter()
                .find(|(key, value)| !value.is_null() && a.get(*key).is_none_or(Value::is_null))
                .map(|(key, _)| format!("{path}.{key}: added"))
        }
        (Value::Array(a), Value::Array(b)) if a.len() == b.len() => a
            .iter()
            .zip(b)
            .enumerate()
            .find_map(|(i, (x, y))| first_difference(&format!("{path}[{i}]"), x, y)),
        (Value::Number(n), Value::String(s)) if n.to_string() == *s => None,
        _ if written == back => None,
        _ => Some(format!("{path}: wrote {written}, got {back}")),
    }
}

#[test]
fn every_document_round_trips_without_losing_a_field() {
    let documents = support::all_documents();
    assert!(
        documents.len() >= 15,
        "expected the samples and fixtures, found {}",
        documents.len()
    );
    let mut failures = Vec::new();
    for document in &documents {
        let (api_version, kind) = document.type_meta();
        let back = match (api_version, kind) {
            ("k8ssandra.io/v1alpha1", "K8ssandraCluster") => {
                round_trip::<K8ssandraCluster>(&document.value).map(|r| r.1)
            }
            ("cassandra.datastax.com/v1beta1", "CassandraDatacenter") => {
                round_trip::<CassandraDatacenter>(&document.value).map(|r| r.1)
            }
            ("config.k8ssandra.io/v1beta1", "ClientConfig") => {
                round_trip::<ClientConfig>(&document.value).map(|r| r.1)
            }
            ("control.k8ssandra.io/v1alpha1", "CassandraTask") => {
                round_trip::<CassandraTask>(&document.value).map(|r| r.1)
            }
            ("control.k8ssandra.io/v1alpha1", "K8ssandraTask") => {
                round_trip::<K8ssandraTask>(&document.value).map(|r| r.1)
            }
            ("control.k8ssandra.io/v1alpha1", "ScheduledTask") => {
                round_trip::<ScheduledTask>(&document.value).map(|r| r.1)
            }
            ("replication.k8ssandra.io/v1alpha1", "ReplicatedSecret") => {
                round_trip::<ReplicatedSecret>(&document.value).map(|r| r.1)
            }
            ("v1", "Secret") => round_trip::<Secret>(&document.value).map(|r| r.1),
            other => Err(format!("unexpected document type {other:?}")),
        };
        let name = document.value["metadata"]["name"].as_str().unwrap_or("?");
        match back {
            Err(e) => failures.push(format!("{} {kind}/{name}: {e}", document.file)),
            Ok(back) => {
                if let Some(diff) = first_difference("", &document.value, &back) {
                    failures.push(format!("{} {kind}/{name}: {diff}", document.file));
                }
            }
        }
    }
    assert!(
        failures.is_empty(),
        "documents that do not round-trip:\n{}",
        failures.join("\n")
    );
}

#[test]
fn the_comparison_notices_a_lost_field() {
    let written = serde_json::json!({"spec": {"size": 3, "extra": true}});
    let back = serde_json::json!({"spec": {"size": 3}});
    assert_eq!(
        first_difference("", &written, &back).as_deref(),
        Some(".spec.extra: lost")
    );
    let changed = serde_json::json!({"spec": {"size": 4, "extra": true}});
    assert!(first_difference("", &written, &changed).is_some());
    let quantity = serde_json::json!({"cpu": 1});
    assert!(first_difference("", &quantity, &serde_json::json!({"cpu": "1"})).is_none());
}

#[test]
fn every_sample_and_fixture_passes_the_operators_validation() {
    let mut failures = Vec::new();
    for document in support::all_documents() {
        let result = match document.type_meta() {
            (_, "K8ssandraCluster") => {
                let k8c: K8ssandraCluster =
                    serde_json::from_value(document.value.clone()).expect("parses");
                validation::validate_k8ssandra_cluster(&k8c, None)
            }
            (_, "CassandraDatacenter") => {
                let dc: CassandraDatacenter =
                    serde_json::from_value(document.value.clone()).expect("parses");
                validation::validate_datacenter(&dc)
            }
            _ => Ok(()),
        };
        if let Err(e) = result {
            failures.push(format!("{}: {e}", document.file));
        }
    }
    assert!(
        failures.is_empty(),
        "valid documents reported invalid:\n{}",
        failures.join("\n")
    );
}
