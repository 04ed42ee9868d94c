//! A downstream app's `<samlp:AuthnRequest>` (SAML core §3.4.1), received over the
//! HTTP-Redirect binding (bindings §3.4: DEFLATE, base64, URL-encoded; signed over the
//! query string) or the HTTP-POST binding (§3.5: base64; an enveloped XML signature).
//!
//! Until the app and the answer address (its AssertionConsumerService from metadata)
//! are known good, a failure is shown to the person; after that, a failure is sent back
//! to the app as a Response with an error status (profiles §4.1.4.1).

use base64::Engine as _;
use flate2::read::DeflateDecoder;
use openssl::hash::MessageDigest;
use openssl::sign::Verifier;
use openssl::x509::X509;
use samael::crypto::{CertificateDer, Crypto, CryptoProvider, ReduceMode};
use samael::schema::AuthnRequest;
use serde::{Deserialize, Serialize};
use std::io::Read as _;

use super::sp_metadata::SpEntity;
use super::{SamlApps, SamlIdpError};
use crate::authn::mfa::{Assurance, ACR_MFA, ACR_PASSKEY};

/// An AuthnRequest is well under 10 KiB; inflating stops here (no DEFLATE bombs).
const MAX_REQUEST_BYTES: u64 = 64 * 1024;
/// Bindings §3.4.3 says senders keep RelayState to 80 bytes; many apps put their
/// return URL there, so more is accepted, within reason.
const MAX_RELAY_STATE: usize = 1024;
const POST_BINDING: &str = "urn:oasis:names:tc:SAML:2.0:bindings:HTTP-POST";
pub const NAMEID_PERSISTENT: &str = "urn:oasis:names:tc:SAML:2.0:nameid-format:persistent";
pub const NAMEID_EMAIL: &str = "urn:oasis:names:tc:SAML:1.1:nameid-format:emailAddress";
const NAMEID_UNSPECIFIED: &str = "urn:oasis:names:tc:SAML:1.1:nameid-format:unspecified";
pub const AC_PASSWORD_PROTECTED: &str =
    "urn:oasis:names:tc:SAML:2.0:ac:classes:PasswordProtectedTransport";
pub const AC_PASSWORD: &str = "urn:oasis:names:tc:SAML:2.0:ac:classes:Password";
pub const AC_UNSPECIFIED: &str = "urn:oasis:names:tc:SAML:2.0:ac:classes:unspecified";
/// REFEDS MFA profile: the class most SAML apps look for when they need two factors.
pub const AC_REFEDS_MFA: &str = "https://refeds.org/profile/mfa";

/// What the answer needs, kept with the pending sign-in.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Pending {
    pub sp_id: String,
    /// None for an IdP-initiated sign-in (no InResponseTo, profiles §4.1.5).
    pub request_id: Option<String>,
    pub acs_url: String,
    pub relay_state: Option<String>,
    /// The NameID format URN to answer with.
    pub name_id_format: String,
    /// The NameID the app asked about (`<Subject>`, core §3.4.1.4): the answer must be
    /// about that person or fail.
    #[serde(default)]
    pub subject: Option<String>,
    /// The person was already sent to sign in again because the session was someone
    /// else's: a second mismatch fails the request.
    #[serde(default)]
    pub subject_relogin: bool,
    /// RequestedAuthnContext classes and comparison, to answer with a listed class
    /// (core §3.3.2.2.1); empty when the app asked for none.
    #[serde(default)]
    pub requested_contexts: Vec<String>,
    #[serde(default)]
    pub comparison: Option<String>,
}

/// The request as it arrived, before any check.
#[derive(Debug)]
pub struct Received {
    pub xml: String,
    pub relay_state: Option<String>,
    /// HTTP-Redirect signature: the signed octets (as received, §3.4.4.1), SigAlg and
    /// the signature.
    pub query_signature: Option<(String, String, Vec<u8>)>,
}

