//! The hub's SAML IdP endpoints for downstream apps: metadata, the SSO service
//! (HTTP-Redirect and HTTP-POST bindings) and IdP-initiated sign-in from a portal
//! tile. The protocol work is in the rest of `saml_idp`; this file only speaks HTTP:
//! the pending request rides the same sign-in pages as an OIDC one (`web::signin`),
//! and the answer is the page kit's self-submitting form (bindings §3.5.4).

use axum::extract::{Form, Path, State};
use axum::http::{header, HeaderValue, StatusCode, Uri};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::Router;
use base64::Engine as _;
use serde::Deserialize;

use super::{Answer, Pending, Received, Refused, SamlIdpError};
use crate::authn::{self, Gate, PendingSignIn, Refusal};
use crate::federation::saml_idp;
use crate::web::forms::CsrfForm;
use crate::web::{form_post_page, sentence, Browser, PageError};
use crate::AppState;

const RESPONDER: &str = "urn:oasis:names:tc:SAML:2.0:status:Responder";

pub(crate) fn router() -> Router<AppState> {
    Router::new()
        .route("/saml/idp/metadata", get(metadata))
        .route("/saml/idp/sso", get(sso_redirect).post(sso_post))
        .route("/saml/idp/init/{sp}", post(idp_initiated))
}

/// A request the hub will not answer: a page for the person (the app's address is
/// not trusted), or the hub's own failure.
fn refused_page(e: &SamlIdpError) -> PageError {
    if e.is_internal() {
        return PageError::request_unavailable(e);
    }
    tracing::warn!(reason = e.code(), error = %e, "SAML AuthnRequest refused");
    crate::ops::metrics::saml_idp_event(e.code());
    PageError::bad_request(format!("{}.", sentence(&e.to_string())))
}

async fn metadata(State(app): State<AppState>) -> Response {
    let apps = app.federation().saml_apps();
    if !apps.is_enabled() {
        return (
            StatusCode::NOT_FOUND,
            "no SAML app is registered, so the hub is not a SAML IdP here",
        )
            .into_response();
    }
    match apps.metadata(app.clock().now_ms()) {
        Ok(xml) => (
            [(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/samlmetadata+xml"),
            )],
            xml,
        )
            .into_response(),
        Err(e) => {
            tracing::error!(error = %e, "IdP metadata failed");
            (StatusCode::SERVICE_UNAVAILABLE, "metadata unavailable").into_response()
        }
    }
}

/// HTTP-Redirect binding: the query string exactly as sent (its signature covers
/// the encoded text, bindings §3.4.4.1).
async fn sso_redirect(
    State(app): State<AppState>,
    browser: Browser,
    uri: Uri,
) -> Result<Response, PageError> {
    let r =
        saml_idp::request::from_query(uri.query().unwrap_or("")).map_err(|e| refused_page(&e))?;
    start(&app, &browser, r, false).await
}

#[derive(Deserialize)]
struct SsoForm {
    #[serde(rename = "SAMLRequest", default)]
    saml_request: String,
    #[serde(rename = "RelayState")]
    relay_state: Option<String>,
}

/// HTTP-POST binding. The app's page posts cross-site, so SameSite=Lax keeps the
/// session cookie away: the request is stored and the browser sent on with a GET,
/// which carries it.
async fn sso_post(
    State(app): State<AppState>,
    browser: Browser,
    Form(f): Form<SsoForm>,
) -> Result<Response, PageError> {
    let r = saml_idp::request::from_form(&f.saml_request, f.relay_state.as_deref())
        .map_err(|e| refused_page(&e))?;
    start(&app, &browser, r, true).await
}

async fn start(
    app: &AppState,
    browser: &Browser,
    r: Received,
    redirect_first: bool,
) -> Result<Response, PageError> {
    let apps = app.federation().saml_apps();
    if !apps.is_enabled() {
        return Err(PageError::refused(
            StatusCode::NOT_FOUND,
            "No SAML app is registered with this hub.",
        ));
    }
    let now = app.clock().now_ms();
    // A signed POST request goes through xmlsec: on a blocking thread, and only a few
    // at a time (as upstream Responses), so a flood cannot stall every page.
    let Some(slot) = app.federation().xmlsec_slot().await else {
        return Err(PageError::refused(
            StatusCode::SERVICE_UNAVAILABLE,
            "The sign-in service is busy; try again in a moment.",
        ));
    };
    let worker = app.clone();
    let checked = tokio::task::spawn_blocking(move || {
        saml_idp::request::check(worker.federation().saml_apps(), r, now)
    })
    .await;
    let checked = match checked {
        Err(e) => return Err(PageError::request_unavailable(e)),
        Ok(Ok(c)) => c,
        Ok(Err(Refused::Page(e))) => return Err(refused_page(&e)),
        Ok(Err(Refused::Status {
            pending,
            top,
            second,
            message,
        })) => return send_failure(app, &pending, top, second, &message).await,
    };
    drop(slot);
    if !saml_idp::first_use(app.store(), &checked)
        .await
        .map_err(PageError::request_unavailable)?
    {
        return Err(refused_page(&SamlIdpError::bad(
            "replayed",
            "this sign-in request was already used; go back to the app and sign in again",
        )));
    }
    let req = saml_idp::pending_signin(checked, now).map_err(PageError::request_unavailable)?;
    // Bound to this browser, as an OIDC request (issue 14); the POST binding's
    // cross-site POST brings no cookie, so that request is claimed by the GET.
    let saved = if redirect_first && browser.request_binding.is_none() {
        authn::save_pending(app, &req, false).await
    } else {
        authn::save_bound_pending(app, &req, browser.binding()).await
    };
    let handle = saved.map_err(PageError::request_unavailable)?;
    if redirect_first {
        let to = format!("/oauth2/authorize/resume?request={handle}");
        return Ok(Redirect::to(&to).into_response());
    }
    let mut resp = continue_saml(app, browser, &handle, &req).await?;
    browser.keep_binding(app, &mut resp);
    Ok(resp)
}

