//! Remote Kubernetes clusters: the kubeconfigs ClientConfigs point to, and the registry of one
//! client and one set of narrow watches per context.

pub mod kubeconfig;
pub mod registry;

pub use kubeconfig::{KubeconfigError, RemoteAccess};
pub use registry::{Health, Registry, Remote, RemoteChange, RemoteCluster, RemoteKind};