/// A request that passed every check.
#[derive(Debug)]
pub struct Checked {
    pub pending: Pending,
    pub force_authn: bool,
    pub passive: bool,
    /// The hub's acr value for what the app's RequestedAuthnContext needs.
    pub acr_values: Option<String>,
    pub login_hint: Option<String>,
    /// Until when the request id must be remembered (`saml_idp::first_use`): after
    /// that the request is refused as too old. None for an IdP-initiated sign-in.
    pub remember_until_ms: Option<i64>,
}

/// Why a request is not answered with a sign-in.
#[derive(Debug)]
pub enum Refused {
    /// Shown to the person: the app or its answer address is not trusted.
    Page(SamlIdpError),
    /// Sent to the app as a Response with this second-level status (core §3.2.2.2).
    Status {
        pending: Box<Pending>,
        top: &'static str,
        second: &'static str,
        message: String,
    },
}

fn bad(reason: &'static str, detail: impl Into<String>) -> SamlIdpError {
    SamlIdpError::bad(reason, detail)
}

/// Form decoding of one query value (`+` is a space; bindings §3.4.4.1 signs the
/// encoded form, so the raw text is kept separately).
fn url_decode(v: &str) -> Result<String, SamlIdpError> {
    let plus = v.replace('+', " ");
    percent_encoding::percent_decode_str(&plus)
        .decode_utf8()
        .map(|s| s.into_owned())
        .map_err(|_| bad("malformed", "a query parameter is not UTF-8"))
}

fn b64(v: &str) -> Result<Vec<u8>, SamlIdpError> {
    let compact: String = v.chars().filter(|c| !c.is_ascii_whitespace()).collect();
    base64::engine::general_purpose::STANDARD
        .decode(compact.as_bytes())
        .map_err(|_| bad("malformed", "SAMLRequest is not base64"))
}

fn relay_state(v: Option<String>) -> Result<Option<String>, SamlIdpError> {
    match v {
        Some(r) if r.len() > MAX_RELAY_STATE => {
            Err(bad("relay_state", "RelayState is over 1024 bytes"))
        }
        Some(r) if r.is_empty() => Ok(None),
        other => Ok(other),
    }
}

/// HTTP-Redirect binding: the raw query string, exactly as received.
pub fn from_query(raw_query: &str) -> Result<Received, SamlIdpError> {
    let mut raw: [Option<&str>; 4] = [None; 4];
    const NAMES: [&str; 4] = ["SAMLRequest", "RelayState", "SigAlg", "Signature"];
    for pair in raw_query.split('&').filter(|p| !p.is_empty()) {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        if let Some(i) = NAMES.iter().position(|n| *n == k) {
            if raw[i].replace(v).is_some() {
                return Err(bad("malformed", format!("{k} is repeated")));
            }
        }
    }
    let [Some(req_raw), relay_raw, alg_raw, sig_raw] = raw else {
        return Err(bad("malformed", "there is no SAMLRequest"));
    };
    let deflated = b64(&url_decode(req_raw)?)?;
    let mut xml = String::new();
    DeflateDecoder::new(deflated.as_slice())
        .take(MAX_REQUEST_BYTES + 1)
        .read_to_string(&mut xml)
        .map_err(|_| bad("malformed", "SAMLRequest is not DEFLATE-compressed UTF-8"))?;
    if xml.len() as u64 > MAX_REQUEST_BYTES {
        return Err(bad("too_large", "SAMLRequest is over 64 KiB"));
    }
    let query_signature = match (alg_raw, sig_raw) {
        (None, None) => None,
        (Some(alg), Some(sig)) => {
            // §3.4.4.1: SAMLRequest=…&RelayState=…&SigAlg=…, each as received.
            let mut signed = format!("SAMLRequest={req_raw}");
            if let Some(r) = relay_raw {
                signed.push_str(&format!("&RelayState={r}"));
            }
            signed.push_str(&format!("&SigAlg={alg}"));
            Some((signed, url_decode(alg)?, b64(&url_decode(sig)?)?))
        }
        _ => return Err(bad("signature", "SigAlg and Signature go together")),
    };
    Ok(Received {
        xml,
        relay_state: relay_state(relay_raw.map(url_decode).transpose()?)?,
        query_signature,
    })
}

