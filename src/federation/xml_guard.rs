//! What a SAMLResponse may contain before any of it reaches xmlsec.
//!
//! xmlsec resolves every `ds:Reference` URI and runs every transform it names *before*
//! it checks the SignatureValue, and samael leaves its defaults on (any URI scheme, any
//! transform). Unchecked, an unsigned POST to our ACS could make the hub fetch
//! `http://internal-host/…` or read `file:///dev/zero` forever. So a Response is read
//! once here with a streaming parser (no DTD, no entities) and refused unless its
//! signatures have the one shape SAML uses (SAML core §5.4): same-document references
//! (`""` or `#id`), the enveloped-signature and canonicalization transforms only,
//! SHA-2 algorithms (SHA-1 only for an IdP marked legacy), no RetrievalMethod, at most
//! two signatures (Response and Assertion) of one reference each.
//!
//! It also counts Responses and assertions: one Response and at most one assertion,
//! anywhere (SAML profiles §4.1.4.2). A second one (in Advice, Extensions, a ds:Object,
//! beside the first) is how XML signature wrapping hides a forged assertion next to a
//! signed one; verification would not read it either, but the attempt is refused
//! outright. Names are compared without prefix, so a decoy in another namespace counts.
//!
//! Inside a `saml:EncryptedAssertion` (SAML core §2.3.4) the elements of XML
//! Encryption have their own rules: a `ds:DigestMethod` there is RSA-OAEP's (XML
//! Encryption 1.1 §5.5.2, where SHA-1 is the default and harmless), and a
//! `ds:RetrievalMethod` may only point at an EncryptedKey in the same document, with
//! no transforms. A `CipherReference` (which would fetch a URI) is refused.

use quick_xml::events::Event;
use quick_xml::Reader;

use super::FederationError;

const TRANSFORMS: &[&str] = &[
    "http://www.w3.org/2000/09/xmldsig#enveloped-signature",
    "http://www.w3.org/2001/10/xml-exc-c14n#",
    "http://www.w3.org/2001/10/xml-exc-c14n#WithComments",
    "http://www.w3.org/TR/2001/REC-xml-c14n-20010315",
    "http://www.w3.org/TR/2001/REC-xml-c14n-20010315#WithComments",
    "http://www.w3.org/2006/12/xml-c14n11",
];

const SIGNATURES_SHA2: &[&str] = &[
    "http://www.w3.org/2001/04/xmldsig-more#rsa-sha256",
    "http://www.w3.org/2001/04/xmldsig-more#rsa-sha384",
    "http://www.w3.org/2001/04/xmldsig-more#rsa-sha512",
    "http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha256",
    "http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha384",
    "http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha512",
];
const SIGNATURE_SHA1: &str = "http://www.w3.org/2000/09/xmldsig#rsa-sha1";

const DIGESTS_SHA2: &[&str] = &[
    "http://www.w3.org/2001/04/xmlenc#sha256",
    "http://www.w3.org/2001/04/xmldsig-more#sha384",
    "http://www.w3.org/2001/04/xmlenc#sha512",
];
const DIGEST_SHA1: &str = "http://www.w3.org/2000/09/xmldsig#sha1";

fn refuse(reason: &'static str, detail: impl Into<String>) -> FederationError {
    FederationError::rejected(reason, detail)
}

/// What an IdP's administrator changes to stop signing with SHA-1.
const SHA1_FIX: &str = "configure it to sign with RSA-SHA256 and SHA-256 digests (Shibboleth does by default; in ADFS set the relying party trust's secure hash algorithm to SHA-256); only for an IdP that cannot, the hub's administrator may set allow_sha1 = true on its [[federation.saml_idps]] entry";

fn sha1_refused(used: &'static str) -> FederationError {
    FederationError::SigningRefused {
        code: "sha1",
        used,
        fix: SHA1_FIX,
    }
}

/// Checks the shape described above; `allow_sha1` admits RSA-SHA1 and SHA-1 digests.
/// Returns the number of signatures found (none: the message is unsigned).
pub fn check(xml: &str, allow_sha1: bool) -> Result<usize, FederationError> {
    let counts = scan(xml, allow_sha1, b"Response")?;
    if counts.roots != 1 || counts.assertions > 1 {
        return Err(refuse(
            "structure",
            format!(
                "{} Response and {} assertion elements (expected 1 and at most 1)",
                counts.roots, counts.assertions
            ),
        ));
    }
    Ok(counts.signatures)
}

