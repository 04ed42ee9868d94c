//! The browser side of the authorization endpoint: takes the request (or a pushed
//! one), keeps it in the store, and moves the browser through sign-in and consent
//! back to the client.

use axum::body::Bytes;
use axum::extract::{Query, State};
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;
use axum::Router;
use serde::Deserialize;

use super::{error_page, Browser};
use crate::oidc::{self, AuthResponse, AuthorizeError, Next, PAR_PREFIX};
use crate::AppState;

pub(super) fn router() -> Router<AppState> {
    Router::new()
        .route("/oauth2/authorize", get(authorize).post(authorize))
        .route("/oauth2/authorize/resume", get(resume))
}

fn unavailable(app: &AppState, e: impl std::fmt::Display) -> Response {
    tracing::error!(error = %e, "authorization failed");
    error_page(
        app,
        StatusCode::SERVICE_UNAVAILABLE,
        "The sign-in service could not finish this request; try again shortly.",
    )
}

/// RFC 6749 §3.1: GET with a query, or POST with a form (OIDC Core §3.1.2.1).
async fn authorize(
    State(app): State<AppState>,
    browser: Browser,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let Some(params) = super::query_or_form(&method, &uri, &headers, &body) else {
        return error_page(
            &app,
            StatusCode::BAD_REQUEST,
            "The app sent the sign-in request in a form this service cannot read.",
        );
    };
    // RFC 9126 §4: a pushed request replaces the parameters (client_id must match).
    let pushed = params
        .iter()
        .find(|(k, _)| k == "request_uri")
        .map(|(_, v)| v.clone());
    let (req, client) = if let Some(request_uri) = pushed {
        let Some(handle) = request_uri.strip_prefix(PAR_PREFIX) else {
            return match oidc::refuse_request_uri(&app, &params).await {
                AuthorizeError::Page(m) => error_page(&app, StatusCode::BAD_REQUEST, &m),
                AuthorizeError::Redirect(r) => respond(&app, r),
            };
        };
        let req = match oidc::load_request(&app, handle, true).await {
            Ok(Some(r)) => r,
            Ok(None) => return error_page(&app, StatusCode::BAD_REQUEST, "The app's pushed request has expired or was already used; go back to the app and try again."),
            Err(e) => return unavailable(&app, e.description),
        };
        if params
            .iter()
            .find(|(k, _)| k == "client_id")
            .map(|(_, v)| v.as_str())
            != Some(req.client_id.as_str())
        {
            return error_page(
                &app,
                StatusCode::BAD_REQUEST,
                "The request's client_id differs from the pushed request's.",
            );
        }
        let client = match app
            .clients()
            .get(app.store(), &req.client_id, app.clock().now_ms())
            .await
        {
            Ok(Some(c)) if c.enabled => c,
            _ => {
                return error_page(
                    &app,
                    StatusCode::BAD_REQUEST,
                    "The app is no longer registered.",
                )
            }
        };
        (req, client)
    } else {
        match oidc::validate_request(&app, &params).await {
            Ok(ok) => ok,
            Err(AuthorizeError::Page(m)) => return error_page(&app, StatusCode::BAD_REQUEST, &m),
            Err(AuthorizeError::Redirect(r)) => return respond(&app, r),
        }
    };
    // Bound to this browser (issue 14). A cross-site POST carries no SameSite=Lax
    // cookie even when the browser has one: that request is saved unbound and the
    // browser sent on with a GET, which brings the cookie and claims it (`resume`).
    if browser.request_binding.is_none() && method == Method::POST {
        return match oidc::save_request(&app, &req, false).await {
            Ok(h) => Redirect::to(&format!("/oauth2/authorize/resume?request={h}")).into_response(),
            Err(e) => unavailable(&app, e.description),
        };
    }
    let handle = match oidc::save_bound_request(&app, &req, browser.binding()).await {
        Ok(h) => h,
        Err(e) => return unavailable(&app, e.description),
    };
    let mut resp = match oidc::decide(&app, &handle, &req, &client, browser.session.as_ref()).await
    {
        Ok(next) => go(&app, next),
        Err(e) => unavailable(&app, e.description),
    };
    browser.keep_binding(&app, &mut resp);
    resp
}

#[derive(Deserialize)]
struct ResumeQuery {
    request: String,
}

