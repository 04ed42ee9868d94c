//! The store's side of an upstream sign-in in flight: AuthnRequests waiting for an
//! answer, assertion ids already used, and verified sign-ins waiting for their browser.

use super::FederationError;
use crate::store::{self, Store, Tx};

pub struct PendingRequest {
    pub id: String,
    pub browser_digest: String,
    pub auth_request: Option<String>,
    /// When the hub asked for ForceAuthn, the time it asked.
    pub forced_at: Option<i64>,
}

pub struct NewRequest<'a> {
    pub id: &'a str,
    pub idp_id: &'a str,
    pub browser_digest: &'a str,
    pub auth_request: Option<&'a str>,
    pub force_authn: bool,
    pub now_ms: i64,
    pub expires_at_ms: i64,
}

pub async fn save_request(store: &Store, r: &NewRequest<'_>) -> Result<(), FederationError> {
    sqlx::query(
        "INSERT INTO saml_requests (id, idp_id, browser_digest, auth_request, created_at, expires_at, forced_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7)",
    )
    .bind(r.id)
    .bind(r.idp_id)
    .bind(r.browser_digest)
    .bind(r.auth_request)
    .bind(r.now_ms)
    .bind(r.expires_at_ms)
    .bind(r.force_authn.then_some(r.now_ms))
    .execute(store.writer())
    .await?;
    Ok(())
}

/// A live request of this IdP (not consumed: that happens with the replay check).
pub async fn find_request(
    store: &Store,
    idp_id: &str,
    id: &str,
    now_ms: i64,
) -> Result<Option<PendingRequest>, FederationError> {
    let row = sqlx::query(
        "SELECT id, browser_digest, auth_request, forced_at FROM saml_requests WHERE id = $1 AND idp_id = $2 AND expires_at > $3",
    )
    .bind(id)
    .bind(idp_id)
    .bind(now_ms)
    .fetch_optional(store.writer())
    .await?;
    row.map(|r| {
        Ok(PendingRequest {
            id: store::get(&r, "id")?,
            browser_digest: store::get(&r, "browser_digest")?,
            auth_request: store::get(&r, "auth_request")?,
            forced_at: store::get(&r, "forced_at")?,
        })
    })
    .transpose()
}

/// How long an answered request is remembered (and a timed-out one kept, see
/// `oidc::sweep`): within it, a late or repeated answer is refused for what it is.
pub const REMEMBER_ANSWERED_MS: i64 = 86_400_000;

/// The replay cache's key for an answered request. A colon cannot occur in an
/// assertion's ID (xs:ID is an NCName), so it never meets a real assertion id.
fn answered_key(request_id: &str) -> String {
    format!("request:{request_id}")
}

/// Why no live request of ours matches a Response's InResponseTo.
#[derive(Debug, PartialEq, Eq)]
pub enum NotLive {
    /// We sent it, and the answer came after `request_ttl_seconds`.
    TimedOut,
    /// It was answered already: this is a replay.
    Answered,
    /// We never sent it to this IdP (or it is older than `REMEMBER_ANSWERED_MS`).
    Unknown,
}

/// Called when `find_request` found nothing: tells a late answer, a replay and an
/// answer to a request we did not send apart (each has its own refusal code).
pub async fn why_not_live(
    store: &Store,
    idp_id: &str,
    id: &str,
    now_ms: i64,
) -> Result<NotLive, FederationError> {
    let timed_out = sqlx::query(
        "SELECT id FROM saml_requests WHERE id = $1 AND idp_id = $2 AND expires_at <= $3",
    )
    .bind(id)
    .bind(idp_id)
    .bind(now_ms)
    .fetch_optional(store.writer())
    .await?;
    if timed_out.is_some() {
        return Ok(NotLive::TimedOut);
    }
    let answered = sqlx::query(
        "SELECT assertion_id FROM saml_assertions_seen WHERE idp_id = $1 AND assertion_id = $2",
    )
    .bind(idp_id)
    .bind(answered_key(id))
    .fetch_optional(store.writer())
    .await?;
    Ok(if answered.is_some() {
        NotLive::Answered
    } else {
        NotLive::Unknown
    })
}

