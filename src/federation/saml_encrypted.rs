//! Encrypted assertions: `<saml:EncryptedAssertion>` (SAML core §2.3.4), decrypted with
//! the hub's SP key (the certificate our SP metadata publishes for encryption).
//!
//! samael's schema cannot read most IdPs' EncryptedAssertion and decrypts only
//! AES-128, so the element is read here (`xml_tree`) and decrypted with our own
//! primitives (`xmlenc`). Encryption gives confidentiality, not authenticity: our
//! certificate is public, so anyone can encrypt an assertion to us. A signature is
//! still required, in one of the two places SAML profiles §4.1.4.2 allows (for the
//! HTTP-POST binding: on the assertion or on the Response):
//!
//! (a) The Response is signed (Shibboleth's default). Its signature covers the
//!     EncryptedAssertion as sent, so it is verified first, over the Response as
//!     received, with the same strict checks as any signature; nothing is decrypted
//!     unless it passes, and only what it covers is decrypted. The decrypted assertion
//!     is then covered by it (sign-then-encrypt is not needed).
//! (b) The Response is not signed: the assertion must carry its own signature, made
//!     before it was encrypted (SAML core §6.2). It is decrypted, put back in its place
//!     and verified exactly like a plain signed assertion (samael, xmlsec, the XSW
//!     defence). Here unauthenticated ciphertext is decrypted, so every failure up to
//!     and including that signature check is one and the same refusal ("decryption"):
//!     a different answer for bad padding, a malformed plaintext or a bad signature is
//!     the oracle of Jager & Somorovsky, "How to Break XML Encryption" (CCS 2011).
//!
//! Either way the result is a Response document with a plain Assertion, and it goes
//! through the same extraction and checks as an unencrypted Response (SAML profiles
//! §4.1.4.3: Recipient, times, InResponseTo, audience; §4.1.4.5: one-time use).

use base64::Engine as _;
use openssl::pkey::{PKey, Private};
use samael::crypto::{CertificateDer, Crypto, CryptoProvider, ReduceMode};

use super::saml_response::{Authenticated, Decoded, Expect, MAX_RESPONSE_BYTES};
use super::xml_tree::{Tree, DS, SAML, SAMLP, XENC, XENC11};
use super::xmlenc::{undecryptable, DataAlgorithm, KeyTransport};
use super::FederationError;

/// `Type` of an EncryptedData holding one element (XML Encryption 1.1 §3.5.1).
const TYPE_ELEMENT: &str = "http://www.w3.org/2001/04/xmlenc#Element";
/// `Type` of a RetrievalMethod that points at an EncryptedKey (§3.5.1).
const TYPE_ENCRYPTED_KEY: &str = "http://www.w3.org/2001/04/xmlenc#EncryptedKey";
/// More EncryptedKeys than this (one per recipient) is not a real IdP's Response.
const MAX_KEYS: usize = 4;

/// What an encrypted Response says about itself before anything is checked: only
/// used to find the pending request and to choose between (a) and (b).
#[derive(Debug)]
pub struct Preread {
    pub in_response_to: Option<String>,
    pub status: Option<String>,
    /// A ds:Signature is a direct child of the Response (case (a)).
    pub response_signed: bool,
}

/// None when the Response carries no EncryptedAssertion as a direct child.
pub fn preread(xml: &str) -> Result<Option<Preread>, FederationError> {
    let tree = Tree::parse(xml)
        .ok_or_else(|| FederationError::rejected("malformed", "not well-formed XML"))?;
    let root = tree
        .root()
        .filter(|r| r.is(SAMLP, "Response"))
        .ok_or_else(|| FederationError::rejected("malformed", "not a samlp:Response"))?;
    if tree.child(Tree::ROOT, SAML, "EncryptedAssertion").is_none() {
        return Ok(None);
    }
    let status = tree
        .child(Tree::ROOT, SAMLP, "Status")
        .and_then(|s| tree.child(s, SAMLP, "StatusCode"))
        .and_then(|c| tree.get(c))
        .and_then(|c| c.attr("Value"))
        .map(str::to_string);
    Ok(Some(Preread {
        in_response_to: root.attr("InResponseTo").map(str::to_string),
        status,
        response_signed: tree.child(Tree::ROOT, DS, "Signature").is_some(),
    }))
}

