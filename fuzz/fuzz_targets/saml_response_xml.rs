//! The decoded document: the fuzzer mutates XML (seeded with the signed fixtures), and
//! the target base64-encodes it as an IdP would, so mutations reach the XML guard, the
//! encrypted-assertion reader, samael's parser, xmlsec and the checks after it.
#![no_main]

mod common;

use base64::Engine as _;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    common::check_posted(&base64::engine::general_purpose::STANDARD.encode(data));
});
