//! The hub's HTTP endpoints as a SAML service provider of the district's IdPs: its
//! metadata and its Assertion Consumer Service; the SAML IdP endpoints for downstream
//! apps (`saml_idp::http`); and what every failed upstream sign-in shows, whichever
//! endpoint or page it failed on. The buttons, discovery and the return to the hub are
//! pages (`web::signin`).

use axum::extract::{Form, Path, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::Router;
use serde::Deserialize;

use super::FederationError;
use crate::web::{sentence, Browser, PageError};
use crate::AppState;

pub(crate) fn router() -> Router<AppState> {
    Router::new()
        .route("/saml/sp/{idp}/metadata", get(sp_metadata))
        .route("/saml/sp/{idp}/acs", post(acs))
        .merge(super::saml_idp::http::router())
}

/// A 429 page when this address has used up `federation.requests_per_ip_per_minute`.
/// The buttons, discovery and the ACS share one budget (kept apart from password
/// attempts by its key): the ACS's checks cost RSA and xmlsec work, and each button
/// press stores a pending request.
pub(crate) fn throttle(app: &AppState, browser: &Browser, idp: &str) -> Result<(), PageError> {
    let ip = browser.meta.source_ip.as_deref().unwrap_or_default();
    let per_minute = app.config().federation.requests_per_ip_per_minute;
    if app.ip_throttle().allow(
        &format!("federation {ip}"),
        app.clock().now_ms(),
        per_minute,
    ) {
        return Ok(());
    }
    // Counted, not audited: a flood must not fill the audit log.
    crate::ops::metrics::federated_signin(metric_label(app, idp), "rate_limited");
    Err(PageError::RateLimited {
        message: app.web().message("federation.rate_limited"),
    })
}

/// The IdP's id as metrics and the audit log name it: only configured ids, so a
/// made-up URL cannot add labels.
fn metric_label<'a>(app: &AppState, idp: &'a str) -> &'a str {
    if app.federation().display_name(idp).is_some() {
        idp
    } else {
        "-"
    }
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
) -> Result<Response, PageError> {
    throttle(&app, &browser, &idp)?;
    let origin = browser.origin();
    match super::accept_response(&app, &idp, &f.saml_response, &origin).await {
        // 303: the browser comes back with a GET, same-site, bringing its cookies.
        Ok(handle) => {
            Ok(Redirect::to(&format!("/login/federated?handle={handle}")).into_response())
        }
        Err(e) => Err(failure_page(&app, &browser, &idp, e).await),
    }
}

/// The error page for a failed upstream sign-in: logged, counted and audited (by the
/// capability), and a sentence that says whose side it failed on.
pub(crate) async fn failure_page(
    app: &AppState,
    browser: &Browser,
    idp: &str,
    e: FederationError,
) -> PageError {
    let code = e.code();
    // The handle of a finished sign-in names its IdP even where the URL does not
    // (`/login/federated`): say which one was begun elsewhere.
    let idp = match &e {
        FederationError::OtherBrowser { idp: begun } if idp == "-" => begun.as_str(),
        _ => idp,
    };
    log_failure(idp, &e);
    let label = metric_label(app, idp);
    crate::ops::metrics::federated_signin(label, code);
    super::record_refusal(app, label, code, &browser.origin()).await;
    let idp_label = app
        .federation()
        .display_name(idp)
        .unwrap_or("your organization")
        .to_string();
    // No new CSRF cookie here: the ACS is reached by a cross-site POST that carries
    // none, and replacing the browser's would break forms open in other tabs.
    match &e {
        e if e.is_internal() => PageError::unavailable(e),
        FederationError::UnknownIdp(_) => {
            PageError::refused(StatusCode::NOT_FOUND, sentence(&e.to_string()))
        }
        FederationError::MetadataUnavailable => PageError::refused(
            StatusCode::SERVICE_UNAVAILABLE,
            format!("Signing in with {idp_label} is not available: {e}."),
        ),
        FederationError::TokenExchange(_) => PageError::refused(
            StatusCode::BAD_GATEWAY,
            format!("Signing in with {idp_label} failed: {e}."),
        ),
        // 502 (RFC 9110 §15.6.3: "received an invalid response from an inbound
        // server"): it is the provider's answer that is wrong, not the person's request
        // (a 4xx) nor the hub (500/503). Nothing here says to retry (no Retry-After);
        // the page names the claim and who can have it fixed.
        FederationError::UnreadableClaim(_) => PageError::refused(
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
        | FederationError::Inactive(_) => PageError::refused(
            StatusCode::FORBIDDEN,
            format!("{idp_label} signed you in, but the hub cannot let you in: {e}."),
        ),
        _ => PageError::bad_request(format!("Signing in with {idp_label} failed: {e}.")),
    }
}

/// What the operator's log says: enough to find the cause, never the person's data.
fn log_failure(idp: &str, e: &FederationError) {
    let code = e.code();
    if e.is_internal() {
        tracing::error!(idp, error = %e, "federated sign-in failed");
    } else if let FederationError::Rejected { reason, detail } = e {
        tracing::warn!(idp, reason, detail = %detail, "SAML response rejected");
    } else if let FederationError::Undecryptable(detail) = e {
        // Which step failed stays out of the warning (and of the page and the audit
        // log): all of them must look alike to whoever sent the Response.
        tracing::warn!(idp, reason = code, "encrypted SAML assertion refused");
        tracing::debug!(idp, reason = code, step = %detail, "encrypted SAML assertion refused");
    } else if let FederationError::EncryptionRefused { used, .. } = e {
        tracing::warn!(
            idp,
            reason = code,
            used,
            "the IdP encrypts with an algorithm the hub refuses"
        );
    } else if let FederationError::SigningRefused { used, .. } = e {
        tracing::warn!(
            idp,
            reason = code,
            used,
            "the IdP signs with an algorithm the hub refuses"
        );
    } else if let FederationError::UnreadableClaim(claim) = e {
        // The claim's name only: its value may be personal data.
        tracing::warn!(
            idp,
            reason = code,
            claim = %claim,
            "the OpenID Provider's token response has a claim the hub cannot read"
        );
    } else if let FederationError::IdToken(r) = e {
        tracing::warn!(idp, reason = code, detail = %r, "OpenID Connect response rejected");
    } else if let FederationError::TokenExchange(detail) = e {
        tracing::warn!(idp, reason = code, detail = %detail, "OpenID Connect code exchange failed");
    } else {
        tracing::info!(idp, reason = code, "federated sign-in refused");
    }
}
