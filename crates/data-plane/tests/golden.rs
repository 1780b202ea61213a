//! Golden-file tests: every `fixtures/<case>/input.yaml` (a CassandraDatacenter) is built into its
//! children, which must equal the expected files beside it (compared as parsed JSON values).
//!
//! `UPDATE_GOLDEN=1 cargo test -p k8ssandra-data-plane --test golden` rewrites the expected
//! files from the builders; review the diff by hand against upstream's behaviour before keeping it.

// A test that cannot read its fixtures fails loudly.
#![allow(clippy::expect_used, clippy::unwrap_used, clippy::panic)]

use std::path::{Path, PathBuf};

use k8ssandra_api::cassandra::CassandraDatacenter;
use k8ssandra_data_plane::build::{
    images::ImageConfig, pdb, services, statefulset, superuser_secret,
};
use serde::Serialize;
use serde_json::Value;

/// Fixed "random" bytes, so the generated password is the same on every run.
const PASSWORD_BYTES: [u8; superuser_secret::PASSWORD_RANDOM_BYTES] =
    [42; superuser_secret::PASSWORD_RANDOM_BYTES];

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures")
}

fn to_values<T: Serialize>(objects: &[T]) -> Vec<Value> {
    objects
        .iter()
        .map(|o| serde_json::to_value(o).expect("serialise"))
        .collect()
}

/// Every output file of a case, by file name, as the documents it holds.
fn build_case(dc: &CassandraDatacenter) -> Vec<(String, Vec<Value>)> {
    let images = ImageConfig::default();
    let mut out = vec![(
        "services.yaml".to_owned(),
        to_values(&services::services(dc, &[]).expect("services")),
    )];
    if dc
        .spec
        .additional_seeds
        .as_ref()
        .is_some_and(|s| !s.is_empty())
    {
        out.push((
            "endpointslices.yaml".to_owned(),
            to_values(&services::additional_seed_endpoint_slices(dc).expect("slices")),
        ));
    }
    for plan in statefulset::rack_plan(dc) {
        let replicas = i32::try_from(plan.nodes).unwrap();
        let sts = statefulset::statefulset(dc, &plan.rack, replicas, &images).expect("sts");
        out.push((
            format!("statefulset-{}.yaml", plan.rack.name),
            to_values(&[sts]),
        ));
    }
    out.push((
        "pdb.yaml".to_owned(),
        to_values(&[pdb::pod_disruption_budget(dc).expect("pdb")]),
    ));
    if let Some(secret) = superuser_secret::superuser_secret(dc, &PASSWORD_BYTES) {
        out.push(("superuser-secret.yaml".to_owned(), to_values(&[secret])));
    }
    out
}

#[test]
fn builders_match_the_golden_files() {
    k8ssandra_golden::check_cases(&fixtures(), 9, |name, input| {
        let dc: CassandraDatacenter =
            serde_json::from_value(input.into_iter().next().expect("one document"))
                .unwrap_or_else(|e| panic!("{name}/input.yaml: {e}"));
        build_case(&dc)
    });
}
