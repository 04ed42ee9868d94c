//! The storage of second factors: every statement on `totp_factors`, `passkeys` and
//! `recovery_codes`, and the pending TOTP set-up, passkey registration and
//! passwordless sign-in in `mfa_challenges` (the second step of a sign-in keeps its
//! challenge statements in `mfa.rs`).
//! Failures come back as `StoreError`; sealing, digests and the rules (one use per
//! code, one confirmed authenticator per person) are the callers'.

use webauthn_rs::prelude::Passkey;

use super::passkeys::PasskeyView;
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

// --- passkeys -----------------------------------------------------------------

/// A stored passkey: its row id and the credential webauthn-rs keeps up to date.
pub(super) struct StoredPasskey {
    pub id: String,
    pub passkey: Passkey,
}

/// A new passkey, as it is written (the credential already serialised).
pub(super) struct PasskeyInsert<'a> {
    pub id: &'a str,
    pub person_id: &'a str,
    pub credential_id: &'a str,
    pub name: &'a str,
    pub credential: &'a str,
    pub created_at: i64,
}

fn stored_from_row(r: &store::Row) -> Result<StoredPasskey, StoreError> {
    let json: String = store::get(r, "credential")?;
    Ok(StoredPasskey {
        id: store::get(r, "id")?,
        passkey: serde_json::from_str(&json)
            .map_err(|e| StoreError::Corrupt(format!("passkeys.credential: {e}")))?,
    })
}

pub(super) async fn stored_passkeys(
    store: &Store,
    person_id: &str,
) -> Result<Vec<StoredPasskey>, StoreError> {
    let rows = sqlx::query("SELECT id, credential FROM passkeys WHERE person_id = $1")
        .bind(person_id)
        .fetch_all(store.reader())
        .await?;
    rows.iter().map(stored_from_row).collect()
}

/// The person's passkey with this credential id, read inside the caller's
/// transaction (which holds its row lock).
pub(super) async fn find_passkey_by_credential(
    tx: &mut Tx,
    person_id: &str,
    credential_id: &str,
) -> Result<Option<StoredPasskey>, StoreError> {
    let row = sqlx::query(
        "SELECT id, credential FROM passkeys WHERE person_id = $1 AND credential_id = $2",
    )
    .bind(person_id)
    .bind(credential_id)
    .fetch_optional(&mut **tx)
    .await?;
    row.as_ref().map(stored_from_row).transpose()
}

/// Takes the person's pending passkey registration that has not expired at `now`:
/// its state, and the challenge is gone whatever the caller does with it.
pub(super) async fn take_registration_challenge(
    tx: &mut Tx,
    person_id: &str,
    now: i64,
) -> Result<Option<String>, StoreError> {
    Ok(sqlx::query_scalar(
        "DELETE FROM mfa_challenges WHERE purpose = 'register' AND person_id = $1 AND expires_at > $2 RETURNING state",
    )
    .bind(person_id)
    .bind(now)
    .fetch_optional(&mut **tx)
    .await?)
}

