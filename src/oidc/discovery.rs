//! OpenID Provider metadata (OIDC Discovery 1.0 §3, RFC 8414 §2): only what is
//! implemented.

use serde_json::{json, Value};

use super::registration::{AUTH_METHODS, OIDC_SCOPES};
use crate::AppState;

pub fn document(app: &AppState) -> Value {
    let iss = app.issuer();
    let mut scopes: Vec<String> = OIDC_SCOPES.iter().map(|s| s.to_string()).collect();
    scopes.extend(crate::authz::known_scopes());
    let secret_methods: Vec<&str> = AUTH_METHODS.to_vec();
    json!({
        "issuer": iss,
        "authorization_endpoint": format!("{iss}/oauth2/authorize"),
        "token_endpoint": format!("{iss}/oauth2/token"),
        "userinfo_endpoint": format!("{iss}/oauth2/userinfo"),
        "jwks_uri": format!("{iss}/oauth2/jwks"),
        "introspection_endpoint": format!("{iss}/oauth2/introspect"),
        "revocation_endpoint": format!("{iss}/oauth2/revoke"),
        "end_session_endpoint": format!("{iss}/oauth2/logout"),
        "pushed_authorization_request_endpoint": format!("{iss}/oauth2/par"),
        "scopes_supported": scopes,
        "response_types_supported": ["code"],
        "response_modes_supported": ["query", "form_post"],
        "grant_types_supported": ["authorization_code", "refresh_token", "client_credentials"],
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": ["RS256", "ES256"],
        "userinfo_signing_alg_values_supported": [],
        "token_endpoint_auth_methods_supported": secret_methods,
        "token_endpoint_auth_signing_alg_values_supported": ["RS256", "ES256"],
        "introspection_endpoint_auth_methods_supported": secret_methods,
        "revocation_endpoint_auth_methods_supported": secret_methods,
        "code_challenge_methods_supported": ["S256"],
        "claims_supported": ["sub", "iss", "aud", "exp", "iat", "auth_time", "nonce", "acr", "amr", "sid", "at_hash", "azp",
            "name", "given_name", "family_name", "middle_name", "nickname", "preferred_username", "updated_at",
            "email", "email_verified", "phone_number", "phone_number_verified", "address",
            "roles", "kinds", "orgs", "district_identifiers"],
        "acr_values_supported": [
            crate::authn::ACR_PASSWORD,
            "urn:hms-ach:acr:federated",
            crate::authn::ACR_MFA,
            crate::authn::ACR_PASSKEY,
        ],
        "prompt_values_supported": ["none", "login", "consent", "select_account"],
        "claims_parameter_supported": true,
        "claim_types_supported": ["normal"],
        "request_parameter_supported": false,
        "request_uri_parameter_supported": false,
        "require_request_uri_registration": false,
        "authorization_response_iss_parameter_supported": true,
        "backchannel_logout_supported": true,
        "backchannel_logout_session_supported": true,
        "frontchannel_logout_supported": false,
        "dpop_signing_alg_values_supported": ["ES256", "RS256"],
        "require_pushed_authorization_requests": false,
        "ui_locales_supported": ["en"],
    })
}
