//! The `refresh_token` grant (RFC 6749 §6) with rotation and reuse detection
//! (RFC 9700 §4.14.2).
//!
//! The common case reads the token, its grant and its session in one statement on
//! the read pool, signs the new tokens, and hands only the write to the
//! [`RefreshWriter`](super::refresh_writer::RefreshWriter), which commits rotations
//! in groups. Anything unusual (unknown, spent, expired token, or a race lost at
//! commit time) takes the slow path in one write transaction, which says why and
//! revokes the family on reuse.

use std::sync::OnceLock;

use super::client_auth::Form;
use super::grants_repo::{self as grants, Grant};
use super::refresh_writer::{Rotation, Successor};
use super::token::{parse_scope, refresh_ttl_seconds, respond, TokenResponse};
use super::{Client, OidcError};
use crate::authn::mfa::{self, Assurance};
use crate::store;
use crate::AppState;

/// A refresh token as read in one statement, with what decides whether it is usable.
pub struct RefreshState {
    pub grant: Grant,
    /// The grant's person, own fields only (as `directory::get_person_core`).
    pub person: crate::directory::Person,
    pub used: bool,
    pub expires_at_ms: i64,
    /// The grant's browser session has not ended or expired.
    pub session_live: bool,
    /// The person holds a privileged role now (the MFA policy is checked again).
    pub privileged: bool,
}

impl RefreshState {
    /// Usable now: unspent, unexpired, its grant standing (RFC 6749 §6).
    pub fn usable(&self, now: i64) -> bool {
        !self.used
            && self.expires_at_ms > now
            && !self.grant.revoked
            && self.grant.expires_at_ms > now
            && (self.grant.offline || self.grant.session_id.is_none() || self.session_live)
    }

    /// The MFA policy holds at every use, not only at sign-in: a role made privileged,
    /// or an app made `mfa_required`, after a sign-in without a second factor stops
    /// that sign-in's refresh tokens until the person signs in again with one.
    pub fn meets_mfa_policy(&self, app: &AppState, client: &Client) -> bool {
        let mut needed = if self.privileged {
            mfa::privileged_role_level(app)
        } else {
            Assurance::Single
        };
        if client.settings.mfa_required {
            needed = needed.max(Assurance::Mfa);
        }
        Assurance::of_amr(&self.grant.amr) >= needed
    }
}

fn read_sql() -> &'static str {
    static SQL: OnceLock<String> = OnceLock::new();
    SQL.get_or_init(|| {
        let grant_columns = grants::GRANT_COLUMNS
            .split(", ")
            .map(|c| format!("g.{c}"))
            .collect::<Vec<_>>()
            .join(", ");
        let person_columns = crate::directory::person_columns("p_");
        // COUNT(*) is a BIGINT on PostgreSQL and an INTEGER on SQLite: both read as i64.
        format!(
            "SELECT {grant_columns}, {person_columns}, r.used_at AS refresh_used_at, r.expires_at AS refresh_expires_at, \
             (SELECT COUNT(*) FROM sessions s WHERE s.id = g.session_id AND s.ended_at IS NULL AND s.expires_at > $2) AS session_live, \
             (SELECT COUNT(*) FROM role_assignments a JOIN roles ro ON ro.code = a.role \
              WHERE a.subject = 'person:' || g.person_id AND ro.privileged = 1 \
              AND (a.expires_at IS NULL OR a.expires_at > $2)) AS privileged \
             FROM refresh_tokens r JOIN grants g ON g.id = r.grant_id JOIN people p ON p.id = g.person_id \
             WHERE r.token_digest = $1"
        )
    })
}

/// The refresh token with this digest, its grant and person, from the read pool in
/// one statement (no transaction).
pub async fn read_refresh(
    app: &AppState,
    digest: &str,
    now: i64,
) -> Result<Option<RefreshState>, OidcError> {
    let row = sqlx::query(read_sql())
        .bind(digest)
        .bind(now)
        .fetch_optional(app.store().reader())
        .await
        .map_err(OidcError::server_error)?;
    let Some(r) = row else { return Ok(None) };
    let get_i64 = |c: &str| store::get::<Option<i64>>(&r, c).map_err(OidcError::server_error);
    Ok(Some(RefreshState {
        grant: grants::grant_from_row(&r)?,
        person: crate::directory::person_from_row(&r, "p_").map_err(OidcError::server_error)?,
        used: get_i64("refresh_used_at")?.is_some(),
        expires_at_ms: get_i64("refresh_expires_at")?.unwrap_or(0),
        session_live: get_i64("session_live")?.unwrap_or(0) > 0,
        privileged: get_i64("privileged")?.unwrap_or(0) > 0,
    }))
}

const SIGNED_OUT: &str =
    "the person signed out; sign in again (ask for offline_access to keep access after sign-out)";