/// What decrypting needs: our key, our entity id (an EncryptedKey's Recipient), and
/// whether this IdP may use RSA v1.5.
pub struct Recipient<'a> {
    pub key: &'a PKey<Private>,
    pub entity_id: &'a str,
    pub allow_rsa1_5: bool,
}

/// Checks the signature that protects the encrypted assertion (case (a)) and
/// decrypts it; the returned document still goes through `saml_response::extract`.
pub fn open(
    decoded: &Decoded,
    expect: &Expect<'_>,
    certs: &[CertificateDer],
) -> Result<Authenticated, FederationError> {
    let me = Recipient {
        key: expect.sp_key,
        entity_id: expect.sp.entity_id.as_deref().unwrap_or_default(),
        allow_rsa1_5: expect.allow_rsa1_5,
    };
    if decoded.response_signed {
        // (a) Verified before anything is decrypted; a failure is a signature failure,
        // never a fall-back to (b). samael's reduction keeps only what a verified
        // signature covers, and we decrypt from that copy.
        let reduced = Crypto::reduce_xml_to_signed_with_allowed_algorithms(
            &decoded.xml,
            certs,
            ReduceMode::ValidateAndMarkNoAncestors,
            expect.sp.allowed_signature_algorithms.as_deref(),
        )
        .map_err(|e| FederationError::rejected("signature", format!("Response signature: {e}")))?;
        let tree = Tree::parse(&reduced).ok_or_else(|| {
            FederationError::rejected("signature", "the verified Response does not parse")
        })?;
        let covered = tree.root().is_some_and(|r| r.is(SAMLP, "Response"));
        let encrypted = tree
            .child(Tree::ROOT, SAML, "EncryptedAssertion")
            .filter(|_| covered)
            .ok_or_else(|| {
                FederationError::rejected(
                    "signature",
                    "the Response signature does not cover the encrypted assertion",
                )
            })?;
        // SAML bindings §3.5.5.2: a signed Response sent by HTTP-POST names its
        // Destination (samael then checks it is our ACS).
        if tree.root().and_then(|r| r.attr("Destination")).is_none() {
            return Err(FederationError::rejected(
                "destination",
                "a signed Response without Destination",
            ));
        }
        let plaintext = decrypt_assertion(&tree, encrypted, &me)?;
        let xml = splice(&reduced, &tree, encrypted, plaintext, expect.allow_sha1)?;
        Ok(Authenticated::ResponseVerified(xml))
    } else {
        // (b) The decrypted assertion must be signed; extract() verifies it and
        // reports its failures as this step's.
        let tree = Tree::parse(&decoded.xml)
            .ok_or_else(|| undecryptable("the Response does not parse"))?;
        let encrypted = tree
            .child(Tree::ROOT, SAML, "EncryptedAssertion")
            .ok_or_else(|| undecryptable("no EncryptedAssertion"))?;
        let plaintext = decrypt_assertion(&tree, encrypted, &me)?;
        let xml = splice(&decoded.xml, &tree, encrypted, plaintext, expect.allow_sha1)?;
        Ok(Authenticated::VerifySignatures {
            xml,
            decrypted: true,
        })
    }
}

