//! The decryption primitives against ciphertexts made here with OpenSSL (the
//! xmlsec1-made documents are in `saml_encrypted_tests.rs`): every failure must be
//! the same `Undecryptable`.

use super::*;
use openssl::encrypt::Encrypter;
use openssl::rsa::Rsa;
use std::sync::OnceLock;

fn key() -> &'static PKey<Private> {
    static KEY: OnceLock<PKey<Private>> = OnceLock::new();
    KEY.get_or_init(|| PKey::from_rsa(Rsa::generate(2048).unwrap()).unwrap())
}

fn other_key() -> &'static PKey<Private> {
    static KEY: OnceLock<PKey<Private>> = OnceLock::new();
    KEY.get_or_init(|| PKey::from_rsa(Rsa::generate(2048).unwrap()).unwrap())
}

fn wrap(to: &PKey<Private>, data_key: &[u8], setup: impl FnOnce(&mut Encrypter<'_>)) -> Vec<u8> {
    let mut e = Encrypter::new(to).unwrap();
    setup(&mut e);
    let mut out = vec![0; e.encrypt_len(data_key).unwrap()];
    let n = e.encrypt(data_key, &mut out).unwrap();
    out.truncate(n);
    out
}

fn oaep(digest: MessageDigest, mgf1: MessageDigest) -> impl FnOnce(&mut Encrypter<'_>) {
    move |e| {
        e.set_rsa_padding(Padding::PKCS1_OAEP).unwrap();
        e.set_rsa_oaep_md(digest).unwrap();
        e.set_rsa_mgf1_md(mgf1).unwrap();
    }
}

/// AES-CBC with XML Encryption's padding: `pad` octets, the last one counting them.
fn cbc_encrypt(key: &[u8], plaintext: &[u8]) -> Vec<u8> {
    let mut padded = plaintext.to_vec();
    let pad = 16 - plaintext.len() % 16;
    padded.extend((1..pad).map(|i| i as u8 ^ 0x5a));
    padded.push(pad as u8);
    raw_cbc(key, &padded)
}

fn raw_cbc(key: &[u8], padded: &[u8]) -> Vec<u8> {
    let iv = [7u8; 16];
    let mut c = Crypter::new(cbc(key.len()), Mode::Encrypt, key, Some(&iv)).unwrap();
    c.pad(false);
    let mut out = vec![0; padded.len() + 16];
    let n = c.update(padded, &mut out).unwrap();
    let m = c.finalize(&mut out[n..]).unwrap();
    out.truncate(n + m);
    [iv.as_slice(), &out].concat()
}

fn gcm_encrypt(key: &[u8], plaintext: &[u8]) -> Vec<u8> {
    let iv = [9u8; 12];
    let mut tag = [0u8; 16];
    let body =
        openssl::symm::encrypt_aead(gcm(key.len()), key, Some(&iv), &[], plaintext, &mut tag)
            .unwrap();
    [iv.as_slice(), &body, &tag].concat()
}

const PLAIN: &[u8] = b"<saml:Assertion ID=\"_a\">Ana</saml:Assertion>";

fn is_undecryptable<T: std::fmt::Debug>(r: Result<T, FederationError>) -> bool {
    matches!(&r, Err(e @ FederationError::Undecryptable(_)) if e.code() == "decryption")
}

#[test]
fn aes_cbc_and_gcm_round_trip_with_oaep_sha1_and_sha256() {
    let transports = [
        (
            KeyTransport::from_method(RSA_OAEP_MGF1P, None, None, vec![], false).unwrap(),
            oaep(MessageDigest::sha1(), MessageDigest::sha1()),
        ),
        (
            KeyTransport::from_method(
                RSA_OAEP,
                Some("http://www.w3.org/2001/04/xmlenc#sha256"),
                Some("http://www.w3.org/2009/xmlenc11#mgf1sha256"),
                vec![],
                false,
            )
            .unwrap(),
            oaep(MessageDigest::sha256(), MessageDigest::sha256()),
        ),
    ];
    for (transport, setup) in transports {
        let data_key = [0x42u8; 32];
        let wrapped = wrap(key(), &data_key, setup);
        for uri in [AES128_CBC, AES192_CBC, AES256_CBC, AES128_GCM, AES256_GCM] {
            let alg = DataAlgorithm::from_uri(uri).unwrap();
            let n = alg.key_len();
            // The data key is as long as the algorithm needs; wrap a fresh one.
            let wrapped = if n == 32 {
                wrapped.clone()
            } else {
                let setup = match &transport {
                    KeyTransport::Oaep { digest, mgf1, .. } => oaep(*digest, *mgf1),
                    KeyTransport::Rsa15 => unreachable!(),
                };
                wrap(key(), &data_key[..n], setup)
            };
            let k = transport.unwrap_key(key(), &wrapped, n).unwrap();
            assert_eq!(k, data_key[..n]);
            let data = match alg {
                DataAlgorithm::AesCbc(_) => cbc_encrypt(&k, PLAIN),
                DataAlgorithm::AesGcm(_) => gcm_encrypt(&k, PLAIN),
            };
            assert_eq!(alg.decrypt(&k, &data).unwrap(), PLAIN, "{uri}");
        }
    }
}

#[test]
fn an_oaep_label_is_honoured() {
    let t =
        KeyTransport::from_method(RSA_OAEP_MGF1P, None, None, b"label".to_vec(), false).unwrap();
    let wrapped = wrap(key(), &[1u8; 16], |e| {
        oaep(MessageDigest::sha1(), MessageDigest::sha1())(e);
        e.set_rsa_oaep_label(b"label").unwrap();
    });
    assert_eq!(t.unwrap_key(key(), &wrapped, 16).unwrap(), [1u8; 16]);
    let unlabelled = KeyTransport::from_method(RSA_OAEP_MGF1P, None, None, vec![], false).unwrap();
    assert!(is_undecryptable(unlabelled.unwrap_key(key(), &wrapped, 16)));
}

#[test]
fn wrong_key_wrong_digest_wrong_length_and_truncation_fail_alike() {
    let sha1 = KeyTransport::from_method(RSA_OAEP_MGF1P, None, None, vec![], false).unwrap();
    let sha256 = KeyTransport::from_method(
        RSA_OAEP,
        Some("http://www.w3.org/2001/04/xmlenc#sha256"),
        None,
        vec![],
        false,
    )
    .unwrap();
    let wrapped = wrap(
        key(),
        &[3u8; 16],
        oaep(MessageDigest::sha1(), MessageDigest::sha1()),
    );
    let for_other = wrap(
        other_key(),
        &[3u8; 16],
        oaep(MessageDigest::sha1(), MessageDigest::sha1()),
    );
    assert!(is_undecryptable(sha1.unwrap_key(key(), &for_other, 16)));
    assert!(is_undecryptable(sha256.unwrap_key(key(), &wrapped, 16)));
    assert!(is_undecryptable(sha1.unwrap_key(key(), &wrapped, 32)));
    assert!(is_undecryptable(sha1.unwrap_key(key(), &wrapped[1..], 16)));
    let mut flipped = wrapped.clone();
    flipped[100] ^= 1;
    assert!(is_undecryptable(sha1.unwrap_key(key(), &flipped, 16)));

    let k = [5u8; 16];
    let cbc_data = cbc_encrypt(&k, PLAIN);
    let gcm_data = gcm_encrypt(&k, PLAIN);
    let cbc128 = DataAlgorithm::AesCbc(16);
    let gcm128 = DataAlgorithm::AesGcm(16);
    assert!(is_undecryptable(cbc128.decrypt(&[6u8; 16], &gcm_data)));
    assert!(is_undecryptable(gcm128.decrypt(&[6u8; 16], &gcm_data)));
    assert!(is_undecryptable(
        gcm128.decrypt(&k, &gcm_data[..gcm_data.len() - 1])
    ));
    assert!(is_undecryptable(gcm128.decrypt(&k, &gcm_data[..20])));
    assert!(is_undecryptable(
        cbc128
            .decrypt(&k, &cbc_data[..cbc_data.len() - 16])
            .and_then(|p| if p == PLAIN {
                Ok(p)
            } else {
                Err(undecryptable("differs"))
            })
    ));
    assert!(is_undecryptable(
        cbc128.decrypt(&k, &cbc_data[..cbc_data.len() - 3])
    ));
    assert!(is_undecryptable(cbc128.decrypt(&k, &cbc_data[..16])));
    assert!(is_undecryptable(cbc128.decrypt(&[5u8; 32], &cbc_data)));
    let mut tampered = gcm_data.clone();
    tampered[14] ^= 0x80;
    assert!(is_undecryptable(gcm128.decrypt(&k, &tampered)));
}

#[test]
fn bad_cbc_padding_is_the_same_failure() {
    let k = [8u8; 16];
    let cbc128 = DataAlgorithm::AesCbc(16);
    let mut block = [0u8; 32];
    block[..16].copy_from_slice(b"<saml:Assertion/");
    for last in [0u8, 17, 255] {
        block[31] = last;
        assert!(
            is_undecryptable(cbc128.decrypt(&k, &raw_cbc(&k, &block))),
            "{last}"
        );
    }
    block[31] = 16;
    assert_eq!(
        cbc128.decrypt(&k, &raw_cbc(&k, &block)).unwrap(),
        &block[..16]
    );
}

#[test]
fn triple_des_and_rsa_1_5_are_refused_with_what_to_change() {
    let e = DataAlgorithm::from_uri(TRIPLEDES_CBC).unwrap_err();
    assert_eq!(e.code(), "tripledes");
    assert!(e.to_string().contains("AES"), "{e}");
    let e = KeyTransport::from_method(RSA_1_5, None, None, vec![], false).unwrap_err();
    assert_eq!(e.code(), "rsa1_5");
    assert!(e.to_string().contains("RSA-OAEP"), "{e}");
    for unknown in ["http://www.w3.org/2001/04/xmlenc#kw-aes128", ""] {
        assert_eq!(
            DataAlgorithm::from_uri(unknown).unwrap_err().code(),
            "encryption_algorithm"
        );
    }
    let md5 = KeyTransport::from_method(
        RSA_OAEP,
        Some("http://www.w3.org/2001/04/xmldsig-more#md5"),
        None,
        vec![],
        false,
    );
    assert_eq!(md5.unwrap_err().code(), "encryption_algorithm");
}

#[test]
fn rsa_1_5_when_allowed_rejects_implicitly() {
    let t = KeyTransport::from_method(RSA_1_5, None, None, vec![], true).unwrap();
    let pkcs1 = |e: &mut Encrypter<'_>| e.set_rsa_padding(Padding::PKCS1).unwrap();
    let good = wrap(key(), &[4u8; 32], pkcs1);
    assert_eq!(t.unwrap_key(key(), &good, 32).unwrap(), [4u8; 32]);
    // A key of the wrong length and a ciphertext for another key both "succeed" with
    // a key derived from the ciphertext (the same each time), so the refusal comes
    // from the data decryption, like any wrong key.
    let short = wrap(key(), &[4u8; 16], pkcs1);
    let fake = t.unwrap_key(key(), &short, 32).unwrap();
    assert_eq!(fake.len(), 32);
    assert_ne!(fake, [4u8; 32]);
    assert_eq!(t.unwrap_key(key(), &short, 32).unwrap(), fake);
    let foreign = wrap(other_key(), &[4u8; 32], pkcs1);
    let fake2 = t.unwrap_key(key(), &foreign, 32).unwrap();
    assert_ne!(fake2, fake);
    let data = gcm_encrypt(&[4u8; 32], PLAIN);
    assert!(is_undecryptable(
        DataAlgorithm::AesGcm(32).decrypt(&fake2, &data)
    ));
}
