//! The OpenID Connect steps between sign-in and the app: choosing the account
//! (`prompt=select_account`) and consenting to what the app asks for.

use axum::extract::{Form, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;
use axum::Router;
use serde::Deserialize;

use super::login::oidc_client_name;
use super::resume::{bound_request, continue_request};
use crate::authn::Protocol;
use crate::oidc;
use crate::web::person::display_name;
use crate::web::{page, Browser, PageError};
use crate::AppState;

pub(super) fn router() -> Router<AppState> {
    Router::new()
        .route("/select-account", get(select_page).post(select_submit))
        .route("/consent", get(consent_page).post(consent_submit))
}

/// A pending OpenID Connect request of this browser: account choice and consent are
/// OAuth steps, and a SAML request (which never needs them) is kept out of them.
async fn oidc_request(
    app: &AppState,
    browser: &Browser,
    handle: &str,
) -> Result<oidc::AuthRequest, PageError> {
    let pending = bound_request(app, browser, handle).await?;
    if pending.protocol != Protocol::Oidc {
        return Err(PageError::request_expired());
    }
    oidc::AuthRequest::from_pending(&pending).map_err(|e| PageError::unavailable(e.description))
}

fn to_login(request: &str) -> Response {
    Redirect::to(&format!("/login?request={request}")).into_response()
}

#[derive(Deserialize)]
struct RequestQuery {
    request: String,
}

async fn select_page(
    State(app): State<AppState>,
    browser: Browser,
    Query(q): Query<RequestQuery>,
) -> Result<Response, PageError> {
    oidc_request(&app, &browser, &q.request).await?;
    let Some(session) = &browser.session else {
        return Ok(to_login(&q.request));
    };
    let name = display_name(&app, &session.person_id).await;
    let ctx = minijinja::context! { lang => "en", csrf => browser.csrf(&app), request => q.request, person_name => name };
    Ok(browser.finish(&app, page(&app, StatusCode::OK, "select_account.html", ctx)))
}

#[derive(Deserialize)]
struct DecisionForm {
    csrf: Option<String>,
    request: String,
    decision: String,
}

async fn select_submit(
    State(app): State<AppState>,
    browser: Browser,
    Form(f): Form<DecisionForm>,
) -> Result<Response, PageError> {
    if !browser.csrf_ok(&app, f.csrf.as_deref()) {
        return Err(PageError::csrf());
    }
    let mut req = oidc_request(&app, &browser, &f.request).await?;
    req.prompt.retain(|p| p != "select_account");
    if f.decision == "switch" {
        req.prompt.push("login".into());
    }
    if let Err(e) = oidc::update_request(&app, &f.request, &req).await {
        tracing::error!(error = %e.description, "updating a request failed");
    }
    continue_request(&app, &browser, &f.request).await
}

async fn consent_page(
    State(app): State<AppState>,
    browser: Browser,
    Query(q): Query<RequestQuery>,
) -> Result<Response, PageError> {
    let req = oidc_request(&app, &browser, &q.request).await?;
    if browser.session.is_none() {
        return Ok(to_login(&q.request));
    }
    let name = oidc_client_name(&app, &req.client_id)
        .await
        .unwrap_or_default();
    let scopes: Vec<String> = req
        .consent_scopes()
        .iter()
        .map(|s| {
            let key = format!("scope.{s}");
            let text = app.web().message(&key);
            if text == key {
                format!("Use the district API: {s}")
            } else {
                text
            }
        })
        .collect();
    let ctx = minijinja::context! { lang => "en", csrf => browser.csrf(&app), request => q.request, client_name => name, scopes => scopes };
    Ok(browser.finish(&app, page(&app, StatusCode::OK, "consent.html", ctx)))
}

async fn consent_submit(
    State(app): State<AppState>,
    browser: Browser,
    Form(f): Form<DecisionForm>,
) -> Result<Response, PageError> {
    if !browser.csrf_ok(&app, f.csrf.as_deref()) {
        return Err(PageError::csrf());
    }
    let mut req = oidc_request(&app, &browser, &f.request).await?;
    let Some(session) = &browser.session else {
        return Ok(to_login(&f.request));
    };
    if f.decision != "allow" {
        let _ = oidc::drop_request(&app, &f.request).await;
        let declined = req.error(app.issuer(), "access_denied", "the person declined");
        return crate::oidc::respond(&app, declined);
    }
    oidc::remember_consent(
        &app,
        &session.person_id,
        &req.client_id,
        &req.consent_scopes(),
        &browser.origin(),
    )
    .await
    .map_err(|e| PageError::unavailable(e.description))?;
    req.prompt.retain(|p| p != "consent");
    let _ = oidc::update_request(&app, &f.request, &req).await;
    continue_request(&app, &browser, &f.request).await
}
