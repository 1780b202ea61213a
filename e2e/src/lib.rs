//! Local multi-cluster Kubernetes fleet built from real components (kube-apiserver, etcd,
//! kube-controller-manager, kube-scheduler, kwok) and the scenarios that run on it.
//!
//! Not written yet: the harness lands with the local Kubernetes environment work.