/// The assertion's octets (XML Encryption 1.1 §4.4, decryption steps 1-4).
fn decrypt_assertion(
    tree: &Tree,
    assertion: usize,
    me: &Recipient<'_>,
) -> Result<Vec<u8>, FederationError> {
    let mut data = tree
        .children(assertion)
        .filter(|(_, e)| e.is(XENC, "EncryptedData"));
    let (data, data_el) = match (data.next(), data.next()) {
        (Some(d), None) => d,
        _ => return Err(undecryptable("not exactly one EncryptedData")),
    };
    if data_el.attr("Type").is_some_and(|t| t != TYPE_ELEMENT) {
        return Err(undecryptable("EncryptedData Type is not Element"));
    }
    // Algorithms first: refusing 3DES or RSA v1.5 needs no key and no ciphertext.
    let algorithm = tree
        .child(data, XENC, "EncryptionMethod")
        .and_then(|m| tree.get(m)?.attr("Algorithm"))
        .ok_or_else(|| undecryptable("EncryptedData has no EncryptionMethod"))?;
    let algorithm = DataAlgorithm::from_uri(algorithm)?;
    let keys = encrypted_keys(tree, assertion, data, me.entity_id)?
        .into_iter()
        .map(|k| {
            Ok((
                key_transport(tree, k, me.allow_rsa1_5)?,
                cipher_value(tree, k)?,
            ))
        })
        .collect::<Result<Vec<_>, FederationError>>()?;
    let ciphertext = cipher_value(tree, data)?;
    let mut last = undecryptable("no key");
    for (transport, wrapped) in keys {
        // Each step fails the same way; with several keys (one per recipient), the
        // one that was ours is the one whose data decrypts.
        let attempt = transport
            .unwrap_key(me.key, &wrapped, algorithm.key_len())
            .and_then(|k| algorithm.decrypt(&k, &ciphertext));
        match attempt {
            Ok(plaintext) => return Ok(plaintext),
            Err(e) => last = e,
        }
    }
    Err(last)
}

/// The EncryptedKeys that may hold our data key, in the layouts IdPs use: inside the
/// EncryptedData's ds:KeyInfo (Shibboleth, ADFS, pysaml2), pointed at from there by
/// a ds:RetrievalMethod, or beside the EncryptedData in the EncryptedAssertion
/// (SAML core §2.3.4). Only this EncryptedAssertion is searched; a key addressed to
/// another Recipient is skipped.
fn encrypted_keys(
    tree: &Tree,
    assertion: usize,
    data: usize,
    entity_id: &str,
) -> Result<Vec<usize>, FederationError> {
    let mut found = Vec::new();
    let siblings = || {
        tree.children(assertion)
            .filter(|(_, e)| e.is(XENC, "EncryptedKey"))
    };
    if let Some(key_info) = tree.child(data, DS, "KeyInfo") {
        for (i, e) in tree.children(key_info) {
            if e.is(XENC, "EncryptedKey") {
                found.push(i);
            } else if e.is(DS, "RetrievalMethod") {
                let id = e
                    .attr("URI")
                    .and_then(|u| u.strip_prefix('#'))
                    .filter(|_| e.attr("Type") == Some(TYPE_ENCRYPTED_KEY))
                    .ok_or_else(|| {
                        undecryptable("RetrievalMethod is not #id of an EncryptedKey")
                    })?;
                let (k, _) = siblings()
                    .find(|(_, k)| k.attr("Id") == Some(id))
                    .ok_or_else(|| undecryptable("RetrievalMethod target not found"))?;
                found.push(k);
            }
        }
    }
    if found.is_empty() {
        found = siblings().map(|(i, _)| i).collect();
    }
    found.retain(|k| {
        tree.get(*k)
            .and_then(|e| e.attr("Recipient"))
            .is_none_or(|r| r == entity_id)
    });
    if found.is_empty() || found.len() > MAX_KEYS {
        return Err(undecryptable("no usable EncryptedKey"));
    }
    Ok(found)
}

fn key_transport(
    tree: &Tree,
    key: usize,
    allow_rsa1_5: bool,
) -> Result<KeyTransport, FederationError> {
    let method = tree
        .child(key, XENC, "EncryptionMethod")
        .ok_or_else(|| undecryptable("EncryptedKey has no EncryptionMethod"))?;
    let algorithm = tree
        .get(method)
        .and_then(|m| m.attr("Algorithm"))
        .ok_or_else(|| undecryptable("EncryptionMethod has no Algorithm"))?;
    let param = |ns: &str, name: &str| tree.child(method, ns, name).and_then(|i| tree.get(i));
    let digest = param(DS, "DigestMethod").and_then(|d| d.attr("Algorithm"));
    let mgf = param(XENC11, "MGF").and_then(|d| d.attr("Algorithm"));
    let label = match param(XENC, "OAEPparams") {
        Some(p) => base64_value(&p.text)?,
        None => Vec::new(),
    };
    KeyTransport::from_method(algorithm, digest, mgf, label, allow_rsa1_5)
}

