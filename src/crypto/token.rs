//! Random values from the operating system's generator: bearer tokens, codes,
//! handles, salts, secrets. Never from a seeded or thread-local generator.

use base64::Engine;
use rand::RngCore;

/// `bytes` random bytes, base64url without padding (RFC 4648 §5): the form of every
/// token, code, handle and secret the hub hands out.
pub fn random_token(bytes: usize) -> String {
    let mut buf = vec![0u8; bytes];
    rand::rngs::OsRng.fill_bytes(&mut buf);
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(buf)
}

/// `N` random bytes (salts, TOTP secrets, protocol message ids).
pub fn random_bytes<const N: usize>() -> [u8; N] {
    let mut buf = [0u8; N];
    rand::rngs::OsRng.fill_bytes(&mut buf);
    buf
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_base64url_of_the_asked_length_and_differ() {
        let a = random_token(32);
        assert_eq!(a.len(), 43);
        assert!(a
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'));
        assert_ne!(a, random_token(32));
        assert_ne!(random_bytes::<16>(), [0u8; 16]);
    }
}
