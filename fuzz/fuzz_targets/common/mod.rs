//! What both targets share: the ACS's check of a posted Response against the fixture
//! IdP (`hms_ach::federation::saml_fixture`: the xmlsec1-signed Responses of
//! bench/saml/fixture and the verifier built from their metadata as at run time).
//!
//! The clock is fixed at the fixtures' 2026-01-01, so the signed seeds verify and the
//! fuzzer explores past the signature check; a mutant that verifies with other content
//! would be a finding, caught by the assertions below.

use std::sync::OnceLock;

use hms_ach::federation::saml_fixture::{Fixture, ASSERTION_SIGNED};

fn fixture() -> &'static Fixture {
    static FIXTURE: OnceLock<Fixture> = OnceLock::new();
    FIXTURE.get_or_init(|| Fixture::new().expect("the fixture IdP loads"))
}

/// Everything the hub reads from the signed seeds (they all carry the same assertion):
/// id, NameID, InResponseTo, attributes, AuthnContext, replay horizon.
fn reference() -> &'static str {
    static REFERENCE: OnceLock<String> = OnceLock::new();
    REFERENCE.get_or_init(|| {
        let v = fixture()
            .check_xml(ASSERTION_SIGNED)
            .expect("the signed fixture verifies");
        format!("{v:?}")
    })
}

/// Any outcome is fine except a panic, a hang (libFuzzer's -timeout) or memory growth
/// (-rss_limit_mb, LeakSanitizer); a success must read exactly what the seeds signed (a
/// wrapped or altered document that verifies with other content would be a finding).
pub fn check_posted(saml_response: &str) {
    if let Ok(v) = fixture().check_posted(saml_response) {
        assert_eq!(format!("{v:?}"), reference());
    }
}
