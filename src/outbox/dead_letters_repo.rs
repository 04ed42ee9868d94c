//! The SQL of dead letters: events a subscriber gave up on, kept with their own copy
//! of the event so an admin can requeue them after retention, and the failures the
//! admins' daily digest lists.

use super::OutboxError;
use crate::clock::Timestamp;
use crate::store::{self, Row, Store, StoreError, Tx};

/// Whether the subscriber has requeued dead letters waiting.
pub(super) async fn has_requeued(store: &Store, subscriber_id: &str) -> Result<bool, OutboxError> {
    let n: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM outbox_dead_letters WHERE subscriber_id = $1 AND state = 'requeued'",
    )
    .bind(subscriber_id)
    .fetch_one(store.reader())
    .await?;
    Ok(n > 0)
}

/// Requeued dead letters that failed again all their tries are dead again.
pub(super) async fn return_requeued(tx: &mut Tx, subscriber_id: &str) -> Result<(), StoreError> {
    sqlx::query(
        "UPDATE outbox_dead_letters SET state = 'dead' WHERE subscriber_id = $1 AND state = 'requeued'",
    )
    .bind(subscriber_id)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// A dead letter, copied with the event so a replay works after retention.
pub(super) struct DeadLetter<'a> {
    pub subscriber_id: &'a str,
    pub seq: i64,
    pub event_id: &'a str,
    pub kind: &'a str,
    pub subject: &'a str,
    pub event: &'a str,
    pub attempts: i64,
    pub last_error: &'a str,
}

pub(super) async fn insert_dead_letter(
    tx: &mut Tx,
    now: Timestamp,
    d: &DeadLetter<'_>,
) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO outbox_dead_letters (subscriber_id, seq, event_id, type, subject, event, \
         attempts, last_error, state, dead_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, 'dead', $9) \
         ON CONFLICT (subscriber_id, seq) DO UPDATE SET state = 'dead', attempts = excluded.attempts, \
         last_error = excluded.last_error, dead_at = excluded.dead_at",
    )
    .bind(d.subscriber_id)
    .bind(d.seq)
    .bind(d.event_id)
    .bind(d.kind)
    .bind(d.subject)
    .bind(d.event)
    .bind(d.attempts)
    .bind(d.last_error)
    .bind(now)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// A stored dead letter.
#[derive(Debug, Clone, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct StoredDeadLetter {
    pub sequence: i64,
    pub event_id: String,
    #[serde(rename = "type")]
    pub kind: String,
    pub subject: String,
    pub attempts: i64,
    pub last_error: String,
    pub state: String,
    pub dead: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub requeued: Option<String>,
    #[serde(skip)]
    pub event: String,
}

fn dead_letter(r: &Row) -> Result<StoredDeadLetter, StoreError> {
    let dead_at: Timestamp = store::get(r, "dead_at")?;
    let requeued_at: Option<Timestamp> = store::get(r, "requeued_at")?;
    Ok(StoredDeadLetter {
        sequence: store::get(r, "seq")?,
        event_id: store::get(r, "event_id")?,
        kind: store::get(r, "type")?,
        subject: store::get(r, "subject")?,
        attempts: store::get(r, "attempts")?,
        last_error: store::get(r, "last_error")?,
        state: store::get(r, "state")?,
        dead: dead_at.to_rfc3339(),
        requeued: requeued_at.map(|t| t.to_rfc3339()),
        event: store::get(r, "event")?,
    })
}

pub(super) async fn dead_letters(
    store: &Store,
    subscriber_id: &str,
    state: Option<&str>,
    after_seq: i64,
    limit: i64,
) -> Result<Vec<StoredDeadLetter>, OutboxError> {
    let rows = sqlx::query(
        "SELECT seq, event_id, type, subject, event, attempts, last_error, state, dead_at, requeued_at \
         FROM outbox_dead_letters WHERE subscriber_id = $1 AND ($2 = '' OR state = $2) AND seq > $3 \
         ORDER BY seq LIMIT $4",
    )
    .bind(subscriber_id)
    .bind(state.unwrap_or(""))
    .bind(after_seq)
    .bind(limit)
    .fetch_all(store.reader())
    .await?;
    Ok(rows.iter().map(dead_letter).collect::<Result<_, _>>()?)
}

