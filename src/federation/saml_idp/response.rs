//! What the hub sends as a SAML identity provider: its metadata (SAML metadata §2.4.3)
//! and Responses over the HTTP-POST binding (bindings §3.5), the assertion signed and
//! the Response signed around it (RSA-SHA256, SHA-256 digests, exclusive c14n), as
//! profiles §4.1.3.5 requires and strict SPs (`wantAssertionsSigned`,
//! `wantMessagesSigned`) check.
//!
//! The XML is written with `xml_writer` (every value escaped, every element closed by
//! construction); xmlsec fills in the signatures of the `ds:Signature` templates.

use rand::RngCore;
use samael::crypto::{Crypto, CryptoProvider};

use super::SamlIdpError;
use crate::federation::credentials::SpCredentials;
use crate::federation::saml_sp::{cert_base64, saml_time};
use crate::federation::xml_tree::{DS, SAML, SAMLP};
use crate::federation::xml_writer::{Fragment, XmlWriteError, XmlWriter};

const MD: &str = "urn:oasis:names:tc:SAML:2.0:metadata";
const EXC_C14N: &str = "http://www.w3.org/2001/10/xml-exc-c14n#";
const RSA_SHA256: &str = "http://www.w3.org/2001/04/xmldsig-more#rsa-sha256";
const ENVELOPED: &str = "http://www.w3.org/2000/09/xmldsig#enveloped-signature";
const SHA256: &str = "http://www.w3.org/2001/04/xmlenc#sha256";
const STATUS_SUCCESS: &str = "urn:oasis:names:tc:SAML:2.0:status:Success";
const BEARER: &str = "urn:oasis:names:tc:SAML:2.0:cm:bearer";
const ATTR_BASIC: &str = "urn:oasis:names:tc:SAML:2.0:attrname-format:basic";
const ATTR_URI: &str = "urn:oasis:names:tc:SAML:2.0:attrname-format:uri";
const REDIRECT_BINDING: &str = "urn:oasis:names:tc:SAML:2.0:bindings:HTTP-Redirect";
const POST_BINDING: &str = "urn:oasis:names:tc:SAML:2.0:bindings:HTTP-POST";

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

/// A message the hub could not write (a value XML cannot carry, xmlsec's output not
/// one element): the hub's own failure, logged, never a malformed Response.
fn written(e: XmlWriteError) -> SamlIdpError {
    SamlIdpError::Signing(format!("writing the SAML XML: {e}"))
}

/// An enveloped-signature template for the element with this id (xmldsig-core §6.6.4):
/// xmlsec computes the empty DigestValue and SignatureValue.
fn signature_template(
    x: &mut XmlWriter,
    id: &str,
    creds: &SpCredentials,
) -> Result<(), XmlWriteError> {
    let reference = format!("#{id}");
    x.element("ds:Signature", &[("xmlns:ds", DS)], |x| {
        x.element("ds:SignedInfo", &[], |x| {
            x.empty("ds:CanonicalizationMethod", &[("Algorithm", EXC_C14N)])?;
            x.empty("ds:SignatureMethod", &[("Algorithm", RSA_SHA256)])?;
            x.element("ds:Reference", &[("URI", &reference)], |x| {
                x.element("ds:Transforms", &[], |x| {
                    x.empty("ds:Transform", &[("Algorithm", ENVELOPED)])?;
                    x.empty("ds:Transform", &[("Algorithm", EXC_C14N)])
                })?;
                x.empty("ds:DigestMethod", &[("Algorithm", SHA256)])?;
                x.text_element("ds:DigestValue", &[], "")
            })
        })?;
        x.text_element("ds:SignatureValue", &[], "")?;
        x.element("ds:KeyInfo", &[], |x| {
            x.element("ds:X509Data", &[], |x| {
                x.text_element("ds:X509Certificate", &[], &cert_base64(creds))
            })
        })
    })
}

/// Fills in the first signature template in `xml` (xmlsec signs the first
/// `ds:Signature` it meets in document order) and drops the XML declaration, so
/// the result can be embedded.
fn sign(xml: &str, creds: &SpCredentials, what: &'static str) -> Result<Fragment, SamlIdpError> {
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
    Fragment::signed(body.to_string(), what).map_err(written)
}

