//! Signing in at one of the district's IdPs, as pages: the buttons' target (SAML or
//! OpenID Connect), home-realm discovery, the OpenID Connect callback and the return
//! to the hub after the SAML ACS. The protocol work, the SP endpoints (metadata, ACS)
//! and the failure page are in `crate::federation`.

use axum::extract::{Form, Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::Router;
use serde::Deserialize;

use super::finish::start_session;
use super::login::{render_login, LoginPage};
use super::resume::bound_request;
use crate::federation::{self, failure_page, throttle, CallbackParams, FederationError};
use crate::web::cookies::{clear_federation_binding, set_federation_binding};
use crate::web::{Browser, PageError};
use crate::AppState;

pub(super) fn router() -> Router<AppState> {
    Router::new()
        .route("/login/idp/{idp}", get(begin))
        .route("/login/discover", post(discover))
        .route("/login/federated", get(complete))
        .route("/login/oidc/{idp}/callback", get(callback))
}

/// The sign-in page's buttons: (id, label, available).
pub(super) fn idp_buttons(app: &AppState) -> Vec<minijinja::Value> {
    app.federation()
        .buttons()
        .into_iter()
        .map(|(id, name, ready)| minijinja::context! { id => id, name => name, ready => ready })
        .collect()
}

#[derive(Deserialize)]
struct BeginQuery {
    request: Option<String>,
}

async fn begin(
    State(app): State<AppState>,
    browser: Browser,
    Path(idp): Path<String>,
    Query(q): Query<BeginQuery>,
) -> Result<Response, PageError> {
    throttle(&app, &browser, &idp)?;
    let request = q.request.as_deref().filter(|r| !r.is_empty());
    // prompt=login / max_age mean "authenticate again", at the IdP too (SAML
    // ForceAuthn; OpenID Connect prompt=login, max_age passed on).
    let (login, max_age) = match request {
        Some(h) => {
            let r = bound_request(&app, &browser, h).await?;
            (r.prompt.iter().any(|p| p == "login"), r.max_age)
        }
        None => (false, None),
    };
    let started = if app.federation().is_oidc(&idp) {
        federation::begin_oidc_signin(&app, &idp, request, login, max_age).await
    } else {
        federation::begin_signin(&app, &idp, request, login || max_age.is_some()).await
    };
    match started {
        Ok(started) => {
            let mut resp = Redirect::to(&started.redirect_url).into_response();
            let ttl = app.config().federation.request_ttl_seconds;
            set_federation_binding(&app, &mut resp, &started.browser_secret, ttl);
            Ok(browser.finish(&app, resp))
        }
        Err(e) => Err(failure_page(&app, &browser, &idp, e).await),
    }
}

#[derive(Deserialize)]
struct DiscoverForm {
    csrf: Option<String>,
    request: Option<String>,
    #[serde(default)]
    email: String,
}

/// Home-realm discovery: the address's domain picks the IdP.
async fn discover(
    State(app): State<AppState>,
    browser: Browser,
    Form(f): Form<DiscoverForm>,
) -> Result<Response, PageError> {
    if !browser.csrf_ok(&app, f.csrf.as_deref()) {
        return Err(PageError::csrf());
    }
    throttle(&app, &browser, "-")?;
    let request = f.request.as_deref().filter(|r| !r.is_empty());
    let Some(idp) = app.federation().idp_for_email(&f.email) else {
        let domain = f.email.rsplit_once('@').map(|(_, d)| d).unwrap_or("");
        let alert = if domain.is_empty() {
            "Enter your full e-mail address, e.g. name@school.example.".to_string()
        } else {
            format!(
                "No sign-in service is set up for @{}. Use your district username and password below.",
                domain.chars().take(100).collect::<String>()
            )
        };
        let p = LoginPage {
            request,
            username: "",
            alert: Some(alert),
            notice: None,
            status: StatusCode::UNPROCESSABLE_ENTITY,
        };
        return render_login(&app, &browser, p).await;
    };
    let mut to = format!("/login/idp/{idp}");
    if let Some(r) = request {
        to.push_str(&format!(
            "?request={}",
            url::form_urlencoded::byte_serialize(r.as_bytes()).collect::<String>()
        ));
    }
    Ok(browser.finish(&app, Redirect::to(&to).into_response()))
}

#[derive(Deserialize)]
struct CompleteQuery {
    #[serde(default)]
    handle: String,
}

/// Back from the SAML ACS (a same-site GET, with this browser's binding cookie).
async fn complete(
    State(app): State<AppState>,
    browser: Browser,
    Query(q): Query<CompleteQuery>,
) -> Result<Response, PageError> {
    let done =
        match federation::complete_signin(&app, &q.handle, browser.federation_binding.as_deref())
            .await
        {
            Ok(d) => d,
            Err(e) => return Err(failure_page(&app, &browser, "-", e).await),
        };
    crate::ops::metrics::federated_signin(&done.idp_id, "ok");
    let mut resp = start_session(
        &app,
        &browser,
        &done.person_id,
        done.amr,
        &done.acr,
        done.auth_request.as_deref(),
    )
    .await
    .into_response();
    clear_federation_binding(&app, &mut resp);
    Ok(resp)
}

/// The redirect URI of upstream OpenID Providers, with their authorization response
/// (OpenID Connect Core §3.1.2.5/§3.1.2.6). The provider sends the browser here with a
/// top-level GET, so the SameSite=Lax binding cookie set when the sign-in began comes
/// along and is checked before anything else. It is cleared once its request is used
/// up; a callback that was not this browser's (a link someone else made) leaves the
/// browser's own sign-in alone.
async fn callback(
    State(app): State<AppState>,
    browser: Browser,
    Path(idp): Path<String>,
    Query(params): Query<CallbackParams>,
) -> Response {
    let origin = browser.origin();
    let done = federation::accept_oidc_callback(
        &app,
        &idp,
        &params,
        browser.federation_binding.as_deref(),
        &origin,
    )
    .await;
    let keep_binding = matches!(
        done,
        Err(FederationError::OtherBrowser { .. } | FederationError::Expired)
    );
    let answer = match done {
        Ok(done) => {
            crate::ops::metrics::federated_signin(&done.idp_id, "ok");
            start_session(
                &app,
                &browser,
                &done.person_id,
                done.amr,
                &done.acr,
                done.auth_request.as_deref(),
            )
            .await
        }
        Err(e) => Err(failure_page(&app, &browser, &idp, e).await),
    };
    let mut resp = answer.into_response();
    if !keep_binding {
        clear_federation_binding(&app, &mut resp);
    }
    resp
}
