//! The storage of grants and what hangs off them: authorization codes, refresh-token
//! families and used JWT ids. Every statement on `grants`, `auth_codes`,
//! `refresh_tokens` and `used_jtis` outside the refresh paths' batched queries is
//! here; rows come back as typed structs, failures as `StoreError` (the caller
//! decides what a failure means to the client).

use serde::{Deserialize, Serialize};

use crate::store::{self, Store, StoreError, Tx};

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Grant {
    pub id: String,
    pub client_id: String,
    pub person_id: String,
    pub session_id: Option<String>,
    pub scopes: Vec<String>,
    pub auth_time_ms: i64,
    pub acr: String,
    pub amr: Vec<String>,
    pub dpop_jkt: Option<String>,
    /// `offline_access` was granted: the refresh tokens outlive the browser session.
    pub offline: bool,
    pub expires_at_ms: i64,
    pub revoked: bool,
    /// The `claims` request parameter of the authorization (OIDC Core §5.5).
    pub claims: Option<super::claims_request::ClaimsRequest>,
}

pub(super) const GRANT_COLUMNS: &str = "id, client_id, person_id, session_id, scopes, auth_time, acr, amr, dpop_jkt, offline, expires_at, revoked_at, claims";

fn corrupt(column: &str) -> impl Fn(serde_json::Error) -> StoreError + '_ {
    move |e| StoreError::Corrupt(format!("grants.{column}: {e}"))
}

pub(super) fn grant_from_row(r: &store::Row) -> Result<Grant, StoreError> {
    let list = |c: &str| -> Result<Vec<String>, StoreError> {
        let t: String = store::get(r, c)?;
        serde_json::from_str(&t).map_err(corrupt(c))
    };
    let g = |c: &str| -> Result<i64, StoreError> { store::get(r, c) };
    Ok(Grant {
        id: store::get(r, "id")?,
        client_id: store::get(r, "client_id")?,
        person_id: store::get(r, "person_id")?,
        session_id: store::get(r, "session_id")?,
        scopes: list("scopes")?,
        auth_time_ms: g("auth_time")?,
        acr: store::get(r, "acr")?,
        amr: list("amr")?,
        dpop_jkt: store::get(r, "dpop_jkt")?,
        offline: g("offline")? != 0,
        expires_at_ms: g("expires_at")?,
        revoked: store::get::<Option<i64>>(r, "revoked_at")?.is_some(),
        claims: store::get::<Option<String>>(r, "claims")?
            .map(|t| serde_json::from_str(&t).map_err(corrupt("claims")))
            .transpose()?,
    })
}

pub async fn insert_grant(tx: &mut Tx, g: &Grant, now: i64) -> Result<(), StoreError> {
    sqlx::query(&format!(
        "INSERT INTO grants ({GRANT_COLUMNS}, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, NULL, $12, $13)"
    ))
    .bind(&g.id)
    .bind(&g.client_id)
    .bind(&g.person_id)
    .bind(&g.session_id)
    .bind(serde_json::to_string(&g.scopes).unwrap_or_default())
    .bind(g.auth_time_ms)
    .bind(&g.acr)
    .bind(serde_json::to_string(&g.amr).unwrap_or_default())
    .bind(&g.dpop_jkt)
    .bind(i64::from(g.offline))
    .bind(g.expires_at_ms)
    .bind(
        g.claims
            .as_ref()
            .and_then(|c| serde_json::to_string(c).ok()),
    )
    .bind(now)
    .execute(&mut **tx)
    .await
    ?;
    Ok(())
}

pub async fn load_grant(tx: &mut Tx, id: &str) -> Result<Option<Grant>, StoreError> {
    let row = sqlx::query(&format!("SELECT {GRANT_COLUMNS} FROM grants WHERE id = $1"))
        .bind(id)
        .fetch_optional(&mut **tx)
        .await?;
    row.as_ref().map(grant_from_row).transpose()
}

