//! Local multi-cluster Kubernetes built from real components (kube-apiserver, etcd,
//! kube-controller-manager, kube-scheduler, kwok), for integration and end-to-end tests.
//!
//! A [`Fleet`] is N independent clusters named like kind's (`kind-k8ssandra-0`, ...), started in
//! parallel on one etcd. Each cluster has fake nodes spread over zones; pod IPs are addresses
//! of the fleet's own network namespace ([`pod_network`]), routed from the test process, so a
//! process of the test (such as a fake Management API) can listen on a pod's IP and port and be
//! reached there, and Services get endpoints as on kind. Pods run but are not Ready until their
//! readiness signal is set ([`readiness`]). Claims of the default `standard` StorageClass are
//! provisioned once their pod is scheduled, as with kind.

mod certs;
pub mod cluster;
pub mod control_plane;
pub mod counting;
pub mod data_plane;
mod etcd;
pub mod fake_management_api;
pub mod fleet;
pub mod kubeconfig;
pub mod logs;
pub mod nodes;
pub mod pod_network;
pub mod process;
pub mod readiness;
pub mod scenario;
mod slots;
mod stages;
pub mod storage;
pub mod tools;
pub mod wait;

use std::{
    path::{Path, PathBuf},
    time::Duration,
};

pub use cluster::LocalCluster;
pub use control_plane::ControlPlaneOperator;
pub use data_plane::DataPlaneOperator;
pub use fake_management_api::FakeManagementApi;
pub use fleet::{Fleet, FleetConfig};

/// Everything that can go wrong while running a local fleet.
#[derive(thiserror::Error)]
pub enum HarnessError {
    /// The Kubernetes binaries are not in the cache.
    #[error("the local Kubernetes tools are not built: run `make tools` (or `make test`) first")]
    ToolsNotBuilt,
    /// The build script did not say where the tools are.
    #[error("cannot locate the local Kubernetes tools: {0}")]
    Tools(String),
    /// A fleet that cannot be built as configured.
    #[error("invalid fleet configuration: {0}")]
    Config(String),
    /// A file or process operation failed.
    #[error("cannot {action}: {source}")]
    Io {
        /// What was being done.
        action: String,
        /// The operating system's error.
        source: std::io::Error,
    },
    /// Every slot is taken.
    #[error("no free slot for another local cluster (too many fleets running?)")]
    NoFreeSlot,
    /// The pod network cannot be made as asked.
    #[error(transparent)]
    Network(#[from] crate::pod_network::NetworkError),
    /// Certificate generation failed.
    #[error("cannot generate certificates: {0}")]
    Certificates(#[from] rcgen::Error),
    /// A kubeconfig could not be read.
    #[error("invalid kubeconfig: {0}")]
    Kubeconfig(String),
    /// A process of the fleet ended on its own.
    #[error("{name} exited ({status}); log {}:\n{log_tail}", log_file.display())]
    ProcessExited {
        /// Which process.
        name: String,
        /// How it ended.
        status: String,
        /// Its log file.
        log_file: PathBuf,
        /// The last lines of its log.
        log_tail: String,
    },
    /// Something awaited did not happen in time.
    #[error("timed out after {after:?} waiting for {what}")]
    Timeout {
        /// What was awaited.
        what: String,
        /// How long.
        after: Duration,
    },
    /// A watch used for waiting failed.
    #[error("waiting failed: {0}")]
    Wait(String),
    /// A manifest could not be read.
    #[error("invalid manifest: {0}")]
    Manifest(String),
    /// A Kubernetes API request failed.
    #[error(transparent)]
    Kube(#[from] kube::Error),
    /// A kube client configuration could not be built.
    #[error("cannot configure the client: {0}")]
    ClientConfig(#[from] kube::config::KubeconfigError),
}

/// Tests end with `expect(...)`, which prints `Debug`: make that the readable message, with the
/// log lines on lines of their own.
impl std::fmt::Debug for HarnessError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Display::fmt(self, f)
    }
}

/// Writes `contents` to `path`.
fn fs_write(path: &Path, contents: impl AsRef<[u8]>) -> Result<(), HarnessError> {
    std::fs::write(path, contents).map_err(|source| HarnessError::Io {
        action: format!("write {}", path.display()),
        source,
    })
}

/// Creates `path` and its parents.
fn create_dir(path: &Path) -> Result<(), HarnessError> {
    std::fs::create_dir_all(path).map_err(|source| HarnessError::Io {
        action: format!("create {}", path.display()),
        source,
    })
}

/// A fresh folder for the fleet `name`'s files: `<target>/e2e/<name>`, or under
/// `K8SSANDRA_E2E_DIR` when set. The previous run's folder of that name is removed.
fn run_dir(name: &str) -> Result<PathBuf, HarnessError> {
    let base = match std::env::var_os("K8SSANDRA_E2E_DIR") {
        Some(dir) => PathBuf::from(dir),
        None => target_dir().join("e2e"),
    };
    let dir = base.join(name);
    if dir.exists() {
        std::fs::remove_dir_all(&dir).map_err(|source| HarnessError::Io {
            action: format!("remove {}", dir.display()),
            source,
        })?;
    }
    create_dir(&dir)?;
    Ok(dir)
}

/// Cargo's target folder: the nearest folder above the running binary that holds Cargo's
/// `CACHEDIR.TAG` (test binaries are in `<target>/<profile>/deps`, others in `<target>/<profile>`).
fn target_dir() -> PathBuf {
    std::env::current_exe()
        .ok()
        .and_then(|exe| {
            exe.ancestors()
                .find(|dir| dir.join("CACHEDIR.TAG").is_file())
                .map(Path::to_path_buf)
        })
        .unwrap_or_else(|| std::env::temp_dir().join("k8ssandra-e2e"))
}
