//! Signing out: ending browser sessions, revoking their grants, RP-initiated logout
//! (OIDC RP-Initiated Logout 1.0 §2-3) and back-channel logout tokens (OIDC
//! Back-Channel Logout 1.0 §2.4-2.7) delivered with retries by a background worker.

use super::jwt;
use super::keys::Alg;
use super::OidcError;
use crate::audit::{self, Entry, Origin, Outcome};
use crate::AppState;

/// Ends sessions (one, or all of a person's), revokes their non-offline grants and
/// queues back-channel logout tokens, in one transaction.
pub async fn sign_out(
    app: &AppState,
    person_id: &str,
    session: Option<&str>,
    origin: &Origin,
) -> Result<usize, OidcError> {
    let now = app.clock().now_ms();
    let mut tx = app.store().begin().await.map_err(OidcError::server_error)?;
    let ended: Vec<String> = match session {
        Some(id) => {
            if crate::authn::end_session(&mut tx, id, now)
                .await
                .map_err(OidcError::server_error)?
            {
                vec![id.to_string()]
            } else {
                vec![]
            }
        }
        None => crate::authn::end_all_sessions(&mut tx, person_id, now)
            .await
            .map_err(OidcError::server_error)?,
    };
    for sid in &ended {
        let clients = super::grants_repo::revoke_session_grants(&mut tx, sid, now).await?;
        for client_id in clients {
            let Some(client) = app
                .clients()
                .get(app.store(), &client_id, now)
                .await
                .map_err(OidcError::server_error)?
            else {
                continue;
            };
            let Some(uri) = client.settings.backchannel_logout_uri.clone() else {
                continue;
            };
            let token = logout_token(app, &client_id, person_id, sid)?;
            sqlx::query("INSERT INTO logout_deliveries (id, client_id, uri, logout_token, attempts, next_attempt_at, created_at) VALUES ($1, $2, $3, $4, 0, $5, $5)")
                .bind(crate::store::new_id())
                .bind(&client_id)
                .bind(&uri)
                .bind(&token)
                .bind(now)
                .execute(&mut *tx)
                .await
                .map_err(OidcError::server_error)?;
        }
    }
    if !ended.is_empty() {
        audit::record(
            &mut tx,
            app.audit_key(),
            now,
            origin,
            Entry {
                action: "auth.signout",
                outcome: Outcome::Success,
                target_kind: "person",
                target_id: person_id,
                details: serde_json::json!({ "sessions": ended }),
            },
        )
        .await
        .map_err(OidcError::server_error)?;
    }
    tx.commit().await.map_err(OidcError::server_error)?;
    Ok(ended.len())
}

/// §2.4: iss, aud, iat, exp, jti, events, sid and sub; never a nonce. Valid for an
/// hour: longer than the delivery retries (about 15 minutes) take.
fn logout_token(
    app: &AppState,
    client_id: &str,
    sub: &str,
    sid: &str,
) -> Result<String, OidcError> {
    let now = app.clock().now_secs();
    let claims = serde_json::json!({
        "iss": app.issuer(), "aud": client_id, "iat": now, "exp": now + 3600, "jti": crate::store::new_id(),
        "sub": sub, "sid": sid, "events": { "http://schemas.openid.net/event/backchannel-logout": {} },
    });
    let alg = Alg::Rs256;
    let signer = app.keys().signer(alg).map_err(OidcError::server_error)?;
    jwt::sign(&signer, "logout+jwt", &claims).map_err(OidcError::server_error)
}

/// Delivers due back-channel logout tokens: POST `logout_token=…` (§2.5), retried
/// with backoff (1 min, 2, 4 … up to 5 attempts) on errors and non-2xx answers.
pub async fn deliver_logouts(app: &AppState, http: &reqwest::Client) -> Result<usize, OidcError> {
    let now = app.clock().now_ms();
    // Claim a batch by pushing its next attempt out: another replica skips it.
    let due: Vec<(String, String, String, i64)> = sqlx::query_as(
        "SELECT id, uri, logout_token, attempts FROM logout_deliveries WHERE delivered_at IS NULL AND failed_at IS NULL AND next_attempt_at <= $1 ORDER BY next_attempt_at LIMIT 20",
    )
    .bind(now)
    .fetch_all(app.store().reader())
    .await
    .map_err(OidcError::server_error)?;
    let mut delivered = 0;
    for (id, uri, token, attempts) in due {
        let claimed = sqlx::query("UPDATE logout_deliveries SET next_attempt_at = $1 WHERE id = $2 AND next_attempt_at <= $3 AND delivered_at IS NULL")
            .bind(now + 30_000)
            .bind(&id)
            .bind(now)
            .execute(app.store().writer())
            .await
            .map_err(OidcError::server_error)?;
        if claimed.rows_affected() != 1 {
            continue;
        }
        let result = http
            .post(&uri)
            .form(&[("logout_token", token.as_str())])
            .send()
            .await;
        let outcome = match result {
            Ok(r) if r.status().is_success() => Ok(()),
            Ok(r) => Err(format!("HTTP {}", r.status().as_u16())),
            Err(err) => Err(err.without_url().to_string()),
        };
        let now = app.clock().now_ms();
        match outcome {
            Ok(()) => {
                delivered += 1;
                crate::ops::metrics::oidc_event("backchannel_logout_delivered");
                sqlx::query(
                    "UPDATE logout_deliveries SET delivered_at = $1, attempts = $2 WHERE id = $3",
                )
                .bind(now)
                .bind(attempts + 1)
                .bind(&id)
                .execute(app.store().writer())
                .await
                .map_err(OidcError::server_error)?;
            }
            Err(why) => {
                let attempts = attempts + 1;
                let give_up = attempts >= 5;
                tracing::warn!(delivery = %id, attempts, error = %why, "back-channel logout delivery failed");
                crate::ops::metrics::oidc_event(if give_up {
                    "backchannel_logout_failed"
                } else {
                    "backchannel_logout_retry"
                });
                sqlx::query("UPDATE logout_deliveries SET attempts = $1, last_error = $2, next_attempt_at = $3, failed_at = $4 WHERE id = $5")
                    .bind(attempts)
                    .bind(why.chars().take(300).collect::<String>())
                    .bind(now + 60_000 * (1i64 << (attempts - 1).min(4)))
                    .bind(give_up.then_some(now))
                    .bind(&id)
                    .execute(app.store().writer())
                    .await
                    .map_err(OidcError::server_error)?;
            }
        }
    }
    Ok(delivered)
}
