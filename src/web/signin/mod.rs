//! Signing in: the sign-in page (password, district IdPs, passkey), how every
//! sign-in finishes (a second factor when needed, then the session), account choice
//! and consent for OpenID Connect apps, and the return to the app's pending request
//! (OpenID Connect or SAML).

mod consent;
mod finish;
mod login;
mod passwordless;
mod resume;
mod upstream;

use axum::Router;

use crate::AppState;

pub(crate) use finish::{ask_second_factor, needed_for, open_session};
pub(crate) use resume::{bound_request, continue_request};

pub(super) fn router() -> Router<AppState> {
    Router::new()
        .merge(login::router())
        .merge(consent::router())
        .merge(passwordless::router())
        .merge(upstream::router())
        .merge(resume::router())
}
