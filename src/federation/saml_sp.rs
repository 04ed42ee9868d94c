//! What the hub sends as a SAML service provider: its metadata (one entity per IdP)
//! and AuthnRequests over the HTTP-Redirect binding (SAML bindings §3.4), signed as
//! §3.4.4.1 prescribes when the IdP's configuration asks for it.
//!
//! Both are written here (with `xml_writer`, which escapes every value) rather than
//! by samael: its request ids are 32 random bits (an InResponseTo must be
//! unguessable) and its metadata marks the encryption key as a signing key. Our
//! metadata offers the certificate twice: for signing (our
//! AuthnRequests) and for encryption, with the algorithms `saml_encrypted` decrypts
//! (SAML metadata §2.4.1.1: KeyDescriptor use="encryption" and its EncryptionMethod
//! elements), so an IdP configured from it encrypts with what we accept.

use base64::Engine as _;
use flate2::write::DeflateEncoder;
use flate2::Compression;
use openssl::hash::MessageDigest;
use openssl::sign::Signer;
use std::io::Write as _;

use super::credentials::SpCredentials;
use super::xml_tree::{DS, SAML, SAMLP};
use super::xml_writer::{XmlWriteError, XmlWriter};
use super::FederationError;

const RSA_SHA256: &str = "http://www.w3.org/2001/04/xmldsig-more#rsa-sha256";
const MD: &str = "urn:oasis:names:tc:SAML:2.0:metadata";
const HTTP_POST: &str = "urn:oasis:names:tc:SAML:2.0:bindings:HTTP-POST";
const B64: base64::engine::GeneralPurpose = base64::engine::general_purpose::STANDARD;

/// A message or metadata the hub could not write (a value XML cannot carry).
fn written(e: XmlWriteError) -> FederationError {
    FederationError::Credentials(format!("writing SAML XML: {e}"))
}

/// xs:dateTime in UTC, second precision (SAML core §1.3.3).
pub fn saml_time(ms: i64) -> String {
    let t = time::OffsetDateTime::from_unix_timestamp(ms.div_euclid(1000))
        .unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
    t.format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}

/// The certificate as metadata carries it (base64 DER, no PEM armour).
pub fn cert_base64(creds: &SpCredentials) -> String {
    B64.encode(&creds.cert_der)
}

pub struct SpMetadata<'a> {
    pub entity_id: &'a str,
    pub acs_url: &'a str,
    pub sign_requests: bool,
    pub name_id_format: Option<&'a str>,
    pub valid_until_ms: i64,
}

/// `md:EntityDescriptor` of our SP for one IdP (SAML metadata §2.4.4).
pub fn sp_metadata(m: &SpMetadata<'_>, creds: &SpCredentials) -> Result<String, FederationError> {
    let cert = cert_base64(creds);
    let until = saml_time(m.valid_until_ms);
    let signed = if m.sign_requests { "true" } else { "false" };
    let key_info = |x: &mut XmlWriter| {
        x.element("ds:KeyInfo", &[], |x| {
            x.element("ds:X509Data", &[], |x| {
                x.text_element("ds:X509Certificate", &[], &cert)
            })
        })
    };
    let mut x = XmlWriter::indented();
    x.declaration().map_err(written)?;
    x.element(
        "md:EntityDescriptor",
        &[
            ("xmlns:md", MD),
            ("xmlns:ds", DS),
            ("entityID", m.entity_id),
            ("validUntil", &until),
        ],
        |x| {
            x.element(
                "md:SPSSODescriptor",
                &[
                    ("AuthnRequestsSigned", signed),
                    ("WantAssertionsSigned", "true"),
                    ("protocolSupportEnumeration", SAMLP),
                ],
                |x| {
                    x.element("md:KeyDescriptor", &[("use", "signing")], key_info)?;
                    x.element("md:KeyDescriptor", &[("use", "encryption")], |x| {
                        key_info(x)?;
                        for a in super::xmlenc::ACCEPTED {
                            x.empty("md:EncryptionMethod", &[("Algorithm", *a)])?;
                        }
                        Ok(())
                    })?;
                    if let Some(f) = m.name_id_format {
                        x.text_element("md:NameIDFormat", &[], f)?;
                    }
                    x.empty(
                        "md:AssertionConsumerService",
                        &[
                            ("Binding", HTTP_POST),
                            ("Location", m.acs_url),
                            ("index", "0"),
                            ("isDefault", "true"),
                        ],
                    )
                },
            )
        },
    )
    .map_err(written)?;
    x.finish().map_err(written)
}

