//! The token endpoint (RFC 6749 §3.2), `client_credentials` grant (§4.4).

use base64::Engine;
use serde::Serialize;

use super::jwt::{self, AccessClaims};
use super::keys::Alg;
use super::{OAuthError, SUPPORTED_GRANTS};
use crate::AppState;

/// A token request as received: the form parameters and the `Authorization` header.
pub struct TokenRequest<'a> {
    pub form: &'a [u8],
    pub authorization: Option<&'a str>,
}

#[derive(Debug, Serialize)]
pub struct TokenResponse {
    pub access_token: String,
    pub token_type: &'static str,
    pub expires_in: i64,
    pub scope: String,
}

/// Parameters of an `application/x-www-form-urlencoded` body. RFC 6749 §3.2:
/// "Request and response parameters MUST NOT be included more than once", and a
/// parameter sent without a value is treated as omitted.
fn parse_form(body: &[u8]) -> Result<Vec<(String, String)>, OAuthError> {
    let mut out: Vec<(String, String)> = Vec::new();
    let mut names: Vec<String> = Vec::new();
    for (k, v) in url::form_urlencoded::parse(body) {
        // Repeats count even when one of them is empty (`grant_type=&grant_type=x`).
        if names.iter().any(|seen| *seen == k) {
            return Err(OAuthError::invalid_request(format!(
                "the parameter {k} is repeated; send it once"
            )));
        }
        names.push(k.to_string());
        if !v.is_empty() {
            out.push((k.into_owned(), v.into_owned()));
        }
    }
    Ok(out)
}

fn param<'a>(form: &'a [(String, String)], name: &str) -> Option<&'a str> {
    form.iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}

/// RFC 6749 §2.3.1: Basic credentials are the form-urlencoded id and secret.
fn parse_basic(header: &str) -> Result<(String, String), OAuthError> {
    let bad = || OAuthError::invalid_client("malformed HTTP Basic credentials", true);
    let (scheme, value) = header.split_once(' ').ok_or_else(bad)?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return Err(OAuthError::invalid_client(
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
    Ok((decode(id), decode(secret)))
}

/// Valid scope tokens (RFC 6749 §3.3: `NQCHAR`s separated by single spaces).
fn parse_scope(raw: &str) -> Result<Vec<&str>, OAuthError> {
    let scopes: Vec<&str> = raw.split(' ').collect();
    if scopes.iter().any(|s| {
        s.is_empty()
            || !s
                .bytes()
                .all(|b| b == 0x21 || (0x23..=0x5B).contains(&b) || (0x5D..=0x7E).contains(&b))
    }) {
        return Err(OAuthError::invalid_scope(
            "scope must be space-separated tokens without quotes or backslashes",
        ));
    }
    Ok(scopes)
}

pub async fn issue_token(
    app: &AppState,
    req: TokenRequest<'_>,
) -> Result<TokenResponse, OAuthError> {
    let form = parse_form(req.form)?;
    let grant_type = param(&form, "grant_type")
        .ok_or_else(|| OAuthError::invalid_request("grant_type is missing"))?;

    // Client authentication (§2.3): exactly one method.
    let used_basic = req.authorization.is_some();
    let (client_id, secret) = match req.authorization {
        Some(h) => {
            if param(&form, "client_secret").is_some() {
                return Err(OAuthError::invalid_request("authenticate with one method only: HTTP Basic or client_secret in the body, not both"));
            }
            let (id, secret) = parse_basic(h)?;
            if let Some(body_id) = param(&form, "client_id") {
                if body_id != id {
                    return Err(OAuthError::invalid_request("client_id in the body differs from the authenticated client"));
                }
            }
            (id, secret)
        }
        None => match (param(&form, "client_id"), param(&form, "client_secret")) {
            (Some(id), Some(secret)) => (id.to_string(), secret.to_string()),
            _ => return Err(OAuthError::invalid_client("client authentication is required: HTTP Basic or client_id and client_secret in the body", false)),
        },
    };
    let now_ms = app.clock().now_ms();
    let client = app
        .clients()
        .get(app.store(), &client_id, now_ms)
        .await
        .map_err(OAuthError::server_error)?;
    let master = app.master_key();
    let client = match client {
        Some(c) if master.secret_matches(&secret, &c.secret_digest) && c.enabled => c,
        found => {
            if found.is_none() {
                // Same work as a real check, so timing does not reveal which ids exist.
                let _ = master.secret_matches(&secret, "");
            }
            crate::ops::metrics::token_failed("invalid_client");
            tracing::warn!(client_id = ?client_id.chars().take(100).collect::<String>(), "client authentication failed");
            return Err(OAuthError::invalid_client(
                "client authentication failed",
                used_basic,
            ));
        }
    };

    if !SUPPORTED_GRANTS.contains(&grant_type) {
        return Err(OAuthError::unsupported_grant_type(format!(
            "grant_type {grant_type:?} is not supported; this server supports {}",
            SUPPORTED_GRANTS.join(", ")
        )));
    }
    if !client.grant_types.iter().any(|g| g == grant_type) {
        return Err(OAuthError::unauthorized_client(format!(
            "this client is not registered for the {grant_type} grant"
        )));
    }

    // §3.3: absent scope means the client's registered scopes.
    let granted: Vec<String> = match param(&form, "scope") {
        None => client.scopes.clone(),
        Some(raw) => {
            let asked = parse_scope(raw)?;
            if let Some(bad) = asked
                .iter()
                .find(|s| !client.scopes.iter().any(|c| c == *s))
            {
                crate::ops::metrics::token_failed("invalid_scope");
                return Err(OAuthError::invalid_scope(format!(
                    "the client may not request the scope {bad}"
                )));
            }
            let mut v: Vec<String> = asked.into_iter().map(str::to_string).collect();
            v.sort();
            v.dedup();
            v
        }
    };

    let config = app.config();
    let ttl = client
        .access_token_ttl_seconds
        .unwrap_or(config.oauth.access_token_ttl_seconds);
    let now = now_ms.div_euclid(1000);
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
    };
    let alg = Alg::parse(&config.keys.access_token_alg).unwrap_or(Alg::Es256);
    let signer = app.keys().signer(alg).map_err(OAuthError::server_error)?;
    let access_token = jwt::sign(&signer, "at+jwt", &claims).map_err(OAuthError::server_error)?;
    crate::ops::metrics::token_issued(grant_type);
    Ok(TokenResponse {
        access_token,
        token_type: "Bearer",
        expires_in: ttl,
        scope,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repeated_parameters_are_invalid_requests() {
        let err = parse_form(b"grant_type=client_credentials&grant_type=password").unwrap_err();
        assert_eq!(err.error, "invalid_request");
        assert_eq!(parse_form(b"scope=&grant_type=x").unwrap().len(), 1);
        assert!(parse_form(b"grant_type=&grant_type=client_credentials").is_err());
    }

    #[test]
    fn basic_credentials_are_url_decoded() {
        let h = format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode("a%3Ab:s%2Bc")
        );
        assert_eq!(
            parse_basic(&h).unwrap(),
            ("a:b".to_string(), "s+c".to_string())
        );
        assert!(parse_basic("Basic !!!").is_err());
    }

    #[test]
    fn scope_syntax_follows_rfc6749() {
        assert!(parse_scope("users.read orgs.read").is_ok());
        assert!(parse_scope("users.read  orgs.read").is_err());
        assert!(parse_scope("a\"b").is_err());
    }
}