/// HTTP-POST binding: the form's SAMLRequest (base64, not compressed) and RelayState.
pub fn from_form(saml_request: &str, relay: Option<&str>) -> Result<Received, SamlIdpError> {
    if saml_request.len() as u64 > MAX_REQUEST_BYTES * 4 / 3 + 4 {
        return Err(bad("too_large", "SAMLRequest is over 64 KiB"));
    }
    let xml = String::from_utf8(b64(saml_request)?)
        .map_err(|_| bad("malformed", "SAMLRequest is not UTF-8"))?;
    Ok(Received {
        xml,
        relay_state: relay_state(relay.map(str::to_string))?,
        query_signature: None,
    })
}

/// RSA or ECDSA with SHA-2 (bindings §3.4.4.1 names the algorithm in SigAlg).
fn digest_for(sig_alg: &str) -> Option<MessageDigest> {
    match sig_alg {
        "http://www.w3.org/2001/04/xmldsig-more#rsa-sha256"
        | "http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha256" => Some(MessageDigest::sha256()),
        "http://www.w3.org/2001/04/xmldsig-more#rsa-sha384"
        | "http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha384" => Some(MessageDigest::sha384()),
        "http://www.w3.org/2001/04/xmldsig-more#rsa-sha512"
        | "http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha512" => Some(MessageDigest::sha512()),
        _ => None,
    }
}

fn query_signature_ok(certs: &[Vec<u8>], signed: &str, alg: &str, sig: &[u8]) -> bool {
    let Some(md) = digest_for(alg) else {
        return false;
    };
    certs.iter().any(|der| {
        let Ok(key) = X509::from_der(der).and_then(|c| c.public_key()) else {
            return false;
        };
        Verifier::new(md, &key)
            .and_then(|mut v| {
                v.update(signed.as_bytes())?;
                v.verify(sig)
            })
            .unwrap_or(false)
    })
}

/// Checks the request's signature (when there is one, or when the app must sign) and
/// returns the XML to read: for a POST-signed request, only what the signature covers.
/// The flag says whether a signature was checked.
fn verified_xml(
    r: &Received,
    sp: &SpEntity,
    must_sign: bool,
) -> Result<(String, bool), SamlIdpError> {
    if let Some((signed, alg, sig)) = &r.query_signature {
        if digest_for(alg).is_none() {
            return Err(bad(
                "signature",
                "SigAlg must be RSA or ECDSA with SHA-256, -384 or -512",
            ));
        }
        if !query_signature_ok(&sp.signing_certs, signed, alg, sig) {
            return Err(bad(
                "signature",
                "the request's signature does not verify with the app's certificate",
            ));
        }
        return Ok((r.xml.clone(), true));
    }
    let has_xml_signature = r.xml.contains("SignatureValue");
    if !has_xml_signature {
        if must_sign {
            return Err(bad(
                "unsigned",
                "this app must sign its requests, and this one is not signed",
            ));
        }
        return Ok((r.xml.clone(), false));
    }
    let certs: Vec<CertificateDer> = sp
        .signing_certs
        .iter()
        .map(|d| CertificateDer::from(d.clone()))
        .collect();
    if certs.is_empty() {
        return Err(bad(
            "signature",
            "the request is signed but the app's metadata has no signing certificate",
        ));
    }
    let allowed = crate::federation::saml_response::allowed_algorithms(false);
    Crypto::reduce_xml_to_signed_with_allowed_algorithms(
        &r.xml,
        &certs,
        ReduceMode::PreDigest,
        allowed.as_deref(),
    )
    .map(|reduced| (reduced, true))
    .map_err(|_| {
        bad(
            "signature",
            "the request's signature does not verify with the app's certificate",
        )
    })
}

