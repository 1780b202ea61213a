//! Typed client of the Cassandra Management API, and (feature `fake`) a simulated Cassandra cluster
//! serving the same HTTP API.
//!
//! Not written yet: this crate is an empty placeholder in the workspace layout.
