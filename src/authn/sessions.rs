//! Browser sessions, kept in the store so that any replica can serve any request.
//! The cookie holds a random token; the store holds only its keyed digest, so a
//! copy of the database does not let anyone take over a session.

use serde::Serialize;

use super::sessions_repo;
use super::AuthnError;
use crate::audit::{self, Entry, Origin, Outcome};
use crate::clock::format_rfc3339;
use crate::crypto::MasterKey;
use crate::store::{Store, StoreError, Tx};
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
/// The sign-in pages call this form; the work is `open_session`'s, which takes only what it uses.
pub async fn create_session(
    app: &AppState,
    new: NewSession,
    origin: &Origin,
) -> Result<(Session, String), AuthnError> {
    let ttl_ms = app.config().auth.session_ttl_seconds * 1000;
    open_session(
        app.store(),
        app.master_key(),
        app.clock().now_ms(),
        ttl_ms,
        new,
        origin,
    )
    .await
}

/// Starts a session at `now` that lasts `ttl_ms`, audited in the same transaction;
/// returns it and the cookie value (the store keeps only its digest).
pub async fn open_session(
    store: &Store,
    master: &MasterKey,
    now: i64,
    ttl_ms: i64,
    new: NewSession,
    origin: &Origin,
) -> Result<(Session, String), AuthnError> {
    let token = crate::crypto::random_token(32);
    let session = Session {
        id: crate::store::new_id(),
        person_id: new.person_id,
        auth_time_ms: now,
        amr: new.amr,
        acr: new.acr,
        created_at_ms: now,
        last_seen_at_ms: now,
        expires_at_ms: now + ttl_ms,
        user_agent: new.user_agent.map(|u| u.chars().take(200).collect()),
        source_ip: origin.meta.source_ip.clone(),
    };
    let mut tx = store.begin().await?;
    sessions_repo::insert_session(&mut tx, &session, &master.digest_secret(&token)).await?;
    audit::record(
        &mut tx,
        master.audit_key(),
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

/// The live session a cookie value belongs to at `now`, unless unused for
/// `idle_ms`. Marks it used, at most once a minute (the idle timeout needs no finer
/// grain and sign-ins stay read-mostly).
pub async fn find_session(
    store: &Store,
    master: &MasterKey,
    now: i64,
    idle_ms: i64,
    token: &str,
) -> Result<Option<Session>, AuthnError> {
    if token.is_empty() || token.len() > 100 {
        return Ok(None);
    }
    let digest = master.digest_secret(token);
    let Some(session) = sessions_repo::find_live_by_digest(store, &digest, now).await? else {
        return Ok(None);
    };
    if now - session.last_seen_at_ms > idle_ms {
        return Ok(None);
    }
    if now - session.last_seen_at_ms > 60_000 {
        sessions_repo::touch_session(store, &session.id, now).await?;
    }
    Ok(Some(session))
}

/// A person's live sessions at `now` (used within `idle_ms`), newest first.
pub async fn list_sessions(
    store: &Store,
    now: i64,
    idle_ms: i64,
    person_id: &str,
) -> Result<Vec<Session>, AuthnError> {
    Ok(sessions_repo::list_live(store, person_id, now, now - idle_ms).await?)
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
