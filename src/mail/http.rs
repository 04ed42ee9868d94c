//! `GET /api/v1/mail`: the mail outbox for admins and auditors, so failed deliveries
//! are seen. A row shows its notice, recipient, state and the server's last reply,
//! never what the message said.

use axum::extract::State;
use axum::routing::get;
use axum::{Json, Router};
use serde::{Deserialize, Serialize};

use super::{MailFilter, QueuedMail};
use crate::api::{page_limit, seq_cursor, ApiQuery, Page};
use crate::authz::{Action, Actor, Object};
use crate::error::AppError;
use crate::AppState;

pub fn router() -> Router<AppState> {
    Router::new().route("/api/v1/mail", get(list_handler))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct MailQuery {
    state: Option<String>,
    cursor: Option<String>,
    limit: Option<i64>,
}

/// One row as the API shows it.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct MailView {
    pub id: String,
    pub notice_key: String,
    pub template: String,
    pub recipient: String,
    pub state: String,
    pub attempts: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_attempt_at: Option<String>,
    pub last_error: Option<String>,
    pub created_at: String,
    pub sent_at: Option<String>,
}

impl From<&QueuedMail> for MailView {
    fn from(m: &QueuedMail) -> Self {
        MailView {
            id: m.id.clone(),
            notice_key: m.notice_key.clone(),
            template: m.template.clone(),
            recipient: m.recipient.clone(),
            state: m.state.clone(),
            attempts: m.attempts,
            next_attempt_at: (m.state == "pending").then(|| m.next_attempt_at.to_rfc3339()),
            last_error: m.last_error.clone(),
            created_at: m.created_at.to_rfc3339(),
            sent_at: m.sent_at.map(|t| t.to_rfc3339()),
        }
    }
}

async fn list_handler(
    State(app): State<AppState>,
    actor: Actor,
    query: Result<ApiQuery<MailQuery>, AppError>,
) -> Result<Json<Page<MailView>>, AppError> {
    actor
        .require(&app, Object::Audit, Action::Read, None)
        .await?;
    let ApiQuery(q) = query?;
    let after_seq = seq_cursor(q.cursor.as_deref())?;
    let limit = page_limit(q.limit)?;
    let filter = MailFilter {
        state: q.state,
        after_seq,
        limit,
    };
    let rows = super::list(app.store(), &filter).await?;
    let next_cursor = (rows.len() as i64 == limit)
        .then(|| rows.last().map(|m| m.seq.to_string()))
        .flatten();
    let items = rows.iter().map(MailView::from).collect();
    Ok(Json(Page { items, next_cursor }))
}
