//! The authorization endpoint (RFC 6749 §4.1.1, OIDC Core §3.1.2): request
//! validation, the decision after sign-in and consent, and issuing the code.
//!
//! Until the client and redirect URI are known good, errors are shown to the person
//! (§4.1.2.1: never redirect to an unverified URI); after that they go back to the
//! client with `state` and `iss` (RFC 9207).

use serde::{Deserialize, Serialize};

use super::grants::{self, CodeRow, Grant};
use super::pkce;
use super::{Client, OAuthError};
use crate::authn::{Assurance, Session};
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
    /// A SAML AuthnRequest (or an IdP-initiated sign-in) from a downstream SAML app
    /// rides on the same pending request: the sign-in pages are the same, and
    /// `federation::saml_idp` answers with a Response instead of a code.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub saml: Option<crate::federation::saml_idp::Pending>,
}

/// Where the browser goes next.
#[derive(Debug)]
pub enum Next {
    Login(String),
    SelectAccount(String),
    /// An administrator set the password: the person chooses their own first.
    ChangePassword(String),
    Consent(String),
    /// The app or the person's role needs a stronger sign-in than the session's
    /// (`authn::mfa`): add a second factor, then continue.
    StepUp(String),
    /// Back to the client: code or error parameters.
    Respond(AuthResponse),
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
            ("error_description", description.to_string()),
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
    let mut scopes: Vec<String> = Vec::new();
    for s in raw_scope.split(' ').filter(|s| !s.is_empty()) {
        if !client.scopes.iter().any(|c| c == s) {
            return Err(fail(
                "invalid_scope",
                format!("the app may not request the scope {s}"),
            ));
        }
        if !scopes.iter().any(|x| x == s) {
            scopes.push(s.to_string());
        }
    }
    if scopes.is_empty() {
        return Err(fail(
            "invalid_scope",
            "scope is missing; OpenID Connect requests include openid".into(),
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
        acr_values: get("acr_values")?.map(str::to_string),
        dpop_jkt: get("dpop_jkt")?.map(str::to_string),
        created_at_ms: now,
        saml: None,
    };
    Ok((req, client))
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
    fn has_prompt(&self, p: &str) -> bool {
        self.prompt.iter().any(|x| x == p)
    }
}

/// The checks every app's sign-in passes, OpenID Connect or SAML (`federation::
/// saml_idp`): a fresh enough session, the second factor the app and the person's
/// role need, a password the person chose, an active account.
pub enum Gate<'s> {
    /// Signed in as needed: answer the app.
    Proceed(&'s Session),
    /// The browser has something to do first.
    Go(Next),
    /// The app asked for no interaction (`prompt=none`, SAML `IsPassive`) and some is
    /// needed, or the account cannot sign in: an error for the app, in its protocol.
    Refuse(Refusal),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    LoginRequired,
    SecondFactorRequired,
    PasswordChangeRequired,
    ConsentRequired,
    AccountInactive,
}

impl Refusal {
    /// The OAuth error code and description (OIDC Core §3.1.2.6).
    pub fn oauth(self) -> (&'static str, &'static str) {
        match self {
            Refusal::LoginRequired => (
                "login_required",
                "the person is not signed in (or not recently enough)",
            ),
            Refusal::SecondFactorRequired => (
                "interaction_required",
                "a second factor is needed for this app",
            ),
            Refusal::PasswordChangeRequired => (
                "interaction_required",
                "the person must choose a new password first",
            ),
            Refusal::ConsentRequired => (
                "consent_required",
                "the person has not yet agreed to share this with the app",
            ),
            Refusal::AccountInactive => ("access_denied", "the account is not active"),
        }
    }
}

/// Runs the common checks; `app_needs_mfa` is the app's own setting (`mfa_required`).
pub async fn gate<'s>(
    app: &AppState,
    handle: &str,
    req: &AuthRequest,
    app_needs_mfa: bool,
    session: Option<&'s Session>,
) -> Result<Gate<'s>, OAuthError> {
    let now_s = app.clock().now_secs();
    let none = req.has_prompt("none");
    let fresh_enough = |s: &Session| match req.max_age {
        Some(max) => now_s - s.auth_time_secs() <= max,
        None => true,
    };
    let session = match session {
        Some(s) if !req.has_prompt("login") && fresh_enough(s) => s,
        _ if none => return Ok(Gate::Refuse(Refusal::LoginRequired)),
        _ => return Ok(Gate::Go(Next::Login(handle.to_string()))),
    };
    if req.has_prompt("select_account") {
        return Ok(Gate::Go(Next::SelectAccount(handle.to_string())));
    }
    // The second factor the app (`mfa_required`, `acr_values`) or the person's role
    // needs; a role granted after sign-in counts from the next authorization.
    let mut needed = crate::authn::mfa::required_for_person(app, &session.person_id)
        .await
        .map_err(OAuthError::server_error)?
        .max(Assurance::from_acr_values(req.acr_values.as_deref()));
    if app_needs_mfa {
        needed = needed.max(Assurance::Mfa);
    }
    if Assurance::of_amr(&session.amr) < needed {
        if none {
            return Ok(Gate::Refuse(Refusal::SecondFactorRequired));
        }
        return Ok(Gate::Go(Next::StepUp(handle.to_string())));
    }
    if crate::authn::must_change_password(app, &session.person_id)
        .await
        .map_err(OAuthError::server_error)?
    {
        if none {
            return Ok(Gate::Refuse(Refusal::PasswordChangeRequired));
        }
        return Ok(Gate::Go(Next::ChangePassword(handle.to_string())));
    }
    let person = crate::directory::get_person(app.store(), &session.person_id)
        .await
        .map_err(OAuthError::server_error)?;
    if person.status != "active" {
        return Ok(Gate::Refuse(Refusal::AccountInactive));
    }
    Ok(Gate::Proceed(session))
}

