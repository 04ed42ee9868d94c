//! What the hub sends as a SAML service provider: its metadata (one entity per IdP)
//! and AuthnRequests over the HTTP-Redirect binding (SAML bindings §3.4), signed as
//! §3.4.4.1 prescribes when the IdP's configuration asks for it.
//!
//! Both are written here rather than by samael: its request ids are 32 random bits (an
//! InResponseTo must be unguessable) and its metadata marks the encryption key as a
//! signing key. Our metadata offers the certificate twice: for signing (our
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
use super::FederationError;

const RSA_SHA256: &str = "http://www.w3.org/2001/04/xmldsig-more#rsa-sha256";
const B64: base64::engine::GeneralPurpose = base64::engine::general_purpose::STANDARD;

/// XML attribute and text escaping (the values are our own URLs and ids, but a config
/// value must never be able to break out of an attribute).
pub fn xml_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            c => out.push(c),
        }
    }
    out
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
pub fn sp_metadata(m: &SpMetadata<'_>, creds: &SpCredentials) -> String {
    let cert = cert_base64(creds);
    let key_info = format!(
        "<ds:KeyInfo><ds:X509Data><ds:X509Certificate>{cert}</ds:X509Certificate></ds:X509Data></ds:KeyInfo>"
    );
    let methods: String = super::xmlenc::ACCEPTED
        .iter()
        .map(|a| format!("\n      <md:EncryptionMethod Algorithm=\"{a}\"/>"))
        .collect();
    let name_id = m
        .name_id_format
        .map(|f| format!("\n    <md:NameIDFormat>{}</md:NameIDFormat>", xml_escape(f)))
        .unwrap_or_default();
    format!(
        r#"<?xml version="1.0" encoding="UTF-8"?>
<md:EntityDescriptor xmlns:md="urn:oasis:names:tc:SAML:2.0:metadata" xmlns:ds="http://www.w3.org/2000/09/xmldsig#" entityID="{entity}" validUntil="{until}">
  <md:SPSSODescriptor AuthnRequestsSigned="{signed}" WantAssertionsSigned="true" protocolSupportEnumeration="urn:oasis:names:tc:SAML:2.0:protocol">
    <md:KeyDescriptor use="signing">{key_info}</md:KeyDescriptor>
    <md:KeyDescriptor use="encryption">{key_info}{methods}
    </md:KeyDescriptor>{name_id}
    <md:AssertionConsumerService Binding="urn:oasis:names:tc:SAML:2.0:bindings:HTTP-POST" Location="{acs}" index="0" isDefault="true"/>
  </md:SPSSODescriptor>
</md:EntityDescriptor>
"#,
        entity = xml_escape(m.entity_id),
        until = saml_time(m.valid_until_ms),
        signed = m.sign_requests,
        acs = xml_escape(m.acs_url),
    )
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
    pub fn to_xml(&self) -> String {
        let force = if self.force_authn {
            r#" ForceAuthn="true""#
        } else {
            ""
        };
        let format = self
            .name_id_format
            .map(|f| format!(r#" Format="{}""#, xml_escape(f)))
            .unwrap_or_default();
        format!(
            r#"<samlp:AuthnRequest xmlns:samlp="urn:oasis:names:tc:SAML:2.0:protocol" xmlns:saml="urn:oasis:names:tc:SAML:2.0:assertion" ID="{id}" Version="2.0" IssueInstant="{at}" Destination="{dest}" ProtocolBinding="urn:oasis:names:tc:SAML:2.0:bindings:HTTP-POST" AssertionConsumerServiceURL="{acs}"{force}><saml:Issuer>{issuer}</saml:Issuer><samlp:NameIDPolicy AllowCreate="true"{format}/></samlp:AuthnRequest>"#,
            id = xml_escape(self.id),
            at = saml_time(self.now_ms),
            dest = xml_escape(self.sso_url),
            acs = xml_escape(self.acs_url),
            issuer = xml_escape(self.entity_id),
        )
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
            .write_all(self.to_xml().as_bytes())
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

    #[test]
    fn escaping_keeps_attributes_closed() {
        assert_eq!(xml_escape(r#"a"<b>&'"#), "a&quot;&lt;b&gt;&amp;&apos;");
    }
}
