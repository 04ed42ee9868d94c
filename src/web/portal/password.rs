//! Changing one's password; also where a person whose password an administrator set
//! chooses their own before any app lets them in (`?required=1`, with the pending
//! request to continue afterwards).

use axum::extract::{Form, Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::get;
use axum::Router;
use serde::Deserialize;

use super::signed_in;
use crate::authn::AuthnError;
use crate::web::person::display_name;
use crate::web::{page, Browser, PageError};
use crate::AppState;

pub(super) fn router() -> Router<AppState> {
    Router::new().route("/portal/password", get(password_page).post(password_submit))
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
    Query(q): Query<PasswordQuery>,
) -> Result<Response, PageError> {
    let session = signed_in(&browser)?;
    let notice = q.required.map(|_| app.web().message("password.required"));
    let page = PasswordPage {
        person_id: &session.person_id,
        request: q.request.as_deref(),
        alert: None,
        notice,
        status: StatusCode::OK,
    };
    Ok(render_password(&app, &browser, page).await)
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
) -> Result<Response, PageError> {
    let session = signed_in(&browser)?;
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
        return Ok(render_password(&app, &browser, page).await);
    }
    if f.new != f.confirm {
        let page = answer(
            Some(app.web().message("password.mismatch")),
            None,
            StatusCode::BAD_REQUEST,
        );
        return Ok(render_password(&app, &browser, page).await);
    }
    let person = crate::directory::get_person(app.store(), &pid)
        .await
        .map_err(PageError::page_unavailable)?;
    use AuthnError as E;
    match crate::authn::change_password(&app, &person, &f.current, &f.new, &browser.origin()).await
    {
        // A sign-in was waiting for this: continue it.
        Ok(()) if request.is_some() => {
            let handle = request.unwrap_or_default();
            crate::web::signin::continue_request(&app, &browser, handle).await
        }
        Ok(()) => {
            let page = answer(
                None,
                Some(app.web().message("password.changed")),
                StatusCode::OK,
            );
            Ok(render_password(&app, &browser, page).await)
        }
        Err(e @ (E::InvalidCredentials | E::PasswordPolicy(_) | E::Locked { .. } | E::Busy)) => {
            let msg = if matches!(e, E::InvalidCredentials) {
                "The current password is not correct.".to_string()
            } else {
                format!("{e}.")
            };
            let page = answer(Some(msg), None, StatusCode::BAD_REQUEST);
            Ok(render_password(&app, &browser, page).await)
        }
        Err(e) => Err(PageError::page_unavailable(e)),
    }
}
