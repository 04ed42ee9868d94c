//! Passwordless sign-in with a passkey: the discoverable credential names its person
//! and proves both factors (user verification is required), then the usual session
//! start (which may still ask for more, e.g. a role's policy). JSON endpoints, called
//! by the sign-in page's script.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use serde::Deserialize;
use webauthn_rs::prelude::PublicKeyCredential;

use super::finish::start_session;
use crate::authn::AuthnError;
use crate::web::cookies::{set_flow, Flow};
use crate::web::error::json_redirect;
use crate::web::forms::CsrfForm;
use crate::web::{sentence, Browser, JsonError};
use crate::AppState;

pub(super) fn router() -> Router<AppState> {
    Router::new()
        .route("/login/passkey/options", post(passwordless_options))
        .route("/login/passkey", post(passwordless_finish))
}

/// Passwordless sign-in, step 1: a challenge for any passkey of this site.
async fn passwordless_options(
    State(app): State<AppState>,
    browser: Browser,
    Json(b): Json<CsrfForm>,
) -> Result<Response, JsonError> {
    if !browser.csrf_ok(&app, b.csrf.as_deref()) {
        return Err(JsonError::csrf(&app));
    }
    let ip = browser.meta.source_ip.clone().unwrap_or_default();
    let per_minute = app.config().auth.attempts_per_ip_per_minute;
    if !app
        .ip_throttle()
        .allow(&ip, app.clock().now_ms(), per_minute)
    {
        return Err(JsonError::new(
            StatusCode::TOO_MANY_REQUESTS,
            sentence(&AuthnError::RateLimited.to_string()),
        ));
    }
    let (rcr, handle) = crate::authn::factors::begin_passwordless(&app)
        .await
        .map_err(JsonError::unavailable)?;
    let mut resp = Json(rcr).into_response();
    let ttl = app.config().mfa.challenge_ttl_seconds;
    set_flow(&app, &mut resp, Flow::Passkey, &handle, ttl);
    Ok(browser.finish(&app, resp))
}

#[derive(Deserialize)]
struct PasswordlessBody {
    csrf: Option<String>,
    #[serde(default)]
    request: Option<String>,
    credential: PublicKeyCredential,
}

/// Passwordless sign-in, step 2: the passkey names its person and proves both
/// factors (user verification is required), then the usual session start.
async fn passwordless_finish(
    State(app): State<AppState>,
    browser: Browser,
    Json(b): Json<PasswordlessBody>,
) -> Result<Response, JsonError> {
    if !browser.csrf_ok(&app, b.csrf.as_deref()) {
        return Err(JsonError::csrf(&app));
    }
    let Some(handle) = browser.passkey_handle.as_deref() else {
        return Err(JsonError::new(
            StatusCode::BAD_REQUEST,
            AuthnError::ChallengeExpired.to_string(),
        ));
    };
    let origin = browser.origin();
    let person_id = match crate::authn::factors::finish_passwordless(
        &app,
        handle,
        &b.credential,
        &origin,
    )
    .await
    {
        Ok(p) => p,
        Err(e @ AuthnError::ChallengeExpired) => {
            return Err(JsonError::new(StatusCode::BAD_REQUEST, e.to_string()))
        }
        Err(AuthnError::Passkey(e)) => {
            tracing::info!(error = %e, "passwordless sign-in refused");
            let msg = app.web().message("mfa.passkey_failed");
            return Err(JsonError::new(StatusCode::UNAUTHORIZED, msg));
        }
        Err(e) => return Err(JsonError::unavailable(e)),
    };
    let person = crate::directory::get_person(app.store(), &person_id)
        .await
        .map_err(JsonError::unavailable)?;
    if person.status != "active" {
        let msg = AuthnError::Inactive(person.status.to_string()).to_string();
        return Err(JsonError::new(StatusCode::FORBIDDEN, sentence(&msg)));
    }
    let request = b.request.as_deref().filter(|r| !r.is_empty());
    let amr = vec!["hwk".to_string(), "mfa".to_string()];
    let mut resp = start_session(
        &app,
        &browser,
        &person_id,
        amr,
        crate::authn::ACR_PASSKEY,
        request,
    )
    .await
    .into_response();
    set_flow(&app, &mut resp, Flow::Passkey, "", 0);
    Ok(json_redirect(resp))
}
