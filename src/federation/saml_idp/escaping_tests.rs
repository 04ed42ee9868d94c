//! Issue 15, "XML written safely": markup in every value that reaches the hub's SAML
//! XML stays a value. Each field gets its own copy of `HOSTILE` (so a value landing
//! in the wrong place shows), the signed Response is built as `answer` builds it, and
//! then (a) it parses, (b) every value reads back exactly, (c) it has the elements of
//! a Response with harmless values and not one more, and no comment, CDATA section,
//! processing instruction or DTD, and (d) both signatures verify with samael and with
//! the `xmlsec1` CLI (Debian's, installed by scripts/system-deps.sh), and stop
//! verifying when a value is changed. The same for error Responses, the IdP
//! metadata, the SP metadata and AuthnRequests of `saml_sp`.
//!
//! Through the real binary, with person fields from the directory, an app whose
//! entity id, ACS URL, attribute names and RelayState carry the same markup, and
//! python3-saml (strict) reading the Response:
//! `integration-tests/tests/saml_idp.rs`, `markup_in_every_value_reaches_python3_saml_as_text`.

use std::process::Command;
use std::sync::OnceLock;

use quick_xml::events::Event;
use quick_xml::Reader;
use samael::crypto::{CertificateDer, Crypto, CryptoProvider, ReduceMode};

use super::request::{NAMEID_EMAIL, NAMEID_PERSISTENT};
use super::response::{self, Assertion, Attribute, Failure};
use crate::federation::credentials::SpCredentials;
use crate::federation::saml_sp;
use crate::federation::xml_tree::{Tree, DS, SAML, SAMLP};

/// What a value could use to break out of its attribute or element: both quotes, a
/// closing tag and a new element, an entity, the end of a CDATA section, a comment, a
/// processing instruction and a CDATA section. Non-ASCII too (it must stay UTF-8).
const HOSTILE: &str =
    r#"<"'&amp;]]></saml:NameID><evil a="1"/><!-- x --><?pi x?><![CDATA[y]]>&lt;Zoë 李"#;

/// Each field's own hostile value.
fn v(field: &str) -> String {
    format!("{field}{HOSTILE}")
}

fn creds() -> &'static SpCredentials {
    static CREDS: OnceLock<SpCredentials> = OnceLock::new();
    CREDS.get_or_init(|| SpCredentials::ephemeral("https://hub.example").unwrap())
}

/// A Response to the app with every field from `value`.
fn assertion(value: &dyn Fn(&str) -> String, format: &str) -> Assertion {
    Assertion {
        idp_entity_id: value("https://hub.example/saml/idp/metadata"),
        sp_entity_id: value("https://app.example/sp"),
        acs_url: value("https://app.example/acs?q="),
        in_response_to: Some(value("_request")),
        now_ms: 1_800_000_000_000,
        lifetime_ms: 300_000,
        name_id: value("name-id"),
        name_id_format: format.to_string(),
        authn_instant_ms: 1_799_999_000_000,
        session_index: value("session"),
        // A &'static str in the code; made hostile here all the same.
        authn_context: value("urn:context").leak(),
        attributes: vec![
            Attribute {
                name: value("mail"),
                values: vec![value("first-value"), value("second-value")],
            },
            Attribute {
                name: value("urn:oid:2.5.4.42"),
                values: vec![value("given-name")],
            },
        ],
    }
}

