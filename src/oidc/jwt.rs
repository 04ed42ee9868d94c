//! Compact JWS (RFC 7515) for the hub's own tokens, and verification of access
//! tokens presented to the admin API (RFC 9068 §4).

use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use base64::Engine;
use serde::{Deserialize, Serialize};

use super::keys::{KeyRing, Signer};
use super::KeyError;
use crate::AppState;

/// Signs `claims` as a compact JWS with the signer's key, `typ` in the header.
pub fn sign(signer: &Signer, typ: &str, claims: &impl Serialize) -> Result<String, KeyError> {
    let header = serde_json::json!({ "alg": signer.alg.as_str(), "kid": signer.kid, "typ": typ });
    let payload = serde_json::to_vec(claims).map_err(|e| KeyError::Crypto(e.to_string()))?;
    let mut token = String::with_capacity(512);
    token.push_str(&B64.encode(header.to_string()));
    token.push('.');
    token.push_str(&B64.encode(payload));
    let sig = signer.sign(token.as_bytes())?;
    token.push('.');
    token.push_str(&B64.encode(sig));
    Ok(token)
}

/// The claims of an RFC 9068 access token issued by this hub.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AccessClaims {
    pub iss: String,
    pub sub: String,
    pub aud: String,
    pub client_id: String,
    pub scope: String,
    pub iat: i64,
    pub exp: i64,
    pub jti: String,
    /// Person tokens: the session and grant they came from (revocation follows them).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sid: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gid: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auth_time: Option<i64>,
    /// RFC 9449 §6.1: the DPoP key the token is bound to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cnf: Option<serde_json::Value>,
    /// Claims the `claims` parameter asked for at UserInfo (OIDC Core §5.5), by
    /// name: UserInfo reads them from the token it is shown.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub userinfo_claims: Vec<String>,
}

const UNKNOWN_KEY: &str = "signed by an unknown key";

#[derive(Deserialize)]
struct Header {
    alg: String,
    kid: Option<String>,
    typ: Option<String>,
}

/// Verifies signature, header, issuer, audience and lifetime. Returns why not, in
/// words fit for the caller (never the token itself).
pub fn verify(
    ring: &KeyRing,
    token: &str,
    issuer: &str,
    audience: &str,
    now_secs: i64,
) -> Result<AccessClaims, &'static str> {
    verify_for(ring, token, issuer, &[audience], now_secs)
}

/// As [`verify`], for a token that may be meant for any of `audiences` (the
/// signature is checked once).
pub fn verify_for(
    ring: &KeyRing,
    token: &str,
    issuer: &str,
    audiences: &[&str],
    now_secs: i64,
) -> Result<AccessClaims, &'static str> {
    let mut parts = token.split('.');
    let (Some(h), Some(p), Some(s), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err("not a compact JWS");
    };
    let header: Header = B64
        .decode(h)
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .ok_or("malformed header")?;
    // RFC 9068 §4: the type must be at+jwt, so an ID token cannot pass as an access token.
    if header
        .typ
        .as_deref()
        .map(str::to_ascii_lowercase)
        .as_deref()
        != Some("at+jwt")
    {
        return Err("not an access token (typ must be at+jwt)");
    }
    let kid = header.kid.ok_or("no key id")?;
    let verifier = ring.verifier(&kid).ok_or(UNKNOWN_KEY)?;
    // The algorithm comes from our key, never from the token: `none` and HS256
    // (with the public key as the HMAC secret) cannot be substituted.
    if header.alg != verifier.alg().as_str() {
        return Err("algorithm does not match the key");
    }
    let sig = B64.decode(s).map_err(|_| "malformed signature")?;
    let signed_len = h.len() + 1 + p.len();
    if !verifier.verify(&token.as_bytes()[..signed_len], &sig) {
        return Err("bad signature");
    }
    let claims: AccessClaims = B64
        .decode(p)
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .ok_or("malformed claims")?;
    if claims.iss != issuer {
        return Err("issued by another issuer");
    }
    if !audiences.contains(&claims.aud.as_str()) {
        return Err("meant for another audience");
    }
    if now_secs >= claims.exp {
        return Err("expired");
    }
    if claims.iat > now_secs + 60 {
        return Err("issued in the future");
    }
    Ok(claims)
}

