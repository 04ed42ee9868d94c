//! Criterion bench of two hot paths of a federated or second-factor sign-in (issue #4),
//! run beside its Python peers by `bench/saml/run.sh`:
//!
//! - **SAML Response decode + verify**: the ACS's check of a posted Response
//!   (`saml_response::decode` then `verify`), on `bench/saml/fixture/assertion_signed.xml`
//!   (the usual shape: assertion signed with RSA-SHA256, made by xmlsec1), against the IdP
//!   built from `idp-metadata.xml` as at run time. Peers on the same file:
//!   python3-saml and pysaml2 (`bench/saml/peers.py`).
//! - **TOTP verify** (RFC 6238, ±1 step): `totp::matching_step` for a right and a wrong
//!   code. Peer: PyOTP's `TOTP.verify(code, valid_window=1)`.
//!
//!     cargo bench -p hms-ach --bench saml_totp
//!
//! The hub's checks run against a fixed clock (2026-01-01, as `make_fixture.py` signed
//! them); samael's own wall-clock checks pass until 2099.

use std::hint::black_box;

use base64::Engine as _;
use criterion::{criterion_group, criterion_main, Criterion};
use hms_ach::authn::totp;
use hms_ach::federation::saml_fixture::{Fixture, ASSERTION_SIGNED, NAME_ID};
use hms_ach::federation::saml_response::{decode, verify};

/// The RFC 6238 Appendix B secret, as peers.py gives PyOTP (base32 of the same bytes).
const TOTP_SECRET: &[u8] = b"12345678901234567890";
const TOTP_NOW: i64 = 1_767_225_600;

#[allow(clippy::unwrap_used, clippy::expect_used)]
fn saml(c: &mut Criterion) {
    let fixture = Fixture::new().expect("the fixture IdP loads");
    let expect = fixture.expect();
    let posted = base64::engine::general_purpose::STANDARD.encode(ASSERTION_SIGNED);
    // The bench must measure a success, not a fast refusal.
    let v = fixture.check_posted(&posted).expect("the fixture verifies");
    assert_eq!(v.name_id.as_deref(), Some(NAME_ID));

    let mut g = c.benchmark_group("saml_response");
    g.bench_function("decode_and_verify", |b| {
        b.iter(|| fixture.check_posted(black_box(&posted)).unwrap())
    });
    g.bench_function("decode", |b| {
        b.iter(|| decode(black_box(&posted), false).unwrap())
    });
    let decoded = decode(&posted, false).unwrap();
    g.bench_function("verify", |b| {
        b.iter(|| verify(black_box(&decoded), &expect).unwrap())
    });
    g.finish();
}

#[allow(clippy::unwrap_used)]
fn totp_verify(c: &mut Criterion) {
    let right = format!(
        "{:06}",
        totp::hotp(TOTP_SECRET, u64::try_from(totp::step_at(TOTP_NOW)).unwrap())
    );
    assert!(totp::matching_step(TOTP_SECRET, &right, TOTP_NOW).is_some());
    let wrong = if right == "000000" {
        "000001"
    } else {
        "000000"
    };
    assert!(totp::matching_step(TOTP_SECRET, wrong, TOTP_NOW).is_none());

    let mut g = c.benchmark_group("totp_verify");
    g.bench_function("right_code", |b| {
        b.iter(|| totp::matching_step(TOTP_SECRET, black_box(&right), TOTP_NOW))
    });
    g.bench_function("wrong_code", |b| {
        b.iter(|| totp::matching_step(TOTP_SECRET, black_box(wrong), TOTP_NOW))
    });
    g.finish();
}

criterion_group!(benches, saml, totp_verify);
criterion_main!(benches);
