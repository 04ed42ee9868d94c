//! The person's live sessions: where they are signed in, and signing out one of them
//! or everywhere (which also ends the apps' grants of those sessions).

use axum::extract::{Form, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::Router;
use serde::Deserialize;

use super::{checked_session, signed_in};
use crate::web::forms::CsrfForm;
use crate::web::person::display_name;
use crate::web::{clear_session, page, Browser, PageError};
use crate::AppState;

pub(super) fn router() -> Router<AppState> {
    Router::new()
        .route("/portal/sessions", get(sessions))
        .route("/portal/sessions/end", post(end_one))
        .route("/portal/sessions/end-all", post(end_all))
}

async fn sessions(State(app): State<AppState>, browser: Browser) -> Result<Response, PageError> {
    let session = signed_in(&browser)?;
    let list = crate::authn::list_sessions(
        app.store(),
        app.clock().now_ms(),
        app.config().auth.session_idle_seconds * 1000,
        &session.person_id,
    )
    .await
    .map_err(PageError::page_unavailable)?;
    let rows: Vec<minijinja::Value> = list
        .iter()
        .map(|s| minijinja::context! { id => s.id, started => s.started(), last_seen => s.last_seen(), user_agent => s.user_agent, source_ip => s.source_ip, current => s.id == session.id })
        .collect();
    let name = display_name(&app, &session.person_id).await;
    let ctx = minijinja::context! { lang => "en", nav => "sessions", person_name => name, csrf => browser.csrf(&app), sessions => rows };
    Ok(browser.finish(&app, page(&app, StatusCode::OK, "sessions.html", ctx)))
}

#[derive(Deserialize)]
struct EndForm {
    csrf: Option<String>,
    session: Option<String>,
}

fn signed_out(app: &AppState) -> Response {
    let mut resp = Redirect::to("/login?signed_out=1").into_response();
    clear_session(app, &mut resp);
    resp
}

async fn end_one(
    State(app): State<AppState>,
    browser: Browser,
    Form(f): Form<EndForm>,
) -> Result<Response, PageError> {
    let session = checked_session(&app, &browser, f.csrf.as_deref())?;
    let target = f.session.unwrap_or_default();
    // Only the person's own sessions: the id must be in their list.
    let own = crate::authn::list_sessions(
        app.store(),
        app.clock().now_ms(),
        app.config().auth.session_idle_seconds * 1000,
        &session.person_id,
    )
    .await
    .map(|l| l.iter().any(|s| s.id == target))
    .unwrap_or(false);
    if own {
        crate::oidc::sign_out(&app, &session.person_id, Some(&target), &browser.origin())
            .await
            .map_err(|e| PageError::page_unavailable(e.description))?;
    }
    if target == session.id {
        return Ok(signed_out(&app));
    }
    Ok(Redirect::to("/portal/sessions").into_response())
}

async fn end_all(
    State(app): State<AppState>,
    browser: Browser,
    Form(f): Form<CsrfForm>,
) -> Result<Response, PageError> {
    let session = checked_session(&app, &browser, f.csrf.as_deref())?;
    crate::oidc::sign_out(&app, &session.person_id, None, &browser.origin())
        .await
        .map_err(|e| PageError::page_unavailable(e.description))?;
    Ok(signed_out(&app))
}
