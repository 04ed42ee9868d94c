//! Browser sessions, kept in the store so that any replica can serve any request.
//! The cookie holds a random token; the store holds only its keyed digest, so a
//! copy of the database does not let anyone take over a session.

use serde::Serialize;

use super::sessions_repo;
use super::AuthnError;
use crate::audit::{self, Entry, Origin, Outcome};
use crate::clock::format_rfc3339;
use crate::store::{StoreError, Tx};
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
    let digest = app.master_key().digest_secret(&token);
    sessions_repo::insert_session(&mut tx, &session, &digest).await?;
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
    let digest = app.master_key().digest_secret(token);
    let Some(session) = sessions_repo::find_live_by_digest(app.store(), &digest, now).await? else {
        return Ok(None);
    };
    if now - session.last_seen_at_ms > app.config().auth.session_idle_seconds * 1000 {
        return Ok(None);
    }
    if now - session.last_seen_at_ms > 60_000 {
        sessions_repo::touch_session(app.store(), &session.id, now).await?;
    }
    Ok(Some(session))
}

/// A person's live sessions, newest first.
pub async fn list_sessions(app: &AppState, person_id: &str) -> Result<Vec<Session>, AuthnError> {
    let now = app.clock().now_ms();
    let idle_since = now - app.config().auth.session_idle_seconds * 1000;
    Ok(sessions_repo::list_live(app.store(), person_id, now, idle_since).await?)
}

/// Ends one session inside the caller's transaction; false if it had already ended.
pub async fn end_session(tx: &mut Tx, session_id: &str, now: i64) -> Result<bool, AuthnError> {
    Ok(sessions_repo::end_session(tx, session_id, now).await?)
}

/// Ends every live session of a person inside the caller's transaction; returns their ids.
pub async fn end_all_sessions(
    tx: &mut Tx,
    person_id: &str,
    now: i64,
) -> Result<Vec<String>, AuthnError> {
    let ids = sessions_repo::live_session_ids(tx, person_id, now).await?;
    for id in &ids {
        end_session(tx, id, now).await?;
    }
    Ok(ids)
}
