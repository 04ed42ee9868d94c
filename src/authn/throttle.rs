//! Lockout of second-factor codes and of the current password on the change-password
//! page (both need a password or a session first): failures per key in the store
//! (all replicas see them). Passwords at sign-in are slowed instead, never locked
//! (`authn::backoff`). Also a per-replica limit of attempts per source address and
//! minute, against floods.

use std::collections::HashMap;
use std::sync::Mutex;

use super::AuthnError;
use crate::audit::Origin;
use crate::store::Store;
use crate::AppState;

/// The throttle key of a sign-in name: keyed so the table holds no usernames.
pub(super) fn login_key(app: &AppState, login: &str) -> String {
    app.master_key()
        .digest_secret(&format!("login:{}", login.trim().to_lowercase()))
}

/// Counts an attempt before the password is checked, in one statement, so a burst of
/// concurrent guesses (or several replicas) cannot all slip under the limit: once
/// `max_failures` attempts are counted and not yet cleared by a success, further
/// ones are refused unchecked (`Busy`). Only failures that happened lock the name
/// (`record_failure`), so a burst of correct sign-ins to a shared account is slowed,
/// never locked out.
pub(super) async fn reserve_attempt(app: &AppState, key: &str, now: i64) -> Result<(), AuthnError> {
    let cfg = &app.config().auth;
    let window_start = now - cfg.failure_window_seconds * 1000;
    let (failures, locked_until): (i64, Option<i64>) = sqlx::query_as(
        "INSERT INTO login_throttle (key, failures, first_failed, locked_until) VALUES ($1, 1, $2, NULL) \
         ON CONFLICT (key) DO UPDATE SET \
           failures = CASE WHEN login_throttle.first_failed >= $3 THEN login_throttle.failures + 1 ELSE 1 END, \
           first_failed = CASE WHEN login_throttle.first_failed >= $3 THEN login_throttle.first_failed ELSE $2 END \
         RETURNING failures, locked_until",
    )
    .bind(key)
    .bind(now)
    .bind(window_start)
    .fetch_one(app.store().writer())
    .await?;
    let minutes = |until: i64| ((until - now) + 59_999) / 60_000;
    if let Some(until) = locked_until.filter(|u| *u > now) {
        return Err(AuthnError::Locked {
            minutes: minutes(until),
        });
    }
    if failures > cfg.max_failures {
        return Err(AuthnError::Busy);
    }
    Ok(())
}

/// After a failed check: locks the name when this was the last allowed attempt, and
/// then tells `person` (when the key is a person's) by email, in the lock's
/// transaction. Returns whether it is locked now.
pub(super) async fn record_failure(
    app: &AppState,
    key: &str,
    now: i64,
    person: Option<(&str, &Origin)>,
) -> Result<bool, AuthnError> {
    let cfg = &app.config().auth;
    let failures: Option<i64> =
        sqlx::query_scalar("SELECT failures FROM login_throttle WHERE key = $1")
            .bind(key)
            .fetch_optional(app.store().writer())
            .await?;
    if failures.unwrap_or(0) >= cfg.max_failures {
        lock(app, key, now + cfg.lockout_seconds * 1000, person).await?;
        return Ok(true);
    }
    Ok(false)
}

async fn lock(
    app: &AppState,
    key: &str,
    until: i64,
    person: Option<(&str, &Origin)>,
) -> Result<(), AuthnError> {
    let mut tx = app.store().begin().await?;
    sqlx::query("UPDATE login_throttle SET locked_until = $1, failures = 0 WHERE key = $2")
        .bind(until)
        .bind(key)
        .execute(&mut *tx)
        .await?;
    if let Some((person_id, origin)) = person {
        // One lock, one email: the lock's end names it.
        let notice = crate::mail::SecurityNotice {
            template: crate::mail::Template::AccountLocked,
            person_id,
            change_id: until,
            source_ip: origin.meta.source_ip.as_deref(),
            details: serde_json::json!({ "reason": "codes" }),
        };
        crate::mail::notify_person(&mut tx, app.clock().now(), notice).await?;
    }
    tx.commit().await.map_err(crate::store::StoreError::from)?;
    Ok(())
}

pub(super) async fn clear(store: &Store, key: &str) -> Result<(), AuthnError> {
    sqlx::query("DELETE FROM login_throttle WHERE key = $1")
        .bind(key)
        .execute(store.writer())
        .await?;
    Ok(())
}

/// Attempts per source address in the current minute (fixed window, this replica).
#[derive(Default)]
pub struct IpThrottle {
    window: Mutex<(i64, HashMap<String, u32>)>,
}

impl IpThrottle {
    pub fn allow(&self, ip: &str, now_ms: i64, per_minute: u32) -> bool {
        let minute = now_ms.div_euclid(60_000);
        let Ok(mut w) = self.window.lock() else {
            return true;
        };
        if w.0 != minute {
            *w = (minute, HashMap::new());
        }
        let n = w.1.entry(ip.to_string()).or_insert(0);
        *n += 1;
        *n <= per_minute
    }
}
