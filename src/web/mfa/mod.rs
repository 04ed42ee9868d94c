//! The second step of signing in (passkey, authenticator code, recovery code), the
//! step-up an app or the portal asks for, and setting up a first factor at sign-in.
//! The policy itself is `authn::mfa`; the portal's factor pages are `portal::security`.

mod challenge;
mod enroll;
mod totp_page;

use axum::Router;

use crate::AppState;

pub(crate) use totp_page::totp_setup_page;

pub(super) fn router() -> Router<AppState> {
    Router::new()
        .merge(challenge::router())
        .merge(enroll::router())
}