pub(super) async fn count_dead_letters(
    store: &Store,
    subscriber_id: &str,
) -> Result<i64, OutboxError> {
    Ok(sqlx::query_scalar(
        "SELECT COUNT(*) FROM outbox_dead_letters WHERE subscriber_id = $1 AND state = 'dead'",
    )
    .bind(subscriber_id)
    .fetch_one(store.reader())
    .await?)
}

/// Marks dead letters for another try: the listed positions, or all when empty.
pub(super) async fn requeue(
    tx: &mut Tx,
    subscriber_id: &str,
    seqs: &[i64],
    now: Timestamp,
) -> Result<u64, StoreError> {
    let mut n = 0;
    if seqs.is_empty() {
        n += sqlx::query(
            "UPDATE outbox_dead_letters SET state = 'requeued', requeued_at = $2 \
             WHERE subscriber_id = $1 AND state = 'dead'",
        )
        .bind(subscriber_id)
        .bind(now)
        .execute(&mut **tx)
        .await?
        .rows_affected();
    }
    for seq in seqs {
        n += sqlx::query(
            "UPDATE outbox_dead_letters SET state = 'requeued', requeued_at = $3 \
             WHERE subscriber_id = $1 AND seq = $2 AND state = 'dead'",
        )
        .bind(subscriber_id)
        .bind(seq)
        .bind(now)
        .execute(&mut **tx)
        .await?
        .rows_affected();
    }
    Ok(n)
}

/// Requeued dead letters delivered again: gone.
pub(super) async fn delete_requeued(
    store: &Store,
    subscriber_id: &str,
    seqs: &[i64],
) -> Result<(), OutboxError> {
    let mut tx = store.begin().await?;
    for seq in seqs {
        sqlx::query(
            "DELETE FROM outbox_dead_letters WHERE subscriber_id = $1 AND seq = $2 AND state = 'requeued'",
        )
        .bind(subscriber_id)
        .bind(seq)
        .execute(&mut *tx)
        .await?;
    }
    tx.commit().await.map_err(StoreError::from)?;
    Ok(())
}

/// Dead letters since `since`, and subscribers disabled now, as lines for the
/// admins' daily digest (at most 200 dead letters).
pub async fn failures_since(store: &Store, since: Timestamp) -> Result<Vec<String>, OutboxError> {
    let rows = sqlx::query(
        "SELECT s.name, d.seq, d.type, d.last_error FROM outbox_dead_letters d \
         JOIN outbox_subscribers s ON s.id = d.subscriber_id \
         WHERE d.state = 'dead' AND d.dead_at >= $1 ORDER BY d.dead_at LIMIT 200",
    )
    .bind(since)
    .fetch_all(store.reader())
    .await?;
    let mut lines = Vec::new();
    for r in &rows {
        let name: String = store::get(r, "name")?;
        let seq: i64 = store::get(r, "seq")?;
        let kind: String = store::get(r, "type")?;
        let error: String = store::get(r, "last_error")?;
        lines.push(format!(
            "event {seq} ({kind}) to {name} is a dead letter: {error}"
        ));
    }
    let disabled = sqlx::query(
        "SELECT name, state_reason FROM outbox_subscribers WHERE state = 'disabled' ORDER BY name",
    )
    .fetch_all(store.reader())
    .await?;
    for r in &disabled {
        let name: String = store::get(r, "name")?;
        let reason: Option<String> = store::get(r, "state_reason")?;
        lines.push(format!(
            "subscriber {name} is disabled: {}",
            reason.unwrap_or_default()
        ));
    }
    Ok(lines)
}
