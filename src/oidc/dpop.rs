//! DPoP proofs (RFC 9449 §4.3): a JWT signed with a key the client holds, naming
//! the request's method and URL, fresh, used once. Tokens are then bound to the
//! key's thumbprint (`cnf.jkt`, §6.1) and useless without it.

use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use base64::Engine;

use super::OidcError;
use crate::AppState;

/// RFC 7638 thumbprint of a public JWK (EC P-256 or RSA).
pub fn thumbprint(jwk: &serde_json::Value) -> Option<String> {
    let s = |k: &str| jwk.get(k).and_then(|v| v.as_str());
    let input = match s("kty")? {
        "EC" => format!(
            r#"{{"crv":"{}","kty":"EC","x":"{}","y":"{}"}}"#,
            s("crv")?,
            s("x")?,
            s("y")?
        ),
        "RSA" => format!(r#"{{"e":"{}","kty":"RSA","n":"{}"}}"#, s("e")?, s("n")?),
        _ => return None,
    };
    Some(B64.encode(ring::digest::digest(&ring::digest::SHA256, input.as_bytes()).as_ref()))
}

/// Checks a proof for `method` `url`; with `access_token`, also its `ath`. Returns
/// the key's thumbprint.
pub async fn check_proof(
    app: &AppState,
    proof: &str,
    method: &str,
    url: &str,
    access_token: Option<&str>,
) -> Result<String, OidcError> {
    let bad =
        |why: &str| OidcError::invalid_dpop_proof(format!("the DPoP proof is not valid: {why}"));
    let header: serde_json::Value = proof
        .split('.')
        .next()
        .and_then(|h| B64.decode(h).ok())
        .and_then(|b| serde_json::from_slice(&b).ok())
        .ok_or_else(|| bad("malformed header"))?;
    if header.get("typ").and_then(|t| t.as_str()) != Some("dpop+jwt") {
        return Err(bad("typ must be dpop+jwt"));
    }
    let jwk = header
        .get("jwk")
        .ok_or_else(|| bad("the header must carry the public key as jwk"))?;
    if jwk.get("d").is_some() {
        return Err(bad("the jwk must not contain a private key"));
    }
    if jwk.get("kty").and_then(|k| k.as_str()) == Some("EC")
        && jwk.get("crv").and_then(|c| c.as_str()) != Some("P-256")
    {
        return Err(bad("only P-256 EC keys are supported"));
    }
    let verifier = super::keys::verifier_from_jwk(jwk).ok_or_else(|| bad("unsupported jwk"))?;
    let (_, claims) = super::jwt::decode_verified(proof, |_| vec![&verifier]).map_err(bad)?;
    let s = |k: &str| claims.get(k).and_then(|v| v.as_str());
    if s("htm") != Some(method) {
        return Err(bad("htm must be the request method"));
    }
    let strip = |u: &str| u.split(['?', '#']).next().unwrap_or("").to_string();
    if s("htu").map(strip) != Some(strip(url)) {
        return Err(bad("htu must be the request URL"));
    }
    let now = app.clock().now_secs();
    let iat = claims
        .get("iat")
        .and_then(|v| v.as_i64())
        .ok_or_else(|| bad("iat is missing"))?;
    if (iat - now).abs() > 60 {
        return Err(bad("iat is not within a minute of the server's time"));
    }
    if let Some(token) = access_token {
        let ath =
            B64.encode(ring::digest::digest(&ring::digest::SHA256, token.as_bytes()).as_ref());
        if s("ath") != Some(ath.as_str()) {
            return Err(bad("ath must be the hash of the access token"));
        }
    }
    let jti = s("jti")
        .filter(|j| !j.is_empty() && j.len() <= 200)
        .ok_or_else(|| bad("jti is missing"))?;
    if crate::input::find_control(jti, false).is_some() {
        return Err(bad("jti contains a control character"));
    }
    let jkt = thumbprint(jwk).ok_or_else(|| bad("unsupported jwk"))?;
    if !super::grants_repo::use_jti(
        app.store(),
        &format!("dpop:{jkt}:{jti}"),
        (now + 120) * 1000,
    )
    .await?
    {
        return Err(bad("this proof was used before (jti replay)"));
    }
    Ok(jkt)
}
