//! Passwordless sign-in with a passkey: the discoverable credential names its person
//! and proves both factors (user verification is required), then the usual session
//! start (which may still ask for more, e.g. a role's policy).

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use serde::Deserialize;
use webauthn_rs::prelude::PublicKeyCredential;

use super::cookies::{set_flow, Flow};
use super::mfa::{json_done, json_error, json_unavailable, CsrfBody};
use super::Browser;
use crate::authn::AuthnError;
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
    Json(b): Json<CsrfBody>,
) -> Response {
    if !browser.csrf_ok(&app, b.csrf.as_deref()) {
        return json_error(StatusCode::FORBIDDEN, &app.web().message("csrf.failed"));
    }
    let ip = browser.meta.source_ip.clone().unwrap_or_default();
    let per_minute = app.config().auth.attempts_per_ip_per_minute;
    if !app
        .ip_throttle()
        .allow(&ip, app.clock().now_ms(), per_minute)
    {
        return json_error(
            StatusCode::TOO_MANY_REQUESTS,
            &super::signin::capitalize(&AuthnError::RateLimited.to_string()),
        );
    }
    match crate::authn::factors::begin_passwordless(&app).await {
        Ok((rcr, handle)) => {
            let mut resp = Json(rcr).into_response();
            let ttl = app.config().mfa.challenge_ttl_seconds;
            set_flow(&app, &mut resp, Flow::Passkey, &handle, ttl);
            browser.finish(&app, resp)
        }
        Err(e) => json_unavailable(e),
    }
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
) -> Response {
    if !browser.csrf_ok(&app, b.csrf.as_deref()) {
        return json_error(StatusCode::FORBIDDEN, &app.web().message("csrf.failed"));
    }
    let Some(handle) = browser.passkey_handle.as_deref() else {
        return json_error(
            StatusCode::BAD_REQUEST,
            &AuthnError::ChallengeExpired.to_string(),
        );
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
            return json_error(StatusCode::BAD_REQUEST, &e.to_string())
        }
        Err(AuthnError::Passkey(e)) => {
            tracing::info!(error = %e, "passwordless sign-in refused");
            let msg = app.web().message("mfa.passkey_failed");
            return json_error(StatusCode::UNAUTHORIZED, &msg);
        }
        Err(e) => return json_unavailable(e),
    };
    match crate::directory::get_person(app.store(), &person_id).await {
        Ok(p) if p.status == "active" => {}
        Ok(p) => {
            let msg = AuthnError::Inactive(p.status.to_string()).to_string();
            return json_error(StatusCode::FORBIDDEN, &super::signin::capitalize(&msg));
        }
        Err(e) => return json_unavailable(e),
    }
    let request = b.request.as_deref().filter(|r| !r.is_empty());
    let amr = vec!["hwk".to_string(), "mfa".to_string()];
    let mut resp = super::signin::start_session(
        &app,
        &browser,
        &person_id,
        amr,
        crate::authn::ACR_PASSKEY,
        request,
    )
    .await;
    set_flow(&app, &mut resp, Flow::Passkey, "", 0);
    json_done(&app, resp)
}