/// The condition on `grants g` that it still stands at time `$1`: not revoked, not
/// expired, and its browser session alive unless it is offline.
pub const LIVE_GRANT: &str = "g.revoked_at IS NULL AND g.expires_at > $1 \
     AND (g.offline = 1 OR g.session_id IS NULL OR EXISTS (SELECT 1 FROM sessions s \
     WHERE s.id = g.session_id AND s.ended_at IS NULL AND s.expires_at > $1))";

/// Binds a grant's refresh tokens to a DPoP key (RFC 9449 §5: for public clients,
/// which have no other way to prove they hold a refresh token).
pub async fn bind_dpop(tx: &mut Tx, id: &str, jkt: &str) -> Result<(), StoreError> {
    sqlx::query("UPDATE grants SET dpop_jkt = $1 WHERE id = $2 AND dpop_jkt IS NULL")
        .bind(jkt)
        .bind(id)
        .execute(&mut **tx)
        .await?;
    Ok(())
}

pub async fn revoke_grant(
    tx: &mut Tx,
    id: &str,
    now: i64,
    reason: &str,
) -> Result<bool, StoreError> {
    let done = sqlx::query(
        "UPDATE grants SET revoked_at = $1, revoked_reason = $2 WHERE id = $3 AND revoked_at IS NULL",
    )
    .bind(now)
    .bind(reason)
    .bind(id)
    .execute(&mut **tx)
    .await
    ?;
    Ok(done.rows_affected() == 1)
}

/// Moves every grant of session `old` to session `new`.
pub async fn move_to_session(tx: &mut Tx, old: &str, new: &str) -> Result<(), StoreError> {
    sqlx::query("UPDATE grants SET session_id = $1 WHERE session_id = $2")
        .bind(new)
        .bind(old)
        .execute(&mut **tx)
        .await?;
    Ok(())
}

/// Grants tied to sessions that end (sign-out): all but offline ones are revoked.
/// Returns the clients that had grants in those sessions (for back-channel logout).
pub async fn revoke_session_grants(
    tx: &mut Tx,
    session_id: &str,
    now: i64,
) -> Result<Vec<String>, StoreError> {
    let clients: Vec<String> =
        sqlx::query_scalar("SELECT DISTINCT client_id FROM grants WHERE session_id = $1")
            .bind(session_id)
            .fetch_all(&mut **tx)
            .await?;
    sqlx::query("UPDATE grants SET revoked_at = $1, revoked_reason = 'logout' WHERE session_id = $2 AND offline = 0 AND revoked_at IS NULL")
        .bind(now)
        .bind(session_id)
        .execute(&mut **tx)
        .await
        ?;
    Ok(clients)
}

pub struct CodeRow {
    pub grant_id: String,
    pub client_id: String,
    pub redirect_uri: String,
    pub nonce: Option<String>,
    pub code_challenge: Option<String>,
    pub expires_at_ms: i64,
    pub used: bool,
}

pub async fn insert_code(
    tx: &mut Tx,
    digest: &str,
    c: &CodeRow,
    now: i64,
) -> Result<(), StoreError> {
    sqlx::query("INSERT INTO auth_codes (code_digest, grant_id, client_id, redirect_uri, nonce, code_challenge, created_at, expires_at, used_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, NULL)")
        .bind(digest)
        .bind(&c.grant_id)
        .bind(&c.client_id)
        .bind(&c.redirect_uri)
        .bind(&c.nonce)
        .bind(&c.code_challenge)
        .bind(now)
        .bind(c.expires_at_ms)
        .execute(&mut **tx)
        .await
        ?;
    Ok(())
}

