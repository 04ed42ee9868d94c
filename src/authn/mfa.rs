//! MFA policy and the sign-in between its first and second factor.
//!
//! Who needs what (`required_for_person`, `Assurance`): a person holding a privileged
//! role needs a second factor (or, with `[mfa] privileged_roles = "passkey"`, a
//! passkey); anyone who has set up a second factor uses it; an app marked
//! `mfa_required` or asking for a stronger `acr` (OIDC Core §3.1.2.1 `acr_values`)
//! gets a step-up when the session is weaker. What happened is said truthfully in
//! `amr` (RFC 8176 values) and `acr`.
//!
//! A sign-in that passed its first factor but needs a second is a `Pending` row,
//! found by the keyed digest of a random handle held in a cookie of that browser; it
//! expires, allows `max_attempts` wrong codes and is used up by the second factor.

use serde::{Deserialize, Serialize};

use super::factor_record::audit_factor;
use super::{passkeys, recovery, totp, AuthnError};
use crate::audit::{Origin, Outcome};
use crate::store::{self, StoreError};
use crate::AppState;

/// Two factors (an IdP's MFA, or a password and a TOTP code or recovery code).
pub const ACR_MFA: &str = "urn:hms-ach:acr:mfa";
/// A passkey with user verification: two factors and phishing resistant.
pub const ACR_PASSKEY: &str = "urn:hms-ach:acr:passkey";

/// How strongly a session was authenticated, in order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Assurance {
    Single,
    Mfa,
    Passkey,
}

impl Assurance {
    /// From a session's `amr`: `hwk` (a passkey of ours) and `mfa` are only ever set
    /// by this module or by an IdP configured as asserting MFA.
    pub fn of_amr(amr: &[String]) -> Assurance {
        if amr.iter().any(|a| a == "hwk") {
            Assurance::Passkey
        } else if amr.iter().any(|a| a == "mfa") {
            Assurance::Mfa
        } else {
            Assurance::Single
        }
    }

    /// The level an `acr` value asks for; None for values we do not know (ignored,
    /// as OIDC Core §3.1.2.1 lets the OP do with voluntary acr values).
    pub fn from_acr(acr: &str) -> Option<Assurance> {
        match acr {
            ACR_PASSKEY | "phr" | "phrh" => Some(Assurance::Passkey),
            ACR_MFA => Some(Assurance::Mfa),
            super::ACR_PASSWORD | "urn:hms-ach:acr:federated" => Some(Assurance::Single),
            _ => None,
        }
    }

    /// What `acr_values` (space-separated, in order of preference) require: the
    /// weakest level they name, since any of them satisfies the client.
    pub fn from_acr_values(values: Option<&str>) -> Assurance {
        values
            .unwrap_or_default()
            .split_ascii_whitespace()
            .filter_map(Assurance::from_acr)
            .min()
            .unwrap_or(Assurance::Single)
    }
}

/// What holding a privileged role demands (`mfa.privileged_roles`).
pub fn privileged_role_level(app: &AppState) -> Assurance {
    match app.config().mfa.privileged_roles.as_str() {
        "passkey" => Assurance::Passkey,
        _ => Assurance::Mfa,
    }
}

/// What a person needs at every sign-in, whatever the app.
pub async fn required_for_person(app: &AppState, person_id: &str) -> Result<Assurance, AuthnError> {
    let now = app.clock().now_ms();
    let privileged = crate::authz::holds_privileged_role(app.store(), person_id, now)
        .await
        .map_err(|e| AuthnError::Store(StoreError::Corrupt(e.to_string())))?;
    if privileged {
        return Ok(privileged_role_level(app));
    }
    let f = factors(app, person_id).await?;
    Ok(if f.any() {
        Assurance::Mfa
    } else {
        Assurance::Single
    })
}

/// The second factors a person has set up.
#[derive(Debug, Clone, Serialize)]
pub struct Factors {
    pub passkeys: usize,
    pub totp: bool,
    pub recovery_codes_left: i64,
}