/// What happens next for a validated request, given the browser's session.
pub async fn decide(
    app: &AppState,
    handle: &str,
    req: &AuthRequest,
    client: &Client,
    session: Option<&Session>,
) -> Result<Next, OAuthError> {
    let issuer = app.issuer();
    let refuse = |r: Refusal| {
        let (error, description) = r.oauth();
        Ok(Next::Respond(req.error(issuer, error, description)))
    };
    let session = match gate(app, handle, req, client.settings.mfa_required, session).await? {
        Gate::Proceed(s) => s,
        Gate::Go(next) => return Ok(next),
        Gate::Refuse(r) => return refuse(r),
    };
    if needs_consent(app, req, client, &session.person_id).await? {
        if req.has_prompt("none") {
            return refuse(Refusal::ConsentRequired);
        }
        return Ok(Next::Consent(handle.to_string()));
    }
    let code = issue_code(app, req, session, client.settings.refresh_token_ttl_seconds).await?;
    let mut params = vec![("code", code)];
    if let Some(s) = &req.state {
        params.push(("state", s.clone()));
    }
    params.push(("iss", issuer.to_string()));
    super::requests::drop_request(app, handle).await?;
    Ok(Next::Respond(AuthResponse {
        redirect_uri: req.redirect_uri.clone(),
        form_post: req.response_mode == "form_post",
        params,
    }))
}

/// First-party clients skip consent; others need a remembered decision covering
/// every requested scope, or show the page when the client asks (`prompt=consent`).
async fn needs_consent(
    app: &AppState,
    req: &AuthRequest,
    client: &Client,
    person_id: &str,
) -> Result<bool, OAuthError> {
    if req.has_prompt("consent") {
        return Ok(true);
    }
    if client.settings.first_party {
        return Ok(false);
    }
    let granted = super::consent::granted_scopes(app, person_id, &client.id).await?;
    Ok(!req.scopes.iter().all(|s| granted.contains(s)))
}

async fn issue_code(
    app: &AppState,
    req: &AuthRequest,
    session: &Session,
    client_refresh_ttl: Option<i64>,
) -> Result<String, OAuthError> {
    let now = app.clock().now_ms();
    let cfg = &app.config().oauth;
    let offline = req.scopes.iter().any(|s| s == "offline_access");
    // A client's own refresh lifetime, when registered, bounds the grant too.
    let lifetime = client_refresh_ttl.unwrap_or(if offline {
        cfg.offline_refresh_token_ttl_seconds
    } else {
        cfg.refresh_token_ttl_seconds
    });
    let grant = Grant {
        id: crate::store::new_id(),
        client_id: req.client_id.clone(),
        person_id: session.person_id.clone(),
        session_id: Some(session.id.clone()),
        scopes: req.scopes.clone(),
        auth_time_ms: session.auth_time_ms,
        acr: session.acr.clone(),
        amr: session.amr.clone(),
        dpop_jkt: req.dpop_jkt.clone(),
        offline,
        expires_at_ms: now + lifetime * 1000,
        revoked: false,
    };
    let code = super::random_token(32);
    let mut tx = app
        .store()
        .begin()
        .await
        .map_err(OAuthError::server_error)?;
    grants::insert_grant(&mut tx, &grant, now).await?;
    grants::insert_code(
        &mut tx,
        &app.master_key().digest_secret(&code),
        &CodeRow {
            grant_id: grant.id.clone(),
            client_id: req.client_id.clone(),
            redirect_uri: req.redirect_uri.clone(),
            nonce: req.nonce.clone(),
            code_challenge: req.code_challenge.clone(),
            expires_at_ms: now + cfg.code_ttl_seconds * 1000,
            used: false,
        },
        now,
    )
    .await?;
    // Who signed in to which app, with what: the access report FERPA/HIPAA audits ask for.
    let origin = crate::audit::Origin {
        actor_kind: "person",
        actor_id: session.person_id.clone(),
        meta: Default::default(),
    };
    crate::audit::record(
        &mut tx,
        app.store().audit_key(),
        now,
        &origin,
        crate::audit::Entry {
            action: "oidc.authorize",
            outcome: crate::audit::Outcome::Success,
            target_kind: "client",
            target_id: &req.client_id,
            details: serde_json::json!({ "scopes": req.scopes, "grant": grant.id, "session": session.id }),
        },
    )
    .await
    .map_err(OAuthError::server_error)?;
    tx.commit().await.map_err(OAuthError::server_error)?;
    crate::ops::metrics::oidc_event("code_issued");
    Ok(code)
}
