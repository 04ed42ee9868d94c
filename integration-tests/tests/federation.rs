//! Federation against the real binary, with **pysaml2** (PyPI, signing with Debian's
//! `xmlsec1`, RSA-SHA256 asked for explicitly) as the district's upstream SAML IdP:
//! `peers/saml_idp.py` runs pysaml2's `Server` over HTTP. pysaml2 also checks the
//! signature of the hub's AuthnRequests against the hub's published SP metadata.
//!
//! The browser is played by reqwest with a hand-kept cookie jar, so every hop (the
//! redirect to the IdP, the cross-site POST to the ACS that carries no cookie, the
//! same-site return that must) is visible in the test.
//!
//! Encrypted assertions: pysaml2 encrypts to the certificate our SP metadata publishes
//! for encryption (xmlsec1 with a template naming AES and RSA-OAEP), in the shapes
//! real IdPs send: a signed Response around an unsigned encrypted assertion
//! (Shibboleth's default), an assertion signed and then encrypted, AES-GCM with the
//! EncryptedKey beside the data; and the ones to refuse.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use integration_tests::browser::{absolute, url_encode, Answer, Browser};
use integration_tests::{client_json as client, setup_peers, sqlite_url, workspace, Hub};
use sha2::{Digest, Sha256};
use std::path::Path;
use std::process::{Child, Command, Stdio};

/// pysaml2's IdP on its own port; killed on drop.
struct Idp {
    base: String,
    child: Child,
}