impl Factors {
    pub fn any(&self) -> bool {
        self.passkeys > 0 || self.totp
    }
    /// Can this person satisfy `needed` with what they have?
    pub fn can_satisfy(&self, needed: Assurance) -> bool {
        match needed {
            Assurance::Single => true,
            Assurance::Mfa => self.any() || self.recovery_codes_left > 0,
            Assurance::Passkey => self.passkeys > 0,
        }
    }
}

pub async fn factors(app: &AppState, person_id: &str) -> Result<Factors, AuthnError> {
    Ok(Factors {
        passkeys: passkeys::list(app, person_id).await?.len(),
        totp: totp::has_totp(app, person_id).await?,
        recovery_codes_left: recovery::remaining(app, person_id).await?,
    })
}

/// True when every second factor the person has was set up at or after `since_ms`
/// (a session that began with no factor and added the first ones itself: it is as
/// strong as when they had none, so it may still see them).
pub async fn factors_all_since(
    app: &AppState,
    person_id: &str,
    since_ms: i64,
) -> Result<bool, AuthnError> {
    let older: i64 = sqlx::query_scalar(
        "SELECT (SELECT COUNT(*) FROM passkeys WHERE person_id = $1 AND created_at < $2) \
              + (SELECT COUNT(*) FROM totp_factors WHERE person_id = $1 \
                 AND confirmed_at IS NOT NULL AND confirmed_at < $2)",
    )
    .bind(person_id)
    .bind(since_ms)
    .fetch_one(app.store().reader())
    .await?;
    Ok(older == 0)
}

/// A sign-in waiting for its second factor.
#[derive(Debug, Clone)]
pub struct Pending {
    id: String,
    pub person_id: String,
    pub first_amr: Vec<String>,
    pub first_acr: String,
    pub auth_request: Option<String>,
    pub needed: Assurance,
    webauthn: Option<String>,
    /// The amr of a factor already proven in this sign-in without finishing it (a code,
    /// from a person whose role needs a passkey they do not have yet: `prove`).
    pub proven: Vec<String>,
}

#[derive(Serialize, Deserialize)]
struct PendingState {
    needed: Assurance,
    #[serde(default)]
    webauthn: Option<String>,
    #[serde(default)]
    proven: Vec<String>,
}

impl Pending {
    fn state_json(
        &self,
        webauthn: Option<String>,
        proven: &[String],
    ) -> Result<String, AuthnError> {
        serde_json::to_string(&PendingState {
            needed: self.needed,
            webauthn,
            proven: proven.to_vec(),
        })
        .map_err(|e| AuthnError::Store(StoreError::Corrupt(e.to_string())))
    }
}

pub(super) fn handle_digest(app: &AppState, handle: &str) -> String {
    app.master_key().digest_secret(&format!("mfa:{handle}"))
}

/// Records a sign-in that needs a second factor; returns the handle for the cookie.
pub async fn begin_pending(
    app: &AppState,
    person_id: &str,
    first_amr: &[String],
    first_acr: &str,
    auth_request: Option<&str>,
    needed: Assurance,
) -> Result<String, AuthnError> {
    let handle = crate::crypto::random_token(32);
    let now = app.clock().now_ms();
    let state = serde_json::to_string(&PendingState {
        needed,
        webauthn: None,
        proven: Vec::new(),
    })
    .map_err(|e| StoreError::Corrupt(e.to_string()))?;
    let mut tx = app.store().begin().await?;
    sqlx::query("DELETE FROM mfa_challenges WHERE expires_at <= $1")
        .bind(now)
        .execute(&mut *tx)
        .await?;
    sqlx::query(
        "INSERT INTO mfa_challenges (id, purpose, person_id, first_amr, first_acr, auth_request, state, created_at, expires_at) \
         VALUES ($1, 'signin', $2, $3, $4, $5, $6, $7, $8)",
    )
    .bind(handle_digest(app, &handle))
    .bind(person_id)
    .bind(serde_json::to_string(first_amr).map_err(|e| StoreError::Corrupt(e.to_string()))?)
    .bind(first_acr)
    .bind(auth_request)
    .bind(state)
    .bind(now)
    .bind(now + app.config().mfa.challenge_ttl_seconds * 1000)
    .execute(&mut *tx)
    .await?;
    tx.commit().await.map_err(StoreError::from)?;
    Ok(handle)
}

