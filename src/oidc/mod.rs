//! The OAuth 2.0 / OpenID Provider: the client registry, signing keys (encrypted at
//! rest, published as a JWKS), and the token endpoint.
//!
//! Issue #2 covers the `client_credentials` grant for API clients; the browser flows
//! (authorization code, refresh, ID tokens) build on the same keys and registry.

mod client_cache;
mod clients;
mod error;
mod http;
mod jwt;
mod keys;
mod master_key;
mod token;

pub use client_cache::ClientCache;
pub use clients::{
    create_client, delete_client, list_clients, rotate_secret, Client, ClientView, NewClient,
    SUPPORTED_GRANTS,
};
pub use error::{ClientError, KeyError, OAuthError};
pub use jwt::{sign as sign_jwt, verify_access_token, AccessClaims};
pub use keys::Alg;
pub use keys::{ensure_keys, load_keyring, KeyRing};
pub use master_key::MasterKey;
pub use token::{issue_token, TokenRequest, TokenResponse};

pub fn router() -> axum::Router<crate::AppState> {
    http::router()
}
