//! The XML Encryption algorithms the hub decrypts with (XML Encryption 1.1 §5), on
//! OpenSSL.
//!
//! Key transport (§5.5): RSA-OAEP, both `xmlenc#rsa-oaep-mgf1p` (MGF1 with SHA-1, the
//! OAEP digest from `ds:DigestMethod`) and `xmlenc11#rsa-oaep` (digest and `xenc11:MGF`
//! both named); RSA PKCS#1 v1.5 (§5.5.1) only for an IdP marked legacy, and then with
//! implicit rejection: a bad padding yields a key derived from the ciphertext instead
//! of an error, so the failure shows up later exactly like a wrong key (Bleichenbacher,
//! CRYPTO '98; the implicit rejection OpenSSL made its default in 3.2, done here
//! because the OpenSSL we link may be older).
//!
//! Data (§5.2): AES-CBC (§5.2.2, IV first, XML Encryption's own padding: the last octet
//! counts the padding octets, the others are arbitrary) and AES-GCM (§5.2.4, 96-bit IV
//! first, 128-bit tag last). Triple DES (§5.2.1) is refused as an algorithm.
//!
//! Every failure here is the same `Undecryptable`; the `&'static str` says which step
//! failed, for the debug log only, and never holds key or plaintext material.

use openssl::encrypt::Decrypter;
use openssl::hash::MessageDigest;
use openssl::pkey::{PKey, Private};
use openssl::rsa::Padding;
use openssl::symm::{Cipher, Crypter, Mode};
use subtle::{ConditionallySelectable, ConstantTimeEq};

use super::FederationError;

pub const AES128_CBC: &str = "http://www.w3.org/2001/04/xmlenc#aes128-cbc";
pub const AES192_CBC: &str = "http://www.w3.org/2001/04/xmlenc#aes192-cbc";
pub const AES256_CBC: &str = "http://www.w3.org/2001/04/xmlenc#aes256-cbc";
pub const AES128_GCM: &str = "http://www.w3.org/2009/xmlenc11#aes128-gcm";
pub const AES192_GCM: &str = "http://www.w3.org/2009/xmlenc11#aes192-gcm";
pub const AES256_GCM: &str = "http://www.w3.org/2009/xmlenc11#aes256-gcm";
pub const TRIPLEDES_CBC: &str = "http://www.w3.org/2001/04/xmlenc#tripledes-cbc";
pub const RSA_OAEP_MGF1P: &str = "http://www.w3.org/2001/04/xmlenc#rsa-oaep-mgf1p";
pub const RSA_OAEP: &str = "http://www.w3.org/2009/xmlenc11#rsa-oaep";
pub const RSA_1_5: &str = "http://www.w3.org/2001/04/xmlenc#rsa-1_5";

/// What the hub publishes in its SP metadata (`md:EncryptionMethod`), best first.
pub const ACCEPTED: &[&str] = &[
    AES256_GCM,
    AES128_GCM,
    AES256_CBC,
    AES192_CBC,
    AES128_CBC,
    RSA_OAEP,
    RSA_OAEP_MGF1P,
];

pub fn undecryptable(step: &'static str) -> FederationError {
    FederationError::Undecryptable(step.to_string())
}

fn refused(code: &'static str, used: &'static str, fix: &'static str) -> FederationError {
    FederationError::EncryptionRefused { code, used, fix }
}

/// The block cipher of an `xenc:EncryptedData` (§5.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DataAlgorithm {
    AesCbc(usize),
    AesGcm(usize),
}

impl DataAlgorithm {
    /// Refuses Triple DES with what to change at the IdP, and anything unknown.
    pub fn from_uri(uri: &str) -> Result<DataAlgorithm, FederationError> {
        Ok(match uri {
            AES128_CBC => DataAlgorithm::AesCbc(16),
            AES192_CBC => DataAlgorithm::AesCbc(24),
            AES256_CBC => DataAlgorithm::AesCbc(32),
            AES128_GCM => DataAlgorithm::AesGcm(16),
            AES192_GCM => DataAlgorithm::AesGcm(24),
            AES256_GCM => DataAlgorithm::AesGcm(32),
            TRIPLEDES_CBC => {
                return Err(refused(
                    "tripledes",
                    "Triple DES (3DES)",
                    "encrypt assertions for the hub with AES (AES-256-GCM, AES-128-GCM or AES-256-CBC) and RSA-OAEP",
                ))
            }
            _ => return Err(unsupported()),
        })
    }

    /// The key length in octets.
    pub fn key_len(self) -> usize {
        match self {
            DataAlgorithm::AesCbc(n) | DataAlgorithm::AesGcm(n) => n,
        }
    }

    pub fn decrypt(self, key: &[u8], data: &[u8]) -> Result<Vec<u8>, FederationError> {
        if key.len() != self.key_len() {
            return Err(undecryptable("key length"));
        }
        match self {
            DataAlgorithm::AesCbc(n) => decrypt_cbc(cbc(n), key, data),
            DataAlgorithm::AesGcm(n) => decrypt_gcm(gcm(n), key, data),
        }
    }
}

