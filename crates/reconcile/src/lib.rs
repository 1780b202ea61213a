//! What every controller of the operator shares, written once:
//!
//! - [`apply`]: server-side apply with the controller's field manager;
//! - [`events`]: Kubernetes Events about the object a controller works on;
//! - [`finalizer`]: finalizers added and removed without overwriting others;
//! - [`hash`]: stable hashes of desired objects, stamped in an annotation;
//! - [`metrics`]: reconcile counts, durations and errors by controller;
//! - [`cache`]: watch caches that passes read instead of the API server, one watch per kind
//!   shared by the controllers it triggers, aware of the operator's own writes;
//! - [`password`]: generated passwords;
//! - [`backoff`]: exponential backoff per key (a pod, a task), kept in memory;
//! - [`identity`]: the `User-Agent` the operator's Kubernetes requests carry;
//! - [`scope`]: the watched namespace's API of a kind, and the time as the API server keeps it;
//! - [`tolerant`]: watched objects that may not decode, kept with their error instead of failing
//!   the watch.

pub mod api_metrics;
pub mod apply;
pub mod backoff;
pub mod cache;
pub mod events;
pub mod finalizer;
pub mod hash;
pub mod identity;
pub mod leader;
pub mod metrics;
pub mod password;
pub mod scope;
pub mod tolerant;
