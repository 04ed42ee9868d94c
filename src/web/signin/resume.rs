//! Back to the app's pending request after each sign-in step (sign-in, second
//! factor, account choice, consent, a new password). A pending sign-in
//! (`authn::PendingSignIn`) says which protocol continues it, OpenID Connect or SAML;
//! each answers its own (`oidc::continue_oidc`, `federation::saml_idp::continue_saml`),
//! and this is the one place that knows both.

use axum::extract::{Query, State};
use axum::response::Response;
use axum::routing::get;
use axum::Router;
use serde::Deserialize;

use crate::authn::{self, BoundPending, PendingSignIn, Protocol};
use crate::web::{Browser, PageError};
use crate::AppState;

pub(super) fn router() -> Router<AppState> {
    // The path is the authorization endpoint's: it is where a cross-site POST of a
    // request (OIDC form, SAML POST binding) is first seen with the browser's cookies.
    Router::new().route("/oauth2/authorize/resume", get(resume))
}

#[derive(Deserialize)]
struct ResumeQuery {
    request: String,
}

/// After sign-in, account choice or consent: decide again with the new state. The
/// first same-site GET after a cross-site POST also claims the request for this
/// browser (the OIDC form POST and the SAML POST binding save it unbound).
async fn resume(
    State(app): State<AppState>,
    browser: Browser,
    Query(q): Query<ResumeQuery>,
) -> Result<Response, PageError> {
    let claimed = authn::claim_pending(&app, &q.request, browser.binding())
        .await
        .map_err(PageError::request_unavailable)?;
    let mut resp = continue_request(&app, &browser, &q.request).await?;
    if claimed {
        browser.keep_binding(&app, &mut resp);
    }
    Ok(resp)
}

/// The pending request `handle`, if this browser started it; else the page to show:
/// expired, or started in another browser (then left untouched for its own).
pub(crate) async fn bound_request(
    app: &AppState,
    browser: &Browser,
    handle: &str,
) -> Result<PendingSignIn, PageError> {
    match authn::load_bound_pending(app, handle, Some(browser.binding())).await {
        Ok(BoundPending::Found(r)) => Ok(*r),
        Ok(BoundPending::Gone) => Err(PageError::request_expired()),
        Ok(BoundPending::OtherBrowser) => Err(PageError::other_browser()),
        Err(e) => Err(PageError::request_unavailable(e)),
    }
}

/// The next step of the pending request `handle`, in its own protocol.
pub(crate) async fn continue_request(
    app: &AppState,
    browser: &Browser,
    handle: &str,
) -> Result<Response, PageError> {
    let req = bound_request(app, browser, handle).await?;
    match req.protocol {
        Protocol::Saml => {
            crate::federation::saml_idp::continue_saml(app, browser, handle, &req).await
        }
        Protocol::Oidc => crate::oidc::continue_oidc(app, browser, handle, &req).await,
    }
}
