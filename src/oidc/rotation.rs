//! Signing-key rotation. A new key is created as `next`: published in the JWKS at
//! once, signing nothing until `keys.publish_ahead_seconds` have passed (relying
//! parties cache the JWKS). Then it becomes `active` and the old key `retired`:
//! still published until every token it signed has expired, then deleted.

use super::keys::{encrypt, generate, public_jwk, Alg};
use super::KeyError;
use crate::audit::{self, Entry, Origin, Outcome};
use crate::crypto::MasterKey;
use crate::store::{Store, StoreError};

/// Creates a `next` key for each algorithm that has none; returns (kid, alg, activate_at).
/// The keys are generated first and inserted in one transaction, so relying parties
/// never see half a rotation (an RSA key takes a while to generate).
pub async fn rotate_keys(
    store: &Store,
    master: &MasterKey,
    now_ms: i64,
    publish_ahead_seconds: i64,
    origin: &Origin,
) -> Result<Vec<(String, &'static str, i64)>, KeyError> {
    let pending: Vec<String> =
        sqlx::query_scalar("SELECT alg FROM signing_keys WHERE status = 'next'")
            .fetch_all(store.reader())
            .await?;
    let activate_at = now_ms + publish_ahead_seconds * 1000;
    let mut keys = Vec::new();
    for alg in [Alg::Es256, Alg::Rs256] {
        if pending.iter().any(|p| p == alg.as_str()) {
            continue;
        }
        let (private, verifier) = tokio::task::spawn_blocking(move || generate(alg))
            .await
            .map_err(|e| KeyError::Crypto(e.to_string()))??;
        let (kid, jwk) = public_jwk(alg, &verifier);
        let sealed = encrypt(master, &kid, &private)?;
        keys.push((kid, alg, jwk, sealed));
    }
    let mut tx = store.begin().await?;
    for (kid, alg, jwk, sealed) in &keys {
        let inserted = sqlx::query(
            "INSERT INTO signing_keys (kid, alg, status, private_key_enc, public_jwk, created_at, activate_at) VALUES ($1, $2, 'next', $3, $4, $5, $6)",
        )
        .bind(kid)
        .bind(alg.as_str())
        .bind(sealed)
        .bind(jwk.to_string())
        .bind(now_ms)
        .bind(activate_at)
        .execute(&mut *tx)
        .await;
        match inserted.map_err(StoreError::from) {
            Ok(_) => {}
            // Another process started a rotation meanwhile (unique index): keep theirs.
            Err(StoreError::Duplicate(_)) => return Ok(Vec::new()),
            Err(e) => return Err(e.into()),
        }
        audit::record(&mut tx, master.audit_key(), now_ms, origin, Entry {
            action: "keys.rotate",
            outcome: Outcome::Success,
            target_kind: "signing_key",
            target_id: kid,
            details: serde_json::json!({ "alg": alg.as_str(), "activateAt": crate::clock::format_rfc3339(activate_at) }),
        })
        .await?;
        super::keys::key_event(
            &mut tx,
            now_ms,
            kid,
            alg.as_str(),
            "next",
            Some(activate_at),
        )
        .await?;
    }
    tx.commit().await?;
    Ok(keys
        .into_iter()
        .map(|(kid, alg, _, _)| (kid, alg.as_str(), activate_at))
        .collect())
}

/// Promotes due `next` keys, deletes retired keys nobody can hold a token of, and
/// starts a scheduled rotation when the active key is older than `rotate_after_days`.
/// Safe on every replica at once. Returns whether the key set changed.
pub async fn maintain_keys(
    store: &Store,
    master: &MasterKey,
    now_ms: i64,
    config: &crate::config::Config,
) -> Result<bool, KeyError> {
    let mut changed = false;
    // A retired key must verify every token it signed: the longest token lifetime,
    // and ID tokens also come back as `id_token_hint` at logout for as long as the
    // browser session lasts; plus five minutes for clock skew.
    let keep_ms = (config
        .oauth
        .access_token_ttl_seconds
        .max(config.oauth.id_token_ttl_seconds)
        .max(config.auth.session_ttl_seconds)
        + 300)
        * 1000;
    let due: Vec<(String, String)> = sqlx::query_as(
        "SELECT kid, alg FROM signing_keys WHERE status = 'next' AND activate_at <= $1",
    )
    .bind(now_ms)
    .fetch_all(store.reader())
    .await?;
    for (kid, alg) in due {
        let mut tx = store.begin().await?;
        sqlx::query("UPDATE signing_keys SET status = 'retired', retired_at = $1, drop_after = $2 WHERE alg = $3 AND status = 'active'")
            .bind(now_ms)
            .bind(now_ms + keep_ms)
            .bind(&alg)
            .execute(&mut *tx)
            .await?;
        let done = sqlx::query(
            "UPDATE signing_keys SET status = 'active' WHERE kid = $1 AND status = 'next'",
        )
        .bind(&kid)
        .execute(&mut *tx)
        .await?;
        if done.rows_affected() == 1 {
            tx.commit().await?;
            tracing::info!(kid = %kid, alg = %alg, "signing key activated; the previous one is retired");
            changed = true;
        }
    }
    let dropped =
        sqlx::query("DELETE FROM signing_keys WHERE status = 'retired' AND drop_after < $1")
            .bind(now_ms)
            .execute(store.writer())
            .await?;
    changed |= dropped.rows_affected() > 0;
    if config.keys.rotate_after_days > 0 {
        let cutoff = now_ms - config.keys.rotate_after_days * 86_400_000;
        let stale: Option<i64> = sqlx::query_scalar(
            "SELECT 1 FROM signing_keys a WHERE a.status = 'active' AND a.created_at < $1 AND NOT EXISTS (SELECT 1 FROM signing_keys n WHERE n.status = 'next' AND n.alg = a.alg) LIMIT 1",
        )
        .bind(cutoff)
        .fetch_optional(store.reader())
        .await?;
        if stale.is_some() {
            rotate_keys(
                store,
                master,
                now_ms,
                config.keys.publish_ahead_seconds,
                &Origin::system("key-rotation-schedule"),
            )
            .await?;
            changed = true;
        }
    }
    Ok(changed)
}

/// (kid, alg, status, created_at, activate_at, drop_after) for `hms-ach keys list`.
pub async fn list_keys(
    store: &Store,
) -> Result<Vec<(String, String, String, i64, Option<i64>, Option<i64>)>, KeyError> {
    Ok(sqlx::query_as("SELECT kid, alg, status, created_at, activate_at, drop_after FROM signing_keys ORDER BY created_at, alg")
        .fetch_all(store.reader())
        .await?)
}

/// A summary of the key set (ids and states): when it differs from the last one a
/// replica saw, another process rotated or promoted keys and the replica reloads.
pub async fn keys_fingerprint(store: &Store) -> Result<String, KeyError> {
    let rows: Vec<(String, String)> =
        sqlx::query_as("SELECT kid, status FROM signing_keys ORDER BY kid")
            .fetch_all(store.reader())
            .await?;
    Ok(rows
        .iter()
        .map(|(k, s)| format!("{k}:{s}"))
        .collect::<Vec<_>>()
        .join(","))
}
