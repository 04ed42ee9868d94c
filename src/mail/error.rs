use crate::store::StoreError;

/// What can go wrong in `mail/` (no HTTP here: `AppError` maps it).
#[derive(Debug, thiserror::Error)]
pub enum MailError {
    #[error("{0}")]
    BadFilter(String),
    #[error("no email template named {name:?}; the templates are: {known}")]
    UnknownTemplate { name: String, known: String },
    #[error("rendering email template {template}: {message}")]
    Render { template: String, message: String },
    #[error("building the message: {0}")]
    Message(String),
    #[error("mail configuration: {0}")]
    Config(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<sqlx::Error> for MailError {
    fn from(e: sqlx::Error) -> Self {
        MailError::Store(e.into())
    }
}
