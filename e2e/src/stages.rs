//! The kwok configuration of a local cluster: kwok's own node stages and pod clean-up stages,
//! plus this project's pod-readiness and volume stages.

use std::path::{Path, PathBuf};

use crate::HarnessError;

/// Stages kwok ships (in the tool cache) that are used as they are.
const KWOK_STAGE_FILES: &[&str] = &[
    "node-initialize.yaml",
    "node-heartbeat-with-lease.yaml",
    "pod-complete.yaml",
    "pod-delete.yaml",
];

/// Running-but-not-ready pods and the readiness signal (replaces kwok's pod-ready stage).
const POD_LIFECYCLE: &str = include_str!("stages/pod-lifecycle.yaml");
/// The `standard` StorageClass's provisioner.
const LOCAL_VOLUMES: &str = include_str!("stages/local-volumes.yaml");

/// Writes the combined stage file for kwok's `--config` into `dir` and returns its path.
pub fn write_kwok_config(kwok_stages_dir: &Path, dir: &Path) -> Result<PathBuf, HarnessError> {
    let mut documents = Vec::new();
    for file in KWOK_STAGE_FILES {
        let path = kwok_stages_dir.join(file);
        let text = std::fs::read_to_string(&path).map_err(|source| HarnessError::Io {
            action: format!("read kwok stage {}", path.display()),
            source,
        })?;
        documents.push(text);
    }
    documents.push(POD_LIFECYCLE.to_string());
    documents.push(LOCAL_VOLUMES.to_string());
    let path = dir.join("kwok-stages.yaml");
    crate::fs_write(&path, documents.join("\n---\n"))?;
    Ok(path)
}

#[cfg(test)]
mod tests {
    use serde::Deserialize;

    use super::*;

    #[test]
    fn own_stages_parse_and_use_the_shared_names() {
        for text in [POD_LIFECYCLE, LOCAL_VOLUMES] {
            for document in serde_yaml::Deserializer::from_str(text) {
                let value = serde_yaml::Value::deserialize(document).unwrap();
                assert_eq!(value["kind"], "Stage");
            }
        }
        assert!(POD_LIFECYCLE.contains(crate::readiness::READY_ANNOTATION));
        assert!(LOCAL_VOLUMES.contains(crate::storage::PROVISIONER));
    }
}