/// The same rules for a downstream app's AuthnRequest (HTTP-POST binding, where an
/// enveloped signature reaches xmlsec): one AuthnRequest, no assertion, one signature.
pub fn check_request(xml: &str) -> Result<(), FederationError> {
    let counts = scan(xml, false, b"AuthnRequest")?;
    if counts.roots != 1 || counts.assertions > 0 || counts.signatures > 1 {
        return Err(refuse(
            "structure",
            "expected one AuthnRequest with at most one signature",
        ));
    }
    Ok(())
}

pub struct Counts {
    pub roots: usize,
    pub assertions: usize,
    pub signatures: usize,
}

/// Reads the whole document once, refusing any signature shape outside SAML's, and
/// counts the `root` elements, assertions and signatures found anywhere.
fn scan(xml: &str, allow_sha1: bool, root: &[u8]) -> Result<Counts, FederationError> {
    let mut reader = Reader::from_str(xml);
    let (mut responses, mut assertions, mut signatures, mut references) = (0, 0, 0, 0);
    // Local names of the open elements, for the rules inside an EncryptedAssertion.
    let mut open: Vec<Vec<u8>> = Vec::new();
    loop {
        let event = reader
            .read_event()
            .map_err(|_| refuse("malformed", "the message is not well-formed XML"))?;
        let element = match &event {
            Event::Start(e) | Event::Empty(e) => e,
            Event::End(_) => {
                open.pop();
                continue;
            }
            Event::DocType(_) => return Err(refuse("dtd", "the message carries a DTD")),
            Event::Eof => break,
            _ => continue,
        };
        let local = element.local_name();
        let parent = open.last().cloned();
        if matches!(event, Event::Start(_)) {
            open.push(local.as_ref().to_vec());
        }
        let attr = |name: &[u8]| -> Option<String> {
            element
                .attributes()
                .flatten()
                .find(|a| a.key.local_name().as_ref() == name)
                .and_then(|a| a.unescape_value().ok().map(|v| v.into_owned()))
        };
        if open.iter().any(|n| n == b"EncryptedAssertion") {
            check_encrypted(local.as_ref(), parent.as_deref(), &attr)?;
            if local.as_ref() != b"EncryptedAssertion" {
                continue;
            }
        }
        match local.as_ref() {
            name if name == root => responses += 1,
            b"Assertion" | b"EncryptedAssertion" => assertions += 1,
            b"Signature" => signatures += 1,
            b"Reference" => {
                references += 1;
                let uri = attr(b"URI").unwrap_or_default();
                let same_document = uri.is_empty()
                    || uri.strip_prefix('#').is_some_and(|id| {
                        !id.is_empty()
                            && id
                                .bytes()
                                .all(|b| b.is_ascii_alphanumeric() || b"_-.".contains(&b))
                    });
                if !same_document {
                    return Err(refuse(
                        "signature",
                        "a Reference points outside the document",
                    ));
                }
            }
            b"Transform" | b"CanonicalizationMethod"
                if !attr(b"Algorithm").is_some_and(|a| TRANSFORMS.contains(&a.as_str())) =>
            {
                return Err(refuse(
                    "signature",
                    "a transform other than enveloped-signature and c14n",
                ));
            }
            b"SignatureMethod"
                if !attr(b"Algorithm").is_some_and(|a| {
                    SIGNATURES_SHA2.contains(&a.as_str()) || (allow_sha1 && a == SIGNATURE_SHA1)
                }) =>
            {
                // SHA-1 is what old IdPs still use: say how to fix it (code `sha1`).
                if attr(b"Algorithm").as_deref() == Some(SIGNATURE_SHA1) {
                    return Err(sha1_refused("RSA-SHA1"));
                }
                return Err(refuse(
                    "signature",
                    "a signature algorithm other than SHA-2",
                ));
            }
            b"DigestMethod"
                if !attr(b"Algorithm").is_some_and(|a| {
                    DIGESTS_SHA2.contains(&a.as_str()) || (allow_sha1 && a == DIGEST_SHA1)
                }) =>
            {
                if attr(b"Algorithm").as_deref() == Some(DIGEST_SHA1) {
                    return Err(sha1_refused("SHA-1 digests"));
                }
                return Err(refuse("signature", "a digest algorithm other than SHA-2"));
            }
            b"RetrievalMethod" | b"XPath" | b"XSLT" => {
                return Err(refuse(
                    "signature",
                    "a RetrievalMethod or XPath/XSLT transform",
                ));
            }
            _ => {}
        }
    }
    if signatures > 2 || references > signatures {
        return Err(refuse(
            "signature",
            format!("{signatures} signatures with {references} references"),
        ));
    }
    Ok(Counts {
        roots: responses,
        assertions,
        signatures,
    })
}

