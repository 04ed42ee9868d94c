//! The OAuth 2.0 / OpenID Provider: the client registry, signing keys (encrypted at
//! rest, rotated, published as a JWKS), the authorization and token endpoints,
//! UserInfo, introspection, revocation, PAR, DPoP and logout.

mod admin_http;
mod authorize;
mod authorize_http;
mod authorize_request;
mod claims;
mod claims_request;
mod client_admin;
mod client_auth;
mod client_cache;
mod clients;
mod clients_repo;
mod consent;
mod discovery;
mod dpop;
mod end_session;
mod error;
mod error_response;
mod grants;
mod grants_repo;
mod http;
mod id_token_hint;
mod jwt;
mod keys;
mod liveness;
mod logout;
mod par;
mod pkce;
mod refresh;
mod refresh_writer;
mod registration;
mod requests;
mod resource;
mod rotation;
mod sweep;
mod token;
mod verified;

pub use authorize::{decide, refusal_error, Next};
pub(crate) use authorize_http::{continue_oidc, respond};
pub use authorize_request::{
    refuse_request_uri, validate_request, AuthRequest, AuthResponse, AuthorizeError,
};
pub use client_cache::ClientCache;
pub use clients::{
    create_client, delete_client, list_clients, rotate_secret, Client, ClientView, NewClient,
};
pub use consent::{granted_scopes, list_consents, remember_consent, revoke_consent, ConsentView};
pub use error::{error_description, ClientError, KeyError, OAuthCode, OidcError};
pub use error_response::OAuthError;
pub use grants::move_session_grants;
pub use id_token_hint::{verify_id_token_hint, Hint};
pub use jwt::{at_hash, sign as sign_jwt, verify_access_token, AccessClaims, TokenRejection};
pub use keys::Alg;
pub use keys::{ensure_keys, load_keyring, KeyRing};
pub use liveness::LivenessChecker;
pub use logout::{deliver_logouts, sign_out};
pub use refresh_writer::RefreshWriter;
pub use registration::{ClientSettings, OIDC_SCOPES, SUPPORTED_GRANTS};
pub use requests::{
    drop_request, load_request, save_bound_request, save_request, update_request, PAR_PREFIX,
};
pub use resource::userinfo_audience;
pub use rotation::{keys_fingerprint, list_keys, maintain_keys, rotate_keys};
pub use sweep::sweep_expired;
pub use token::{issue_token, TokenRequest, TokenResponse};
pub use verified::VerifiedTokens;

pub fn router() -> axum::Router<crate::AppState> {
    http::router()
        .merge(authorize_http::router())
        .merge(end_session::router())
        .merge(admin_http::router())
}
