//! Encrypted Responses made by `xmlsec1 --encrypt` (Debian's xmlsec1 CLI, installed by
//! scripts/system-deps.sh) to a key generated here, in the layouts IdPs use.

use super::*;
use crate::federation::xmlenc::{
    AES128_CBC, AES256_CBC, AES256_GCM, RSA_1_5, RSA_OAEP_MGF1P, TRIPLEDES_CBC,
};
use openssl::rsa::Rsa;
use openssl::x509::X509;
use std::process::Command;
use std::sync::OnceLock;

const ASSERTION: &str = r#"<saml:Assertion ID="_a1" Version="2.0" IssueInstant="2025-01-01T00:00:00Z"><saml:Issuer>https://idp.example/</saml:Issuer><saml:Subject><saml:NameID>ana</saml:NameID></saml:Subject></saml:Assertion>"#;

fn response(inner: &str) -> String {
    format!(
        r#"<samlp:Response xmlns:samlp="urn:oasis:names:tc:SAML:2.0:protocol" xmlns:saml="urn:oasis:names:tc:SAML:2.0:assertion" ID="_r1" Version="2.0" InResponseTo="_req1" IssueInstant="2025-01-01T00:00:00Z"><saml:Issuer>https://idp.example/</saml:Issuer><samlp:Status><samlp:StatusCode Value="urn:oasis:names:tc:SAML:2.0:status:Success"/></samlp:Status>{inner}</samlp:Response>"#
    )
}

struct Keys {
    key: PKey<Private>,
    cert_pem: Vec<u8>,
    other_cert_pem: Vec<u8>,
}

fn keys() -> &'static Keys {
    static KEYS: OnceLock<Keys> = OnceLock::new();
    KEYS.get_or_init(|| {
        let cert = |key: &PKey<Private>| {
            let mut b = X509::builder().unwrap();
            b.set_pubkey(key).unwrap();
            let now = crate::clock::Clock::now(&crate::clock::SystemClock);
            b.set_not_before(&openssl::asn1::Asn1Time::from_unix(now.as_secs()).unwrap())
                .unwrap();
            b.set_not_after(
                &openssl::asn1::Asn1Time::from_unix(now.plus_secs(86_400).as_secs()).unwrap(),
            )
            .unwrap();
            b.sign(key, openssl::hash::MessageDigest::sha256()).unwrap();
            b.build().to_pem().unwrap()
        };
        let key = PKey::from_rsa(Rsa::generate(2048).unwrap()).unwrap();
        let other = PKey::from_rsa(Rsa::generate(2048).unwrap()).unwrap();
        Keys {
            cert_pem: cert(&key),
            other_cert_pem: cert(&other),
            key,
        }
    })
}

/// `xmlsec1 --encrypt` of the Assertion inside `<saml:EncryptedAssertion>`, with a
/// template naming the algorithms (the EncryptedKey inside ds:KeyInfo).
fn xmlsec_encrypt(data_alg: &str, key_alg: &str, session: &str, cert_pem: &[u8]) -> String {
    let dir = tempfile::tempdir().unwrap();
    let doc = response(&format!(
        "<saml:EncryptedAssertion>{ASSERTION}</saml:EncryptedAssertion>"
    ));
    let template = format!(
        r#"<xenc:EncryptedData xmlns:xenc="http://www.w3.org/2001/04/xmlenc#" xmlns:ds="http://www.w3.org/2000/09/xmldsig#" Id="ED1" Type="http://www.w3.org/2001/04/xmlenc#Element"><xenc:EncryptionMethod Algorithm="{data_alg}"/><ds:KeyInfo><xenc:EncryptedKey Id="EK1"><xenc:EncryptionMethod Algorithm="{key_alg}"/><xenc:CipherData><xenc:CipherValue/></xenc:CipherData></xenc:EncryptedKey></ds:KeyInfo><xenc:CipherData><xenc:CipherValue/></xenc:CipherData></xenc:EncryptedData>"#
    );
    let path = |n: &str| dir.path().join(n);
    std::fs::write(path("doc.xml"), doc).unwrap();
    std::fs::write(path("template.xml"), template).unwrap();
    std::fs::write(path("cert.pem"), cert_pem).unwrap();
    let out = Command::new("xmlsec1")
        .args(["--encrypt", "--pubkey-cert-pem"])
        .arg(path("cert.pem"))
        .args(["--session-key", session, "--xml-data"])
        .arg(path("doc.xml"))
        .args([
            "--node-xpath",
            "/*[local-name()='Response']/*[local-name()='EncryptedAssertion']/*[local-name()='Assertion']",
        ])
        .arg(path("template.xml"))
        .output()
        .expect("the xmlsec1 CLI (scripts/system-deps.sh installs it)");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

fn me(allow_rsa1_5: bool) -> Recipient<'static> {
    Recipient {
        key: &keys().key,
        entity_id: "https://hub.example/saml/sp/x",
        allow_rsa1_5,
    }
}

