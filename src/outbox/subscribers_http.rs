//! `/api/v1/subscribers`: who receives the events and how they are doing. Reading
//! needs what the event log needs (`audit` read); changing needs `clients` write
//! (a subscriber is an integration, like an app).

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::Value;

use super::{NewWebhook, Requeued, StoredDeadLetter, SubscriberState, SubscriberView};
use crate::api::{page_limit, seq_cursor, ApiJson, ApiQuery, Page};
use crate::authz::{Action, Actor, Object};
use crate::error::AppError;
use crate::AppState;

pub(super) fn router() -> Router<AppState> {
    Router::new()
        .route("/api/v1/subscribers", get(list).post(create))
        .route("/api/v1/subscribers/{id}", get(show).delete(remove))
        .route("/api/v1/subscribers/{id}/pause", post(pause))
        .route("/api/v1/subscribers/{id}/resume", post(resume))
        .route("/api/v1/subscribers/{id}/replay", post(replay))
        .route("/api/v1/subscribers/{id}/rotate-secret", post(rotate))
        .route("/api/v1/subscribers/{id}/dead-letters", get(dead_letters))
        .route(
            "/api/v1/subscribers/{id}/dead-letters/requeue",
            post(requeue),
        )
}

async fn read(app: &AppState, actor: &Actor) -> Result<(), AppError> {
    Ok(actor
        .require(app, Object::Audit, Action::Read, None)
        .await?)
}

async fn write(app: &AppState, actor: &Actor) -> Result<(), AppError> {
    Ok(actor
        .require(app, Object::Clients, Action::Write, None)
        .await?)
}

async fn list(State(app): State<AppState>, actor: Actor) -> Result<Json<Value>, AppError> {
    read(&app, &actor).await?;
    let items = super::list_subscribers(&app).await?;
    Ok(Json(serde_json::json!({ "items": items })))
}

async fn show(
    State(app): State<AppState>,
    actor: Actor,
    Path(id): Path<String>,
) -> Result<Json<SubscriberView>, AppError> {
    read(&app, &actor).await?;
    Ok(Json(super::get_subscriber(&app, &id).await?))
}

fn with_secret(view: &SubscriberView, secret: String) -> Value {
    let mut v = serde_json::to_value(view).unwrap_or_default();
    v["secret"] = secret.into();
    v
}

async fn create(
    State(app): State<AppState>,
    actor: Actor,
    ApiJson(new): ApiJson<NewWebhook>,
) -> Result<(StatusCode, Json<Value>), AppError> {
    write(&app, &actor).await?;
    let (view, secret) = super::create_webhook(&app, &actor.origin, new).await?;
    Ok((StatusCode::CREATED, Json(with_secret(&view, secret))))
}

async fn rotate(
    State(app): State<AppState>,
    actor: Actor,
    Path(id): Path<String>,
) -> Result<Json<Value>, AppError> {
    write(&app, &actor).await?;
    let (view, secret) = super::rotate_webhook_secret(&app, &actor.origin, &id).await?;
    Ok(Json(with_secret(&view, secret)))
}

async fn remove(
    State(app): State<AppState>,
    actor: Actor,
    Path(id): Path<String>,
) -> Result<StatusCode, AppError> {
    write(&app, &actor).await?;
    super::delete_subscriber(&app, &actor.origin, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn pause(
    State(app): State<AppState>,
    actor: Actor,
    Path(id): Path<String>,
) -> Result<Json<SubscriberView>, AppError> {
    write(&app, &actor).await?;
    Ok(Json(
        super::set_state(&app, &actor.origin, &id, SubscriberState::Paused).await?,
    ))
}

async fn resume(
    State(app): State<AppState>,
    actor: Actor,
    Path(id): Path<String>,
) -> Result<Json<SubscriberView>, AppError> {
    write(&app, &actor).await?;
    Ok(Json(
        super::set_state(&app, &actor.origin, &id, SubscriberState::Active).await?,
    ))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct ReplayBody {
    from_sequence: i64,
}

async fn replay(
    State(app): State<AppState>,
    actor: Actor,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<ReplayBody>,
) -> Result<Json<SubscriberView>, AppError> {
    write(&app, &actor).await?;
    Ok(Json(
        super::replay(&app, &actor.origin, &id, body.from_sequence).await?,
    ))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct DeadLetterQuery {
    state: Option<String>,
    cursor: Option<String>,
    limit: Option<i64>,
}

async fn dead_letters(
    State(app): State<AppState>,
    actor: Actor,
    Path(id): Path<String>,
    query: Result<ApiQuery<DeadLetterQuery>, AppError>,
) -> Result<Json<Page<StoredDeadLetter>>, AppError> {
    read(&app, &actor).await?;
    let ApiQuery(q) = query?;
    let after = seq_cursor(q.cursor.as_deref())?.unwrap_or(0);
    let limit = page_limit(q.limit)?;
    let items = super::dead_letters(&app, &id, q.state.as_deref(), after, limit).await?;
    let next_cursor = (items.len() as i64 == limit)
        .then(|| items.last().map(|d| d.sequence.to_string()))
        .flatten();
    Ok(Json(Page { items, next_cursor }))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct RequeueBody {
    /// Positions to requeue; absent or empty: every dead letter.
    #[serde(default)]
    sequences: Vec<i64>,
}

async fn requeue(
    State(app): State<AppState>,
    actor: Actor,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<RequeueBody>,
) -> Result<Json<Requeued>, AppError> {
    write(&app, &actor).await?;
    Ok(Json(
        super::requeue(&app, &actor.origin, &id, &body.sequences).await?,
    ))
}
