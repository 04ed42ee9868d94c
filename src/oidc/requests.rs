//! Pending authorization requests in the store (any replica may serve the next
//! step), including pushed ones (RFC 9126). The handle given to the browser or the
//! client is random; the store keeps only its keyed digest.

use super::authorize::AuthRequest;
use super::OAuthError;
use crate::AppState;

/// The `request_uri` prefix of pushed requests (RFC 9126 §2.2).
pub const PAR_PREFIX: &str = "urn:ietf:params:oauth:request_uri:";

pub async fn save_request(
    app: &AppState,
    req: &AuthRequest,
    pushed: bool,
) -> Result<String, OAuthError> {
    let now = app.clock().now_ms();
    let cfg = &app.config().oauth;
    let ttl = if pushed {
        cfg.par_ttl_seconds
    } else {
        cfg.auth_request_ttl_seconds
    };
    let handle = super::random_token(24);
    let mut tx = app
        .store()
        .begin()
        .await
        .map_err(OAuthError::server_error)?;
    sqlx::query("INSERT INTO auth_requests (id, client_id, params, pushed, created_at, expires_at) VALUES ($1, $2, $3, $4, $5, $6)")
        .bind(app.master_key().digest_secret(&handle))
        .bind(&req.client_id)
        .bind(serde_json::to_string(req).map_err(OAuthError::server_error)?)
        .bind(i64::from(pushed))
        .bind(now)
        .bind(now + ttl * 1000)
        .execute(&mut *tx)
        .await
        .map_err(OAuthError::server_error)?;
    tx.commit().await.map_err(OAuthError::server_error)?;
    Ok(handle)
}

/// A live request by handle; `pushed` selects PAR requests (single use: taking one
/// deletes it, RFC 9126 §4).
pub async fn load_request(
    app: &AppState,
    handle: &str,
    pushed: bool,
) -> Result<Option<AuthRequest>, OAuthError> {
    if handle.is_empty() || handle.len() > 100 {
        return Ok(None);
    }
    let id = app.master_key().digest_secret(handle);
    let now = app.clock().now_ms();
    // A pushed request is taken and deleted in one statement: two replicas cannot
    // both use it (RFC 9126 §4: single use).
    let sql = if pushed {
        "DELETE FROM auth_requests WHERE id = $1 AND pushed = 1 AND expires_at > $2 RETURNING params"
    } else {
        "SELECT params FROM auth_requests WHERE id = $1 AND pushed = 0 AND expires_at > $2"
    };
    let pool = if pushed {
        app.store().writer()
    } else {
        app.store().reader()
    };
    let row: Option<String> = sqlx::query_scalar(sql)
        .bind(&id)
        .bind(now)
        .fetch_optional(pool)
        .await
        .map_err(OAuthError::server_error)?;
    row.map(|text| serde_json::from_str(&text).map_err(OAuthError::server_error))
        .transpose()
}

pub async fn update_request(
    app: &AppState,
    handle: &str,
    req: &AuthRequest,
) -> Result<(), OAuthError> {
    sqlx::query("UPDATE auth_requests SET params = $1 WHERE id = $2")
        .bind(serde_json::to_string(req).map_err(OAuthError::server_error)?)
        .bind(app.master_key().digest_secret(handle))
        .execute(app.store().writer())
        .await
        .map_err(OAuthError::server_error)?;
    Ok(())
}

pub async fn drop_request(app: &AppState, handle: &str) -> Result<(), OAuthError> {
    sqlx::query("DELETE FROM auth_requests WHERE id = $1")
        .bind(app.master_key().digest_secret(handle))
        .execute(app.store().writer())
        .await
        .map_err(OAuthError::server_error)?;
    Ok(())
}