fn unsupported() -> FederationError {
    refused(
        "encryption_algorithm",
        "an algorithm the hub does not support",
        "encrypt assertions for the hub with AES-GCM or AES-CBC and RSA-OAEP (see the hub's SP metadata), or turn assertion encryption off for the hub",
    )
}

fn cbc(n: usize) -> Cipher {
    match n {
        16 => Cipher::aes_128_cbc(),
        24 => Cipher::aes_192_cbc(),
        _ => Cipher::aes_256_cbc(),
    }
}

fn gcm(n: usize) -> Cipher {
    match n {
        16 => Cipher::aes_128_gcm(),
        24 => Cipher::aes_192_gcm(),
        _ => Cipher::aes_256_gcm(),
    }
}

const BLOCK: usize = 16;

/// §5.2.2: IV ‖ ciphertext; §5.2 "Padding": the last octet N (1..=block size) says
/// how many octets to drop; the values of the others are not checked (they are
/// arbitrary by the spec, and checking them would only add a distinguisher).
fn decrypt_cbc(cipher: Cipher, key: &[u8], data: &[u8]) -> Result<Vec<u8>, FederationError> {
    if data.len() < 2 * BLOCK || !data.len().is_multiple_of(BLOCK) {
        return Err(undecryptable("CBC length"));
    }
    let (iv, body) = data.split_at(BLOCK);
    let err = |_| undecryptable("CBC");
    let mut c = Crypter::new(cipher, Mode::Decrypt, key, Some(iv)).map_err(err)?;
    c.pad(false);
    let mut out = vec![0u8; body.len() + BLOCK];
    let mut n = c.update(body, &mut out).map_err(err)?;
    n += c
        .finalize(out.get_mut(n..).unwrap_or_default())
        .map_err(err)?;
    out.truncate(n);
    let pad = usize::from(out.last().copied().unwrap_or(0));
    if pad == 0 || pad > BLOCK || pad > out.len() {
        return Err(undecryptable("CBC padding"));
    }
    out.truncate(out.len() - pad);
    Ok(out)
}

const GCM_IV: usize = 12;
const GCM_TAG: usize = 16;

/// §5.2.4: IV (96 bits) ‖ ciphertext ‖ tag (128 bits), no additional data.
fn decrypt_gcm(cipher: Cipher, key: &[u8], data: &[u8]) -> Result<Vec<u8>, FederationError> {
    if data.len() < GCM_IV + GCM_TAG {
        return Err(undecryptable("GCM length"));
    }
    let (iv, rest) = data.split_at(GCM_IV);
    let (body, tag) = rest.split_at(rest.len() - GCM_TAG);
    openssl::symm::decrypt_aead(cipher, key, Some(iv), &[], body, tag)
        .map_err(|_| undecryptable("GCM tag"))
}

/// How the data key is wrapped to our RSA key (§5.5).
#[derive(Clone)]
pub enum KeyTransport {
    Oaep {
        digest: MessageDigest,
        mgf1: MessageDigest,
        label: Vec<u8>,
    },
    Rsa15,
}

impl std::fmt::Debug for KeyTransport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            KeyTransport::Oaep { .. } => f.write_str("Oaep"),
            KeyTransport::Rsa15 => f.write_str("Rsa15"),
        }
    }
}

/// `ds:DigestMethod` of RSA-OAEP (SHA-1 is the default and is sound inside OAEP).
fn oaep_digest(uri: Option<&str>) -> Option<MessageDigest> {
    match uri {
        None | Some("http://www.w3.org/2000/09/xmldsig#sha1") => Some(MessageDigest::sha1()),
        Some("http://www.w3.org/2001/04/xmldsig-more#sha224") => Some(MessageDigest::sha224()),
        Some("http://www.w3.org/2001/04/xmlenc#sha256") => Some(MessageDigest::sha256()),
        Some("http://www.w3.org/2001/04/xmldsig-more#sha384") => Some(MessageDigest::sha384()),
        Some("http://www.w3.org/2001/04/xmlenc#sha512") => Some(MessageDigest::sha512()),
        _ => None,
    }
}

/// `xenc11:MGF` of `xmlenc11#rsa-oaep` (§5.5.2; MGF1 with SHA-1 when absent).
fn oaep_mgf(uri: Option<&str>) -> Option<MessageDigest> {
    match uri {
        None | Some("http://www.w3.org/2009/xmlenc11#mgf1sha1") => Some(MessageDigest::sha1()),
        Some("http://www.w3.org/2009/xmlenc11#mgf1sha224") => Some(MessageDigest::sha224()),
        Some("http://www.w3.org/2009/xmlenc11#mgf1sha256") => Some(MessageDigest::sha256()),
        Some("http://www.w3.org/2009/xmlenc11#mgf1sha384") => Some(MessageDigest::sha384()),
        Some("http://www.w3.org/2009/xmlenc11#mgf1sha512") => Some(MessageDigest::sha512()),
        _ => None,
    }
}

