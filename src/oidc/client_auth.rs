//! Client authentication at the token, introspection, revocation and PAR endpoints
//! (RFC 6749 §2.3; OIDC Core §9): client_secret_basic, client_secret_post,
//! private_key_jwt (RFC 7523 §2.2) and none (public clients, PKCE-bound).

use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use base64::Engine;

use std::sync::Arc;

use super::{Client, OidcError};
use crate::AppState;

const JWT_BEARER: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

/// Parameters of an `application/x-www-form-urlencoded` body. RFC 6749 §3.2:
/// "Request and response parameters MUST NOT be included more than once", and a
/// parameter sent without a value is treated as omitted.
pub struct Form(Vec<(String, String)>);

impl Form {
    pub fn parse(body: &[u8]) -> Result<Form, OidcError> {
        let mut out: Vec<(String, String)> = Vec::new();
        let mut names: Vec<String> = Vec::new();
        for (k, v) in url::form_urlencoded::parse(body) {
            // Repeats count even when one of them is empty (`grant_type=&grant_type=x`).
            if names.iter().any(|seen| *seen == k) {
                return Err(OidcError::invalid_request(format!(
                    "the parameter {k} is repeated; send it once"
                )));
            }
            names.push(k.to_string());
            if !v.is_empty() {
                out.push((k.into_owned(), v.into_owned()));
            }
        }
        Ok(Form(out))
    }
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
    pub fn pairs(&self) -> &[(String, String)] {
        &self.0
    }
}

/// RFC 6749 §2.3.1: Basic credentials are the form-urlencoded id and secret.
pub fn parse_basic(header: &str) -> Result<(String, String), OidcError> {
    let bad = || OidcError::invalid_client("malformed HTTP Basic credentials", true);
    let (scheme, value) = header.split_once(' ').ok_or_else(bad)?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return Err(OidcError::invalid_client(
            "use HTTP Basic (client_secret_basic) or client_secret_post",
            true,
        ));
    }
    let raw = base64::engine::general_purpose::STANDARD
        .decode(value.trim())
        .map_err(|_| bad())?;
    let text = String::from_utf8(raw).map_err(|_| bad())?;
    let (id, secret) = text.split_once(':').ok_or_else(bad)?;
    let decode = |s: &str| {
        url::form_urlencoded::parse(format!("x={s}").as_bytes())
            .next()
            .map(|(_, v)| v.into_owned())
            .unwrap_or_default()
    };
    let (id, secret) = (decode(id), decode(secret));
    // The input rule (crate::input) for what the edge cannot see inside the header.
    if let Some(c) = crate::input::find_control(&id, false) {
        return Err(OidcError::invalid_request(format!(
            "the client_id of the HTTP Basic credentials contains a control character ({})",
            crate::input::code_point(c)
        )));
    }
    Ok((id, secret))
}

fn failed(client_id: &str, basic: bool) -> OidcError {
    crate::ops::metrics::token_failed("invalid_client");
    tracing::warn!(client_id = ?client_id.chars().take(100).collect::<String>(), "client authentication failed");
    OidcError::invalid_client("client authentication failed", basic)
}

async fn load(app: &AppState, id: &str) -> Result<Option<Arc<Client>>, OidcError> {
    Ok(app
        .clients()
        .get(app.store(), id, app.clock().now_ms())
        .await
        .map_err(OidcError::server_error)?
        .filter(|c| c.enabled))
}

