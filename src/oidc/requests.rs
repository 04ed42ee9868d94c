//! OpenID Connect's side of the pending sign-in (`authn::pending`): an authorization
//! request is kept as a pending sign-in continued as OIDC, including pushed ones
//! (RFC 9126), and read back as an [`AuthRequest`]. Storage, handles and the browser
//! binding (issue 14) are authentication's.

use super::authorize_request::AuthRequest;
use super::OidcError;
use crate::authn;
use crate::AppState;

/// The `request_uri` prefix of pushed requests (RFC 9126 §2.2).
pub const PAR_PREFIX: &str = "urn:ietf:params:oauth:request_uri:";

/// A pushed request (`pushed`), or a browser's request that came by a cross-site POST
/// and is claimed by the same-site GET it is sent on to (`authn::claim_pending`).
pub async fn save_request(
    app: &AppState,
    req: &AuthRequest,
    pushed: bool,
) -> Result<String, OidcError> {
    authn::save_pending(app, &req.to_pending()?, pushed)
        .await
        .map_err(OidcError::server_error)
}

/// A browser's request, bound to the browser whose binding cookie is `binding`.
pub async fn save_bound_request(
    app: &AppState,
    req: &AuthRequest,
    binding: &str,
) -> Result<String, OidcError> {
    authn::save_bound_pending(app, &req.to_pending()?, binding)
        .await
        .map_err(OidcError::server_error)
}

/// A live OpenID Connect request by handle; `pushed` selects PAR requests (single
/// use: taking one deletes it, RFC 9126 §4). A SAML sign-in is not one.
pub async fn load_request(
    app: &AppState,
    handle: &str,
    pushed: bool,
) -> Result<Option<AuthRequest>, OidcError> {
    let found = authn::load_pending(app, handle, pushed)
        .await
        .map_err(OidcError::server_error)?;
    match found {
        Some(p) if p.protocol == authn::Protocol::Oidc => Ok(Some(AuthRequest::from_pending(&p)?)),
        _ => Ok(None),
    }
}

/// Stores the changed request (the person consented, chose an account…).
pub async fn update_request(
    app: &AppState,
    handle: &str,
    req: &AuthRequest,
) -> Result<(), OidcError> {
    authn::update_pending(app, handle, &req.to_pending()?)
        .await
        .map_err(OidcError::server_error)
}

/// The request is answered: it cannot be used again.
pub async fn drop_request(app: &AppState, handle: &str) -> Result<(), OidcError> {
    authn::drop_pending(app, handle)
        .await
        .map_err(OidcError::server_error)
}
