//! `id_token_hint` (OIDC Core §3.1.2.1, RP-Initiated Logout 1.0 §2): an ID token
//! this hub issued, sent back by the app as a hint about who it expects. It must
//! carry the hub's own signature (any key still published, so tokens signed before
//! a rotation verify) and issuer; its expiry is not checked (both specifications
//! expect expired hints).
//!
//! Subjects are public (`subject_types_supported: ["public"]`): an ID token's `sub`
//! is the person's directory id for every client, so a hint's subject is compared
//! with the session's person id as it is.

use super::jwt;
use crate::AppState;

/// What a verified `id_token_hint` says.
#[derive(Debug, Clone)]
pub struct Hint {
    /// `azp`, else the first audience: the client it was issued to.
    pub client_id: String,
    pub audiences: Vec<String>,
    pub sub: String,
    pub sid: Option<String>,
}

impl Hint {
    /// Issued to (among others) this client.
    pub fn issued_to(&self, client_id: &str) -> bool {
        self.audiences.iter().any(|a| a == client_id)
    }
}

/// Why a hint was refused (words fit to show the app or the person).
pub type HintRejection = &'static str;

fn check(app: &AppState, token: &str) -> Result<Hint, HintRejection> {
    if token.len() > 8192 {
        return Err("id_token_hint is too long to be an ID token from this service");
    }
    let ring = app.keys();
    let (header, claims) = jwt::decode_verified(token, |kid| {
        kid.and_then(|k| ring.verifier(k)).into_iter().collect()
    })
    .map_err(|_| "id_token_hint is not an ID token signed by this service")?;
    // The hub's access tokens (`at+jwt`) and logout tokens (`logout+jwt`) carry the
    // same signature: only an ID token (`JWT`, or no type) is a hint.
    if header
        .get("typ")
        .and_then(|t| t.as_str())
        .is_some_and(|t| !t.eq_ignore_ascii_case("JWT"))
    {
        return Err("id_token_hint is not an ID token");
    }
    if claims.get("iss").and_then(|v| v.as_str()) != Some(app.issuer()) {
        return Err("id_token_hint was issued by another issuer");
    }
    let audiences: Vec<String> = match claims.get("aud") {
        Some(serde_json::Value::String(s)) => vec![s.clone()],
        Some(serde_json::Value::Array(a)) => a
            .iter()
            .filter_map(|v| v.as_str().map(str::to_string))
            .collect(),
        _ => Vec::new(),
    };
    let sub = claims
        .get("sub")
        .and_then(|v| v.as_str())
        .filter(|s| !s.is_empty())
        .ok_or("id_token_hint has no subject")?;
    let client_id = claims
        .get("azp")
        .and_then(|v| v.as_str())
        .map(str::to_string)
        .or_else(|| audiences.first().cloned())
        .ok_or("id_token_hint has no audience")?;
    Ok(Hint {
        client_id,
        audiences,
        sub: sub.to_string(),
        sid: claims
            .get("sid")
            .and_then(|s| s.as_str())
            .map(str::to_string),
    })
}

/// Verifies a hint; a key another replica made since this one loaded its keys is
/// picked up once.
pub async fn verify_id_token_hint(app: &AppState, token: &str) -> Result<Hint, HintRejection> {
    match check(app, token) {
        Err(e) if e.ends_with("signed by this service") && app.refresh_keys().await => {
            check(app, token)
        }
        other => other,
    }
}
