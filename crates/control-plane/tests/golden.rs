//! Golden-file tests: every `fixtures/<case>/input.yaml` (a K8ssandraCluster; the samples of
//! `config/samples` are linked in) is built into its CassandraDatacenters, which must equal
//! `datacenters.yaml` beside it; `contexts.yaml` says where each goes.
//!
//! `UPDATE_GOLDEN=1 cargo test -p k8ssandra-control-plane --test golden` rewrites the expected
//! files from the builders; review the diff by hand against upstream's behaviour before keeping it.

// A test that cannot read its fixtures fails loudly.
#![allow(clippy::expect_used, clippy::panic)]

use std::path::Path;

use k8ssandra_api::{k8ssandra::K8ssandraCluster, labels::annotations, merge};
use k8ssandra_control_plane::build::{desired_datacenters, replication};
use serde_json::{Value, json};

#[test]
fn builders_match_the_golden_files() {
    let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
    k8ssandra_golden::check_cases(&fixtures, 6, |name, input| {
        let mut cluster: K8ssandraCluster =
            serde_json::from_value(input.into_iter().next().expect("one document"))
                .unwrap_or_else(|e| panic!("{name}/input.yaml: {e}"));
        // As `kubectl apply` would, into the default namespace.
        cluster
            .metadata
            .namespace
            .get_or_insert_with(|| "default".to_owned());
        let recorded = cluster
            .metadata
            .annotations
            .as_ref()
            .and_then(|a| a.get(annotations::INITIAL_SYSTEM_REPLICATION));
        let initial = match recorded {
            Some(value) => replication::from_annotation(value).expect("recorded replication"),
            None => replication::initial_system_replication(&merge::resolve_datacenters(&cluster)),
        };
        let desired =
            desired_datacenters(&cluster, &initial).unwrap_or_else(|e| panic!("{name}: {e}"));
        let contexts: serde_json::Map<String, Value> = desired
            .iter()
            .map(|d| {
                let dc = d.datacenter.metadata.name.clone().unwrap_or_default();
                (dc, json!(d.context))
            })
            .collect();
        let objects = desired
            .iter()
            .map(|d| serde_json::to_value(&d.datacenter).expect("serialise"))
            .collect();
        vec![
            ("contexts.yaml".to_owned(), vec![Value::Object(contexts)]),
            ("datacenters.yaml".to_owned(), objects),
        ]
    });
}
