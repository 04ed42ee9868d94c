//! ID token validation (OpenID Connect Core 1.0 §3.1.3.7) and the hub's own rules on
//! top: hosted domain / tenant restrictions, a verified e-mail for e-mail links, and
//! whether the provider's `amr`/`acr` say it used more than one factor.
//!
//! The openidconnect crate checks steps 1-3 and 6-12 (no JWE; `iss` exactly the
//! discovered issuer; `aud` contains our client id and no audience we do not trust;
//! the signature with the provider's JWKS; `exp`; the nonce, compared through SHA-256
//! digests so not in variable time). Here: the clock and its allowance, the accepted
//! algorithms, `azp` (steps 4-5), `iat` (step 10) and `auth_time` (step 13).

use openidconnect::core::{CoreGenderClaim, CoreIdToken, CoreJsonWebKey, CoreJwsSigningAlgorithm};
use openidconnect::{
    ClaimsVerificationError, IdTokenClaims, IdTokenVerifier, Nonce, SignatureVerificationError,
};
use serde_json::{Map, Value};

use crate::config::OidcIdpConfig;
use crate::federation::error::IdTokenRefusal;
use crate::federation::linking::Asserted;
use crate::federation::FederationError;

/// An ID token older than this (plus the clock allowance) was not issued for the code
/// we just exchanged.
const MAX_TOKEN_AGE_SECONDS: i64 = 600;

/// Asymmetric algorithms only: an HMAC-signed ID token would be keyed by our client
/// secret, which the provider's other admins and our config files also know.
const ALGORITHMS: [CoreJwsSigningAlgorithm; 9] = [
    CoreJwsSigningAlgorithm::RsaSsaPkcs1V15Sha256,
    CoreJwsSigningAlgorithm::RsaSsaPkcs1V15Sha384,
    CoreJwsSigningAlgorithm::RsaSsaPkcs1V15Sha512,
    CoreJwsSigningAlgorithm::RsaSsaPssSha256,
    CoreJwsSigningAlgorithm::RsaSsaPssSha384,
    CoreJwsSigningAlgorithm::RsaSsaPssSha512,
    CoreJwsSigningAlgorithm::EcdsaP256Sha256,
    CoreJwsSigningAlgorithm::EcdsaP384Sha384,
    CoreJwsSigningAlgorithm::EdDsa,
];

pub struct Expect<'a> {
    pub cfg: &'a OidcIdpConfig,
    pub nonce: &'a str,
    pub now_ms: i64,
    pub skew_seconds: i64,
    /// The max_age we sent, if any.
    pub max_age: Option<i64>,
}

/// What a valid ID token says about the person.
#[derive(Debug)]
pub struct Checked {
    pub subject: String,
    /// Every claim as text values, by name (for linking and just-in-time creation).
    claims: Vec<(String, Vec<String>)>,
    pub mfa: bool,
}

impl Asserted for Checked {
    fn values(&self, name: &str) -> Vec<&str> {
        self.claims
            .iter()
            .filter(|(n, _)| n == name)
            .flat_map(|(_, v)| v.iter().map(String::as_str))
            .filter(|v| !v.trim().is_empty())
            .collect()
    }

    fn stable_subject(&self) -> Option<&str> {
        Some(&self.subject)
    }
}

fn refused(r: IdTokenRefusal) -> FederationError {
    FederationError::IdToken(r)
}

fn at(ms: i64) -> chrono::DateTime<chrono::Utc> {
    chrono::DateTime::from_timestamp_millis(ms).unwrap_or_default()
}