/// Stores a person's one live ceremony of `purpose` (a TOTP secret being set up, a
/// passkey registration): a new one replaces the earlier, and expires after
/// `challenge_ttl_seconds`.
pub(super) async fn replace_challenge(
    app: &AppState,
    purpose: &str,
    person_id: &str,
    state: &str,
) -> Result<(), AuthnError> {
    let now = app.clock().now_ms();
    // One live ceremony per purpose even when two start at once.
    let mut tx = app.store().begin_locked("people", "id", person_id).await?;
    sqlx::query("DELETE FROM mfa_challenges WHERE purpose = $1 AND person_id = $2")
        .bind(purpose)
        .bind(person_id)
        .execute(&mut *tx)
        .await?;
    sqlx::query(
        "INSERT INTO mfa_challenges (id, purpose, person_id, state, created_at, expires_at) VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(crate::store::new_id())
    .bind(purpose)
    .bind(person_id)
    .bind(state)
    .bind(now)
    .bind(now + app.config().mfa.challenge_ttl_seconds * 1000)
    .execute(&mut *tx)
    .await?;
    tx.commit().await.map_err(StoreError::from)?;
    Ok(())
}

/// The pending sign-in of this handle, if it is still live.
pub async fn load_pending(app: &AppState, handle: &str) -> Result<Option<Pending>, AuthnError> {
    let row = sqlx::query(
        "SELECT id, person_id, first_amr, first_acr, auth_request, state FROM mfa_challenges \
         WHERE id = $1 AND purpose = 'signin' AND expires_at > $2",
    )
    .bind(handle_digest(app, handle))
    .bind(app.clock().now_ms())
    .fetch_optional(app.store().writer())
    .await?;
    let Some(r) = row else {
        return Ok(None);
    };
    let amr: String = store::get(&r, "first_amr")?;
    let state: String = store::get(&r, "state")?;
    let state: PendingState = serde_json::from_str(&state)
        .map_err(|e| StoreError::Corrupt(format!("mfa_challenges.state: {e}")))?;
    Ok(Some(Pending {
        id: store::get(&r, "id")?,
        person_id: store::get(&r, "person_id")?,
        first_amr: serde_json::from_str(&amr)
            .map_err(|e| StoreError::Corrupt(format!("mfa_challenges.first_amr: {e}")))?,
        first_acr: store::get::<Option<String>>(&r, "first_acr")?.unwrap_or_default(),
        auth_request: store::get(&r, "auth_request")?,
        needed: state.needed,
        webauthn: state.webauthn,
        proven: state.proven,
    }))
}

/// The options for the browser's `navigator.credentials.get`, for a pending sign-in.
pub async fn passkey_options(
    app: &AppState,
    pending: &Pending,
) -> Result<Option<webauthn_rs::prelude::RequestChallengeResponse>, AuthnError> {
    let Some((rcr, state)) = passkeys::start_authentication(app, &pending.person_id).await? else {
        return Ok(None);
    };
    let state = pending.state_json(Some(state), &pending.proven)?;
    sqlx::query("UPDATE mfa_challenges SET state = $1 WHERE id = $2")
        .bind(state)
        .bind(&pending.id)
        .execute(app.store().writer())
        .await?;
    Ok(Some(rcr))
}

/// A second factor offered for a pending sign-in.
pub enum Factor<'a> {
    Totp(&'a str),
    Recovery(&'a str),
    Passkey(&'a webauthn_rs::prelude::PublicKeyCredential),
}

impl Factor<'_> {
    fn name(&self) -> &'static str {
        match self {
            Factor::Totp(_) => "totp",
            Factor::Recovery(_) => "recovery_code",
            Factor::Passkey(_) => "passkey",
        }
    }
}

/// The session's amr and acr once the second factor is verified.
pub struct Verified {
    pub person_id: String,
    pub amr: Vec<String>,
    pub acr: &'static str,
    pub auth_request: Option<String>,
}

/// Checks the second factor. Right: the pending sign-in is used up (once, even if
/// two requests race) and the new amr/acr returned. Wrong: counted, and after
/// `max_attempts` the pending sign-in is dropped (`TooManyAttempts`).
pub async fn verify(
    app: &AppState,
    pending: &Pending,
    factor: Factor<'_>,
    origin: &Origin,
) -> Result<Verified, AuthnError> {
    let added = check_factor(app, pending, &factor, origin).await?;
    finish(app, pending, added, "auth.mfa", factor.name(), origin).await
}

/// A person whose role needs a passkey (`mfa.privileged_roles = "passkey"`) and who has
/// only an authenticator app or recovery codes: the code they have proves it is them,
/// but finishes nothing; the pending sign-in remembers it, so that they may add a
/// passkey now (`complete_enrollment`), which finishes the sign-in with both.
pub async fn prove(
    app: &AppState,
    pending: &Pending,
    factor: Factor<'_>,
    origin: &Origin,
) -> Result<Pending, AuthnError> {
    let added = check_factor(app, pending, &factor, origin).await?;
    let proven: Vec<String> = added.iter().map(|a| (*a).to_string()).collect();
    let state = pending.state_json(None, &proven)?;
    let mut tx = app.store().begin().await?;
    let kept =
        sqlx::query("UPDATE mfa_challenges SET state = $1 WHERE id = $2 AND expires_at > $3")
            .bind(state)
            .bind(&pending.id)
            .bind(app.clock().now_ms())
            .execute(&mut *tx)
            .await?;
    if kept.rows_affected() != 1 {
        return Err(AuthnError::ChallengeExpired);
    }
    audit_factor(
        &mut tx,
        app,
        origin,
        "auth.mfa.proven_for_passkey",
        Outcome::Success,
        &pending.person_id,
        factor.name(),
    )
    .await?;
    tx.commit().await.map_err(StoreError::from)?;
    Ok(Pending {
        webauthn: None,
        proven,
        ..pending.clone()
    })
}

/// Checks one factor for a pending sign-in; returns the amr it adds. Wrong: counted
/// (per sign-in and per person), and after `max_attempts` the sign-in is dropped.
async fn check_factor(
    app: &AppState,
    pending: &Pending,
    factor: &Factor<'_>,
    origin: &Origin,
) -> Result<&'static [&'static str], AuthnError> {
    let pid = &pending.person_id;
    // Guesses are limited per person across sign-ins too (each pending sign-in allows
    // `max_attempts`, but a known password starts a new one): the same lockout as
    // passwords (`auth.max_failures` per `failure_window_seconds`), cleared only by a
    // right second factor.
    let now = app.clock().now_ms();
    let throttle_key = super::throttle::login_key(app, &format!("mfa:{pid}"));
    super::throttle::reserve_attempt(app, &throttle_key, now).await?;
    let (ok, added): (bool, &'static [&'static str]) = match factor {
        Factor::Totp(code) => (totp::verify(app, pid, code).await?, &["otp"]),
        Factor::Recovery(code) => (recovery::consume(app, pid, code).await?, &["otp"]),
        Factor::Passkey(cred) => {
            let state = pending
                .webauthn
                .as_deref()
                .ok_or(AuthnError::ChallengeExpired)?;
            match passkeys::finish_authentication(app, pid, state, cred).await {
                Ok(()) => (true, &["hwk"]),
                Err(AuthnError::Passkey(e)) => {
                    tracing::info!(error = %e, "passkey assertion refused");
                    (false, &[])
                }
                Err(e) => return Err(e),
            }
        }
    };
    if !ok {
        super::throttle::record_failure(app, &throttle_key, now, Some((pid, origin))).await?;
        let mut tx = app.store().begin().await?;
        let left: Option<i64> = sqlx::query_scalar(
            "UPDATE mfa_challenges SET attempts = attempts + 1 WHERE id = $1 RETURNING attempts",
        )
        .bind(&pending.id)
        .fetch_optional(&mut *tx)
        .await?;
        let exhausted = left.is_none_or(|n| n >= app.config().mfa.max_attempts);
        if exhausted {
            sqlx::query("DELETE FROM mfa_challenges WHERE id = $1")
                .bind(&pending.id)
                .execute(&mut *tx)
                .await?;
        }
        audit_factor(
            &mut tx,
            app,
            origin,
            "auth.mfa",
            Outcome::Denied,
            pid,
            factor.name(),
        )
        .await?;
        tx.commit().await.map_err(StoreError::from)?;
        return Err(if exhausted {
            AuthnError::TooManyAttempts
        } else {
            AuthnError::WrongSecondFactor
        });
    }
    super::throttle::clear(app.store(), &throttle_key).await?;
    Ok(added)
}

