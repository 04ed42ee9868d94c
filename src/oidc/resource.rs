//! What relying parties and resource servers do with tokens: UserInfo (OIDC Core
//! §5.3), introspection (RFC 7662) and revocation (RFC 7009).

use std::sync::Arc;

use serde_json::{json, Map, Value};

use super::client_auth::{authenticate_client, Form};
use super::grants_repo as grants;
use super::jwt::{self, AccessClaims};
use super::OidcError;
use crate::AppState;

/// The audience of access tokens issued to people (they are for UserInfo; the admin
/// API refuses them).
pub fn userinfo_audience(app: &AppState) -> String {
    format!("{}/oauth2/userinfo", app.issuer())
}

/// An RFC 6750 §3 error: 401 with `WWW-Authenticate`.
#[derive(Debug)]
pub struct BearerError {
    pub scheme: &'static str,
    pub error: &'static str,
    pub description: String,
}

impl BearerError {
    /// No token was sent: RFC 6750 §3.1 says the challenge then carries no error
    /// code (`error` is empty here, and the response names none).
    pub fn missing() -> Self {
        BearerError {
            scheme: "Bearer",
            error: "",
            description: String::new(),
        }
    }
}

fn invalid_token(scheme: &'static str, d: impl Into<String>) -> BearerError {
    BearerError {
        scheme,
        error: "invalid_token",
        description: d.into(),
    }
}

async fn verify_any(app: &AppState, token: &str, audiences: &[&str]) -> Option<Arc<AccessClaims>> {
    let now = app.clock().now_secs();
    let key = super::verified::digest(token);
    if let Some(c) = app.verified_tokens().get(&key, now) {
        return audiences.contains(&c.aud.as_str()).then_some(c);
    }
    for _ in 0..2 {
        let ring = app.keys();
        match jwt::verify_for(&ring, token, app.issuer(), audiences, now) {
            Ok(c) => {
                let c = Arc::new(c);
                app.verified_tokens().insert(key, c.clone());
                return Some(c);
            }
            // A key another replica made: reload once.
            Err(e) if e == "signed by an unknown key" && app.refresh_keys().await => continue,
            Err(_) => break,
        }
    }
    None
}

/// An access token that still stands: signature, lifetime, not revoked, grant live,
/// client enabled.
async fn live_access_token(
    app: &AppState,
    token: &str,
    audiences: &[&str],
) -> Result<Option<Arc<AccessClaims>>, OidcError> {
    let Some(claims) = verify_any(app, token, audiences).await else {
        return Ok(None);
    };
    if !app
        .token_liveness()
        .is_live(&claims.jti, claims.gid.as_deref())
        .await?
    {
        return Ok(None);
    }
    // A disabled or deleted client's tokens stop working with it.
    let client = app
        .clients()
        .get(app.store(), &claims.client_id, app.clock().now_ms())
        .await
        .map_err(OidcError::server_error)?;
    if !client.is_some_and(|c| c.enabled) {
        return Ok(None);
    }
    Ok(Some(claims))
}

