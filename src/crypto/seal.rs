//! Sealing secrets at rest (signing keys, the SAML SP key, TOTP secrets, an upstream
//! sign-in's nonce and verifier): AES-256-GCM under a key derived from the master
//! key, with a label as associated data, so a sealed value moved to another row
//! (another key id, another person) does not open.
//!
//! Stored form: base64url(nonce ‖ ciphertext ‖ tag), a fresh random 96-bit nonce
//! each time (NIST SP 800-38D §8.2.2).

use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use base64::Engine;
use ring::aead;

use super::MasterKey;

const NONCE_LEN: usize = 12;
const TAG_LEN: usize = 16;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SealError {
    /// Not sealed under this master key and label (another key, another row, or
    /// altered): the caller says which.
    #[error("the sealed value does not open under this master key and label")]
    WrongKey,
    #[error("sealing failed: {0}")]
    Failed(&'static str),
}

fn cipher(master: &MasterKey) -> Result<aead::LessSafeKey, SealError> {
    let key = aead::UnboundKey::new(&aead::AES_256_GCM, master.key_encryption_key())
        .map_err(|_| SealError::Failed("bad key"))?;
    Ok(aead::LessSafeKey::new(key))
}

/// Seals `plain` under the master key, bound to `label`.
pub fn seal(master: &MasterKey, label: &str, plain: &[u8]) -> Result<String, SealError> {
    let key = cipher(master)?;
    let nonce: [u8; NONCE_LEN] = super::random_bytes();
    let mut buf = plain.to_vec();
    key.seal_in_place_append_tag(
        aead::Nonce::assume_unique_for_key(nonce),
        aead::Aad::from(label.as_bytes()),
        &mut buf,
    )
    .map_err(|_| SealError::Failed("encryption failed"))?;
    let mut out = nonce.to_vec();
    out.extend_from_slice(&buf);
    Ok(B64.encode(out))
}

/// Opens what [`seal`] made with the same master key and label.
pub fn open(master: &MasterKey, label: &str, sealed: &str) -> Result<Vec<u8>, SealError> {
    let raw = B64.decode(sealed).map_err(|_| SealError::WrongKey)?;
    if raw.len() < NONCE_LEN + TAG_LEN {
        return Err(SealError::WrongKey);
    }
    let (nonce, body) = raw.split_at(NONCE_LEN);
    let key = cipher(master)?;
    let nonce = aead::Nonce::try_assume_unique_for_key(nonce).map_err(|_| SealError::WrongKey)?;
    let mut buf = body.to_vec();
    let plain = key
        .open_in_place(nonce, aead::Aad::from(label.as_bytes()), &mut buf)
        .map_err(|_| SealError::WrongKey)?;
    Ok(plain.to_vec())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sealed_values_open_only_with_the_same_master_key_and_label() {
        let a = MasterKey::development();
        let b =
            MasterKey::from_base64(&base64::engine::general_purpose::STANDARD.encode([1u8; 32]))
                .unwrap();
        let sealed = seal(&a, "kid-1", b"private").unwrap();
        assert_eq!(open(&a, "kid-1", &sealed).unwrap(), b"private");
        assert_eq!(open(&b, "kid-1", &sealed), Err(SealError::WrongKey));
        assert_eq!(
            open(&a, "kid-2", &sealed),
            Err(SealError::WrongKey),
            "a sealed value cannot be moved to another label"
        );
        assert_eq!(open(&a, "kid-1", "short"), Err(SealError::WrongKey));
        assert_ne!(
            seal(&a, "kid-1", b"private").unwrap(),
            sealed,
            "fresh nonce"
        );
    }
}