pub(super) async fn insert_passkey(tx: &mut Tx, p: &PasskeyInsert<'_>) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO passkeys (id, person_id, credential_id, name, credential, created_at) VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(p.id)
    .bind(p.person_id)
    .bind(p.credential_id)
    .bind(p.name)
    .bind(p.credential)
    .bind(p.created_at)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// What the portal lists of a person's passkeys, oldest first.
pub(super) async fn list_passkeys(
    store: &Store,
    person_id: &str,
) -> Result<Vec<PasskeyView>, StoreError> {
    let rows = sqlx::query(
        "SELECT id, name, created_at, last_used_at FROM passkeys WHERE person_id = $1 ORDER BY created_at",
    )
    .bind(person_id)
    .fetch_all(store.reader())
    .await?;
    rows.iter()
        .map(|r| {
            Ok(PasskeyView {
                id: store::get(r, "id")?,
                name: store::get(r, "name")?,
                created_at_ms: store::get(r, "created_at")?,
                last_used_at_ms: store::get(r, "last_used_at")?,
            })
        })
        .collect()
}

/// Stores a passkey's updated credential and when it was used.
pub(super) async fn set_passkey_used(
    tx: &mut Tx,
    id: &str,
    credential: &str,
    now: i64,
) -> Result<(), StoreError> {
    sqlx::query("UPDATE passkeys SET credential = $1, last_used_at = $2 WHERE id = $3")
        .bind(credential)
        .bind(now)
        .bind(id)
        .execute(&mut **tx)
        .await?;
    Ok(())
}

/// Deletes one of the person's passkeys; `true` when there was one.
pub(super) async fn delete_passkey(
    tx: &mut Tx,
    person_id: &str,
    id: &str,
) -> Result<bool, StoreError> {
    let r = sqlx::query("DELETE FROM passkeys WHERE id = $1 AND person_id = $2")
        .bind(id)
        .bind(person_id)
        .execute(&mut **tx)
        .await?;
    Ok(r.rows_affected() == 1)
}

pub(super) async fn has_passkey(store: &Store, person_id: &str) -> Result<bool, StoreError> {
    let n: Option<i64> = sqlx::query_scalar("SELECT 1 FROM passkeys WHERE person_id = $1 LIMIT 1")
        .bind(person_id)
        .fetch_optional(store.reader())
        .await?;
    Ok(n.is_some())
}

// --- what is left -------------------------------------------------------------

/// How many passkeys and authenticators (confirmed or not) the person has, read
/// inside the caller's transaction.
pub(super) async fn count_factors(tx: &mut Tx, person_id: &str) -> Result<(i64, i64), StoreError> {
    let passkeys: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM passkeys WHERE person_id = $1")
        .bind(person_id)
        .fetch_one(&mut **tx)
        .await?;
    let totp: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM totp_factors WHERE person_id = $1")
        .bind(person_id)
        .fetch_one(&mut **tx)
        .await?;
    Ok((passkeys, totp))
}

/// Deletes every second factor of a person, the unused recovery codes and any
/// pending challenge; how many rows went.
pub(super) async fn delete_all_factors(tx: &mut Tx, person_id: &str) -> Result<u64, StoreError> {
    let mut removed = 0;
    for sql in [
        "DELETE FROM passkeys WHERE person_id = $1",
        "DELETE FROM totp_factors WHERE person_id = $1",
        "DELETE FROM recovery_codes WHERE person_id = $1 AND used_at IS NULL",
        "DELETE FROM mfa_challenges WHERE person_id = $1",
    ] {
        removed += sqlx::query(sql)
            .bind(person_id)
            .execute(&mut **tx)
            .await?
            .rows_affected();
    }
    Ok(removed)
}

// --- passwordless sign-in -----------------------------------------------------

/// Stores a passwordless sign-in's state under the digest of its cookie handle.
pub(super) async fn insert_passwordless_challenge(
    store: &Store,
    handle_digest: &str,
    state: &str,
    now: i64,
    expires_at: i64,
) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO mfa_challenges (id, purpose, state, created_at, expires_at) VALUES ($1, 'passkey', $2, $3, $4)",
    )
    .bind(handle_digest)
    .bind(state)
    .bind(now)
    .bind(expires_at)
    .execute(store.writer())
    .await?;
    Ok(())
}

/// Takes a passwordless sign-in's state if it has not expired at `now`; the
/// challenge is gone whatever the caller does with it.
pub(super) async fn take_passwordless_challenge(
    store: &Store,
    handle_digest: &str,
    now: i64,
) -> Result<Option<String>, StoreError> {
    Ok(sqlx::query_scalar(
        "DELETE FROM mfa_challenges WHERE id = $1 AND purpose = 'passkey' AND expires_at > $2 RETURNING state",
    )
    .bind(handle_digest)
    .bind(now)
    .fetch_optional(store.writer())
    .await?)
}
