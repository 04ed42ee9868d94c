//! Signing in at an upstream IdP: the buttons' target (SAML or OpenID Connect),
//! home-realm discovery, our SAML SP endpoints (metadata, ACS) and the return to the
//! hub. The OpenID Connect callback is in `federated_oidc.rs`. The protocol work is in
//! `crate::federation`; these files only speak HTTP and render pages.

use axum::extract::{Form, Path, Query, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::Router;
use serde::Deserialize;

use super::cookies::{clear_federation_binding, set_federation_binding};
use super::{error_page, Browser};
use crate::audit::{self, Entry, Outcome};
use crate::federation::{self, FederationError};
use crate::AppState;

pub(super) fn router() -> Router<AppState> {
    Router::new()
        .route("/login/idp/{idp}", get(begin))
        .route("/login/discover", post(discover))
        .route("/login/federated", get(complete))
        .route("/saml/sp/{idp}/metadata", get(sp_metadata))
        .route("/saml/sp/{idp}/acs", post(acs))
        .merge(super::federated_oidc::router())
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

/// A 429 page when this address has used up `federation.requests_per_ip_per_minute`.
/// The buttons, discovery and the ACS share one budget (kept apart from password
/// attempts by its key): the ACS's checks cost RSA and xmlsec work, and each button
/// press stores a pending request.
fn throttled(app: &AppState, browser: &Browser, idp: &str) -> Option<Response> {
    let ip = browser.meta.source_ip.as_deref().unwrap_or_default();
    let per_minute = app.config().federation.requests_per_ip_per_minute;
    if app.ip_throttle().allow(
        &format!("federation {ip}"),
        app.clock().now_ms(),
        per_minute,
    ) {
        return None;
    }
    let idp = if app.federation().display_name(idp).is_some() {
        idp
    } else {
        "-"
    };
    // Counted, not audited: a flood must not fill the audit log.
    crate::ops::metrics::federated_signin(idp, "rate_limited");
    let message = app.web().message("federation.rate_limited");
    let mut resp = error_page(app, StatusCode::TOO_MANY_REQUESTS, &message);
    resp.headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from_static("60"));
    Some(resp)
}

async fn begin(
    State(app): State<AppState>,
    browser: Browser,
    Path(idp): Path<String>,
    Query(q): Query<BeginQuery>,
) -> Response {
    if let Some(refused) = throttled(&app, &browser, &idp) {
        return refused;
    }
    let request = q.request.as_deref().filter(|r| !r.is_empty());
    // prompt=login / max_age mean "authenticate again", at the IdP too (SAML
    // ForceAuthn; OpenID Connect prompt=login, max_age passed on).
    let (login, max_age) = match request {
        Some(h) => match super::authorize::bound_request(&app, &browser, h).await {
            Ok(r) => (r.prompt.iter().any(|p| p == "login"), r.max_age),
            Err(refused) => return refused,
        },
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
            browser.finish(&app, resp)
        }
        Err(e) => failed(&app, &browser, &idp, e).await,
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
) -> Response {
    if !browser.csrf_ok(&app, f.csrf.as_deref()) {
        return super::csrf_failed(&app);
    }
    if let Some(refused) = throttled(&app, &browser, "-") {
        return refused;
    }
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
        return super::signin::render_login(
            &app,
            &browser,
            request,
            "",
            Some(alert),
            None,
            StatusCode::UNPROCESSABLE_ENTITY,
        )
        .await;
    };
    let mut to = format!("/login/idp/{idp}");
    if let Some(r) = request {
        to.push_str(&format!(
            "?request={}",
            url::form_urlencoded::byte_serialize(r.as_bytes()).collect::<String>()
        ));
    }
    browser.finish(&app, Redirect::to(&to).into_response())
}

async fn sp_metadata(State(app): State<AppState>, Path(idp): Path<String>) -> Response {
    match app.federation().sp_metadata(&idp, app.clock().now_ms()) {
        Ok(xml) => (
            [(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/samlmetadata+xml"),
            )],
            xml,
        )
            .into_response(),
        Err(e @ FederationError::UnknownIdp(_)) => {
            (StatusCode::NOT_FOUND, e.to_string()).into_response()
        }
        Err(e) => {
            tracing::error!(error = %e, "SP metadata failed");
            (StatusCode::SERVICE_UNAVAILABLE, "metadata unavailable").into_response()
        }
    }
}

#[derive(Deserialize)]
struct AcsForm {
    #[serde(rename = "SAMLResponse", default)]
    saml_response: String,
}

/// The Assertion Consumer Service (HTTP-POST binding, SAML bindings §3.5). No CSRF
/// token: the IdP's signature, the InResponseTo of our pending request and the
/// browser binding checked on the way back protect it.
async fn acs(
    State(app): State<AppState>,
    browser: Browser,
    Path(idp): Path<String>,
    Form(f): Form<AcsForm>,
) -> Response {
    if let Some(refused) = throttled(&app, &browser, &idp) {
        return refused;
    }
    let origin = browser.origin();
    match federation::accept_response(&app, &idp, &f.saml_response, &origin).await {
        // 303: the browser comes back with a GET, same-site, bringing its cookies.
        Ok(handle) => Redirect::to(&format!("/login/federated?handle={handle}")).into_response(),
        Err(e) => failed(&app, &browser, &idp, e).await,
    }
}

#[derive(Deserialize)]
struct CompleteQuery {
    #[serde(default)]
    handle: String,
}

