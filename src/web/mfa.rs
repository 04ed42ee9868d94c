//! The second step of signing in (passkey, authenticator code, recovery code), the
//! step-up an app asks for, setting up a first factor at sign-in, and passwordless
//! sign-in with a passkey. The policy itself is `authn::mfa`.

use axum::extract::{Form, Query, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::json;
use webauthn_rs::prelude::PublicKeyCredential;

use super::cookies::{set_flow, Flow};
use super::{error_page, page, Browser};
use crate::authn::mfa::{self, Assurance, Factor, Pending};
use crate::authn::AuthnError;
use crate::AppState;

pub(super) fn router() -> Router<AppState> {
    Router::new()
        .route("/login/mfa", get(mfa_page))
        .route("/login/mfa/step-up", get(step_up))
        .route("/login/mfa/code", post(code_submit))
        .route("/login/mfa/passkey/options", post(passkey_options))
        .route("/login/mfa/passkey", post(passkey_finish))
        .merge(super::mfa_enroll::router())
}

pub(super) fn unavailable(app: &AppState, e: impl std::fmt::Display) -> Response {
    tracing::error!(error = %e, "second-factor step failed");
    error_page(
        app,
        StatusCode::SERVICE_UNAVAILABLE,
        "The sign-in service is unavailable; try again shortly.",
    )
}

/// What this person needs for this sign-in: their own policy, and the app's
/// (`mfa_required`, `acr_values`) when the sign-in is for an app.
pub(super) async fn needed_for(
    app: &AppState,
    person_id: &str,
    request: Option<&str>,
) -> Result<Assurance, AuthnError> {
    let mut needed = mfa::required_for_person(app, person_id).await?;
    if let Some(h) = request {
        if let Ok(Some(req)) = crate::oidc::load_request(app, h, false).await {
            needed = needed.max(Assurance::from_acr_values(req.acr_values.as_deref()));
            let client = app
                .clients()
                .get(app.store(), &req.client_id, app.clock().now_ms())
                .await
                .ok()
                .flatten();
            if client.is_some_and(|c| c.settings.mfa_required) {
                needed = needed.max(Assurance::Mfa);
            }
        }
    }
    Ok(needed)
}

/// The first factor is done; the second is asked for on `/login/mfa`.
pub(super) async fn ask_second_factor(
    app: &AppState,
    browser: &Browser,
    person_id: &str,
    amr: &[String],
    acr: &str,
    request: Option<&str>,
    needed: Assurance,
) -> Response {
    match mfa::begin_pending(app, person_id, amr, acr, request, needed).await {
        Ok(handle) => {
            let mut resp = Redirect::to("/login/mfa").into_response();
            let ttl = app.config().mfa.challenge_ttl_seconds;
            set_flow(app, &mut resp, Flow::Mfa, &handle, ttl);
            browser.finish(app, resp)
        }
        Err(e) => unavailable(app, e),
    }
}

pub(super) async fn pending_of(
    app: &AppState,
    browser: &Browser,
) -> Result<Option<Pending>, AuthnError> {
    match browser.mfa_handle.as_deref() {
        Some(h) => mfa::load_pending(app, h).await,
        None => Ok(None),
    }
}

pub(super) fn start_again(app: &AppState) -> Response {
    super::error_page_to(
        app,
        StatusCode::BAD_REQUEST,
        "This sign-in has expired or was already finished; sign in again from the start.",
        super::Next::SignIn,
    )
}

pub(super) async fn render(
    app: &AppState,
    browser: &Browser,
    pending: &Pending,
    alert: Option<String>,
    status: StatusCode,
) -> Response {
    let f = match mfa::factors(app, &pending.person_id).await {
        Ok(f) => f,
        Err(e) => return unavailable(app, e),
    };
    let passkey_only = pending.needed == Assurance::Passkey;
    // A role that needs a passkey cannot sign in where passkeys are off.
    let possible = !passkey_only || app.passkeys().available();
    let can = f.can_satisfy(pending.needed) && possible;
    let upgrade = !can
        && super::mfa_enroll::may_prove(app, pending, &f)
            .await
            .unwrap_or(false);
    let enroll = !can
        && possible
        && super::mfa_enroll::may_enroll(app, pending)
            .await
            .unwrap_or(false);
    // Only the app asks for more than this person's own policy: the portal is the way.
    let via_portal = mfa::required_for_person(app, &pending.person_id)
        .await
        .is_ok_and(|own| own == Assurance::Single);
    let ctx = minijinja::context! {
        lang => "en", csrf => browser.csrf(app), alert => alert,
        passkey_only => passkey_only, can => can, enroll => enroll, via_portal => via_portal,
        upgrade => upgrade, proven => !pending.proven.is_empty(),
        has_passkey => f.passkeys > 0 && app.passkeys().available(),
        passkeys_on => app.passkeys().available(),
        has_totp => f.totp && (!passkey_only || upgrade),
        has_recovery => f.recovery_codes_left > 0 && (!passkey_only || upgrade),
    };
    browser.finish(app, page(app, status, "mfa.html", ctx))
}

async fn mfa_page(State(app): State<AppState>, browser: Browser) -> Response {
    match pending_of(&app, &browser).await {
        Ok(Some(p)) => render(&app, &browser, &p, None, StatusCode::OK).await,
        Ok(None) => start_again(&app),
        Err(e) => unavailable(&app, e),
    }
}

#[derive(Deserialize)]
struct StepUpQuery {
    request: Option<String>,
}

/// Request handles are ours (URL-safe base64); anything else is refused before it
/// reaches a Location header.
fn handle_ok(h: &str) -> bool {
    !h.is_empty()
        && h.len() <= 100
        && h.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b':')
}

