//! A downstream service provider's metadata (SAML metadata §2.4.4): its entity id,
//! where Responses may go (AssertionConsumerService, HTTP-POST binding only) and the
//! certificates its AuthnRequests are signed with.

use base64::Engine as _;
use samael::metadata::HTTP_POST_BINDING;

use super::SamlIdpError;

/// One place a Response may be posted to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Acs {
    pub index: usize,
    pub url: String,
    pub is_default: bool,
}

/// What the hub trusts about one SP, read from its metadata.
#[derive(Debug, Clone)]
pub struct SpEntity {
    pub entity_id: String,
    /// HTTP-POST endpoints only (the one binding the hub answers with), by index.
    pub acs: Vec<Acs>,
    /// DER certificates from `KeyDescriptor use="signing"` (or no use).
    pub signing_certs: Vec<Vec<u8>>,
    pub authn_requests_signed: bool,
}

impl SpEntity {
    /// SAML metadata §2.2.3: the endpoint marked isDefault, else the first not marked
    /// false, else the first.
    pub fn default_acs(&self) -> Option<&Acs> {
        self.acs
            .iter()
            .find(|a| a.is_default)
            .or_else(|| self.acs.first())
    }

    /// Exact string comparison, as for OIDC redirect URIs: no normalising, no prefixes.
    pub fn acs_by_url(&self, url: &str) -> Option<&Acs> {
        self.acs.iter().find(|a| a.url == url)
    }

    pub fn acs_by_index(&self, index: usize) -> Option<&Acs> {
        self.acs.iter().find(|a| a.index == index)
    }
}

/// Responses carry assertions that sign people in: they go only over TLS (plain
/// HTTP only to this machine, for tests).
fn acs_url_ok(url: &str) -> bool {
    let Ok(u) = url::Url::parse(url) else {
        return false;
    };
    let loopback = matches!(u.host_str(), Some("127.0.0.1" | "localhost" | "[::1]"));
    u.fragment().is_none() && (u.scheme() == "https" || (u.scheme() == "http" && loopback))
}

/// Parses and checks one SP's metadata.
pub fn parse(xml: &str, now_ms: i64) -> Result<SpEntity, SamlIdpError> {
    let bad = |m: String| SamlIdpError::BadMetadata(m);
    let (entity, entity_id) =
        crate::federation::metadata::parse_entity(xml, now_ms).map_err(bad)?;
    if entity_id.len() > 1024 {
        return Err(bad(
            "entityID is over 1024 characters (SAML core §8.3.6)".into()
        ));
    }
    let sp = entity
        .sp_sso_descriptors
        .as_ref()
        .and_then(|d| d.first())
        .ok_or_else(|| {
            bad("there is no SPSSODescriptor: this is not a service provider's metadata".into())
        })?;
    let mut acs = Vec::new();
    for e in &sp.assertion_consumer_services {
        if e.binding != HTTP_POST_BINDING {
            continue;
        }
        if !acs_url_ok(&e.location) {
            return Err(bad(format!(
                "AssertionConsumerService {:?} must be an https URL (Responses sign people in; plain http is allowed only on this machine: 127.0.0.1, localhost or [::1]); the app's administrator must publish an https endpoint",
                e.location
            )));
        }
        acs.push(Acs {
            index: e.index,
            url: e.location.clone(),
            is_default: e.is_default == Some(true),
        });
    }
    if acs.is_empty() {
        return Err(bad(
            "there is no AssertionConsumerService with the HTTP-POST binding, the one the hub answers with"
                .into(),
        ));
    }
    acs.sort_by_key(|a| a.index);
    let mut signing_certs = Vec::new();
    for kd in sp.key_descriptors.iter().flatten() {
        if !matches!(kd.key_use.as_deref(), None | Some("") | Some("signing")) {
            continue;
        }
        for c in kd.key_info.x509_data.iter().flat_map(|d| &d.certificates) {
            let compact: String = c.chars().filter(|ch| !ch.is_ascii_whitespace()).collect();
            let der = base64::engine::general_purpose::STANDARD
                .decode(compact.as_bytes())
                .map_err(|_| bad("a signing certificate is not base64".into()))?;
            openssl::x509::X509::from_der(&der)
                .map_err(|_| bad("a signing certificate does not parse".into()))?;
            signing_certs.push(der);
        }
    }
    let authn_requests_signed = sp.authn_requests_signed == Some(true);
    if authn_requests_signed && signing_certs.is_empty() {
        return Err(bad(
            "AuthnRequestsSigned is true but there is no signing certificate".into(),
        ));
    }
    Ok(SpEntity {
        entity_id,
        acs,
        signing_certs,
        authn_requests_signed,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const MD: &str = r#"<md:EntityDescriptor xmlns:md="urn:oasis:names:tc:SAML:2.0:metadata" entityID="https://app.example/sp">
<md:SPSSODescriptor protocolSupportEnumeration="urn:oasis:names:tc:SAML:2.0:protocol" AuthnRequestsSigned="false">
<md:AssertionConsumerService Binding="urn:oasis:names:tc:SAML:2.0:bindings:HTTP-Artifact" Location="https://app.example/art" index="0"/>
<md:AssertionConsumerService Binding="urn:oasis:names:tc:SAML:2.0:bindings:HTTP-POST" Location="https://app.example/acs2" index="2"/>
<md:AssertionConsumerService Binding="urn:oasis:names:tc:SAML:2.0:bindings:HTTP-POST" Location="https://app.example/acs1" index="1" isDefault="true"/>
</md:SPSSODescriptor></md:EntityDescriptor>"#;

    #[test]
    fn post_endpoints_only_and_the_default_is_found() {
        let sp = parse(MD, 0).unwrap();
        assert_eq!(sp.entity_id, "https://app.example/sp");
        assert_eq!(sp.acs.len(), 2);
        assert_eq!(sp.default_acs().unwrap().url, "https://app.example/acs1");
        assert_eq!(sp.acs_by_index(2).unwrap().url, "https://app.example/acs2");
        assert!(sp.acs_by_url("https://app.example/acs2/").is_none());
        assert!(!sp.authn_requests_signed);
    }

    #[test]
    fn plain_http_endpoints_and_dtds_are_refused() {
        let e = parse(
            &MD.replace("https://app.example/acs2", "http://app.example/acs2"),
            0,
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("https"), "{e}");
        assert!(parse(&format!("<!DOCTYPE x>{MD}"), 0).is_err());
        let e = parse(
            &MD.replace(
                "AuthnRequestsSigned=\"false\"",
                "AuthnRequestsSigned=\"true\"",
            ),
            0,
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("no signing certificate"), "{e}");
    }
}
