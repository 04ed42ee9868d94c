use crate::audit::AuditError;
use crate::error::FieldError;
use crate::store::StoreError;

#[derive(Debug, thiserror::Error)]
pub enum DirectoryError {
    #[error("invalid input")]
    Invalid(Vec<FieldError>),
    #[error("no {kind} {id}")]
    NotFound { kind: &'static str, id: String },
    #[error("{0}")]
    Conflict(String),
    /// `If-Match` named another version; carries the current `ETag`.
    #[error("the record has changed since it was read (its ETag is now {0})")]
    PreconditionFailed(String),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Audit(#[from] AuditError),
}

impl From<sqlx::Error> for DirectoryError {
    fn from(e: sqlx::Error) -> Self {
        DirectoryError::Store(e.into())
    }
}

impl DirectoryError {
    pub fn field(field: impl Into<String>, reason: impl Into<String>) -> Self {
        DirectoryError::Invalid(vec![FieldError::new(field, reason)])
    }
}
