//! The authorization endpoint's HTTP side (RFC 6749 §3.1, OIDC Core §3.1.2.1): takes
//! the request (or a pushed one), keeps it in the store bound to the browser, and
//! sends the browser through sign-in and consent (pages in `web::signin`) back to the
//! client. The protocol rules are in `authorize_request.rs` and `authorize.rs`; the
//! session checks and the sign-in steps' pages are authentication's (`authn::gate`).

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{header, HeaderMap, Method, Uri};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;
use axum::Router;
use std::sync::Arc;

use super::{AuthRequest, AuthResponse, AuthorizeError, Client, Next, PAR_PREFIX};
use crate::authn::{PendingSignIn, Protocol};
use crate::web::{form_post_page, Browser, PageError};
use crate::AppState;

pub(super) fn router() -> Router<AppState> {
    Router::new().route("/oauth2/authorize", get(authorize).post(authorize))
}

/// The parameters of a request that may come as a GET query or a POST form (the
/// authorization and end-session endpoints accept both: OIDC Core §3.1.2.1,
/// RP-Initiated Logout §2). `None` for a POST that is not form-encoded.
pub(super) fn query_or_form(
    method: &Method,
    uri: &Uri,
    headers: &HeaderMap,
    body: &[u8],
) -> Option<Vec<(String, String)>> {
    let raw: &[u8] = if method == Method::POST {
        let ct = headers
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        if !ct.starts_with("application/x-www-form-urlencoded") {
            return None;
        }
        body
    } else {
        uri.query().unwrap_or("").as_bytes()
    };
    Some(url::form_urlencoded::parse(raw).into_owned().collect())
}

/// RFC 6749 §3.1: GET with a query, or POST with a form (OIDC Core §3.1.2.1).
async fn authorize(
    State(app): State<AppState>,
    browser: Browser,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, PageError> {
    let params = query_or_form(&method, &uri, &headers, &body).ok_or_else(|| {
        PageError::bad_request(
            "The app sent the sign-in request in a form this service cannot read.",
        )
    })?;
    // RFC 9126 §4: a pushed request replaces the parameters (client_id must match).
    let pushed = params
        .iter()
        .find(|(k, _)| k == "request_uri")
        .map(|(_, v)| v.clone());
    let (req, client) = if let Some(request_uri) = pushed {
        let Some(handle) = request_uri.strip_prefix(PAR_PREFIX) else {
            return match super::refuse_request_uri(&app, &params).await {
                AuthorizeError::Page(m) => Err(PageError::bad_request(m)),
                AuthorizeError::Redirect(r) => respond(&app, r),
            };
        };
        let req = super::load_request(&app, handle, true)
            .await
            .map_err(|e| PageError::request_unavailable(e.description))?
            .ok_or_else(|| PageError::bad_request("The app's pushed request has expired or was already used; go back to the app and try again."))?;
        if params
            .iter()
            .find(|(k, _)| k == "client_id")
            .map(|(_, v)| v.as_str())
            != Some(req.client_id.as_str())
        {
            return Err(PageError::bad_request(
                "The request's client_id differs from the pushed request's.",
            ));
        }
        let client = enabled_client(&app, &req.client_id).await?;
        (req, client)
    } else {
        match super::validate_request(&app, &params).await {
            Ok(ok) => ok,
            Err(AuthorizeError::Page(m)) => return Err(PageError::bad_request(m)),
            Err(AuthorizeError::Redirect(r)) => return respond(&app, r),
        }
    };
    // Bound to this browser (issue 14). A cross-site POST carries no SameSite=Lax
    // cookie even when the browser has one: that request is saved unbound and the
    // browser sent on with a GET, which brings the cookie and claims it (`resume` in
    // `web::signin`).
    if browser.request_binding.is_none() && method == Method::POST {
        let h = super::save_request(&app, &req, false)
            .await
            .map_err(|e| PageError::request_unavailable(e.description))?;
        return Ok(Redirect::to(&format!("/oauth2/authorize/resume?request={h}")).into_response());
    }
    let handle = super::save_bound_request(&app, &req, browser.binding())
        .await
        .map_err(|e| PageError::request_unavailable(e.description))?;
    let next = super::decide(&app, &handle, &req, &client, browser.session.as_ref())
        .await
        .map_err(|e| PageError::request_unavailable(e.description))?;
    let mut resp = go(&app, next)?;
    browser.keep_binding(&app, &mut resp);
    Ok(resp)
}

/// The next step of a pending OpenID Connect request of this browser (the pages
/// hand it back here after each sign-in step).
pub(crate) async fn continue_oidc(
    app: &AppState,
    browser: &Browser,
    handle: &str,
    pending: &PendingSignIn,
) -> Result<Response, PageError> {
    if pending.protocol != Protocol::Oidc {
        return Err(PageError::request_expired());
    }
    let req = AuthRequest::from_pending(pending)
        .map_err(|e| PageError::request_unavailable(e.description))?;
    let client = enabled_client(app, &req.client_id).await?;
    let next = super::decide(app, handle, &req, &client, browser.session.as_ref())
        .await
        .map_err(|e| PageError::request_unavailable(e.description))?;
    go(app, next)
}

/// The client of a pending request, if it is still registered and enabled.
async fn enabled_client(app: &AppState, client_id: &str) -> Result<Arc<Client>, PageError> {
    match app
        .clients()
        .get(app.store(), client_id, app.clock().now_ms())
        .await
    {
        Ok(Some(c)) if c.enabled => Ok(c),
        _ => Err(PageError::bad_request("The app is no longer registered.")),
    }
}

/// Where the browser goes for `next`: a page of the sign-in, or back to the app.
fn go(app: &AppState, next: Next) -> Result<Response, PageError> {
    let to = match next {
        Next::SignIn(step) => step.location(),
        Next::Consent(h) => format!("/consent?request={h}"),
        Next::Respond(r) => return respond(app, r),
    };
    Ok(Redirect::to(&to).into_response())
}

/// Back to the client: a 303 redirect with the query, or a self-submitting form
/// (OAuth 2.0 Form Post Response Mode §2).
pub(crate) fn respond(app: &AppState, r: AuthResponse) -> Result<Response, PageError> {
    if !r.form_post {
        return Ok(Redirect::to(&r.location()).into_response());
    }
    form_post_page(app, &r.redirect_uri, &r.params)
}
