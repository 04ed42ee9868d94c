//! What the hub sends as a SAML identity provider: its metadata (SAML metadata §2.4.3)
//! and Responses over the HTTP-POST binding (bindings §3.5), the assertion signed and
//! the Response signed around it (RSA-SHA256, SHA-256 digests, exclusive c14n), as
//! profiles §4.1.3.5 requires and strict SPs (`wantAssertionsSigned`,
//! `wantMessagesSigned`) check.
//!
//! The XML is written here, every value escaped; xmlsec fills in the signatures.

use rand::RngCore;
use samael::crypto::{Crypto, CryptoProvider};

use super::SamlIdpError;
use crate::federation::credentials::SpCredentials;
use crate::federation::saml_sp::{cert_base64, saml_time, xml_escape};

const NS: &str = r#"xmlns:samlp="urn:oasis:names:tc:SAML:2.0:protocol" xmlns:saml="urn:oasis:names:tc:SAML:2.0:assertion""#;
const STATUS_SUCCESS: &str = "urn:oasis:names:tc:SAML:2.0:status:Success";
const BEARER: &str = "urn:oasis:names:tc:SAML:2.0:cm:bearer";
const ATTR_BASIC: &str = "urn:oasis:names:tc:SAML:2.0:attrname-format:basic";
const ATTR_URI: &str = "urn:oasis:names:tc:SAML:2.0:attrname-format:uri";

/// A fresh xs:ID: 160 random bits (an InResponseTo the app checks must be unguessable,
/// and so must ids an attacker would like to replay into another context).
pub fn new_id() -> String {
    let mut b = [0u8; 20];
    rand::rngs::OsRng.fill_bytes(&mut b);
    format!("_{}", hex::encode(b))
}

/// One released attribute.
#[derive(Debug, Clone)]
pub struct Attribute {
    pub name: String,
    pub values: Vec<String>,
}

/// Everything a successful Response states (owned: it is signed on a blocking thread).
pub struct Assertion {
    pub idp_entity_id: String,
    pub sp_entity_id: String,
    pub acs_url: String,
    pub in_response_to: Option<String>,
    pub now_ms: i64,
    pub lifetime_ms: i64,
    pub name_id: String,
    pub name_id_format: String,
    pub authn_instant_ms: i64,
    pub session_index: String,
    pub authn_context: &'static str,
    pub attributes: Vec<Attribute>,
}

/// An enveloped-signature template for the element with this id (xmldsig-core §6.6.4).
fn signature_template(id: &str, creds: &SpCredentials) -> String {
    format!(
        concat!(
            r#"<ds:Signature xmlns:ds="http://www.w3.org/2000/09/xmldsig#"><ds:SignedInfo>"#,
            r#"<ds:CanonicalizationMethod Algorithm="http://www.w3.org/2001/10/xml-exc-c14n#"/>"#,
            r#"<ds:SignatureMethod Algorithm="http://www.w3.org/2001/04/xmldsig-more#rsa-sha256"/>"#,
            r##"<ds:Reference URI="#{id}"><ds:Transforms>"##,
            r#"<ds:Transform Algorithm="http://www.w3.org/2000/09/xmldsig#enveloped-signature"/>"#,
            r#"<ds:Transform Algorithm="http://www.w3.org/2001/10/xml-exc-c14n#"/>"#,
            r#"</ds:Transforms><ds:DigestMethod Algorithm="http://www.w3.org/2001/04/xmlenc#sha256"/>"#,
            r#"<ds:DigestValue></ds:DigestValue></ds:Reference></ds:SignedInfo>"#,
            r#"<ds:SignatureValue></ds:SignatureValue><ds:KeyInfo><ds:X509Data>"#,
            r#"<ds:X509Certificate>{cert}</ds:X509Certificate></ds:X509Data></ds:KeyInfo></ds:Signature>"#
        ),
        id = xml_escape(id),
        cert = cert_base64(creds),
    )
}

