//! Golden-file checks for the builders' tests: each case is a folder of fixtures holding an
//! `input.yaml`; what a builder makes of it must equal the expected YAML files beside it, compared
//! as parsed JSON values, with every difference reported by its path.
//!
//! With `UPDATE_GOLDEN=1` the expected files are rewritten from the builders instead (and files
//! no builder makes any more are removed); the diff is then reviewed by hand.

// A golden check that cannot read its fixtures fails the test loudly.
#![allow(clippy::expect_used, clippy::panic)]

use std::{
    fmt::Write as _,
    path::{Path, PathBuf},
};

use serde::Deserialize as _;
use serde_json::Value;

/// One output file of a case: its name and the documents it holds.
pub type Output = (String, Vec<Value>);

/// Checks (or, with `UPDATE_GOLDEN=1`, rewrites) every case under `fixtures`: `build` gets the
/// case's name and the documents of its `input.yaml` and returns the files it makes. Panics with
/// every difference when any case differs, or when fewer than `min_cases` cases are found.
pub fn check_cases(
    fixtures: &Path,
    min_cases: usize,
    build: impl Fn(&str, Vec<Value>) -> Vec<Output>,
) {
    let update = std::env::var("UPDATE_GOLDEN").is_ok_and(|v| v == "1");
    let mut cases: Vec<PathBuf> = std::fs::read_dir(fixtures)
        .expect("fixtures directory")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.join("input.yaml").is_file())
        .collect();
    cases.sort();
    assert!(
        cases.len() >= min_cases,
        "expected at least {min_cases} fixture cases"
    );

    let mut report = String::new();
    for case in &cases {
        let name = case.file_name().and_then(|n| n.to_str()).unwrap_or("?");
        let built = build(name, read_documents(&case.join("input.yaml")));

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

/// The documents of a YAML file (empty documents left out).
pub fn read_documents(path: &Path) -> Vec<Value> {
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

#[cfg(test)]
mod tests {
    use super::*;

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
}