/// Steps 1-13 on a token; `Err(None)` means "no key with this kid": the caller may
/// fetch the provider's keys again and retry once.
pub fn verify(
    token: &CoreIdToken,
    verifier: IdTokenVerifier<'_, CoreJsonWebKey>,
    expect: &Expect<'_>,
) -> Result<Checked, Option<FederationError>> {
    let skew_ms = expect.skew_seconds * 1000;
    let now = expect.now_ms;
    let verifier = verifier
        .set_allowed_algs(ALGORITHMS)
        // Step 9 with the allowance: exp may be up to `skew` behind our clock.
        .set_time_fn(move || at(now - skew_ms))
        // Step 10: issued now (for this exchange), give or take the allowance.
        .set_issue_time_verifier_fn(move |iat| {
            let iat_ms = iat.timestamp_millis();
            if iat_ms > now + skew_ms {
                Err(format!("iat is {}s in the future", (iat_ms - now) / 1000))
            } else if iat_ms < now - skew_ms - MAX_TOKEN_AGE_SECONDS * 1000 {
                Err(format!("iat is {}s old", (now - iat_ms) / 1000))
            } else {
                Ok(())
            }
        });
    let nonce = Nonce::new(expect.nonce.to_string());
    let claims = token.claims(&verifier, &nonce).map_err(|e| match e {
        ClaimsVerificationError::SignatureVerification(
            SignatureVerificationError::NoMatchingKey,
        ) => None,
        other => Some(refusal(other)),
    })?;
    check_claims(claims, token, expect).map_err(Some)
}

fn refusal(e: ClaimsVerificationError) -> FederationError {
    let r = match e {
        ClaimsVerificationError::InvalidIssuer(m) => IdTokenRefusal::Issuer(m),
        ClaimsVerificationError::InvalidAudience(m) => IdTokenRefusal::Audience(m),
        ClaimsVerificationError::InvalidNonce(m) => IdTokenRefusal::Nonce(m),
        // The issue-time check reports through Expired too; its messages start "iat".
        ClaimsVerificationError::Expired(m) if m.starts_with("iat") => IdTokenRefusal::IssuedAt(m),
        ClaimsVerificationError::Expired(m) => IdTokenRefusal::Expired(m),
        ClaimsVerificationError::InvalidAuthTime(m) => IdTokenRefusal::AuthTime(m),
        ClaimsVerificationError::SignatureVerification(s) => {
            IdTokenRefusal::Signature(s.to_string())
        }
        other => IdTokenRefusal::Malformed(other.to_string()),
    };
    refused(r)
}

