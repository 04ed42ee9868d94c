//! Portal "Sign-in security": passkeys (add, list, remove), an authenticator app
//! (TOTP) and recovery codes.

use axum::extract::{Form, Query, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::json;

use super::{checked_session, signed_in};
use crate::authn::mfa::{self, Assurance};
use crate::authn::{passkeys, totp, AuthnError, Session};
use crate::clock::format_rfc3339;
use crate::web::forms::{CodeForm, CsrfForm, RegistrationBody};
use crate::web::mfa::totp_setup_page;
use crate::web::person::{account_label, display_name};
use crate::web::{page, sentence, Browser, JsonError, PageError};
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

/// The JSON endpoints' answer when the hub fails (the script shows it).
const JSON_UNAVAILABLE: &str = "try again shortly";

/// Once a person has a second factor, seeing or changing factors needs a session that
/// used one, recently (`mfa.manage_factors_max_age_seconds`): neither a stolen password
/// nor a session left open on a shared computer may swap them. Else a step-up.
/// `Finish::Ceremony`: the second half of a set-up begun in time (a passkey's creation,
/// a TOTP code typed after scanning) gets `challenge_ttl_seconds` more, so it is not
/// refused half-way with a credential already made on the device.
async fn strong_enough(app: &AppState, session: &Session, finish: Finish) -> Result<(), PageError> {
    let step_up = || Err(PageError::Redirect("/login/mfa/step-up".into()));
    let age = app.clock().now_secs() - session.auth_time_secs();
    let cfg = &app.config().mfa;
    let max_age = match finish {
        Finish::Ceremony => cfg.manage_factors_max_age_seconds + cfg.challenge_ttl_seconds,
        Finish::Now => cfg.manage_factors_max_age_seconds,
    };
    if Assurance::of_amr(&session.amr) >= Assurance::Mfa && age <= max_age {
        return Ok(());
    }
    let f = mfa::factors(app, &session.person_id)
        .await
        .map_err(PageError::page_unavailable)?;
    if !f.any() {
        return Ok(());
    }
    if age > max_age {
        return step_up();
    }
    // A first passkey or app added in this very session (issue 14): show the
    // confirmation, not a step-up for a factor just made.
    if mfa::factors_all_since(app, &session.person_id, session.auth_time_ms)
        .await
        .map_err(PageError::page_unavailable)?
    {
        return Ok(());
    }
    step_up()
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
) -> Result<&'b Session, PageError> {
    let session = checked_session(app, browser, csrf)?;
    strong_enough(app, session, finish).await?;
    Ok(session)
}

/// Removes a factor unless that would leave a privileged person unable to sign in.
async fn remove_factor(
    app: &AppState,
    browser: &Browser,
    csrf: Option<&str>,
    passkey: Option<&str>,
) -> Result<Response, PageError> {
    let session = form_session(app, browser, csrf, Finish::Now).await?;
    let pid = &session.person_id;
    let keep = removal_keeps(app, pid)
        .await
        .map_err(PageError::page_unavailable)?;
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
        Ok(true) => Ok(Redirect::to("/portal/security?done=removed").into_response()),
        Ok(false) => Err(PageError::refused(
            StatusCode::NOT_FOUND,
            "There is no such factor on your account.",
        )),
        Err(e) => Err(PageError::page_unavailable(e)),
    }
}

#[derive(Deserialize, Default)]
struct DoneQuery {
    done: Option<String>,
}

async fn security_page(
    State(app): State<AppState>,
    browser: Browser,
    Query(q): Query<DoneQuery>,
) -> Result<Response, PageError> {
    let session = signed_in(&browser)?;
    strong_enough(&app, session, Finish::Now).await?;
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
) -> Result<Response, PageError> {
    let (list, f, needed) = tokio::try_join!(
        passkeys::list(app, person_id),
        mfa::factors(app, person_id),
        mfa::required_for_person(app, person_id),
    )
    .map_err(PageError::page_unavailable)?;
    let keys: Vec<_> = list
        .iter()
        .map(|k| {
            minijinja::context! {
                id => k.id, name => k.name, created => format_rfc3339(k.created_at_ms),
                last_used => k.last_used_at_ms.map(format_rfc3339),
            }
        })
        .collect();
    let name = display_name(app, person_id).await;
    let ctx = minijinja::context! {
        lang => "en", nav => "security", person_name => name, csrf => browser.csrf(app),
        passkeys => keys, totp => f.totp, recovery_left => f.recovery_codes_left,
        has_factor => f.any(), needs_mfa => needed >= Assurance::Mfa,
        needs_passkey => needed == Assurance::Passkey, notice => notice, alert => alert,
        passkeys_on => app.passkeys().available(),
    };
    Ok(browser.finish(app, page(app, status, "security.html", ctx)))
}