/// After sign-in, account choice or consent: decide again with the new state. The
/// first same-site GET after a cross-site POST also claims the request for this
/// browser (see `authorize`).
async fn resume(
    State(app): State<AppState>,
    browser: Browser,
    Query(q): Query<ResumeQuery>,
) -> Response {
    let claimed = match oidc::claim_request(&app, &q.request, browser.binding()).await {
        Ok(c) => c,
        Err(e) => return unavailable(&app, e.description),
    };
    let mut resp = continue_request(&app, &browser, &q.request).await;
    if claimed {
        browser.keep_binding(&app, &mut resp);
    }
    resp
}

/// The pending request `handle`, if this browser started it; else the page to show:
/// expired, or started in another browser (then left untouched for its own).
pub(super) async fn bound_request(
    app: &AppState,
    browser: &Browser,
    handle: &str,
) -> Result<oidc::AuthRequest, Response> {
    match oidc::load_bound_request(app, handle, Some(browser.binding())).await {
        Ok(oidc::BoundRequest::Found(r)) => Ok(*r),
        Ok(oidc::BoundRequest::Gone) => Err(super::request_expired(app)),
        Ok(oidc::BoundRequest::OtherBrowser) => Err(super::request_other_browser(app)),
        Err(e) => Err(unavailable(app, e.description)),
    }
}

pub(super) async fn continue_request(app: &AppState, browser: &Browser, handle: &str) -> Response {
    let req = match bound_request(app, browser, handle).await {
        Ok(r) => r,
        Err(page) => return page,
    };
    if req.saml.is_some() {
        return super::saml_idp::continue_saml(app, browser, handle, req).await;
    }
    let client = match app
        .clients()
        .get(app.store(), &req.client_id, app.clock().now_ms())
        .await
    {
        Ok(Some(c)) if c.enabled => c,
        _ => {
            return error_page(
                app,
                StatusCode::BAD_REQUEST,
                "The app is no longer registered.",
            )
        }
    };
    match oidc::decide(app, handle, &req, &client, browser.session.as_ref()).await {
        Ok(next) => go(app, next),
        Err(e) => unavailable(app, e.description),
    }
}

pub(super) fn go(app: &AppState, next: Next) -> Response {
    match next {
        Next::Login(h) => Redirect::to(&format!("/login?request={h}")).into_response(),
        Next::SelectAccount(h) => {
            Redirect::to(&format!("/select-account?request={h}")).into_response()
        }
        Next::Consent(h) => Redirect::to(&format!("/consent?request={h}")).into_response(),
        Next::StepUp(h) => Redirect::to(&format!("/login/mfa/step-up?request={h}")).into_response(),
        Next::ChangePassword(h) => {
            Redirect::to(&format!("/portal/password?required=1&request={h}")).into_response()
        }
        Next::Respond(r) => respond(app, r),
    }
}

/// Back to the client: a 303 redirect with the query, or a self-submitting form
/// (OAuth 2.0 Form Post Response Mode §2), whose one script runs under a nonce.
pub(super) fn respond(app: &AppState, r: AuthResponse) -> Response {
    if !r.form_post {
        return Redirect::to(&r.location()).into_response();
    }
    let nonce = crate::crypto::random_token(16);
    let params: Vec<(String, String)> = r
        .params
        .iter()
        .map(|(k, v)| (k.to_string(), v.clone()))
        .collect();
    let ctx = minijinja::context! { lang => "en", action => r.redirect_uri, params => params, nonce => nonce };
    match app.web().render("form_post.html", ctx) {
        Ok(html) => {
            let mut resp = axum::response::Html(html).into_response();
            let csp = format!("default-src 'none'; script-src 'nonce-{nonce}'; form-action {}; base-uri 'none'; frame-ancestors 'none'", origin_of(&r.redirect_uri));
            if let Ok(v) = HeaderValue::from_str(&csp) {
                resp.headers_mut()
                    .insert(header::CONTENT_SECURITY_POLICY, v);
            }
            resp
        }
        Err(e) => unavailable(app, e),
    }
}

fn origin_of(uri: &str) -> String {
    url::Url::parse(uri)
        .map(|u| u.origin().ascii_serialization())
        .unwrap_or_else(|_| "'none'".into())
}
