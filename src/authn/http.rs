//! `POST /api/v1/users/{id}/password`: an administrator sets a person's password
//! (break-glass, small programs without a district IdP).

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::post;
use axum::Router;
use serde::Deserialize;

use crate::api::ApiJson;
use crate::authz::{Action, Actor, Object};
use crate::error::AppError;
use crate::AppState;

pub(super) fn router() -> Router<AppState> {
    Router::new().route("/api/v1/users/{id}/password", post(reset))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct ResetRequest {
    password: String,
    #[serde(default = "yes")]
    must_change: bool,
}

fn yes() -> bool {
    true
}

async fn reset(
    State(app): State<AppState>,
    actor: Actor,
    Path(id): Path<String>,
    ApiJson(req): ApiJson<ResetRequest>,
) -> Result<StatusCode, AppError> {
    // Setting a password is taking over the account: hub-wide rights over people and
    // over roles (a registrar must not be able to become a hub admin this way).
    actor
        .require(&app, Object::Users, Action::Write, None)
        .await?;
    actor
        .require(&app, Object::Roles, Action::Write, None)
        .await?;
    let person = crate::directory::get_person(app.store(), &id).await?;
    super::set_password(&app, &person, &req.password, req.must_change, &actor.origin).await?;
    Ok(StatusCode::NO_CONTENT)
}
