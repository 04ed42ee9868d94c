//! The hub as a SAML IdP, against the real binary, with OneLogin's **python3-saml**
//! (PyPI, strict mode, xmlsec underneath) as the district's downstream SAML apps:
//! `peers/saml_sp.py` serves three SPs (sp1 signs its requests and wants signed
//! messages and assertions with a persistent NameID; sp2 sends unsigned requests and
//! wants the email address as NameID; sp3 is not registered at the hub), and for the
//! escaping test a fourth whose entity id and ACS URL carry markup.
//!
//! The browser is the shared reqwest `Browser`, so each hop is visible: the app's
//! redirect with the AuthnRequest, the hub's sign-in page, and the auto-posted
//! Response, which python3-saml then checks (signatures, Destination, Recipient,
//! Audience, InResponseTo, time window) exactly as it would in production.

use base64::Engine as _;
use integration_tests::browser::{absolute, Answer, Browser};
use integration_tests::{setup_peers, workspace, Hub};
use std::path::Path;
use std::process::{Child, Command, Stdio};

const PASSWORD: &str = "riverside-demo-2026";

/// python3-saml's SPs on their own port; killed on drop.
struct Sp {
    base: String,
    child: Child,
}

impl Sp {
    /// Starts before the hub (the hub reads the SPs' metadata at start); the SPs read
    /// the hub's IdP metadata on first use. `markup`: the fourth SP of the escaping
    /// test (see `peers/saml_sp.py`).
    async fn start(hub_base: &str, markup: Option<&str>) -> Sp {
        let port = integration_tests::free_port();
        let child = Command::new(workspace().join("target/peers/venv/bin/python"))
            .arg(workspace().join("integration-tests/peers/saml_sp.py"))
            .args([port.to_string().as_str(), hub_base])
            .args(markup)
            .env("PYTHONWARNINGS", "ignore")
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start the python3-saml SPs");
        let sp = Sp {
            base: format!("http://127.0.0.1:{port}"),
            child,
        };
        for _ in 0..100 {
            if let Ok(r) = reqwest::get(format!("{}/sp1/metadata", sp.base)).await {
                if r.status() == 200 {
                    return sp;
                }
            }
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
        panic!("the python3-saml SPs did not start");
    }
}

impl Drop for Sp {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A TOML basic string.
fn toml(s: &str) -> String {
    format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\""))
}

/// The app of `saml_sp.py`'s sp4 (issue 15): entity id, attribute names and RelayState
/// carry `markup`; its attributes carry the person's directory fields.
fn markup_app(base: &str, markup: &str) -> String {
    let names = [
        ("given", "given_name"),
        ("family", "family_name"),
        ("display", "display_name"),
        ("mail", "email"),
        ("user", "username"),
    ];
    let attributes: Vec<String> = names
        .iter()
        .map(|(n, source)| format!("{} = {}", toml(&format!("{n}{markup}")), toml(source)))
        .collect();
    format!(
        "\n[[saml_apps.service_providers]]\nid = \"markup\"\nentity_id = {}\ndisplay_name = \"Markup\"\nmetadata_url = \"{base}/sp4/metadata\"\nname_id_format = \"email\"\nidp_initiated = true\ndefault_relay_state = {}\nattributes = {{ {} }}\n",
        toml(&format!("{base}/sp4/metadata?m={}", uri_markup(markup))),
        toml(&markup_relay_state(markup)),
        attributes.join(", ")
    )
}

/// The markup as sp4's entity id and ACS URL carry it (see `peers/saml_sp.py`): they
/// are xs:anyURI, which python3-saml checks against the SAML schema, and libxml2
/// refuses `[` and `]` there. (`]]>` in both is tested in-process:
/// `federation::saml_idp::escaping_tests`.)
fn uri_markup(markup: &str) -> String {
    markup.replace(['[', ']'], "")
}

fn markup_relay_state(markup: &str) -> String {
    format!("/landing?r={markup}")
}

