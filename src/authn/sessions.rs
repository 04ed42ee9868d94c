//! Browser sessions, kept in the store so that any replica can serve any request.
//! The cookie holds a random token; the store holds only its keyed digest, so a
//! copy of the database does not let anyone take over a session.

use serde::Serialize;

use super::AuthnError;
use crate::audit::{self, Entry, Origin, Outcome};
use crate::clock::format_rfc3339;
use crate::store::{self, StoreError, Tx};
use crate::AppState;

/// The `acr` of a password sign-in (OIDC Core §2: a context class of our own).
pub const ACR_PASSWORD: &str = "urn:hms-ach:acr:password";

#[derive(Debug, Clone, Serialize)]
pub struct Session {
    /// Public id: the `sid` claim (OIDC Front/Back-Channel Logout §2.1).
    pub id: String,
    pub person_id: String,
    pub auth_time_ms: i64,
    pub amr: Vec<String>,
    pub acr: String,
    pub created_at_ms: i64,
    pub last_seen_at_ms: i64,
    pub expires_at_ms: i64,
    pub user_agent: Option<String>,
    pub source_ip: Option<String>,
}

impl Session {
    pub fn auth_time_secs(&self) -> i64 {
        self.auth_time_ms.div_euclid(1000)
    }
    pub fn started(&self) -> String {
        format_rfc3339(self.created_at_ms)
    }
    pub fn last_seen(&self) -> String {
        format_rfc3339(self.last_seen_at_ms)
    }
}

pub struct NewSession {
    pub person_id: String,
    pub amr: Vec<String>,
    pub acr: String,
    pub user_agent: Option<String>,
}

const COLUMNS: &str = "id, person_id, auth_time, amr, acr, created_at, last_seen_at, expires_at, user_agent, source_ip";

fn from_row(r: &store::Row) -> Result<Session, AuthnError> {
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

/// Starts a session after a successful sign-in; returns it and the cookie value.
pub async fn create_session(
    app: &AppState,
    new: NewSession,
    origin: &Origin,
) -> Result<(Session, String), AuthnError> {
    let now = app.clock().now_ms();
    let token = crate::crypto::random_token(32);
    let cfg = &app.config().auth;
    let session = Session {
        id: crate::store::new_id(),
        person_id: new.person_id,
        auth_time_ms: now,
        amr: new.amr,
        acr: new.acr,
        created_at_ms: now,
        last_seen_at_ms: now,
        expires_at_ms: now + cfg.session_ttl_seconds * 1000,
        user_agent: new.user_agent.map(|u| u.chars().take(200).collect()),
        source_ip: origin.meta.source_ip.clone(),
    };
    let mut tx = app.store().begin().await?;
    sqlx::query(&format!(
        "INSERT INTO sessions ({COLUMNS}, token_digest) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)"
    ))
    .bind(&session.id)
    .bind(&session.person_id)
    .bind(session.auth_time_ms)
    .bind(serde_json::to_string(&session.amr).unwrap_or_else(|_| "[]".into()))
    .bind(&session.acr)
    .bind(now)
    .bind(now)
    .bind(session.expires_at_ms)
    .bind(&session.user_agent)
    .bind(&session.source_ip)
    .bind(app.master_key().digest_secret(&token))
    .execute(&mut *tx)
    .await?;
    audit::record(
        &mut tx,
        app.audit_key(),
        now,
        origin,
        Entry {
            action: "auth.signin",
            outcome: Outcome::Success,
            target_kind: "person",
            target_id: &session.person_id,
            details: serde_json::json!({ "session": session.id, "amr": session.amr }),
        },
    )
    .await?;
    tx.commit().await.map_err(StoreError::from)?;
    Ok((session, token))
}

/// The live session a cookie value belongs to. Marks it used, at most once a minute
/// (the idle timeout needs no finer grain and sign-ins stay read-mostly).
pub async fn find_session(app: &AppState, token: &str) -> Result<Option<Session>, AuthnError> {
    if token.is_empty() || token.len() > 100 {
        return Ok(None);
    }
    let now = app.clock().now_ms();
    let row = sqlx::query(&format!(
        "SELECT {COLUMNS} FROM sessions WHERE token_digest = $1 AND ended_at IS NULL AND expires_at > $2"
    ))
    .bind(app.master_key().digest_secret(token))
    .bind(now)
    .fetch_optional(app.store().reader())
    .await?;
    let Some(session) = row.as_ref().map(from_row).transpose()? else {
        return Ok(None);
    };
    if now - session.last_seen_at_ms > app.config().auth.session_idle_seconds * 1000 {
        return Ok(None);
    }
    if now - session.last_seen_at_ms > 60_000 {
        sqlx::query("UPDATE sessions SET last_seen_at = $1 WHERE id = $2")
            .bind(now)
            .bind(&session.id)
            .execute(app.store().writer())
            .await?;
    }
    Ok(Some(session))
}

/// A person's live sessions, newest first.
pub async fn list_sessions(app: &AppState, person_id: &str) -> Result<Vec<Session>, AuthnError> {
    let now = app.clock().now_ms();
    let idle_since = now - app.config().auth.session_idle_seconds * 1000;
    let rows = sqlx::query(&format!(
        "SELECT {COLUMNS} FROM sessions WHERE person_id = $1 AND ended_at IS NULL AND expires_at > $2 AND last_seen_at > $3 ORDER BY created_at DESC, id"
    ))
    .bind(person_id)
    .bind(now)
    .bind(idle_since)
    .fetch_all(app.store().reader())
    .await?;
    rows.iter().map(from_row).collect()
}

/// Ends one session inside the caller's transaction; false if it had already ended.
pub async fn end_session(tx: &mut Tx, session_id: &str, now: i64) -> Result<bool, AuthnError> {
    let done = sqlx::query("UPDATE sessions SET ended_at = $1 WHERE id = $2 AND ended_at IS NULL")
        .bind(now)
        .bind(session_id)
        .execute(&mut **tx)
        .await?;
    Ok(done.rows_affected() == 1)
}

/// Ends every live session of a person inside the caller's transaction; returns their ids.
pub async fn end_all_sessions(
    tx: &mut Tx,
    person_id: &str,
    now: i64,
) -> Result<Vec<String>, AuthnError> {
    let ids: Vec<String> = sqlx::query_scalar(
        "SELECT id FROM sessions WHERE person_id = $1 AND ended_at IS NULL AND expires_at > $2",
    )
    .bind(person_id)
    .bind(now)
    .fetch_all(&mut **tx)
    .await?;
    for id in &ids {
        end_session(tx, id, now).await?;
    }
    Ok(ids)
}