/// Fills in the first signature template in `xml` (xmlsec signs the first
/// `ds:Signature` it meets in document order) and drops the XML declaration, so
/// the result can be embedded.
fn sign(xml: &str, creds: &SpCredentials) -> Result<String, SamlIdpError> {
    let key = creds
        .key
        .private_key_to_der()
        .map_err(|e| SamlIdpError::Credentials(e.to_string()))?;
    let signed = Crypto::sign_xml(xml, &key).map_err(|e| SamlIdpError::Signing(e.to_string()))?;
    let body = match signed.strip_prefix("<?xml") {
        Some(rest) => rest
            .split_once("?>")
            .map(|(_, b)| b.trim_start())
            .unwrap_or(rest),
        None => signed.as_str(),
    };
    Ok(body.to_string())
}

fn attribute_xml(a: &Attribute) -> String {
    let format = if a.name.starts_with("urn:") {
        ATTR_URI
    } else {
        ATTR_BASIC
    };
    let values: String = a
        .values
        .iter()
        .map(|v| {
            format!(
                "<saml:AttributeValue>{}</saml:AttributeValue>",
                xml_escape(v)
            )
        })
        .collect();
    format!(
        r#"<saml:Attribute Name="{}" NameFormat="{format}">{values}</saml:Attribute>"#,
        xml_escape(&a.name)
    )
}

