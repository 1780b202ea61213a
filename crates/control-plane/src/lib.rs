//! Remote cluster registry, K8ssandraCluster, ReplicatedSecret and K8ssandraTask controllers
//! (the k8ssandra-operator control-plane role).
//!
//! Not written yet: this crate is an empty placeholder in the workspace layout.
