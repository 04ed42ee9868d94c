//! What both targets share: the ACS's check of a posted Response against the fixture
//! IdP (`hms_ach::federation::saml_fixture`: the xmlsec1-signed Responses of
//! bench/saml/fixture and the verifier built from their metadata as at run time).
//!
//! The clock is fixed at the fixtures' 2026-01-01, so the signed seeds verify and the
//! fuzzer explores past the signature check; a mutant that verifies with other content
//! would be a finding, caught by the assertions below.

use std::sync::OnceLock;

use hms_ach::federation::saml_fixture::{Fixture, NAME_ID, REQUEST_ID};

fn fixture() -> &'static Fixture {
    static FIXTURE: OnceLock<Fixture> = OnceLock::new();
    FIXTURE.get_or_init(|| Fixture::new().expect("the fixture IdP loads"))
}

/// Any outcome is fine except a panic, a hang (libFuzzer's -timeout) or memory growth
/// (-rss_limit_mb, LeakSanitizer); a success must be a seed's real assertion.
pub fn check_posted(saml_response: &str) {
    if let Ok(v) = fixture().check_posted(saml_response) {
        assert_eq!(v.name_id.as_deref(), Some(NAME_ID));
        assert_eq!(v.in_response_to.as_deref(), Some(REQUEST_ID));
    }
}