impl Idp {
    async fn start() -> Idp {
        let port = integration_tests::free_port();
        let child = Command::new(workspace().join("target/peers/venv/bin/python"))
            .arg(workspace().join("integration-tests/peers/saml_idp.py"))
            .arg(port.to_string())
            .env("PYTHONWARNINGS", "ignore")
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start the pysaml2 IdP");
        let idp = Idp {
            base: format!("http://127.0.0.1:{port}"),
            child,
        };
        for _ in 0..100 {
            if let Ok(r) = reqwest::get(format!("{}/metadata", idp.base)).await {
                if r.status() == 200 {
                    return idp;
                }
            }
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
        panic!("the pysaml2 IdP did not start");
    }

    async fn next(&self, user: &str, mode: &str) {
        let r = reqwest::Client::new()
            .post(format!("{}/control", self.base))
            .json(&serde_json::json!({ "user": user, "mode": mode }))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
    }

    async fn last_request(&self) -> serde_json::Value {
        reqwest::get(format!("{}/last", self.base))
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    }
}

impl Drop for Idp {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn write_config(dir: &Path, idp: &Idp) -> String {
    let path = dir.join("hms-ach.toml");
    std::fs::write(
        &path,
        format!(
            r#"
[[federation.saml_idps]]
id = "riverside"
display_name = "Riverside University"
metadata_url = "{base}/metadata"
email_domains = ["riverside.edu"]
link = {{ attribute = "uid", person_field = "username" }}

[[federation.saml_idps]]
id = "riverside-jit"
display_name = "Riverside new staff"
metadata_url = "{base}/metadata"
link = {{ attribute = "eduPersonPrincipalName", person_field = "email" }}
just_in_time = true

[[federation.saml_idps]]
id = "riverside-legacy"
display_name = "Riverside (legacy encryption)"
metadata_url = "{base}/metadata"
link = {{ attribute = "uid", person_field = "username" }}
allow_rsa1_5 = true

[[federation.saml_idps]]
id = "partner"
display_name = "Partner college"
metadata_url = "{base}/metadata"
email_domains = ["partner.example"]
link = {{ attribute = "eduPersonPrincipalName", person_field = "email" }}
"#,
            base = idp.base
        ),
    )
    .unwrap();
    path.display().to_string()
}

/// The IdP's auto-submitting form: (action, SAMLResponse).
fn posted_form(html: &str) -> (String, String) {
    let grab = |name: &str| {
        let at = html
            .find(&format!("name=\"{name}\""))
            .unwrap_or_else(|| panic!("no {name} in {html}"));
        let rest = &html[at..];
        let v = &rest[rest.find("value=\"").unwrap() + 7..];
        v[..v.find('"').unwrap()].to_string()
    };
    let action = &html[html.find("action=\"").unwrap() + 8..];
    let action = action[..action.find('"').unwrap()].to_string();
    (action.replace("&amp;", "&"), grab("SAMLResponse"))
}

/// Starts at the hub's IdP button, lets the IdP answer as `mode`, and posts the answer
/// to the ACS. Returns the ACS's answer and the SAMLResponse that was posted.
async fn through_idp(
    b: &mut Browser,
    hub: &Hub,
    idp: &Idp,
    idp_id: &str,
    request: Option<&str>,
    user: &str,
    mode: &str,
) -> (Answer, String) {
    idp.next(user, mode).await;
    let start = match request {
        Some(r) => format!("{}/login/idp/{idp_id}?request={r}", hub.base),
        None => format!("{}/login/idp/{idp_id}", hub.base),
    };
    let to_idp = b.get(&start).await;
    assert_eq!(to_idp.status, 303, "{}", to_idp.body);
    let at_idp = b.get(to_idp.location.as_deref().unwrap()).await;
    assert_eq!(at_idp.status, 200, "IdP: {}", at_idp.body);
    let (action, response) = posted_form(&at_idp.body);
    assert!(
        action.ends_with(&format!("/saml/sp/{idp_id}/acs")),
        "{action}"
    );
    let acs = b
        .post_cross_site(&action, &[("SAMLResponse", &response)])
        .await;
    (acs, response)
}

async fn sign_in(b: &mut Browser, hub: &Hub, idp: &Idp, user: &str, mode: &str) -> Answer {
    let (acs, _) = through_idp(b, hub, idp, "riverside", None, user, mode).await;
    assert_eq!(acs.status, 303, "{mode}: {}", acs.body);
    let back = acs.location.unwrap();
    assert!(back.starts_with("/login/federated?handle="), "{back}");
    b.get(&absolute(&hub.base, &back)).await
}

#[tokio::test]
async fn pysaml2_idp_signs_people_in_and_wrong_responses_are_refused() {
    setup_peers();
    let dir = tempfile::tempdir().unwrap();
    let idp = Idp::start().await;
    let config = write_config(dir.path(), &idp);
    let hub = Hub::start_demo(dir.path(), &[("HMS_ACH_CONFIG", config.as_str())]).await;

    // The hub's SP metadata is what pysaml2 reads (it checks our request signature).
    let md = reqwest::get(format!("{}/saml/sp/riverside/metadata", hub.base))
        .await
        .unwrap();
    assert_eq!(md.status(), 200);
    let md = md.text().await.unwrap();
    assert!(md.contains("AuthnRequestsSigned=\"true\""));
    // The same certificate for encryption, with what the hub decrypts (no 3DES, no
    // RSA v1.5).
    assert!(md.contains("<md:KeyDescriptor use=\"encryption\">"), "{md}");
    assert!(md.contains("http://www.w3.org/2009/xmlenc11#aes256-gcm"));
    assert!(md.contains("http://www.w3.org/2001/04/xmlenc#rsa-oaep-mgf1p"));
    assert!(!md.contains("tripledes") && !md.contains("rsa-1_5"));

    // The sign-in page offers the IdP.
    let mut b = Browser::new();
    let login = b.get(&format!("{}/login", hub.base)).await;
    assert!(login.body.contains("Sign in with Riverside University"));

    // A good sign-in: a session for the linked person (uid → username), portal next;
    // with or without an encrypted assertion.
    for mode in [
        "normal",
        "signed_response",
        "enc_signed_response",
        "enc_signed_assertion",
        "enc_gcm_sibling",
    ] {
        let mut b = Browser::new();
        let done = sign_in(&mut b, &hub, &idp, "ana", mode).await;
        assert_eq!(done.status, 303, "{mode}: {}", done.body);
        assert_eq!(done.location.as_deref(), Some("/portal"), "{mode}");
        assert!(b.cookies.contains_key("hms_session"), "{mode}");
        assert!(!b.cookies.contains_key("hms_fed"), "binding cookie cleared");
        let portal = b.get(&format!("{}/portal", hub.base)).await;
        assert!(portal.body.contains("Ana"), "{mode}: {}", portal.body);
    }
    let last = idp.last_request().await;
    assert_eq!(
        last["signed"], true,
        "our AuthnRequest was signed and pysaml2 accepted it"
    );

    // All the way to an OpenID Connect client's tokens, with the IdP's MFA carried into
    // the ID token's acr/amr.
    let redirect = format!(
        "http://127.0.0.1:{}/callback",
        integration_tests::free_port()
    );
    let c = client(
        dir.path(),
        &[
            "--name",
            "District LMS",
            "--public",
            "--first-party",
            "--grant",
            "authorization_code",
            "--scope",
            "openid",
            "--scope",
            "profile",
            "--redirect-uri",
            &redirect,
        ],
    );
    let client_id = c["client_id"].as_str().unwrap().to_string();
    let verifier = "federated-sign-in-pkce-verifier-0123456789-abcdefghijkl";
    let challenge = URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()));
    let mut b = Browser::new();
    let authz = b
        .get(&format!(
            "{}/oauth2/authorize?response_type=code&client_id={client_id}&redirect_uri={}&scope=openid%20profile&state=s1&nonce=n1&code_challenge={challenge}&code_challenge_method=S256",
            hub.base,
            url_encode(&redirect)
        ))
        .await;
    assert_eq!(authz.status, 303, "{}", authz.body);
    let to_login = authz.location.unwrap();
    let request = to_login.split("request=").nth(1).unwrap().to_string();
    let (acs, _) = through_idp(
        &mut b,
        &hub,
        &idp,
        "riverside",
        Some(&request),
        "ana",
        "mfa",
    )
    .await;
    assert_eq!(acs.status, 303, "{}", acs.body);
    let done = b.get(&absolute(&hub.base, &acs.location.unwrap())).await;
    assert_eq!(done.status, 303, "{}", done.body);
    let resumed = b.get(&absolute(&hub.base, &done.location.unwrap())).await;
    let back = resumed.location.expect("redirect back to the client");
    assert!(back.starts_with(&redirect), "{back}");
    let code = back
        .split("code=")
        .nth(1)
        .unwrap()
        .split('&')
        .next()
        .unwrap()
        .to_string();
    let tokens: serde_json::Value = reqwest::Client::new()
        .post(format!("{}/oauth2/token", hub.base))
        .form(&[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", &redirect),
            ("client_id", &client_id),
            ("code_verifier", verifier),
        ])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let id_token = tokens["id_token"]
        .as_str()
        .unwrap_or_else(|| panic!("{tokens}"));
    let claims: serde_json::Value = serde_json::from_slice(
        &URL_SAFE_NO_PAD
            .decode(id_token.split('.').nth(1).unwrap())
            .unwrap(),
    )
    .unwrap();
    assert_eq!(claims["nonce"], "n1");
    assert_eq!(claims["acr"], "urn:hms-ach:acr:mfa", "{claims}");
    assert_eq!(claims["amr"], serde_json::json!(["fed", "mfa"]), "{claims}");

