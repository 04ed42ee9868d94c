//! The second step of signing in: the page that asks for it, a code (authenticator
//! app or recovery), a passkey (JSON endpoints for the page's script), and the
//! step-up an app (`acr_values`, `mfa_required`) or the portal asks for.

use axum::extract::{Form, Query, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use webauthn_rs::prelude::PublicKeyCredential;

use crate::authn::mfa::{self, Assurance, Factor, Pending};
use crate::authn::AuthnError;
use crate::web::cookies::{set_flow, Flow};
use crate::web::error::json_redirect;
use crate::web::forms::{CodeForm, CsrfForm};
use crate::web::signin::{ask_second_factor, bound_request, open_session};
use crate::web::{page, sentence, Browser, JsonError, PageError};
use crate::AppState;

pub(super) fn router() -> Router<AppState> {
    Router::new()
        .route("/login/mfa", get(mfa_page))
        .route("/login/mfa/step-up", get(step_up))
        .route("/login/mfa/code", post(code_submit))
        .route("/login/mfa/passkey/options", post(passkey_options))
        .route("/login/mfa/passkey", post(passkey_finish))
}

/// The sign-in of this browser waiting for its second factor, if any.
pub(super) async fn pending_of(
    app: &AppState,
    browser: &Browser,
) -> Result<Option<Pending>, AuthnError> {
    match browser.mfa_handle.as_deref() {
        Some(h) => mfa::load_pending(app, h).await,
        None => Ok(None),
    }
}

/// The second-factor page for `pending`, with what this person can use or set up.
pub(super) async fn render(
    app: &AppState,
    browser: &Browser,
    pending: &Pending,
    alert: Option<String>,
    status: StatusCode,
) -> Result<Response, PageError> {
    let f = mfa::factors(app, &pending.person_id)
        .await
        .map_err(PageError::unavailable)?;
    let passkey_only = pending.needed == Assurance::Passkey;
    // A role that needs a passkey cannot sign in where passkeys are off.
    let possible = !passkey_only || app.passkeys().available();
    let can = f.can_satisfy(pending.needed) && possible;
    let upgrade = !can
        && super::enroll::may_prove(app, pending, &f)
            .await
            .unwrap_or(false);
    let enroll = !can
        && possible
        && super::enroll::may_enroll(app, pending)
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
    Ok(browser.finish(app, page(app, status, "mfa.html", ctx)))
}

async fn mfa_page(State(app): State<AppState>, browser: Browser) -> Result<Response, PageError> {
    let pending = pending_of(&app, &browser)
        .await
        .map_err(PageError::unavailable)?
        .ok_or_else(PageError::start_again)?;
    render(&app, &browser, &pending, None, StatusCode::OK).await
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

fn to_login(request: Option<&str>) -> Response {
    match request {
        Some(r) => Redirect::to(&format!("/login?request={r}")).into_response(),
        None => Redirect::to("/login").into_response(),
    }
}

/// An app needs more than the session has (`authn::NextStep::StepUp`): the signed-in
/// person adds a second factor; the new session then continues the request.
async fn step_up(
    State(app): State<AppState>,
    browser: Browser,
    Query(q): Query<StepUpQuery>,
) -> Result<Response, PageError> {
    let request = q.request.as_deref().filter(|r| !r.is_empty());
    if request.is_some_and(|r| !handle_ok(r)) {
        return Err(PageError::request_expired());
    }
    if let Some(h) = request {
        bound_request(&app, &browser, h).await?;
    }
    let Some(session) = &browser.session else {
        return Ok(to_login(request));
    };
    // Without a request: the portal wants a second factor before factors change.
    let needed = crate::web::signin::needed_for(&app, &session.person_id, request)
        .await
        .map_err(PageError::unavailable)?;
    let needed = if request.is_none() {
        needed.max(Assurance::Mfa)
    } else {
        needed
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
        return Ok(to_login(request));
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
pub(super) async fn signed_in(
    app: &AppState,
    browser: &Browser,
    v: mfa::Verified,
) -> Result<Response, PageError> {
    // Signed in already as this person, and no app waiting: the portal's step-up before
    // its factor pages, so back there.
    let portal_step_up = v.auth_request.is_none()
        && browser
            .session
            .as_ref()
            .is_some_and(|s| s.person_id == v.person_id);
    let mut resp = open_session(
        app,
        browser,
        &v.person_id,
        v.amr,
        v.acr,
        v.auth_request.as_deref(),
    )
    .await
    .into_response();
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
    Ok(resp)
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
) -> Result<Response, PageError> {
    if !browser.csrf_ok(&app, f.csrf.as_deref()) {
        return Err(PageError::csrf());
    }
    let pending = pending_of(&app, &browser)
        .await
        .map_err(PageError::unavailable)?
        .ok_or_else(PageError::start_again)?;
    // A code never finishes a sign-in that needs a passkey; it may let a person whose
    // role needs one, and who has none yet, add one (`mfa::prove`).
    let upgrade = pending.needed == Assurance::Passkey && {
        let factors = mfa::factors(&app, &pending.person_id)
            .await
            .map_err(PageError::unavailable)?;
        super::enroll::may_prove(&app, &pending, &factors)
            .await
            .unwrap_or(false)
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
            let alert = sentence(&e.to_string());
            render(
                &app,
                &browser,
                &pending,
                Some(alert),
                StatusCode::UNAUTHORIZED,
            )
            .await
        }
        Err(e @ (AuthnError::Locked { .. } | AuthnError::Busy)) => Err(PageError::refused(
            StatusCode::TOO_MANY_REQUESTS,
            sentence(&e.to_string()),
        )),
        Err(AuthnError::TooManyAttempts | AuthnError::ChallengeExpired) => Err(PageError::refused(
            StatusCode::TOO_MANY_REQUESTS,
            sentence(&AuthnError::TooManyAttempts.to_string()),
        )),
        Err(e) => Err(PageError::unavailable(e)),
    }
}

/// JSON endpoints: the same CSRF check as forms (token and Origin), and the pending
/// sign-in of this browser.
pub(super) async fn json_pending(
    app: &AppState,
    browser: &Browser,
    csrf: Option<&str>,
) -> Result<Pending, JsonError> {
    if !browser.csrf_ok(app, csrf) {
        return Err(JsonError::csrf(app));
    }
    pending_of(app, browser)
        .await
        .map_err(JsonError::unavailable)?
        .ok_or_else(|| {
            JsonError::new(
                StatusCode::BAD_REQUEST,
                AuthnError::ChallengeExpired.to_string(),
            )
        })
}

async fn passkey_options(
    State(app): State<AppState>,
    browser: Browser,
    Json(b): Json<CsrfForm>,
) -> Result<Response, JsonError> {
    let pending = json_pending(&app, &browser, b.csrf.as_deref()).await?;
    match mfa::passkey_options(&app, &pending).await {
        Ok(Some(rcr)) => Ok(Json(rcr).into_response()),
        Ok(None) => Err(JsonError::new(
            StatusCode::BAD_REQUEST,
            "you have no passkey here yet",
        )),
        Err(e) => Err(JsonError::unavailable(e)),
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
) -> Result<Response, JsonError> {
    let pending = json_pending(&app, &browser, b.csrf.as_deref()).await?;
    let factor = Factor::Passkey(&b.credential);
    match mfa::verify(&app, &pending, factor, &browser.origin()).await {
        Ok(v) => {
            let resp = signed_in(&app, &browser, v).await.into_response();
            Ok(json_redirect(resp))
        }
        Err(e @ (AuthnError::WrongSecondFactor | AuthnError::TooManyAttempts)) => {
            let msg = match e {
                AuthnError::TooManyAttempts => e.to_string(),
                _ => app.web().message("mfa.passkey_failed"),
            };
            Err(JsonError::new(StatusCode::UNAUTHORIZED, sentence(&msg)))
        }
        Err(e @ AuthnError::ChallengeExpired) => {
            Err(JsonError::new(StatusCode::BAD_REQUEST, e.to_string()))
        }
        Err(e @ (AuthnError::Locked { .. } | AuthnError::Busy)) => Err(JsonError::new(
            StatusCode::TOO_MANY_REQUESTS,
            sentence(&e.to_string()),
        )),
        Err(e) => Err(JsonError::unavailable(e)),
    }
}
