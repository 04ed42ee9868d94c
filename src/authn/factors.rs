//! Changes to a person's second factors (removal, recovery codes, the help desk's
//! reset) and passwordless sign-in with a passkey, each audited in its transaction.

use super::factor_record::audit_factor;
use super::mfa::handle_digest;
use super::mfa::Assurance;
use super::{factors_repo, passkeys, recovery, totp, AuthnError};
use crate::audit::{Origin, Outcome};
use crate::store::{StoreError, Tx};
use crate::AppState;

/// Removes the authenticator app. `keep`: what the person's role needs (a
/// privileged person); the removal is refused (`LastFactor`, nothing written) when
/// what is left would not meet it, checked inside the transaction, so two removals
/// at once cannot both pass.
pub async fn remove_totp(
    app: &AppState,
    origin: &Origin,
    person_id: &str,
    keep: Option<Assurance>,
) -> Result<bool, AuthnError> {
    let mut tx = app.store().begin_locked("people", "id", person_id).await?;
    let removed = totp::remove(&mut tx, person_id).await?;
    check_left(&mut tx, person_id, keep).await?;
    if removed {
        audit_factor(
            &mut tx,
            app,
            origin,
            "auth.totp.remove",
            Outcome::Success,
            person_id,
            "totp",
        )
        .await?;
    }
    tx.commit().await.map_err(StoreError::from)?;
    Ok(removed)
}

/// Removes one passkey; `keep` as for [`remove_totp`].
pub async fn remove_passkey(
    app: &AppState,
    origin: &Origin,
    person_id: &str,
    id: &str,
    keep: Option<Assurance>,
) -> Result<bool, AuthnError> {
    let mut tx = app.store().begin_locked("people", "id", person_id).await?;
    let removed = passkeys::remove(&mut tx, person_id, id).await?;
    check_left(&mut tx, person_id, keep).await?;
    if removed {
        audit_factor(
            &mut tx,
            app,
            origin,
            "auth.passkey.remove",
            Outcome::Success,
            person_id,
            id,
        )
        .await?;
    }
    tx.commit().await.map_err(StoreError::from)?;
    Ok(removed)
}

/// Whether the factors left (inside the transaction) still meet `keep`.
async fn check_left(
    tx: &mut Tx,
    person_id: &str,
    keep: Option<Assurance>,
) -> Result<(), AuthnError> {
    let Some(needed) = keep else {
        return Ok(());
    };
    let (passkeys, totp) = factors_repo::count_factors(tx, person_id).await?;
    let still_ok = match needed {
        Assurance::Passkey => passkeys > 0,
        _ => passkeys > 0 || totp > 0,
    };
    if still_ok {
        Ok(())
    } else {
        Err(AuthnError::LastFactor)
    }
}

/// A new set of recovery codes (the old ones stop working), audited.
pub async fn issue_recovery_codes(
    app: &AppState,
    origin: &Origin,
    person_id: &str,
) -> Result<Vec<String>, AuthnError> {
    let mut tx = app.store().begin().await?;
    let codes = recovery::issue(&mut tx, app, person_id).await?;
    audit_factor(
        &mut tx,
        app,
        origin,
        "auth.recovery_codes.issue",
        Outcome::Success,
        person_id,
        "recovery_code",
    )
    .await?;
    tx.commit().await.map_err(StoreError::from)?;
    Ok(codes)
}

/// Removes every second factor of a person and ends their sessions (help desk).
/// Returns how many factors went.
pub async fn reset(app: &AppState, person_id: &str, origin: &Origin) -> Result<u64, AuthnError> {
    let now = app.clock().now_ms();
    let mut tx = app.store().begin().await?;
    let removed = factors_repo::delete_all_factors(&mut tx, person_id).await?;
    super::end_all_sessions(&mut tx, person_id, now).await?;
    audit_factor(
        &mut tx,
        app,
        origin,
        "auth.mfa.reset",
        Outcome::Success,
        person_id,
        "all",
    )
    .await?;
    tx.commit().await.map_err(StoreError::from)?;
    Ok(removed)
}

/// Starts a passwordless sign-in; returns the options and the handle for the cookie.
pub async fn begin_passwordless(
    app: &AppState,
) -> Result<(webauthn_rs::prelude::RequestChallengeResponse, String), AuthnError> {
    let (rcr, state) = passkeys::start_discoverable(app)?;
    let handle = crate::crypto::random_token(32);
    let now = app.clock().now_ms();
    let expires_at = now + app.config().mfa.challenge_ttl_seconds * 1000;
    let digest = handle_digest(app, &handle);
    factors_repo::insert_passwordless_challenge(app.store(), &digest, &state, now, expires_at)
        .await?;
    Ok((rcr, handle))
}

/// Finishes a passwordless sign-in (the challenge is used up first, whatever the
/// outcome). Returns the person and the session's amr.
pub async fn finish_passwordless(
    app: &AppState,
    handle: &str,
    credential: &webauthn_rs::prelude::PublicKeyCredential,
    origin: &Origin,
) -> Result<String, AuthnError> {
    let digest = handle_digest(app, handle);
    let now = app.clock().now_ms();
    let state = factors_repo::take_passwordless_challenge(app.store(), &digest, now).await?;
    let state = state.ok_or(AuthnError::ChallengeExpired)?;
    let person_id = passkeys::finish_discoverable(app, &state, credential).await?;
    let mut tx = app.store().begin().await?;
    audit_factor(
        &mut tx,
        app,
        origin,
        "auth.passkey.signin",
        Outcome::Success,
        &person_id,
        "passkey",
    )
    .await?;
    tx.commit().await.map_err(StoreError::from)?;
    Ok(person_id)
}