/// A person with no second factor who set one up right after the password (`[mfa]
/// enroll_at_signin`): the new factor was just used once, which finishes the sign-in.
pub async fn complete_enrollment(
    app: &AppState,
    pending: &Pending,
    passkey: bool,
    origin: &Origin,
) -> Result<Verified, AuthnError> {
    let (added, name): (&[&str], _) = if passkey {
        (&["hwk"], "passkey")
    } else {
        (&["otp"], "totp")
    };
    finish(
        app,
        pending,
        added,
        "auth.mfa.enrolled_at_signin",
        name,
        origin,
    )
    .await
}

/// Uses up the pending sign-in (once, even if two requests race) and says what the
/// session's amr and acr are.
async fn finish(
    app: &AppState,
    pending: &Pending,
    added: &[&str],
    action: &'static str,
    factor: &str,
    origin: &Origin,
) -> Result<Verified, AuthnError> {
    let pid = &pending.person_id;
    let mut amr = pending.first_amr.clone();
    let proven = pending.proven.iter().map(String::as_str);
    for a in proven.chain(added.iter().copied()).chain(["mfa"]) {
        if !amr.iter().any(|x| x == a) {
            amr.push((*a).to_string());
        }
    }
    // A factor weaker than this sign-in needs (a code where a passkey is required)
    // finishes nothing.
    if Assurance::of_amr(&amr) < pending.needed {
        return Err(AuthnError::WrongSecondFactor);
    }
    let mut tx = app.store().begin().await?;
    let used = sqlx::query("DELETE FROM mfa_challenges WHERE id = $1 AND expires_at > $2")
        .bind(&pending.id)
        .bind(app.clock().now_ms())
        .execute(&mut *tx)
        .await?;
    if used.rows_affected() != 1 {
        return Err(AuthnError::ChallengeExpired);
    }
    audit_factor(&mut tx, app, origin, action, Outcome::Success, pid, factor).await?;
    tx.commit().await.map_err(StoreError::from)?;
    let acr = if Assurance::of_amr(&amr) == Assurance::Passkey {
        ACR_PASSKEY
    } else {
        ACR_MFA
    };
    Ok(Verified {
        person_id: pid.clone(),
        amr,
        acr,
        auth_request: pending.auth_request.clone(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn assurance_from_amr_and_acr_values() {
        let v = |a: &[&str]| a.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(Assurance::of_amr(&v(&["pwd"])), Assurance::Single);
        assert_eq!(Assurance::of_amr(&v(&["fed", "mfa"])), Assurance::Mfa);
        assert_eq!(
            Assurance::of_amr(&v(&["pwd", "hwk", "mfa"])),
            Assurance::Passkey
        );
        assert_eq!(Assurance::from_acr_values(None), Assurance::Single);
        assert_eq!(
            Assurance::from_acr_values(Some("urn:x:unknown")),
            Assurance::Single
        );
        assert_eq!(
            Assurance::from_acr_values(Some(ACR_PASSKEY)),
            Assurance::Passkey
        );
        // Any listed value satisfies the client: the weakest one we know counts.
        assert_eq!(
            Assurance::from_acr_values(Some(&format!("{ACR_PASSKEY} {ACR_MFA}"))),
            Assurance::Mfa
        );
    }
}