/// OAEP's digests (XML Encryption 1.1 §5.5.2).
const OAEP_DIGESTS: &[&str] = &[
    DIGEST_SHA1,
    "http://www.w3.org/2001/04/xmldsig-more#sha224",
    "http://www.w3.org/2001/04/xmlenc#sha256",
    "http://www.w3.org/2001/04/xmldsig-more#sha384",
    "http://www.w3.org/2001/04/xmlenc#sha512",
];

/// One element inside an EncryptedAssertion (`parent`: its parent's local name).
/// Refused with the one code of every decryption failure; what is merely
/// unsupported (an algorithm, a layout) is found later, with the same code.
fn check_encrypted(
    local: &[u8],
    parent: Option<&[u8]>,
    attr: &dyn Fn(&[u8]) -> Option<String>,
) -> Result<(), FederationError> {
    let refusal = match local {
        b"DigestMethod" if parent == Some(b"EncryptionMethod".as_slice()) => (!attr(b"Algorithm")
            .is_some_and(|a| OAEP_DIGESTS.contains(&a.as_str())))
        .then_some("an OAEP digest other than SHA-1/SHA-2"),
        b"RetrievalMethod" => {
            let uri = attr(b"URI").unwrap_or_default();
            let same_document = uri.strip_prefix('#').is_some_and(|id| {
                !id.is_empty()
                    && id
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b"_-.".contains(&b))
            });
            (!same_document).then_some("a RetrievalMethod outside the document")
        }
        b"CipherReference" | b"Transforms" | b"Transform" | b"XPath" | b"XSLT" => {
            Some("a CipherReference or transform")
        }
        b"Signature" | b"Reference" | b"SignatureMethod" | b"DigestMethod" | b"Assertion"
        | b"Response" => Some("a signature, assertion or Response inside an EncryptedAssertion"),
        _ => None,
    };
    match refusal {
        Some(d) => Err(FederationError::Undecryptable(d.to_string())),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ONE: &str = r#"<samlp:Response xmlns:samlp="urn:oasis:names:tc:SAML:2.0:protocol"><saml:Assertion xmlns:saml="urn:oasis:names:tc:SAML:2.0:assertion"><saml:Issuer>x</saml:Issuer></saml:Assertion></samlp:Response>"#;

    fn signed(reference: &str, transform: &str, sig: &str) -> String {
        ONE.replace(
            "<saml:Issuer>x</saml:Issuer>",
            &format!(
                r#"<saml:Issuer>x</saml:Issuer><ds:Signature xmlns:ds="http://www.w3.org/2000/09/xmldsig#"><ds:SignedInfo><ds:CanonicalizationMethod Algorithm="http://www.w3.org/2001/10/xml-exc-c14n#"/><ds:SignatureMethod Algorithm="{sig}"/><ds:Reference URI="{reference}"><ds:Transforms><ds:Transform Algorithm="{transform}"/></ds:Transforms><ds:DigestMethod Algorithm="http://www.w3.org/2001/04/xmlenc#sha256"/></ds:Reference></ds:SignedInfo></ds:Signature>"#
            ),
        )
    }

    const ENV: &str = "http://www.w3.org/2000/09/xmldsig#enveloped-signature";
    const RSA256: &str = "http://www.w3.org/2001/04/xmldsig-more#rsa-sha256";

    fn reason(r: Result<usize, FederationError>) -> &'static str {
        match r {
            Err(FederationError::Rejected { reason, .. }) => reason,
            Err(FederationError::SigningRefused { code, .. }) => code,
            Err(_) => "other",
            Ok(_) => "ok",
        }
    }

    #[test]
    fn the_usual_shape_passes() {
        assert_eq!(reason(check(ONE, false)), "ok");
        assert_eq!(reason(check(&signed("#_a1", ENV, RSA256), false)), "ok");
    }

    #[test]
    fn references_outside_the_document_are_refused_before_xmlsec_sees_them() {
        for uri in ["http://10.0.0.5/x", "file:///dev/zero", "#xpointer(/)", "x"] {
            assert_eq!(
                reason(check(&signed(uri, ENV, RSA256), false)),
                "signature",
                "{uri}"
            );
        }
        let xslt = signed(
            "#_a1",
            "http://www.w3.org/TR/1999/REC-xslt-19991116",
            RSA256,
        );
        assert_eq!(reason(check(&xslt, false)), "signature");
    }

    #[test]
    fn sha1_only_when_allowed() {
        let sha1 = signed("#_a1", ENV, SIGNATURE_SHA1);
        // Its own code, and a message that says what to change (issue 14, defect 7).
        assert_eq!(reason(check(&sha1, false)), "sha1");
        let page = check(&sha1, false).unwrap_err().to_string();
        assert!(
            page.contains("RSA-SHA1") && page.contains("RSA-SHA256") && page.contains("allow_sha1"),
            "{page}"
        );
        let digest = sha1.replace("http://www.w3.org/2001/04/xmlenc#sha256", DIGEST_SHA1);
        assert_eq!(
            reason(check(&digest.replace(SIGNATURE_SHA1, RSA256), false)),
            "sha1"
        );
        assert_eq!(reason(check(&sha1, true)), "ok");
        assert_eq!(check(&sha1, true).unwrap(), 1, "one signature counted");
        assert_eq!(check(ONE, false).unwrap(), 0, "unsigned");
        let md5 = signed(
            "#_a1",
            ENV,
            "http://www.w3.org/2001/04/xmldsig-more#rsa-md5",
        );
        assert_eq!(reason(check(&md5, true)), "signature");
    }

    const ENCRYPTED: &str = r##"<samlp:Response xmlns:samlp="urn:oasis:names:tc:SAML:2.0:protocol"><saml:EncryptedAssertion xmlns:saml="urn:oasis:names:tc:SAML:2.0:assertion"><xenc:EncryptedData xmlns:xenc="http://www.w3.org/2001/04/xmlenc#" xmlns:ds="http://www.w3.org/2000/09/xmldsig#"><xenc:EncryptionMethod Algorithm="http://www.w3.org/2001/04/xmlenc#aes128-cbc"/><ds:KeyInfo><ds:RetrievalMethod URI="#EK1" Type="http://www.w3.org/2001/04/xmlenc#EncryptedKey"/></ds:KeyInfo><xenc:CipherData><xenc:CipherValue>AA==</xenc:CipherValue></xenc:CipherData></xenc:EncryptedData><xenc:EncryptedKey xmlns:xenc="http://www.w3.org/2001/04/xmlenc#" xmlns:ds="http://www.w3.org/2000/09/xmldsig#" Id="EK1"><xenc:EncryptionMethod Algorithm="http://www.w3.org/2001/04/xmlenc#rsa-oaep-mgf1p"><ds:DigestMethod Algorithm="http://www.w3.org/2000/09/xmldsig#sha1"/></xenc:EncryptionMethod><xenc:CipherData><xenc:CipherValue>AA==</xenc:CipherValue></xenc:CipherData></xenc:EncryptedKey></saml:EncryptedAssertion></samlp:Response>"##;

    #[test]
    fn encryption_elements_have_their_own_rules() {
        // OAEP's SHA-1 digest and a same-document RetrievalMethod are fine there.
        assert_eq!(reason(check(ENCRYPTED, false)), "ok");
        let undecryptable =
            |xml: &str| matches!(check(xml, false), Err(FederationError::Undecryptable(_)));
        assert!(undecryptable(
            &ENCRYPTED.replace("#EK1\"", "http://10.0.0.5/k\"")
        ));
        assert!(undecryptable(&ENCRYPTED.replace(
            "<xenc:CipherValue>AA==</xenc:CipherValue>",
            "<xenc:CipherReference URI=\"file:///etc/passwd\"/>"
        )));
        assert!(undecryptable(
            &ENCRYPTED.replace("xmldsig#sha1", "xmldsig-more#md5")
        ));
        // An encrypted assertion counts as one: with a plain one beside it, two.
        let both = ENCRYPTED.replace(
            "</samlp:Response>",
            "<saml:Assertion xmlns:saml=\"urn:oasis:names:tc:SAML:2.0:assertion\"/></samlp:Response>",
        );
        assert_eq!(reason(check(&both, false)), "structure");
    }

    #[test]
    fn a_second_assertion_anywhere_is_refused() {
        let hidden = ONE.replace(
            "<saml:Issuer>x</saml:Issuer>",
            "<saml:Issuer>x</saml:Issuer><saml:Advice><saml:Assertion/></saml:Advice>",
        );
        assert_eq!(reason(check(&hidden, false)), "structure");
        let other_ns = ONE.replace(
            "</samlp:Response>",
            "<evil:Assertion xmlns:evil=\"urn:x\"/></samlp:Response>",
        );
        assert_eq!(reason(check(&other_ns, false)), "structure");
        let wrapped = format!(
            "<samlp:Response xmlns:samlp=\"p\"><samlp:Extensions>{ONE}</samlp:Extensions></samlp:Response>"
        );
        assert_eq!(reason(check(&wrapped, false)), "structure");
    }
}