/// Every element (namespace, local name) in document order, after checking that the
/// document has nothing but elements, attributes and text: no comment, CDATA section,
/// processing instruction or DTD, at most one XML declaration.
fn census(xml: &str) -> Vec<(String, String)> {
    let tree = Tree::parse(xml).unwrap_or_else(|| panic!("not well-formed: {xml}"));
    let mut reader = Reader::from_str(xml);
    reader.config_mut().check_end_names = true;
    let mut first = true;
    loop {
        match reader.read_event() {
            Ok(Event::Eof) => break,
            Ok(Event::Start(_) | Event::Empty(_) | Event::End(_) | Event::Text(_)) => {}
            Ok(Event::Decl(_)) if first => {}
            Ok(other) => panic!("{other:?} in {xml}"),
            Err(e) => panic!("{e}: {xml}"),
        }
        first = false;
    }
    let mut out = Vec::new();
    let mut stack = vec![Tree::ROOT];
    while let Some(i) = stack.pop() {
        let e = tree.get(i).unwrap();
        out.push((e.ns.clone(), e.name.clone()));
        let children: Vec<usize> = tree.children(i).map(|(c, _)| c).collect();
        stack.extend(children.into_iter().rev());
    }
    out
}

/// The element at this path of (namespace, local name) steps below `from`.
fn at<'t>(
    tree: &'t Tree,
    from: usize,
    path: &[(&str, &str)],
) -> (usize, &'t crate::federation::xml_tree::Element) {
    let mut i = from;
    for (ns, name) in path {
        i = tree
            .child(i, ns, name)
            .unwrap_or_else(|| panic!("no {name} below element {i}"));
    }
    (i, tree.get(i).unwrap())
}

fn cert_pem(dir: &std::path::Path) -> std::path::PathBuf {
    let pem = openssl::x509::X509::from_der(&creds().cert_der)
        .unwrap()
        .to_pem()
        .unwrap();
    let path = dir.join("hub.pem");
    std::fs::write(&path, pem).unwrap();
    path
}

/// `xmlsec1 --verify` of the signature at `xpath` with the hub's certificate. The CLI
/// must run: a missing xmlsec1 fails the test, it never passes unchecked.
fn xmlsec1_verify(xml: &str, xpath: &str) -> Result<(), String> {
    let dir = tempfile::tempdir().unwrap();
    let doc = dir.path().join("doc.xml");
    std::fs::write(&doc, xml).unwrap();
    let out = Command::new("xmlsec1")
        .arg("--verify")
        .arg("--pubkey-cert-pem")
        .arg(cert_pem(dir.path()))
        .args([
            "--id-attr:ID",
            "urn:oasis:names:tc:SAML:2.0:protocol:Response",
        ])
        .args([
            "--id-attr:ID",
            "urn:oasis:names:tc:SAML:2.0:assertion:Assertion",
        ])
        .args(["--node-xpath", xpath])
        .arg(&doc)
        .output()
        .unwrap_or_else(|e| {
            panic!("this test needs the xmlsec1 CLI (bash scripts/system-deps.sh installs it): {e}")
        });
    let stderr = String::from_utf8_lossy(&out.stderr).to_string();
    // xmlsec1 reports a verified signature as a line "OK" and every reference good.
    let ok =
        stderr.lines().any(|l| l == "OK") && stderr.contains("SignedInfo References (ok/all): 1/1");
    if out.status.success() && ok {
        Ok(())
    } else {
        Err(stderr)
    }
}

const RESPONSE_SIGNATURE: &str = "/*[local-name()='Response']/*[local-name()='Signature']";
const ASSERTION_SIGNATURE: &str =
    "/*[local-name()='Response']/*[local-name()='Assertion']/*[local-name()='Signature']";

fn samael_verify(xml: &str) -> Result<String, samael::crypto::CryptoError> {
    Crypto::reduce_xml_to_signed(
        xml,
        &[CertificateDer::from(creds().cert_der.clone())],
        ReduceMode::ValidateAndMark,
    )
}