fn write_config(dir: &Path, sp: &Sp, markup: Option<&str>) -> String {
    let path = dir.join("hms-ach.toml");
    let extra = markup.map(|m| markup_app(&sp.base, m)).unwrap_or_default();
    std::fs::write(
        &path,
        format!(
            r#"
[[saml_apps.service_providers]]
id = "gradebook"
entity_id = "{base}/sp1/metadata"
display_name = "Gradebook"
metadata_url = "{base}/sp1/metadata"
idp_initiated = true
default_relay_state = "/from-portal"
attributes = {{ mail = "email", givenName = "given_name", "urn:oid:2.5.4.4" = "family_name", eduPersonAffiliation = "affiliation", Role = "roles" }}

[[saml_apps.service_providers]]
id = "library"
entity_id = "{base}/sp2/metadata"
display_name = "Library"
metadata_url = "{base}/sp2/metadata"
name_id_format = "email"
attributes = {{ displayName = "display_name" }}
{extra}"#,
            base = sp.base
        ),
    )
    .unwrap();
    path.display().to_string()
}

/// Undoes the template's HTML escaping of attribute values.
fn unescape(v: &str) -> String {
    v.replace("&#x2f;", "/")
        .replace("&#x27;", "'")
        .replace("&quot;", "\"")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&amp;", "&")
}

/// The hub's self-posting form: (action, fields).
fn posted_form(html: &str) -> (String, Vec<(String, String)>) {
    let action = &html[html.find("action=\"").expect("a form") + 8..];
    let action = unescape(&action[..action.find('"').unwrap()]);
    let mut fields = Vec::new();
    for name in ["SAMLResponse", "RelayState"] {
        if let Some(v) = Browser::field(html, name) {
            fields.push((name.to_string(), unescape(&v)));
        }
    }
    (action, fields)
}

/// Posts the hub's form to the app the way the browser would (cross-site).
async fn deliver(b: &mut Browser, page: &Answer, query: &str) -> serde_json::Value {
    assert_eq!(page.status, 200, "{}", page.body);
    let (action, fields) = posted_form(&page.body);
    let form: Vec<(&str, &str)> = fields
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    let r = b.post_cross_site(&format!("{action}{query}"), &form).await;
    assert_eq!(r.status, 200, "{}", r.body);
    serde_json::from_str(&r.body).unwrap()
}

fn response_xml(page: &Answer) -> String {
    let (_, fields) = posted_form(&page.body);
    let b64 = &fields.iter().find(|(k, _)| k == "SAMLResponse").unwrap().1;
    String::from_utf8(
        base64::engine::general_purpose::STANDARD
            .decode(b64)
            .unwrap(),
    )
    .unwrap()
}

/// From the app's login link to the hub; returns the hub's answer to the AuthnRequest.
async fn to_hub(b: &mut Browser, sp: &Sp, path: &str) -> Answer {
    let start = b.get(&format!("{}{path}", sp.base)).await;
    assert_eq!(start.status, 302, "{}", start.body);
    b.get(start.location.as_deref().unwrap()).await
}

/// The hub's sign-in page for a pending request, then the password.
async fn password(b: &mut Browser, hub: &Hub, at_hub: &Answer, user: &str) -> Answer {
    assert_eq!(at_hub.status, 303, "{}", at_hub.body);
    let login_url = absolute(&hub.base, at_hub.location.as_deref().unwrap());
    assert!(login_url.contains("/login?request="), "{login_url}");
    let page = b.get(&login_url).await;
    let csrf = Browser::field(&page.body, "csrf").unwrap();
    let request = Browser::field(&page.body, "request").unwrap();
    let posted = b
        .post(
            &format!("{}/login", hub.base),
            &[
                ("csrf", &csrf),
                ("request", &request),
                ("username", user),
                ("password", PASSWORD),
            ],
        )
        .await;
    assert_eq!(posted.status, 303, "{}", posted.body);
    b.get(&absolute(&hub.base, posted.location.as_deref().unwrap()))
        .await
}

/// The SPs, then the hub (configured with them) on a port chosen beforehand: the SPs
/// only read the hub's metadata on first use, so they can start with its address.
async fn start(dir: &Path) -> (Sp, Hub) {
    start_with(dir, None).await
}

async fn start_with(dir: &Path, markup: Option<&str>) -> (Sp, Hub) {
    setup_peers();
    let hub_port = integration_tests::free_port();
    let sp = Sp::start(&format!("http://127.0.0.1:{hub_port}"), markup).await;
    let config = write_config(dir, &sp, markup);
    let hub = Hub::start_demo_at(dir, hub_port, &[("HMS_ACH_CONFIG", config.as_str())]).await;
    (sp, hub)
}

