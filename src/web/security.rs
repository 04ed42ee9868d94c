//! Portal "Sign-in security": passkeys (add, list, remove), an authenticator app
//! (TOTP) and recovery codes.

use axum::extract::{Form, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::json;

use super::mfa::{json_error, CsrfBody};
use super::mfa_enroll::RegistrationBody;
use super::{checked_session, error_page, page, Browser};
use crate::authn::mfa::{self, Assurance};
use crate::authn::{passkeys, totp, AuthnError};
use crate::clock::format_rfc3339;
use crate::AppState;

pub(super) fn router() -> Router<AppState> {
    Router::new()
        .route("/portal/security", get(security_page))
        .route("/portal/security/totp", post(totp_start))
        .route("/portal/security/totp/confirm", post(totp_confirm))
        .route("/portal/security/totp/remove", post(totp_remove))
        .route("/portal/security/recovery", post(recovery_issue))
        .route("/portal/security/passkeys/options", post(passkey_options))
        .route("/portal/security/passkeys", post(passkey_add))
        .route("/portal/security/passkeys/remove", post(passkey_remove))
}

/// Once a person has a second factor, seeing or changing factors needs a session that
/// used one, recently (`mfa.manage_factors_max_age_seconds`): neither a stolen password
/// nor a session left open on a shared computer may swap them. Else a step-up.
/// `Finish::Ceremony`: the second half of a set-up begun in time (a passkey's creation,
/// a TOTP code typed after scanning) gets `challenge_ttl_seconds` more, so it is not
/// refused half-way with a credential already made on the device.
async fn weak_session(
    app: &AppState,
    session: &crate::authn::Session,
    finish: Finish,
) -> Option<Response> {
    let age = app.clock().now_secs() - session.auth_time_secs();
    let cfg = &app.config().mfa;
    let max_age = match finish {
        Finish::Ceremony => cfg.manage_factors_max_age_seconds + cfg.challenge_ttl_seconds,
        Finish::Now => cfg.manage_factors_max_age_seconds,
    };
    if Assurance::of_amr(&session.amr) >= Assurance::Mfa && age <= max_age {
        return None;
    }
    match mfa::factors(app, &session.person_id).await {
        Ok(f) if !f.any() => None,
        Ok(_) if age <= max_age => {
            // A first passkey or app added in this very session (issue 14): show
            // the confirmation, not a step-up for a factor just made.
            match mfa::factors_all_since(app, &session.person_id, session.auth_time_ms).await {
                Ok(true) => None,
                Ok(false) => Some(Redirect::to("/login/mfa/step-up").into_response()),
                Err(e) => Some(failed(app, e)),
            }
        }
        Ok(_) => Some(Redirect::to("/login/mfa/step-up").into_response()),
        Err(e) => Some(failed(app, e)),
    }
}

#[derive(Clone, Copy)]
enum Finish {
    Now,
    Ceremony,
}

/// A portal form that changes factors: CSRF checked, and a session strong enough.
async fn form_session<'b>(
    app: &AppState,
    browser: &'b Browser,
    csrf: Option<&str>,
    finish: Finish,
) -> Result<&'b crate::authn::Session, Response> {
    let session = checked_session(app, browser, csrf).map_err(|r| *r)?;
    match weak_session(app, session, finish).await {
        Some(r) => Err(r),
        None => Ok(session),
    }
}

/// Removes a factor unless that would leave a privileged person unable to sign in.
async fn remove_factor(
    app: &AppState,
    browser: &Browser,
    csrf: Option<&str>,
    passkey: Option<&str>,
) -> Response {
    let session = match form_session(app, browser, csrf, Finish::Now).await {
        Ok(s) => s,
        Err(r) => return r,
    };
    let pid = &session.person_id;
    let keep = match removal_keeps(app, pid).await {
        Ok(k) => k,
        Err(e) => return failed(app, e),
    };
    let origin = browser.origin();
    let removed = match passkey {
        Some(id) => crate::authn::factors::remove_passkey(app, &origin, pid, id, keep).await,
        None => crate::authn::factors::remove_totp(app, &origin, pid, keep).await,
    };
    match removed {
        Err(AuthnError::LastFactor) => {
            let alert = app.web().message("security.last_factor");
            render(app, browser, pid, None, Some(alert), StatusCode::CONFLICT).await
        }
        Ok(true) => Redirect::to("/portal/security?done=removed").into_response(),
        Ok(false) => error_page(
            app,
            StatusCode::NOT_FOUND,
            "There is no such factor on your account.",
        ),
        Err(e) => failed(app, e),
    }
}

fn failed(app: &AppState, e: impl std::fmt::Display) -> Response {
    tracing::error!(error = %e, "security page failed");
    error_page(
        app,
        StatusCode::SERVICE_UNAVAILABLE,
        "This page could not be shown; try again shortly.",
    )
}

#[derive(Deserialize, Default)]
struct DoneQuery {
    done: Option<String>,
}