#[test]
fn every_value_in_a_signed_response_stays_a_value() {
    for format in [NAMEID_PERSISTENT, NAMEID_EMAIL] {
        let a = assertion(&v, format);
        let xml = response::success(&a, creds()).unwrap();

        // (a) and (c): well-formed, and the same elements as with harmless values.
        let plain = response::success(&assertion(&|f| f.to_string(), format), creds()).unwrap();
        assert_eq!(census(&xml), census(&plain), "{xml}");
        assert!(!xml.contains("<evil") && !xml.contains("<!--"), "{xml}");

        // (b) every value, where it belongs.
        let t = Tree::parse(&xml).unwrap();
        let root = t.root().unwrap();
        assert!(root.is(SAMLP, "Response"));
        assert_eq!(root.attr("Destination"), Some(a.acs_url.as_str()));
        assert_eq!(root.attr("InResponseTo"), a.in_response_to.as_deref());
        assert_eq!(
            at(&t, Tree::ROOT, &[(SAML, "Issuer")]).1.text,
            a.idp_entity_id
        );
        let (asr, _) = at(&t, Tree::ROOT, &[(SAML, "Assertion")]);
        assert_eq!(at(&t, asr, &[(SAML, "Issuer")]).1.text, a.idp_entity_id);
        let (_, name_id) = at(&t, asr, &[(SAML, "Subject"), (SAML, "NameID")]);
        assert_eq!(name_id.text, a.name_id);
        assert_eq!(name_id.attr("Format"), Some(format));
        let qualifiers = (
            name_id.attr("NameQualifier"),
            name_id.attr("SPNameQualifier"),
        );
        if format == NAMEID_PERSISTENT {
            assert_eq!(
                qualifiers,
                (
                    Some(a.idp_entity_id.as_str()),
                    Some(a.sp_entity_id.as_str())
                )
            );
        } else {
            assert_eq!(qualifiers, (None, None));
        }
        let (_, data) = at(
            &t,
            asr,
            &[
                (SAML, "Subject"),
                (SAML, "SubjectConfirmation"),
                (SAML, "SubjectConfirmationData"),
            ],
        );
        assert_eq!(data.attr("Recipient"), Some(a.acs_url.as_str()));
        assert_eq!(data.attr("InResponseTo"), a.in_response_to.as_deref());
        let (_, audience) = at(
            &t,
            asr,
            &[
                (SAML, "Conditions"),
                (SAML, "AudienceRestriction"),
                (SAML, "Audience"),
            ],
        );
        assert_eq!(audience.text, a.sp_entity_id);
        let (statement, s) = at(&t, asr, &[(SAML, "AuthnStatement")]);
        assert_eq!(s.attr("SessionIndex"), Some(a.session_index.as_str()));
        let (_, ctx) = at(
            &t,
            statement,
            &[(SAML, "AuthnContext"), (SAML, "AuthnContextClassRef")],
        );
        assert_eq!(ctx.text, a.authn_context);
        let (attrs, _) = at(&t, asr, &[(SAML, "AttributeStatement")]);
        let released: Vec<(String, Vec<String>)> = t
            .children(attrs)
            .map(|(i, e)| {
                assert!(e.is(SAML, "Attribute"));
                let values = t.children(i).map(|(_, v)| v.text.clone()).collect();
                (e.attr("Name").unwrap_or_default().to_string(), values)
            })
            .collect();
        let expected: Vec<(String, Vec<String>)> = a
            .attributes
            .iter()
            .map(|x| (x.name.clone(), x.values.clone()))
            .collect();
        assert_eq!(released, expected);

        // (d) both signatures, by samael and by xmlsec1; a changed value breaks them.
        samael_verify(&xml).unwrap();
        xmlsec1_verify(&xml, RESPONSE_SIGNATURE).unwrap();
        xmlsec1_verify(&xml, ASSERTION_SIGNATURE).unwrap();
        let forged = xml.replacen("second-value", "second-valuf", 1);
        assert_ne!(forged, xml);
        assert!(samael_verify(&forged).is_err());
        assert!(xmlsec1_verify(&forged, ASSERTION_SIGNATURE).is_err());
        assert!(xmlsec1_verify(&forged, RESPONSE_SIGNATURE).is_err());
        // The hub's own shape rules for upstream Responses hold for this one too.
        crate::federation::xml_guard::check(&xml, false).unwrap();
    }
}

