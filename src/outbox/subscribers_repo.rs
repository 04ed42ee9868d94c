//! The SQL of dispatch: subscribers, their leases and cursors, and dead letters.
//!
//! Every write by a dispatcher is fenced by its lease (`… AND lease_owner = $me`):
//! a replica that lost the subscriber to another (its lease ran out while it was
//! stuck) changes nothing, so the cursor only ever moves past what was confirmed.

use super::subscriber::{SinkKind, Subscriber, SubscriberSource, SubscriberState, TypeFilter};
use super::{OutboxError, OutboxEvent};
use crate::clock::Timestamp;
use crate::store::{self, Row, Store, StoreError, Tx};

const COLUMNS: &str = "id, name, kind, source, url, secret_sealed, types, owner_email, state, \
     state_reason, cursor, attempts, next_attempt_at, last_error, last_success_at, \
     last_failure_at, dead_in_a_row, created_at, updated_at";

fn subscriber(r: &Row) -> Result<Subscriber, StoreError> {
    let kind: String = store::get(r, "kind")?;
    let source: String = store::get(r, "source")?;
    let state: String = store::get(r, "state")?;
    let types: String = store::get(r, "types")?;
    let corrupt = |what: &str| StoreError::Corrupt(format!("outbox_subscribers.{what}"));
    Ok(Subscriber {
        id: store::get(r, "id")?,
        name: store::get(r, "name")?,
        kind: SinkKind::parse(&kind).ok_or_else(|| corrupt("kind"))?,
        source: if source == "config" {
            SubscriberSource::Config
        } else {
            SubscriberSource::Api
        },
        url: store::get(r, "url")?,
        secret_sealed: store::get(r, "secret_sealed")?,
        types: TypeFilter::stored(serde_json::from_str(&types).map_err(|_| corrupt("types"))?),
        owner_email: store::get(r, "owner_email")?,
        state: SubscriberState::parse(&state).ok_or_else(|| corrupt("state"))?,
        state_reason: store::get(r, "state_reason")?,
        cursor: store::get(r, "cursor")?,
        attempts: store::get(r, "attempts")?,
        next_attempt_at: store::get(r, "next_attempt_at")?,
        last_error: store::get(r, "last_error")?,
        last_success_at: store::get(r, "last_success_at")?,
        last_failure_at: store::get(r, "last_failure_at")?,
        dead_in_a_row: store::get(r, "dead_in_a_row")?,
        created_at: store::get(r, "created_at")?,
        updated_at: store::get(r, "updated_at")?,
    })
}

/// A subscriber to create.
pub(super) struct NewSubscriber<'a> {
    pub name: &'a str,
    pub kind: SinkKind,
    pub source: SubscriberSource,
    pub url: Option<&'a str>,
    pub secret_sealed: Option<&'a str>,
    pub types: &'a TypeFilter,
    pub owner_email: Option<&'a str>,
    /// Start after this position (0: every event still kept).
    pub cursor: i64,
}

/// Inserts it unless one has the name; whether it was inserted.
pub(super) async fn insert(
    tx: &mut Tx,
    now: Timestamp,
    s: &NewSubscriber<'_>,
) -> Result<Option<String>, StoreError> {
    let id = store::new_id();
    let done = sqlx::query(
        "INSERT INTO outbox_subscribers (id, name, kind, source, url, secret_sealed, types, \
         owner_email, state, cursor, attempts, next_attempt_at, dead_in_a_row, created_at, updated_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, 'active', $9, 0, 0, 0, $10, $10) \
         ON CONFLICT (name) DO NOTHING",
    )
    .bind(&id)
    .bind(s.name)
    .bind(s.kind.as_str())
    .bind(s.source.as_str())
    .bind(s.url)
    .bind(s.secret_sealed)
    .bind(types_json(s.types))
    .bind(s.owner_email)
    .bind(s.cursor)
    .bind(now)
    .execute(&mut **tx)
    .await?;
    Ok((done.rows_affected() == 1).then_some(id))
}

fn types_json(t: &TypeFilter) -> String {
    serde_json::to_string(t.patterns()).unwrap_or_else(|_| "[]".into())
}