async fn security_page(
    State(app): State<AppState>,
    browser: Browser,
    Query(q): Query<DoneQuery>,
) -> Response {
    let Some(session) = &browser.session else {
        return Redirect::to("/login").into_response();
    };
    if let Some(r) = weak_session(&app, session, Finish::Now).await {
        return r;
    }
    let notice = q
        .done
        .filter(|d| matches!(d.as_str(), "passkey" | "totp" | "removed"))
        .map(|d| app.web().message(&format!("security.done_{d}")));
    render(
        &app,
        &browser,
        &session.person_id,
        notice,
        None,
        StatusCode::OK,
    )
    .await
}

async fn render(
    app: &AppState,
    browser: &Browser,
    person_id: &str,
    notice: Option<String>,
    alert: Option<String>,
    status: StatusCode,
) -> Response {
    let (list, f, needed) = match tokio::try_join!(
        passkeys::list(app, person_id),
        mfa::factors(app, person_id),
        mfa::required_for_person(app, person_id),
    ) {
        Ok(x) => x,
        Err(e) => return failed(app, e),
    };
    let keys: Vec<_> = list
        .iter()
        .map(|k| {
            minijinja::context! {
                id => k.id, name => k.name, created => format_rfc3339(k.created_at_ms),
                last_used => k.last_used_at_ms.map(format_rfc3339),
            }
        })
        .collect();
    let name = super::portal::display_name(app, person_id).await;
    let ctx = minijinja::context! {
        lang => "en", nav => "security", person_name => name, csrf => browser.csrf(app),
        passkeys => keys, totp => f.totp, recovery_left => f.recovery_codes_left,
        has_factor => f.any(), needs_mfa => needed >= Assurance::Mfa,
        needs_passkey => needed == Assurance::Passkey, notice => notice, alert => alert,
        passkeys_on => app.passkeys().available(),
    };
    browser.finish(app, page(app, status, "security.html", ctx))
}

/// The authenticator-app set-up page (portal and first sign-in share it).
pub(super) fn totp_setup_page(
    app: &AppState,
    browser: &Browser,
    en: &totp::Enrollment,
    confirm_action: &str,
    alert: Option<String>,
) -> Response {
    let qr = match qrcode::QrCode::new(en.uri.as_bytes()) {
        Ok(code) => {
            let svg = code
                .render::<qrcode::render::svg::Color>()
                .min_dimensions(220, 220)
                .build();
            // The renderer starts with an XML declaration, which HTML does not want.
            svg.find("<svg").map(|i| svg[i..].to_string())
        }
        Err(e) => {
            tracing::warn!(error = %e, "QR code not rendered");
            None
        }
    };
    let grouped: Vec<String> = en
        .secret_base32
        .as_bytes()
        .chunks(4)
        .map(|c| String::from_utf8_lossy(c).into_owned())
        .collect();
    let ctx = minijinja::context! {
        lang => "en", csrf => browser.csrf(app), qr_svg => qr, secret => grouped.join(" "),
        uri => en.uri, action => confirm_action, alert => alert,
    };
    let mut resp = browser.finish(app, page(app, StatusCode::OK, "totp_setup.html", ctx));
    // The secret is on this page: never keep it in a cache.
    resp.headers_mut().insert(
        axum::http::header::CACHE_CONTROL,
        axum::http::HeaderValue::from_static("no-store"),
    );
    resp
}

#[derive(Deserialize)]
struct CsrfForm {
    csrf: Option<String>,
}

async fn totp_start(
    State(app): State<AppState>,
    browser: Browser,
    Form(f): Form<CsrfForm>,
) -> Response {
    let session = match form_session(&app, &browser, f.csrf.as_deref(), Finish::Now).await {
        Ok(s) => s,
        Err(r) => return r,
    };
    let (account, _) = match super::portal::account_label(&app, &session.person_id).await {
        Ok(l) => l,
        Err(e) => return failed(&app, e),
    };
    match totp::start_enrollment(&app, &session.person_id, &account).await {
        Ok(en) => totp_setup_page(&app, &browser, &en, "/portal/security/totp/confirm", None),
        Err(e) => failed(&app, e),
    }
}

#[derive(Deserialize)]
struct CodeForm {
    csrf: Option<String>,
    #[serde(default)]
    code: String,
}

async fn totp_confirm(
    State(app): State<AppState>,
    browser: Browser,
    Form(f): Form<CodeForm>,
) -> Response {
    let session = match form_session(&app, &browser, f.csrf.as_deref(), Finish::Ceremony).await {
        Ok(s) => s,
        Err(r) => return r,
    };
    match totp::confirm_enrollment(&app, &session.person_id, &f.code).await {
        Ok(true) => {
            audit(&app, &browser, &session.person_id, "auth.totp.add").await;
            Redirect::to("/portal/security?done=totp").into_response()
        }
        Ok(false) => {
            let alert = app.web().message("mfa.totp_setup_wrong");
            render(
                &app,
                &browser,
                &session.person_id,
                None,
                Some(alert),
                StatusCode::UNAUTHORIZED,
            )
            .await
        }
        Err(e) => failed(&app, e),
    }
}