/// UserInfo for an `Authorization: Bearer|DPoP <token>` header (plus the DPoP
/// proof), or a Bearer token sent as `access_token` in a form-encoded POST body
/// (RFC 6750 §2.2; the handler reads the body).
pub async fn userinfo(
    app: &AppState,
    authorization: Option<&str>,
    body_token: Option<&str>,
    dpop: Option<&str>,
    method: &str,
) -> Result<Map<String, Value>, BearerError> {
    let (scheme, token) = match (authorization, body_token) {
        // RFC 6750 §3.1: no credentials at all is a challenge without an error code.
        (None, None) => return Err(BearerError::missing()),
        // RFC 6750 §2: a client must not use more than one method.
        (Some(_), Some(_)) => return Err(BearerError {
            scheme: "Bearer",
            error: "invalid_request",
            description:
                "send the access token once: in the Authorization header or in the body, not both"
                    .into(),
        }),
        (None, Some(t)) => ("Bearer", t.trim()),
        (Some(header), None) => match header.split_once(' ') {
            Some((s, t)) if s.eq_ignore_ascii_case("bearer") => ("Bearer", t.trim()),
            Some((s, t)) if s.eq_ignore_ascii_case("dpop") => ("DPoP", t.trim()),
            _ => {
                return Err(BearerError {
                    scheme: "Bearer",
                    error: "invalid_request",
                    description: "use the Bearer or DPoP scheme".into(),
                })
            }
        },
    };
    // The token could not be checked (the database did not answer): that says
    // nothing about the token, so never `invalid_token`.
    let server = |e: OidcError| BearerError {
        scheme,
        error: if e.code == super::OAuthCode::TemporarilyUnavailable {
            "temporarily_unavailable"
        } else {
            "server_error"
        },
        description: e.description,
    };
    let aud = userinfo_audience(app);
    let claims = live_access_token(app, token, &[&aud])
        .await
        .map_err(server)?
        .ok_or_else(|| {
            invalid_token(scheme, "the access token is not valid, expired or revoked")
        })?;
    match (
        claims
            .cnf
            .as_ref()
            .and_then(|c| c.get("jkt"))
            .and_then(|j| j.as_str()),
        scheme,
    ) {
        (Some(jkt), "DPoP") => {
            let proof = dpop.ok_or_else(|| invalid_token(scheme, "a DPoP proof is required"))?;
            let got = super::dpop::check_proof(app, proof, method, &aud, Some(token))
                .await
                .map_err(|e| invalid_token(scheme, e.description))?;
            if got != jkt {
                return Err(invalid_token(
                    scheme,
                    "the DPoP proof is signed with another key",
                ));
            }
        }
        // RFC 9449 §7.1: a bound token must not be accepted as a bearer token.
        (Some(_), _) => {
            return Err(invalid_token(
                "DPoP",
                "this token is DPoP-bound; use the DPoP scheme with a proof",
            ))
        }
        (None, "DPoP") => {
            return Err(invalid_token(
                "Bearer",
                "this token is not DPoP-bound; use the Bearer scheme",
            ))
        }
        (None, _) => {}
    }
    let scopes: Vec<String> = claims.scope.split(' ').map(str::to_string).collect();
    if !scopes.iter().any(|s| s == "openid") {
        return Err(BearerError {
            scheme,
            error: "insufficient_scope",
            description: "the token lacks the openid scope".into(),
        });
    }
    let person = match crate::directory::get_person_core(app.store(), &claims.sub).await {
        Ok(p) => p,
        Err(crate::directory::DirectoryError::NotFound { .. }) => {
            return Err(invalid_token(scheme, "the person no longer exists"))
        }
        Err(e) => return Err(server(OidcError::server_error(e))),
    };
    if person.status != "active" {
        return Err(invalid_token(scheme, "the account is no longer active"));
    }
    let client = app
        .clients()
        .get(app.store(), &claims.client_id, app.clock().now_ms())
        .await
        .map_err(|e| server(OidcError::server_error(e)))?
        .ok_or_else(|| invalid_token(scheme, "the client no longer exists"))?;
    let mut out =
        super::claims::person_claims(app, &person, &scopes, &client, &claims.userinfo_claims)
            .await
            .map_err(server)?;
    out.insert("sub".into(), claims.sub.clone().into());
    Ok(out)
}