    // ForceAuthn: the app's prompt=login makes the hub ask the IdP to authenticate
    // afresh (SAML core §3.4.1), and an assertion whose AuthnInstant is older than that
    // request is refused. Without it, an earlier authentication is fine.
    for (prompt, mode, status) in [
        ("&prompt=login", "old_authn", 400),
        ("&prompt=login", "normal", 303),
        ("&max_age=60", "old_authn", 400),
        ("", "old_authn", 303),
    ] {
        let mut b = Browser::new();
        let authz = b
            .get(&format!(
                "{}/oauth2/authorize?response_type=code&client_id={client_id}&redirect_uri={}&scope=openid&state=s2&nonce=n2&code_challenge={challenge}&code_challenge_method=S256{prompt}",
                hub.base,
                url_encode(&redirect)
            ))
            .await;
        assert_eq!(authz.status, 303, "{}", authz.body);
        let to_login = authz.location.unwrap();
        let request = to_login.split("request=").nth(1).unwrap().to_string();
        let (acs, _) =
            through_idp(&mut b, &hub, &idp, "riverside", Some(&request), "ana", mode).await;
        assert_eq!(acs.status, status, "{prompt} {mode}: {}", acs.body);
        let forced = idp.last_request().await["force_authn"] == "true";
        assert_eq!(forced, !prompt.is_empty(), "{prompt}");
        if status == 400 {
            assert!(acs.body.contains("authn_instant"), "{}", acs.body);
        }
    }

