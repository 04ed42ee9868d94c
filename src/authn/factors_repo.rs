//! The storage of second factors: every statement on `totp_factors` and
//! `recovery_codes`, and the TOTP set-up's pending challenge in `mfa_challenges`.
//! Failures come back as `StoreError`; sealing, digests and the rules (one use per
//! code, one confirmed authenticator per person) are the callers'.

use crate::store::{self, Store, StoreError, Tx};

/// A pending TOTP set-up: the challenge row and the sealed secret it holds.
pub(super) struct TotpChallenge {
    pub id: String,
    pub sealed_secret: String,
}

/// A confirmed authenticator: its sealed secret (the last step accepted is checked
/// by `use_totp_step`, in the statement that records it).
pub(super) struct TotpFactor {
    pub sealed_secret: String,
}

// --- TOTP ---------------------------------------------------------------------

/// The person's TOTP set-up that has not expired at `now`.
pub(super) async fn find_totp_challenge(
    tx: &mut Tx,
    person_id: &str,
    now: i64,
) -> Result<Option<TotpChallenge>, StoreError> {
    let row = sqlx::query(
        "SELECT id, state FROM mfa_challenges WHERE purpose = 'totp' AND person_id = $1 AND expires_at > $2",
    )
    .bind(person_id)
    .bind(now)
    .fetch_optional(&mut **tx)
    .await?;
    row.map(|r| {
        Ok(TotpChallenge {
            id: store::get(&r, "id")?,
            sealed_secret: store::get(&r, "state")?,
        })
    })
    .transpose()
}

pub(super) async fn delete_challenge(tx: &mut Tx, id: &str) -> Result<(), StoreError> {
    sqlx::query("DELETE FROM mfa_challenges WHERE id = $1")
        .bind(id)
        .execute(&mut **tx)
        .await?;
    Ok(())
}

/// Makes this sealed secret the person's one confirmed authenticator, with `step`
/// already used.
pub(super) async fn replace_totp(
    tx: &mut Tx,
    person_id: &str,
    sealed_secret: &str,
    step: i64,
    now: i64,
) -> Result<(), StoreError> {
    delete_totp(tx, person_id).await?;
    sqlx::query(
        "INSERT INTO totp_factors (person_id, secret, confirmed_at, last_step, created_at) VALUES ($1, $2, $3, $4, $3)",
    )
    .bind(person_id)
    .bind(sealed_secret)
    .bind(now)
    .bind(step)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

pub(super) async fn find_confirmed_totp(
    store: &Store,
    person_id: &str,
) -> Result<Option<TotpFactor>, StoreError> {
    let row = sqlx::query(
        "SELECT secret FROM totp_factors WHERE person_id = $1 AND confirmed_at IS NOT NULL",
    )
    .bind(person_id)
    .fetch_optional(store.reader())
    .await?;
    row.map(|r| {
        Ok(TotpFactor {
            sealed_secret: store::get(&r, "secret")?,
        })
    })
    .transpose()
}

/// Records `step` as used unless it is not later than the last one used; `true`
/// when recorded. One statement, so two replicas cannot both accept a code.
pub(super) async fn use_totp_step(
    store: &Store,
    person_id: &str,
    step: i64,
) -> Result<bool, StoreError> {
    let used = sqlx::query(
        "UPDATE totp_factors SET last_step = $1 WHERE person_id = $2 AND last_step < $1",
    )
    .bind(step)
    .bind(person_id)
    .execute(store.writer())
    .await?;
    Ok(used.rows_affected() == 1)
}

pub(super) async fn has_confirmed_totp(store: &Store, person_id: &str) -> Result<bool, StoreError> {
    let n: Option<i64> = sqlx::query_scalar(
        "SELECT 1 FROM totp_factors WHERE person_id = $1 AND confirmed_at IS NOT NULL",
    )
    .bind(person_id)
    .fetch_optional(store.reader())
    .await?;
    Ok(n.is_some())
}

/// Deletes the person's authenticator, confirmed or not; `true` when there was one.
pub(super) async fn delete_totp(tx: &mut Tx, person_id: &str) -> Result<bool, StoreError> {
    let r = sqlx::query("DELETE FROM totp_factors WHERE person_id = $1")
        .bind(person_id)
        .execute(&mut **tx)
        .await?;
    Ok(r.rows_affected() > 0)
}

// --- recovery codes -----------------------------------------------------------

pub(super) async fn delete_recovery_codes(tx: &mut Tx, person_id: &str) -> Result<(), StoreError> {
    sqlx::query("DELETE FROM recovery_codes WHERE person_id = $1")
        .bind(person_id)
        .execute(&mut **tx)
        .await?;
    Ok(())
}

pub(super) async fn insert_recovery_code(
    tx: &mut Tx,
    person_id: &str,
    code_digest: &str,
    now: i64,
) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO recovery_codes (person_id, code_digest, created_at) VALUES ($1, $2, $3)",
    )
    .bind(person_id)
    .bind(code_digest)
    .bind(now)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// Marks an unused code used at `now`; `true` when there was one with this digest.
pub(super) async fn use_recovery_code(
    store: &Store,
    person_id: &str,
    code_digest: &str,
    now: i64,
) -> Result<bool, StoreError> {
    let r = sqlx::query(
        "UPDATE recovery_codes SET used_at = $1 WHERE person_id = $2 AND code_digest = $3 AND used_at IS NULL",
    )
    .bind(now)
    .bind(person_id)
    .bind(code_digest)
    .execute(store.writer())
    .await?;
    Ok(r.rows_affected() == 1)
}

pub(super) async fn unused_recovery_codes(
    store: &Store,
    person_id: &str,
) -> Result<i64, StoreError> {
    Ok(sqlx::query_scalar(
        "SELECT COUNT(*) FROM recovery_codes WHERE person_id = $1 AND used_at IS NULL",
    )
    .bind(person_id)
    .fetch_one(store.reader())
    .await?)
}