fn in_response_to_attr(id: Option<&str>) -> String {
    id.map(|i| format!(r#" InResponseTo="{}""#, xml_escape(i)))
        .unwrap_or_default()
}

/// Where a Response goes and what it answers.
struct Envelope<'a> {
    issuer: &'a str,
    acs_url: &'a str,
    in_response_to: Option<&'a str>,
    now_ms: i64,
}

fn response_envelope(
    e: &Envelope<'_>,
    creds: &SpCredentials,
    status: &str,
    assertion: &str,
) -> String {
    let response_id = new_id();
    format!(
        r#"<samlp:Response {NS} ID="{id}" Version="2.0" IssueInstant="{now}" Destination="{dest}"{irt}><saml:Issuer>{issuer}</saml:Issuer>{sig}{status}{assertion}</samlp:Response>"#,
        id = response_id,
        now = saml_time(e.now_ms),
        dest = xml_escape(e.acs_url),
        irt = in_response_to_attr(e.in_response_to),
        issuer = xml_escape(e.issuer),
        sig = signature_template(&response_id, creds),
    )
}

/// A signed Response carrying one signed assertion.
pub fn success(a: &Assertion, creds: &SpCredentials) -> Result<String, SamlIdpError> {
    let assertion_id = new_id();
    let until = saml_time(a.now_ms + a.lifetime_ms);
    let now = saml_time(a.now_ms);
    let attributes: String = a.attributes.iter().map(attribute_xml).collect();
    let attribute_statement = if attributes.is_empty() {
        String::new()
    } else {
        format!("<saml:AttributeStatement>{attributes}</saml:AttributeStatement>")
    };
    // Core §2.7.2: AuthnInstant is when the person authenticated, not now.
    let assertion = format!(
        concat!(
            r#"<saml:Assertion xmlns:saml="urn:oasis:names:tc:SAML:2.0:assertion" ID="{id}" Version="2.0" IssueInstant="{now}">"#,
            r#"<saml:Issuer>{issuer}</saml:Issuer>{sig}"#,
            r#"<saml:Subject><saml:NameID Format="{fmt}"{qualifiers}>{name_id}</saml:NameID>"#,
            r#"<saml:SubjectConfirmation Method="{bearer}"><saml:SubjectConfirmationData NotOnOrAfter="{until}" Recipient="{acs}"{irt}/></saml:SubjectConfirmation></saml:Subject>"#,
            r#"<saml:Conditions NotBefore="{now}" NotOnOrAfter="{until}"><saml:AudienceRestriction><saml:Audience>{aud}</saml:Audience></saml:AudienceRestriction></saml:Conditions>"#,
            r#"<saml:AuthnStatement AuthnInstant="{authn}" SessionIndex="{session}"><saml:AuthnContext><saml:AuthnContextClassRef>{ctx}</saml:AuthnContextClassRef></saml:AuthnContext></saml:AuthnStatement>"#,
            r#"{attrs}</saml:Assertion>"#
        ),
        id = assertion_id,
        now = now,
        issuer = xml_escape(&a.idp_entity_id),
        sig = signature_template(&assertion_id, creds),
        fmt = xml_escape(&a.name_id_format),
        // Core §8.3.7: qualifiers belong to persistent identifiers; other formats omit them.
        qualifiers = if a.name_id_format == super::request::NAMEID_PERSISTENT {
            format!(
                r#" NameQualifier="{}" SPNameQualifier="{}""#,
                xml_escape(&a.idp_entity_id),
                xml_escape(&a.sp_entity_id)
            )
        } else {
            String::new()
        },
        aud = xml_escape(&a.sp_entity_id),
        name_id = xml_escape(&a.name_id),
        bearer = BEARER,
        until = until,
        acs = xml_escape(&a.acs_url),
        irt = in_response_to_attr(a.in_response_to.as_deref()),
        authn = saml_time(a.authn_instant_ms),
        session = xml_escape(&a.session_index),
        ctx = xml_escape(a.authn_context),
        attrs = attribute_statement,
    );
    let signed_assertion = sign(&assertion, creds)?;
    let status =
        format!(r#"<samlp:Status><samlp:StatusCode Value="{STATUS_SUCCESS}"/></samlp:Status>"#);
    let envelope = Envelope {
        issuer: &a.idp_entity_id,
        acs_url: &a.acs_url,
        in_response_to: a.in_response_to.as_deref(),
        now_ms: a.now_ms,
    };
    let response = response_envelope(&envelope, creds, &status, &signed_assertion);
    sign(&response, creds)
}

/// A signed Response with an error status and no assertion (core §3.2.2.2).
pub struct Failure<'a> {
    pub idp_entity_id: &'a str,
    pub acs_url: &'a str,
    pub in_response_to: Option<&'a str>,
    pub now_ms: i64,
    pub top: &'a str,
    /// A second-level code of core §3.2.2.2 (`NoPassive`, `RequestDenied`, …).
    pub second: &'a str,
    pub message: &'a str,
}

pub fn failure(f: &Failure<'_>, creds: &SpCredentials) -> Result<String, SamlIdpError> {
    let status = format!(
        r#"<samlp:Status><samlp:StatusCode Value="{top}"><samlp:StatusCode Value="urn:oasis:names:tc:SAML:2.0:status:{second}"/></samlp:StatusCode><samlp:StatusMessage>{msg}</samlp:StatusMessage></samlp:Status>"#,
        top = xml_escape(f.top),
        second = xml_escape(f.second),
        msg = xml_escape(f.message),
    );
    let envelope = Envelope {
        issuer: f.idp_entity_id,
        acs_url: f.acs_url,
        in_response_to: f.in_response_to,
        now_ms: f.now_ms,
    };
    let response = response_envelope(&envelope, creds, &status, "");
    sign(&response, creds)
}

/// The IdP's metadata: entity id, signing certificate, SSO endpoints for both
/// request bindings, and the NameID formats it can issue.
pub fn idp_metadata(
    entity_id: &str,
    sso_url: &str,
    creds: &SpCredentials,
    valid_until_ms: i64,
) -> String {
    let sso = |binding: &str| {
        format!(
            r#"<md:SingleSignOnService Binding="urn:oasis:names:tc:SAML:2.0:bindings:{binding}" Location="{}"/>"#,
            xml_escape(sso_url)
        )
    };
    format!(
        concat!(
            r#"<?xml version="1.0" encoding="UTF-8"?>"#,
            r#"<md:EntityDescriptor xmlns:md="urn:oasis:names:tc:SAML:2.0:metadata" xmlns:ds="http://www.w3.org/2000/09/xmldsig#" entityID="{eid}" validUntil="{until}">"#,
            r#"<md:IDPSSODescriptor protocolSupportEnumeration="urn:oasis:names:tc:SAML:2.0:protocol" WantAuthnRequestsSigned="false">"#,
            r#"<md:KeyDescriptor use="signing"><ds:KeyInfo><ds:X509Data><ds:X509Certificate>{cert}</ds:X509Certificate></ds:X509Data></ds:KeyInfo></md:KeyDescriptor>"#,
            r#"<md:NameIDFormat>urn:oasis:names:tc:SAML:2.0:nameid-format:persistent</md:NameIDFormat>"#,
            r#"<md:NameIDFormat>urn:oasis:names:tc:SAML:1.1:nameid-format:emailAddress</md:NameIDFormat>"#,
            r#"{redirect}{post}</md:IDPSSODescriptor></md:EntityDescriptor>"#
        ),
        eid = xml_escape(entity_id),
        until = saml_time(valid_until_ms),
        cert = cert_base64(creds),
        redirect = sso("HTTP-Redirect"),
        post = sso("HTTP-POST"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use samael::crypto::{CertificateDer, ReduceMode};

    fn assertion(name_id: &str) -> Assertion {
        Assertion {
            idp_entity_id: "https://hub.example/saml/idp/metadata".into(),
            sp_entity_id: "https://app.example/sp".into(),
            acs_url: "https://app.example/acs?a=1&b=2".into(),
            in_response_to: Some("_req1".into()),
            now_ms: 1_800_000_000_000,
            lifetime_ms: 300_000,
            name_id: name_id.into(),
            name_id_format: "urn:oasis:names:tc:SAML:2.0:nameid-format:persistent".into(),
            authn_instant_ms: 1_799_999_000_000,
            session_index: "abc".into(),
            authn_context: AC,
            attributes: vec![Attribute {
                name: "Role".into(),
                values: vec![
                    "approver@rhs-science".into(),
                    "x</saml:AttributeValue><evil/>".into(),
                ],
            }],
        }
    }
    const AC: &str = "urn:oasis:names:tc:SAML:2.0:ac:classes:Password";

    fn verify(xml: &str, creds: &SpCredentials) -> Result<String, samael::crypto::CryptoError> {
        Crypto::reduce_xml_to_signed(
            xml,
            &[CertificateDer::from(creds.cert_der.clone())],
            ReduceMode::ValidateAndMark,
        )
    }

    #[test]
    fn both_signatures_verify_values_are_escaped_and_tampering_shows() {
        let creds = SpCredentials::ephemeral("https://hub.example").unwrap();
        let xml = success(&assertion("n<1>&"), &creds).unwrap();
        assert!(!xml.starts_with("<?xml"));
        assert_eq!(xml.matches("<ds:SignatureValue>").count(), 2, "{xml}");
        assert!(xml.contains("n&lt;1&gt;&amp;"), "{xml}");
        assert!(!xml.contains("<evil/>"), "{xml}");
        assert!(xml.contains(r#"Destination="https://app.example/acs?a=1&amp;b=2""#));
        // The same shape rules the hub applies to upstream Responses hold for its own.
        crate::federation::xml_guard::check(&xml, false).unwrap();
        verify(&xml, &creds).unwrap();
        let forged = xml.replace("approver@rhs-science", "hub-admin");
        assert!(verify(&forged, &creds).is_err());
        let other = SpCredentials::ephemeral("https://other.example").unwrap();
        assert!(verify(&xml, &other).is_err());
    }

    #[test]
    fn failures_are_signed_and_carry_the_second_level_status() {
        let creds = SpCredentials::ephemeral("https://hub.example").unwrap();
        let xml = failure(
            &Failure {
                idp_entity_id: "https://hub.example/saml/idp/metadata",
                acs_url: "https://app.example/acs",
                in_response_to: Some("_req1"),
                now_ms: 1_800_000_000_000,
                top: "urn:oasis:names:tc:SAML:2.0:status:Responder",
                second: "NoPassive",
                message: "a <message>",
            },
            &creds,
        )
        .unwrap();
        assert!(xml.contains("urn:oasis:names:tc:SAML:2.0:status:NoPassive"));
        assert!(xml.contains("a &lt;message&gt;"));
        assert!(!xml.contains("Assertion"));
        verify(&xml, &creds).unwrap();
    }
}