/// The requirement a RequestedAuthnContext sets (core §3.3.2.2.1), as the hub's acr;
/// Err when no listed class is one the hub can satisfy (status NoAuthnContext).
fn requested_level(req: &AuthnRequest) -> Result<Option<&'static str>, ()> {
    use samael::schema::AuthnContextComparison as C;
    let Some(rac) = &req.requested_authn_context else {
        return Ok(None);
    };
    let levels: Vec<Assurance> = rac
        .authn_context_class_refs
        .iter()
        .flatten()
        .filter_map(|c| match c.value.as_deref()? {
            AC_PASSWORD_PROTECTED | AC_PASSWORD | AC_UNSPECIFIED => Some(Assurance::Single),
            AC_REFEDS_MFA | "http://schemas.microsoft.com/claims/multipleauthn" | ACR_MFA => {
                Some(Assurance::Mfa)
            }
            ACR_PASSKEY => Some(Assurance::Passkey),
            _ => None,
        })
        .collect();
    let weakest = levels.iter().min().copied().ok_or(())?;
    let level = match rac.comparison {
        Some(C::Maximum) => Assurance::Single,
        Some(C::Better) => match levels.iter().max() {
            Some(Assurance::Single) => Assurance::Mfa,
            Some(Assurance::Mfa) => Assurance::Passkey,
            _ => return Err(()),
        },
        _ => weakest,
    };
    Ok(match level {
        Assurance::Single => None,
        Assurance::Mfa => Some(ACR_MFA),
        Assurance::Passkey => Some(ACR_PASSKEY),
    })
}

/// The NameID format URN an app is registered for.
pub fn name_id_format(sp: &crate::config::SamlSpConfig) -> &'static str {
    match sp.name_id_format.as_str() {
        "email" => NAMEID_EMAIL,
        _ => NAMEID_PERSISTENT,
    }
}

fn id_ok(id: &str) -> bool {
    // xs:ID is an NCName; 256 is far beyond any real id and bounds what we echo.
    !id.is_empty()
        && id.len() <= 256
        && !id.starts_with(|c: char| c.is_ascii_digit() || c == '-' || c == '.')
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"_-.".contains(&b))
}

fn truncated(s: &str) -> String {
    s.chars().take(200).collect()
}

/// ID, Version, Destination (required when signed, bindings §3.4.5.2 / §3.5.5.2) and
/// the IssueInstant window.
fn envelope(
    apps: &SamlApps,
    req: &AuthnRequest,
    signed: bool,
    now_ms: i64,
) -> Result<(), SamlIdpError> {
    if !id_ok(&req.id) {
        return Err(bad("malformed", "the request ID is not an xs:ID"));
    }
    if req.version != "2.0" {
        return Err(bad("version", "only SAML 2.0 requests are accepted"));
    }
    match req.destination.as_deref() {
        Some(d) if d != apps.sso_url => {
            return Err(bad(
                "destination",
                "the request was addressed to another service",
            ))
        }
        None if signed => {
            return Err(bad(
                "destination",
                "a signed request must carry Destination",
            ))
        }
        _ => {}
    }
    let issued = req.issue_instant.timestamp_millis();
    if issued > now_ms + apps.skew_ms {
        return Err(bad(
            "not_yet_valid",
            "IssueInstant is in the future; check the app's clock",
        ));
    }
    if issued + apps.request_max_age_ms + apps.skew_ms < now_ms {
        return Err(bad(
            "expired",
            "the request is too old; go back to the app and start again",
        ));
    }
    Ok(())
}

