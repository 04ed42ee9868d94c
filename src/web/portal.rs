//! The self-service portal: profile, live sessions (sign out one or everywhere),
//! connected apps (withdraw consent), password change.

use axum::extract::{Form, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::Router;
use serde::Deserialize;

use super::{error_page, page, Browser};
use crate::authn::Session;
use crate::AppState;

pub(super) fn router() -> Router<AppState> {
    Router::new()
        .route("/portal", get(profile))
        .route("/portal/sessions", get(sessions))
        .route("/portal/sessions/end", post(end_one))
        .route("/portal/sessions/end-all", post(end_all))
        .route("/portal/apps", get(apps))
        .route("/portal/apps/revoke", post(revoke_app))
        .route("/portal/password", get(password_page).post(password_submit))
}

pub(super) async fn display_name(app: &AppState, person_id: &str) -> String {
    match crate::directory::get_person(app.store(), person_id).await {
        Ok(p) => full_name(&p),
        Err(_) => String::new(),
    }
}

/// "Preferred-or-given family", as pages greet a person.
pub(super) fn full_name(p: &crate::directory::Person) -> String {
    format!(
        "{} {}",
        p.preferred_name.as_deref().unwrap_or(&p.given_name),
        p.family_name
    )
}

/// What authenticators show for a person: (account name, display name). The account is
/// the username, else the e-mail address.
pub(super) async fn account_label(
    app: &AppState,
    person_id: &str,
) -> Result<(String, String), crate::directory::DirectoryError> {
    let p = crate::directory::get_person(app.store(), person_id).await?;
    let account = p.username.clone().or(p.email.clone()).unwrap_or_default();
    Ok((account, full_name(&p)))
}

/// The signed-in person's session, or (None) the redirect to sign in.
fn signed_in(browser: &Browser) -> Option<&Session> {
    browser.session.as_ref()
}

fn to_login() -> Response {
    Redirect::to("/login").into_response()
}

fn failed(app: &AppState, e: impl std::fmt::Display) -> Response {
    tracing::error!(error = %e, "portal page failed");
    error_page(
        app,
        StatusCode::SERVICE_UNAVAILABLE,
        "This page could not be shown; try again shortly.",
    )
}

async fn profile(State(app): State<AppState>, browser: Browser) -> Response {
    let Some(session) = signed_in(&browser) else {
        return to_login();
    };
    let person = match crate::directory::get_person(app.store(), &session.person_id).await {
        Ok(p) => p,
        Err(e) => return failed(&app, e),
    };
    let mut affiliations = Vec::new();
    for a in &person.affiliations {
        let org = crate::directory::get_org(app.store(), &a.org_id)
            .await
            .map(|o| o.name)
            .unwrap_or_else(|_| a.org_sourced_id.clone());
        affiliations.push(minijinja::context! { org => org, role => a.role, primary => a.primary });
    }
    let mut roles = Vec::new();
    if let Ok(list) = crate::authz::list_assignments(
        app.store(),
        &crate::authz::Subject::Person(person.id.clone()),
    )
    .await
    {
        for a in list {
            let org = match &a.org_id {
                Some(id) => crate::directory::get_org(app.store(), id)
                    .await
                    .map(|o| format!(" ({})", o.name))
                    .unwrap_or_default(),
                None => String::new(),
            };
            roles.push(format!("{}{org}", a.role));
        }
    }
    let name = display_name(&app, &person.id).await;
    let ctx = minijinja::context! {
        lang => "en", nav => "profile", person_name => name, person => minijinja::Value::from_serialize(&person),
        affiliations => affiliations, roles => roles,
    };
    browser.finish(&app, page(&app, StatusCode::OK, "profile.html", ctx))
}

async fn sessions(State(app): State<AppState>, browser: Browser) -> Response {
    let Some(session) = signed_in(&browser) else {
        return to_login();
    };
    let list = match crate::authn::list_sessions(&app, &session.person_id).await {
        Ok(l) => l,
        Err(e) => return failed(&app, e),
    };
    let rows: Vec<minijinja::Value> = list
        .iter()
        .map(|s| minijinja::context! { id => s.id, started => s.started(), last_seen => s.last_seen(), user_agent => s.user_agent, source_ip => s.source_ip, current => s.id == session.id })
        .collect();
    let name = display_name(&app, &session.person_id).await;
    let ctx = minijinja::context! { lang => "en", nav => "sessions", person_name => name, csrf => browser.csrf(&app), sessions => rows };
    browser.finish(&app, page(&app, StatusCode::OK, "sessions.html", ctx))
}

#[derive(Deserialize)]
struct EndForm {
    csrf: Option<String>,
    session: Option<String>,
}

async fn end_one(
    State(app): State<AppState>,
    browser: Browser,
    Form(f): Form<EndForm>,
) -> Response {
    let session = match super::checked_session(&app, &browser, f.csrf.as_deref()) {
        Ok(s) => s,
        Err(r) => return *r,
    };
    let target = f.session.unwrap_or_default();
    // Only the person's own sessions: the id must be in their list.
    let own = crate::authn::list_sessions(&app, &session.person_id)
        .await
        .map(|l| l.iter().any(|s| s.id == target))
        .unwrap_or(false);
    if own {
        if let Err(e) =
            crate::oidc::sign_out(&app, &session.person_id, Some(&target), &browser.origin()).await
        {
            return failed(&app, e.description);
        }
    }
    if target == session.id {
        let mut resp = Redirect::to("/login?signed_out=1").into_response();
        super::cookies::clear_session(&app, &mut resp);
        return resp;
    }
    Redirect::to("/portal/sessions").into_response()
}

#[derive(Deserialize)]
struct CsrfOnly {
    csrf: Option<String>,
}

async fn end_all(
    State(app): State<AppState>,
    browser: Browser,
    Form(f): Form<CsrfOnly>,
) -> Response {
    let session = match super::checked_session(&app, &browser, f.csrf.as_deref()) {
        Ok(s) => s,
        Err(r) => return *r,
    };
    if let Err(e) = crate::oidc::sign_out(&app, &session.person_id, None, &browser.origin()).await {
        return failed(&app, e.description);
    }
    let mut resp = Redirect::to("/login?signed_out=1").into_response();
    super::cookies::clear_session(&app, &mut resp);
    resp
}

async fn apps(State(app): State<AppState>, browser: Browser) -> Response {
    let Some(session) = signed_in(&browser) else {
        return to_login();
    };
    let consents = match crate::oidc::list_consents(&app, &session.person_id).await {
        Ok(c) => c,
        Err(e) => return failed(&app, e.description),
    };
    let name = display_name(&app, &session.person_id).await;
    let tiles: Vec<minijinja::Value> = app
        .federation()
        .saml_apps()
        .tiles()
        .into_iter()
        .map(|(id, name)| minijinja::context! { id => id, name => name })
        .collect();
    let ctx = minijinja::context! { lang => "en", nav => "apps", person_name => name, csrf => browser.csrf(&app), consents => minijinja::Value::from_serialize(&consents), tiles => tiles };
    browser.finish(&app, page(&app, StatusCode::OK, "apps.html", ctx))
}

#[derive(Deserialize)]
struct RevokeForm {
    csrf: Option<String>,
    client_id: String,
}

async fn revoke_app(
    State(app): State<AppState>,
    browser: Browser,
    Form(f): Form<RevokeForm>,
) -> Response {
    let session = match super::checked_session(&app, &browser, f.csrf.as_deref()) {
        Ok(s) => s,
        Err(r) => return *r,
    };
    if let Err(e) =
        crate::oidc::revoke_consent(&app, &session.person_id, &f.client_id, &browser.origin()).await
    {
        return failed(&app, e.description);
    }
    Redirect::to("/portal/apps").into_response()
}

/// The password form; `request` is a pending sign-in to continue once it is changed.
struct PasswordPage<'a> {
    person_id: &'a str,
    request: Option<&'a str>,
    alert: Option<String>,
    notice: Option<String>,
    status: StatusCode,
}

