//! Where the locally built Kubernetes parts are: asks `e2e/tools/build.sh`, which owns the cache.

use std::{collections::HashMap, path::PathBuf, process::Command};

use crate::HarnessError;

/// Exit code of `build.sh --no-build` when a tool is missing from the cache.
const EXIT_NOT_BUILT: i32 = 3;

/// Paths of the binaries and kwok stage files that a local cluster runs.
#[derive(Clone, Debug)]
pub struct Tools {
    /// The Kubernetes release the binaries were built from, e.g. `v1.34.10`.
    pub kubernetes_version: String,
    /// `kube-apiserver`.
    pub kube_apiserver: PathBuf,
    /// `kube-controller-manager`.
    pub kube_controller_manager: PathBuf,
    /// `kube-scheduler`.
    pub kube_scheduler: PathBuf,
    /// `etcd`.
    pub etcd: PathBuf,
    /// `kwok`, the fake-kubelet controller.
    pub kwok: PathBuf,
    /// `helm` v3.
    pub helm: PathBuf,
    /// Folder of kwok's own stage files, one stage per file.
    pub kwok_stages_dir: PathBuf,
}

impl Tools {
    /// Locates the cached tools without building: `make tools` (or `make test`) builds them.
    pub fn locate() -> Result<Self, HarnessError> {
        let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tools/build.sh");
        let output = Command::new("bash")
            .arg(&script)
            .args(["--print-env", "--no-build"])
            .output()
            .map_err(|source| HarnessError::Io {
                action: format!("run {}", script.display()),
                source,
            })?;
        if output.status.code() == Some(EXIT_NOT_BUILT) {
            return Err(HarnessError::ToolsNotBuilt);
        }
        if !output.status.success() {
            return Err(HarnessError::Tools(format!(
                "{} --print-env failed ({}): {}",
                script.display(),
                output.status,
                String::from_utf8_lossy(&output.stderr).trim()
            )));
        }
        Self::from_env_lines(&String::from_utf8_lossy(&output.stdout))
    }

    /// Reads the `KEY=value` lines that `build.sh --print-env` prints.
    fn from_env_lines(text: &str) -> Result<Self, HarnessError> {
        let vars: HashMap<&str, &str> = text
            .lines()
            .filter_map(|line| line.split_once('='))
            .collect();
        let get = |key: &str| {
            vars.get(key)
                .map(|value| value.to_string())
                .ok_or_else(|| HarnessError::Tools(format!("build.sh --print-env gave no {key}")))
        };
        let path = |key: &str| get(key).map(PathBuf::from);
        Ok(Self {
            kubernetes_version: get("K8S_TOOLS_KUBERNETES_VERSION")?,
            kube_apiserver: path("K8S_TOOLS_BIN_KUBE_APISERVER")?,
            kube_controller_manager: path("K8S_TOOLS_BIN_KUBE_CONTROLLER_MANAGER")?,
            kube_scheduler: path("K8S_TOOLS_BIN_KUBE_SCHEDULER")?,
            etcd: path("K8S_TOOLS_BIN_ETCD")?,
            kwok: path("K8S_TOOLS_BIN_KWOK")?,
            helm: path("K8S_TOOLS_BIN_HELM")?,
            kwok_stages_dir: path("K8S_TOOLS_KWOK_STAGES_DIR")?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_print_env_output() {
        let text = "K8S_TOOLS_KUBERNETES_VERSION=v1.34.10\n\
            K8S_TOOLS_BIN_KUBE_APISERVER=/c/k/kube-apiserver\n\
            K8S_TOOLS_BIN_KUBE_CONTROLLER_MANAGER=/c/k/kube-controller-manager\n\
            K8S_TOOLS_BIN_KUBE_SCHEDULER=/c/k/kube-scheduler\n\
            K8S_TOOLS_BIN_ETCD=/c/e/etcd\n\
            K8S_TOOLS_BIN_KWOK=/c/w/kwok\n\
            K8S_TOOLS_BIN_HELM=/c/h/helm\n\
            K8S_TOOLS_KWOK_STAGES_DIR=/c/w/stages\n";
        let tools = Tools::from_env_lines(text).unwrap();
        assert_eq!(tools.kubernetes_version, "v1.34.10");
        assert_eq!(tools.kwok, PathBuf::from("/c/w/kwok"));
        assert_eq!(tools.kwok_stages_dir, PathBuf::from("/c/w/stages"));
    }

    #[test]
    fn names_the_missing_variable() {
        let err = Tools::from_env_lines("K8S_TOOLS_KUBERNETES_VERSION=v1.34.10\n").unwrap_err();
        assert!(
            err.to_string().contains("K8S_TOOLS_BIN_KUBE_APISERVER"),
            "{err}"
        );
    }
}