async fn audit(app: &AppState, browser: &Browser, person_id: &str, action: &'static str) {
    if let Err(e) =
        crate::authn::factors::record_change(app, &browser.origin(), person_id, action).await
    {
        tracing::error!(error = %e, "auditing a factor change failed");
    }
}

/// What a removal must leave: the person's own need when they hold a privileged
/// role (checked again inside the removal's transaction), else nothing.
async fn removal_keeps(app: &AppState, person_id: &str) -> Result<Option<Assurance>, AuthnError> {
    let privileged =
        crate::authz::holds_privileged_role(app.store(), person_id, app.clock().now_ms())
            .await
            .unwrap_or(true);
    if !privileged {
        return Ok(None);
    }
    Ok(Some(mfa::required_for_person(app, person_id).await?))
}

async fn totp_remove(
    State(app): State<AppState>,
    browser: Browser,
    Form(f): Form<CsrfForm>,
) -> Response {
    remove_factor(&app, &browser, f.csrf.as_deref(), None).await
}

async fn recovery_issue(
    State(app): State<AppState>,
    browser: Browser,
    Form(f): Form<CsrfForm>,
) -> Response {
    let session = match form_session(&app, &browser, f.csrf.as_deref(), Finish::Now).await {
        Ok(s) => s,
        Err(r) => return r,
    };
    let codes = match crate::authn::factors::issue_recovery_codes(
        &app,
        &browser.origin(),
        &session.person_id,
    )
    .await
    {
        Ok(c) => c,
        Err(e) => return failed(&app, e),
    };
    let name = super::portal::display_name(&app, &session.person_id).await;
    let ctx = minijinja::context! { lang => "en", nav => "security", person_name => name, codes => codes };
    let mut resp = browser.finish(&app, page(&app, StatusCode::OK, "recovery_codes.html", ctx));
    resp.headers_mut().insert(
        axum::http::header::CACHE_CONTROL,
        axum::http::HeaderValue::from_static("no-store"),
    );
    resp
}

/// `form_session` for the passkey JSON endpoints: the refusal as a JSON error.
async fn json_session<'b>(
    app: &AppState,
    browser: &'b Browser,
    csrf: Option<&str>,
    finish: Finish,
) -> Result<&'b crate::authn::Session, Response> {
    let Ok(session) = checked_session(app, browser, csrf) else {
        return Err(json_error(
            StatusCode::FORBIDDEN,
            &app.web().message("csrf.failed"),
        ));
    };
    if weak_session(app, session, finish).await.is_some() {
        let msg = app.web().message("security.confirm_first");
        return Err(json_error(StatusCode::FORBIDDEN, &msg));
    }
    Ok(session)
}

async fn passkey_options(
    State(app): State<AppState>,
    browser: Browser,
    Json(b): Json<CsrfBody>,
) -> Response {
    let session = match json_session(&app, &browser, b.csrf.as_deref(), Finish::Now).await {
        Ok(s) => s,
        Err(r) => return r,
    };
    let (account, display) = match super::portal::account_label(&app, &session.person_id).await {
        Ok(l) => l,
        Err(e) => return failed(&app, e),
    };
    match passkeys::start_registration(&app, &session.person_id, &account, &display).await {
        Ok(ccr) => Json(ccr).into_response(),
        Err(e) => {
            tracing::error!(error = %e, "starting a passkey registration failed");
            json_error(StatusCode::SERVICE_UNAVAILABLE, "try again shortly")
        }
    }
}

async fn passkey_add(
    State(app): State<AppState>,
    browser: Browser,
    Json(b): Json<RegistrationBody>,
) -> Response {
    let session = match json_session(&app, &browser, b.csrf.as_deref(), Finish::Ceremony).await {
        Ok(s) => s,
        Err(r) => return r,
    };
    let origin = browser.origin();
    match passkeys::finish_registration(&app, &session.person_id, &b.name, &b.credential, &origin)
        .await
    {
        Ok(_) => Json(json!({ "redirect": "/portal/security?done=passkey" })).into_response(),
        Err(e @ (AuthnError::Passkey(_) | AuthnError::ChallengeExpired)) => json_error(
            StatusCode::BAD_REQUEST,
            &super::signin::capitalize(&e.to_string()),
        ),
        Err(e) => {
            tracing::error!(error = %e, "finishing a passkey registration failed");
            json_error(StatusCode::SERVICE_UNAVAILABLE, "try again shortly")
        }
    }
}

#[derive(Deserialize)]
struct RemoveForm {
    csrf: Option<String>,
    #[serde(default)]
    id: String,
}

async fn passkey_remove(
    State(app): State<AppState>,
    browser: Browser,
    Form(f): Form<RemoveForm>,
) -> Response {
    remove_factor(&app, &browser, f.csrf.as_deref(), Some(&f.id)).await
}
