//! Upstream OpenID Connect: the hub as a relying party of the district's Google
//! Workspace, Microsoft Entra ID, Okta or any provider with OpenID Connect Discovery.
//!
//! The round trip (OpenID Connect Core §3.1, authorization code flow):
//! 1. `begin`: a random state, nonce and PKCE verifier are stored (the state as a
//!    digest, the other two sealed under the master key) with a digest of a random
//!    value set in a cookie of this browser; the browser goes to the provider.
//! 2. `callback`: the provider sends the browser back with a code and the state (a
//!    same-site top-level GET, so the SameSite=Lax binding cookie comes along). The
//!    cookie must match, the request is taken once, the issuer is checked (RFC 9207),
//!    the code is exchanged with the verifier (RFC 7636), the ID token is validated
//!    (Core §3.1.3.7) and restricted (`hd`, `tid`), and the person is linked.

mod http;
mod id_token;
mod pending;
mod signin;

use openidconnect::core::{
    CoreAuthDisplay, CoreClaimName, CoreClaimType, CoreClientAuthMethod, CoreGrantType,
    CoreJsonWebKey, CoreJsonWebKeySet, CoreJweContentEncryptionAlgorithm,
    CoreJweKeyManagementAlgorithm, CoreResponseMode, CoreResponseType, CoreSubjectIdentifierType,
};
use openidconnect::{AdditionalProviderMetadata, IssuerUrl, ProviderMetadata};
use serde::{Deserialize, Serialize};
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, RwLock};

pub use http::UpstreamHttp;
pub use signin::{begin, callback, CallbackParams};

use super::FederationError;
use crate::config::OidcIdpConfig;

/// Discovery fields the core types do not carry.
#[derive(Clone, Debug, Default, Deserialize, Serialize)]
pub struct ExtraMetadata {
    /// RFC 9207 §3: the provider puts `iss` in every authorization response.
    #[serde(default)]
    pub authorization_response_iss_parameter_supported: Option<bool>,
}
impl AdditionalProviderMetadata for ExtraMetadata {}

pub type Metadata = ProviderMetadata<
    ExtraMetadata,
    CoreAuthDisplay,
    CoreClientAuthMethod,
    CoreClaimName,
    CoreClaimType,
    CoreGrantType,
    CoreJweContentEncryptionAlgorithm,
    CoreJweKeyManagementAlgorithm,
    CoreJsonWebKey,
    CoreResponseMode,
    CoreResponseType,
    CoreSubjectIdentifierType,
>;

/// A provider's keys are fetched again on an unknown `kid` at most this often, so a
/// stream of forged tokens cannot make the hub hammer the provider.
const JWKS_REFETCH_MS: i64 = 60_000;

/// One configured upstream OpenID Provider and its current discovery document + keys.
pub struct OidcIdp {
    pub config: OidcIdpConfig,
    /// `{hub issuer}/login/oidc/{id}/callback`, registered at the provider; sent and
    /// compared exactly (RFC 6749 §3.1.2, §4.1.3).
    pub redirect_uri: String,
    client_secret: String,
    loaded: RwLock<Option<Arc<Metadata>>>,
    next_refresh_ms: AtomicI64,
    last_jwks_fetch_ms: AtomicI64,
}

impl std::fmt::Debug for OidcIdp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OidcIdp")
            .field("id", &self.config.id)
            .field("client_secret", &"<redacted>")
            .finish_non_exhaustive()
    }
}

impl OidcIdp {
    /// Reads the client secret; the discovery document comes with `refresh_due`.
    pub fn new(config: &OidcIdpConfig, hub_issuer: &str) -> Result<OidcIdp, FederationError> {
        let client_secret = config.client_secret().map_err(|m| {
            FederationError::Credentials(format!("federation.oidc_idps {}: {m}", config.id))
        })?;
        Ok(OidcIdp {
            redirect_uri: format!("{hub_issuer}/login/oidc/{}/callback", config.id),
            config: config.clone(),
            client_secret,
            loaded: RwLock::new(None),
            next_refresh_ms: AtomicI64::new(0),
            last_jwks_fetch_ms: AtomicI64::new(0),
        })
    }

