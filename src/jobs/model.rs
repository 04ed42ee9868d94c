//! A run as the store keeps it and as the API shows it.

use serde::Serialize;

use crate::clock::Timestamp;

/// One run of a job: a scheduled slot, or a manual run.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct JobRun {
    pub id: String,
    pub job: String,
    /// `scheduled` or `manual`.
    pub kind: String,
    /// The scheduled time the run belongs to (a manual run: when it was asked for).
    #[serde(with = "crate::clock::rfc3339")]
    pub slot: Timestamp,
    /// The process that ran it (`host:pid:id`).
    pub replica: String,
    #[serde(with = "crate::clock::rfc3339")]
    pub started_at: Timestamp,
    #[serde(with = "optional_rfc3339")]
    pub ended_at: Option<Timestamp>,
    /// `running`, `succeeded` or `failed`.
    pub outcome: String,
    pub items: Option<i64>,
    pub detail: Option<String>,
    pub error: Option<String>,
}

impl JobRun {
    pub fn succeeded(&self) -> bool {
        self.outcome == OUTCOME_SUCCEEDED
    }
}

pub const KIND_SCHEDULED: &str = "scheduled";
pub const KIND_MANUAL: &str = "manual";
pub const OUTCOME_RUNNING: &str = "running";
pub const OUTCOME_SUCCEEDED: &str = "succeeded";
pub const OUTCOME_FAILED: &str = "failed";

/// A job as `GET /api/v1/jobs` and `hms-ach jobs list` show it.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct JobView {
    pub name: String,
    pub description: String,
    pub schedule: String,
    pub time_zone: String,
    /// Whether this process's scheduler runs it (`[jobs] enabled`).
    pub enabled: bool,
    #[serde(with = "optional_rfc3339")]
    pub next_run: Option<Timestamp>,
    pub last_run: Option<JobRun>,
}

mod optional_rfc3339 {
    use crate::clock::Timestamp;
    use serde::Serializer;

    pub fn serialize<S: Serializer>(t: &Option<Timestamp>, s: S) -> Result<S::Ok, S::Error> {
        match t {
            Some(t) => s.serialize_str(&t.to_rfc3339()),
            None => s.serialize_none(),
        }
    }
}
