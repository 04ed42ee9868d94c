//! The token endpoint (RFC 6749 §3.2): `authorization_code` (§4.1.3, with PKCE
//! RFC 7636 §4.6), `refresh_token` (§6, rotated with reuse detection, RFC 9700
//! §4.14.2) and `client_credentials` (§4.4).

use serde::Serialize;

use super::client_auth::{authenticate_client, Form};
use super::grants_repo::{self as grants, Grant};
use super::jwt::{self, AccessClaims};
use super::keys::Alg;
use super::registration::SUPPORTED_GRANTS;
use super::{pkce, Client, OidcError};
use crate::AppState;

/// A token request as received: the form parameters and the headers that matter.
pub struct TokenRequest<'a> {
    pub form: &'a [u8],
    pub authorization: Option<&'a str>,
    /// The `DPoP` header (RFC 9449 §4).
    pub dpop: Option<&'a str>,
}

#[derive(Debug, Serialize)]
pub struct TokenResponse {
    pub access_token: String,
    pub token_type: &'static str,
    pub expires_in: i64,
    pub scope: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id_token: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub refresh_token: Option<String>,
}

/// Valid scope tokens (RFC 6749 §3.3: `NQCHAR`s separated by single spaces).
pub(super) fn parse_scope(raw: &str) -> Result<Vec<&str>, OidcError> {
    let scopes: Vec<&str> = raw.split(' ').collect();
    if scopes.iter().any(|s| {
        s.is_empty()
            || !s
                .bytes()
                .all(|b| b == 0x21 || (0x23..=0x5B).contains(&b) || (0x5D..=0x7E).contains(&b))
    }) {
        return Err(OidcError::invalid_scope(
            "scope must be space-separated tokens without quotes or backslashes",
        ));
    }
    Ok(scopes)
}

pub async fn issue_token(
    app: &AppState,
    req: TokenRequest<'_>,
) -> Result<TokenResponse, OidcError> {
    let form = Form::parse(req.form)?;
    let grant_type = form
        .get("grant_type")
        .ok_or_else(|| OidcError::invalid_request("grant_type is missing"))?;
    let endpoint = format!("{}/oauth2/token", app.issuer());
    let client = authenticate_client(app, &form, req.authorization, &endpoint).await?;
    if !SUPPORTED_GRANTS.contains(&grant_type) {
        return Err(OidcError::unsupported_grant_type(format!(
            "grant_type {grant_type:?} is not supported; this server supports {}",
            SUPPORTED_GRANTS.join(", ")
        )));
    }
    if !client.has_grant(grant_type) {
        return Err(OidcError::unauthorized_client(format!(
            "this client is not registered for the {grant_type} grant"
        )));
    }
    let jkt = match req.dpop {
        Some(proof) => Some(super::dpop::check_proof(app, proof, "POST", &endpoint, None).await?),
        None if client.settings.dpop_bound_access_tokens => {
            return Err(OidcError::invalid_dpop_proof(
                "this client must send a DPoP proof (RFC 9449 §5)",
            ));
        }
        None => None,
    };
    let response = match grant_type {
        "authorization_code" => code_grant(app, &client, &form, jkt).await,
        "refresh_token" => super::refresh::refresh_grant(app, &client, &form, jkt).await,
        _ => client_credentials(app, &client, &form, jkt).await,
    };
    match &response {
        Ok(_) => crate::ops::metrics::token_issued(grant_type),
        Err(e) => crate::ops::metrics::token_failed(e.code.as_str()),
    }
    response
}

fn access_alg(app: &AppState) -> Alg {
    Alg::parse(&app.config().keys.access_token_alg).unwrap_or(Alg::Es256)
}

fn cnf(jkt: &Option<String>) -> Option<serde_json::Value> {
    jkt.as_ref().map(|j| serde_json::json!({ "jkt": j }))
}

async fn client_credentials(
    app: &AppState,
    client: &Client,
    form: &Form,
    jkt: Option<String>,
) -> Result<TokenResponse, OidcError> {
    // §3.3: absent scope means the client's registered scopes (API scopes only).
    let granted: Vec<String> = match form.get("scope") {
        None => client
            .scopes
            .iter()
            .filter(|s| !super::registration::OIDC_SCOPES.contains(&s.as_str()))
            .cloned()
            .collect(),
        Some(raw) => {
            let asked = parse_scope(raw)?;
            if let Some(bad) = asked.iter().find(|s| {
                !client.scopes.iter().any(|c| c == *s)
                    || super::registration::OIDC_SCOPES.contains(s)
            }) {
                return Err(OidcError::invalid_scope(format!(
                    "the client may not request the scope {bad}"
                )));
            }
            let mut v: Vec<String> = asked.into_iter().map(str::to_string).collect();
            v.sort();
            v.dedup();
            v
        }
    };
    let ttl = client
        .access_token_ttl_seconds
        .unwrap_or(app.config().oauth.access_token_ttl_seconds);
    let now = app.clock().now_secs();
    let scope = granted.join(" ");
    let claims = AccessClaims {
        iss: app.issuer().to_string(),
        sub: client.id.clone(),
        aud: app.api_audience().to_string(),
        client_id: client.id.clone(),
        scope: scope.clone(),
        iat: now,
        exp: now + ttl,
        jti: crate::store::new_id(),
        sid: None,
        gid: None,
        auth_time: None,
        cnf: cnf(&jkt),
        userinfo_claims: Vec::new(),
    };
    let signer = app
        .keys()
        .signer(access_alg(app))
        .map_err(OidcError::server_error)?;
    let access_token = jwt::sign(&signer, "at+jwt", &claims).map_err(OidcError::server_error)?;
    Ok(TokenResponse {
        access_token,
        token_type: if jkt.is_some() { "DPoP" } else { "Bearer" },
        expires_in: ttl,
        scope,
        id_token: None,
        refresh_token: None,
    })
}