/// Reads a code and marks it used in one step; `used` says it had been used before.
pub async fn take_code(tx: &mut Tx, digest: &str, now: i64) -> Result<Option<CodeRow>, StoreError> {
    let row = sqlx::query("SELECT grant_id, client_id, redirect_uri, nonce, code_challenge, expires_at, used_at FROM auth_codes WHERE code_digest = $1")
        .bind(digest)
        .fetch_optional(&mut **tx)
        .await
        ?;
    let Some(r) = row else { return Ok(None) };
    let mut code = CodeRow {
        grant_id: store::get(&r, "grant_id")?,
        client_id: store::get(&r, "client_id")?,
        redirect_uri: store::get(&r, "redirect_uri")?,
        nonce: store::get(&r, "nonce")?,
        code_challenge: store::get(&r, "code_challenge")?,
        expires_at_ms: store::get(&r, "expires_at")?,
        used: store::get::<Option<i64>>(&r, "used_at")?.is_some(),
    };
    if !code.used {
        // Conditional update: of two concurrent exchanges only one sees a row change.
        let done = sqlx::query(
            "UPDATE auth_codes SET used_at = $1 WHERE code_digest = $2 AND used_at IS NULL",
        )
        .bind(now)
        .bind(digest)
        .execute(&mut **tx)
        .await?;
        code.used = done.rows_affected() == 0;
    }
    Ok(Some(code))
}

pub async fn insert_refresh(
    tx: &mut Tx,
    digest: &str,
    grant_id: &str,
    now: i64,
    expires_at: i64,
) -> Result<(), StoreError> {
    sqlx::query("INSERT INTO refresh_tokens (token_digest, grant_id, created_at, expires_at, used_at) VALUES ($1, $2, $3, $4, NULL)")
        .bind(digest)
        .bind(grant_id)
        .bind(now)
        .bind(expires_at)
        .execute(&mut **tx)
        .await
        ?;
    Ok(())
}

pub struct RefreshRow {
    pub grant_id: String,
    pub expires_at_ms: i64,
    pub used: bool,
}

/// Reads a refresh token and, when `consume`, marks it used (rotation).
pub async fn take_refresh(
    tx: &mut Tx,
    digest: &str,
    now: i64,
    consume: bool,
) -> Result<Option<RefreshRow>, StoreError> {
    let row = sqlx::query(
        "SELECT grant_id, expires_at, used_at FROM refresh_tokens WHERE token_digest = $1",
    )
    .bind(digest)
    .fetch_optional(&mut **tx)
    .await?;
    let Some(r) = row else { return Ok(None) };
    let mut out = RefreshRow {
        grant_id: store::get(&r, "grant_id")?,
        expires_at_ms: store::get(&r, "expires_at")?,
        used: store::get::<Option<i64>>(&r, "used_at")?.is_some(),
    };
    if consume && !out.used {
        let done = sqlx::query(
            "UPDATE refresh_tokens SET used_at = $1 WHERE token_digest = $2 AND used_at IS NULL",
        )
        .bind(now)
        .bind(digest)
        .execute(&mut **tx)
        .await?;
        out.used = done.rows_affected() == 0;
    }
    Ok(Some(out))
}

/// Records a JWT id as used until it expires; false if it was already recorded
/// (a replayed client assertion or DPoP proof, or an access token revoked before).
pub async fn use_jti(store: &Store, jti: &str, expires_at_ms: i64) -> Result<bool, StoreError> {
    let mut tx = store.begin().await?;
    let seen: Option<i64> = sqlx::query_scalar("SELECT 1 FROM used_jtis WHERE jti = $1")
        .bind(jti)
        .fetch_optional(&mut *tx)
        .await?;
    if seen.is_some() {
        return Ok(false);
    }
    let inserted = sqlx::query("INSERT INTO used_jtis (jti, expires_at) VALUES ($1, $2)")
        .bind(jti)
        .bind(expires_at_ms)
        .execute(&mut *tx)
        .await;
    match inserted {
        Ok(_) => {}
        // A concurrent request recorded the same jti first: this one is the replay.
        Err(e) if store::unique_violation(&e) == Some("used_jtis.jti") => return Ok(false),
        Err(e) => return Err(e.into()),
    }
    tx.commit().await?;
    Ok(true)
}

/// Whether `jti` (a `revoked:` or `used:` key) is recorded.
pub async fn revoked_jti(store: &Store, jti: &str) -> Result<bool, StoreError> {
    let seen: Option<i64> = sqlx::query_scalar("SELECT 1 FROM used_jtis WHERE jti = $1")
        .bind(jti)
        .fetch_optional(store.reader())
        .await?;
    Ok(seen.is_some())
}