    // RSA PKCS#1 v1.5 key transport: only for the IdP entry marked allow_rsa1_5.
    let mut b = Browser::new();
    let (acs, _) = through_idp(
        &mut b,
        &hub,
        &idp,
        "riverside-legacy",
        None,
        "ana",
        "enc_rsa15",
    )
    .await;
    assert_eq!(acs.status, 303, "{}", acs.body);

    // Each wrong Response is refused with a page, and no session starts.
    for (mode, expect) in [
        // Told apart from a signature that does not verify (issue 14, defect 7).
        ("unsigned", "unsigned"),
        // The Response's signature covers the ciphertext: checked before decrypting.
        ("enc_modified", "signature"),
        // Decrypted, then checked like any assertion.
        ("enc_wrong_audience", "audience"),
        ("modified", "signature"),
        ("xsw_prepend", "structure"),
        ("xsw_append", "structure"),
        ("xsw_advice", "structure"),
        ("xsw_response_wrap", "structure"),
        ("xsw_object", "structure"),
        ("wrong_audience", "audience"),
        ("wrong_recipient", "recipient"),
        ("wrong_destination", "destination"),
        ("expired", "assertion_expired"),
        ("not_yet_valid", "not_yet_valid"),
        ("wrong_in_response_to", "in_response_to"),
    ] {
        let mut b = Browser::new();
        let (acs, _) = through_idp(&mut b, &hub, &idp, "riverside", None, "ana", mode).await;
        assert!(
            acs.status == 400,
            "{mode} must be refused, got {}: {}",
            acs.status,
            acs.body
        );
        assert!(
            acs.body.contains("was not accepted"),
            "{mode}: {}",
            acs.body
        );
        assert!(
            acs.body.contains(expect),
            "{mode}: expected {expect}: {}",
            acs.body
        );
        assert!(!b.cookies.contains_key("hms_session"), "{mode}");
    }

    // Encryption the hub refuses: an admin-fixable algorithm gets a page that says
    // what to change at the IdP; a key the hub cannot use, the generic refusal.
    for (mode, expect) in [
        // SHA-1: the page says what to change (issue 14, defect 7).
        ("sha1", "RSA-SHA256"),
        ("enc_3des", "Triple DES"),
        ("enc_rsa15", "RSA PKCS#1 v1.5"),
        ("enc_wrong_key", "could not be decrypted and verified"),
        // No signature on the Response, none inside: the same refusal as a wrong key
        // (one code for every failure after decryption, no oracle).
        ("enc_unsigned", "could not be decrypted and verified"),
    ] {
        let mut b = Browser::new();
        let (acs, _) = through_idp(&mut b, &hub, &idp, "riverside", None, "ana", mode).await;
        assert_eq!(acs.status, 400, "{mode}: {}", acs.body);
        assert!(
            acs.body.contains(expect),
            "{mode}: expected {expect}: {}",
            acs.body
        );
        assert!(!b.cookies.contains_key("hms_session"), "{mode}");
    }
    let page = {
        let mut b = Browser::new();
        through_idp(&mut b, &hub, &idp, "riverside", None, "ana", "enc_3des")
            .await
            .0
            .body
    };
    assert!(page.contains("AES"), "{page}");

    // Replayed: the same Response again (its request is used up), and the same assertion
    // id in an answer to a new request (the replay cache).
    let mut b = Browser::new();
    let (acs, response) = through_idp(&mut b, &hub, &idp, "riverside", None, "ana", "normal").await;
    assert_eq!(acs.status, 303);
    let again = b
        .post_cross_site(
            &format!("{}/saml/sp/riverside/acs", hub.base),
            &[("SAMLResponse", &response)],
        )
        .await;
    assert_eq!(again.status, 400, "{}", again.body);
    assert!(again.body.contains("replayed"), "{}", again.body);
    let mut b = Browser::new();
    let (first, _) = through_idp(&mut b, &hub, &idp, "riverside", None, "ana", "fixed_id").await;
    assert_eq!(first.status, 303, "{}", first.body);
    let (second, _) = through_idp(&mut b, &hub, &idp, "riverside", None, "ana", "fixed_id").await;
    assert_eq!(second.status, 400);
    assert!(second.body.contains("replayed"), "{}", second.body);
    let mut b = Browser::new();
    let (first, _) =
        through_idp(&mut b, &hub, &idp, "riverside", None, "ana", "enc_fixed_id").await;
    assert_eq!(first.status, 303, "{}", first.body);
    let (second, _) =
        through_idp(&mut b, &hub, &idp, "riverside", None, "ana", "enc_fixed_id").await;
    assert_eq!(second.status, 400);
    assert!(second.body.contains("replayed"), "{}", second.body);

