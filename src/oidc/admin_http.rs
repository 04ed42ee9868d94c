//! `/api/v1/clients`: client administration for hub admins (scope `clients.read` /
//! `clients.write`, casbin `clients` hub-wide).

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::Value;

use super::client_admin::{get_client, new_client_from_json, update_client};
use super::ClientView;
use crate::api::{if_match, with_etag, ApiJson, MergePatch};
use crate::authz::{Action, Actor, Object};
use crate::error::AppError;
use crate::AppState;

pub(super) fn router() -> Router<AppState> {
    Router::new()
        .route("/api/v1/clients", get(list).post(create))
        .route(
            "/api/v1/clients/{id}",
            get(show).patch(patch).delete(remove),
        )
        .route("/api/v1/clients/{id}/rotate-secret", post(rotate))
}

fn with_secret(view: &ClientView, secret: Option<String>) -> Value {
    let mut v = serde_json::to_value(view).unwrap_or_default();
    if let Some(s) = secret {
        v["client_secret"] = s.into();
    }
    v
}

async fn list(State(app): State<AppState>, actor: Actor) -> Result<Json<Value>, AppError> {
    actor
        .require(&app, Object::Clients, Action::Read, None)
        .await?;
    let items: Vec<ClientView> = super::list_clients(app.store())
        .await?
        .iter()
        .map(ClientView::from)
        .collect();
    Ok(Json(serde_json::json!({ "items": items })))
}

async fn show(
    State(app): State<AppState>,
    actor: Actor,
    Path(id): Path<String>,
) -> Result<Response, AppError> {
    actor
        .require(&app, Object::Clients, Action::Read, None)
        .await?;
    let view = ClientView::from(&get_client(app.store(), &id).await?);
    Ok(with_etag(&view, Json(&view).into_response()))
}

async fn create(
    State(app): State<AppState>,
    actor: Actor,
    ApiJson(doc): ApiJson<Value>,
) -> Result<(StatusCode, Json<Value>), AppError> {
    actor
        .require(&app, Object::Clients, Action::Write, None)
        .await?;
    let new = new_client_from_json(doc)?;
    // Giving a client a role is granting it: privileged roles need hub-wide roles.write.
    if new.role.is_some() {
        actor
            .require(&app, Object::Roles, Action::Write, None)
            .await?;
    }
    let (client, secret) = super::create_client(
        app.store(),
        app.master_key(),
        app.clock().now_ms(),
        &actor.origin,
        new,
    )
    .await?;
    Ok((
        StatusCode::CREATED,
        Json(with_secret(&ClientView::from(&client), secret)),
    ))
}

async fn patch(
    State(app): State<AppState>,
    actor: Actor,
    Path(id): Path<String>,
    headers: axum::http::HeaderMap,
    MergePatch(p): MergePatch,
) -> Result<Response, AppError> {
    actor
        .require(&app, Object::Clients, Action::Write, None)
        .await?;
    let expected = if_match(&headers);
    let client = update_client(
        app.store(),
        app.audit_key(),
        app.clock().now_ms(),
        &actor.origin,
        &id,
        p,
        expected.as_deref(),
    )
    .await?
    .map_err(|etag| AppError::PreconditionFailed { etag })?;
    app.clients().invalidate(&id);
    let view = ClientView::from(&client);
    Ok(with_etag(&view, Json(&view).into_response()))
}

async fn rotate(
    State(app): State<AppState>,
    actor: Actor,
    Path(id): Path<String>,
) -> Result<Json<Value>, AppError> {
    actor
        .require(&app, Object::Clients, Action::Write, None)
        .await?;
    let (client, secret) = super::rotate_secret(
        app.store(),
        app.master_key(),
        app.clock().now_ms(),
        &actor.origin,
        &id,
    )
    .await?;
    app.clients().invalidate(&id);
    Ok(Json(with_secret(&ClientView::from(&client), Some(secret))))
}

async fn remove(
    State(app): State<AppState>,
    actor: Actor,
    Path(id): Path<String>,
) -> Result<StatusCode, AppError> {
    actor
        .require(&app, Object::Clients, Action::Write, None)
        .await?;
    super::delete_client(
        app.store(),
        app.audit_key(),
        app.clock().now_ms(),
        &actor.origin,
        &id,
    )
    .await?;
    app.clients().invalidate(&id);
    Ok(StatusCode::NO_CONTENT)
}