#[tokio::test]
async fn chromium_signs_in_to_a_saml_app_and_opens_it_from_the_portal() {
    let dir = tempfile::tempdir().unwrap();
    let (sp, hub) = start(dir.path()).await;
    let chair = Hub::demo_username(dir.path(), "department chair (approver, Science)");
    let shots = workspace().join("target/screenshots/saml-idp");
    let args = vec![
        sp.base.clone(),
        hub.base.clone(),
        chair,
        PASSWORD.to_string(),
        shots.display().to_string(),
    ];
    integration_tests::run_node("saml_browser.mjs", args, vec![]).await;
    for name in ["saml-signin.png", "portal-tiles.png"] {
        let bytes = std::fs::read(shots.join(name)).unwrap_or_else(|_| panic!("{name} missing"));
        assert_eq!(&bytes[1..4], b"PNG", "{name}");
        assert!(bytes.len() > 10_000, "{name}: {} bytes", bytes.len());
    }
    assert!(hub.stop().await);
}

#[tokio::test]
async fn python3_saml_apps_accept_the_hubs_responses_and_bad_requests_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let (sp, hub) = start(dir.path()).await;
    let chair = Hub::demo_username(dir.path(), "department chair (approver, Science)");
    let student = Hub::demo_username(dir.path(), "student");

    // The IdP metadata python3-saml is configured from.
    let md = reqwest::get(format!("{}/saml/idp/metadata", hub.base))
        .await
        .unwrap();
    assert_eq!(md.status(), 200);
    let md = md.text().await.unwrap();
    assert!(
        md.contains("HTTP-Redirect") && md.contains("HTTP-POST"),
        "{md}"
    );

    // 1. SP-initiated, signed request (Redirect binding), password sign-in, then the
    // strict SP accepts the Response: persistent NameID, mapped attributes, roles.
    let mut b = Browser::new();
    let at_hub = to_hub(&mut b, &sp, "/sp1/login").await;
    let page = password(&mut b, &hub, &at_hub, &chair).await;
    let xml = response_xml(&page);
    assert!(
        xml.contains("rsa-sha256") && xml.contains("xmlenc#sha256"),
        "{xml}"
    );
    let got = deliver(&mut b, &page, "").await;
    assert_eq!(got["authenticated"], true, "{got}");
    assert_eq!(
        got["nameid_format"],
        "urn:oasis:names:tc:SAML:2.0:nameid-format:persistent"
    );
    let persistent = got["nameid"].as_str().unwrap().to_string();
    assert!(
        persistent.len() >= 32 && !persistent.contains(&chair),
        "{persistent}"
    );
    assert_eq!(got["relay_state"], "/home");
    let attrs = &got["attributes"];
    assert!(attrs["mail"][0].as_str().unwrap().contains('@'), "{attrs}");
    assert!(attrs["urn:oid:2.5.4.4"][0].is_string(), "{attrs}");
    assert_eq!(
        attrs["Role"],
        serde_json::json!(["approver@rhs-science"]),
        "{attrs}"
    );
    let affiliation = attrs["eduPersonAffiliation"].as_array().unwrap();
    assert!(affiliation.contains(&"faculty".into()) && affiliation.contains(&"member".into()));
    // http://127.0.0.1 issuer: the password did not travel over TLS, and the
    // AuthnContext says so (the SP asked for PasswordProtectedTransport, exact).
    assert_eq!(
        got["authn_contexts"],
        serde_json::json!(["urn:oasis:names:tc:SAML:2.0:ac:classes:Password"])
    );

    // 2. Single sign-on: the session answers the next request without a page, the
    // same persistent NameID again.
    let again = to_hub(&mut b, &sp, "/sp1/login").await;
    let got = deliver(&mut b, &again, "").await;
    assert_eq!(got["nameid"], persistent.as_str(), "{got}");

    // 3. A modified Response (an attribute value changed) fails python3-saml's
    // signature check: the signatures are real.
    let again = to_hub(&mut b, &sp, "/sp1/login").await;
    let (action, fields) = posted_form(&again.body);
    let xml = response_xml(&again);
    let forged = xml.replace("approver@rhs-science", "hub-admin");
    assert_ne!(forged, xml);
    let forged = base64::engine::general_purpose::STANDARD.encode(forged);
    let relay = &fields.iter().find(|(k, _)| k == "RelayState").unwrap().1;
    let r = b
        .post_cross_site(
            &action,
            &[("SAMLResponse", forged.as_str()), ("RelayState", relay)],
        )
        .await;
    let r: serde_json::Value = serde_json::from_str(&r.body).unwrap();
    assert_eq!(r["authenticated"], false, "{r}");

    // 4. ForceAuthn: a signed-in person must sign in again.
    let forced = to_hub(&mut b, &sp, "/sp1/login?force=1").await;
    let page = password(&mut b, &hub, &forced, &chair).await;
    assert_eq!(deliver(&mut b, &page, "").await["authenticated"], true);

    // 5. RequestedAuthnContext REFEDS MFA: a password session is stepped up, not
    // answered with a context it does not have.
    let mfa = to_hub(&mut b, &sp, "/sp1/login?ctx=mfa").await;
    assert_eq!(mfa.status, 303, "{}", mfa.body);
    assert!(mfa
        .location
        .as_deref()
        .unwrap()
        .starts_with("/login/mfa/step-up?request="));

    // 5b. Exact PasswordProtectedTransport over plain http (this test's issuer): not
    // true of this sign-in, so a signed NoAuthnContext status, not a false claim.
    let ppt = to_hub(&mut b, &sp, "/sp1/login?ctx=ppt").await;
    let xml = response_xml(&ppt);
    assert!(xml.contains("status:NoAuthnContext"), "{xml}");
    assert!(!xml.contains("<saml:Assertion"), "{xml}");

    // 5c. The app asks about someone else (core §3.4.1.4): the person signs in again,
    // and when it is still not them, UnknownPrincipal. About the signed-in person: SSO.
    let other = to_hub(&mut b, &sp, "/sp1/login?subject=someone-else").await;
    let relogin = password(&mut b, &hub, &other, &chair).await;
    let xml = response_xml(&relogin);
    assert!(xml.contains("status:UnknownPrincipal"), "{xml}");
    let me = format!("/sp1/login?subject={persistent}");
    let mine = to_hub(&mut b, &sp, &me).await;
    assert_eq!(
        deliver(&mut b, &mine, "").await["nameid"],
        persistent.as_str()
    );

    // 5d. HTTP-POST binding with an enveloped XML signature (python3-saml signs it):
    // the hub sends the browser on with a GET (its session cookie is SameSite=Lax),
    // and answers. The same request modified, or wrapped in a second one, is refused.
    let posted: serde_json::Value = reqwest::get(format!("{}/sp1/post-request", sp.base))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let saml_request = posted["SAMLRequest"].as_str().unwrap();
    let sso = format!("{}/saml/idp/sso", hub.base);
    let r = b
        .post_cross_site(
            &sso,
            &[("SAMLRequest", saml_request), ("RelayState", "/posted")],
        )
        .await;
    assert_eq!(r.status, 303, "{}", r.body);
    let page = b
        .get(&absolute(&hub.base, r.location.as_deref().unwrap()))
        .await;
    let got = deliver(&mut b, &page, "").await;
    assert_eq!(got["authenticated"], true, "{got}");
    assert_eq!(got["relay_state"], "/posted");
    let signed_xml = posted["xml"].as_str().unwrap();
    let b64 = |x: &str| base64::engine::general_purpose::STANDARD.encode(x);
    let moved = signed_xml.replace("/sp1/acs", "/sp1/acs2");
    assert_ne!(moved, signed_xml);
    let r = b
        .post_cross_site(&sso, &[("SAMLRequest", &b64(&moved))])
        .await;
    assert_eq!(r.status, 400, "modified: {}", r.body);
    assert!(r.body.contains("signature"), "{}", r.body);
    let start = signed_xml.find("<samlp:AuthnRequest").unwrap();
    let wrapped = format!(
        "{}<samlp:Extensions>{}</samlp:Extensions>{}",
        &signed_xml[..start],
        &signed_xml[start..],
        ""
    );
    let r = b
        .post_cross_site(&sso, &[("SAMLRequest", &b64(&wrapped))])
        .await;
    assert_eq!(r.status, 400, "wrapped: {}", r.body);
    // The signed request as python3-saml sent it, a second time: answered once only.
    let r = b
        .post_cross_site(&sso, &[("SAMLRequest", saml_request)])
        .await;
    assert_eq!(r.status, 400, "replayed: {}", r.body);
    assert!(r.body.contains("already used"), "{}", r.body);

    // 6. IsPassive without a session: a signed NoPassive status, which python3-saml
    // reads as a failed sign-in.
    let mut fresh = Browser::new();
    let passive = to_hub(&mut fresh, &sp, "/sp1/login?passive=1").await;
    let xml = response_xml(&passive);
    assert!(xml.contains("status:NoPassive"), "{xml}");
    let got = deliver(&mut fresh, &passive, "").await;
    assert_eq!(got["authenticated"], false, "{got}");

    // 7. sp2: unsigned requests, email NameID, its own (different) identifier space.
    let mut s = Browser::new();
    let at_hub = to_hub(&mut s, &sp, "/sp2/login").await;
    let page = password(&mut s, &hub, &at_hub, &student).await;
    let got = deliver(&mut s, &page, "").await;
    assert_eq!(got["authenticated"], true, "{got}");
    assert_eq!(
        got["nameid_format"],
        "urn:oasis:names:tc:SAML:1.1:nameid-format:emailAddress"
    );
    assert!(got["nameid"].as_str().unwrap().contains('@'), "{got}");
    assert!(
        got["attributes"].get("Role").is_none(),
        "only mapped attributes: {got}"
    );

    // 8. IdP-initiated from the portal tile (a CSRF-protected POST): an unsolicited
    // Response with the configured RelayState.
    let portal = b.get(&format!("{}/portal/apps", hub.base)).await;
    assert!(
        portal.body.contains("/saml/idp/init/gradebook"),
        "{}",
        portal.body
    );
    assert!(
        !portal.body.contains("/saml/idp/init/library"),
        "no tile unless enabled"
    );
    let csrf = Browser::field(&portal.body, "csrf").unwrap();
    let no_csrf = b
        .post(&format!("{}/saml/idp/init/gradebook", hub.base), &[])
        .await;
    assert_eq!(no_csrf.status, 403);
    let tile = b
        .post(
            &format!("{}/saml/idp/init/gradebook", hub.base),
            &[("csrf", &csrf)],
        )
        .await;
    let got = deliver(&mut b, &tile, "?unsolicited=1").await;
    assert_eq!(got["authenticated"], true, "{got}");
    assert_eq!(got["relay_state"], "/from-portal");
    assert_eq!(got["nameid"], persistent.as_str());

    // Requests the hub must not answer: a page for the person, nothing to the app.
    let refused = |a: &Answer, what: &str| {
        assert_eq!(a.status, 400, "{what}: {}", a.body);
        assert!(!a.body.contains("SAMLResponse"), "{what}");
    };
    // 9. The signed request with its RelayState changed: the signature fails.
    let start = b.get(&format!("{}/sp1/login", sp.base)).await;
    let tampered = start
        .location
        .unwrap()
        .replace("RelayState=%2Fhome", "RelayState=%2Fevil");
    let a = b.get(&tampered).await;
    refused(&a, "tampered");
    assert!(a.body.contains("signature"), "{}", a.body);
    // 10. sp1's metadata says AuthnRequestsSigned: the signature stripped is refused.
    let start = b.get(&format!("{}/sp1/login", sp.base)).await;
    let loc = start.location.unwrap();
    let (path, query) = loc.split_once('?').unwrap();
    let kept: Vec<&str> = query
        .split('&')
        .filter(|p| !p.starts_with("SigAlg=") && !p.starts_with("Signature="))
        .collect();
    let unsigned = format!("{path}?{}", kept.join("&"));
    let a = b.get(&unsigned).await;
    refused(&a, "unsigned");
    assert!(a.body.contains("must sign"), "{}", a.body);
    // 11. An ACS the metadata does not list (signed by the SP itself): refused.
    let a = to_hub(
        &mut b,
        &sp,
        "/sp1/login?acs=http%3A%2F%2F127.0.0.1%3A9%2Fsteal",
    )
    .await;
    refused(&a, "acs");
    assert!(
        a.body.contains("AssertionConsumerService mismatch"),
        "{}",
        a.body
    );
    // 12. An app the hub does not know.
    let a = to_hub(&mut b, &sp, "/sp3/login").await;
    refused(&a, "unknown");
    assert!(a.body.contains("not registered"), "{}", a.body);
    // 13. Garbage.
    let a = b
        .get(&format!("{}/saml/idp/sso?SAMLRequest=%%%", hub.base))
        .await;
    refused(&a, "garbage");

    let log = std::fs::read_to_string(dir.path().join("hub.log")).unwrap();
    assert!(!log.contains(PASSWORD), "no password in the log");
    assert!(hub.stop().await);
}