pub struct AuthnRequest<'a> {
    /// `_` + 32 hex digits: an xs:ID (must not start with a digit) and unguessable.
    pub id: &'a str,
    pub entity_id: &'a str,
    pub acs_url: &'a str,
    pub sso_url: &'a str,
    pub now_ms: i64,
    pub force_authn: bool,
    pub name_id_format: Option<&'a str>,
}

impl AuthnRequest<'_> {
    /// `samlp:AuthnRequest` (SAML core §3.4.1), unsigned: over the Redirect binding
    /// the signature covers the query string, not the XML (bindings §3.4.4.1).
    pub fn to_xml(&self) -> Result<String, FederationError> {
        let at = saml_time(self.now_ms);
        let mut attrs = vec![
            ("xmlns:samlp", SAMLP),
            ("xmlns:saml", SAML),
            ("ID", self.id),
            ("Version", "2.0"),
            ("IssueInstant", at.as_str()),
            ("Destination", self.sso_url),
            ("ProtocolBinding", HTTP_POST),
            ("AssertionConsumerServiceURL", self.acs_url),
        ];
        if self.force_authn {
            attrs.push(("ForceAuthn", "true"));
        }
        let mut policy = vec![("AllowCreate", "true")];
        if let Some(f) = self.name_id_format {
            policy.push(("Format", f));
        }
        let mut x = XmlWriter::new();
        x.element("samlp:AuthnRequest", &attrs, |x| {
            x.text_element("saml:Issuer", &[], self.entity_id)?;
            x.empty("samlp:NameIDPolicy", &policy)
        })
        .map_err(written)?;
        x.finish().map_err(written)
    }

    /// The IdP's SSO URL with `SAMLRequest` (DEFLATE, base64), `RelayState` and, when
    /// `signer` is given, `SigAlg` and `Signature` over exactly those encoded
    /// parameters in that order (bindings §3.4.4.1).
    pub fn redirect_url(
        &self,
        relay_state: Option<&str>,
        signer: Option<&SpCredentials>,
    ) -> Result<String, FederationError> {
        let mut deflated = DeflateEncoder::new(Vec::new(), Compression::default());
        deflated
            .write_all(self.to_xml()?.as_bytes())
            .map_err(|e| FederationError::Credentials(format!("deflate: {e}")))?;
        let deflated = deflated
            .finish()
            .map_err(|e| FederationError::Credentials(format!("deflate: {e}")))?;
        let enc = |s: &str| url::form_urlencoded::byte_serialize(s.as_bytes()).collect::<String>();
        let mut query = format!("SAMLRequest={}", enc(&B64.encode(deflated)));
        if let Some(rs) = relay_state {
            query.push_str(&format!("&RelayState={}", enc(rs)));
        }
        if let Some(creds) = signer {
            query.push_str(&format!("&SigAlg={}", enc(RSA_SHA256)));
            let err = |e: openssl::error::ErrorStack| {
                FederationError::Credentials(format!("signing: {e}"))
            };
            let mut s = Signer::new(MessageDigest::sha256(), &creds.key).map_err(err)?;
            s.update(query.as_bytes()).map_err(err)?;
            let sig = s.sign_to_vec().map_err(err)?;
            query.push_str(&format!("&Signature={}", enc(&B64.encode(sig))));
        }
        let sep = if self.sso_url.contains('?') { '&' } else { '?' };
        Ok(format!("{}{sep}{query}", self.sso_url))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_are_utc_seconds() {
        assert_eq!(saml_time(1_764_000_000_123), "2025-11-24T16:00:00Z");
    }
}
