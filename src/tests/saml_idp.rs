//! The hub as SAML IdP, in-process on both databases: an SP-initiated sign-in
//! (Redirect binding) through the shared sign-in page ends in a signed Response bound
//! to the request, recorded in the audit log; a portal tile answers unsolicited; an
//! inactive account gets a RequestDenied status. (A real SP, python3-saml in strict
//! mode, and Chromium: integration-tests/tests/saml_idp.rs.)

use axum::http::StatusCode;
use base64::Engine as _;
use flate2::write::DeflateEncoder;
use std::io::Write as _;

use super::browser::PASSWORD;
use super::*;

pub(super) const SP_METADATA: &str = r#"<md:EntityDescriptor xmlns:md="urn:oasis:names:tc:SAML:2.0:metadata" entityID="https://app.test/sp">
<md:SPSSODescriptor protocolSupportEnumeration="urn:oasis:names:tc:SAML:2.0:protocol" AuthnRequestsSigned="false">
<md:AssertionConsumerService Binding="urn:oasis:names:tc:SAML:2.0:bindings:HTTP-POST" Location="https://app.test/acs" index="1"/>
</md:SPSSODescriptor></md:EntityDescriptor>"#;

/// Removes the test's folder when dropped.
pub(super) struct Folder(std::path::PathBuf);