fn check_claims(
    claims: &IdTokenClaims<openidconnect::EmptyAdditionalClaims, CoreGenderClaim>,
    token: &CoreIdToken,
    expect: &Expect<'_>,
) -> Result<Checked, FederationError> {
    let cfg = expect.cfg;
    // Steps 4-5: with several audiences the token names who it was issued to, and
    // that must be us; a present azp must be us in any case.
    match claims.authorized_party() {
        Some(azp) if azp.as_str() != cfg.client_id => {
            return Err(refused(IdTokenRefusal::AuthorizedParty(format!(
                "azp is not our client id ({})",
                azp.as_str().chars().take(80).collect::<String>()
            ))))
        }
        None if claims.audiences().len() > 1 => {
            return Err(refused(IdTokenRefusal::AuthorizedParty(
                "several audiences and no azp".into(),
            )))
        }
        _ => {}
    }
    // Step 13: we asked for a recent authentication, so auth_time must show one.
    if let Some(max_age) = expect.max_age {
        let Some(auth_time) = claims.auth_time() else {
            return Err(refused(IdTokenRefusal::AuthTime("missing".into())));
        };
        let oldest = expect.now_ms - (max_age + expect.skew_seconds) * 1000;
        if auth_time.timestamp_millis() < oldest {
            return Err(refused(IdTokenRefusal::AuthTime(format!(
                "the authentication is older than max_age={max_age}"
            ))));
        }
    }
    let raw = payload(token)?;
    let text = |name: &str| raw.get(name).and_then(Value::as_str);
    // Google Workspace (hd) and Entra (tid): which organization the account is in. Not
    // in the list, or absent (a consumer Google account has no hd): refused.
    if !cfg.allowed_hd.is_empty() {
        let hd = text("hd").unwrap_or("");
        if !cfg.allowed_hd.iter().any(|d| d.eq_ignore_ascii_case(hd)) {
            let shown = if hd.is_empty() {
                "a personal account".to_string()
            } else {
                hd.chars().take(100).collect()
            };
            return Err(FederationError::HostedDomain(shown));
        }
    }
    if !cfg.allowed_tid.is_empty() {
        let tid = text("tid").unwrap_or("");
        if !cfg.allowed_tid.iter().any(|t| t.eq_ignore_ascii_case(tid)) {
            return Err(FederationError::Tenant(tid.chars().take(40).collect()));
        }
    }
    // An unverified address is anyone's to type in at some providers: it must not
    // find a directory person. (Some providers send the boolean as a string.)
    if cfg.link.claim == "email" && cfg.require_email_verified {
        let verified = matches!(raw.get("email_verified"), Some(Value::Bool(true)))
            || matches!(raw.get("email_verified"), Some(Value::String(s)) if s == "true");
        if !verified {
            return Err(FederationError::EmailNotVerified);
        }
    }
    let amr: Vec<&str> = claims
        .auth_method_refs()
        .map(|v| v.iter().map(|a| a.as_str()).collect())
        .unwrap_or_default();
    let acr = claims.auth_context_ref().map(|a| a.as_str());
    let mfa = amr.iter().any(|a| cfg.mfa_amr.iter().any(|m| m == a))
        || acr.is_some_and(|a| cfg.mfa_acr.iter().any(|m| m == a));
    let subject = claims.subject().as_str().to_string();
    if subject.is_empty() || subject.len() > 255 {
        return Err(refused(IdTokenRefusal::Malformed(
            "sub must be 1-255 characters (Core §2)".into(),
        )));
    }
    Ok(Checked {
        subject,
        claims: raw.iter().map(|(k, v)| (k.clone(), texts(v))).collect(),
        mfa,
    })
}

/// The claims exactly as signed (the signature was checked over these bytes).
fn payload(token: &CoreIdToken) -> Result<Map<String, Value>, FederationError> {
    use base64::Engine as _;
    let compact = token.to_string();
    let part = compact.split('.').nth(1).unwrap_or("");
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(part.trim_end_matches('='))
        .map_err(|_| refused(IdTokenRefusal::Malformed("payload is not base64url".into())))?;
    serde_json::from_slice(&bytes).map_err(|_| {
        refused(IdTokenRefusal::Malformed(
            "payload is not a JSON object".into(),
        ))
    })
}

