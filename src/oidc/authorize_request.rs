//! The authorization request (RFC 6749 §4.1.1, OIDC Core §3.1.2.1): its validation,
//! the request kept while the person signs in, and the answer back to the client.
//!
//! Until the client and redirect URI are known good, errors are shown to the person
//! (§4.1.2.1: never redirect to an unverified URI); after that they go back to the
//! client with `state` and `iss` (RFC 9207).
//!
//! The request waits as an `authn::PendingSignIn` continued as OpenID Connect: the
//! common keys (`client_id`, `prompt`, `max_age`, …) are authentication's, the rest
//! (redirect URI, scopes, PKCE, nonce, `claims`) is this module's own part.

use serde::{Deserialize, Serialize};

use super::claims_request::{parse_claims, ClaimsRequest};
use super::pkce;
use super::{Client, OidcError};
use crate::authn::{Demands, PendingSignIn, Protocol};
use crate::AppState;

/// A validated authorization request, kept in the store while the person signs in.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AuthRequest {
    pub client_id: String,
    pub redirect_uri: String,
    pub scopes: Vec<String>,
    pub state: Option<String>,
    pub nonce: Option<String>,
    pub code_challenge: Option<String>,
    /// `query` or `form_post` (OAuth 2.0 Form Post Response Mode).
    pub response_mode: String,
    pub prompt: Vec<String>,
    pub max_age: Option<i64>,
    pub login_hint: Option<String>,
    pub acr_values: Option<String>,
    pub dpop_jkt: Option<String>,
    pub created_at_ms: i64,
    /// The person the app expects: the subject of a verified `id_token_hint`, or
    /// `sub` asked for by value in `claims` (OIDC Core §3.1.2.1, §5.5.1). A session
    /// of someone else does not answer the request until the person signs in again.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expected_sub: Option<String>,
    /// The `claims` request parameter (OIDC Core §5.5).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub claims: Option<ClaimsRequest>,
    /// Scopes of the claims asked for by name, registered for the client but not
    /// among `scopes`: consent covers them too (`claims_request`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub claim_scopes: Vec<String>,
}

#[derive(Debug)]
pub struct AuthResponse {
    pub redirect_uri: String,
    pub form_post: bool,
    pub params: Vec<(&'static str, String)>,
}

/// Why a request failed.
#[derive(Debug)]
pub enum AuthorizeError {
    /// The client or redirect URI cannot be trusted: tell the person, not the client.
    Page(String),
    /// RFC 6749 §4.1.2.1: back to the client.
    Redirect(AuthResponse),
}

impl AuthResponse {
    pub fn error(
        req_uri: &str,
        form_post: bool,
        state: Option<&str>,
        issuer: &str,
        error: &str,
        description: &str,
    ) -> Self {
        let mut params = vec![
            ("error", error.to_string()),
            (
                "error_description",
                super::error::error_description(description),
            ),
        ];
        if let Some(s) = state {
            params.push(("state", s.to_string()));
        }
        params.push(("iss", issuer.to_string()));
        AuthResponse {
            redirect_uri: req_uri.to_string(),
            form_post,
            params,
        }
    }

    /// The same answer with another error code and description (state and iss kept).
    pub fn with_error(mut self, error: &str, description: &str) -> Self {
        for (k, v) in &mut self.params {
            match *k {
                "error" => *v = error.to_string(),
                "error_description" => *v = super::error::error_description(description),
                _ => {}
            }
        }
        self
    }

    /// The redirect URI with the parameters appended to its query (§4.1.2: keep
    /// the registered URI's own query).
    pub fn location(&self) -> String {
        let mut url = match url::Url::parse(&self.redirect_uri) {
            Ok(u) => u,
            Err(_) => return self.redirect_uri.clone(),
        };
        {
            let mut q = url.query_pairs_mut();
            for (k, v) in &self.params {
                q.append_pair(k, v);
            }
        }
        url.to_string()
    }
}

fn single<'a>(params: &'a [(String, String)], name: &str) -> Result<Option<&'a str>, String> {
    let mut found = params.iter().filter(|(k, _)| k == name);
    let first = found.next().map(|(_, v)| v.as_str());
    if found.next().is_some() {
        return Err(format!("the parameter {name} is repeated; send it once"));
    }
    Ok(first.filter(|v| !v.is_empty()))
}

