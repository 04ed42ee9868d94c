//! Setting up a factor in the middle of signing in: a first one for a person who must
//! use a second factor and has none (`[mfa] enroll_at_signin`), and a passkey for a
//! holder of a code whose role became passkey-only, after the code (`mfa::prove`).
//! The second step itself is `web::mfa`.

use axum::extract::{Form, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use serde::Deserialize;
use webauthn_rs::prelude::RegisterPublicKeyCredential;

use super::mfa::{
    json_done, json_error, json_pending, json_unavailable, pending_of, render, signed_in,
    start_again, unavailable, CodeForm, CsrfBody,
};
use super::portal::account_label;
use super::Browser;
use crate::authn::mfa::{self, Assurance, Pending};
use crate::authn::{passkeys, totp, AuthnError};
use crate::AppState;

pub(super) fn router() -> Router<AppState> {
    Router::new()
        .route("/login/mfa/enroll/totp", post(enroll_totp))
        .route("/login/mfa/enroll/totp/confirm", post(enroll_totp_confirm))
        .route(
            "/login/mfa/enroll/passkey/options",
            post(enroll_passkey_options),
        )
        .route("/login/mfa/enroll/passkey", post(enroll_passkey_finish))
}

/// Setting up a first factor at sign-in is only for a person who has none at all
/// (`[mfa] enroll_at_signin`); anyone else proves a factor they already have.
/// Only the person's own policy (a privileged role) counts here, never what the
/// request asks (`acr_values` is the caller's choice): otherwise anyone with a password
/// could plant a factor on any account by asking for MFA.
pub(super) async fn may_enroll(app: &AppState, pending: &Pending) -> Result<bool, AuthnError> {
    let f = mfa::factors(app, &pending.person_id).await?;
    let own = mfa::required_for_person(app, &pending.person_id).await?;
    // Nothing at all (recovery codes count: they must be proven first, `mfa::prove`).
    let nothing = !f.any() && f.recovery_codes_left == 0;
    // A passkey-only role held by someone with only a code: after the code.
    let passkey_after_code =
        own == Assurance::Passkey && f.passkeys == 0 && !pending.proven.is_empty();
    Ok(app.config().mfa.enroll_at_signin
        && (nothing || passkey_after_code)
        && own > Assurance::Single
        && !f.can_satisfy(own))
}

/// A person whose own role needs a passkey (`mfa.privileged_roles = "passkey"`), who
/// has none but has an authenticator app or recovery codes, proves one of those before
/// adding a passkey at sign-in (with `enroll_at_signin`): the role can be made
/// passkey-only without sending every holder to the help desk. Not for a passkey that
/// only the app asks for (`acr_values`), as in `may_enroll`.
pub(super) async fn may_prove(
    app: &AppState,
    pending: &Pending,
    f: &mfa::Factors,
) -> Result<bool, AuthnError> {
    if !app.config().mfa.enroll_at_signin
        || !app.config().mfa.passkey_after_code
        || !app.passkeys().available()
        || pending.needed != Assurance::Passkey
        || !pending.proven.is_empty()
        || f.passkeys > 0
        || !(f.totp || f.recovery_codes_left > 0)
    {
        return Ok(false);
    }
    Ok(mfa::required_for_person(app, &pending.person_id).await? == Assurance::Passkey)
}

#[derive(Deserialize)]
struct CsrfForm {
    csrf: Option<String>,
}

/// The pending sign-in of a person setting up an authenticator app at sign-in.
async fn totp_enrolment(
    app: &AppState,
    browser: &Browser,
    csrf: Option<&str>,
) -> Result<Pending, Response> {
    if !browser.csrf_ok(app, csrf) {
        return Err(super::csrf_failed(app));
    }
    let pending = match pending_of(app, browser).await {
        Ok(Some(p)) if p.needed != Assurance::Passkey => p,
        Ok(_) => return Err(start_again(app)),
        Err(e) => return Err(unavailable(app, e)),
    };
    match may_enroll(app, &pending).await {
        Ok(true) => Ok(pending),
        Ok(false) => Err(start_again(app)),
        Err(e) => Err(unavailable(app, e)),
    }
}

async fn enroll_totp(
    State(app): State<AppState>,
    browser: Browser,
    Form(f): Form<CsrfForm>,
) -> Response {
    let pending = match totp_enrolment(&app, &browser, f.csrf.as_deref()).await {
        Ok(p) => p,
        Err(r) => return r,
    };
    let (account, _) = account_label(&app, &pending.person_id)
        .await
        .unwrap_or_else(|_| (pending.person_id.clone(), String::new()));
    match totp::start_enrollment(&app, &pending.person_id, &account).await {
        Ok(en) => super::security::totp_setup_page(
            &app,
            &browser,
            &en,
            "/login/mfa/enroll/totp/confirm",
            None,
        ),
        Err(e) => unavailable(&app, e),
    }
}

async fn enroll_totp_confirm(
    State(app): State<AppState>,
    browser: Browser,
    Form(f): Form<CodeForm>,
) -> Response {
    let pending = match totp_enrolment(&app, &browser, f.csrf.as_deref()).await {
        Ok(p) => p,
        Err(r) => return r,
    };
    match totp::confirm_enrollment(&app, &pending.person_id, &f.code).await {
        Ok(true) => {}
        Ok(false) => {
            let alert = app.web().message("mfa.totp_setup_wrong");
            return render(
                &app,
                &browser,
                &pending,
                Some(alert),
                StatusCode::UNAUTHORIZED,
            )
            .await;
        }
        Err(e) => return unavailable(&app, e),
    }
    match mfa::complete_enrollment(&app, &pending, false, &browser.origin()).await {
        Ok(v) => signed_in(&app, &browser, v).await,
        Err(AuthnError::ChallengeExpired) => start_again(&app),
        Err(e) => unavailable(&app, e),
    }
}

async fn enroll_passkey_options(
    State(app): State<AppState>,
    browser: Browser,
    Json(b): Json<CsrfBody>,
) -> Response {
    let pending = match json_pending(&app, &browser, b.csrf.as_deref()).await {
        Ok(p) => p,
        Err(r) => return r,
    };
    match may_enroll(&app, &pending).await {
        Ok(true) => {}
        Ok(false) => return json_error(StatusCode::FORBIDDEN, "use the passkey you already have"),
        Err(e) => return json_unavailable(e),
    }
    let (account, display) = account_label(&app, &pending.person_id)
        .await
        .unwrap_or_else(|_| (pending.person_id.clone(), String::new()));
    match passkeys::start_registration(&app, &pending.person_id, &account, &display).await {
        Ok(ccr) => Json(ccr).into_response(),
        Err(e) => json_unavailable(e),
    }
}

#[derive(Deserialize)]
pub(super) struct RegistrationBody {
    pub csrf: Option<String>,
    #[serde(default)]
    pub name: String,
    pub credential: RegisterPublicKeyCredential,
}

async fn enroll_passkey_finish(
    State(app): State<AppState>,
    browser: Browser,
    Json(b): Json<RegistrationBody>,
) -> Response {
    let pending = match json_pending(&app, &browser, b.csrf.as_deref()).await {
        Ok(p) => p,
        Err(r) => return r,
    };
    match may_enroll(&app, &pending).await {
        Ok(true) => {}
        Ok(false) => return json_error(StatusCode::FORBIDDEN, "use the passkey you already have"),
        Err(e) => return json_unavailable(e),
    }
    let origin = browser.origin();
    match passkeys::finish_registration(&app, &pending.person_id, &b.name, &b.credential, &origin)
        .await
    {
        Ok(_) => {}
        Err(e @ (AuthnError::Passkey(_) | AuthnError::ChallengeExpired)) => {
            return json_error(
                StatusCode::BAD_REQUEST,
                &super::signin::capitalize(&e.to_string()),
            )
        }
        Err(e) => return json_unavailable(e),
    }
    match mfa::complete_enrollment(&app, &pending, true, &origin).await {
        Ok(v) => {
            let resp = signed_in(&app, &browser, v).await;
            json_done(&app, resp)
        }
        Err(e @ AuthnError::ChallengeExpired) => {
            json_error(StatusCode::BAD_REQUEST, &e.to_string())
        }
        Err(e) => json_unavailable(e),
    }
}
