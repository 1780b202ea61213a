//! The data plane (cass-operator's role): turns a `CassandraDatacenter` into its Kubernetes
//! children and, later, drives every Cassandra node through the Management API.
//!
//! Today this crate holds the **pure builders** ([`build`]): given a datacenter (and a few explicit
//! facts such as the rack and its current replica count) they return the objects upstream
//! cass-operator creates, with upstream's names, labels, annotations and shapes:
//!
//! - [`build::services`]: the datacenter, seed, all-pods, additional-seed and NodePort Services,
//!   and the EndpointSlices of the additional seeds;
//! - [`build::statefulset`] and [`build::pod_template`]: one StatefulSet per rack;
//! - [`build::pdb`]: the PodDisruptionBudget;
//! - [`build::superuser_secret`]: the generated superuser Secret;
//! - [`build::hash`]: the stable hash stamped on each object for change detection;
//! - [`build::owner`]: the controller owner reference every owned object carries.
//!
//! Nothing here does I/O, reads the clock or draws random numbers: the superuser password is made
//! from random bytes the caller passes in.
//!
//! The controllers: [`datacenter`] runs a `CassandraDatacenter`, and [`task`] runs a
//! `CassandraTask` (cleanup, flush, upgradesstables, rebuild, restart, replacenode) on its pods.

pub mod build;
pub mod datacenter;
pub mod task;