    pub(crate) fn metadata(&self) -> Option<Arc<Metadata>> {
        match self.loaded.read() {
            Ok(l) => l.clone(),
            Err(p) => p.into_inner().clone(),
        }
    }

    fn set(&self, m: Metadata) {
        let mut slot = match self.loaded.write() {
            Ok(s) => s,
            Err(p) => p.into_inner(),
        };
        *slot = Some(Arc::new(m));
    }

    pub fn is_ready(&self) -> bool {
        self.metadata().is_some()
    }

    /// Reads the discovery document (and with it the JWKS) when its time has come; a
    /// failure keeps the copy in use, and with none, tries again in a minute.
    pub async fn refresh_due(&self, http: &UpstreamHttp, now_ms: i64) {
        if self.next_refresh_ms.load(Ordering::Relaxed) > now_ms {
            return;
        }
        let period = self.config.discovery_refresh_minutes as i64 * 60_000;
        self.next_refresh_ms
            .store(now_ms + period, Ordering::Relaxed);
        match self.discover(http).await {
            Ok(m) => {
                tracing::info!(idp = %self.config.id, issuer = %self.config.issuer, "OpenID Provider discovery loaded");
                crate::ops::metrics::oidc_discovery_loaded(&self.config.id, now_ms);
                self.last_jwks_fetch_ms.store(now_ms, Ordering::Relaxed);
                self.set(m);
            }
            Err(e) => {
                tracing::error!(idp = %self.config.id, error = %e, "OpenID Provider discovery failed");
                if !self.is_ready() {
                    self.next_refresh_ms
                        .store(now_ms + 60_000, Ordering::Relaxed);
                }
            }
        }
    }

    /// OpenID Connect Discovery 1.0 §4: the document's `issuer` must be exactly the
    /// configured one (the library checks it, §4.3), and every endpoint must be https
    /// like the issuer (plain http only for a loopback issuer).
    async fn discover(&self, http: &UpstreamHttp) -> Result<Metadata, FederationError> {
        let bad = |m: String| FederationError::BadMetadata(m);
        let issuer =
            IssuerUrl::new(self.config.issuer.clone()).map_err(|e| bad(format!("issuer: {e}")))?;
        let m = Metadata::discover_async(issuer, http)
            .await
            .map_err(|e| bad(format!("discovery at {}: {e}", self.config.issuer)))?;
        let loopback_http = self.config.issuer.starts_with("http://");
        let token = m
            .token_endpoint()
            .ok_or_else(|| bad("the provider has no token_endpoint".into()))?;
        for url in [
            m.authorization_endpoint().url(),
            token.url(),
            m.jwks_uri().url(),
        ] {
            let ok = url.scheme() == "https"
                || (loopback_http
                    && url.scheme() == "http"
                    && matches!(url.host_str(), Some("127.0.0.1" | "localhost" | "[::1]")));
            if !ok {
                return Err(bad(format!("endpoint {url} is not https")));
            }
        }
        if !m
            .response_types_supported()
            .iter()
            .any(|r| r.len() == 1 && r[0] == CoreResponseType::Code)
        {
            return Err(bad("the provider does not offer response_type=code".into()));
        }
        Ok(m)
    }

    /// Fetches the JWKS again (an ID token names a key we do not have: the provider
    /// rolled its keys), at most once a minute. Returns whether new keys were loaded.
    async fn refetch_keys(&self, http: &UpstreamHttp, now_ms: i64) -> bool {
        let last = self.last_jwks_fetch_ms.load(Ordering::Relaxed);
        if now_ms - last < JWKS_REFETCH_MS {
            return false;
        }
        self.last_jwks_fetch_ms.store(now_ms, Ordering::Relaxed);
        let Some(current) = self.metadata() else {
            return false;
        };
        match CoreJsonWebKeySet::fetch_async(current.jwks_uri(), http).await {
            Ok(jwks) => {
                tracing::info!(idp = %self.config.id, "OpenID Provider keys reloaded (unknown kid)");
                self.set(current.as_ref().clone().set_jwks(jwks));
                true
            }
            Err(e) => {
                tracing::warn!(idp = %self.config.id, error = %e, "reloading the provider's keys failed");
                false
            }
        }
    }
}
