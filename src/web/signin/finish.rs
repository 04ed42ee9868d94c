//! How every sign-in finishes, whatever its first factor (password, district IdP,
//! passkey, or the second step): a second factor when the person or the app needs
//! one (`authn::mfa`), then a new session, then the app's pending request or the
//! portal.

use axum::response::{IntoResponse, Redirect, Response};

use crate::authn::mfa::{self, Assurance};
use crate::authn::{AuthnError, BoundPending, NewSession, PendingSignIn};
use crate::oidc;
use crate::web::cookies::{set_flow, set_session, Flow};
use crate::web::{Browser, PageError};
use crate::AppState;

/// After any successful first factor (password, upstream IdP, passkey): the second
/// factor when the person or the app needs one (`authn::mfa`), else the session.
pub(crate) async fn start_session(
    app: &AppState,
    browser: &Browser,
    person_id: &str,
    amr: Vec<String>,
    acr: &str,
    request: Option<&str>,
) -> Result<Response, PageError> {
    pending_for(app, browser, request).await?;
    let needed = needed_for(app, person_id, request)
        .await
        .map_err(PageError::unavailable)?;
    if Assurance::of_amr(&amr) < needed {
        return ask_second_factor(app, browser, person_id, &amr, acr, request, needed).await;
    }
    open_session(app, browser, person_id, amr, acr, request).await
}

/// What this person needs for this sign-in: their own policy, and the app's
/// (`mfa_required`, `acr_values`) when the sign-in is for an app.
pub(crate) async fn needed_for(
    app: &AppState,
    person_id: &str,
    request: Option<&str>,
) -> Result<Assurance, AuthnError> {
    let mut needed = mfa::required_for_person(app, person_id).await?;
    if let Some(h) = request {
        if let Ok(Some(req)) = crate::authn::load_pending(app, h, false).await {
            needed = needed.max(Assurance::from_acr_values(req.acr_values.as_deref()));
            // An OpenID Connect client's own setting (a SAML app's is in its
            // `acr_values` already).
            let client = app
                .clients()
                .get(app.store(), &req.app_id, app.clock().now_ms())
                .await
                .ok()
                .flatten();
            if client.is_some_and(|c| c.settings.mfa_required) {
                needed = needed.max(Assurance::Mfa);
            }
        }
    }
    Ok(needed)
}

/// The first factor is done; the second is asked for on `/login/mfa`.
pub(crate) async fn ask_second_factor(
    app: &AppState,
    browser: &Browser,
    person_id: &str,
    amr: &[String],
    acr: &str,
    request: Option<&str>,
    needed: Assurance,
) -> Result<Response, PageError> {
    let handle = mfa::begin_pending(app, person_id, amr, acr, request, needed)
        .await
        .map_err(PageError::unavailable)?;
    let mut resp = Redirect::to("/login/mfa").into_response();
    let ttl = app.config().mfa.challenge_ttl_seconds;
    set_flow(app, &mut resp, Flow::Mfa, &handle, ttl);
    Ok(browser.finish(app, resp))
}

/// A new session (and cookie), then the pending authorization request resumed, or
/// the portal.
pub(crate) async fn open_session(
    app: &AppState,
    browser: &Browser,
    person_id: &str,
    amr: Vec<String>,
    acr: &str,
    request: Option<&str>,
) -> Result<Response, PageError> {
    // Checked before anything changes: someone else's request neither starts a
    // session here nor has its prompt changed (issue 14).
    let req = pending_for(app, browser, request).await?;
    let origin = browser.origin();
    let new = NewSession {
        person_id: person_id.to_string(),
        amr,
        acr: acr.to_string(),
        user_agent: browser.user_agent.clone(),
    };
    // Signing in as someone else in this browser ends the old session (and its apps'
    // grants); the same person signing in again (prompt=login, max_age) keeps them,
    // moved to the new session below.
    let previous = browser.session.as_ref();
    if let Some(old) = previous.filter(|o| o.person_id != person_id) {
        if let Err(e) = oidc::sign_out(app, &old.person_id, Some(&old.id), &origin).await {
            tracing::error!(error = %e.description, "ending the previous session failed");
        }
    }
    // A new session (and cookie) on every sign-in: no session fixation.
    let (session, token) = crate::authn::create_session(app, new, &origin)
        .await
        .map_err(PageError::unavailable)?;
    if let Some(old) = previous.filter(|o| o.person_id == person_id) {
        if let Err(e) = oidc::move_session_grants(app, &old.id, &session.id).await {
            tracing::error!(error = %e.description, "moving grants to the new session failed");
        }
    }
    let mut resp = match request {
        Some(h) => {
            // The person just signed in: prompt=login and max_age are satisfied.
            if let Some(mut req) = req {
                req.prompt.retain(|p| p != "login" && p != "select_account");
                req.max_age = None;
                // Whoever signed in now is who continues (`id_token_hint`).
                req.expected_sub = None;
                let _ = crate::authn::update_pending(app, h, &req).await;
            }
            Redirect::to(&format!("/oauth2/authorize/resume?request={h}")).into_response()
        }
        None => Redirect::to("/portal").into_response(),
    };
    // An administrator set this password: the person chooses their own first (a
    // pending sign-in gets there through `authn::gate`, which enforces it for every app).
    if request.is_none()
        && crate::authn::must_change_password(app, person_id)
            .await
            .unwrap_or(false)
    {
        resp = Redirect::to("/portal/password?required=1").into_response();
    }
    set_session(app, &mut resp, &token);
    // A new CSRF token with the new session (issue 14): one planted or read before
    // the sign-in is useless after it.
    Ok(browser.rotate_csrf(app, resp))
}

/// The pending request a sign-in continues, if it is still there; refused (a page)
/// only when it belongs to another browser (issue 14). A gone request lets the
/// sign-in go on, and `resume` then says it expired.
pub(super) async fn pending_for(
    app: &AppState,
    browser: &Browser,
    request: Option<&str>,
) -> Result<Option<PendingSignIn>, PageError> {
    let Some(h) = request else {
        return Ok(None);
    };
    match crate::authn::load_bound_pending(app, h, Some(browser.binding())).await {
        Ok(BoundPending::Found(r)) => Ok(Some(*r)),
        Ok(BoundPending::Gone) => Ok(None),
        Ok(BoundPending::OtherBrowser) => Err(PageError::other_browser()),
        Err(e) => Err(PageError::unavailable(e)),
    }
}
