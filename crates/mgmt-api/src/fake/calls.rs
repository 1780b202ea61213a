//! The record of every request the fake servers received.

use std::net::IpAddr;

use crate::route::Route;

/// One request as received.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordedCall {
    /// Pod name of the node that received it.
    pub pod: String,
    /// IP of the node that received it.
    pub ip: IpAddr,
    /// The client's `User-Agent`, if it sent one.
    pub user_agent: Option<String>,
    /// HTTP method.
    pub method: String,
    /// Path without query.
    pub path: String,
    /// Query string without `?`, passwords replaced by `***`.
    pub query: String,
    /// The route, when the path and method are known.
    pub route: Option<Route>,
    /// The server incarnation that received it, so a restarted pod's calls stay apart.
    pub(crate) server: u64,
}

impl RecordedCall {
    /// True for every method but GET.
    pub fn is_write(&self) -> bool {
        self.method != "GET"
    }
}

/// A list of recorded calls with counting helpers.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CallLog {
    /// The calls, oldest first.
    pub calls: Vec<RecordedCall>,
}

impl CallLog {
    /// Number of calls of `route`.
    pub fn count(&self, route: Route) -> usize {
        self.calls.iter().filter(|c| c.route == Some(route)).count()
    }

    /// Number of calls that may change something (every method but GET).
    pub fn write_count(&self) -> usize {
        self.calls.iter().filter(|c| c.is_write()).count()
    }

    /// Total number of calls.
    pub fn len(&self) -> usize {
        self.calls.len()
    }

    /// True when nothing was called.
    pub fn is_empty(&self) -> bool {
        self.calls.is_empty()
    }

    /// The pods that received a call of one of `routes`, in call order, once per call.
    pub fn pods_called(&self, routes: &[Route]) -> Vec<String> {
        self.calls
            .iter()
            .filter(|c| c.route.is_some_and(|r| routes.contains(&r)))
            .map(|c| c.pod.clone())
            .collect()
    }

    /// Calls received by pod `pod`.
    pub fn for_pod(&self, pod: &str) -> CallLog {
        CallLog {
            calls: self
                .calls
                .iter()
                .filter(|c| c.pod == pod)
                .cloned()
                .collect(),
        }
    }
}
