//! The person's apps: the SAML apps' tiles (IdP-initiated sign-in), and the OpenID
//! Connect apps they agreed to share with (consent can be withdrawn).

use axum::extract::{Form, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::Router;
use serde::Deserialize;

use super::{checked_session, signed_in};
use crate::web::person::display_name;
use crate::web::{page, Browser, PageError};
use crate::AppState;

pub(super) fn router() -> Router<AppState> {
    Router::new()
        .route("/portal/apps", get(apps))
        .route("/portal/apps/revoke", post(revoke_app))
}

async fn apps(State(app): State<AppState>, browser: Browser) -> Result<Response, PageError> {
    let session = signed_in(&browser)?;
    let consents = crate::oidc::list_consents(&app, &session.person_id)
        .await
        .map_err(|e| PageError::page_unavailable(e.description))?;
    let name = display_name(&app, &session.person_id).await;
    let tiles: Vec<minijinja::Value> = app
        .federation()
        .saml_apps()
        .tiles()
        .into_iter()
        .map(|(id, name)| minijinja::context! { id => id, name => name })
        .collect();
    let ctx = minijinja::context! { lang => "en", nav => "apps", person_name => name, csrf => browser.csrf(&app), consents => minijinja::Value::from_serialize(&consents), tiles => tiles };
    Ok(browser.finish(&app, page(&app, StatusCode::OK, "apps.html", ctx)))
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
) -> Result<Response, PageError> {
    let session = checked_session(&app, &browser, f.csrf.as_deref())?;
    crate::oidc::revoke_consent(&app, &session.person_id, &f.client_id, &browser.origin())
        .await
        .map_err(|e| PageError::page_unavailable(e.description))?;
    Ok(Redirect::to("/portal/apps").into_response())
}
