use crate::error::FieldError;
use crate::store::StoreError;

#[derive(Debug, thiserror::Error)]
pub enum OutboxError {
    #[error("{0}")]
    BadFilter(String),
    /// A subscriber's settings that do not hold (field, reason).
    #[error("invalid subscriber")]
    Invalid(Vec<FieldError>),
    #[error("subscriber {0} not found")]
    NotFound(String),
    /// The subscriber is declared in the configuration: change it there.
    #[error("{0}")]
    ReadOnly(String),
    #[error("a subscriber named {0} exists")]
    Duplicate(String),
    /// A sink could not be built (a sealed secret that does not open…).
    #[error("{0}")]
    Sink(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<sqlx::Error> for OutboxError {
    fn from(e: sqlx::Error) -> Self {
        OutboxError::Store(e.into())
    }
}

impl From<crate::audit::AuditError> for OutboxError {
    fn from(e: crate::audit::AuditError) -> Self {
        match e {
            crate::audit::AuditError::Store(s) => OutboxError::Store(s),
            crate::audit::AuditError::BadFilter(m) => OutboxError::BadFilter(m),
        }
    }
}
