//! Grants: what a person allowed a client, and what hangs off it (authorization
//! codes, refresh-token families and, by their `gid` claim, access tokens). Revoking
//! a grant revokes all of them; that is what a replayed code (RFC 6749 §4.1.2) or a
//! reused refresh token (RFC 9700 §4.14.2) triggers. The SQL is in `grants_repo.rs`.

use super::grants_repo;
use super::OidcError;
use crate::AppState;

/// The same person signed in again in the same browser: their grants follow them to
/// the new session, and the old session ends quietly (no logout for the apps).
/// (Takes the `AppState` because the sign-in page calls it so.)
pub async fn move_session_grants(app: &AppState, old: &str, new: &str) -> Result<(), OidcError> {
    let now = app.clock().now_ms();
    let mut tx = app.store().begin().await?;
    grants_repo::move_to_session(&mut tx, old, new).await?;
    crate::authn::end_session(&mut tx, old, now)
        .await
        .map_err(OidcError::server_error)?;
    tx.commit().await.map_err(OidcError::server_error)?;
    Ok(())
}
