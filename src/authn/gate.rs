//! The checks every app's sign-in passes, OpenID Connect (`oidc::decide`) or SAML
//! (`federation::saml_idp`): a fresh enough session of the person the app expects,
//! the second factor the app and the person's role need, a password the person
//! chose, an active account. Each protocol maps a [`Refusal`] to its own error (OIDC
//! Core §3.1.2.6 error codes; SAML core §3.2.2.2 status codes).

use super::mfa::{self, Assurance};
use super::pending::Demands;
use super::{AuthnError, Session};
use crate::AppState;

/// Where the browser goes next, for a step of the sign-in itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NextStep {
    Login(String),
    SelectAccount(String),
    /// An administrator set the password: the person chooses their own first.
    ChangePassword(String),
    /// The app or the person's role needs a stronger sign-in than the session's
    /// (`authn::mfa`): add a second factor, then continue.
    StepUp(String),
}

impl NextStep {
    /// The page of that step, carrying the pending sign-in's handle.
    pub fn location(&self) -> String {
        match self {
            NextStep::Login(h) => format!("/login?request={h}"),
            NextStep::SelectAccount(h) => format!("/select-account?request={h}"),
            NextStep::StepUp(h) => format!("/login/mfa/step-up?request={h}"),
            NextStep::ChangePassword(h) => format!("/portal/password?required=1&request={h}"),
        }
    }
}

/// The outcome of the checks.
#[derive(Debug)]
pub enum Gate<'s> {
    /// Signed in as needed: answer the app.
    Proceed(&'s Session),
    /// The browser has something to do first.
    Go(NextStep),
    /// The app asked for no interaction (`prompt=none`, SAML `IsPassive`) and some is
    /// needed, or the account cannot sign in: an error for the app, in its protocol.
    Refuse(Refusal),
}

/// Why the sign-in cannot answer the app now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    LoginRequired,
    SecondFactorRequired,
    PasswordChangeRequired,
    AccountInactive,
}

/// Runs the common checks for the pending sign-in `handle`; `app_needs_mfa` is the
/// app's own setting (`mfa_required`).
pub async fn gate<'s>(
    app: &AppState,
    handle: &str,
    req: Demands<'_>,
    app_needs_mfa: bool,
    session: Option<&'s Session>,
) -> Result<Gate<'s>, AuthnError> {
    let now_s = app.clock().now_secs();
    let none = req.has_prompt("none");
    let fresh_enough = |s: &Session| match req.max_age {
        Some(max) => now_s - s.auth_time_secs() <= max,
        None => true,
    };
    let expected = |s: &Session| req.expected_sub.is_none_or(|sub| sub == s.person_id);
    // A session of another person than the app expects (`id_token_hint`) is not
    // used: with prompt=none that is login_required (OIDC Core §3.1.2.6), else the
    // person signs in again (and may then continue as whoever they sign in as).
    let session = match session {
        Some(s) if !req.has_prompt("login") && fresh_enough(s) && expected(s) => s,
        _ if none => return Ok(Gate::Refuse(Refusal::LoginRequired)),
        _ => return Ok(Gate::Go(NextStep::Login(handle.to_string()))),
    };
    if req.has_prompt("select_account") {
        return Ok(Gate::Go(NextStep::SelectAccount(handle.to_string())));
    }
    // The second factor the app (`mfa_required`, `acr_values`) or the person's role
    // needs; a role granted after sign-in counts from the next authorization.
    let mut needed = mfa::required_for_person(app, &session.person_id)
        .await?
        .max(Assurance::from_acr_values(req.acr_values));
    if app_needs_mfa {
        needed = needed.max(Assurance::Mfa);
    }
    if Assurance::of_amr(&session.amr) < needed {
        if none {
            return Ok(Gate::Refuse(Refusal::SecondFactorRequired));
        }
        return Ok(Gate::Go(NextStep::StepUp(handle.to_string())));
    }
    if super::must_change_password(app, &session.person_id).await? {
        if none {
            return Ok(Gate::Refuse(Refusal::PasswordChangeRequired));
        }
        return Ok(Gate::Go(NextStep::ChangePassword(handle.to_string())));
    }
    let person = crate::directory::get_person(app.store(), &session.person_id)
        .await
        .map_err(|e| match e {
            crate::directory::DirectoryError::Store(s) => AuthnError::Store(s),
            other => AuthnError::Store(crate::store::StoreError::Corrupt(other.to_string())),
        })?;
    if person.status != "active" {
        return Ok(Gate::Refuse(Refusal::AccountInactive));
    }
    Ok(Gate::Proceed(session))
}