#[test]
fn every_value_in_a_signed_error_response_stays_a_value() {
    let failure = |value: &dyn Fn(&str) -> String| {
        let (issuer, acs, irt, top, second, message) = (
            value("https://hub.example/saml/idp/metadata"),
            value("https://app.example/acs?q="),
            value("_request"),
            value("urn:oasis:names:tc:SAML:2.0:status:Responder"),
            value("NoPassive"),
            value("the message "),
        );
        let xml = response::failure(
            &Failure {
                idp_entity_id: &issuer,
                acs_url: &acs,
                in_response_to: Some(&irt),
                now_ms: 1_800_000_000_000,
                top: &top,
                second: &second,
                message: &message,
            },
            creds(),
        )
        .unwrap();
        (xml, [issuer, acs, irt, top, second, message])
    };
    let (xml, [issuer, acs, irt, top, second, message]) = failure(&v);
    let (plain, _) = failure(&|f| f.to_string());
    assert_eq!(census(&xml), census(&plain), "{xml}");
    let t = Tree::parse(&xml).unwrap();
    let root = t.root().unwrap();
    assert_eq!(root.attr("Destination"), Some(acs.as_str()));
    assert_eq!(root.attr("InResponseTo"), Some(irt.as_str()));
    assert_eq!(at(&t, Tree::ROOT, &[(SAML, "Issuer")]).1.text, issuer);
    let (status, _) = at(&t, Tree::ROOT, &[(SAMLP, "Status")]);
    let (code, c) = at(&t, status, &[(SAMLP, "StatusCode")]);
    assert_eq!(c.attr("Value"), Some(top.as_str()));
    let inner = format!("urn:oasis:names:tc:SAML:2.0:status:{second}");
    assert_eq!(
        at(&t, code, &[(SAMLP, "StatusCode")]).1.attr("Value"),
        Some(inner.as_str())
    );
    assert_eq!(at(&t, status, &[(SAMLP, "StatusMessage")]).1.text, message);
    samael_verify(&xml).unwrap();
    xmlsec1_verify(&xml, RESPONSE_SIGNATURE).unwrap();
    let forged = xml.replacen("the message", "the massage", 1);
    assert!(xmlsec1_verify(&forged, RESPONSE_SIGNATURE).is_err());
}

#[test]
fn whitespace_survives_and_characters_xml_cannot_carry_are_refused() {
    // Attribute-value normalisation (XML 1.0 §3.3.3) would turn TAB, LF and CR into
    // spaces, end-of-line handling (§2.11) CR into LF: written as references, they
    // come back as they were, through xmlsec's re-serialisation too.
    let ws = |f: &str| format!("{f}\ta\nb\r\nc\rd  e");
    let a = assertion(&ws, NAMEID_PERSISTENT);
    let xml = response::success(&a, creds()).unwrap();
    let t = Tree::parse(&xml).unwrap();
    assert_eq!(
        t.root().unwrap().attr("Destination"),
        Some(a.acs_url.as_str())
    );
    let (asr, _) = at(&t, Tree::ROOT, &[(SAML, "Assertion")]);
    let (_, name_id) = at(&t, asr, &[(SAML, "Subject"), (SAML, "NameID")]);
    assert_eq!(name_id.text, a.name_id);
    assert_eq!(
        name_id.attr("SPNameQualifier"),
        Some(a.sp_entity_id.as_str())
    );
    samael_verify(&xml).unwrap();
    xmlsec1_verify(&xml, ASSERTION_SIGNATURE).unwrap();
    xmlsec1_verify(&xml, RESPONSE_SIGNATURE).unwrap();

    // No reference can stand for these (§2.2): an error, never a Response.
    for bad in ["\u{0}", "\u{7}", "\u{1b}[31m", "\u{FFFE}"] {
        let mut a = assertion(&|f| f.to_string(), NAMEID_PERSISTENT);
        a.attributes[0].values[1] = format!("secret-value{bad}");
        let e = response::success(&a, creds()).unwrap_err().to_string();
        assert!(e.contains("XML 1.0 cannot carry"), "{e}");
        assert!(!e.contains("secret-value"), "no value in: {e}");
    }
}

