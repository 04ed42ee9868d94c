use serde::Serialize;

use super::AuditError;
use crate::clock::{format_rfc3339, Timestamp};
use crate::store::{self, Store};

#[derive(Debug, Default, Clone)]
pub struct AuditFilter {
    pub actor: Option<String>,
    pub action: Option<String>,
    pub target_kind: Option<String>,
    pub target_id: Option<String>,
    pub outcome: Option<String>,
    pub since: Option<Timestamp>,
    pub until: Option<Timestamp>,
    /// Events after this sequence number (the cursor).
    pub after_seq: Option<i64>,
    pub limit: i64,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AuditEvent {
    pub seq: i64,
    pub id: String,
    pub at: String,
    pub actor_kind: String,
    pub actor_id: String,
    pub action: String,
    pub outcome: String,
    pub target_kind: String,
    pub target_id: String,
    pub request_id: Option<String>,
    pub source_ip: Option<String>,
    pub details: serde_json::Value,
    pub hash: String,
}

/// Events in sequence order matching every given filter.
pub async fn list_events(store: &Store, f: &AuditFilter) -> Result<Vec<AuditEvent>, AuditError> {
    if let Some(o) = &f.outcome {
        if o != "success" && o != "denied" {
            return Err(AuditError::BadFilter(
                "outcome must be success or denied".into(),
            ));
        }
    }
    // Fixed SQL with "parameter is null or column matches" keeps one statement for
    // every combination of filters (and one prepared plan).
    let rows = sqlx::query(
        "SELECT seq, id, at, actor_kind, actor_id, action, outcome, target_kind, target_id, \
         request_id, source_ip, details, hash FROM audit_events \
         WHERE ($1 = '' OR actor_id = $1) AND ($2 = '' OR action = $2) \
         AND ($3 = '' OR target_kind = $3) AND ($4 = '' OR target_id = $4) \
         AND ($5 = '' OR outcome = $5) AND at >= $6 AND at <= $7 AND seq > $8 \
         ORDER BY seq LIMIT $9",
    )
    .bind(f.actor.clone().unwrap_or_default())
    .bind(f.action.clone().unwrap_or_default())
    .bind(f.target_kind.clone().unwrap_or_default())
    .bind(f.target_id.clone().unwrap_or_default())
    .bind(f.outcome.clone().unwrap_or_default())
    .bind(f.since.unwrap_or(Timestamp::from_millis(i64::MIN)))
    .bind(f.until.unwrap_or(Timestamp::from_millis(i64::MAX)))
    .bind(f.after_seq.unwrap_or(0))
    .bind(f.limit)
    .fetch_all(store.reader())
    .await?;
    rows.iter()
        .map(|r| {
            let details: String = store::get(r, "details")?;
            Ok(AuditEvent {
                seq: store::get(r, "seq")?,
                id: store::get(r, "id")?,
                at: format_rfc3339(store::get(r, "at")?),
                actor_kind: store::get(r, "actor_kind")?,
                actor_id: store::get(r, "actor_id")?,
                action: store::get(r, "action")?,
                outcome: store::get(r, "outcome")?,
                target_kind: store::get(r, "target_kind")?,
                target_id: store::get(r, "target_id")?,
                request_id: store::get(r, "request_id")?,
                source_ip: store::get(r, "source_ip")?,
                details: serde_json::from_str(&details)
                    .unwrap_or(serde_json::Value::String(details)),
                hash: store::get(r, "hash")?,
            })
        })
        .collect()
}
