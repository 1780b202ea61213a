//! Golden-file tests: every `fixtures/<case>/input.yaml` (a CassandraDatacenter) is built into its
//! children, which must equal the expected files beside it (compared as parsed JSON values).
//!
//! `UPDATE_GOLDEN=1 cargo test -p k8ssandra-data-plane --test golden` rewrites the expected
//! files from the builders; review the diff by hand against upstream's behaviour before keeping it.

// A test that cannot read its fixtures fails loudly.
#![allow(clippy::expect_used, clippy::unwrap_used, clippy::panic)]

use std::{
    fmt::Write as _,
    path::{Path, PathBuf},
};

use k8ssandra_api::cassandra::CassandraDatacenter;
use k8ssandra_data_plane::build::{
    images::ImageConfig, pdb, services, statefulset, superuser_secret,
};
use serde::{Deserialize as _, Serialize};
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

fn read_documents(path: &Path) -> Vec<Value> {
    let text = std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("{}: {e} (UPDATE_GOLDEN=1 creates it)", path.display()));
    serde_yaml::Deserializer::from_str(&text)
        .map(|doc| Value::deserialize(doc).unwrap_or_else(|e| panic!("{}: {e}", path.display())))
        .filter(|v| !v.is_null())
        .collect()
}

fn write_documents(path: &Path, docs: &[Value]) {
    let rendered: Vec<String> = docs
        .iter()
        .map(|d| serde_yaml::to_string(d).expect("yaml"))
        .collect();
    std::fs::write(path, rendered.join("---\n")).expect("write golden file");
}

/// Every difference between `expected` and `actual`, as `path: expected …, got …` lines.
fn differences(path: &str, expected: &Value, actual: &Value, out: &mut Vec<String>) {
    match (expected, actual) {
        (Value::Object(e), Value::Object(a)) => {
            let mut keys: Vec<&String> = e.keys().chain(a.keys()).collect();
            keys.sort();
            keys.dedup();
            for key in keys {
                let child = format!("{path}.{key}");
                match (e.get(key), a.get(key)) {
                    (Some(ev), Some(av)) => differences(&child, ev, av, out),
                    (Some(ev), None) => out.push(format!("{child}: missing, expected {ev}")),
                    (None, Some(av)) => out.push(format!("{child}: unexpected {av}")),
                    (None, None) => {}
                }
            }
        }
        (Value::Array(e), Value::Array(a)) => {
            for i in 0..e.len().max(a.len()) {
                let child = format!("{path}[{i}]");
                match (e.get(i), a.get(i)) {
                    (Some(ev), Some(av)) => differences(&child, ev, av, out),
                    (Some(ev), None) => out.push(format!("{child}: missing, expected {ev}")),
                    (None, Some(av)) => out.push(format!("{child}: unexpected {av}")),
                    (None, None) => {}
                }
            }
        }
        (e, a) if e != a => out.push(format!("{path}: expected {e}, got {a}")),
        _ => {}
    }
}

#[test]
fn builders_match_the_golden_files() {
    let update = std::env::var("UPDATE_GOLDEN").is_ok_and(|v| v == "1");
    let mut cases: Vec<PathBuf> = std::fs::read_dir(fixtures())
        .expect("fixtures directory")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.join("input.yaml").is_file())
        .collect();
    cases.sort();
    assert!(cases.len() >= 9, "expected at least nine fixture cases");

    let mut report = String::new();
    for case in &cases {
        let name = case.file_name().and_then(|n| n.to_str()).unwrap_or("?");
        let input = read_documents(&case.join("input.yaml"));
        let dc: CassandraDatacenter =
            serde_json::from_value(input.into_iter().next().expect("one document"))
                .unwrap_or_else(|e| panic!("{name}/input.yaml: {e}"));
        let built = build_case(&dc);

        // Expected files nobody builds any more are stale.
        let produced: Vec<&str> = built.iter().map(|(f, _)| f.as_str()).collect();
        for entry in std::fs::read_dir(case).expect("case directory") {
            let file = entry
                .expect("entry")
                .file_name()
                .to_string_lossy()
                .into_owned();
            if file != "input.yaml" && !produced.contains(&file.as_str()) {
                if update {
                    std::fs::remove_file(case.join(&file)).expect("remove stale file");
                } else {
                    let _ = writeln!(report, "{name}/{file}: not built any more");
                }
            }
        }

        for (file, actual) in &built {
            let path = case.join(file);
            if update {
                write_documents(&path, actual);
                continue;
            }
            let expected = read_documents(&path);
            let mut diffs = Vec::new();
            differences(
                "",
                &Value::Array(expected),
                &Value::Array(actual.clone()),
                &mut diffs,
            );
            if !diffs.is_empty() {
                let _ = writeln!(report, "{name}/{file}:");
                for line in diffs.iter().take(40) {
                    let _ = writeln!(report, "  {line}");
                }
                if diffs.len() > 40 {
                    let _ = writeln!(report, "  ... and {} more", diffs.len() - 40);
                }
            }
        }
    }
    assert!(
        report.is_empty(),
        "built objects differ from the golden files (UPDATE_GOLDEN=1 rewrites them):\n{report}"
    );
}

#[test]
fn the_diff_reports_changed_missing_and_extra_fields() {
    let expected = serde_json::json!({"a": 1, "b": [1, 2], "c": "x"});
    let actual = serde_json::json!({"a": 2, "b": [1], "d": true, "c": "x"});
    let mut diffs = Vec::new();
    differences("", &expected, &actual, &mut diffs);
    assert_eq!(
        diffs,
        vec![
            ".a: expected 1, got 2",
            ".b[1]: missing, expected 2",
            ".d: unexpected true",
        ]
    );
}