    // Login CSRF: a verified sign-in cannot be finished in a browser that did not start it.
    let mut victim = Browser::new();
    let mut attacker = Browser::new();
    let (acs, _) = through_idp(
        &mut attacker,
        &hub,
        &idp,
        "riverside",
        None,
        "ana",
        "normal",
    )
    .await;
    let stolen = absolute(&hub.base, &acs.location.unwrap());
    let refused = victim.get(&stolen).await;
    assert_eq!(refused.status, 400, "{}", refused.body);
    assert!(refused.body.contains("another browser"));
    assert!(!victim.cookies.contains_key("hms_session"));

    // Not in the directory: refused with a page that says what to do.
    let mut b = Browser::new();
    let (acs, _) = through_idp(&mut b, &hub, &idp, "riverside", None, "newcomer", "normal").await;
    assert_eq!(acs.status, 403, "{}", acs.body);
    assert!(
        acs.body
            .contains("no one in the district directory has the username"),
        "{}",
        acs.body
    );

    // An IdP may only assert addresses in its own domains: the partner cannot assert a
    // riverside.edu person.
    let mut b = Browser::new();
    let (acs, _) = through_idp(&mut b, &hub, &idp, "partner", None, "ana", "normal").await;
    assert_eq!(acs.status, 403, "{}", acs.body);
    assert!(
        acs.body
            .contains("may not sign in people from riverside.edu"),
        "{}",
        acs.body
    );

    // Just-in-time: created once, pending, never duplicated.
    for _ in 0..2 {
        let mut b = Browser::new();
        let (acs, _) = through_idp(
            &mut b,
            &hub,
            &idp,
            "riverside-jit",
            None,
            "newcomer",
            "normal",
        )
        .await;
        assert_eq!(acs.status, 403, "{}", acs.body);
        assert!(
            acs.body.contains("waiting for an administrator"),
            "{}",
            acs.body
        );
    }
    let db = sqlx::SqlitePool::connect(&sqlite_url(dir.path()))
        .await
        .unwrap();
    let (n, status): (i64, String) = sqlx::query_as(
        "SELECT COUNT(*), MAX(status) FROM people WHERE email = 'new.person@riverside.edu'",
    )
    .fetch_one(&db)
    .await
    .unwrap();
    assert_eq!((n, status.as_str()), (1, "pending"));
    let audited: Vec<String> = sqlx::query_scalar(
        "SELECT details FROM audit_events WHERE action = 'federation.signin' ORDER BY seq",
    )
    .fetch_all(&db)
    .await
    .unwrap();
    for reason in ["decryption", "tripledes", "rsa1_5", "signature"] {
        assert!(
            audited
                .iter()
                .any(|d| d.contains(&format!("\"reason\":\"{reason}\""))),
            "no {reason} in the audit log: {audited:?}"
        );
    }

    // Home-realm discovery sends riverside.edu addresses to the IdP.
    let mut b = Browser::new();
    let login = b.get(&format!("{}/login", hub.base)).await;
    let csrf = {
        let marker = "name=\"csrf\" value=\"";
        let at = login.body.find(marker).unwrap() + marker.len();
        login.body[at..at + login.body[at..].find('"').unwrap()].to_string()
    };
    let r = b
        .http
        .post(format!("{}/login/discover", hub.base))
        .header("cookie", b.cookie_header())
        .form(&[("csrf", csrf.as_str()), ("email", "Someone@Riverside.EDU")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303);
    assert_eq!(r.headers()["location"], "/login/idp/riverside");
    let r = b
        .http
        .post(format!("{}/login/discover", hub.base))
        .header("cookie", b.cookie_header())
        .form(&[("csrf", csrf.as_str()), ("email", "a@elsewhere.org")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 422);
    assert!(r
        .text()
        .await
        .unwrap()
        .contains("No sign-in service is set up for @elsewhere.org"));
    assert!(hub.stop().await);
}