/// decrypt + splice, as `open` does after its signature step.
fn decrypt(xml: &str, me: &Recipient<'_>) -> Result<String, FederationError> {
    crate::federation::xml_guard::check(xml, false)?;
    let tree = Tree::parse(xml).unwrap();
    let enc = tree.child(Tree::ROOT, SAML, "EncryptedAssertion").unwrap();
    let plaintext = decrypt_assertion(&tree, enc, me)?;
    splice(xml, &tree, enc, plaintext, false)
}

fn code<T>(r: Result<T, FederationError>) -> &'static str {
    r.err().map(|e| e.code()).unwrap_or("ok")
}

#[test]
fn xmlsec1_cbc_and_gcm_with_oaep_decrypt_into_place() {
    for (alg, session) in [
        (AES128_CBC, "aes-128"),
        (AES256_CBC, "aes-256"),
        (AES256_GCM, "aes-256"),
    ] {
        let xml = xmlsec_encrypt(alg, RSA_OAEP_MGF1P, session, &keys().cert_pem);
        assert!(!xml.contains("ana</saml:NameID>"));
        let pre = preread(&xml).unwrap().unwrap();
        assert_eq!(pre.in_response_to.as_deref(), Some("_req1"));
        assert!(pre.status.unwrap().ends_with(":Success"));
        assert!(!pre.response_signed);
        let out = decrypt(&xml, &me(false)).unwrap();
        assert!(out.contains(ASSERTION), "{alg}: {out}");
        assert!(!out.contains("EncryptedAssertion"));
        // The result is a Response samael reads, with the assertion in place.
        let r: samael::schema::Response = out.parse().unwrap();
        assert_eq!(r.assertion.unwrap().id, "_a1");
    }
}

#[test]
fn the_key_beside_the_data_by_retrieval_method_or_alone() {
    let xml = xmlsec_encrypt(AES128_CBC, RSA_OAEP_MGF1P, "aes-128", &keys().cert_pem);
    let tree = Tree::parse(&xml).unwrap();
    let data = tree
        .children(tree.child(Tree::ROOT, SAML, "EncryptedAssertion").unwrap())
        .find(|(_, e)| e.name == "EncryptedData")
        .unwrap()
        .0;
    let key_info = tree.get(tree.child(data, DS, "KeyInfo").unwrap()).unwrap();
    let ek = tree
        .get(
            tree.child(
                tree.child(data, DS, "KeyInfo").unwrap(),
                XENC,
                "EncryptedKey",
            )
            .unwrap(),
        )
        .unwrap();
    // Moved out of the EncryptedData, it needs its own xenc declaration.
    let ek_xml = xml[ek.start..ek.end].replacen(
        "<xenc:EncryptedKey ",
        "<xenc:EncryptedKey xmlns:xenc=\"http://www.w3.org/2001/04/xmlenc#\" ",
        1,
    );
    let ki_xml = &xml[key_info.start..key_info.end];
    let retrieval = r##"<ds:KeyInfo xmlns:ds="http://www.w3.org/2000/09/xmldsig#"><ds:RetrievalMethod URI="#EK1" Type="http://www.w3.org/2001/04/xmlenc#EncryptedKey"/></ds:KeyInfo>"##;
    let beside = xml.replace(ki_xml, retrieval).replace(
        "</saml:EncryptedAssertion>",
        &format!("{ek_xml}</saml:EncryptedAssertion>"),
    );
    assert!(decrypt(&beside, &me(false)).unwrap().contains(ASSERTION));
    let alone = xml.replace(ki_xml, "").replace(
        "</saml:EncryptedAssertion>",
        &format!("{ek_xml}</saml:EncryptedAssertion>"),
    );
    assert!(decrypt(&alone, &me(false)).unwrap().contains(ASSERTION));
    // For another recipient only: not ours to try.
    let elsewhere = alone.replace(
        "Id=\"EK1\"",
        "Id=\"EK1\" Recipient=\"https://other.example\"",
    );
    assert_eq!(code(decrypt(&elsewhere, &me(false))), "decryption");
    // A RetrievalMethod to outside the document is refused before anything runs.
    let outside = beside.replace("URI=\"#EK1\"", "URI=\"http://10.0.0.1/key\"");
    assert_eq!(code(decrypt(&outside, &me(false))), "decryption");
    let dangling = beside.replace("URI=\"#EK1\"", "URI=\"#EK2\"");
    assert_eq!(code(decrypt(&dangling, &me(false))), "decryption");
}

