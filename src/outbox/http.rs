//! `GET /api/v1/events`: the outbox, as CloudEvents, for admins and auditors (the
//! audit log's permission: the events say what changed, as the audit log does).

use axum::extract::State;
use axum::routing::get;
use axum::{Json, Router};
use serde::Deserialize;

use super::{CloudEvent, EventFilter};
use crate::api::{page_limit, seq_cursor, ApiQuery, Page};
use crate::authz::{Action, Actor, Object};
use crate::error::AppError;
use crate::AppState;

pub fn router() -> Router<AppState> {
    Router::new().route("/api/v1/events", get(list_handler))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct EventsQuery {
    #[serde(rename = "type")]
    kind: Option<String>,
    subject: Option<String>,
    cursor: Option<String>,
    limit: Option<i64>,
}

async fn list_handler(
    State(app): State<AppState>,
    actor: Actor,
    query: Result<ApiQuery<EventsQuery>, AppError>,
) -> Result<Json<Page<CloudEvent>>, AppError> {
    actor
        .require(&app, Object::Audit, Action::Read, None)
        .await?;
    let ApiQuery(q) = query?;
    let after_seq = seq_cursor(q.cursor.as_deref())?;
    let limit = page_limit(q.limit)?;
    let filter = EventFilter {
        kind: q.kind,
        subject: q.subject,
        after_seq,
        limit,
    };
    let events = super::list_events(app.store(), &filter).await?;
    let next_cursor = (events.len() as i64 == limit)
        .then(|| events.last().map(|e| e.seq.to_string()))
        .flatten();
    let items = events
        .iter()
        .map(|e| e.to_cloudevent(app.issuer()))
        .collect();
    Ok(Json(Page { items, next_cursor }))
}