/// `saml:Attribute` (core §2.7.3.1); the NameFormat says how the app should read the
/// name: a URI such as `urn:oid:…` (core §8.2.2), else a basic name (§8.2.3).
fn attribute_xml(x: &mut XmlWriter, a: &Attribute) -> Result<(), XmlWriteError> {
    let format = if a.name.starts_with("urn:") {
        ATTR_URI
    } else {
        ATTR_BASIC
    };
    x.element(
        "saml:Attribute",
        &[("Name", &a.name), ("NameFormat", format)],
        |x| {
            for v in &a.values {
                x.text_element("saml:AttributeValue", &[], v)?;
            }
            Ok(())
        },
    )
}

/// Where a Response goes and what it answers.
struct Envelope<'a> {
    issuer: &'a str,
    acs_url: &'a str,
    in_response_to: Option<&'a str>,
    now_ms: i64,
}

/// `samlp:Response` (core §3.2.2) around `status` and `assertion`, with its own
/// signature template after the Issuer (the schema order: Issuer, Signature,
/// Extensions, Status).
fn response_envelope<S>(
    e: &Envelope<'_>,
    creds: &SpCredentials,
    status: S,
    assertion: Option<&Fragment>,
) -> Result<String, XmlWriteError>
where
    S: FnOnce(&mut XmlWriter) -> Result<(), XmlWriteError>,
{
    let response_id = new_id();
    let now = saml_time(e.now_ms);
    let mut attrs = vec![
        ("xmlns:samlp", SAMLP),
        ("xmlns:saml", SAML),
        ("ID", response_id.as_str()),
        ("Version", "2.0"),
        ("IssueInstant", now.as_str()),
        ("Destination", e.acs_url),
    ];
    if let Some(irt) = e.in_response_to {
        attrs.push(("InResponseTo", irt));
    }
    let mut x = XmlWriter::new();
    x.element("samlp:Response", &attrs, |x| {
        x.text_element("saml:Issuer", &[], e.issuer)?;
        signature_template(x, &response_id, creds)?;
        status(x)?;
        match assertion {
            Some(a) => x.fragment(a),
            None => Ok(()),
        }
    })?;
    x.finish()
}

/// The unsigned assertion, its signature template after the Issuer (core §2.3.3).
fn assertion_xml(
    a: &Assertion,
    assertion_id: &str,
    creds: &SpCredentials,
) -> Result<String, XmlWriteError> {
    let until = saml_time(a.now_ms + a.lifetime_ms);
    let now = saml_time(a.now_ms);
    // Core §2.7.2: AuthnInstant is when the person authenticated, not now.
    let authn = saml_time(a.authn_instant_ms);
    let mut name_id = vec![("Format", a.name_id_format.as_str())];
    // Core §8.3.7: qualifiers belong to persistent identifiers; other formats omit them.
    if a.name_id_format == super::request::NAMEID_PERSISTENT {
        name_id.push(("NameQualifier", &a.idp_entity_id));
        name_id.push(("SPNameQualifier", &a.sp_entity_id));
    }
    // Profiles §4.1.4.2: the bearer confirmation names the ACS and the request.
    let mut confirmation = vec![("NotOnOrAfter", until.as_str()), ("Recipient", &a.acs_url)];
    if let Some(irt) = &a.in_response_to {
        confirmation.push(("InResponseTo", irt));
    }
    let mut x = XmlWriter::new();
    x.element(
        "saml:Assertion",
        &[
            ("xmlns:saml", SAML),
            ("ID", assertion_id),
            ("Version", "2.0"),
            ("IssueInstant", &now),
        ],
        |x| {
            x.text_element("saml:Issuer", &[], &a.idp_entity_id)?;
            signature_template(x, assertion_id, creds)?;
            x.element("saml:Subject", &[], |x| {
                x.text_element("saml:NameID", &name_id, &a.name_id)?;
                x.element("saml:SubjectConfirmation", &[("Method", BEARER)], |x| {
                    x.empty("saml:SubjectConfirmationData", &confirmation)
                })
            })?;
            x.element(
                "saml:Conditions",
                &[("NotBefore", &now), ("NotOnOrAfter", &until)],
                |x| {
                    x.element("saml:AudienceRestriction", &[], |x| {
                        x.text_element("saml:Audience", &[], &a.sp_entity_id)
                    })
                },
            )?;
            x.element(
                "saml:AuthnStatement",
                &[("AuthnInstant", &authn), ("SessionIndex", &a.session_index)],
                |x| {
                    x.element("saml:AuthnContext", &[], |x| {
                        x.text_element("saml:AuthnContextClassRef", &[], a.authn_context)
                    })
                },
            )?;
            if a.attributes.is_empty() {
                return Ok(());
            }
            x.element("saml:AttributeStatement", &[], |x| {
                a.attributes.iter().try_for_each(|at| attribute_xml(x, at))
            })
        },
    )?;
    x.finish()
}

