use crate::store::StoreError;

#[derive(Debug, thiserror::Error)]
pub enum OutboxError {
    #[error("{0}")]
    BadFilter(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<sqlx::Error> for OutboxError {
    fn from(e: sqlx::Error) -> Self {
        OutboxError::Store(e.into())
    }
}
