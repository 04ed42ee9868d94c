//! The mail outbox's SQL: queuing inside the change's transaction, claiming with a
//! lease, recording the outcome, listing.

use serde_json::Value;

use super::{MailError, Notice};
use crate::clock::Timestamp;
use crate::store::{self, Row, Store, StoreError, Tx};

/// A ledger row, as the worker and the admin listing read it.
#[derive(Debug, Clone, PartialEq)]
pub struct QueuedMail {
    pub seq: i64,
    pub id: String,
    pub notice_key: String,
    pub template: String,
    pub recipient: String,
    pub data: Value,
    /// `pending`, `sent` or `failed` (permanently).
    pub state: String,
    pub attempts: i64,
    pub next_attempt_at: Timestamp,
    /// The last failure: the SMTP server's reply, or why it could not be reached.
    pub last_error: Option<String>,
    pub created_at: Timestamp,
    pub sent_at: Option<Timestamp>,
}

const COLUMNS: &str = "seq, id, notice_key, template, recipient, data, state, attempts, \
                       next_attempt_at, last_error, created_at, sent_at";

fn read(r: &Row) -> Result<QueuedMail, StoreError> {
    let data: String = store::get(r, "data")?;
    Ok(QueuedMail {
        seq: store::get(r, "seq")?,
        id: store::get(r, "id")?,
        notice_key: store::get(r, "notice_key")?,
        template: store::get(r, "template")?,
        recipient: store::get(r, "recipient")?,
        data: serde_json::from_str(&data).unwrap_or(Value::Null),
        state: store::get(r, "state")?,
        attempts: store::get(r, "attempts")?,
        next_attempt_at: store::get(r, "next_attempt_at")?,
        last_error: store::get(r, "last_error")?,
        created_at: store::get(r, "created_at")?,
        sent_at: store::get::<Option<i64>>(r, "sent_at")?.map(Timestamp::from_millis),
    })
}