/// CipherData/CipherValue, base64-decoded (CipherReference is not followed: it would
/// fetch a URI).
fn cipher_value(tree: &Tree, of: usize) -> Result<Vec<u8>, FederationError> {
    let value = tree
        .child(of, XENC, "CipherData")
        .and_then(|d| tree.child(d, XENC, "CipherValue"))
        .and_then(|v| tree.get(v))
        .ok_or_else(|| undecryptable("no CipherData/CipherValue"))?;
    base64_value(&value.text)
}

fn base64_value(text: &str) -> Result<Vec<u8>, FederationError> {
    let compact: String = text.chars().filter(|c| !c.is_ascii_whitespace()).collect();
    base64::engine::general_purpose::STANDARD
        .decode(compact)
        .map_err(|_| undecryptable("not base64"))
}

/// The decrypted assertion in place of its EncryptedAssertion, so its namespace
/// prefixes resolve as they did when the IdP encrypted it (XML Encryption 1.1 §4.4
/// step 5). The plaintext must be exactly one element named Assertion, with no DTD,
/// on its own (so it cannot close the Response and open another), and the whole
/// document then passes the same `xml_guard` checks as a received Response.
fn splice(
    doc: &str,
    tree: &Tree,
    encrypted: usize,
    plaintext: Vec<u8>,
    allow_sha1: bool,
) -> Result<String, FederationError> {
    if plaintext.len() > MAX_RESPONSE_BYTES {
        return Err(undecryptable("plaintext too large"));
    }
    let text = String::from_utf8(plaintext).map_err(|_| undecryptable("plaintext not UTF-8"))?;
    let mut body = text.trim_start_matches('\u{feff}').trim();
    if body.starts_with("<?xml") {
        let end = body
            .find("?>")
            .ok_or_else(|| undecryptable("plaintext declaration"))?;
        body = body.get(end + 2..).unwrap_or_default().trim_start();
    }
    let upper = body.to_ascii_uppercase();
    if upper.contains("<!DOCTYPE") || upper.contains("<!ENTITY") {
        return Err(undecryptable("plaintext carries a DTD"));
    }
    check_one_assertion(body)?;
    let el = tree
        .get(encrypted)
        .ok_or_else(|| undecryptable("EncryptedAssertion"))?;
    let (before, after) = match (doc.get(..el.start), doc.get(el.end..)) {
        (Some(b), Some(a)) => (b, a),
        _ => return Err(undecryptable("EncryptedAssertion range")),
    };
    let xml = [before, body, after].concat();
    super::xml_guard::check(&xml, allow_sha1)
        .map_err(|_| undecryptable("the decrypted Response fails the XML checks"))?;
    Ok(xml)
}

/// One balanced element named Assertion and nothing else but whitespace and comments.
fn check_one_assertion(body: &str) -> Result<(), FederationError> {
    use quick_xml::events::Event;
    let bad = || undecryptable("plaintext is not one Assertion element");
    let mut reader = quick_xml::Reader::from_str(body);
    let (mut depth, mut roots) = (0usize, 0usize);
    loop {
        let event = reader.read_event().map_err(|_| bad())?;
        match &event {
            Event::Start(e) | Event::Empty(e) if depth == 0 => {
                roots += 1;
                if roots > 1 || e.local_name().as_ref() != b"Assertion" {
                    return Err(bad());
                }
                if matches!(event, Event::Start(_)) {
                    depth += 1;
                }
            }
            Event::Start(_) => depth += 1,
            Event::End(_) => depth = depth.checked_sub(1).ok_or_else(bad)?,
            Event::Text(t) if depth == 0 && !t.iter().all(u8::is_ascii_whitespace) => {
                return Err(bad())
            }
            Event::CData(_) if depth == 0 => return Err(bad()),
            Event::DocType(_) | Event::Decl(_) | Event::PI(_) => return Err(bad()),
            Event::Eof => break,
            _ => {}
        }
    }
    if depth == 0 && roots == 1 {
        Ok(())
    } else {
        Err(bad())
    }
}

#[cfg(test)]
#[path = "saml_encrypted_tests.rs"]
mod tests;
