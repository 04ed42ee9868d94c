use crate::audit::AuditError;
use crate::store::StoreError;

#[derive(Debug, thiserror::Error)]
pub enum JobError {
    #[error("no job named {0:?}")]
    UnknownJob(String),
    /// A schedule or time zone the hub cannot use; says what to fix.
    #[error("{0}")]
    Config(String),
    /// A run of the job is in progress (its lease is live).
    #[error("the job {0} is running now; try again when it has finished")]
    Busy(String),
    #[error("the scheduler failed: {0}")]
    Scheduler(String),
    #[error(transparent)]
    Audit(#[from] AuditError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<sqlx::Error> for JobError {
    fn from(e: sqlx::Error) -> Self {
        JobError::Store(e.into())
    }
}

impl From<tokio_cron_scheduler::JobSchedulerError> for JobError {
    fn from(e: tokio_cron_scheduler::JobSchedulerError) -> Self {
        JobError::Scheduler(e.to_string())
    }
}
