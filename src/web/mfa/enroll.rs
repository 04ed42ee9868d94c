//! Setting up a factor in the middle of signing in: a first one for a person who must
//! use a second factor and has none (`[mfa] enroll_at_signin`), and a passkey for a
//! holder of a code whose role became passkey-only, after the code (`mfa::prove`).
//! The second step itself is `challenge.rs`.

use axum::extract::{Form, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};

use super::challenge::{json_pending, pending_of, render, signed_in};
use super::totp_setup_page;
use crate::authn::mfa::{self, Assurance, Pending};
use crate::authn::{passkeys, totp, AuthnError};
use crate::web::error::json_redirect;
use crate::web::forms::{CodeForm, CsrfForm, RegistrationBody};
use crate::web::person::account_label;
use crate::web::{sentence, Browser, JsonError, PageError};
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

/// The pending sign-in of a person setting up an authenticator app at sign-in.
async fn totp_enrolment(
    app: &AppState,
    browser: &Browser,
    csrf: Option<&str>,
) -> Result<Pending, PageError> {
    if !browser.csrf_ok(app, csrf) {
        return Err(PageError::csrf());
    }
    let pending = pending_of(app, browser)
        .await
        .map_err(PageError::unavailable)?
        .filter(|p| p.needed != Assurance::Passkey)
        .ok_or_else(PageError::start_again)?;
    if !may_enroll(app, &pending)
        .await
        .map_err(PageError::unavailable)?
    {
        return Err(PageError::start_again());
    }
    Ok(pending)
}

async fn enroll_totp(
    State(app): State<AppState>,
    browser: Browser,
    Form(f): Form<CsrfForm>,
) -> Result<Response, PageError> {
    let pending = totp_enrolment(&app, &browser, f.csrf.as_deref()).await?;
    let (account, _) = account_label(&app, &pending.person_id)
        .await
        .unwrap_or_else(|_| (pending.person_id.clone(), String::new()));
    let en = totp::start_enrollment(&app, &pending.person_id, &account)
        .await
        .map_err(PageError::unavailable)?;
    let confirm = "/login/mfa/enroll/totp/confirm";
    Ok(totp_setup_page(&app, &browser, &en, confirm, None))
}

async fn enroll_totp_confirm(
    State(app): State<AppState>,
    browser: Browser,
    Form(f): Form<CodeForm>,
) -> Result<Response, PageError> {
    let pending = totp_enrolment(&app, &browser, f.csrf.as_deref()).await?;
    if !totp::confirm_enrollment(&app, &pending.person_id, &f.code, &browser.origin())
        .await
        .map_err(PageError::unavailable)?
    {
        let alert = app.web().message("mfa.totp_setup_wrong");
        let status = StatusCode::UNAUTHORIZED;
        return render(&app, &browser, &pending, Some(alert), status).await;
    }
    match mfa::complete_enrollment(&app, &pending, false, &browser.origin()).await {
        Ok(v) => signed_in(&app, &browser, v).await,
        Err(AuthnError::ChallengeExpired) => Err(PageError::start_again()),
        Err(e) => Err(PageError::unavailable(e)),
    }
}

async fn enroll_passkey_options(
    State(app): State<AppState>,
    browser: Browser,
    Json(b): Json<CsrfForm>,
) -> Result<Response, JsonError> {
    let pending = json_pending(&app, &browser, b.csrf.as_deref()).await?;
    passkey_enrolment_allowed(&app, &pending).await?;
    let (account, display) = account_label(&app, &pending.person_id)
        .await
        .unwrap_or_else(|_| (pending.person_id.clone(), String::new()));
    let ccr = passkeys::start_registration(&app, &pending.person_id, &account, &display)
        .await
        .map_err(JsonError::unavailable)?;
    Ok(Json(ccr).into_response())
}

/// A passkey is set up at sign-in only by whoever may (`may_enroll`).
async fn passkey_enrolment_allowed(app: &AppState, pending: &Pending) -> Result<(), JsonError> {
    if may_enroll(app, pending)
        .await
        .map_err(JsonError::unavailable)?
    {
        return Ok(());
    }
    Err(JsonError::new(
        StatusCode::FORBIDDEN,
        "use the passkey you already have",
    ))
}

async fn enroll_passkey_finish(
    State(app): State<AppState>,
    browser: Browser,
    Json(b): Json<RegistrationBody>,
) -> Result<Response, JsonError> {
    let pending = json_pending(&app, &browser, b.csrf.as_deref()).await?;
    passkey_enrolment_allowed(&app, &pending).await?;
    let origin = browser.origin();
    match passkeys::finish_registration(&app, &pending.person_id, &b.name, &b.credential, &origin)
        .await
    {
        Ok(_) => {}
        Err(e @ (AuthnError::Passkey(_) | AuthnError::ChallengeExpired)) => {
            return Err(JsonError::new(
                StatusCode::BAD_REQUEST,
                sentence(&e.to_string()),
            ))
        }
        Err(e) => return Err(JsonError::unavailable(e)),
    }
    match mfa::complete_enrollment(&app, &pending, true, &origin).await {
        Ok(v) => {
            let resp = signed_in(&app, &browser, v).await.into_response();
            Ok(json_redirect(resp))
        }
        Err(e @ AuthnError::ChallengeExpired) => {
            Err(JsonError::new(StatusCode::BAD_REQUEST, e.to_string()))
        }
        Err(e) => Err(JsonError::unavailable(e)),
    }
}