/// Validates the request parameters (already merged with a pushed request, if any).
pub async fn validate_request(
    app: &AppState,
    params: &[(String, String)],
) -> Result<(AuthRequest, std::sync::Arc<Client>), AuthorizeError> {
    let page = AuthorizeError::Page;
    let client_id = single(params, "client_id").map_err(page)?.ok_or_else(|| {
        AuthorizeError::Page(
            "the request has no client_id; the app that sent you here is misconfigured".into(),
        )
    })?;
    let now = app.clock().now_ms();
    let client = app
        .clients()
        .get(app.store(), client_id, now)
        .await
        .map_err(|e| AuthorizeError::Page(format!("the sign-in service failed: {e}")))?
        .filter(|c| c.enabled && c.has_grant("authorization_code"))
        .ok_or_else(|| {
            AuthorizeError::Page(
                "the app that sent you here is not registered for sign-in (unknown client_id)"
                    .into(),
            )
        })?;
    let redirect_uri = single(params, "redirect_uri").map_err(AuthorizeError::Page)?;
    let redirect_uri = match redirect_uri {
        // Exact string comparison (RFC 9700 §4.1.3; OIDC Core §3.1.2.1).
        Some(r) if client.settings.redirect_uris.iter().any(|u| u == r) => r.to_string(),
        Some(_) => return Err(AuthorizeError::Page("the app asked to send you back to an address it has not registered (redirect_uri mismatch); it was not followed".into())),
        None => return Err(AuthorizeError::Page("the request has no redirect_uri (required by OpenID Connect Core §3.1.2.1)".into())),
    };
    let mode = match single(params, "response_mode").map_err(AuthorizeError::Page)? {
        None | Some("query") => "query",
        Some("form_post") => "form_post",
        Some(_) => "invalid",
    };
    // A repeated state is dropped from the error (we cannot tell which is meant).
    let state_repeated = single(params, "state").is_err();
    let state = single(params, "state").ok().flatten().map(str::to_string);
    let issuer = app.issuer().to_string();
    let fail = |error: &str, description: String| {
        AuthorizeError::Redirect(AuthResponse::error(
            &redirect_uri,
            mode == "form_post",
            state.as_deref(),
            &issuer,
            error,
            &description,
        ))
    };
    if mode == "invalid" {
        return Err(fail(
            "invalid_request",
            "response_mode must be query or form_post".into(),
        ));
    }
    let get = |name: &str| single(params, name).map_err(|m| fail("invalid_request", m));
    if state_repeated {
        return Err(fail(
            "invalid_request",
            "the parameter state is repeated; send it once".into(),
        ));
    }
    if get("request")?.is_some() {
        return Err(fail(
            "request_not_supported",
            "request objects are not supported; use pushed authorization requests (RFC 9126)"
                .into(),
        ));
    }
    match get("response_type")? {
        Some("code") => {}
        None => {
            return Err(fail(
                "invalid_request",
                "response_type is missing; use code".into(),
            ))
        }
        Some(other) => {
            return Err(fail(
                "unsupported_response_type",
                format!("response_type {other:?} is not supported; use code"),
            ))
        }
    }
    let raw_scope = get("scope")?.unwrap_or("");
    let asked: Vec<&str> = raw_scope.split(' ').filter(|s| !s.is_empty()).collect();
    if asked.is_empty() {
        return Err(fail(
            "invalid_scope",
            "scope is missing; OpenID Connect requests include openid".into(),
        ));
    }
    // OIDC Core §3.1.2.1 ("scope values used that are not understood by an
    // implementation SHOULD be ignored") and RFC 6749 §3.3 (the server may grant
    // less than asked, and says so in the token response's `scope`): scopes the
    // hub does not know or the client did not register are dropped, not fatal.
    // `openid` is never dropped silently: an OpenID Connect request from a client
    // not registered for it is refused.
    if asked.contains(&"openid") && !client.scopes.iter().any(|c| c == "openid") {
        return Err(fail(
            "invalid_scope",
            "the app is not registered for the openid scope".into(),
        ));
    }
    let mut scopes: Vec<String> = Vec::new();
    for s in asked {
        if client.scopes.iter().any(|c| c == s) && !scopes.iter().any(|x| x == s) {
            scopes.push(s.to_string());
        }
    }
    if scopes.is_empty() {
        return Err(fail(
            "invalid_scope",
            "none of the requested scopes is registered for the app; OpenID Connect requests include openid".into(),
        ));
    }
    let code_challenge = get("code_challenge")?;
    match (code_challenge, get("code_challenge_method")?) {
        (Some(c), Some("S256")) if pkce::valid_challenge(c) => {}
        (Some(_), Some("S256")) => return Err(fail("invalid_request", "code_challenge must be 43 base64url characters (RFC 7636 §4.2)".into())),
        (Some(_), None | Some("plain")) => return Err(fail("invalid_request", "code_challenge_method must be S256; plain is not accepted (RFC 9700 §2.1.1)".into())),
        (Some(_), Some(m)) => return Err(fail("invalid_request", format!("unknown code_challenge_method {m:?}; use S256"))),
        (None, Some(_)) => return Err(fail("invalid_request", "code_challenge_method without code_challenge".into())),
        (None, None) if client.settings.require_pkce || client.settings.is_public() => {
            return Err(fail("invalid_request", "this client must use PKCE: send code_challenge and code_challenge_method=S256 (RFC 7636)".into()))
        }
        (None, None) => {}
    }
    let prompt: Vec<String> = get("prompt")?
        .unwrap_or("")
        .split(' ')
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .collect();
    if let Some(bad) = prompt
        .iter()
        .find(|p| !matches!(p.as_str(), "none" | "login" | "consent" | "select_account"))
    {
        return Err(fail(
            "invalid_request",
            format!("unknown prompt value {bad:?}"),
        ));
    }
    if prompt.iter().any(|p| p == "none") && prompt.len() > 1 {
        return Err(fail(
            "invalid_request",
            "prompt=none cannot be combined with other values (OIDC Core §3.1.2.1)".into(),
        ));
    }
    let max_age = match get("max_age")? {
        None => None,
        Some(v) => Some(v.parse::<i64>().ok().filter(|n| *n >= 0).ok_or_else(|| {
            fail(
                "invalid_request",
                "max_age must be a non-negative number of seconds".into(),
            )
        })?),
    };
    let nonce = get("nonce")?.map(str::to_string);
    if nonce.as_ref().is_some_and(|n| n.len() > 512)
        || state.as_ref().is_some_and(|s| s.len() > 2048)
    {
        return Err(fail("invalid_request", "state or nonce is too long".into()));
    }
    let claims = match get("claims")? {
        None => None,
        Some(raw) => Some(parse_claims(raw).map_err(|m| fail("invalid_request", m))?),
    };
    let claim_scopes: Vec<String> = claims
        .as_ref()
        .map(|c| {
            c.scopes()
                .into_iter()
                .filter(|s| client.scopes.iter().any(|x| x == s) && !scopes.iter().any(|x| x == s))
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default();
    // OIDC Core §3.1.2.1: the hint must be an ID token this hub issued (its own
    // signature; expiry is not checked), to this client. One that is not is an
    // invalid request, answered to the app.
    let hint_sub = match get("id_token_hint")? {
        None => None,
        Some(token) => match super::verify_id_token_hint(app, token).await {
            Ok(h) if h.issued_to(&client.id) => Some(h.sub),
            Ok(_) => {
                return Err(fail(
                    "invalid_request",
                    "id_token_hint was issued to another client".into(),
                ))
            }
            Err(why) => return Err(fail("invalid_request", why.into())),
        },
    };
    let claims_sub = match claims.as_ref().map(|c| c.sub_value()) {
        Some(Err(m)) => return Err(fail("invalid_request", m)),
        Some(Ok(v)) => v,
        None => None,
    };
    let expected_sub = match (hint_sub, claims_sub) {
        (Some(a), Some(b)) if a != b => {
            return Err(fail(
                "invalid_request",
                "id_token_hint and the claims parameter name different people".into(),
            ))
        }
        (a, b) => a.or(b),
    };
    let acr_values = get("acr_values")?
        .map(str::to_string)
        .or_else(|| claims.as_ref().and_then(|c| c.acr_values()));
    let req = AuthRequest {
        client_id: client.id.clone(),
        redirect_uri: redirect_uri.clone(),
        scopes,
        state: state.clone(),
        nonce,
        code_challenge: code_challenge.map(str::to_string),
        response_mode: mode.to_string(),
        prompt,
        max_age,
        login_hint: get("login_hint")?.map(|h| h.chars().take(200).collect()),
        acr_values,
        dpop_jkt: get("dpop_jkt")?.map(str::to_string),
        created_at_ms: now,
        expected_sub,
        claims,
        claim_scopes,
    };
    Ok((req, client))
}

/// OIDC Core §6.2: a `request_uri` that did not come from this hub's PAR endpoint
/// (a Request Object by reference, which is not supported). The answer goes to the
/// app (`request_uri_not_supported`) when the client and redirect URI are good,
/// else to the person.
pub async fn refuse_request_uri(app: &AppState, params: &[(String, String)]) -> AuthorizeError {
    const WHY: &str = "request_uri is supported only as returned by the pushed authorization request endpoint (RFC 9126)";
    let rest: Vec<(String, String)> = params
        .iter()
        .filter(|(k, _)| k != "request_uri")
        .cloned()
        .collect();
    match validate_request(app, &rest).await {
        Ok((req, _)) => {
            AuthorizeError::Redirect(req.error(app.issuer(), "request_uri_not_supported", WHY))
        }
        Err(AuthorizeError::Redirect(r)) => {
            AuthorizeError::Redirect(r.with_error("request_uri_not_supported", WHY))
        }
        Err(page) => page,
    }
}

impl AuthRequest {
    pub fn error(&self, issuer: &str, error: &str, description: &str) -> AuthResponse {
        AuthResponse::error(
            &self.redirect_uri,
            self.response_mode == "form_post",
            self.state.as_deref(),
            issuer,
            error,
            description,
        )
    }
    pub(super) fn has_prompt(&self, p: &str) -> bool {
        self.prompt.iter().any(|x| x == p)
    }
    /// What the person's consent must cover: the scopes, and the scopes of claims
    /// asked for by name.
    pub fn consent_scopes(&self) -> Vec<String> {
        let mut v = self.scopes.clone();
        v.extend(self.claim_scopes.iter().cloned());
        v
    }
    /// What the session checks (`authn::gate`) need of this request.
    pub fn demands(&self) -> Demands<'_> {
        Demands {
            prompt: &self.prompt,
            max_age: self.max_age,
            acr_values: self.acr_values.as_deref(),
            expected_sub: self.expected_sub.as_deref(),
        }
    }

    /// The pending sign-in that keeps this request. The stored object is the same as
    /// before the pending sign-in moved to `authn` (a flat object with these keys).
    pub fn to_pending(&self) -> Result<PendingSignIn, OidcError> {
        let value = serde_json::to_value(self).map_err(OidcError::server_error)?;
        PendingSignIn::from_json(value).map_err(OidcError::server_error)
    }

    /// This protocol's reading of a pending sign-in; a SAML one is not an OAuth
    /// request (its rows carry OAuth-shaped keys for the previous release, so the
    /// protocol is checked, not guessed from the keys).
    pub fn from_pending(p: &PendingSignIn) -> Result<AuthRequest, OidcError> {
        if p.protocol != Protocol::Oidc {
            return Err(OidcError::invalid_request(
                "the pending sign-in is not an OpenID Connect request",
            ));
        }
        let value = p.to_json().map_err(OidcError::server_error)?;
        serde_json::from_value(value).map_err(OidcError::server_error)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request() -> AuthRequest {
        AuthRequest {
            client_id: "app1".into(),
            redirect_uri: "https://app.example/cb".into(),
            scopes: vec!["openid".into()],
            state: Some("s".into()),
            nonce: None,
            code_challenge: Some("c".into()),
            response_mode: "query".into(),
            prompt: vec!["consent".into()],
            max_age: Some(60),
            login_hint: None,
            acr_values: None,
            dpop_jkt: None,
            created_at_ms: 7,
            expected_sub: None,
            claims: None,
            claim_scopes: vec!["email".into()],
        }
    }

    #[test]
    fn a_request_is_kept_as_an_oidc_sign_in_and_read_back() {
        let req = request();
        let pending = req.to_pending().unwrap();
        assert_eq!(pending.protocol, Protocol::Oidc);
        assert_eq!(pending.app_id, "app1");
        assert!(pending.demands().has_prompt("consent"));
        let back = AuthRequest::from_pending(&pending).unwrap();
        assert_eq!(back.redirect_uri, req.redirect_uri);
        assert_eq!(back.claim_scopes, req.claim_scopes);
        assert_eq!(back.max_age, Some(60));
        assert_eq!(back.created_at_ms, 7);
    }

    /// A SAML sign-in as written now still reads as the previous release's request
    /// (which took every pending sign-in for an OAuth one): a replica not yet upgraded
    /// can continue it. This release tells it by its protocol and refuses it here.
    #[test]
    fn a_saml_sign_in_is_readable_by_the_previous_release_but_not_oidc() {
        let row = r#"{"client_id":"saml:wiki","prompt":[],"max_age":null,"login_hint":null,"acr_values":null,"created_at_ms":1,"redirect_uri":"https://wiki.example/acs","scopes":[],"response_mode":"form_post","saml":{"sp_id":"wiki","request_id":null,"acs_url":"https://wiki.example/acs","relay_state":null,"name_id_format":"x","subject":null,"subject_relogin":false,"requested_contexts":[],"comparison":null}}"#;
        let value: serde_json::Value = serde_json::from_str(row).unwrap();
        let old_shape: AuthRequest = serde_json::from_value(value.clone()).unwrap();
        assert_eq!(old_shape.response_mode, "form_post");
        let pending = PendingSignIn::from_json(value).unwrap();
        assert_eq!(pending.protocol, Protocol::Saml);
        assert!(AuthRequest::from_pending(&pending).is_err());
    }
}
