//! Request and response types of the Management API.

pub mod endpoints;
pub mod features;
pub mod job;
pub mod keyspace;
pub mod probe;
pub mod roles;
pub mod tables;