pub(super) async fn refresh_grant(
    app: &AppState,
    client: &Client,
    form: &Form,
    jkt: Option<String>,
) -> Result<TokenResponse, OidcError> {
    let token = form
        .get("refresh_token")
        .ok_or_else(|| OidcError::invalid_request("refresh_token is missing"))?;
    let now = app.clock().now_ms();
    let digest = app.master_key().digest_secret(token);
    let state = match read_refresh(app, &digest, now).await? {
        Some(s) if s.usable(now) => s,
        Some(s) if s.grant.client_id != client.id => {
            return Err(OidcError::invalid_grant(
                "the refresh token was issued to another client",
            ))
        }
        Some(s)
            if !s.used
                && !s.grant.revoked
                && !s.grant.offline
                && s.grant.session_id.is_some()
                && !s.session_live =>
        {
            return Err(OidcError::invalid_grant(SIGNED_OUT))
        }
        _ => return Err(refresh_refused(app, client, &digest, now).await),
    };
    // Refused before anything is written: another client cannot burn this client's token.
    if state.grant.client_id != client.id {
        return Err(OidcError::invalid_grant(
            "the refresh token was issued to another client",
        ));
    }
    if state.grant.dpop_jkt.is_some() && state.grant.dpop_jkt != jkt {
        return Err(OidcError::invalid_grant(
            "the refresh token is bound to another DPoP key (RFC 9449 §5)",
        ));
    }
    // After the sender checks: only the token's holder learns the policy changed.
    if !state.meets_mfa_policy(app, client) {
        return Err(OidcError::invalid_grant(
            "this account or app now requires a second factor; sign in again",
        ));
    }
    let (mut grant, person) = (state.grant, state.person);
    if let Some(raw) = form.get("scope") {
        // §6: a narrower scope is allowed, a wider one is not.
        let asked = parse_scope(raw)?;
        if let Some(bad) = asked.iter().find(|s| !grant.scopes.iter().any(|g| g == *s)) {
            return Err(OidcError::invalid_scope(format!(
                "the scope {bad} was not granted"
            )));
        }
        grant.scopes = asked.into_iter().map(str::to_string).collect();
    }
    let (refresh, successor) = if client.has_grant("refresh_token") {
        let token = crate::crypto::random_token(32);
        let expires =
            (now + refresh_ttl_seconds(app, client, &grant) * 1000).min(grant.expires_at_ms);
        let successor = Successor {
            digest: app.master_key().digest_secret(&token),
            grant_id: grant.id.clone(),
            created_at_ms: now,
            expires_at_ms: expires,
        };
        (Some(token), Some(successor))
    } else {
        (None, None)
    };
    // Signed before the write: if signing fails the old token stays usable.
    let response = respond(app, client, &grant, person, None, refresh, jkt).await?;
    let rotation = Rotation {
        old_digest: digest.clone(),
        successor,
    };
    if !app.refresh_writer().rotate(rotation).await? {
        // Spent, revoked or signed out since the read: the slow path says which (and
        // a concurrent second use is a reuse).
        return Err(refresh_refused(app, client, &digest, now).await);
    }
    Ok(response)
}

/// Why a refresh token was refused. A spent token presented again by its own client
/// is a reuse: someone holds a copy, so the whole family is revoked (RFC 9700 §4.14.2).
async fn refresh_refused(app: &AppState, client: &Client, digest: &str, now: i64) -> OidcError {
    let invalid = || OidcError::invalid_grant("the refresh token is not valid");
    let Ok(mut tx) = app.store().begin().await else {
        return OidcError::server_error("the database is unavailable");
    };
    let Ok(Some(row)) = grants::take_refresh(&mut tx, digest, now, false).await else {
        return invalid();
    };
    let Ok(Some(grant)) = grants::load_grant(&mut tx, &row.grant_id).await else {
        return invalid();
    };
    if grant.client_id != client.id {
        return OidcError::invalid_grant("the refresh token was issued to another client");
    }
    if row.used && !grant.revoked {
        if let Err(e) = grants::revoke_grant(&mut tx, &grant.id, now, "refresh token reused").await
        {
            return e.into();
        }
        if let Err(e) = tx.commit().await {
            return OidcError::server_error(e);
        }
        crate::ops::metrics::oidc_event("refresh_reuse");
        tracing::warn!(client_id = %client.id, "refresh token reused; its family is revoked");
        return OidcError::invalid_grant(
            "the refresh token was already used; the whole token family is now revoked",
        );
    }
    if grant.revoked || row.used {
        return OidcError::invalid_grant("the refresh token has been revoked");
    }
    if row.expires_at_ms <= now || grant.expires_at_ms <= now {
        return OidcError::invalid_grant("the refresh token has expired");
    }
    OidcError::invalid_grant(SIGNED_OUT)
}