/// Verifies an access token presented to the admin API, and that its client is
/// still registered and enabled (a deleted client's tokens stop working).
/// Why an API access token was not accepted.
#[derive(Debug)]
pub enum TokenRejection {
    /// The token is not valid (says why; safe to show).
    Invalid(&'static str),
    /// The token could not be checked now (the database did not answer): a 503,
    /// never a verdict on the token.
    Unchecked(crate::store::StoreError),
}

impl From<&'static str> for TokenRejection {
    fn from(why: &'static str) -> Self {
        TokenRejection::Invalid(why)
    }
}

pub async fn verify_access_token(
    app: &AppState,
    token: &str,
) -> Result<AccessClaims, TokenRejection> {
    let check = || {
        verify(
            &app.keys(),
            token,
            app.issuer(),
            app.api_audience(),
            app.clock().now_secs(),
        )
    };
    // A key this replica has not loaded may be another replica's: reload once.
    let claims = match check() {
        Err(UNKNOWN_KEY) if app.refresh_keys().await => check()?,
        other => other?,
    };
    match app
        .clients()
        .get(app.store(), &claims.client_id, app.clock().now_ms())
        .await
    {
        Ok(Some(c)) if c.enabled => {}
        Ok(Some(_)) => return Err("the client is disabled".into()),
        Ok(None) => return Err("the client no longer exists".into()),
        Err(super::ClientError::Store(e)) => return Err(TokenRejection::Unchecked(e)),
        Err(e) => {
            return Err(TokenRejection::Unchecked(crate::store::StoreError::Worker(
                e.to_string(),
            )))
        }
    }
    // The API takes Bearer tokens only; a DPoP-bound token without its proof is refused
    // (RFC 9449 §7.1), and a token revoked at /oauth2/revoke stops working at once.
    if claims.cnf.is_some() {
        return Err("the token is DPoP-bound; this API takes Bearer tokens".into());
    }
    match super::grants_repo::revoked_jti(app.store(), &format!("revoked:{}", claims.jti)).await {
        Ok(false) => Ok(claims),
        Ok(true) => Err("the token has been revoked".into()),
        Err(e) => Err(TokenRejection::Unchecked(e)),
    }
}

/// Verifies a compact JWS signed by one of the keys `lookup` returns for the
/// header's `kid` (and `alg`, which must be that key's), and returns the header and
/// claims. Lifetimes are the caller's to check.
pub fn decode_verified<'k>(
    token: &str,
    lookup: impl Fn(Option<&str>) -> Vec<&'k super::keys::Verifier>,
) -> Result<(serde_json::Value, serde_json::Value), &'static str> {
    let mut parts = token.split('.');
    let (Some(h), Some(p), Some(s), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err("not a compact JWS");
    };
    let header: serde_json::Value = B64
        .decode(h)
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .ok_or("malformed header")?;
    let alg = header.get("alg").and_then(|a| a.as_str()).ok_or("no alg")?;
    let kid = header.get("kid").and_then(|k| k.as_str());
    let sig = B64.decode(s).map_err(|_| "malformed signature")?;
    let signed = &token.as_bytes()[..h.len() + 1 + p.len()];
    let ok = lookup(kid)
        .into_iter()
        .any(|v| v.alg().as_str() == alg && v.verify(signed, &sig));
    if !ok {
        return Err("bad signature or unknown key");
    }
    let claims: serde_json::Value = B64
        .decode(p)
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .ok_or("malformed claims")?;
    if !claims.is_object() {
        return Err("malformed claims");
    }
    Ok((header, claims))
}

/// The `at_hash` of an access token (OIDC Core §3.1.3.6): the left half of its
/// SHA-256, base64url (both RS256 and ES256 use SHA-256).
pub fn at_hash(access_token: &str) -> String {
    let d = ring::digest::digest(&ring::digest::SHA256, access_token.as_bytes());
    B64.encode(&d.as_ref()[..16])
}