async fn code_grant(
    app: &AppState,
    client: &Client,
    form: &Form,
    jkt: Option<String>,
) -> Result<TokenResponse, OidcError> {
    let code = form
        .get("code")
        .ok_or_else(|| OidcError::invalid_request("code is missing"))?;
    let redirect_uri = form
        .get("redirect_uri")
        .ok_or_else(|| OidcError::invalid_request("redirect_uri is missing (RFC 6749 §4.1.3)"))?;
    let verifier = form.get("code_verifier");
    if verifier.is_some_and(|v| !pkce::valid_verifier(v)) {
        return Err(OidcError::invalid_request(
            "code_verifier must be 43 to 128 unreserved characters (RFC 7636 §4.1)",
        ));
    }
    let now = app.clock().now_ms();
    let mut tx = app.store().begin().await.map_err(OidcError::server_error)?;
    let digest = app.master_key().digest_secret(code);
    let Some(row) = grants::take_code(&mut tx, &digest, now).await? else {
        return Err(OidcError::invalid_grant(
            "the authorization code is not valid",
        ));
    };
    // Checked first: a client that does not own the code must not be able to revoke
    // its owner's grant by replaying it.
    if row.client_id != client.id {
        return Err(OidcError::invalid_grant(
            "the authorization code was issued to another client",
        ));
    }
    if row.used {
        // RFC 6749 §4.1.2: a code used twice revokes what was issued from it.
        grants::revoke_grant(&mut tx, &row.grant_id, now, "authorization code replayed").await?;
        tx.commit().await.map_err(OidcError::server_error)?;
        crate::ops::metrics::oidc_event("code_replay");
        tracing::warn!(client_id = %client.id, "authorization code replayed; its grant is revoked");
        return Err(OidcError::invalid_grant(
            "the authorization code was already used; every token issued from it is now revoked",
        ));
    }
    if row.expires_at_ms <= now {
        return Err(OidcError::invalid_grant(
            "the authorization code has expired",
        ));
    }
    if row.redirect_uri != redirect_uri {
        return Err(OidcError::invalid_grant(
            "redirect_uri differs from the one in the authorization request",
        ));
    }
    match (&row.code_challenge, verifier) {
        (Some(ch), Some(v)) if pkce::verifier_matches(v, ch) => {}
        (Some(_), Some(_)) => {
            return Err(OidcError::invalid_grant(
                "code_verifier does not match the code_challenge (RFC 7636 §4.6)",
            ))
        }
        (Some(_), None) => {
            return Err(OidcError::invalid_grant(
                "code_verifier is missing; the authorization request used PKCE",
            ))
        }
        // RFC 9700 §4.8.2: a verifier without a challenge is a downgrade attempt.
        (None, Some(_)) => {
            return Err(OidcError::invalid_grant(
                "code_verifier sent, but the authorization request had no code_challenge",
            ))
        }
        (None, None) => {}
    }
    let Some(mut grant) = grants::load_grant(&mut tx, &row.grant_id)
        .await?
        .filter(|g| !g.revoked)
    else {
        return Err(OidcError::invalid_grant(
            "the grant behind this code was revoked",
        ));
    };
    if grant.dpop_jkt.is_some() && grant.dpop_jkt != jkt {
        return Err(OidcError::invalid_grant(
            "the code is bound to another DPoP key (RFC 9449 §10)",
        ));
    }
    if let (Some(j), None, true) = (&jkt, &grant.dpop_jkt, client.settings.is_public()) {
        grants::bind_dpop(&mut tx, &grant.id, j).await?;
        grant.dpop_jkt = Some(j.clone());
    }
    let refresh = issue_refresh(app, &mut tx, client, &grant, now).await?;
    // Tokens are signed before the commit: if that fails the code stays unused and the
    // client's retry is not mistaken for a replay.
    let person = crate::directory::get_person_core(app.store(), &grant.person_id)
        .await
        .map_err(OidcError::server_error)?;
    let response = respond(app, client, &grant, person, row.nonce, refresh, jkt).await?;
    tx.commit().await.map_err(OidcError::server_error)?;
    Ok(response)
}

/// A new refresh token's lifetime: the client's own, else the server's (longer for
/// offline grants); the caller caps it at the grant's expiry.
pub(super) fn refresh_ttl_seconds(app: &AppState, client: &Client, grant: &Grant) -> i64 {
    let cfg = &app.config().oauth;
    client
        .settings
        .refresh_token_ttl_seconds
        .unwrap_or(if grant.offline {
            cfg.offline_refresh_token_ttl_seconds
        } else {
            cfg.refresh_token_ttl_seconds
        })
}