/// Every check of SAML core §3.4.1 and profiles §4.1.4.1 the hub relies on.
pub fn check(apps: &SamlApps, r: Received, now_ms: i64) -> Result<Checked, Refused> {
    let page = Refused::Page;
    crate::federation::xml_guard::check_request(&r.xml).map_err(|e| match e {
        crate::federation::FederationError::Rejected { reason, detail } => {
            page(bad(reason, detail))
        }
        crate::federation::FederationError::SigningRefused { code, used, .. } => page(bad(
            code,
            format!(
                "the request is signed with {used}; the app must sign with RSA-SHA256 or stronger"
            ),
        )),
        other => page(bad("malformed", other.to_string())),
    })?;
    // Unverified: only to find the app, whose certificate then checks the signature.
    let parsed: Result<AuthnRequest, _> = r.xml.parse();
    let unverified = parsed.map_err(|e| {
        tracing::debug!(error = %truncated(&format!("{e}")), "unreadable AuthnRequest");
        page(bad("malformed", "it is not a SAML 2.0 AuthnRequest"))
    })?;
    let issuer = unverified
        .issuer
        .as_ref()
        .and_then(|i| i.value.clone())
        .ok_or_else(|| page(bad("issuer", "the request has no Issuer")))?;
    let (registered, sp) = apps
        .by_entity_id(&issuer)
        .ok_or(Refused::Page(SamlIdpError::UnknownSp))?;
    // Bindings §3.4.4.1: over HTTP-Redirect the XML signature is removed and the query
    // is signed; one inside is either a mistake or an attempt to confuse the check.
    if r.query_signature.is_some() && r.xml.contains("SignatureValue") {
        return Err(page(bad(
            "malformed",
            "an HTTP-Redirect request must not carry an XML signature",
        )));
    }
    // The cheap checks before any cryptography (again on the signed copy below).
    envelope(apps, &unverified, false, now_ms).map_err(page)?;
    let must_sign = registered
        .config
        .require_signed_requests
        .unwrap_or(sp.authn_requests_signed);
    let (xml, signed) = verified_xml(&r, &sp, must_sign).map_err(page)?;
    // A POST signature: read only the signed document xmlsec handed back.
    let req: AuthnRequest = if r.query_signature.is_none() && signed {
        xml.parse()
            .map_err(|_| page(bad("malformed", "the signed request cannot be read")))?
    } else {
        unverified
    };
    if req.issuer.as_ref().and_then(|i| i.value.as_deref()) != Some(issuer.as_str()) {
        return Err(page(bad(
            "issuer",
            "the signed request names another Issuer",
        )));
    }
    envelope(apps, &req, signed, now_ms).map_err(page)?;
    // Core §3.4.1: an ACS URL or an index (not both); the URL exactly as in metadata.
    let acs = match (
        req.assertion_consumer_service_url.as_deref(),
        req.assertion_consumer_service_index,
    ) {
        (Some(_), Some(_)) => return Err(page(bad("acs", "AssertionConsumerServiceURL and AssertionConsumerServiceIndex are mutually exclusive"))),
        (Some(url), None) => sp.acs_by_url(url),
        (None, Some(i)) => sp.acs_by_index(i),
        (None, None) => sp.default_acs(),
    }
    .ok_or_else(|| page(bad("acs", "the app asked to be answered at an address its metadata does not list (AssertionConsumerService mismatch); it was not followed")))?;
    if req
        .protocol_binding
        .as_deref()
        .is_some_and(|b| b != POST_BINDING)
    {
        return Err(page(bad(
            "binding",
            "the app asked for a response binding other than HTTP-POST",
        )));
    }
    let configured = name_id_format(&registered.config);
    let pending = Pending {
        sp_id: registered.config.id.clone(),
        request_id: Some(req.id.clone()),
        acs_url: acs.url.clone(),
        relay_state: r.relay_state.clone(),
        name_id_format: configured.to_string(),
        subject: req
            .subject
            .as_ref()
            .and_then(|s| s.name_id.as_ref())
            .map(|n| n.value.trim().chars().take(1024).collect::<String>())
            .filter(|v| !v.is_empty()),
        subject_relogin: false,
        requested_contexts: req
            .requested_authn_context
            .as_ref()
            .and_then(|r| r.authn_context_class_refs.as_ref())
            .map(|refs| {
                refs.iter()
                    .filter_map(|c| c.value.clone())
                    .take(16)
                    .collect()
            })
            .unwrap_or_default(),
        comparison: req
            .requested_authn_context
            .as_ref()
            .and_then(|r| r.comparison.as_ref())
            .map(|c| c.value().to_string()),
    };
    let status = |pending: Pending, second: &'static str, message: &str| Refused::Status {
        pending: Box::new(pending),
        top: "urn:oasis:names:tc:SAML:2.0:status:Requester",
        second,
        message: message.to_string(),
    };
    if let Some(asked) = req
        .name_id_policy
        .as_ref()
        .and_then(|p| p.format.as_deref())
    {
        if asked != NAMEID_UNSPECIFIED && asked != configured {
            return Err(status(
                pending,
                "InvalidNameIDPolicy",
                "this app is set up for another NameID format",
            ));
        }
    }
    let acr = match requested_level(&req) {
        Ok(a) => a,
        Err(()) => {
            return Err(status(
                pending,
                "NoAuthnContext",
                "the hub cannot sign people in with the requested authentication context",
            ))
        }
    };
    let sp_mfa = registered.config.mfa_required.then_some(ACR_MFA);
    let acr_values = match (acr, sp_mfa) {
        (Some(ACR_PASSKEY), _) => Some(ACR_PASSKEY),
        (Some(a), _) | (None, Some(a)) => Some(a),
        (None, None) => None,
    };
    let login_hint = req
        .subject
        .as_ref()
        .and_then(|s| s.name_id.as_ref())
        .map(|n| n.value.chars().take(200).collect::<String>())
        .filter(|v| configured == NAMEID_EMAIL && v.contains('@'));
    Ok(Checked {
        pending,
        force_authn: req.force_authn == Some(true),
        passive: req.is_passive == Some(true),
        acr_values: acr_values.map(str::to_string),
        login_hint,
        remember_until_ms: Some(
            req.issue_instant.timestamp_millis() + apps.request_max_age_ms + 2 * apps.skew_ms,
        ),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use flate2::write::DeflateEncoder;
    use std::io::Write as _;

    fn deflated(xml: &[u8]) -> String {
        let mut e = DeflateEncoder::new(Vec::new(), flate2::Compression::default());
        e.write_all(xml).unwrap();
        let b = base64::engine::general_purpose::STANDARD.encode(e.finish().unwrap());
        url::form_urlencoded::byte_serialize(b.as_bytes()).collect()
    }

    #[test]
    fn redirect_binding_keeps_the_signed_octets_as_received() {
        let q = format!(
            "SAMLRequest={}&RelayState=%2Fhome&SigAlg=http%3A%2F%2Fwww.w3.org%2F2001%2F04%2Fxmldsig-more%23rsa-sha256&Signature=AAAA",
            deflated(b"<samlp:AuthnRequest/>")
        );
        let r = from_query(&q).unwrap();
        assert_eq!(r.xml, "<samlp:AuthnRequest/>");
        assert_eq!(r.relay_state.as_deref(), Some("/home"));
        let (signed, alg, _) = r.query_signature.unwrap();
        assert!(signed.ends_with("&RelayState=%2Fhome&SigAlg=http%3A%2F%2Fwww.w3.org%2F2001%2F04%2Fxmldsig-more%23rsa-sha256"));
        assert_eq!(alg, "http://www.w3.org/2001/04/xmldsig-more#rsa-sha256");
    }

    #[test]
    fn bad_queries_are_refused() {
        let one = deflated(b"<x/>");
        let code = |q: &str| from_query(q).unwrap_err().code();
        assert_eq!(
            code(&format!("SAMLRequest={one}&SAMLRequest={one}")),
            "malformed"
        );
        assert_eq!(code("RelayState=x"), "malformed");
        assert_eq!(code(&format!("SAMLRequest={one}&SigAlg=x")), "signature");
        assert_eq!(code("SAMLRequest=%%%"), "malformed");
        // A DEFLATE bomb stops at 64 KiB.
        let bomb = deflated(&vec![b'a'; 10 * 1024 * 1024]);
        assert_eq!(code(&format!("SAMLRequest={bomb}")), "too_large");
        let long = "r".repeat(MAX_RELAY_STATE + 1);
        assert_eq!(
            code(&format!("SAMLRequest={one}&RelayState={long}")),
            "relay_state"
        );
    }

    #[test]
    fn ids_must_be_xs_ids() {
        assert!(id_ok("_a1b2"));
        assert!(id_ok("ONELOGIN_123"));
        assert!(!id_ok("1abc"));
        assert!(!id_ok("a\"b"));
        assert!(!id_ok(&"a".repeat(300)));
    }
}