/// Issue 15: what a value could use to break out of its attribute or element in the
/// hub's XML (both quotes, an entity, the end of a CDATA section, a comment, a new
/// element).
const MARKUP: &str = r#"<"'&amp;]]><!-- x --><evil a="1"/>"#;

/// `xmlsec1 --verify` (Debian's CLI, installed by scripts/system-deps.sh) of the
/// signature at `xpath`, with the certificate of the hub's IdP metadata. The CLI must
/// run: without it the test fails, it never passes unchecked.
fn xmlsec1_verify(dir: &Path, xml: &str, metadata: &str, xpath: &str) -> Result<(), String> {
    let b64 = metadata
        .split("<ds:X509Certificate>")
        .nth(1)
        .and_then(|r| r.split("</ds:X509Certificate>").next())
        .expect("a certificate in the hub's metadata");
    let lines: Vec<&str> = b64
        .as_bytes()
        .chunks(64)
        .map(|c| std::str::from_utf8(c).unwrap())
        .collect();
    let pem = format!(
        "-----BEGIN CERTIFICATE-----\n{}\n-----END CERTIFICATE-----\n",
        lines.join("\n")
    );
    std::fs::write(dir.join("hub-idp.pem"), pem).unwrap();
    std::fs::write(dir.join("response.xml"), xml).unwrap();
    let out = Command::new("xmlsec1")
        .arg("--verify")
        .arg("--pubkey-cert-pem")
        .arg(dir.join("hub-idp.pem"))
        .args([
            "--id-attr:ID",
            "urn:oasis:names:tc:SAML:2.0:protocol:Response",
        ])
        .args([
            "--id-attr:ID",
            "urn:oasis:names:tc:SAML:2.0:assertion:Assertion",
        ])
        .args(["--node-xpath", xpath])
        .arg(dir.join("response.xml"))
        .output()
        .unwrap_or_else(|e| {
            panic!("this test needs the xmlsec1 CLI (bash scripts/system-deps.sh installs it): {e}")
        });
    let stderr = String::from_utf8_lossy(&out.stderr).to_string();
    let ok =
        stderr.lines().any(|l| l == "OK") && stderr.contains("SignedInfo References (ok/all): 1/1");
    if out.status.success() && ok {
        Ok(())
    } else {
        Err(stderr)
    }
}