/// A claim's values as text: a string, each string/number/boolean of an array, or a
/// number or boolean. Objects are not link values.
fn texts(v: &Value) -> Vec<String> {
    match v {
        Value::String(s) => vec![s.clone()],
        Value::Number(n) => vec![n.to_string()],
        Value::Bool(b) => vec![b.to_string()],
        Value::Array(items) => items
            .iter()
            .filter(|i| !i.is_array() && !i.is_object())
            .flat_map(texts)
            .collect(),
        _ => Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    use base64::Engine as _;
    use openidconnect::core::{CoreJsonWebKeySet, CoreRsaPrivateSigningKey};
    use openidconnect::{ClientId, IssuerUrl, JsonWebKeyId, PrivateSigningKey};
    use serde_json::json;

    const ISS: &str = "https://idp.example";
    const NOW_MS: i64 = 1_800_000_000_000;

    fn key() -> CoreRsaPrivateSigningKey {
        let rsa = openssl::rsa::Rsa::generate(2048).unwrap();
        let pem = String::from_utf8(rsa.private_key_to_pem().unwrap()).unwrap();
        CoreRsaPrivateSigningKey::from_pem(&pem, Some(JsonWebKeyId::new("k1".into()))).unwrap()
    }

    fn config(extra: &str) -> OidcIdpConfig {
        toml::from_str(&format!(
            "id='g'\ndisplay_name='G'\nissuer='{ISS}'\nclient_id='hub'\nclient_secret_env='PATH'\n{extra}"
        ))
        .unwrap()
    }

    /// A token signed with `key` (RS256, kid k1) over exactly these claims.
    fn token(key: &CoreRsaPrivateSigningKey, claims: serde_json::Value) -> CoreIdToken {
        let header = URL_SAFE_NO_PAD.encode(br#"{"alg":"RS256","kid":"k1","typ":"JWT"}"#);
        let body = URL_SAFE_NO_PAD.encode(claims.to_string());
        let input = format!("{header}.{body}");
        let sig = key
            .sign(
                &CoreJwsSigningAlgorithm::RsaSsaPkcs1V15Sha256,
                input.as_bytes(),
            )
            .unwrap();
        format!("{input}.{}", URL_SAFE_NO_PAD.encode(sig))
            .parse()
            .unwrap()
    }

    fn good() -> serde_json::Value {
        json!({
            "iss": ISS, "aud": "hub", "sub": "user-1", "nonce": "n-1",
            "iat": NOW_MS / 1000 - 5, "exp": NOW_MS / 1000 + 300,
            "email": "ana@riverside.k12.example", "email_verified": true,
            "hd": "riverside.k12.example", "tid": "9188040d-6c67-4c5b-b112-36a304b66dad",
            "amr": ["pwd"], "auth_time": NOW_MS / 1000 - 30,
        })
    }

    fn check(
        signer: &CoreRsaPrivateSigningKey,
        trusted: &CoreRsaPrivateSigningKey,
        cfg: &OidcIdpConfig,
        claims: serde_json::Value,
        max_age: Option<i64>,
    ) -> Result<Checked, Option<FederationError>> {
        let jwks = CoreJsonWebKeySet::new(vec![trusted.as_verification_key()]);
        let verifier = IdTokenVerifier::new_public_client(
            ClientId::new("hub".into()),
            IssuerUrl::new(ISS.into()).unwrap(),
            jwks,
        );
        let expect = Expect {
            cfg,
            nonce: "n-1",
            now_ms: NOW_MS,
            skew_seconds: 60,
            max_age,
        };
        verify(&token(signer, claims), verifier, &expect)
    }

    fn code(r: Result<Checked, Option<FederationError>>) -> &'static str {
        match r {
            Ok(_) => "ok",
            Err(None) => "no_key",
            Err(Some(e)) => e.code(),
        }
    }

    #[test]
    fn each_claim_rule_refuses_with_its_own_code() {
        let k = key();
        let cfg = config(
            "allowed_hd=['riverside.k12.example']\nallowed_tid=['9188040d-6c67-4c5b-b112-36a304b66dad']",
        );
        let ok = check(&k, &k, &cfg, good(), Some(300)).unwrap();
        assert_eq!(ok.subject, "user-1");
        assert_eq!(ok.values("email"), ["ana@riverside.k12.example"]);
        assert!(!ok.mfa);
        let with = |f: &dyn Fn(&mut serde_json::Value)| {
            let mut c = good();
            f(&mut c);
            c
        };
        let cases: Vec<(&str, serde_json::Value)> = vec![
            (
                "issuer",
                with(&|c| c["iss"] = json!("https://evil.example")),
            ),
            ("audience", with(&|c| c["aud"] = json!("someone-else"))),
            (
                "audience",
                with(&|c| c["aud"] = json!(["hub", "someone-else"])),
            ),
            ("azp", with(&|c| c["azp"] = json!("someone-else"))),
            ("nonce", with(&|c| c["nonce"] = json!("n-2"))),
            (
                "nonce",
                with(&|c| {
                    c.as_object_mut().unwrap().remove("nonce");
                }),
            ),
            (
                "token_expired",
                with(&|c| c["exp"] = json!(NOW_MS / 1000 - 61)),
            ),
            (
                "issued_at",
                with(&|c| c["iat"] = json!(NOW_MS / 1000 + 120)),
            ),
            (
                "issued_at",
                with(&|c| c["iat"] = json!(NOW_MS / 1000 - 3600)),
            ),
            (
                "auth_time",
                with(&|c| c["auth_time"] = json!(NOW_MS / 1000 - 1000)),
            ),
            (
                "auth_time",
                with(&|c| {
                    c.as_object_mut().unwrap().remove("auth_time");
                }),
            ),
            ("hd", with(&|c| c["hd"] = json!("gmail.com"))),
            (
                "hd",
                with(&|c| {
                    c.as_object_mut().unwrap().remove("hd");
                }),
            ),
            (
                "tid",
                with(&|c| c["tid"] = json!("00000000-0000-0000-0000-000000000000")),
            ),
            (
                "email_unverified",
                with(&|c| c["email_verified"] = json!(false)),
            ),
            (
                "email_unverified",
                with(&|c| {
                    c.as_object_mut().unwrap().remove("email_verified");
                }),
            ),
        ];
        for (want, claims) in cases {
            assert_eq!(
                code(check(&k, &k, &cfg, claims.clone(), Some(300))),
                want,
                "{claims}"
            );
        }
        // Within the clock allowance: expired 30 s ago is still fine.
        let late = with(&|c| c["exp"] = json!(NOW_MS / 1000 - 30));
        assert_eq!(code(check(&k, &k, &cfg, late, None)), "ok");
    }

    /// Some providers send `email_verified` as the string "true"/"false" (issue 14,
    /// defect 8): it was a parse failure of the whole token response ("unparsable
    /// response", 502); now it means the boolean it says.
    #[test]
    fn email_verified_as_a_string_is_read_as_the_boolean() {
        let k = key();
        let cfg = config("");
        let with = |v: serde_json::Value| {
            let mut c = good();
            c["email_verified"] = v;
            c
        };
        let ok = check(&k, &k, &cfg, with(json!("true")), None).unwrap();
        assert_eq!(ok.values("email"), ["ana@riverside.k12.example"]);
        assert_eq!(
            code(check(&k, &k, &cfg, with(json!("false")), None)),
            "email_unverified"
        );
    }

    #[test]
    fn a_forged_signature_is_refused_and_an_unknown_kid_asks_for_keys() {
        let (real, forger) = (key(), key());
        let cfg = config("");
        // Same kid, other key: the signature does not verify.
        assert_eq!(code(check(&forger, &real, &cfg, good(), None)), "signature");
        // A kid the JWKS does not have: the caller refetches the keys.
        let jwks = CoreJsonWebKeySet::new(vec![]);
        let verifier = IdTokenVerifier::new_public_client(
            ClientId::new("hub".into()),
            IssuerUrl::new(ISS.into()).unwrap(),
            jwks,
        );
        let expect = Expect {
            cfg: &cfg,
            nonce: "n-1",
            now_ms: NOW_MS,
            skew_seconds: 60,
            max_age: None,
        };
        assert!(matches!(
            verify(&token(&real, good()), verifier, &expect),
            Err(None)
        ));
    }

    #[test]
    fn mfa_comes_from_amr_or_acr_as_configured() {
        let k = key();
        let cfg = config("");
        let mut c = good();
        c["amr"] = json!(["pwd", "otp"]);
        assert!(check(&k, &k, &cfg, c, None).unwrap().mfa);
        let mut c = good();
        c["acr"] = json!("https://refeds.org/profile/mfa");
        assert!(check(&k, &k, &cfg, c, None).unwrap().mfa);
        let strict = config("mfa_amr=['hwk']\nmfa_acr=[]");
        let mut c = good();
        c["amr"] = json!(["pwd", "otp"]);
        assert!(!check(&k, &k, &strict, c, None).unwrap().mfa);
    }
}
