//! Authentication of people: local passwords (argon2id, guessing slowed but never
//! locked, no enumeration),
//! browser sessions kept in the store, CSRF tokens for every form, and second
//! factors (passkeys, TOTP, recovery codes) with the policy of who needs one.
//!
//! It also owns an app's pending sign-in (`pending`: kept while the person signs in,
//! continued as OpenID Connect or SAML) and the checks every app's sign-in passes
//! (`gate`), so that `oidc` and `federation` share them without importing each other.

mod backoff;
mod csrf;
mod error;
mod factor_record;
pub mod factors;
mod factors_repo;
mod gate;
mod http;
pub mod mfa;
pub mod passkeys;
mod passwords;
mod pending;
pub mod recovery;
mod sessions;
mod sessions_repo;
mod throttle;
pub mod totp;

pub use csrf::{csrf_token, csrf_valid};
pub use error::AuthnError;
pub use gate::{gate, Gate, NextStep, Refusal};
pub use mfa::{Assurance, ACR_MFA, ACR_PASSKEY};
pub use passkeys::Passkeys;
pub use passwords::{
    change_password, has_password, hash_password, must_change_password, set_password, sign_in,
    PasswordHasher,
};
pub use pending::{
    claim_pending, drop_pending, load_bound_pending, load_pending, save_bound_pending,
    save_pending, update_pending, BoundPending, Demands, PendingSignIn, Protocol,
};
pub use sessions::{
    create_session, end_all_sessions, end_session, find_session, list_sessions, open_session,
    NewSession, Session, ACR_PASSWORD,
};
pub use throttle::IpThrottle;

pub fn router() -> axum::Router<crate::AppState> {
    http::router()
}
