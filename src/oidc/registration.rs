//! Relying-party registration metadata (OIDC Dynamic Client Registration §2 and
//! RFC 7591 §2 names), stored with each client, and its validation.

use serde::{Deserialize, Serialize};

use crate::error::FieldError;

/// Grants this release implements; a client may be registered only for these.
pub const SUPPORTED_GRANTS: &[&str] =
    &["authorization_code", "refresh_token", "client_credentials"];

/// Scopes of OpenID Connect and of the hub's own claims, beside the API's `users.read`….
pub const OIDC_SCOPES: &[&str] = &[
    "openid",
    "profile",
    "email",
    "phone",
    "address",
    "offline_access",
    "roles",
    "identifiers",
];

pub const AUTH_METHODS: &[&str] = &[
    "client_secret_basic",
    "client_secret_post",
    "private_key_jwt",
    "none",
];

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct ClientSettings {
    /// `confidential` (holds a secret or key) or `public` (SPA, mobile; PKCE only).
    pub client_type: String,
    pub token_endpoint_auth_method: String,
    /// Compared byte for byte with the request's `redirect_uri` (RFC 9700 §4.1.3).
    pub redirect_uris: Vec<String>,
    pub post_logout_redirect_uris: Vec<String>,
    /// OIDC Back-Channel Logout §2.2.
    pub backchannel_logout_uri: Option<String>,
    /// The district's own apps: no consent screen.
    pub first_party: bool,
    /// PKCE required (always for public clients; RFC 9700 §2.1.1 recommends it for all).
    pub require_pkce: bool,
    /// `RS256` (the OIDC Core §15.1 default every RP supports) or `ES256`.
    pub id_token_signed_response_alg: String,
    pub refresh_token_ttl_seconds: Option<i64>,
    /// Public keys for `private_key_jwt` (RFC 7523 §2.2), as a JWK Set.
    pub jwks: Option<serde_json::Value>,
    /// Access tokens must be DPoP-bound (RFC 9449 §5.2 `dpop_bound_access_tokens`).
    pub dpop_bound_access_tokens: bool,
    /// May receive district identifiers (SIS, state, employee ids, NPI) with the
    /// `identifiers` scope.
    pub district_identifiers: bool,
    /// May introspect tokens issued to other clients (a resource server).
    pub introspect_any: bool,
    /// Every sign-in to this app needs a second factor (`authn::mfa`).
    pub mfa_required: bool,
}

impl Default for ClientSettings {
    fn default() -> Self {
        Self {
            client_type: "confidential".into(),
            token_endpoint_auth_method: "client_secret_basic".into(),
            redirect_uris: Vec::new(),
            post_logout_redirect_uris: Vec::new(),
            backchannel_logout_uri: None,
            first_party: false,
            require_pkce: true,
            id_token_signed_response_alg: "RS256".into(),
            refresh_token_ttl_seconds: None,
            jwks: None,
            dpop_bound_access_tokens: false,
            district_identifiers: false,
            introspect_any: false,
            mfa_required: false,
        }
    }
}

impl ClientSettings {
    pub fn is_public(&self) -> bool {
        self.client_type == "public"
    }
    /// Authenticates with a client secret (`client_secret_basic` or `_post`).
    pub fn uses_secret(&self) -> bool {
        !self.is_public()
            && matches!(
                self.token_endpoint_auth_method.as_str(),
                "client_secret_basic" | "client_secret_post"
            )
    }
}

/// A redirect URI a client may register: absolute, no fragment (RFC 6749 §3.1.2);
/// https, or http only on the loopback interface, or a private-use scheme for
/// native apps (RFC 8252 §7.1, §7.3).
fn redirect_uri_problem(uri: &str) -> Option<String> {
    let Ok(u) = url::Url::parse(uri) else {
        return Some(format!("{uri:?} is not an absolute URI"));
    };
    if u.fragment().is_some() {
        return Some(format!(
            "{uri:?} must not contain a fragment (RFC 6749 §3.1.2)"
        ));
    }
    match u.scheme() {
        "https" => None,
        "http" => match u.host_str() {
            Some("127.0.0.1" | "[::1]" | "localhost") => None,
            _ => Some(format!(
                "{uri:?}: http is allowed only for 127.0.0.1, [::1] and localhost; use https"
            )),
        },
        s if s.contains('.') => None,
        _ => Some(format!(
            "{uri:?}: use https, loopback http, or a reverse-domain private-use scheme (RFC 8252 §7.1)"
        )),
    }
}

