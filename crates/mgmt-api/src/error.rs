//! Errors of Management API calls. Every message names the pod and the call.

use std::time::Duration;

use crate::route::Route;

/// Longest part of a response body kept in an error message.
const BODY_EXCERPT_CHARS: usize = 300;

/// A failed Management API call.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// The server answered with a status outside 2xx.
    #[error("{route} on {pod}: HTTP {status}{}", excerpt_suffix(.body))]
    Status {
        /// Pod name and IP, like `dc1-sts-0 (10.0.0.5)`.
        pod: String,
        /// The call.
        route: Route,
        /// HTTP status code.
        status: u16,
        /// Start of the response body, secrets scrubbed.
        body: String,
    },
    /// No complete answer within the call's timeout.
    #[error("{route} on {pod}: no answer within {}", format_duration(.after))]
    Timeout {
        /// Pod name and IP.
        pod: String,
        /// The call.
        route: Route,
        /// The timeout that expired.
        after: Duration,
    },
    /// Connecting, the TLS handshake or the HTTP exchange failed.
    #[error("{route} on {pod}: transport failure: {message}")]
    Transport {
        /// Pod name and IP.
        pod: String,
        /// The call.
        route: Route,
        /// What failed.
        message: String,
    },
    /// A 2xx answer whose body could not be understood.
    #[error("{route} on {pod}: undecodable answer: {message}")]
    Decode {
        /// Pod name and IP.
        pod: String,
        /// The call.
        route: Route,
        /// What could not be decoded.
        message: String,
    },
}

impl Error {
    /// The call that failed.
    pub fn route(&self) -> Route {
        match self {
            Error::Status { route, .. }
            | Error::Timeout { route, .. }
            | Error::Transport { route, .. }
            | Error::Decode { route, .. } => *route,
        }
    }

    /// The pod the call was sent to, as `name (ip)`.
    pub fn pod(&self) -> &str {
        match self {
            Error::Status { pod, .. }
            | Error::Timeout { pod, .. }
            | Error::Transport { pod, .. }
            | Error::Decode { pod, .. } => pod,
        }
    }

    /// The HTTP status when the server answered non-2xx.
    pub fn status(&self) -> Option<u16> {
        match self {
            Error::Status { status, .. } => Some(*status),
            _ => None,
        }
    }

    /// True for an HTTP 404 answer.
    pub fn is_not_found(&self) -> bool {
        self.status() == Some(404)
    }

    /// True when the call timed out.
    pub fn is_timeout(&self) -> bool {
        matches!(self, Error::Timeout { .. })
    }

    /// Stable, low-cardinality label for metrics and events: `http_4xx`, `http_5xx`, `timeout`, ...
    pub fn result_label(&self) -> &'static str {
        match self {
            Error::Status { status, .. } => status_label(*status),
            Error::Timeout { .. } => "timeout",
            Error::Transport { .. } => "transport",
            Error::Decode { .. } => "decode",
        }
    }
}

/// Metric label of an HTTP status class.
pub(crate) fn status_label(status: u16) -> &'static str {
    match status {
        200..=299 => "success",
        300..=399 => "http_3xx",
        400..=499 => "http_4xx",
        500..=599 => "http_5xx",
        _ => "http_other",
    }
}

/// The first characters of a response body, on one line.
pub(crate) fn body_excerpt(body: &[u8]) -> String {
    let text = String::from_utf8_lossy(body);
    let one_line: String = text.split_whitespace().collect::<Vec<_>>().join(" ");
    if one_line.chars().count() <= BODY_EXCERPT_CHARS {
        one_line
    } else {
        let cut: String = one_line.chars().take(BODY_EXCERPT_CHARS).collect();
        format!("{cut}...")
    }
}

fn excerpt_suffix(body: &str) -> String {
    if body.is_empty() {
        String::new()
    } else {
        format!(": {body}")
    }
}

fn format_duration(duration: &Duration) -> String {
    if duration.subsec_millis() == 0 {
        format!("{}s", duration.as_secs())
    } else {
        format!("{}ms", duration.as_millis())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_name_pod_and_call() {
        let status = Error::Status {
            pod: "dc1-rack1-sts-0 (10.1.2.3)".into(),
            route: Route::LifecycleStart,
            status: 500,
            body: "Error starting Cassandra".into(),
        };
        assert_eq!(
            status.to_string(),
            "POST /api/v0/lifecycle/start on dc1-rack1-sts-0 (10.1.2.3): HTTP 500: Error starting Cassandra"
        );
        let timeout = Error::Timeout {
            pod: "p (10.0.0.1)".into(),
            route: Route::Endpoints,
            after: Duration::from_millis(250),
        };
        assert_eq!(
            timeout.to_string(),
            "GET /api/v0/metadata/endpoints on p (10.0.0.1): no answer within 250ms"
        );
        let transport = Error::Transport {
            pod: "p (10.0.0.1)".into(),
            route: Route::Drain,
            message: "connection refused".into(),
        };
        assert!(
            transport
                .to_string()
                .contains("POST /api/v0/ops/node/drain on p (10.0.0.1)")
        );
        let decode = Error::Decode {
            pod: "p (10.0.0.1)".into(),
            route: Route::JobStatus,
            message: "expected value".into(),
        };
        assert!(
            decode
                .to_string()
                .starts_with("GET /api/v0/ops/executor/job on p (10.0.0.1)")
        );
        assert_eq!(decode.pod(), "p (10.0.0.1)");
    }

    #[test]
    fn empty_body_adds_nothing() {
        let status = Error::Status {
            pod: "p (10.0.0.1)".into(),
            route: Route::Readiness,
            status: 500,
            body: String::new(),
        };
        assert_eq!(
            status.to_string(),
            "GET /api/v0/probes/readiness on p (10.0.0.1): HTTP 500"
        );
    }

    #[test]
    fn labels_classify() {
        assert_eq!(status_label(201), "success");
        assert_eq!(status_label(404), "http_4xx");
        assert_eq!(status_label(503), "http_5xx");
        let timeout = Error::Timeout {
            pod: String::new(),
            route: Route::Drain,
            after: Duration::from_secs(1),
        };
        assert_eq!(timeout.result_label(), "timeout");
        assert!(timeout.is_timeout());
        assert!(!timeout.is_not_found());
    }

    #[test]
    fn excerpt_is_short_and_single_line() {
        assert_eq!(body_excerpt(b"a\n  b\tc"), "a b c");
        let long = "x".repeat(1000);
        let excerpt = body_excerpt(long.as_bytes());
        assert_eq!(excerpt.chars().count(), BODY_EXCERPT_CHARS + 3);
    }
}
