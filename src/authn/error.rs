use crate::audit::AuditError;
use crate::store::StoreError;

#[derive(Debug, thiserror::Error)]
pub enum AuthnError {
    /// Unknown username, wrong password or no password set: one message for all
    /// three, so the answer reveals nothing about which accounts exist.
    #[error("the username or password is not correct")]
    InvalidCredentials,
    #[error("too many failed sign-ins for this username; try again in {minutes} minute(s)")]
    Locked { minutes: i64 },
    /// More attempts for one name at once than `max_failures`: refused unchecked.
    #[error("too many sign-ins for this username at once; wait a moment and try again")]
    Busy,
    #[error("too many sign-in attempts from this address; wait a minute and try again")]
    RateLimited,
    /// Only said after the right password: the person is not active in the directory.
    #[error("this account is {0}; ask the registrar or your administrator")]
    Inactive(String),
    #[error("{0}")]
    PasswordPolicy(String),
    #[error("no person {0}")]
    UnknownPerson(String),
    #[error("hashing failed: {0}")]
    Hash(String),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Audit(#[from] AuditError),
}

impl From<sqlx::Error> for AuthnError {
    fn from(e: sqlx::Error) -> Self {
        AuthnError::Store(e.into())
    }
}