/// Checks a registration; `grants` and `scopes` are the client's.
pub fn validate_settings(
    s: &ClientSettings,
    grants: &[String],
    scopes: &[String],
) -> Vec<FieldError> {
    let mut errors = Vec::new();
    let mut err = |f: &str, m: String| errors.push(FieldError::new(f, m));
    if !matches!(s.client_type.as_str(), "confidential" | "public") {
        err("client_type", "use confidential or public".into());
    }
    if !AUTH_METHODS.contains(&s.token_endpoint_auth_method.as_str()) {
        err(
            "token_endpoint_auth_method",
            format!("use one of {}", AUTH_METHODS.join(", ")),
        );
    }
    if s.is_public() {
        if s.token_endpoint_auth_method != "none" {
            err(
                "token_endpoint_auth_method",
                "a public client authenticates with none (it cannot keep a secret)".into(),
            );
        }
        if !s.require_pkce {
            err(
                "require_pkce",
                "public clients must use PKCE (RFC 9700 §2.1.1)".into(),
            );
        }
        if grants.iter().any(|g| g == "client_credentials") {
            err(
                "grant_types",
                "a public client cannot use client_credentials".into(),
            );
        }
    } else if s.token_endpoint_auth_method == "none" {
        err(
            "token_endpoint_auth_method",
            "none is only for public clients".into(),
        );
    }
    if s.token_endpoint_auth_method == "private_key_jwt" {
        let keys = s
            .jwks
            .as_ref()
            .and_then(|j| j.get("keys"))
            .and_then(|k| k.as_array());
        if keys.is_none_or(|k| k.is_empty()) {
            err(
                "jwks",
                "private_key_jwt needs the client's public keys as a JWK Set {\"keys\": [...]}"
                    .into(),
            );
        }
    }
    if grants.iter().any(|g| g == "authorization_code") && s.redirect_uris.is_empty() {
        err(
            "redirect_uris",
            "a client using authorization_code needs at least one redirect URI".into(),
        );
    }
    if grants.iter().any(|g| g == "refresh_token")
        && !grants.iter().any(|g| g == "authorization_code")
    {
        err(
            "grant_types",
            "refresh_token is only issued with authorization_code".into(),
        );
    }
    for (field, list) in [
        ("redirect_uris", &s.redirect_uris),
        ("post_logout_redirect_uris", &s.post_logout_redirect_uris),
    ] {
        for uri in list {
            if let Some(p) = redirect_uri_problem(uri) {
                err(field, p);
            }
        }
    }
    if let Some(uri) = &s.backchannel_logout_uri {
        match url::Url::parse(uri) {
            Ok(u) if matches!(u.scheme(), "https" | "http") && u.fragment().is_none() => {}
            _ => err(
                "backchannel_logout_uri",
                "must be an absolute http(s) URI without a fragment (Back-Channel Logout §2.2)"
                    .into(),
            ),
        }
    }
    if !matches!(s.id_token_signed_response_alg.as_str(), "RS256" | "ES256") {
        err("id_token_signed_response_alg", "use RS256 or ES256".into());
    }
    if let Some(ttl) = s.refresh_token_ttl_seconds {
        if !(60..=365 * 86_400).contains(&ttl) {
            err(
                "refresh_token_ttl_seconds",
                "must be between 60 and 31536000".into(),
            );
        }
    }
    let uses_oidc = scopes.iter().any(|s| OIDC_SCOPES.contains(&s.as_str()));
    if uses_oidc && !grants.iter().any(|g| g == "authorization_code") {
        err(
            "scope",
            "OpenID scopes (openid, profile…) need the authorization_code grant".into(),
        );
    }
    if scopes.iter().any(|x| x == "identifiers") && !s.district_identifiers {
        err("scope", "the identifiers scope needs district_identifiers: true (district ids are released only to clients allowed them)".into());
    }
    errors
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redirect_uris_follow_rfc8252_and_rfc6749() {
        assert!(redirect_uri_problem("https://lms.example/cb").is_none());
        assert!(redirect_uri_problem("http://127.0.0.1:9000/cb").is_none());
        assert!(redirect_uri_problem("org.district.app:/oauth").is_none());
        assert!(redirect_uri_problem("http://lms.example/cb").is_some());
        assert!(redirect_uri_problem("https://lms.example/cb#x").is_some());
        assert!(redirect_uri_problem("/relative").is_some());
        assert!(redirect_uri_problem("javascript:alert(1)").is_some());
    }

    #[test]
    fn public_clients_need_pkce_and_no_secret() {
        let s = ClientSettings {
            client_type: "public".into(),
            token_endpoint_auth_method: "client_secret_basic".into(),
            require_pkce: false,
            redirect_uris: vec!["https://a.example/cb".into()],
            ..Default::default()
        };
        let e = validate_settings(&s, &["authorization_code".into()], &["openid".into()]);
        assert_eq!(e.len(), 2, "{e:?}");
    }
}