/// An app needs more than the session has (`oidc::Next::StepUp`): the signed-in
/// person adds a second factor; the new session then continues the request.
async fn step_up(
    State(app): State<AppState>,
    browser: Browser,
    Query(q): Query<StepUpQuery>,
) -> Response {
    let request = q.request.as_deref().filter(|r| !r.is_empty());
    if request.is_some_and(|r| !handle_ok(r)) {
        return super::request_expired(&app);
    }
    if let Some(h) = request {
        if let Err(refused) = super::authorize::bound_request(&app, &browser, h).await {
            return refused;
        }
    }
    let Some(session) = &browser.session else {
        return match request {
            Some(r) => Redirect::to(&format!("/login?request={r}")).into_response(),
            None => Redirect::to("/login").into_response(),
        };
    };
    // Without a request: the portal wants a second factor before factors change.
    let needed = match needed_for(&app, &session.person_id, request).await {
        Ok(n) if request.is_none() => n.max(Assurance::Mfa),
        Ok(n) => n,
        Err(e) => return unavailable(&app, e),
    };
    // The step-up starts again from the session's first factor (password or upstream
    // IdP): a second factor used hours ago does not count towards the new, fresh
    // `auth_time` (an app's acr_values and max_age must both be true at once). A session
    // with no such factor (a passwordless passkey) signs in again instead.
    let first: Vec<String> = session
        .amr
        .iter()
        .filter(|a| *a == "pwd" || *a == "fed")
        .cloned()
        .collect();
    if first.is_empty() {
        return match request {
            Some(r) => Redirect::to(&format!("/login?request={r}")).into_response(),
            None => Redirect::to("/login").into_response(),
        };
    }
    ask_second_factor(
        &app,
        &browser,
        &session.person_id,
        &first,
        &session.acr,
        request,
        needed,
    )
    .await
}

/// The sign-in is complete: the session starts (and the flow cookie goes).
pub(super) async fn signed_in(app: &AppState, browser: &Browser, v: mfa::Verified) -> Response {
    // Signed in already as this person, and no app waiting: the portal's step-up before
    // its factor pages, so back there.
    let portal_step_up = v.auth_request.is_none()
        && browser
            .session
            .as_ref()
            .is_some_and(|s| s.person_id == v.person_id);
    let mut resp = super::signin::open_session(
        app,
        browser,
        &v.person_id,
        v.amr,
        v.acr,
        v.auth_request.as_deref(),
    )
    .await;
    if portal_step_up
        && resp
            .headers()
            .get(header::LOCATION)
            .is_some_and(|l| l == "/portal")
    {
        resp.headers_mut().insert(
            header::LOCATION,
            HeaderValue::from_static("/portal/security"),
        );
    }
    set_flow(app, &mut resp, Flow::Mfa, "", 0);
    resp
}

#[derive(Deserialize)]
pub(super) struct CodeForm {
    pub csrf: Option<String>,
    #[serde(default)]
    pub kind: String,
    #[serde(default)]
    pub code: String,
}

/// What a right code did.
enum Step {
    SignedIn(mfa::Verified),
    /// Proven for adding a passkey; the sign-in goes on.
    Proven(Pending),
}

async fn code_submit(
    State(app): State<AppState>,
    browser: Browser,
    Form(f): Form<CodeForm>,
) -> Response {
    if !browser.csrf_ok(&app, f.csrf.as_deref()) {
        return super::csrf_failed(&app);
    }
    let pending = match pending_of(&app, &browser).await {
        Ok(Some(p)) => p,
        Ok(None) => return start_again(&app),
        Err(e) => return unavailable(&app, e),
    };
    // A code never finishes a sign-in that needs a passkey; it may let a person whose
    // role needs one, and who has none yet, add one (`mfa::prove`).
    let upgrade = pending.needed == Assurance::Passkey
        && match mfa::factors(&app, &pending.person_id).await {
            Ok(f) => super::mfa_enroll::may_prove(&app, &pending, &f)
                .await
                .unwrap_or(false),
            Err(e) => return unavailable(&app, e),
        };
    if pending.needed == Assurance::Passkey && !upgrade {
        let alert = app.web().message("mfa.passkey_required");
        return render(&app, &browser, &pending, Some(alert), StatusCode::FORBIDDEN).await;
    }
    let factor = match f.kind.as_str() {
        "recovery" => Factor::Recovery(&f.code),
        _ => Factor::Totp(&f.code),
    };
    let origin = browser.origin();
    let step = if upgrade {
        mfa::prove(&app, &pending, factor, &origin)
            .await
            .map(Step::Proven)
    } else {
        mfa::verify(&app, &pending, factor, &origin)
            .await
            .map(Step::SignedIn)
    };
    match step {
        Ok(Step::SignedIn(v)) => signed_in(&app, &browser, v).await,
        Ok(Step::Proven(p)) => render(&app, &browser, &p, None, StatusCode::OK).await,
        Err(e @ AuthnError::WrongSecondFactor) => {
            let alert = super::signin::capitalize(&e.to_string());
            render(
                &app,
                &browser,
                &pending,
                Some(alert),
                StatusCode::UNAUTHORIZED,
            )
            .await
        }
        Err(e @ (AuthnError::Locked { .. } | AuthnError::Busy)) => error_page(
            &app,
            StatusCode::TOO_MANY_REQUESTS,
            &super::signin::capitalize(&e.to_string()),
        ),
        Err(AuthnError::TooManyAttempts | AuthnError::ChallengeExpired) => error_page(
            &app,
            StatusCode::TOO_MANY_REQUESTS,
            &super::signin::capitalize(&AuthnError::TooManyAttempts.to_string()),
        ),
        Err(e) => unavailable(&app, e),
    }
}