/// Queues `notice` inside `tx`, the transaction of the change it tells about: it
/// exists exactly when the change does. The same `key` again queues nothing
/// (`ON CONFLICT DO NOTHING`); the answer says whether this call queued it.
pub async fn enqueue(tx: &mut Tx, now: Timestamp, notice: Notice) -> Result<bool, StoreError> {
    let seq: i64 =
        sqlx::query_scalar("UPDATE mail_outbox_head SET seq = seq + 1 WHERE id = 1 RETURNING seq")
            .fetch_one(&mut **tx)
            .await?;
    let done = sqlx::query(
        "INSERT INTO mail_outbox (seq, id, notice_key, template, recipient, data, state, attempts, \
           next_attempt_at, last_error, lease_owner, lease_until, created_at, sent_at) \
         VALUES ($1, $2, $3, $4, $5, $6, 'pending', 0, $7, NULL, NULL, NULL, $7, NULL) \
         ON CONFLICT (notice_key) DO NOTHING",
    )
    .bind(seq)
    .bind(store::new_id())
    .bind(&notice.key)
    .bind(notice.template.name())
    .bind(&notice.recipient)
    .bind(notice.data.to_string())
    .bind(now)
    .execute(&mut **tx)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// Claims up to `limit` due rows for `owner` until `until`. Each row is taken by one
/// conditional UPDATE (only while unleased or its lease ran out), so two workers —
/// on one replica or on several over PostgreSQL — never both hold a row.
pub(super) async fn claim_due(
    store: &Store,
    owner: &str,
    now: Timestamp,
    until: Timestamp,
    limit: i64,
) -> Result<Vec<QueuedMail>, StoreError> {
    let rows = sqlx::query(&format!(
        "SELECT {COLUMNS} FROM mail_outbox WHERE state = 'pending' AND next_attempt_at <= $1 \
           AND (lease_until IS NULL OR lease_until < $1) \
         ORDER BY next_attempt_at, seq LIMIT $2"
    ))
    .bind(now)
    .bind(limit)
    .fetch_all(store.reader())
    .await?;
    let mut claimed = Vec::new();
    for r in &rows {
        let row = read(r)?;
        let taken = sqlx::query(
            "UPDATE mail_outbox SET lease_owner = $1, lease_until = $2 \
             WHERE id = $3 AND state = 'pending' AND next_attempt_at <= $4 \
               AND (lease_until IS NULL OR lease_until < $4)",
        )
        .bind(owner)
        .bind(until)
        .bind(&row.id)
        .bind(now)
        .execute(store.writer())
        .await?;
        if taken.rows_affected() == 1 {
            claimed.push(row);
        }
    }
    Ok(claimed)
}

/// The outcome of one attempt, recorded only while `owner` still holds the lease.
/// Returns whether it was recorded (false: the lease ran out and another worker
/// took the row).
pub(super) async fn record_outcome(
    store: &Store,
    id: &str,
    owner: &str,
    outcome: Outcome<'_>,
) -> Result<bool, StoreError> {
    // `next_attempt_at` of a failed row is the time it failed (the digest reads it).
    // Every branch takes the same four parameters ($4 is the error, empty when sent).
    let (sql, at, state_error) = match outcome {
        Outcome::Sent { at } => (
            "UPDATE mail_outbox SET state = 'sent', sent_at = $1, attempts = attempts + 1, \
               lease_owner = NULL, lease_until = NULL \
             WHERE id = $2 AND lease_owner = $3 AND $4 = ''",
            at,
            "",
        ),
        Outcome::Retry { at, error } => (
            "UPDATE mail_outbox SET next_attempt_at = $1, last_error = $4, attempts = attempts + 1, \
               lease_owner = NULL, lease_until = NULL WHERE id = $2 AND lease_owner = $3",
            at,
            error,
        ),
        Outcome::Failed { at, error } => (
            "UPDATE mail_outbox SET state = 'failed', next_attempt_at = $1, last_error = $4, \
               attempts = attempts + 1, lease_owner = NULL, lease_until = NULL \
             WHERE id = $2 AND lease_owner = $3",
            at,
            error,
        ),
    };
    let done = sqlx::query(sql)
        .bind(at)
        .bind(id)
        .bind(owner)
        .bind(state_error)
        .execute(store.writer())
        .await?;
    Ok(done.rows_affected() == 1)
}

/// Hands a claimed row back untried (a worker stopping): due again at once.
pub(super) async fn release(store: &Store, id: &str, owner: &str) -> Result<(), StoreError> {
    sqlx::query(
        "UPDATE mail_outbox SET lease_owner = NULL, lease_until = NULL \
         WHERE id = $1 AND lease_owner = $2",
    )
    .bind(id)
    .bind(owner)
    .execute(store.writer())
    .await?;
    Ok(())
}

/// What became of one attempt.
#[derive(Debug, Clone, Copy)]
pub(super) enum Outcome<'a> {
    Sent { at: Timestamp },
    Retry { at: Timestamp, error: &'a str },
    Failed { at: Timestamp, error: &'a str },
}

/// Which rows to list.
#[derive(Debug, Clone, Default)]
pub struct MailFilter {
    pub state: Option<String>,
    /// Rows after this position (the cursor).
    pub after_seq: Option<i64>,
    pub limit: i64,
}

pub const STATES: [&str; 3] = ["pending", "sent", "failed"];

/// Rows in the order they were queued.
pub async fn list(store: &Store, f: &MailFilter) -> Result<Vec<QueuedMail>, MailError> {
    if let Some(s) = &f.state {
        if !STATES.contains(&s.as_str()) {
            return Err(MailError::BadFilter(format!(
                "state must be one of {}",
                STATES.join(", ")
            )));
        }
    }
    let rows = sqlx::query(&format!(
        "SELECT {COLUMNS} FROM mail_outbox WHERE ($1 = '' OR state = $1) AND seq > $2 \
         ORDER BY seq LIMIT $3"
    ))
    .bind(f.state.clone().unwrap_or_default())
    .bind(f.after_seq.unwrap_or(0))
    .bind(f.limit)
    .fetch_all(store.reader())
    .await?;
    Ok(rows.iter().map(read).collect::<Result<_, _>>()?)
}

/// Rows that ended `failed` at or after `since` (a failed row's `next_attempt_at` is
/// the time of its last attempt).
pub async fn failed_since(store: &Store, since: Timestamp) -> Result<Vec<QueuedMail>, StoreError> {
    let rows = sqlx::query(&format!(
        "SELECT {COLUMNS} FROM mail_outbox WHERE state = 'failed' \
           AND next_attempt_at >= $1 ORDER BY seq"
    ))
    .bind(since)
    .fetch_all(store.reader())
    .await?;
    rows.iter().map(read).collect()
}

/// How many rows wait to be sent, and since when the oldest waits.
pub async fn pending_stats(store: &Store) -> Result<(i64, Option<Timestamp>), StoreError> {
    let row = sqlx::query(
        "SELECT COUNT(*) AS n, MIN(created_at) AS oldest FROM mail_outbox WHERE state = 'pending'",
    )
    .fetch_one(store.reader())
    .await?;
    let n: i64 = store::get(&row, "n")?;
    let oldest: Option<i64> = store::get(&row, "oldest")?;
    Ok((n, oldest.map(Timestamp::from_millis)))
}
