//! The POST binding's form value as it arrives: base64 text (SAML bindings §3.5.4),
//! possibly with whitespace, of anything. Exercises the size limit, base64 and UTF-8
//! handling, the DTD refusal and everything behind them.
#![no_main]

mod common;

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        common::check_posted(text);
    }
});