pub(super) fn json_error(status: StatusCode, message: &str) -> Response {
    (status, Json(json!({ "error": message }))).into_response()
}

pub(super) fn json_unavailable(e: impl std::fmt::Display) -> Response {
    tracing::error!(error = %e, "passkey step failed");
    json_error(
        StatusCode::SERVICE_UNAVAILABLE,
        "The sign-in service is unavailable; try again shortly.",
    )
}

#[derive(Deserialize)]
pub(super) struct CsrfBody {
    pub csrf: Option<String>,
}

/// JSON endpoints: the same CSRF check as forms (token and Origin), and the pending
/// sign-in of this browser.
pub(super) async fn json_pending(
    app: &AppState,
    browser: &Browser,
    csrf: Option<&str>,
) -> Result<Pending, Response> {
    if !browser.csrf_ok(app, csrf) {
        return Err(json_error(
            StatusCode::FORBIDDEN,
            &app.web().message("csrf.failed"),
        ));
    }
    match pending_of(app, browser).await {
        Ok(Some(p)) => Ok(p),
        Ok(None) => Err(json_error(
            StatusCode::BAD_REQUEST,
            &AuthnError::ChallengeExpired.to_string(),
        )),
        Err(e) => Err(json_unavailable(e)),
    }
}

/// Where the browser goes after a JSON step that signed the person in.
pub(super) fn json_done(app: &AppState, resp: Response) -> Response {
    let location = resp
        .headers()
        .get(axum::http::header::LOCATION)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("/portal")
        .to_string();
    let mut out = Json(json!({ "redirect": location })).into_response();
    for c in resp
        .headers()
        .get_all(axum::http::header::SET_COOKIE)
        .iter()
    {
        out.headers_mut()
            .append(axum::http::header::SET_COOKIE, c.clone());
    }
    let _ = app;
    out
}

async fn passkey_options(
    State(app): State<AppState>,
    browser: Browser,
    Json(b): Json<CsrfBody>,
) -> Response {
    let pending = match json_pending(&app, &browser, b.csrf.as_deref()).await {
        Ok(p) => p,
        Err(r) => return r,
    };
    match mfa::passkey_options(&app, &pending).await {
        Ok(Some(rcr)) => Json(rcr).into_response(),
        Ok(None) => json_error(StatusCode::BAD_REQUEST, "you have no passkey here yet"),
        Err(e) => json_unavailable(e),
    }
}

#[derive(Deserialize)]
struct AssertionBody {
    csrf: Option<String>,
    credential: PublicKeyCredential,
}

async fn passkey_finish(
    State(app): State<AppState>,
    browser: Browser,
    Json(b): Json<AssertionBody>,
) -> Response {
    let pending = match json_pending(&app, &browser, b.csrf.as_deref()).await {
        Ok(p) => p,
        Err(r) => return r,
    };
    let factor = Factor::Passkey(&b.credential);
    match mfa::verify(&app, &pending, factor, &browser.origin()).await {
        Ok(v) => {
            let resp = signed_in(&app, &browser, v).await;
            json_done(&app, resp)
        }
        Err(e @ (AuthnError::WrongSecondFactor | AuthnError::TooManyAttempts)) => {
            let msg = match e {
                AuthnError::TooManyAttempts => e.to_string(),
                _ => app.web().message("mfa.passkey_failed"),
            };
            json_error(StatusCode::UNAUTHORIZED, &super::signin::capitalize(&msg))
        }
        Err(e @ AuthnError::ChallengeExpired) => {
            json_error(StatusCode::BAD_REQUEST, &e.to_string())
        }
        Err(e @ (AuthnError::Locked { .. } | AuthnError::Busy)) => json_error(
            StatusCode::TOO_MANY_REQUESTS,
            &super::signin::capitalize(&e.to_string()),
        ),
        Err(e) => json_unavailable(e),
    }
}