async fn issue_refresh(
    app: &AppState,
    tx: &mut crate::store::Tx,
    client: &Client,
    grant: &Grant,
    now: i64,
) -> Result<Option<String>, OidcError> {
    if !client.has_grant("refresh_token") {
        return Ok(None);
    }
    let token = crate::crypto::random_token(32);
    let expires = (now + refresh_ttl_seconds(app, client, grant) * 1000).min(grant.expires_at_ms);
    grants::insert_refresh(
        tx,
        &app.master_key().digest_secret(&token),
        &grant.id,
        now,
        expires,
    )
    .await?;
    Ok(Some(token))
}

/// Signs the access token and, for `openid` requests, the ID token, for a person
/// read by the caller (own fields; the claims load the rest when a scope needs it).
/// `nonce` only for the code exchange (OIDC Core §12.2: not on refresh).
pub(super) async fn respond(
    app: &AppState,
    client: &Client,
    grant: &Grant,
    person: crate::directory::Person,
    nonce: Option<String>,
    refresh: Option<String>,
    jkt: Option<String>,
) -> Result<TokenResponse, OidcError> {
    // Access follows the directory: a suspended or departed person gets nothing more.
    if person.status != "active" {
        return Err(OidcError::invalid_grant("the account is no longer active"));
    }
    let cfg = &app.config().oauth;
    let ttl = client
        .access_token_ttl_seconds
        .unwrap_or(cfg.access_token_ttl_seconds);
    let now = app.clock().now_secs();
    let scope = grant.scopes.join(" ");
    let claims = AccessClaims {
        iss: app.issuer().to_string(),
        sub: grant.person_id.clone(),
        aud: super::userinfo_audience(app),
        client_id: client.id.clone(),
        scope: scope.clone(),
        iat: now,
        exp: now + ttl,
        jti: crate::store::new_id(),
        sid: grant.session_id.clone(),
        gid: Some(grant.id.clone()),
        auth_time: Some(grant.auth_time_ms.div_euclid(1000)),
        cnf: cnf(&jkt),
        userinfo_claims: grant
            .claims
            .as_ref()
            .map(|c| c.userinfo.keys().cloned().collect())
            .unwrap_or_default(),
    };
    let keys = app.keys();
    let access_token = jwt::sign(
        &*keys
            .signer(access_alg(app))
            .map_err(OidcError::server_error)?,
        "at+jwt",
        &claims,
    )
    .map_err(OidcError::server_error)?;
    let id_token = if grant.scopes.iter().any(|s| s == "openid") {
        let asked: Vec<String> = grant
            .claims
            .as_ref()
            .map(|c| c.id_token.keys().cloned().collect())
            .unwrap_or_default();
        let mut c =
            super::claims::person_claims(app, &person, &grant.scopes, client, &asked).await?;
        let alg = Alg::parse(&client.settings.id_token_signed_response_alg).unwrap_or(Alg::Rs256);
        c.insert("iss".into(), app.issuer().into());
        c.insert("sub".into(), grant.person_id.clone().into());
        c.insert("aud".into(), client.id.clone().into());
        c.insert("azp".into(), client.id.clone().into());
        c.insert("iat".into(), now.into());
        c.insert("exp".into(), (now + cfg.id_token_ttl_seconds).into());
        c.insert(
            "auth_time".into(),
            grant.auth_time_ms.div_euclid(1000).into(),
        );
        c.insert("acr".into(), grant.acr.clone().into());
        c.insert("amr".into(), serde_json::json!(grant.amr));
        if let Some(sid) = &grant.session_id {
            c.insert("sid".into(), sid.clone().into());
        }
        if let Some(n) = nonce {
            c.insert("nonce".into(), n.into());
        }
        c.insert("at_hash".into(), jwt::at_hash(&access_token).into());
        let signer = keys.signer(alg).map_err(OidcError::server_error)?;
        Some(jwt::sign(&signer, "JWT", &c).map_err(OidcError::server_error)?)
    } else {
        None
    };
    Ok(TokenResponse {
        access_token,
        token_type: if jkt.is_some() { "DPoP" } else { "Bearer" },
        expires_in: ttl,
        scope,
        id_token,
        refresh_token: refresh,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scope_syntax_follows_rfc6749() {
        assert!(parse_scope("users.read orgs.read").is_ok());
        assert!(parse_scope("users.read  orgs.read").is_err());
        assert!(parse_scope("a\"b").is_err());
    }

    #[test]
    fn repeated_parameters_are_invalid_requests() {
        let err = Form::parse(b"grant_type=client_credentials&grant_type=password")
            .err()
            .unwrap();
        assert_eq!(err.code, crate::oidc::OAuthCode::InvalidRequest);
        assert_eq!(
            Form::parse(b"scope=&grant_type=x").unwrap().pairs().len(),
            1
        );
        assert!(Form::parse(b"grant_type=&grant_type=client_credentials").is_err());
    }
}
