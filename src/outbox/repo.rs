//! The outbox's SQL: appending inside the caller's transaction, and listing.

use super::{NewEvent, OutboxError, OutboxEvent};
use crate::clock::Timestamp;
use crate::store::{self, Store, StoreError, Tx};

/// Appends `event` inside `tx`, the transaction of the change it reports, so the
/// event exists exactly when the change does. The head row's `UPDATE … RETURNING` and
/// the subject's upsert take their row locks (PostgreSQL) or the write lock (SQLite)
/// first, so concurrent writers get distinct, gapless numbers in commit order.
pub async fn append(tx: &mut Tx, now: Timestamp, event: NewEvent) -> Result<i64, StoreError> {
    let seq: i64 =
        sqlx::query_scalar("UPDATE outbox_head SET seq = seq + 1 WHERE id = 1 RETURNING seq")
            .fetch_one(&mut **tx)
            .await?;
    let subject_seq: i64 = sqlx::query_scalar(
        "INSERT INTO outbox_subjects (subject, seq) VALUES ($1, 1) \
         ON CONFLICT (subject) DO UPDATE SET seq = outbox_subjects.seq + 1 RETURNING seq",
    )
    .bind(&event.subject)
    .fetch_one(&mut **tx)
    .await?;
    sqlx::query(
        "INSERT INTO outbox_events (seq, id, type, subject, subject_seq, created_at, data) \
         VALUES ($1, $2, $3, $4, $5, $6, $7)",
    )
    .bind(seq)
    .bind(store::new_id())
    .bind(event.kind.as_str())
    .bind(&event.subject)
    .bind(subject_seq)
    .bind(now)
    .bind(event.data.to_string())
    .execute(&mut **tx)
    .await?;
    Ok(seq)
}

/// Which events to list.
#[derive(Debug, Default, Clone)]
pub struct EventFilter {
    /// A CloudEvents `type`, exactly.
    pub kind: Option<String>,
    /// A subject, exactly (`people/{id}`).
    pub subject: Option<String>,
    /// Events after this position (the cursor).
    pub after_seq: Option<i64>,
    pub limit: i64,
}

/// Events in the order they were committed.
pub async fn list_events(store: &Store, f: &EventFilter) -> Result<Vec<OutboxEvent>, OutboxError> {
    if let Some(k) = &f.kind {
        if super::EventType::parse(k).is_none() {
            let known: Vec<&str> = super::EventType::ALL.iter().map(|t| t.as_str()).collect();
            return Err(OutboxError::BadFilter(format!(
                "type must be one of {}",
                known.join(", ")
            )));
        }
    }
    let rows = sqlx::query(
        "SELECT seq, id, type, subject, subject_seq, created_at, data FROM outbox_events \
         WHERE ($1 = '' OR type = $1) AND ($2 = '' OR subject = $2) AND seq > $3 \
         ORDER BY seq LIMIT $4",
    )
    .bind(f.kind.clone().unwrap_or_default())
    .bind(f.subject.clone().unwrap_or_default())
    .bind(f.after_seq.unwrap_or(0))
    .bind(f.limit)
    .fetch_all(store.reader())
    .await?;
    rows.iter().map(event).collect()
}

/// An `outbox_events` row.
pub(super) fn event(r: &store::Row) -> Result<OutboxEvent, OutboxError> {
    let data: String = store::get(r, "data")?;
    Ok(OutboxEvent {
        seq: store::get(r, "seq")?,
        id: store::get(r, "id")?,
        kind: store::get(r, "type")?,
        subject: store::get(r, "subject")?,
        subject_seq: store::get(r, "subject_seq")?,
        created_at: store::get(r, "created_at")?,
        data: serde_json::from_str(&data).unwrap_or(serde_json::Value::String(data)),
    })
}