impl KeyTransport {
    /// From an `xenc:EncryptedKey`'s EncryptionMethod: the algorithm, its
    /// DigestMethod and MGF, and the OAEPparams label (already base64-decoded).
    pub fn from_method(
        algorithm: &str,
        digest: Option<&str>,
        mgf: Option<&str>,
        label: Vec<u8>,
        allow_rsa1_5: bool,
    ) -> Result<KeyTransport, FederationError> {
        match algorithm {
            // §5.5.2: mgf1p fixes MGF1 to SHA-1 whatever else is said.
            RSA_OAEP_MGF1P => Ok(KeyTransport::Oaep {
                digest: oaep_digest(digest).ok_or_else(unsupported)?,
                mgf1: MessageDigest::sha1(),
                label,
            }),
            RSA_OAEP => Ok(KeyTransport::Oaep {
                digest: oaep_digest(digest).ok_or_else(unsupported)?,
                mgf1: oaep_mgf(mgf).ok_or_else(unsupported)?,
                label,
            }),
            RSA_1_5 if allow_rsa1_5 => Ok(KeyTransport::Rsa15),
            RSA_1_5 => Err(refused(
                "rsa1_5",
                "RSA PKCS#1 v1.5 key transport (rsa-1_5, open to padding-oracle attacks)",
                "use RSA-OAEP (rsa-oaep-mgf1p or xmlenc11 rsa-oaep) for the hub; only for an IdP that cannot, the hub's administrator may set allow_rsa1_5 = true for it",
            )),
            _ => Err(unsupported()),
        }
    }

    /// The data key, `key_len` octets, or Undecryptable. For RSA v1.5 never an
    /// error on bad padding (implicit rejection, see the module comment).
    pub fn unwrap_key(
        &self,
        key: &PKey<Private>,
        wrapped: &[u8],
        key_len: usize,
    ) -> Result<Vec<u8>, FederationError> {
        let modulus_len = key.size();
        if wrapped.len() != modulus_len {
            return Err(undecryptable("wrapped key length"));
        }
        match self {
            KeyTransport::Oaep {
                digest,
                mgf1,
                label,
            } => {
                let out = rsa_decrypt(key, wrapped, |d| {
                    d.set_rsa_padding(Padding::PKCS1_OAEP)?;
                    d.set_rsa_oaep_md(*digest)?;
                    d.set_rsa_mgf1_md(*mgf1)?;
                    if !label.is_empty() {
                        d.set_rsa_oaep_label(label)?;
                    }
                    Ok(())
                })
                .map_err(|_| undecryptable("RSA-OAEP"))?;
                if out.len() != key_len {
                    return Err(undecryptable("RSA-OAEP key length"));
                }
                Ok(out)
            }
            KeyTransport::Rsa15 => {
                let fake = implicit_key(key, wrapped)?;
                let real = rsa_decrypt(key, wrapped, |d| d.set_rsa_padding(Padding::PKCS1));
                let (ok, real) = match real {
                    Ok(v) => (subtle::Choice::from(1), v),
                    Err(_) => (subtle::Choice::from(0), Vec::new()),
                };
                let use_real = ok & (real.len() as u64).ct_eq(&(key_len as u64));
                Ok((0..key_len)
                    .map(|i| {
                        let r = real.get(i).copied().unwrap_or(0);
                        let f = fake.get(i).copied().unwrap_or(0);
                        u8::conditional_select(&f, &r, use_real)
                    })
                    .collect())
            }
        }
    }
}

fn rsa_decrypt(
    key: &PKey<Private>,
    wrapped: &[u8],
    setup: impl FnOnce(&mut Decrypter<'_>) -> Result<(), openssl::error::ErrorStack>,
) -> Result<Vec<u8>, openssl::error::ErrorStack> {
    let mut d = Decrypter::new(key)?;
    setup(&mut d)?;
    let mut out = vec![0u8; d.decrypt_len(wrapped)?];
    let n = d.decrypt(wrapped, &mut out)?;
    out.truncate(n);
    Ok(out)
}

/// The key used when RSA v1.5 padding is wrong: HMAC-SHA256 of the ciphertext under a
/// secret derived from our private key, so the same ciphertext always gets the same
/// wrong key (a fresh random one per try would itself be a distinguisher).
fn implicit_key(key: &PKey<Private>, wrapped: &[u8]) -> Result<Vec<u8>, FederationError> {
    let der = key
        .private_key_to_der()
        .map_err(|_| undecryptable("private key"))?;
    let mut ctx = ring::digest::Context::new(&ring::digest::SHA256);
    ctx.update(b"hms-ach xmlenc rsa-1_5 implicit rejection\0");
    ctx.update(&der);
    let kdk = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, ctx.finish().as_ref());
    Ok(ring::hmac::sign(&kdk, wrapped).as_ref().to_vec())
}

#[cfg(test)]
#[path = "xmlenc_tests.rs"]
mod tests;
