//! The xmlsec1-signed Responses of `bench/saml/fixture/` (made by
//! `bench/saml/make_fixture.py`) and the verifier they pass, built exactly as the ACS
//! builds an IdP's from its metadata. One definition for the unit tests, the fuzz
//! targets (`fuzz/`) and the criterion bench (`bench/saml/saml_totp.rs`), so that all
//! three exercise what a real sign-in does. Not used by the server.
//!
//! The hub's checks run against a fixed clock, 2026-01-01 (`NOW_MS`); samael's own
//! wall-clock checks pass until 2099 (the fixture's IssueInstant and NotOnOrAfter).

use base64::Engine as _;

use super::metadata::{build, Loaded, SpEndpoints};
use super::saml_response::{decode, verify, Expect, Verified};
use super::{FederationError, SpCredentials};
use crate::config::SamlIdpConfig;

pub const METADATA: &str = include_str!("../../bench/saml/fixture/idp-metadata.xml");
/// The usual shape (Shibboleth, ADFS, Okta): the assertion signed, RSA-SHA256.
pub const ASSERTION_SIGNED: &str = include_str!("../../bench/saml/fixture/assertion_signed.xml");
pub const SP_ENTITY_ID: &str = "https://hub.riverside.example/saml/sp/district";
pub const ACS_URL: &str = "https://hub.riverside.example/saml/sp/district/acs";
pub const REQUEST_ID: &str = "_5f0c8a1e2b3d4c5e6f708192a3b4c5d6";
/// The NameID of every signed fixture.
pub const NAME_ID: &str = "pid-ana.diallo0";
/// 2026-01-01T00:00:00Z.
pub const NOW_MS: i64 = 1_767_225_600_000;

/// The fixture IdP as the hub loads it, and the SP key encrypted assertions would use.
pub struct Fixture {
    loaded: Loaded,
    creds: SpCredentials,
}

impl Fixture {
    /// Generates an SP key pair (RSA-3072: a few hundred milliseconds) and loads the
    /// metadata; make one and reuse it.
    pub fn new() -> Result<Fixture, FederationError> {
        let creds = SpCredentials::ephemeral("https://hub.riverside.example")?;
        let cfg: SamlIdpConfig = serde_json::from_value(serde_json::json!({
            "id": "district", "display_name": "District", "metadata_file": "unused.xml"
        }))
        .map_err(|e| FederationError::BadMetadata(e.to_string()))?;
        let ours = SpEndpoints {
            entity_id: SP_ENTITY_ID,
            acs_url: ACS_URL,
            skew_seconds: 120,
        };
        let loaded = build(METADATA, &cfg, &ours, &creds, NOW_MS)?;
        Ok(Fixture { loaded, creds })
    }

    /// What the ACS expects of a Response to the fixture's pending request.
    pub fn expect(&self) -> Expect<'_> {
        Expect {
            sp: &self.loaded.sp,
            request_id: Some(REQUEST_ID),
            authn_after_ms: None,
            now_ms: NOW_MS,
            skew_ms: 120_000,
            sp_key: &self.creds.key,
            allow_rsa1_5: false,
            allow_sha1: false,
        }
    }

    /// The ACS's check of a posted `SAMLResponse` form value.
    pub fn check_posted(&self, saml_response: &str) -> Result<Verified, FederationError> {
        verify(&decode(saml_response, false)?, &self.expect())
    }

    /// The same for a Response document (base64-encoded first, as an IdP posts it).
    pub fn check_xml(&self, xml: &str) -> Result<Verified, FederationError> {
        self.check_posted(&base64::engine::general_purpose::STANDARD.encode(xml))
    }
}
