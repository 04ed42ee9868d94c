use axum::extract::State;
use axum::routing::get;
use axum::{Json, Router};
use serde::Deserialize;

use crate::api::{page_limit, seq_cursor, ApiQuery, Page};
use crate::authz::{Action, Actor, Object};
use crate::clock::Timestamp;
use crate::error::{AppError, FieldError};
use crate::AppState;

pub(super) fn router() -> Router<AppState> {
    Router::new().route("/api/v1/audit", get(list_handler))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct AuditQuery {
    actor: Option<String>,
    action: Option<String>,
    target_kind: Option<String>,
    target_id: Option<String>,
    outcome: Option<String>,
    since: Option<String>,
    until: Option<String>,
    cursor: Option<String>,
    limit: Option<i64>,
}

async fn list_handler(
    State(app): State<AppState>,
    actor: Actor,
    query: Result<ApiQuery<AuditQuery>, AppError>,
) -> Result<Json<Page<super::AuditEvent>>, AppError> {
    actor
        .require(&app, Object::Audit, Action::Read, None)
        .await?;
    let ApiQuery(q) = query?;
    let time = |field: &str, v: &Option<String>| -> Result<Option<Timestamp>, AppError> {
        v.as_deref()
            .map(|t| {
                Timestamp::parse_rfc3339(t).ok_or_else(|| {
                    AppError::Validation(vec![FieldError::new(
                        field,
                        "must be an RFC 3339 time, e.g. 2026-09-01T00:00:00Z",
                    )])
                })
            })
            .transpose()
    };
    let after_seq = seq_cursor(q.cursor.as_deref())?;
    let limit = page_limit(q.limit)?;
    let filter = super::AuditFilter {
        actor: q.actor,
        action: q.action,
        target_kind: q.target_kind,
        target_id: q.target_id,
        outcome: q.outcome,
        since: time("since", &q.since)?,
        until: time("until", &q.until)?,
        after_seq,
        limit,
    };
    let items = super::list_events(app.store(), &filter).await?;
    let next_cursor = (items.len() as i64 == limit)
        .then(|| items.last().map(|e| e.seq.to_string()))
        .flatten();
    Ok(Json(Page { items, next_cursor }))
}