#[tokio::test]
async fn markup_in_every_value_reaches_python3_saml_as_text() {
    let dir = tempfile::tempdir().unwrap();
    let (sp, hub) = start_with(dir.path(), Some(MARKUP)).await;
    let chair = Hub::demo_username(dir.path(), "department chair (approver, Science)");

    // A session at the hub (through sp1, as in the test above).
    let mut b = Browser::new();
    let at_hub = to_hub(&mut b, &sp, "/sp1/login").await;
    let page = password(&mut b, &hub, &at_hub, &chair).await;
    assert_eq!(deliver(&mut b, &page, "").await["authenticated"], true);

    // The person's directory fields with markup, as a roster import could write them.
    let field = |f: &str| format!("{f}{MARKUP}");
    let (given, family, preferred, username) =
        (field("Ana"), field("Diallo"), field("Ani"), field("ana.d"));
    let email = format!("ana{MARKUP}@district.example");
    let db = sqlx::SqlitePool::connect(&integration_tests::sqlite_url(dir.path()))
        .await
        .unwrap();
    let updated = sqlx::query(
        "UPDATE people SET given_name = ?, family_name = ?, preferred_name = ?, email = ?, username = ? WHERE username = ?",
    )
    .bind(&given)
    .bind(&family)
    .bind(&preferred)
    .bind(&email)
    .bind(&username)
    .bind(&chair)
    .execute(&db)
    .await
    .unwrap()
    .rows_affected();
    assert_eq!(updated, 1);
    db.close().await;

    // The portal tile of the app whose entity id, ACS URL, attribute names and
    // RelayState carry the markup: an unsolicited Response (profiles §4.1.5).
    let portal = b.get(&format!("{}/portal/apps", hub.base)).await;
    let log = || std::fs::read_to_string(dir.path().join("hub.log")).unwrap_or_default();
    assert!(
        portal.status == 200 && portal.body.contains("/saml/idp/init/markup"),
        "{} {}\nhub.log:\n{}",
        portal.status,
        portal.body,
        log()
    );
    let csrf = Browser::field(&portal.body, "csrf").unwrap();
    let tile = b
        .post(
            &format!("{}/saml/idp/init/markup", hub.base),
            &[("csrf", &csrf)],
        )
        .await;
    assert_eq!(tile.status, 200, "{}", tile.body);
    let (action, fields) = posted_form(&tile.body);
    let acs = format!(
        "{}/sp4/acs?m={}",
        sp.base,
        uri_markup(MARKUP).replace(' ', "")
    );
    let entity_id = format!("{}/sp4/metadata?m={}", sp.base, uri_markup(MARKUP));
    assert_eq!(action, acs);
    let relay = &fields.iter().find(|(k, _)| k == "RelayState").unwrap().1;
    assert_eq!(relay, &markup_relay_state(MARKUP));
    let xml = response_xml(&tile);
    assert!(!xml.contains("<evil") && !xml.contains("<!--"), "{xml}");

    // Both signatures, by the xmlsec1 CLI with the certificate of the hub's metadata;
    // a changed value does not verify.
    let metadata = reqwest::get(format!("{}/saml/idp/metadata", hub.base))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let response_sig = "/*[local-name()='Response']/*[local-name()='Signature']";
    let assertion_sig =
        "/*[local-name()='Response']/*[local-name()='Assertion']/*[local-name()='Signature']";
    for xpath in [response_sig, assertion_sig] {
        xmlsec1_verify(dir.path(), &xml, &metadata, xpath)
            .unwrap_or_else(|e| panic!("{xpath}: {e}\n{xml}"));
    }
    let forged = xml.replacen("Diallo", "Dialla", 1);
    assert_ne!(forged, xml);
    assert!(xmlsec1_verify(dir.path(), &forged, &metadata, assertion_sig).is_err());

    // python3-saml, strict: it accepts the Response (signatures, Destination,
    // Recipient and Audience compared with its own settings, schema), and every value
    // it reads is the text that went in.
    let got = deliver(&mut b, &tile, "").await;
    assert_eq!(got["authenticated"], true, "{got}");
    assert_eq!(got["nameid"], email.as_str(), "{got}");
    assert_eq!(
        got["nameid_format"],
        "urn:oasis:names:tc:SAML:1.1:nameid-format:emailAddress"
    );
    let display = format!("{preferred} {family}");
    let attrs = &got["attributes"];
    for (name, value) in [
        ("given", &given),
        ("family", &family),
        ("display", &display),
        ("mail", &email),
        ("user", &username),
    ] {
        assert_eq!(
            attrs[format!("{name}{MARKUP}")],
            serde_json::json!([value]),
            "{name}: {attrs}"
        );
    }
    assert_eq!(attrs.as_object().unwrap().len(), 5, "{attrs}");
    assert_eq!(got["relay_state"], markup_relay_state(MARKUP).as_str());
    // python3-saml compares these by prefix and membership; lxml reads them exactly.
    assert_eq!(
        got["uris"],
        serde_json::json!({"destination": acs, "recipient": [acs], "audience": [entity_id]}),
        "{got}"
    );
    // No node was added: no comment or processing instruction, no element but the
    // Response's own, five attributes with one value each.
    assert_eq!(got["comments"], 0, "{got}");
    let tags: Vec<&str> = got["tags"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t.as_str().unwrap())
        .collect();
    assert!(
        tags.iter()
            .all(|t| t.starts_with("{urn:oasis:names:tc:SAML:2.0:")
                || t.starts_with("{http://www.w3.org/2000/09/xmldsig#}")),
        "{tags:?}"
    );
    let count = |tag: &str| tags.iter().filter(|t| **t == tag).count();
    assert_eq!(count("{urn:oasis:names:tc:SAML:2.0:assertion}Attribute"), 5);
    assert_eq!(
        count("{urn:oasis:names:tc:SAML:2.0:assertion}AttributeValue"),
        5
    );
    assert_eq!(count("{urn:oasis:names:tc:SAML:2.0:assertion}Assertion"), 1);
    assert_eq!(count("{http://www.w3.org/2000/09/xmldsig#}Signature"), 2);
    assert!(hub.stop().await);
}