impl Drop for Folder {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

pub(super) async fn app_with_sp(postgres: bool) -> (TestApp, Folder) {
    let dir = Folder(std::env::temp_dir().join(format!("hms-saml-{}", uuid::Uuid::new_v4())));
    std::fs::create_dir_all(&dir.0).unwrap();
    std::fs::write(dir.0.join("sp.xml"), SP_METADATA).unwrap();
    std::fs::write(
        dir.0.join("sp2.xml"),
        SP_METADATA.replace("app.test", "app2.test"),
    )
    .unwrap();
    let config = dir.0.join("hms-ach.toml");
    std::fs::write(
        &config,
        "[[saml_apps.service_providers]]\nid = \"portal-app\"\nentity_id = \"https://app.test/sp\"\ndisplay_name = \"Portal app\"\nmetadata_file = \"sp.xml\"\nidp_initiated = true\nattributes = { mail = \"email\", Role = \"roles\" }\n[[saml_apps.service_providers]]\nid = \"by-address\"\nentity_id = \"https://app2.test/sp\"\ndisplay_name = \"By address\"\nmetadata_file = \"sp2.xml\"\nname_id_format = \"email\"\n",
    )
    .unwrap();
    let t = TestApp::with_config_file(postgres, &config).await;
    (t, dir)
}

pub(super) fn redirect_request(id: &str, now_ms: i64) -> String {
    redirect_request_to("app.test", id, now_ms)
}

fn redirect_request_to(host: &str, id: &str, now_ms: i64) -> String {
    let issued = time::OffsetDateTime::from_unix_timestamp(now_ms / 1000)
        .unwrap()
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap();
    let xml = format!(
        r#"<samlp:AuthnRequest xmlns:samlp="urn:oasis:names:tc:SAML:2.0:protocol" xmlns:saml="urn:oasis:names:tc:SAML:2.0:assertion" ID="{id}" Version="2.0" IssueInstant="{issued}" Destination="http://hub.test/saml/idp/sso" AssertionConsumerServiceURL="https://{host}/acs" ProtocolBinding="urn:oasis:names:tc:SAML:2.0:bindings:HTTP-POST"><saml:Issuer>https://{host}/sp</saml:Issuer></samlp:AuthnRequest>"#
    );
    let mut e = DeflateEncoder::new(Vec::new(), flate2::Compression::default());
    e.write_all(xml.as_bytes()).unwrap();
    let b64 = base64::engine::general_purpose::STANDARD.encode(e.finish().unwrap());
    let enc: String = url::form_urlencoded::byte_serialize(b64.as_bytes()).collect();
    format!("/saml/idp/sso?SAMLRequest={enc}&RelayState=r1")
}

pub(super) fn response_xml(page: &super::browser::Page) -> String {
    assert_eq!(page.status, StatusCode::OK, "{}", page.body);
    let b64 = page.hidden("SAMLResponse");
    String::from_utf8(
        base64::engine::general_purpose::STANDARD
            .decode(b64)
            .unwrap(),
    )
    .unwrap()
}

async fn sign_in_to_app(postgres: bool) {
    let (t, _dir) = app_with_sp(postgres).await;
    let person = t.account("sam.saml").await;
    let mut b = t.agent();
    let to_login = b.get(&redirect_request("_r1abc", t.clock.now_ms())).await;
    assert_eq!(to_login.status, StatusCode::SEE_OTHER, "{}", to_login.body);
    let login = b.follow(to_login).await;
    assert!(login.body.contains("Portal app"), "the page names the app");
    let page = b.sign_in(&login, "sam.saml", PASSWORD).await;
    let xml = response_xml(&page);
    assert!(xml.contains(r#"InResponseTo="_r1abc""#), "{xml}");
    assert!(xml.contains("<saml:Audience>https://app.test/sp</saml:Audience>"));
    assert!(xml.contains(r#"Recipient="https://app.test/acs""#));
    assert!(xml.contains("sam.saml@district.example"), "mapped mail");
    assert!(
        !xml.contains(&person),
        "the persistent NameID is not the person id"
    );
    assert_eq!(page.hidden("RelayState"), "r1");
    assert!(page
        .body
        .contains(r#"action="https:&#x2f;&#x2f;app.test&#x2f;acs""#));

    // The request is used up: the same handle cannot be answered twice.
    let rows = t.audit_rows("saml.sso").await;
    assert_eq!(rows.len(), 1);
    // ... nor the same AuthnRequest sent again (a copy from history or a proxy log),
    // even to a browser that is signed in.
    let again = b.get(&redirect_request("_r1abc", t.clock.now_ms())).await;
    assert_eq!(again.status, StatusCode::BAD_REQUEST, "{}", again.body);
    assert!(again.body.contains("already used"), "{}", again.body);
    assert!(!again.body.contains("SAMLResponse"));
    assert_eq!(t.audit_rows("saml.sso").await.len(), 1);

    // A portal tile: unsolicited, no InResponseTo, the same NameID.
    let apps = b.get("/portal/apps").await;
    let csrf = apps.hidden("csrf");
    let tile = b
        .post("/saml/idp/init/portal-app", &[("csrf", &csrf)])
        .await;
    let unsolicited = response_xml(&tile);
    assert!(!unsolicited.contains("InResponseTo"), "{unsolicited}");
    let name_id = |x: &str| {
        let at = x.find("<saml:NameID").unwrap();
        let v = &x[at..];
        v[v.find('>').unwrap() + 1..v.find("</saml:NameID>").unwrap()].to_string()
    };
    assert_eq!(name_id(&xml), name_id(&unsolicited));
    assert_eq!(t.audit_rows("saml.sso").await.len(), 2);

    // An app that keys people by address: the address as NameID, but only while it
    // is this person's alone (a family address shared with another person is refused).
    let by_address = b
        .get(&redirect_request_to(
            "app2.test",
            "_r3abc",
            t.clock.now_ms(),
        ))
        .await;
    let xml = response_xml(&b.follow(by_address).await);
    assert!(
        xml.contains(">sam.saml@district.example</saml:NameID>"),
        "{xml}"
    );
    let other = t.account("sibling").await;
    sqlx::query("UPDATE people SET email = 'sam.saml@district.example' WHERE id = $1")
        .bind(&other)
        .execute(t.store().writer())
        .await
        .unwrap();
    let shared = b
        .get(&redirect_request_to(
            "app2.test",
            "_r4abc",
            t.clock.now_ms(),
        ))
        .await;
    let xml = response_xml(&b.follow(shared).await);
    assert!(xml.contains("status:InvalidNameIDPolicy"), "{xml}");
    assert!(!xml.contains("<saml:Assertion"), "{xml}");

    // An account that is no longer active: a RequestDenied status, no assertion.
    sqlx::query("UPDATE people SET status = 'inactive' WHERE id = $1")
        .bind(&person)
        .execute(t.store().writer())
        .await
        .unwrap();
    let denied = b.get(&redirect_request("_r2abc", t.clock.now_ms())).await;
    let denied = response_xml(&b.follow(denied).await);
    assert!(denied.contains("status:RequestDenied"), "{denied}");
    assert!(!denied.contains("<saml:Assertion"), "{denied}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn saml_sign_in_to_an_app_sqlite() {
    sign_in_to_app(false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn saml_sign_in_to_an_app_postgres() {
    sign_in_to_app(true).await;
}
