//! Deletes what can no longer be used: expired codes, refresh tokens, grants,
//! pending requests, single-use JWT ids, old sessions, finished logout deliveries
//! and stale sign-in counters. Run by the background loop; safe on every replica.

use super::OidcError;
use crate::AppState;

const DAY_MS: i64 = 86_400_000;

pub async fn sweep_expired(app: &AppState) -> Result<u64, OidcError> {
    let now = app.clock().now_ms();
    let window = app.config().auth.failure_window_seconds * 1000;
    let t = &app.config().auth.throttle;
    // A sign-in count is of no use once both of its windows have passed.
    let backoff_keep =
        i64::try_from(t.forget_after.max(t.account_window).as_millis()).unwrap_or(i64::MAX / 2);
    // (statement, cutoff): each deletes rows whose time is before its cutoff.
    let steps: [(&str, i64); 15] = [
        ("DELETE FROM auth_requests WHERE expires_at < $1", now),
        ("DELETE FROM used_jtis WHERE expires_at < $1", now),
        ("DELETE FROM auth_codes WHERE expires_at < $1", now - 3_600_000),
        ("DELETE FROM refresh_tokens WHERE expires_at < $1", now),
        // A grant's codes and refresh tokens go with it (ON DELETE CASCADE).
        ("DELETE FROM grants WHERE expires_at < $1", now - DAY_MS),
        ("DELETE FROM sessions WHERE expires_at < $1 OR ended_at < $1", now - 7 * DAY_MS),
        ("DELETE FROM logout_deliveries WHERE (delivered_at IS NOT NULL OR failed_at IS NOT NULL) AND created_at < $1", now - 7 * DAY_MS),
        // Kept a day past their expiry so that a late answer is refused as timed out
        // (federation::pending::why_not_live), not as an unknown request.
        ("DELETE FROM saml_requests WHERE expires_at < $1", now - DAY_MS),
        ("DELETE FROM saml_assertions_seen WHERE expires_at < $1", now),
        ("DELETE FROM saml_idp_requests_seen WHERE expires_at < $1", now),
        ("DELETE FROM federated_signins WHERE expires_at < $1", now),
        ("DELETE FROM oidc_rp_requests WHERE expires_at < $1", now),
        ("DELETE FROM mfa_challenges WHERE expires_at < $1", now),
        ("DELETE FROM login_throttle WHERE first_failed < $1 AND (locked_until IS NULL OR locked_until < $1)", now - window),
        ("DELETE FROM signin_backoff WHERE last_failed < $1", now - backoff_keep),
    ];
    let mut removed = 0;
    for (sql, cutoff) in steps {
        removed += sqlx::query(sql)
            .bind(cutoff)
            .execute(app.store().writer())
            .await
            .map_err(OidcError::server_error)?
            .rows_affected();
    }
    Ok(removed)
}