/// A signed Response carrying one signed assertion.
pub fn success(a: &Assertion, creds: &SpCredentials) -> Result<String, SamlIdpError> {
    let assertion_id = new_id();
    let assertion = assertion_xml(a, &assertion_id, creds).map_err(written)?;
    let signed_assertion = sign(&assertion, creds, "the signed assertion")?;
    let envelope = Envelope {
        issuer: &a.idp_entity_id,
        acs_url: &a.acs_url,
        in_response_to: a.in_response_to.as_deref(),
        now_ms: a.now_ms,
    };
    let status = |x: &mut XmlWriter| {
        x.element("samlp:Status", &[], |x| {
            x.empty("samlp:StatusCode", &[("Value", STATUS_SUCCESS)])
        })
    };
    let response =
        response_envelope(&envelope, creds, status, Some(&signed_assertion)).map_err(written)?;
    Ok(sign(&response, creds, "the signed Response")?.into_string())
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
    let second = format!("urn:oasis:names:tc:SAML:2.0:status:{}", f.second);
    let status = |x: &mut XmlWriter| {
        x.element("samlp:Status", &[], |x| {
            x.element("samlp:StatusCode", &[("Value", f.top)], |x| {
                x.empty("samlp:StatusCode", &[("Value", &second)])
            })?;
            x.text_element("samlp:StatusMessage", &[], f.message)
        })
    };
    let envelope = Envelope {
        issuer: f.idp_entity_id,
        acs_url: f.acs_url,
        in_response_to: f.in_response_to,
        now_ms: f.now_ms,
    };
    let response = response_envelope(&envelope, creds, status, None).map_err(written)?;
    Ok(sign(&response, creds, "the signed Response")?.into_string())
}

/// The IdP's metadata (metadata §2.4.3): entity id, signing certificate, SSO
/// endpoints for both request bindings, and the NameID formats it can issue.
pub fn idp_metadata(
    entity_id: &str,
    sso_url: &str,
    creds: &SpCredentials,
    valid_until_ms: i64,
) -> Result<String, SamlIdpError> {
    let until = saml_time(valid_until_ms);
    let cert = cert_base64(creds);
    let mut x = XmlWriter::new();
    x.declaration().map_err(written)?;
    x.element(
        "md:EntityDescriptor",
        &[
            ("xmlns:md", MD),
            ("xmlns:ds", DS),
            ("entityID", entity_id),
            ("validUntil", &until),
        ],
        |x| {
            x.element(
                "md:IDPSSODescriptor",
                &[
                    ("protocolSupportEnumeration", SAMLP),
                    ("WantAuthnRequestsSigned", "false"),
                ],
                |x| {
                    x.element("md:KeyDescriptor", &[("use", "signing")], |x| {
                        x.element("ds:KeyInfo", &[], |x| {
                            x.element("ds:X509Data", &[], |x| {
                                x.text_element("ds:X509Certificate", &[], &cert)
                            })
                        })
                    })?;
                    for format in [
                        super::request::NAMEID_PERSISTENT,
                        super::request::NAMEID_EMAIL,
                    ] {
                        x.text_element("md:NameIDFormat", &[], format)?;
                    }
                    for binding in [REDIRECT_BINDING, POST_BINDING] {
                        x.empty(
                            "md:SingleSignOnService",
                            &[("Binding", binding), ("Location", sso_url)],
                        )?;
                    }
                    Ok(())
                },
            )
        },
    )
    .map_err(written)?;
    x.finish().map_err(written)
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