/// Uses up the request (if any) and records the assertion id, in the caller's
/// transaction: a second delivery of the same Response, even at the same moment on
/// another replica, finds either the request gone or the id taken.
pub async fn consume(
    tx: &mut Tx,
    idp_id: &str,
    request_id: Option<&str>,
    assertion_id: &str,
    remember_until_ms: i64,
    now_ms: i64,
) -> Result<(), FederationError> {
    if let Some(id) = request_id {
        let gone = sqlx::query(
            "DELETE FROM saml_requests WHERE id = $1 AND idp_id = $2 AND expires_at > $3",
        )
        .bind(id)
        .bind(idp_id)
        .bind(now_ms)
        .execute(&mut **tx)
        .await?
        .rows_affected();
        if gone != 1 {
            return Err(FederationError::rejected(
                "replayed",
                "the request was already answered",
            ));
        }
        sqlx::query(
            "INSERT INTO saml_assertions_seen (idp_id, assertion_id, expires_at) VALUES ($1, $2, $3)
             ON CONFLICT (idp_id, assertion_id) DO NOTHING",
        )
        .bind(idp_id)
        .bind(answered_key(id))
        .bind(now_ms + REMEMBER_ANSWERED_MS)
        .execute(&mut **tx)
        .await?;
    }
    let fresh = sqlx::query(
        "INSERT INTO saml_assertions_seen (idp_id, assertion_id, expires_at) VALUES ($1, $2, $3)
         ON CONFLICT (idp_id, assertion_id) DO NOTHING",
    )
    .bind(idp_id)
    .bind(assertion_id)
    .bind(remember_until_ms)
    .execute(&mut **tx)
    .await?
    .rows_affected();
    if fresh != 1 {
        return Err(FederationError::rejected(
            "replayed",
            "the assertion was already used",
        ));
    }
    Ok(())
}

pub struct Handoff<'a> {
    pub handle_digest: &'a str,
    pub idp_id: &'a str,
    pub person_id: &'a str,
    pub browser_digest: Option<&'a str>,
    pub amr: &'a [String],
    pub acr: &'a str,
    pub auth_request: Option<&'a str>,
    pub expires_at_ms: i64,
}

pub async fn save_handoff(store: &Store, h: &Handoff<'_>) -> Result<(), FederationError> {
    sqlx::query(
        "INSERT INTO federated_signins (handle_digest, idp_id, person_id, browser_digest, amr, acr, auth_request, expires_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
    )
    .bind(h.handle_digest)
    .bind(h.idp_id)
    .bind(h.person_id)
    .bind(h.browser_digest)
    .bind(serde_json::to_string(h.amr).unwrap_or_else(|_| "[]".into()))
    .bind(h.acr)
    .bind(h.auth_request)
    .bind(h.expires_at_ms)
    .execute(store.writer())
    .await?;
    Ok(())
}

/// A verified sign-in, taken (single use).
pub struct TakenHandoff {
    pub idp_id: String,
    pub person_id: String,
    pub browser_digest: Option<String>,
    pub amr: Vec<String>,
    pub acr: String,
    pub auth_request: Option<String>,
}

pub async fn take_handoff(
    store: &Store,
    handle_digest: &str,
    now_ms: i64,
) -> Result<Option<TakenHandoff>, FederationError> {
    let row = sqlx::query(
        "DELETE FROM federated_signins WHERE handle_digest = $1 AND expires_at > $2
         RETURNING idp_id, person_id, browser_digest, amr, acr, auth_request",
    )
    .bind(handle_digest)
    .bind(now_ms)
    .fetch_optional(store.writer())
    .await?;
    let Some(r) = row else { return Ok(None) };
    let amr: String = store::get(&r, "amr")?;
    Ok(Some(TakenHandoff {
        idp_id: store::get(&r, "idp_id")?,
        person_id: store::get(&r, "person_id")?,
        browser_digest: store::get(&r, "browser_digest")?,
        amr: serde_json::from_str(&amr)
            .map_err(|e| store::StoreError::Corrupt(format!("federated_signins.amr: {e}")))?,
        acr: store::get(&r, "acr")?,
        auth_request: store::get(&r, "auth_request")?,
    }))
}
