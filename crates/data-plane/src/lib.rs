//! CassandraDatacenter and CassandraTask controllers (the cass-operator role).
//!
//! Not written yet: this crate is an empty placeholder in the workspace layout.