async fn totp_start(
    State(app): State<AppState>,
    browser: Browser,
    Form(f): Form<CsrfForm>,
) -> Result<Response, PageError> {
    let session = form_session(&app, &browser, f.csrf.as_deref(), Finish::Now).await?;
    let (account, _) = account_label(&app, &session.person_id)
        .await
        .map_err(PageError::page_unavailable)?;
    let en = totp::start_enrollment(&app, &session.person_id, &account)
        .await
        .map_err(PageError::page_unavailable)?;
    let confirm = "/portal/security/totp/confirm";
    Ok(totp_setup_page(&app, &browser, &en, confirm, None))
}

async fn totp_confirm(
    State(app): State<AppState>,
    browser: Browser,
    Form(f): Form<CodeForm>,
) -> Result<Response, PageError> {
    let session = form_session(&app, &browser, f.csrf.as_deref(), Finish::Ceremony).await?;
    let origin = browser.origin();
    if totp::confirm_enrollment(&app, &session.person_id, &f.code, &origin)
        .await
        .map_err(PageError::page_unavailable)?
    {
        return Ok(Redirect::to("/portal/security?done=totp").into_response());
    }
    let alert = app.web().message("mfa.totp_setup_wrong");
    let status = StatusCode::UNAUTHORIZED;
    render(
        &app,
        &browser,
        &session.person_id,
        None,
        Some(alert),
        status,
    )
    .await
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
) -> Result<Response, PageError> {
    remove_factor(&app, &browser, f.csrf.as_deref(), None).await
}

async fn recovery_issue(
    State(app): State<AppState>,
    browser: Browser,
    Form(f): Form<CsrfForm>,
) -> Result<Response, PageError> {
    let session = form_session(&app, &browser, f.csrf.as_deref(), Finish::Now).await?;
    let codes =
        crate::authn::factors::issue_recovery_codes(&app, &browser.origin(), &session.person_id)
            .await
            .map_err(PageError::page_unavailable)?;
    let name = display_name(&app, &session.person_id).await;
    let ctx = minijinja::context! { lang => "en", nav => "security", person_name => name, codes => codes };
    let mut resp = browser.finish(&app, page(&app, StatusCode::OK, "recovery_codes.html", ctx));
    resp.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(resp)
}

/// `form_session` for the passkey JSON endpoints: the refusal as a JSON error.
async fn json_session<'b>(
    app: &AppState,
    browser: &'b Browser,
    csrf: Option<&str>,
    finish: Finish,
) -> Result<&'b Session, JsonError> {
    let Ok(session) = checked_session(app, browser, csrf) else {
        return Err(JsonError::csrf(app));
    };
    if strong_enough(app, session, finish).await.is_err() {
        let msg = app.web().message("security.confirm_first");
        return Err(JsonError::new(StatusCode::FORBIDDEN, msg));
    }
    Ok(session)
}

async fn passkey_options(
    State(app): State<AppState>,
    browser: Browser,
    Json(b): Json<CsrfForm>,
) -> Result<Response, JsonError> {
    let session = json_session(&app, &browser, b.csrf.as_deref(), Finish::Now).await?;
    let (account, display) = account_label(&app, &session.person_id)
        .await
        .map_err(|e| JsonError::unavailable_as(JSON_UNAVAILABLE, e))?;
    let ccr = passkeys::start_registration(&app, &session.person_id, &account, &display)
        .await
        .map_err(|e| JsonError::unavailable_as(JSON_UNAVAILABLE, e))?;
    Ok(Json(ccr).into_response())
}

async fn passkey_add(
    State(app): State<AppState>,
    browser: Browser,
    Json(b): Json<RegistrationBody>,
) -> Result<Response, JsonError> {
    let session = json_session(&app, &browser, b.csrf.as_deref(), Finish::Ceremony).await?;
    let origin = browser.origin();
    match passkeys::finish_registration(&app, &session.person_id, &b.name, &b.credential, &origin)
        .await
    {
        Ok(_) => Ok(Json(json!({ "redirect": "/portal/security?done=passkey" })).into_response()),
        Err(e @ (AuthnError::Passkey(_) | AuthnError::ChallengeExpired)) => Err(JsonError::new(
            StatusCode::BAD_REQUEST,
            sentence(&e.to_string()),
        )),
        Err(e) => Err(JsonError::unavailable_as(JSON_UNAVAILABLE, e)),
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
) -> Result<Response, PageError> {
    remove_factor(&app, &browser, f.csrf.as_deref(), Some(&f.id)).await
}
