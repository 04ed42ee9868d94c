//! Sign-in, account choice and consent pages.

use axum::extract::{Form, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;
use axum::Router;
use serde::Deserialize;

use super::authorize::{bound_request, continue_request, respond};
use super::{error_page, page, Browser};
use crate::authn::{AuthnError, NewSession, ACR_PASSWORD};
use crate::oidc;
use crate::AppState;

pub(super) fn router() -> Router<AppState> {
    Router::new()
        .route("/login", get(login_page).post(login_submit))
        .route("/select-account", get(select_page).post(select_submit))
        .route("/consent", get(consent_page).post(consent_submit))
}

#[derive(Deserialize, Default)]
struct PageQuery {
    request: Option<String>,
    signed_out: Option<String>,
}

async fn client_name(app: &AppState, req: Option<&oidc::AuthRequest>) -> Option<String> {
    let req = req?;
    if let Some(p) = &req.saml {
        let sp = app.federation().saml_apps().sp(&p.sp_id)?;
        return Some(sp.config.display_name.clone());
    }
    let client = app
        .clients()
        .get(app.store(), &req.client_id, app.clock().now_ms())
        .await
        .ok()??;
    Some(client.name.clone())
}

pub(super) async fn render_login(
    app: &AppState,
    browser: &Browser,
    request: Option<&str>,
    username: &str,
    alert: Option<String>,
    notice: Option<String>,
    status: StatusCode,
) -> Response {
    // Only the browser that started a request sees its sign-in page (issue 14). One
    // that is gone still gets the page (what happens to it is said after sign-in).
    let req = match pending_for(app, browser, request).await {
        Ok(r) => r,
        Err(refused) => return refused,
    };
    let hint = match (&req, username.is_empty()) {
        (Some(r), true) => r.login_hint.clone().unwrap_or_default(),
        _ => username.to_string(),
    };
    let ctx = minijinja::context! {
        lang => "en", csrf => browser.csrf(app), request => request, username => hint,
        client_name => client_name(app, req.as_ref()).await, alert => alert, notice => notice,
        idps => super::federated::idp_buttons(app), passkeys_on => app.passkeys().available(),
    };
    browser.finish(app, page(app, status, "login.html", ctx))
}

async fn login_page(
    State(app): State<AppState>,
    browser: Browser,
    Query(q): Query<PageQuery>,
) -> Response {
    if browser.session.is_some() && q.request.is_none() {
        return Redirect::to("/portal").into_response();
    }
    let notice = q.signed_out.map(|_| app.web().message("signin.signed_out"));
    render_login(
        &app,
        &browser,
        q.request.as_deref(),
        "",
        None,
        notice,
        StatusCode::OK,
    )
    .await
}

#[derive(Deserialize)]
struct LoginForm {
    csrf: Option<String>,
    request: Option<String>,
    #[serde(default)]
    username: String,
    #[serde(default)]
    password: String,
}

async fn login_submit(
    State(app): State<AppState>,
    browser: Browser,
    Form(f): Form<LoginForm>,
) -> Response {
    let request = f.request.as_deref().filter(|r| !r.is_empty());
    // Someone else's request is refused before the password is even looked at (one
    // that is gone is said so after sign-in, as before).
    if let Err(refused) = pending_for(&app, &browser, request).await {
        return refused;
    }
    if !browser.csrf_ok(&app, f.csrf.as_deref()) {
        let alert = app.web().message("csrf.failed");
        return render_login(
            &app,
            &browser,
            request,
            &f.username,
            Some(alert),
            None,
            StatusCode::FORBIDDEN,
        )
        .await;
    }
    let cfg = &app.config().auth;
    let ip = browser.meta.source_ip.clone().unwrap_or_default();
    if !app
        .ip_throttle()
        .allow(&ip, app.clock().now_ms(), cfg.attempts_per_ip_per_minute)
    {
        let alert = AuthnError::RateLimited.to_string();
        let mut resp = render_login(
            &app,
            &browser,
            request,
            &f.username,
            Some(capitalize(&alert)),
            None,
            StatusCode::TOO_MANY_REQUESTS,
        )
        .await;
        // The limit counts a minute: at most that long to wait (RFC 6585 §4).
        resp.headers_mut().insert(
            axum::http::header::RETRY_AFTER,
            axum::http::HeaderValue::from_static("60"),
        );
        return resp;
    }
    let origin = browser.origin();
    let person = match crate::authn::sign_in(&app, &f.username, &f.password, &origin).await {
        Ok(p) => p,
        Err(
            e @ (AuthnError::InvalidCredentials
            | AuthnError::Locked { .. }
            | AuthnError::Busy
            | AuthnError::Slowed { .. }
            | AuthnError::Inactive(_)),
        ) => {
            let status = if matches!(
                e,
                AuthnError::Locked { .. } | AuthnError::Busy | AuthnError::Slowed { .. }
            ) {
                StatusCode::TOO_MANY_REQUESTS
            } else {
                StatusCode::UNAUTHORIZED
            };
            let mut resp = render_login(
                &app,
                &browser,
                request,
                &f.username,
                Some(capitalize(&e.to_string())),
                None,
                status,
            )
            .await;
            if let AuthnError::Slowed { seconds } = e {
                if let Ok(v) = axum::http::HeaderValue::from_str(&seconds.to_string()) {
                    resp.headers_mut()
                        .insert(axum::http::header::RETRY_AFTER, v);
                }
            }
            return resp;
        }
        Err(e) => {
            tracing::error!(error = %e, "sign-in failed");
            return error_page(
                &app,
                StatusCode::SERVICE_UNAVAILABLE,
                "The sign-in service is unavailable; try again shortly.",
            );
        }
    };
    start_session(
        &app,
        &browser,
        &person.id,
        vec!["pwd".into()],
        ACR_PASSWORD,
        request,
    )
    .await
}

/// After any successful first factor (password, upstream IdP, passkey): the second
/// factor when the person or the app needs one (`authn::mfa`), else the session.
pub(super) async fn start_session(
    app: &AppState,
    browser: &Browser,
    person_id: &str,
    amr: Vec<String>,
    acr: &str,
    request: Option<&str>,
) -> Response {
    if let Err(refused) = pending_for(app, browser, request).await {
        return refused;
    }
    let needed = match super::mfa::needed_for(app, person_id, request).await {
        Ok(n) => n,
        Err(e) => {
            tracing::error!(error = %e, "reading the MFA policy failed");
            return error_page(
                app,
                StatusCode::SERVICE_UNAVAILABLE,
                "The sign-in service is unavailable; try again shortly.",
            );
        }
    };
    if crate::authn::Assurance::of_amr(&amr) < needed {
        return super::mfa::ask_second_factor(app, browser, person_id, &amr, acr, request, needed)
            .await;
    }
    open_session(app, browser, person_id, amr, acr, request).await
}

/// A new session (and cookie), then the pending authorization request resumed, or
/// the portal.
pub(super) async fn open_session(
    app: &AppState,
    browser: &Browser,
    person_id: &str,
    amr: Vec<String>,
    acr: &str,
    request: Option<&str>,
) -> Response {
    // Checked before anything changes: someone else's request neither starts a
    // session here nor has its prompt changed (issue 14).
    let req = match pending_for(app, browser, request).await {
        Ok(r) => r,
        Err(refused) => return refused,
    };
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
    let (session, token) = match crate::authn::create_session(app, new, &origin).await {
        Ok(s) => s,
        Err(e) => {
            tracing::error!(error = %e, "creating a session failed");
            return error_page(
                app,
                StatusCode::SERVICE_UNAVAILABLE,
                "The sign-in service is unavailable; try again shortly.",
            );
        }
    };
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
                let _ = oidc::update_request(app, h, &req).await;
            }
            let _ = session;
            Redirect::to(&format!("/oauth2/authorize/resume?request={h}")).into_response()
        }
        None => Redirect::to("/portal").into_response(),
    };
    // An administrator set this password: the person chooses their own first (a
    // pending sign-in gets there through `decide`, which enforces it for every app).
    if request.is_none()
        && crate::authn::must_change_password(app, person_id)
            .await
            .unwrap_or(false)
    {
        resp = Redirect::to("/portal/password?required=1").into_response();
    }
    super::cookies::set_session(app, &mut resp, &token);
    // A new CSRF token with the new session (issue 14): one planted or read before
    // the sign-in is useless after it.
    browser.rotate_csrf(app, resp)
}

