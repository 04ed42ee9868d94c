//! Digests: keyed (HMAC-SHA256 under a key derived from the master key) for what is
//! stored to be looked up or checked later (client secrets, codes, refresh tokens,
//! session tokens, the audit chain), plain SHA-256 for values that are themselves
//! 256-bit random handles, and constant-time comparison for every check of a
//! presented value against a stored one.

use ring::hmac;
use subtle::ConstantTimeEq;

/// An HMAC-SHA256 key giving lowercase hex digests.
#[derive(Clone)]
pub(super) struct KeyedDigest(hmac::Key);

impl KeyedDigest {
    pub(super) fn new(key: &[u8; 32]) -> KeyedDigest {
        KeyedDigest(hmac::Key::new(hmac::HMAC_SHA256, key))
    }

    pub(super) fn hex(&self, data: &[u8]) -> String {
        hex::encode(hmac::sign(&self.0, data))
    }
}

/// The key that seals the audit chain (HMAC-SHA256, derived from the master key).
/// Someone who can write to the database but does not hold the master key cannot
/// recompute the chain after editing it. Its own type, so that no other digest key
/// can be passed where the chain's is meant.
#[derive(Clone)]
pub struct AuditKey(KeyedDigest);

impl AuditKey {
    pub(super) fn new(key: &[u8; 32]) -> AuditKey {
        AuditKey(KeyedDigest::new(key))
    }

    /// The chain's digest of one event's serialized fields (lowercase hex).
    pub fn seal(&self, data: &[u8]) -> String {
        self.0.hex(data)
    }
}

impl std::fmt::Debug for AuditKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("AuditKey(…)")
    }
}

/// SHA-256 as lowercase hex, for random handles and states (already unguessable, so
/// a key adds nothing) stored so that a copy of the database cannot replay them.
pub fn sha256_hex(s: &str) -> String {
    hex::encode(ring::digest::digest(&ring::digest::SHA256, s.as_bytes()))
}

/// Whether `a == b`, in time that depends only on the lengths: a presented secret,
/// code or digest is never compared with `==`, which stops at the first difference.
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && bool::from(a.ct_eq(b))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn constant_time_eq_compares_content_and_length() {
        assert!(constant_time_eq(b"abc", b"abc"));
        assert!(!constant_time_eq(b"abc", b"abd"));
        assert!(!constant_time_eq(b"abc", b"abcd"));
        assert!(constant_time_eq(b"", b""));
    }

    #[test]
    fn sha256_hex_is_the_standard_digest() {
        assert_eq!(
            sha256_hex("abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }
}
