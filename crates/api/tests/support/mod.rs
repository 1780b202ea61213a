//! Shared helpers of the api crate's tests: reading the sample and fixture YAML documents.

// Test helpers fail loudly on malformed fixtures.
#![allow(clippy::expect_used)]

use std::path::{Path, PathBuf};

use serde::Deserialize;

/// One YAML document, with the file it came from.
pub struct Document {
    /// File the document came from, for messages.
    pub file: String,
    /// The document as JSON.
    pub value: serde_json::Value,
}

impl Document {
    /// `apiVersion` and `kind` of the document.
    pub fn type_meta(&self) -> (&str, &str) {
        (
            self.value["apiVersion"].as_str().unwrap_or_default(),
            self.value["kind"].as_str().unwrap_or_default(),
        )
    }
}

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// Every document of every YAML file in `dir` (relative to the workspace root), in file order.
pub fn documents_in(dir: &str) -> Vec<Document> {
    let root = workspace_root();
    let mut files: Vec<PathBuf> = std::fs::read_dir(root.join(dir))
        .unwrap_or_else(|e| panic!("reading {dir}: {e}"))
        .map(|entry| entry.expect("directory entry").path())
        .filter(|path| {
            path.extension().is_some_and(|e| e == "yaml") && !path.ends_with("kustomization.yaml")
        })
        .collect();
    files.sort();
    let mut documents = Vec::new();
    for path in files {
        let text = std::fs::read_to_string(&path).expect("readable YAML file");
        for document in serde_yaml::Deserializer::from_str(&text) {
            let value = serde_json::Value::deserialize(document)
                .unwrap_or_else(|e| panic!("{}: not YAML: {e}", path.display()));
            if !value.is_null() {
                let file = path
                    .strip_prefix(&root)
                    .unwrap_or(&path)
                    .display()
                    .to_string();
                documents.push(Document { file, value });
            }
        }
    }
    documents
}

/// The samples users apply (`config/samples`) and the upstream-style test documents.
pub fn all_documents() -> Vec<Document> {
    let mut documents = documents_in("config/samples");
    documents.extend(documents_in("crates/api/tests/fixtures"));
    documents
}