/// RFC 7662 §2: tokens this client may see, else `{"active": false}`.
pub async fn introspect(
    app: &AppState,
    body: &[u8],
    authorization: Option<&str>,
) -> Result<Value, OidcError> {
    let form = Form::parse(body)?;
    let endpoint = format!("{}/oauth2/introspect", app.issuer());
    let client = authenticate_client(app, &form, authorization, &endpoint).await?;
    let token = form
        .get("token")
        .ok_or_else(|| OidcError::invalid_request("token is missing"))?;
    let inactive = json!({ "active": false });
    let may_see = |owner: &str| owner == client.id || client.settings.introspect_any;
    let api = app.api_audience().to_string();
    let ui = userinfo_audience(app);
    if token.matches('.').count() == 2 {
        let Some(c) = live_access_token(app, token, &[&api, &ui]).await? else {
            return Ok(inactive);
        };
        if !may_see(&c.client_id) {
            return Ok(inactive);
        }
        let mut v = json!({
            "active": true, "scope": c.scope, "client_id": c.client_id, "sub": c.sub, "exp": c.exp, "iat": c.iat,
            "iss": c.iss, "aud": c.aud, "jti": c.jti, "token_type": if c.cnf.is_some() { "DPoP" } else { "Bearer" },
        });
        if let Some(cnf) = &c.cnf {
            v["cnf"] = cnf.clone();
        }
        if let Some(sid) = &c.sid {
            v["sid"] = sid.as_str().into();
        }
        return Ok(v);
    }
    let now = app.clock().now_ms();
    let digest = app.master_key().digest_secret(token);
    let Some(state) = super::refresh::read_refresh(app, &digest, now).await? else {
        return Ok(inactive);
    };
    let grant = &state.grant;
    if !state.usable(now) || !may_see(&grant.client_id) {
        return Ok(inactive);
    }
    // Active only if the client could use it now (RFC 7662 §2.2): enabled, and the
    // MFA policy still met (as `refresh_grant` checks).
    let usable = app
        .clients()
        .get(app.store(), &grant.client_id, now)
        .await
        .map_err(OidcError::server_error)?
        .is_some_and(|c| c.enabled && state.meets_mfa_policy(app, &c));
    if !usable {
        return Ok(inactive);
    }
    Ok(json!({
        "active": true, "token_type": "refresh_token", "scope": grant.scopes.join(" "), "client_id": grant.client_id,
        "sub": grant.person_id, "exp": state.expires_at_ms / 1000, "iss": app.issuer(),
    }))
}

/// RFC 7009 §2: revoking a refresh token revokes its grant (and so its access
/// tokens); an access token is revoked by its `jti`. Unknown tokens and tokens of
/// other clients change nothing, and the answer is the same 200 (§2.2).
pub async fn revoke(
    app: &AppState,
    body: &[u8],
    authorization: Option<&str>,
) -> Result<(), OidcError> {
    let form = Form::parse(body)?;
    let endpoint = format!("{}/oauth2/revoke", app.issuer());
    let client = authenticate_client(app, &form, authorization, &endpoint).await?;
    let token = form
        .get("token")
        .ok_or_else(|| OidcError::invalid_request("token is missing"))?;
    if let Some(hint) = form.get("token_type_hint") {
        if !matches!(hint, "access_token" | "refresh_token") {
            return Err(OidcError::unsupported_token_type(
                "token_type_hint must be access_token or refresh_token (RFC 7009 §2.2.1)",
            ));
        }
    }
    let now = app.clock().now_ms();
    if token.matches('.').count() == 2 {
        let api = app.api_audience().to_string();
        let ui = userinfo_audience(app);
        if let Some(c) = verify_any(app, token, &[&api, &ui])
            .await
            .filter(|c| c.client_id == client.id)
        {
            grants::use_jti(
                app.store(),
                &format!("revoked:{}", c.jti),
                (c.exp + 60) * 1000,
            )
            .await?;
            crate::ops::metrics::oidc_event("access_token_revoked");
        }
        return Ok(());
    }
    let mut tx = app.store().begin().await.map_err(OidcError::server_error)?;
    if let Some(row) =
        grants::take_refresh(&mut tx, &app.master_key().digest_secret(token), now, false).await?
    {
        if grants::load_grant(&mut tx, &row.grant_id)
            .await?
            .is_some_and(|g| g.client_id == client.id)
        {
            grants::revoke_grant(&mut tx, &row.grant_id, now, "revoked by the client").await?;
            crate::ops::metrics::oidc_event("refresh_token_revoked");
        }
    }
    tx.commit().await.map_err(OidcError::server_error)?;
    Ok(())
}
