use crate::audit::AuditError;
use crate::store::StoreError;

#[derive(Debug, thiserror::Error)]
pub enum AuthzError {
    #[error("{0}")]
    Unauthenticated(String),
    #[error("{0}")]
    Forbidden(String),
    #[error("no role with code {0:?}")]
    UnknownRole(String),
    #[error("no org {0:?}")]
    UnknownOrg(String),
    #[error("authorization policy error: {0}")]
    Policy(String),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Audit(#[from] AuditError),
}

impl From<sqlx::Error> for AuthzError {
    fn from(e: sqlx::Error) -> Self {
        AuthzError::Store(e.into())
    }
}

impl From<casbin::Error> for AuthzError {
    fn from(e: casbin::Error) -> Self {
        AuthzError::Policy(e.to_string())
    }
}
