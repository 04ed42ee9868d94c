//! The signed-in person's own pages: profile, live sessions (sign out one or
//! everywhere), connected apps (withdraw consent), password, and sign-in security
//! (passkeys, authenticator app, recovery codes).

mod apps;
mod password;
mod profile;
mod security;
mod sessions;

use axum::Router;

use crate::authn::Session;
use crate::web::{Browser, PageError};
use crate::AppState;

pub(super) fn router() -> Router<AppState> {
    Router::new()
        .merge(profile::router())
        .merge(sessions::router())
        .merge(apps::router())
        .merge(password::router())
        .merge(security::router())
}

/// The signed-in person's session, or sign in first.
fn signed_in(browser: &Browser) -> Result<&Session, PageError> {
    browser.session.as_ref().ok_or_else(PageError::to_login)
}

/// A portal form: the signed-in session, with the form's CSRF check passed.
fn checked_session<'b>(
    app: &AppState,
    browser: &'b Browser,
    csrf: Option<&str>,
) -> Result<&'b Session, PageError> {
    let session = signed_in(browser)?;
    if !browser.csrf_ok(app, csrf) {
        return Err(PageError::csrf());
    }
    Ok(session)
}