async fn complete(
    State(app): State<AppState>,
    browser: Browser,
    Query(q): Query<CompleteQuery>,
) -> Response {
    let done =
        match federation::complete_signin(&app, &q.handle, browser.federation_binding.as_deref())
            .await
        {
            Ok(d) => d,
            Err(e) => return failed(&app, &browser, "-", e).await,
        };
    crate::ops::metrics::federated_signin(&done.idp_id, "ok");
    let mut resp = super::signin::start_session(
        &app,
        &browser,
        &done.person_id,
        done.amr,
        &done.acr,
        done.auth_request.as_deref(),
    )
    .await;
    clear_federation_binding(&app, &mut resp);
    resp
}

/// The error page for a failed upstream sign-in; audited and counted.
pub(super) async fn failed(
    app: &AppState,
    browser: &Browser,
    idp: &str,
    e: FederationError,
) -> Response {
    let code = e.code();
    // The handle of a finished sign-in names its IdP even where the URL does not
    // (`/login/federated`): say which one was begun elsewhere.
    let idp = match &e {
        FederationError::OtherBrowser { idp: begun } if idp == "-" => begun.as_str(),
        _ => idp,
    };
    let idp_label = app
        .federation()
        .display_name(idp)
        .unwrap_or("your organization")
        .to_string();
    if e.is_internal() {
        tracing::error!(idp, error = %e, "federated sign-in failed");
    } else if let FederationError::Rejected { reason, detail } = &e {
        tracing::warn!(idp, reason, detail = %detail, "SAML response rejected");
    } else if let FederationError::Undecryptable(detail) = &e {
        // Which step failed stays out of the warning (and of the page and the audit
        // log): all of them must look alike to whoever sent the Response.
        tracing::warn!(idp, reason = code, "encrypted SAML assertion refused");
        tracing::debug!(idp, reason = code, step = %detail, "encrypted SAML assertion refused");
    } else if let FederationError::EncryptionRefused { used, .. } = &e {
        tracing::warn!(
            idp,
            reason = code,
            used,
            "the IdP encrypts with an algorithm the hub refuses"
        );
    } else if let FederationError::SigningRefused { used, .. } = &e {
        tracing::warn!(
            idp,
            reason = code,
            used,
            "the IdP signs with an algorithm the hub refuses"
        );
    } else if let FederationError::UnreadableClaim(claim) = &e {
        // The claim's name only: its value may be personal data.
        tracing::warn!(
            idp,
            reason = code,
            claim = %claim,
            "the OpenID Provider's token response has a claim the hub cannot read"
        );
    } else if let FederationError::IdToken(r) = &e {
        tracing::warn!(idp, reason = code, detail = %r, "OpenID Connect response rejected");
    } else if let FederationError::TokenExchange(detail) = &e {
        tracing::warn!(idp, reason = code, detail = %detail, "OpenID Connect code exchange failed");
    } else {
        tracing::info!(idp, reason = code, "federated sign-in refused");
    }
    let idp_metric = if app.federation().display_name(idp).is_some() {
        idp
    } else {
        "-"
    };
    crate::ops::metrics::federated_signin(idp_metric, code);
    if let Ok(mut tx) = app.store().begin().await {
        let entry = Entry {
            action: "federation.signin",
            outcome: Outcome::Denied,
            target_kind: "idp",
            target_id: idp_metric,
            details: serde_json::json!({ "reason": code }),
        };
        let now = app.clock().now_ms();
        if audit::record(&mut tx, app.audit_key(), now, &browser.origin(), entry)
            .await
            .is_ok()
        {
            let _ = tx.commit().await;
        }
    }
    let (status, message) = match &e {
        e if e.is_internal() => (
            StatusCode::SERVICE_UNAVAILABLE,
            "The sign-in service is unavailable; try again shortly.".to_string(),
        ),
        FederationError::UnknownIdp(_) => (
            StatusCode::NOT_FOUND,
            super::signin::capitalize(&e.to_string()),
        ),
        FederationError::MetadataUnavailable => (
            StatusCode::SERVICE_UNAVAILABLE,
            format!("Signing in with {idp_label} is not available: {e}."),
        ),
        FederationError::TokenExchange(_) => (
            StatusCode::BAD_GATEWAY,
            format!("Signing in with {idp_label} failed: {e}."),
        ),
        // 502 (RFC 9110 §15.6.3: "received an invalid response from an inbound
        // server"): it is the provider's answer that is wrong, not the person's request
        // (a 4xx) nor the hub (500/503). Nothing here says to retry (no Retry-After);
        // the page names the claim and who can have it fixed.
        FederationError::UnreadableClaim(_) => (
            StatusCode::BAD_GATEWAY,
            format!("Signing in with {idp_label} failed: {e}."),
        ),
        FederationError::NoMatch { .. }
        | FederationError::HostedDomain(_)
        | FederationError::Tenant(_)
        | FederationError::EmailNotVerified
        | FederationError::OutOfScope(_)
        | FederationError::Ambiguous { .. }
        | FederationError::Pending
        | FederationError::Inactive(_) => (
            StatusCode::FORBIDDEN,
            format!("{idp_label} signed you in, but the hub cannot let you in: {e}."),
        ),
        _ => (
            StatusCode::BAD_REQUEST,
            format!("Signing in with {idp_label} failed: {e}."),
        ),
    };
    // No new CSRF cookie here: the ACS is reached by a cross-site POST that carries
    // none, and replacing the browser's would break forms open in other tabs.
    error_page(app, status, &message)
}
