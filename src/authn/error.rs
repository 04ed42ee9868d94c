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
    /// Password guessing from this address (for this account, or for many): the next
    /// attempt may come in `seconds` (`authn::backoff`). Said the same for names that
    /// exist and names that do not.
    #[error("too many failed sign-ins from here; wait {} and try again", wait_text(*seconds))]
    Slowed { seconds: i64 },
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
    /// A WebAuthn ceremony failed; the text says why (never a secret).
    #[error("the passkey could not be used: {0}")]
    Passkey(String),
    #[error("this step has expired or was already used; start signing in again")]
    ChallengeExpired,
    #[error("that code is not right (or was already used); try the next one")]
    WrongSecondFactor,
    #[error("too many wrong codes; sign in again from the start")]
    TooManyAttempts,
    /// Removing this factor would leave a privileged person without one their role needs.
    #[error("this is the last factor your role allows; add another before removing it")]
    LastFactor,
    /// A pending sign-in's stored form could not be read or written (`authn::pending`).
    #[error("a pending sign-in could not be read or written: {0}")]
    PendingSignIn(String),
    #[error("hashing failed: {0}")]
    Hash(String),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Audit(#[from] AuditError),
}

fn wait_text(seconds: i64) -> String {
    match seconds {
        ..=1 => "a second".into(),
        2..=119 => format!("{seconds} seconds"),
        _ => format!("{} minutes", (seconds + 59) / 60),
    }
}

impl From<sqlx::Error> for AuthnError {
    fn from(e: sqlx::Error) -> Self {
        AuthnError::Store(e.into())
    }
}
