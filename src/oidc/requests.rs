//! Pending authorization requests in the store (any replica may serve the next
//! step), including pushed ones (RFC 9126). The handle given to the browser or the
//! client is random; the store keeps only its keyed digest.
//!
//! A request the browser sees is bound to that browser (issue 14): its row keeps the
//! keyed digest of the browser's binding cookie (`web::cookies`), and every step reads
//! it through [`load_bound_request`], so someone else holding the handle (it is in the
//! `/login` and `/consent` URLs) can neither finish nor change it.

use super::authorize::AuthRequest;
use super::OidcError;
use crate::AppState;

/// The `request_uri` prefix of pushed requests (RFC 9126 §2.2).
pub const PAR_PREFIX: &str = "urn:ietf:params:oauth:request_uri:";

/// A pushed request (`pushed`), or a browser's request not yet bound to a browser:
/// one that came by a cross-site POST, which carries no SameSite=Lax cookie, and is
/// claimed by the same-site GET it is sent on to ([`claim_request`]).
pub async fn save_request(
    app: &AppState,
    req: &AuthRequest,
    pushed: bool,
) -> Result<String, OidcError> {
    insert_request(app, req, pushed, None).await
}

/// A browser's request, bound to the browser whose binding cookie is `binding`.
pub async fn save_bound_request(
    app: &AppState,
    req: &AuthRequest,
    binding: &str,
) -> Result<String, OidcError> {
    let digest = binding_digest(app, binding);
    insert_request(app, req, false, Some(&digest)).await
}

/// The keyed digest of a browser binding (the store never sees the cookie itself).
fn binding_digest(app: &AppState, binding: &str) -> String {
    app.master_key()
        .digest_secret(&format!("browser-binding:{binding}"))
}

async fn insert_request(
    app: &AppState,
    req: &AuthRequest,
    pushed: bool,
    browser_digest: Option<&str>,
) -> Result<String, OidcError> {
    let now = app.clock().now_ms();
    let cfg = &app.config().oauth;
    let ttl = if pushed {
        cfg.par_ttl_seconds
    } else {
        cfg.auth_request_ttl_seconds
    };
    let handle = crate::crypto::random_token(24);
    let mut tx = app.store().begin().await.map_err(OidcError::server_error)?;
    sqlx::query("INSERT INTO auth_requests (id, client_id, params, pushed, created_at, expires_at, browser_digest) VALUES ($1, $2, $3, $4, $5, $6, $7)")
        .bind(app.master_key().digest_secret(&handle))
        .bind(&req.client_id)
        .bind(serde_json::to_string(req).map_err(OidcError::server_error)?)
        .bind(i64::from(pushed))
        .bind(now)
        .bind(now + ttl * 1000)
        .bind(browser_digest)
        .execute(&mut *tx)
        .await
        .map_err(OidcError::server_error)?;
    tx.commit().await.map_err(OidcError::server_error)?;
    Ok(handle)
}

/// A live request by handle; `pushed` selects PAR requests (single use: taking one
/// deletes it, RFC 9126 §4). For a browser's request this does not check the
/// binding: pages use [`load_bound_request`].
pub async fn load_request(
    app: &AppState,
    handle: &str,
    pushed: bool,
) -> Result<Option<AuthRequest>, OidcError> {
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
        .map_err(OidcError::server_error)?;
    row.map(|text| serde_json::from_str(&text).map_err(OidcError::server_error))
        .transpose()
}

/// A browser's pending request, as this browser may see it.
#[derive(Debug)]
pub enum BoundRequest {
    Found(Box<AuthRequest>),
    /// Expired, finished or never issued.
    Gone,
    /// Live, but started in another browser (or one whose cookies were cleared since),
    /// or not yet claimed: refused, and left as it is for its own browser.
    OtherBrowser,
}

/// A live (not pushed) request, if it is bound to this browser's `binding` cookie.
/// The digests are compared in constant time.
pub async fn load_bound_request(
    app: &AppState,
    handle: &str,
    binding: Option<&str>,
) -> Result<BoundRequest, OidcError> {
    if handle.is_empty() || handle.len() > 100 {
        return Ok(BoundRequest::Gone);
    }
    let row: Option<(String, Option<String>)> = sqlx::query_as(
        "SELECT params, browser_digest FROM auth_requests WHERE id = $1 AND pushed = 0 AND expires_at > $2",
    )
    .bind(app.master_key().digest_secret(handle))
    .bind(app.clock().now_ms())
    .fetch_optional(app.store().reader())
    .await
    .map_err(OidcError::server_error)?;
    let Some((params, stored)) = row else {
        return Ok(BoundRequest::Gone);
    };
    let ours = match (binding, stored.as_deref()) {
        (Some(b), Some(stored)) => {
            crate::crypto::constant_time_eq(binding_digest(app, b).as_bytes(), stored.as_bytes())
        }
        _ => false,
    };
    if !ours {
        return Ok(BoundRequest::OtherBrowser);
    }
    let req = serde_json::from_str(&params).map_err(OidcError::server_error)?;
    Ok(BoundRequest::Found(Box::new(req)))
}

/// Binds a request saved unbound (see [`save_request`]) to this browser; one
/// statement, so only the first browser to arrive gets it. False when it is gone or
/// already bound (to this browser or another: the caller then loads it bound).
pub async fn claim_request(app: &AppState, handle: &str, binding: &str) -> Result<bool, OidcError> {
    if handle.is_empty() || handle.len() > 100 {
        return Ok(false);
    }
    let done = sqlx::query(
        "UPDATE auth_requests SET browser_digest = $1 WHERE id = $2 AND pushed = 0 AND browser_digest IS NULL AND expires_at > $3",
    )
    .bind(binding_digest(app, binding))
    .bind(app.master_key().digest_secret(handle))
    .bind(app.clock().now_ms())
    .execute(app.store().writer())
    .await
    .map_err(OidcError::server_error)?;
    Ok(done.rows_affected() == 1)
}

pub async fn update_request(
    app: &AppState,
    handle: &str,
    req: &AuthRequest,
) -> Result<(), OidcError> {
    sqlx::query("UPDATE auth_requests SET params = $1 WHERE id = $2")
        .bind(serde_json::to_string(req).map_err(OidcError::server_error)?)
        .bind(app.master_key().digest_secret(handle))
        .execute(app.store().writer())
        .await
        .map_err(OidcError::server_error)?;
    Ok(())
}

pub async fn drop_request(app: &AppState, handle: &str) -> Result<(), OidcError> {
    sqlx::query("DELETE FROM auth_requests WHERE id = $1")
        .bind(app.master_key().digest_secret(handle))
        .execute(app.store().writer())
        .await
        .map_err(OidcError::server_error)?;
    Ok(())
}
