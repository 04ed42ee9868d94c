//! The master key: 32 bytes from configuration from which every other key of the hub
//! is derived (HMAC-SHA256 of the root with a distinct label each), so that no key
//! serves two purposes: sealing secrets at rest, keying the digests of stored
//! secrets and tokens, and sealing the audit chain.

use base64::Engine;
use ring::hmac;

use super::digest::{constant_time_eq, AuditKey, KeyedDigest};

/// Used only when no master key is configured; `serve` warns loudly.
const DEVELOPMENT_KEY: [u8; 32] = *b"hms-ach-development-only-key!!!!";

#[derive(Clone)]
pub struct MasterKey {
    key_encryption: [u8; 32],
    audit_chain: AuditKey,
    secret_digest: KeyedDigest,
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

    /// The configured key (`keys.master_key`), or the development key when none is
    /// set (the caller warns). A malformed key was refused by `Config::validate`.
    pub fn from_config(config: &crate::config::Config) -> MasterKey {
        config
            .keys
            .master_key
            .as_ref()
            .and_then(|k| MasterKey::from_base64(k.expose()))
            .unwrap_or_else(MasterKey::development)
    }

    fn from_bytes(bytes: [u8; 32], is_development: bool) -> MasterKey {
        let root = hmac::Key::new(hmac::HMAC_SHA256, &bytes);
        let derive = |label: &[u8]| -> [u8; 32] {
            let mut out = [0u8; 32];
            out.copy_from_slice(hmac::sign(&root, label).as_ref());
            out
        };
        // The labels are part of every stored digest, sealed secret and audit hash:
        // changing one orphans existing data.
        MasterKey {
            key_encryption: derive(b"hms-ach/v1/signing-key-encryption"),
            audit_chain: AuditKey::new(&derive(b"hms-ach/v1/audit-chain")),
            secret_digest: KeyedDigest::new(&derive(b"hms-ach/v1/client-secret-digest")),
            is_development,
        }
    }

    /// The key that seals the audit chain, handed to `audit::record` and `audit::verify`.
    pub fn audit_key(&self) -> &AuditKey {
        &self.audit_chain
    }

    pub(super) fn key_encryption_key(&self) -> &[u8; 32] {
        &self.key_encryption
    }

    /// Keyed SHA-256 of a secret, token or code (lowercase hex). These values are
    /// 256-bit random (or carry their own throttle), so a fast keyed hash is as
    /// strong as a slow one here, and it keeps the token endpoint fast.
    pub fn digest_secret(&self, secret: &str) -> String {
        self.secret_digest.hex(secret.as_bytes())
    }

    /// Constant-time comparison of a presented secret against a stored digest.
    pub fn secret_matches(&self, secret: &str, stored_digest: &str) -> bool {
        constant_time_eq(
            self.digest_secret(secret).as_bytes(),
            stored_digest.as_bytes(),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(byte: u8) -> MasterKey {
        MasterKey::from_base64(&base64::engine::general_purpose::STANDARD.encode([byte; 32]))
            .unwrap()
    }

    #[test]
    fn secret_digest_is_keyed_and_checked() {
        let (a, b) = (key(7), key(8));
        let d = a.digest_secret("s3cret");
        assert!(a.secret_matches("s3cret", &d));
        assert!(!a.secret_matches("s3creT", &d));
        assert!(
            !b.secret_matches("s3cret", &d),
            "another master key must not verify"
        );
        assert!(MasterKey::from_base64("dG9vIHNob3J0").is_none());
    }

    /// Stored digests and audit hashes depend on the derivation: these values were
    /// computed before the key moved into the crypto kernel, so a database written
    /// then still verifies.
    #[test]
    fn derived_keys_are_unchanged() {
        let k = MasterKey::development();
        assert_eq!(
            k.digest_secret("s3cret"),
            hex_hmac(b"hms-ach/v1/client-secret-digest", b"s3cret")
        );
        assert_eq!(
            k.audit_key().seal(b"event"),
            hex_hmac(b"hms-ach/v1/audit-chain", b"event")
        );
        assert_eq!(format!("{k:?}"), "MasterKey(…)");
        assert_eq!(format!("{:?}", k.audit_key()), "AuditKey(…)");
    }

    /// The derivation written out independently: HMAC(HMAC(root, label), data).
    fn hex_hmac(label: &[u8], data: &[u8]) -> String {
        let root = hmac::Key::new(hmac::HMAC_SHA256, &DEVELOPMENT_KEY);
        let sub = hmac::sign(&root, label);
        hex::encode(hmac::sign(
            &hmac::Key::new(hmac::HMAC_SHA256, sub.as_ref()),
            data,
        ))
    }
}