/// Authenticates the client of a back-channel request; `endpoint` is the URL the
/// request was sent to (an acceptable `aud` of a client assertion).
pub async fn authenticate_client(
    app: &AppState,
    form: &Form,
    authorization: Option<&str>,
    endpoint: &str,
) -> Result<Arc<Client>, OidcError> {
    let methods = usize::from(authorization.is_some())
        + usize::from(form.get("client_secret").is_some())
        + usize::from(form.get("client_assertion").is_some());
    if methods > 1 {
        return Err(OidcError::invalid_request(
            "authenticate with one method only (RFC 6749 §2.3)",
        ));
    }
    let master = app.master_key();
    if let Some(h) = authorization {
        let (id, secret) = parse_basic(h)?;
        if form.get("client_id").is_some_and(|b| b != id) {
            return Err(OidcError::invalid_request(
                "client_id in the body differs from the authenticated client",
            ));
        }
        return match load(app, &id).await? {
            // The registered method only (OIDC Core §9, RFC 7591 §2): a client
            // registered for client_secret_post cannot switch to Basic, or back.
            Some(c)
                // The digest is compared first, whatever the method, so the time
                // taken does not tell which method a client registered.
                if master.secret_matches(&secret, &c.secret_digest)
                    && !c.settings.is_public()
                    && c.settings.token_endpoint_auth_method == "client_secret_basic" =>
            {
                Ok(c)
            }
            found => {
                if found.is_none() {
                    // Same work as a real check, so timing does not reveal which ids exist.
                    let _ = master.secret_matches(&secret, "");
                }
                Err(failed(&id, true))
            }
        };
    }
    if let Some(assertion) = form.get("client_assertion") {
        if form.get("client_assertion_type") != Some(JWT_BEARER) {
            return Err(OidcError::invalid_request(format!(
                "client_assertion_type must be {JWT_BEARER}"
            )));
        }
        return private_key_jwt(app, form, assertion, endpoint).await;
    }
    let Some(id) = form.get("client_id") else {
        return Err(OidcError::invalid_client("client authentication is required: HTTP Basic, client_secret_post, private_key_jwt, or client_id for public clients", false));
    };
    match (load(app, id).await?, form.get("client_secret")) {
        (Some(c), Some(secret))
            if master.secret_matches(secret, &c.secret_digest)
                && !c.settings.is_public()
                && c.settings.token_endpoint_auth_method == "client_secret_post" =>
        {
            Ok(c)
        }
        (Some(c), None) if c.settings.is_public() => Ok(c),
        (found, secret) => {
            if found.is_none() {
                let _ = master.secret_matches(secret.unwrap_or(""), "");
            }
            Err(failed(id, false))
        }
    }
}

/// RFC 7523 §3: iss and sub are the client id, aud is this server, exp in the
/// near future, jti never seen before; signed by a key the client registered.
async fn private_key_jwt(
    app: &AppState,
    form: &Form,
    assertion: &str,
    endpoint: &str,
) -> Result<Arc<Client>, OidcError> {
    let unverified: serde_json::Value = assertion
        .split('.')
        .nth(1)
        .and_then(|p| B64.decode(p).ok())
        .and_then(|b| serde_json::from_slice(&b).ok())
        .ok_or_else(|| OidcError::invalid_client("client_assertion is not a JWT", false))?;
    let id = unverified
        .get("sub")
        .and_then(|v| v.as_str())
        .unwrap_or("")
        .to_string();
    if form.get("client_id").is_some_and(|b| b != id) {
        return Err(OidcError::invalid_request(
            "client_id differs from the client assertion's sub",
        ));
    }
    if crate::input::find_control(&id, false).is_some() {
        return Err(OidcError::invalid_client(
            "the client assertion's sub contains a control character",
            false,
        ));
    }
    let client = match load(app, &id).await? {
        Some(c) if c.settings.token_endpoint_auth_method == "private_key_jwt" => c,
        _ => return Err(failed(&id, false)),
    };
    let keys: Vec<super::keys::Verifier> = client
        .settings
        .jwks
        .as_ref()
        .and_then(|j| j.get("keys"))
        .and_then(|k| k.as_array())
        .map(|ks| {
            ks.iter()
                .filter(|k| k.get("crv").is_none_or(|c| c == "P-256"))
                .filter_map(super::keys::verifier_from_jwk)
                .collect()
        })
        .unwrap_or_default();
    let (_, claims) = super::jwt::decode_verified(assertion, |_| keys.iter().collect())
        .map_err(|_| failed(&id, false))?;
    let now = app.clock().now_secs();
    let s = |k: &str| claims.get(k).and_then(|v| v.as_str());
    let aud_ok = match claims.get("aud") {
        Some(serde_json::Value::String(a)) => a == app.issuer() || a == endpoint,
        Some(serde_json::Value::Array(list)) => list.iter().any(|a| {
            a.as_str()
                .is_some_and(|a| a == app.issuer() || a == endpoint)
        }),
        _ => false,
    };
    let exp = claims.get("exp").and_then(|v| v.as_i64()).unwrap_or(0);
    if s("iss") != Some(id.as_str()) || !aud_ok || exp <= now || exp > now + 600 {
        return Err(OidcError::invalid_client("the client assertion must have iss = sub = client_id, aud = the issuer, and exp within 10 minutes (RFC 7523 §3)", false));
    }
    let jti = s("jti")
        .filter(|j| crate::input::find_control(j, false).is_none())
        .ok_or_else(|| {
            OidcError::invalid_client(
                "the client assertion needs a jti without control characters",
                false,
            )
        })?;
    if !super::grants_repo::use_jti(
        app.store(),
        &format!("assertion:{id}:{jti}"),
        (exp + 60) * 1000,
    )
    .await?
    {
        return Err(OidcError::invalid_client(
            "this client assertion was used before (jti replay)",
            false,
        ));
    }
    Ok(client)
}