/// The pending request a sign-in continues, if it is still there; refused (a page)
/// only when it belongs to another browser (issue 14). A gone request lets the
/// sign-in go on, and `resume` then says it expired.
async fn pending_for(
    app: &AppState,
    browser: &Browser,
    request: Option<&str>,
) -> Result<Option<oidc::AuthRequest>, Response> {
    let Some(h) = request else {
        return Ok(None);
    };
    match oidc::load_bound_request(app, h, Some(browser.binding())).await {
        Ok(oidc::BoundRequest::Found(r)) => Ok(Some(*r)),
        Ok(oidc::BoundRequest::Gone) => Ok(None),
        Ok(oidc::BoundRequest::OtherBrowser) => Err(super::request_other_browser(app)),
        Err(e) => {
            tracing::error!(error = %e.description, "reading a pending request failed");
            Err(error_page(
                app,
                StatusCode::SERVICE_UNAVAILABLE,
                "The sign-in service is unavailable; try again shortly.",
            ))
        }
    }
}

/// A pending OpenID Connect request of this browser: account choice and consent are
/// OAuth steps, and a SAML request (which never needs them) is kept out of them.
async fn oidc_request(
    app: &AppState,
    browser: &Browser,
    handle: &str,
) -> Result<oidc::AuthRequest, Response> {
    match bound_request(app, browser, handle).await {
        Ok(r) if r.saml.is_none() => Ok(r),
        Ok(_) => Err(super::request_expired(app)),
        Err(refused) => Err(refused),
    }
}

