//! The storage of browser sessions: every statement on `sessions` outside the
//! sweep and the OIDC joins that ask whether a grant's session is alive. Rows come
//! back as `Session`, failures as `StoreError`. The store keeps only the keyed
//! digest of a session's cookie token, never the token.

use super::sessions::Session;
use crate::store::{self, Store, StoreError, Tx};

const COLUMNS: &str = "id, person_id, auth_time, amr, acr, created_at, last_seen_at, expires_at, user_agent, source_ip";

fn from_row(r: &store::Row) -> Result<Session, StoreError> {
    let amr: String = store::get(r, "amr")?;
    Ok(Session {
        id: store::get(r, "id")?,
        person_id: store::get(r, "person_id")?,
        auth_time_ms: store::get(r, "auth_time")?,
        amr: serde_json::from_str(&amr)
            .map_err(|e| StoreError::Corrupt(format!("sessions.amr: {e}")))?,
        acr: store::get(r, "acr")?,
        created_at_ms: store::get(r, "created_at")?,
        last_seen_at_ms: store::get(r, "last_seen_at")?,
        expires_at_ms: store::get(r, "expires_at")?,
        user_agent: store::get(r, "user_agent")?,
        source_ip: store::get(r, "source_ip")?,
    })
}

pub(super) async fn insert_session(
    tx: &mut Tx,
    s: &Session,
    token_digest: &str,
) -> Result<(), StoreError> {
    sqlx::query(&format!(
        "INSERT INTO sessions ({COLUMNS}, token_digest) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)"
    ))
    .bind(&s.id)
    .bind(&s.person_id)
    .bind(s.auth_time_ms)
    .bind(serde_json::to_string(&s.amr).unwrap_or_else(|_| "[]".into()))
    .bind(&s.acr)
    .bind(s.created_at_ms)
    .bind(s.last_seen_at_ms)
    .bind(s.expires_at_ms)
    .bind(&s.user_agent)
    .bind(&s.source_ip)
    .bind(token_digest)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// The session whose token has this digest, if it has neither ended nor expired at
/// `now` (the idle timeout is the caller's rule).
pub(super) async fn find_live_by_digest(
    store: &Store,
    token_digest: &str,
    now: i64,
) -> Result<Option<Session>, StoreError> {
    let row = sqlx::query(&format!(
        "SELECT {COLUMNS} FROM sessions WHERE token_digest = $1 AND ended_at IS NULL AND expires_at > $2"
    ))
    .bind(token_digest)
    .bind(now)
    .fetch_optional(store.reader())
    .await?;
    row.as_ref().map(from_row).transpose()
}

/// Marks a session used at `now`, outside any transaction: it is a hint for the
/// idle timeout, not a change anyone audits.
pub(super) async fn touch_session(store: &Store, id: &str, now: i64) -> Result<(), StoreError> {
    sqlx::query("UPDATE sessions SET last_seen_at = $1 WHERE id = $2")
        .bind(now)
        .bind(id)
        .execute(store.writer())
        .await?;
    Ok(())
}

/// A person's sessions that are live at `now` and were used after `idle_since`,
/// newest first.
pub(super) async fn list_live(
    store: &Store,
    person_id: &str,
    now: i64,
    idle_since: i64,
) -> Result<Vec<Session>, StoreError> {
    let rows = sqlx::query(&format!(
        "SELECT {COLUMNS} FROM sessions WHERE person_id = $1 AND ended_at IS NULL AND expires_at > $2 AND last_seen_at > $3 ORDER BY created_at DESC, id"
    ))
    .bind(person_id)
    .bind(now)
    .bind(idle_since)
    .fetch_all(store.reader())
    .await?;
    rows.iter().map(from_row).collect()
}

/// Ends one session; `false` if it had already ended.
pub(super) async fn end_session(tx: &mut Tx, id: &str, now: i64) -> Result<bool, StoreError> {
    let done = sqlx::query("UPDATE sessions SET ended_at = $1 WHERE id = $2 AND ended_at IS NULL")
        .bind(now)
        .bind(id)
        .execute(&mut **tx)
        .await?;
    Ok(done.rows_affected() == 1)
}

/// The ids of a person's sessions that are live at `now`.
pub(super) async fn live_session_ids(
    tx: &mut Tx,
    person_id: &str,
    now: i64,
) -> Result<Vec<String>, StoreError> {
    Ok(sqlx::query_scalar(
        "SELECT id FROM sessions WHERE person_id = $1 AND ended_at IS NULL AND expires_at > $2",
    )
    .bind(person_id)
    .bind(now)
    .fetch_all(&mut **tx)
    .await?)
}