#[test]
fn metadata_and_authn_requests_keep_their_values() {
    let (entity, sso) = (
        v("https://hub.example/idp"),
        v("https://hub.example/sso?q="),
    );
    let xml = response::idp_metadata(&entity, &sso, creds(), 1_800_000_000_000).unwrap();
    assert_eq!(
        census(&xml),
        census(&response::idp_metadata("e", "s", creds(), 1_800_000_000_000).unwrap())
    );
    let t = Tree::parse(&xml).unwrap();
    assert_eq!(t.root().unwrap().attr("entityID"), Some(entity.as_str()));
    let (idp, _) = at(&t, Tree::ROOT, &[(MD, "IDPSSODescriptor")]);
    let locations: Vec<_> = t
        .children(idp)
        .filter(|(_, e)| e.is(MD, "SingleSignOnService"))
        .map(|(_, e)| e.attr("Location"))
        .collect();
    assert_eq!(locations, vec![Some(sso.as_str()); 2]);
    // python3-saml and Shibboleth read the certificate from here.
    let (_, cert) = at(
        &t,
        idp,
        &[
            (MD, "KeyDescriptor"),
            (DS, "KeyInfo"),
            (DS, "X509Data"),
            (DS, "X509Certificate"),
        ],
    );
    assert_eq!(cert.text, saml_sp::cert_base64(creds()));

    let (entity, acs, format) = (
        v("https://hub.example/sp"),
        v("https://hub.example/acs?q="),
        v("urn:format"),
    );
    let md = |entity: &str, acs: &str, format: &str| {
        saml_sp::sp_metadata(
            &saml_sp::SpMetadata {
                entity_id: entity,
                acs_url: acs,
                sign_requests: true,
                name_id_format: Some(format),
                valid_until_ms: 1_800_000_000_000,
            },
            creds(),
        )
        .unwrap()
    };
    let xml = md(&entity, &acs, &format);
    assert_eq!(census(&xml), census(&md("e", "a", "f")));
    let t = Tree::parse(&xml).unwrap();
    assert_eq!(t.root().unwrap().attr("entityID"), Some(entity.as_str()));
    let (sp, _) = at(&t, Tree::ROOT, &[(MD, "SPSSODescriptor")]);
    assert_eq!(at(&t, sp, &[(MD, "NameIDFormat")]).1.text, format);
    assert_eq!(
        at(&t, sp, &[(MD, "AssertionConsumerService")])
            .1
            .attr("Location"),
        Some(acs.as_str())
    );

    let (id, issuer, sso) = (
        v("_id"),
        v("https://hub.example/sp"),
        v("https://idp.example/sso?q="),
    );
    let request = |id: &str, issuer: &str, acs: &str, sso: &str, format: &str| {
        saml_sp::AuthnRequest {
            id,
            entity_id: issuer,
            acs_url: acs,
            sso_url: sso,
            now_ms: 1_800_000_000_000,
            force_authn: true,
            name_id_format: Some(format),
        }
        .to_xml()
        .unwrap()
    };
    let xml = request(&id, &issuer, &acs, &sso, &format);
    assert_eq!(census(&xml), census(&request("i", "e", "a", "s", "f")));
    let t = Tree::parse(&xml).unwrap();
    let root = t.root().unwrap();
    assert_eq!(root.attr("ID"), Some(id.as_str()));
    assert_eq!(root.attr("Destination"), Some(sso.as_str()));
    assert_eq!(root.attr("AssertionConsumerServiceURL"), Some(acs.as_str()));
    assert_eq!(at(&t, Tree::ROOT, &[(SAML, "Issuer")]).1.text, issuer);
    assert_eq!(
        at(&t, Tree::ROOT, &[(SAMLP, "NameIDPolicy")])
            .1
            .attr("Format"),
        Some(format.as_str())
    );
}

const MD: &str = "urn:oasis:names:tc:SAML:2.0:metadata";