async fn render_password(app: &AppState, browser: &Browser, p: PasswordPage<'_>) -> Response {
    let name = display_name(app, p.person_id).await;
    let ctx = minijinja::context! {
        lang => "en", nav => "password", person_name => name, csrf => browser.csrf(app),
        min_length => app.config().auth.min_password_length, alert => p.alert, notice => p.notice,
        request => p.request,
    };
    let status = p.status;
    browser.finish(app, page(app, status, "password.html", ctx))
}

#[derive(Deserialize)]
struct PasswordQuery {
    required: Option<String>,
    request: Option<String>,
}

async fn password_page(
    State(app): State<AppState>,
    browser: Browser,
    axum::extract::Query(q): axum::extract::Query<PasswordQuery>,
) -> Response {
    let Some(session) = signed_in(&browser) else {
        return to_login();
    };
    let notice = q.required.map(|_| app.web().message("password.required"));
    let page = PasswordPage {
        person_id: &session.person_id,
        request: q.request.as_deref(),
        alert: None,
        notice,
        status: StatusCode::OK,
    };
    render_password(&app, &browser, page).await
}

#[derive(Deserialize)]
struct PasswordForm {
    csrf: Option<String>,
    request: Option<String>,
    #[serde(default)]
    current: String,
    #[serde(default)]
    new: String,
    #[serde(default)]
    confirm: String,
}

async fn password_submit(
    State(app): State<AppState>,
    browser: Browser,
    Form(f): Form<PasswordForm>,
) -> Response {
    let Some(session) = signed_in(&browser) else {
        return to_login();
    };
    let pid = session.person_id.clone();
    let request = f.request.as_deref().filter(|r| !r.is_empty());
    let answer = |alert: Option<String>, notice: Option<String>, status: StatusCode| PasswordPage {
        person_id: &pid,
        request,
        alert,
        notice,
        status,
    };
    if !browser.csrf_ok(&app, f.csrf.as_deref()) {
        let page = answer(
            Some(app.web().message("csrf.failed")),
            None,
            StatusCode::FORBIDDEN,
        );
        return render_password(&app, &browser, page).await;
    }
    if f.new != f.confirm {
        let page = answer(
            Some(app.web().message("password.mismatch")),
            None,
            StatusCode::BAD_REQUEST,
        );
        return render_password(&app, &browser, page).await;
    }
    let person = match crate::directory::get_person(app.store(), &pid).await {
        Ok(p) => p,
        Err(e) => return failed(&app, e),
    };
    use crate::authn::AuthnError as E;
    match crate::authn::change_password(&app, &person, &f.current, &f.new, &browser.origin()).await
    {
        // A sign-in was waiting for this: continue it.
        Ok(()) if request.is_some() => {
            super::authorize::continue_request(&app, &browser, request.unwrap_or_default()).await
        }
        Ok(()) => {
            let page = answer(
                None,
                Some(app.web().message("password.changed")),
                StatusCode::OK,
            );
            render_password(&app, &browser, page).await
        }
        Err(e @ (E::InvalidCredentials | E::PasswordPolicy(_) | E::Locked { .. } | E::Busy)) => {
            let msg = if matches!(e, E::InvalidCredentials) {
                "The current password is not correct.".to_string()
            } else {
                format!("{e}.")
            };
            render_password(
                &app,
                &browser,
                answer(Some(msg), None, StatusCode::BAD_REQUEST),
            )
            .await
        }
        Err(e) => failed(&app, e),
    }
}