#[test]
fn triple_des_and_rsa_1_5_are_refused_unless_allowed() {
    let des = xmlsec_encrypt(TRIPLEDES_CBC, RSA_OAEP_MGF1P, "des-192", &keys().cert_pem);
    assert_eq!(code(decrypt(&des, &me(true))), "tripledes");
    let rsa15 = xmlsec_encrypt(AES128_CBC, RSA_1_5, "aes-128", &keys().cert_pem);
    assert_eq!(code(decrypt(&rsa15, &me(false))), "rsa1_5");
    assert!(decrypt(&rsa15, &me(true)).unwrap().contains(ASSERTION));
    // Allowed, but for another key: implicit rejection, then the same failure as any.
    let foreign = xmlsec_encrypt(AES128_CBC, RSA_1_5, "aes-128", &keys().other_cert_pem);
    assert_eq!(code(decrypt(&foreign, &me(true))), "decryption");
}

#[test]
fn wrong_key_truncated_and_tampered_ciphertexts_fail_alike() {
    let xml = xmlsec_encrypt(AES128_CBC, RSA_OAEP_MGF1P, "aes-128", &keys().cert_pem);
    let foreign = xmlsec_encrypt(
        AES128_CBC,
        RSA_OAEP_MGF1P,
        "aes-128",
        &keys().other_cert_pem,
    );
    assert_eq!(code(decrypt(&foreign, &me(false))), "decryption");
    let tree = Tree::parse(&xml).unwrap();
    // The data's CipherValue is the second in document order (the key's is inside KeyInfo).
    let value = (0..100)
        .filter_map(|i| tree.get(i))
        .filter(|e| e.name == "CipherValue")
        .nth(1)
        .unwrap();
    let b64 = value.text.trim().to_string();
    let truncated = xml.replace(&b64, &b64[..b64.len() - 24]);
    assert_eq!(code(decrypt(&truncated, &me(false))), "decryption");
    for at in [10, b64.len() - 30, b64.len() - 3] {
        let c = if &b64[at..at + 1] == "A" { "B" } else { "A" };
        let tampered = xml.replace(&b64, &format!("{}{c}{}", &b64[..at], &b64[at + 1..]));
        assert_eq!(code(decrypt(&tampered, &me(false))), "decryption", "{at}");
    }
    let not_base64 = xml.replace(&b64, "!!!!");
    assert_eq!(code(decrypt(&not_base64, &me(false))), "decryption");
}

#[test]
fn a_plaintext_must_be_one_assertion_in_its_place() {
    let xml = xmlsec_encrypt(AES128_CBC, RSA_OAEP_MGF1P, "aes-128", &keys().cert_pem);
    let tree = Tree::parse(&xml).unwrap();
    let enc = tree.child(Tree::ROOT, SAML, "EncryptedAssertion").unwrap();
    let put = |p: &str| code(splice(&xml, &tree, enc, p.as_bytes().to_vec(), false));
    assert_eq!(put(ASSERTION), "ok");
    assert_eq!(put(&format!("<?xml version=\"1.0\"?>\n{ASSERTION}")), "ok");
    for bad in [
        format!("{ASSERTION}{ASSERTION}"),
        format!("{ASSERTION}</samlp:Response><samlp:Response>"),
        format!("<!DOCTYPE x [<!ENTITY a \"b\">]>{ASSERTION}"),
        "<saml:Other/>".to_string(),
        format!("text{ASSERTION}"),
        ASSERTION.replace("</saml:Assertion>", ""),
        format!("<saml:Assertion><saml:Advice>{ASSERTION}</saml:Advice></saml:Assertion>"),
        "\u{0}\u{1}garbage".to_string(),
    ] {
        assert_eq!(put(&bad), "decryption", "{bad}");
    }
    assert_eq!(
        code(splice(&xml, &tree, enc, vec![0xff, 0xfe, b'<'], false)),
        "decryption"
    );
}

#[test]
fn preread_sees_a_response_signature_and_ignores_plain_responses() {
    let signed = response(
        "<ds:Signature xmlns:ds=\"http://www.w3.org/2000/09/xmldsig#\"/><saml:EncryptedAssertion/>",
    );
    assert!(preread(&signed).unwrap().unwrap().response_signed);
    assert!(preread(&response(ASSERTION)).unwrap().is_none());
    assert_eq!(
        code(preread("<x:Response xmlns:x=\"urn:x\"/>")),
        "malformed"
    );
}