/// A configured subscriber's settings as the configuration now says.
pub(super) async fn refresh_configured(
    tx: &mut Tx,
    now: Timestamp,
    name: &str,
    url: Option<&str>,
    types: &TypeFilter,
    owner_email: Option<&str>,
) -> Result<(), StoreError> {
    sqlx::query(
        "UPDATE outbox_subscribers SET url = $2, types = $3, owner_email = $4, updated_at = $5 \
         WHERE name = $1 AND source = 'config' \
         AND (COALESCE(url, '') <> COALESCE($2, '') OR types <> $3 OR COALESCE(owner_email, '') <> COALESCE($4, ''))",
    )
    .bind(name)
    .bind(url)
    .bind(types_json(types))
    .bind(owner_email)
    .bind(now)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

pub(super) async fn list(store: &Store) -> Result<Vec<Subscriber>, OutboxError> {
    let rows = sqlx::query(&format!(
        "SELECT {COLUMNS} FROM outbox_subscribers ORDER BY name"
    ))
    .fetch_all(store.reader())
    .await?;
    Ok(rows.iter().map(subscriber).collect::<Result<_, _>>()?)
}

/// By id or by name.
pub(super) async fn find(store: &Store, key: &str) -> Result<Option<Subscriber>, OutboxError> {
    let row = sqlx::query(&format!(
        "SELECT {COLUMNS} FROM outbox_subscribers WHERE id = $1 OR name = $1"
    ))
    .bind(key)
    .fetch_optional(store.reader())
    .await?;
    Ok(row.as_ref().map(subscriber).transpose()?)
}

pub(super) async fn find_in(tx: &mut Tx, key: &str) -> Result<Option<Subscriber>, StoreError> {
    let row = sqlx::query(&format!(
        "SELECT {COLUMNS} FROM outbox_subscribers WHERE id = $1 OR name = $1"
    ))
    .bind(key)
    .fetch_optional(&mut **tx)
    .await?;
    row.as_ref().map(subscriber).transpose()
}

/// The last event position written.
pub(super) async fn head(store: &Store) -> Result<i64, OutboxError> {
    Ok(
        sqlx::query_scalar("SELECT seq FROM outbox_head WHERE id = 1")
            .fetch_one(store.reader())
            .await?,
    )
}

pub(super) async fn head_in(tx: &mut Tx) -> Result<i64, StoreError> {
    Ok(
        sqlx::query_scalar("SELECT seq FROM outbox_head WHERE id = 1")
            .fetch_one(&mut **tx)
            .await?,
    )
}

/// Takes (or renews) the lease on an active subscriber that is due; whether this
/// replica holds it now. One conditional `UPDATE`: atomic on both databases.
pub(super) async fn claim(
    store: &Store,
    id: &str,
    me: &str,
    now: Timestamp,
    until: Timestamp,
) -> Result<bool, OutboxError> {
    let done = sqlx::query(
        "UPDATE outbox_subscribers SET lease_owner = $2, lease_until = $4 \
         WHERE id = $1 AND state = 'active' AND next_attempt_at <= $3 \
         AND (lease_owner IS NULL OR lease_owner = $2 OR lease_until < $3)",
    )
    .bind(id)
    .bind(me)
    .bind(now)
    .bind(until)
    .execute(store.writer())
    .await?;
    Ok(done.rows_affected() == 1)
}

/// Gives up this replica's leases (at shutdown), so another takes over at once.
pub(super) async fn release_all(store: &Store, me: &str) -> Result<(), OutboxError> {
    sqlx::query(
        "UPDATE outbox_subscribers SET lease_owner = NULL, lease_until = NULL WHERE lease_owner = $1",
    )
    .bind(me)
    .execute(store.writer())
    .await?;
    Ok(())
}

/// Events after `cursor`, in order.
pub(super) async fn events_after(
    store: &Store,
    cursor: i64,
    limit: i64,
) -> Result<Vec<OutboxEvent>, OutboxError> {
    let rows = sqlx::query(
        "SELECT seq, id, type, subject, subject_seq, created_at, data FROM outbox_events \
         WHERE seq > $1 ORDER BY seq LIMIT $2",
    )
    .bind(cursor)
    .bind(limit)
    .fetch_all(store.reader())
    .await?;
    rows.iter().map(super::repo::event).collect()
}

/// When the first event after `cursor` was written (the backlog's age).
pub(super) async fn oldest_after(
    store: &Store,
    cursor: i64,
) -> Result<Option<Timestamp>, OutboxError> {
    Ok(sqlx::query_scalar(
        "SELECT created_at FROM outbox_events WHERE seq > $1 ORDER BY seq LIMIT 1",
    )
    .bind(cursor)
    .fetch_optional(store.reader())
    .await?)
}

/// The cursor moves past what the receiver confirmed (or what it does not
/// subscribe to); the retry state is cleared when `delivered`.
pub(super) async fn advance(
    store: &Store,
    id: &str,
    me: &str,
    cursor: i64,
    now: Timestamp,
    delivered: bool,
) -> Result<bool, OutboxError> {
    let done = if delivered {
        sqlx::query(
            "UPDATE outbox_subscribers SET cursor = $3, attempts = 0, next_attempt_at = 0, \
             last_success_at = $4, dead_in_a_row = 0 \
             WHERE id = $1 AND lease_owner = $2 AND cursor <= $3",
        )
        .bind(id)
        .bind(me)
        .bind(cursor)
        .bind(now)
        .execute(store.writer())
        .await?
    } else {
        sqlx::query(
            "UPDATE outbox_subscribers SET cursor = $3 \
             WHERE id = $1 AND lease_owner = $2 AND cursor <= $3",
        )
        .bind(id)
        .bind(me)
        .bind(cursor)
        .execute(store.writer())
        .await?
    };
    Ok(done.rows_affected() == 1)
}

/// A failed try: the cursor stays just before the event that failed, and the next
/// try waits.
#[allow(clippy::too_many_arguments)]
pub(super) async fn record_failure(
    tx: &mut Tx,
    id: &str,
    me: &str,
    cursor: i64,
    attempts: i64,
    next_attempt_at: Timestamp,
    now: Timestamp,
    error: &str,
) -> Result<bool, StoreError> {
    let done = sqlx::query(
        "UPDATE outbox_subscribers SET cursor = $3, attempts = $4, next_attempt_at = $5, \
         last_failure_at = $6, last_error = $7 \
         WHERE id = $1 AND lease_owner = $2 AND cursor <= $3",
    )
    .bind(id)
    .bind(me)
    .bind(cursor)
    .bind(attempts)
    .bind(next_attempt_at)
    .bind(now)
    .bind(error)
    .execute(&mut **tx)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// After a dead letter: the cursor moves past it and the count of dead letters in
/// a row grows; the subscriber is disabled when `disable` says so.
#[allow(clippy::too_many_arguments)]
pub(super) async fn pass_dead_letter(
    tx: &mut Tx,
    id: &str,
    me: &str,
    cursor: i64,
    now: Timestamp,
    error: &str,
    disable_reason: Option<&str>,
) -> Result<bool, StoreError> {
    let done = sqlx::query(
        "UPDATE outbox_subscribers SET cursor = $3, attempts = 0, next_attempt_at = 0, \
         last_failure_at = $4, last_error = $5, dead_in_a_row = dead_in_a_row + 1, \
         state = CASE WHEN $6 = '' THEN state ELSE 'disabled' END, \
         state_reason = CASE WHEN $6 = '' THEN state_reason ELSE $6 END, \
         updated_at = $4 \
         WHERE id = $1 AND lease_owner = $2 AND cursor <= $3",
    )
    .bind(id)
    .bind(me)
    .bind(cursor)
    .bind(now)
    .bind(error)
    .bind(disable_reason.unwrap_or(""))
    .execute(&mut **tx)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// Sets the state (and why), clearing the retry wait when it becomes active.
pub(super) async fn set_state(
    tx: &mut Tx,
    id: &str,
    state: SubscriberState,
    reason: Option<&str>,
    now: Timestamp,
) -> Result<(), StoreError> {
    sqlx::query(
        "UPDATE outbox_subscribers SET state = $2, state_reason = $3, updated_at = $4, \
         next_attempt_at = CASE WHEN $2 = 'active' THEN 0 ELSE next_attempt_at END, \
         attempts = CASE WHEN $2 = 'active' THEN 0 ELSE attempts END, \
         dead_in_a_row = CASE WHEN $2 = 'active' THEN 0 ELSE dead_in_a_row END \
         WHERE id = $1",
    )
    .bind(id)
    .bind(state.as_str())
    .bind(reason)
    .bind(now)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// Moves the cursor back (a replay) or forward (skip), clearing the retry state.
pub(super) async fn set_cursor(
    tx: &mut Tx,
    id: &str,
    cursor: i64,
    now: Timestamp,
) -> Result<(), StoreError> {
    sqlx::query(
        "UPDATE outbox_subscribers SET cursor = $2, attempts = 0, next_attempt_at = 0, updated_at = $3 \
         WHERE id = $1",
    )
    .bind(id)
    .bind(cursor)
    .bind(now)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

pub(super) async fn delete(tx: &mut Tx, id: &str) -> Result<(), StoreError> {
    sqlx::query("DELETE FROM outbox_dead_letters WHERE subscriber_id = $1")
        .bind(id)
        .execute(&mut **tx)
        .await?;
    sqlx::query("DELETE FROM outbox_subscribers WHERE id = $1")
        .bind(id)
        .execute(&mut **tx)
        .await?;
    Ok(())
}

/// Deletes events past retention that no active subscriber still needs; at most
/// `limit` at a time, so a large backlog never holds the write lock long.
pub(super) async fn sweep(
    store: &Store,
    before: Timestamp,
    limit: i64,
) -> Result<u64, OutboxError> {
    let done = sqlx::query(
        "DELETE FROM outbox_events WHERE seq IN (SELECT seq FROM outbox_events \
         WHERE created_at < $1 AND seq <= COALESCE((SELECT MIN(cursor) FROM outbox_subscribers \
         WHERE state = 'active'), (SELECT seq FROM outbox_head WHERE id = 1)) ORDER BY seq LIMIT $2)",
    )
    .bind(before)
    .bind(limit)
    .execute(store.writer())
    .await?;
    Ok(done.rows_affected())
}

pub(super) async fn set_secret(
    tx: &mut Tx,
    id: &str,
    sealed: &str,
    now: Timestamp,
) -> Result<(), StoreError> {
    sqlx::query("UPDATE outbox_subscribers SET secret_sealed = $2, updated_at = $3 WHERE id = $1")
        .bind(id)
        .bind(sealed)
        .bind(now)
        .execute(&mut **tx)
        .await?;
    Ok(())
}
