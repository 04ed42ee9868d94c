//! The master key: 32 bytes from configuration that encrypt signing keys at rest and
//! key the digests of client secrets. Two sub-keys are derived from it (HMAC-SHA256
//! with distinct labels) so that no key serves two purposes.

use base64::Engine;
use ring::hmac;

/// Used only when no master key is configured; `serve` warns loudly.
const DEVELOPMENT_KEY: [u8; 32] = *b"hms-ach-development-only-key!!!!";

#[derive(Clone)]
pub struct MasterKey {
    key_encryption: [u8; 32],
    audit_chain: [u8; 32],
    secret_digest: hmac::Key,
    pub is_development: bool,
}

impl std::fmt::Debug for MasterKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("MasterKey(…)")
    }
}

impl MasterKey {
    pub fn from_base64(text: &str) -> Option<MasterKey> {
        let raw = base64::engine::general_purpose::STANDARD
            .decode(text.trim())
            .ok()?;
        let bytes: [u8; 32] = raw.try_into().ok()?;
        Some(Self::from_bytes(bytes, false))
    }

    pub fn development() -> MasterKey {
        Self::from_bytes(DEVELOPMENT_KEY, true)
    }

    fn from_bytes(bytes: [u8; 32], is_development: bool) -> MasterKey {
        let root = hmac::Key::new(hmac::HMAC_SHA256, &bytes);
        let derive = |label: &[u8]| -> [u8; 32] {
            let mut out = [0u8; 32];
            out.copy_from_slice(hmac::sign(&root, label).as_ref());
            out
        };
        MasterKey {
            key_encryption: derive(b"hms-ach/v1/signing-key-encryption"),
            audit_chain: derive(b"hms-ach/v1/audit-chain"),
            secret_digest: hmac::Key::new(
                hmac::HMAC_SHA256,
                &derive(b"hms-ach/v1/client-secret-digest"),
            ),
            is_development,
        }
    }

    /// The key that seals the audit chain (see `store::AuditKey`).
    pub fn audit_chain_key(&self) -> &[u8; 32] {
        &self.audit_chain
    }

    pub(super) fn key_encryption_key(&self) -> &[u8; 32] {
        &self.key_encryption
    }

    /// Keyed SHA-256 of a client secret. Secrets are 256-bit random, so a fast keyed
    /// hash is as strong as a slow one here, and it keeps the token endpoint fast.
    pub fn digest_secret(&self, secret: &str) -> String {
        hex::encode(hmac::sign(&self.secret_digest, secret.as_bytes()))
    }

    /// Constant-time comparison of a presented secret against a stored digest.
    pub fn secret_matches(&self, secret: &str, stored_digest: &str) -> bool {
        use subtle::ConstantTimeEq;
        let computed = self.digest_secret(secret);
        computed.len() == stored_digest.len()
            && bool::from(computed.as_bytes().ct_eq(stored_digest.as_bytes()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secret_digest_is_keyed_and_checked() {
        let a =
            MasterKey::from_base64(&base64::engine::general_purpose::STANDARD.encode([7u8; 32]))
                .unwrap();
        let b =
            MasterKey::from_base64(&base64::engine::general_purpose::STANDARD.encode([8u8; 32]))
                .unwrap();
        let d = a.digest_secret("s3cret");
        assert!(a.secret_matches("s3cret", &d));
        assert!(!a.secret_matches("s3creT", &d));
        assert!(
            !b.secret_matches("s3cret", &d),
            "another master key must not verify"
        );
        assert!(MasterKey::from_base64("dG9vIHNob3J0").is_none());
    }
}
