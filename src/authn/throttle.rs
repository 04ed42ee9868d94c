//! Sign-in throttling: failures per username in the store (all replicas see them),
//! and a per-replica limit per source address against password spraying.

use std::collections::HashMap;
use std::sync::Mutex;

use super::AuthnError;
use crate::store::Store;
use crate::AppState;

/// The throttle key of a sign-in name: keyed so the table holds no usernames.
pub(super) fn login_key(app: &AppState, login: &str) -> String {
    app.master_key()
        .digest_secret(&format!("login:{}", login.trim().to_lowercase()))
}

pub(super) async fn locked_until(
    store: &Store,
    key: &str,
    now: i64,
) -> Result<Option<i64>, AuthnError> {
    let until: Option<Option<i64>> =
        sqlx::query_scalar("SELECT locked_until FROM login_throttle WHERE key = $1")
            .bind(key)
            .fetch_optional(store.reader())
            .await?;
    Ok(until.flatten().filter(|u| *u > now))
}

/// Counts a failure; returns whether the name is now locked.
pub(super) async fn record_failure(
    app: &AppState,
    key: &str,
    now: i64,
) -> Result<bool, AuthnError> {
    let cfg = &app.config().auth;
    let window_start = now - cfg.failure_window_seconds * 1000;
    let mut tx = app.store().begin().await?;
    let row: Option<(i64, i64)> =
        sqlx::query_as("SELECT failures, first_failed FROM login_throttle WHERE key = $1")
            .bind(key)
            .fetch_optional(&mut *tx)
            .await?;
    let (failures, first) = match row {
        Some((f, first)) if first >= window_start => (f + 1, first),
        _ => (1, now),
    };
    let locked = failures >= cfg.max_failures;
    let until = locked.then_some(now + cfg.lockout_seconds * 1000);
    sqlx::query("DELETE FROM login_throttle WHERE key = $1")
        .bind(key)
        .execute(&mut *tx)
        .await?;
    sqlx::query("INSERT INTO login_throttle (key, failures, first_failed, locked_until) VALUES ($1, $2, $3, $4)")
        .bind(key)
        .bind(if locked { 0 } else { failures })
        .bind(first)
        .bind(until)
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok(locked)
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
