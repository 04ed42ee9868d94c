//! The sign-in page: username and password, the district's IdPs, a passkey.

use axum::extract::{Form, Query, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;
use axum::Router;
use serde::Deserialize;

use super::finish::{pending_for, start_session};
use crate::authn::{AuthnError, PendingSignIn, Protocol, ACR_PASSWORD};
use crate::web::{page, sentence, Browser, PageError};
use crate::AppState;

pub(super) fn router() -> Router<AppState> {
    Router::new().route("/login", get(login_page).post(login_submit))
}

#[derive(Deserialize, Default)]
struct PageQuery {
    request: Option<String>,
    signed_out: Option<String>,
}

/// The name of the app a pending request is for (OpenID Connect client or SAML app).
pub(super) async fn client_name(app: &AppState, req: Option<&PendingSignIn>) -> Option<String> {
    let req = req?;
    if req.protocol == Protocol::Saml {
        let p = crate::federation::saml_idp::pending_of(req).ok()??;
        let sp = app.federation().saml_apps().sp(&p.sp_id)?;
        return Some(sp.config.display_name.clone());
    }
    oidc_client_name(app, &req.app_id).await
}

/// The registered name of an OpenID Connect client.
pub(super) async fn oidc_client_name(app: &AppState, client_id: &str) -> Option<String> {
    let client = app
        .clients()
        .get(app.store(), client_id, app.clock().now_ms())
        .await
        .ok()??;
    Some(client.name.clone())
}

/// What the sign-in page shows besides the form.
pub(crate) struct LoginPage<'a> {
    pub request: Option<&'a str>,
    pub username: &'a str,
    pub alert: Option<String>,
    pub notice: Option<String>,
    pub status: StatusCode,
}

pub(crate) async fn render_login(
    app: &AppState,
    browser: &Browser,
    p: LoginPage<'_>,
) -> Result<Response, PageError> {
    // Only the browser that started a request sees its sign-in page (issue 14). One
    // that is gone still gets the page (what happens to it is said after sign-in).
    let req = pending_for(app, browser, p.request).await?;
    let hint = match (&req, p.username.is_empty()) {
        (Some(r), true) => r.login_hint.clone().unwrap_or_default(),
        _ => p.username.to_string(),
    };
    let ctx = minijinja::context! {
        lang => "en", csrf => browser.csrf(app), request => p.request, username => hint,
        client_name => client_name(app, req.as_ref()).await, alert => p.alert, notice => p.notice,
        idps => super::upstream::idp_buttons(app), passkeys_on => app.passkeys().available(),
    };
    Ok(browser.finish(app, page(app, p.status, "login.html", ctx)))
}

async fn login_page(
    State(app): State<AppState>,
    browser: Browser,
    Query(q): Query<PageQuery>,
) -> Result<Response, PageError> {
    if browser.session.is_some() && q.request.is_none() {
        return Ok(Redirect::to("/portal").into_response());
    }
    let notice = q.signed_out.map(|_| app.web().message("signin.signed_out"));
    let p = LoginPage {
        request: q.request.as_deref(),
        username: "",
        alert: None,
        notice,
        status: StatusCode::OK,
    };
    render_login(&app, &browser, p).await
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
) -> Result<Response, PageError> {
    let request = f.request.as_deref().filter(|r| !r.is_empty());
    // Someone else's request is refused before the password is even looked at (one
    // that is gone is said so after sign-in, as before).
    pending_for(&app, &browser, request).await?;
    let again = |alert: String, status: StatusCode| LoginPage {
        request,
        username: &f.username,
        alert: Some(alert),
        notice: None,
        status,
    };
    if !browser.csrf_ok(&app, f.csrf.as_deref()) {
        let alert = app.web().message("csrf.failed");
        return render_login(&app, &browser, again(alert, StatusCode::FORBIDDEN)).await;
    }
    let cfg = &app.config().auth;
    let ip = browser.meta.source_ip.clone().unwrap_or_default();
    if !app
        .ip_throttle()
        .allow(&ip, app.clock().now_ms(), cfg.attempts_per_ip_per_minute)
    {
        let alert = sentence(&AuthnError::RateLimited.to_string());
        let mut resp =
            render_login(&app, &browser, again(alert, StatusCode::TOO_MANY_REQUESTS)).await?;
        // The limit counts a minute: at most that long to wait (RFC 6585 §4).
        resp.headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from_static("60"));
        return Ok(resp);
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
            let mut resp =
                render_login(&app, &browser, again(sentence(&e.to_string()), status)).await?;
            if let AuthnError::Slowed { seconds } = e {
                if let Ok(v) = HeaderValue::from_str(&seconds.to_string()) {
                    resp.headers_mut().insert(header::RETRY_AFTER, v);
                }
            }
            return Ok(resp);
        }
        Err(e) => return Err(PageError::unavailable(e)),
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