/// After each sign-in step (`web::signin::continue_request` hands SAML requests
/// here): the same session checks as OIDC apps (`authn::gate`), then the signed
/// Response (profiles §4.1.4.2), or a failure status for the app.
pub(crate) async fn continue_saml(
    app: &AppState,
    browser: &Browser,
    handle: &str,
    req: &PendingSignIn,
) -> Result<Response, PageError> {
    let Some(pending) = saml_idp::pending_of(req).map_err(PageError::request_unavailable)? else {
        return Err(PageError::request_expired());
    };
    let pending = &pending;
    let gate = authn::gate(app, handle, req.demands(), false, browser.session.as_ref())
        .await
        .map_err(PageError::request_unavailable)?;
    let session = match gate {
        Gate::Proceed(s) => s,
        Gate::Go(step) => return Ok(Redirect::to(&step.location()).into_response()),
        Gate::Refuse(r) => {
            let _ = authn::drop_pending(app, handle).await;
            // Core §3.2.2.2: an inactive account is denied; any other interaction the
            // app ruled out with IsPassive is NoPassive.
            let (second, message) = match r {
                Refusal::AccountInactive => ("RequestDenied", "the account is not active"),
                _ => (
                    "NoPassive",
                    "the person must interact with the hub to sign in",
                ),
            };
            return send_failure(app, pending, RESPONDER, second, message).await;
        }
    };
    let answer = saml_idp::answer(app, pending, session)
        .await
        .map_err(PageError::request_unavailable)?;
    let (second, message) = match answer {
        Answer::Response(xml) => {
            let _ = authn::drop_pending(app, handle).await;
            return post_to_app(app, pending, &xml);
        }
        Answer::Status(second, message) => (second, message),
        // Core §3.4.1.4: the app asked about someone else (a shared computer, a
        // session left open). Once, the person signs in again; then the request fails.
        Answer::OtherSubject if !pending.subject_relogin && !req.demands().has_prompt("none") => {
            let mut again = req.clone();
            again.prompt = vec!["login".into()];
            let mut relogin = pending.clone();
            relogin.subject_relogin = true;
            saml_idp::set_pending(&mut again, relogin).map_err(PageError::request_unavailable)?;
            authn::update_pending(app, handle, &again)
                .await
                .map_err(PageError::request_unavailable)?;
            return Ok(Redirect::to(&format!("/login?request={handle}")).into_response());
        }
        Answer::OtherSubject => (
            "UnknownPrincipal",
            "the signed-in person is not the one the app asked about",
        ),
    };
    let _ = authn::drop_pending(app, handle).await;
    send_failure(app, pending, RESPONDER, second, message).await
}

async fn send_failure(
    app: &AppState,
    pending: &Pending,
    top: &'static str,
    second: &'static str,
    message: &str,
) -> Result<Response, PageError> {
    let xml = saml_idp::failure(app, pending, top, second, message)
        .await
        .map_err(PageError::request_unavailable)?;
    post_to_app(app, pending, &xml)
}

/// Bindings §3.5.4: a form that posts SAMLResponse (and RelayState, unchanged) to
/// the app's ACS.
fn post_to_app(app: &AppState, pending: &Pending, xml: &str) -> Result<Response, PageError> {
    let mut params = vec![(
        "SAMLResponse",
        base64::engine::general_purpose::STANDARD.encode(xml),
    )];
    if let Some(rs) = &pending.relay_state {
        params.push(("RelayState", rs.clone()));
    }
    form_post_page(app, &pending.acs_url, &params)
}

/// A portal tile (profiles §4.1.5, unsolicited Response): a POST with the portal's
/// CSRF token, so no other site can push a person into an app.
async fn idp_initiated(
    State(app): State<AppState>,
    browser: Browser,
    Path(sp): Path<String>,
    Form(f): Form<CsrfForm>,
) -> Result<Response, PageError> {
    if browser.session.is_none() {
        return Err(PageError::to_login());
    }
    if !browser.csrf_ok(&app, f.csrf.as_deref()) {
        return Err(PageError::csrf());
    }
    let checked = app
        .federation()
        .saml_apps()
        .unsolicited(&sp)
        .map_err(|e| refused_page(&e))?;
    let req = saml_idp::pending_signin(checked, app.clock().now_ms())
        .map_err(PageError::request_unavailable)?;
    let handle = authn::save_bound_pending(&app, &req, browser.binding())
        .await
        .map_err(PageError::request_unavailable)?;
    let mut resp = continue_saml(&app, &browser, &handle, &req).await?;
    browser.keep_binding(&app, &mut resp);
    Ok(resp)
}