pub(super) fn capitalize(s: &str) -> String {
    let mut c = s.chars();
    c.next()
        .map(|f| f.to_uppercase().collect::<String>() + c.as_str())
        .unwrap_or_default()
}

#[derive(Deserialize)]
struct RequestQuery {
    request: String,
}

async fn select_page(
    State(app): State<AppState>,
    browser: Browser,
    Query(q): Query<RequestQuery>,
) -> Response {
    if let Err(refused) = oidc_request(&app, &browser, &q.request).await {
        return refused;
    }
    let Some(session) = &browser.session else {
        return Redirect::to(&format!("/login?request={}", q.request)).into_response();
    };
    let name = super::portal::display_name(&app, &session.person_id).await;
    let ctx = minijinja::context! { lang => "en", csrf => browser.csrf(&app), request => q.request, person_name => name };
    browser.finish(&app, page(&app, StatusCode::OK, "select_account.html", ctx))
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
) -> Response {
    if !browser.csrf_ok(&app, f.csrf.as_deref()) {
        return super::csrf_failed(&app);
    }
    let mut req = match oidc_request(&app, &browser, &f.request).await {
        Ok(r) => r,
        Err(refused) => return refused,
    };
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
) -> Response {
    let req = match oidc_request(&app, &browser, &q.request).await {
        Ok(r) => r,
        Err(refused) => return refused,
    };
    if browser.session.is_none() {
        return Redirect::to(&format!("/login?request={}", q.request)).into_response();
    }
    let name = client_name(&app, Some(&req)).await.unwrap_or_default();
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
    browser.finish(&app, page(&app, StatusCode::OK, "consent.html", ctx))
}

async fn consent_submit(
    State(app): State<AppState>,
    browser: Browser,
    Form(f): Form<DecisionForm>,
) -> Response {
    if !browser.csrf_ok(&app, f.csrf.as_deref()) {
        return super::csrf_failed(&app);
    }
    let mut req = match oidc_request(&app, &browser, &f.request).await {
        Ok(r) => r,
        Err(refused) => return refused,
    };
    let Some(session) = &browser.session else {
        return Redirect::to(&format!("/login?request={}", f.request)).into_response();
    };
    if f.decision != "allow" {
        let _ = oidc::drop_request(&app, &f.request).await;
        return respond(
            &app,
            req.error(app.issuer(), "access_denied", "the person declined"),
        );
    }
    if let Err(e) = oidc::remember_consent(
        &app,
        &session.person_id,
        &req.client_id,
        &req.consent_scopes(),
        &browser.origin(),
    )
    .await
    {
        tracing::error!(error = %e.description, "remembering consent failed");
        return error_page(
            &app,
            StatusCode::SERVICE_UNAVAILABLE,
            "The sign-in service is unavailable; try again shortly.",
        );
    }
    req.prompt.retain(|p| p != "consent");
    let _ = oidc::update_request(&app, &f.request, &req).await;
    continue_request(&app, &browser, &f.request).await
}
