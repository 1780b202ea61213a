//! Jobs of the Management API executor (`GET /api/v0/ops/executor/job`) and job ids of v1 calls.

use serde::{Deserialize, Deserializer, Serialize};

/// The id of a job started by an asynchronous (v1) call.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct JobId(pub String);

impl JobId {
    /// Reads a job id from a response body: plain text, possibly quoted, possibly with a newline.
    pub fn parse(body: &str) -> Option<JobId> {
        let trimmed = body.trim();
        let unquoted = trimmed
            .strip_prefix('"')
            .and_then(|rest| rest.strip_suffix('"'))
            .unwrap_or(trimmed)
            .trim();
        if unquoted.is_empty() || unquoted.contains(char::is_whitespace) {
            None
        } else {
            Some(JobId(unquoted.to_string()))
        }
    }

    /// The id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for JobId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// State of a job.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JobStatus {
    /// Still running.
    Waiting,
    /// Finished successfully.
    Completed,
    /// Failed; see [`Job::error`].
    Error,
    /// Any other value, as written.
    Other(String),
}

impl JobStatus {
    /// The wire value.
    pub fn as_str(&self) -> &str {
        match self {
            JobStatus::Waiting => "WAITING",
            JobStatus::Completed => "COMPLETED",
            JobStatus::Error => "ERROR",
            JobStatus::Other(other) => other,
        }
    }

    fn parse(raw: &str) -> JobStatus {
        match raw.trim().to_ascii_uppercase().as_str() {
            "WAITING" => JobStatus::Waiting,
            "COMPLETED" => JobStatus::Completed,
            "ERROR" => JobStatus::Error,
            _ => JobStatus::Other(raw.to_string()),
        }
    }
}

impl Serialize for JobStatus {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for JobStatus {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let raw = String::deserialize(deserializer)?;
        Ok(JobStatus::parse(&raw))
    }
}

/// One status transition of a job.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StatusChange {
    /// The new status.
    #[serde(default)]
    pub status: Option<String>,
    /// When, in milliseconds since the epoch.
    #[serde(default, deserialize_with = "lenient_millis")]
    pub change_time: Option<i64>,
    /// Message attached to the change.
    #[serde(default)]
    pub message: Option<String>,
}

/// A job as the executor reports it. Timestamps are accepted as numbers or strings: the real server
/// serialises them as strings although its OpenAPI says int64.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Job {
    /// Job id.
    pub id: String,
    /// Operation, like `decommission` or `cleanup`.
    #[serde(rename = "type", default)]
    pub job_type: String,
    /// Current status.
    pub status: JobStatus,
    /// Submission time, milliseconds since the epoch.
    #[serde(default, deserialize_with = "lenient_millis")]
    pub submit_time: Option<i64>,
    /// End time, milliseconds since the epoch (absent or 0 while waiting).
    #[serde(default, deserialize_with = "lenient_millis")]
    pub end_time: Option<i64>,
    /// Error message of a failed job.
    #[serde(default)]
    pub error: Option<String>,
    /// History of the job.
    #[serde(default)]
    pub status_changes: Vec<StatusChange>,
}

impl Job {
    /// True once the job completed or failed.
    pub fn is_finished(&self) -> bool {
        matches!(self.status, JobStatus::Completed | JobStatus::Error)
    }
}

/// Accepts an integer, a string holding an integer, an empty string or null.
fn lenient_millis<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<i64>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Raw {
        Number(i64),
        Float(f64),
        Text(String),
    }
    match Option::<Raw>::deserialize(deserializer)? {
        None => Ok(None),
        Some(Raw::Number(value)) => Ok(Some(value)),
        // Millisecond timestamps fit an f64 mantissa exactly.
        #[allow(clippy::cast_possible_truncation)]
        Some(Raw::Float(value)) => Ok(Some(value as i64)),
        Some(Raw::Text(text)) if text.trim().is_empty() => Ok(None),
        Some(Raw::Text(text)) => text
            .trim()
            .parse()
            .map(Some)
            .map_err(|_| serde::de::Error::custom(format!("not a timestamp: {text:?}"))),
    }
}

/// Accepts an integer or a string holding one (upstream sends `jobs` as a string).
pub(crate) fn lenient_i32<'de, D: Deserializer<'de>>(
    deserializer: D,
) -> Result<Option<i32>, D::Error> {
    match lenient_millis(deserializer)? {
        None => Ok(None),
        Some(value) => i32::try_from(value)
            .map(Some)
            .map_err(|_| serde::de::Error::custom(format!("out of range: {value}"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn job_id_plain_quoted_and_padded() {
        assert_eq!(JobId::parse("abc-1").map(|j| j.0), Some("abc-1".into()));
        assert_eq!(
            JobId::parse("\"abc-1\"\n").map(|j| j.0),
            Some("abc-1".into())
        );
        assert_eq!(
            JobId::parse("  abc-1 \r\n").map(|j| j.0),
            Some("abc-1".into())
        );
        assert_eq!(JobId::parse(""), None);
        assert_eq!(JobId::parse("\"\""), None);
        assert_eq!(JobId::parse("two words"), None);
    }

    #[test]
    fn job_with_string_timestamps_as_the_real_server_sends() {
        let job: Job = serde_json::from_str(
            r#"{"id":"j1","type":"cleanup","status":"COMPLETED","submit_time":"1700000000000",
                "end_time":"1700000001000","error":null,
                "status_changes":[{"status":"COMPLETED","change_time":"1700000001000","message":null}]}"#,
        )
        .unwrap();
        assert_eq!(job.status, JobStatus::Completed);
        assert_eq!(job.submit_time, Some(1_700_000_000_000));
        assert_eq!(job.end_time, Some(1_700_000_001_000));
        assert_eq!(job.status_changes[0].change_time, Some(1_700_000_001_000));
        assert!(job.is_finished());
    }

    #[test]
    fn job_with_numeric_timestamps_as_the_openapi_says() {
        let job: Job = serde_json::from_str(
            r#"{"id":"j2","type":"decommission","status":"ERROR","submit_time":1700000000000,
                "end_time":0,"error":"boom","status_changes":[]}"#,
        )
        .unwrap();
        assert_eq!(job.status, JobStatus::Error);
        assert_eq!(job.submit_time, Some(1_700_000_000_000));
        assert_eq!(job.end_time, Some(0));
        assert_eq!(job.error.as_deref(), Some("boom"));
    }

    #[test]
    fn waiting_job_with_missing_fields() {
        let job: Job =
            serde_json::from_str(r#"{"id":"j3","status":"WAITING","end_time":""}"#).unwrap();
        assert_eq!(job.status, JobStatus::Waiting);
        assert_eq!(job.end_time, None);
        assert!(!job.is_finished());
    }

    #[test]
    fn bad_timestamp_is_an_error() {
        assert!(
            serde_json::from_str::<Job>(r#"{"id":"j","status":"WAITING","submit_time":"soon"}"#)
                .is_err()
        );
    }
}
