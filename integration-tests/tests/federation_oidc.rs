//! Upstream OpenID Connect against the real binary, with panva's **oidc-provider** (npm,
//! a certified OpenID Provider) standing in for the district's Google Workspace,
//! Microsoft Entra ID and Okta: `peers/oidc_idp.mjs` runs it on 127.0.0.1 with a
//! client for the hub, PKCE required, test accounts with email/hd/tid/amr claims and a
//! scripted login (no browser needed). For the refusals oidc-provider cannot produce
//! (a wrong nonce, audience or azp, an expired token, a forged signature) the peer
//! re-signs the ID token of its real token response on a control switch; see the
//! script's header.
//!
//! The browser is reqwest with a hand-kept cookie jar, so each hop is visible: the hub's
//! IdP button, the provider's authorization endpoint and scripted login, and the
//! provider's redirect back to the hub's callback, which must carry the hub's
//! browser-binding cookie.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use integration_tests::browser::{absolute, url_encode, Answer, Browser};
use integration_tests::oidc_peer::{to_callback, Idp};
use integration_tests::{client_json as client, setup_peers, sqlite_url, Hub};
use sha2::{Digest, Sha256};
use std::path::Path;

const CLIENT_ID: &str = "hms-ach-hub";
const TENANT: &str = "9188040d-6c67-4c5b-b112-36a304b66dad";
const IDPS: [&str; 3] = ["google", "entra", "okta-jit"];

/// Three hub entries for the one provider: a Google Workspace-like one (hd), an
/// Entra-like one (tid, secret from an environment variable) and a just-in-time one;
/// and one whose provider cannot be reached.
fn write_config(dir: &Path, idp: &Idp, secret: &str) -> String {
    std::fs::write(dir.join("idp-secret"), format!("{secret}\n")).unwrap();
    let path = dir.join("hms-ach.toml");
    std::fs::write(
        &path,
        format!(
            r#"
[[federation.oidc_idps]]
id = "google"
display_name = "Riverside Google account"
issuer = "{base}"
client_id = "{CLIENT_ID}"
client_secret_file = "idp-secret"
email_domains = ["riverside.k12.example"]
allowed_hd = ["riverside.k12.example"]

[[federation.oidc_idps]]
id = "entra"
display_name = "Riverside Microsoft account"
issuer = "{base}"
client_id = "{CLIENT_ID}"
client_secret_env = "HUB_TEST_OIDC_SECRET"
allowed_tid = ["{TENANT}"]
link = {{ claim = "email", person_field = "email" }}

[[federation.oidc_idps]]
id = "down"
display_name = "Riverside backup"
issuer = "http://127.0.0.1:9"
client_id = "{CLIENT_ID}"
client_secret_file = "idp-secret"

[[federation.oidc_idps]]
id = "okta-jit"
display_name = "Riverside new staff"
issuer = "{base}"
client_id = "{CLIENT_ID}"
client_secret_file = "idp-secret"
just_in_time = true
"#,
            base = idp.base
        ),
    )
    .unwrap();
    path.display().to_string()
}

async fn sign_in(
    b: &mut Browser,
    hub: &Hub,
    idp: &Idp,
    idp_id: &str,
    user: &str,
    mode: &str,
) -> Answer {
    let back = to_callback(b, hub, idp, idp_id, None, user, mode).await;
    b.get(&back).await
}

fn refused(a: &Answer, b: &Browser, status: u16, text: &str, case: &str) {
    assert_eq!(a.status, status, "{case}: {}", a.body);
    assert!(
        a.body.contains(text),
        "{case}: expected {text:?}: {}",
        a.body
    );
    assert!(!b.cookies.contains_key("hms_session"), "{case}: no session");
}

#[tokio::test]
async fn oidc_provider_signs_people_in_and_wrong_answers_are_refused() {
    setup_peers();
    let dir = tempfile::tempdir().unwrap();
    let secret = "upstream-client-secret-0123456789abcdef";
    let idp = Idp::start(CLIENT_ID, secret).await;
    let config = write_config(dir.path(), &idp, secret);
    let hub = Hub::start_demo(
        dir.path(),
        &[
            ("HMS_ACH_CONFIG", config.as_str()),
            ("HUB_TEST_OIDC_SECRET", secret),
        ],
    )
    .await;
    // The provider accepts exactly the hub's callbacks (known now that it has a port).
    let uris: Vec<String> = IDPS
        .iter()
        .map(|id| format!("{}/login/oidc/{id}/callback", hub.base))
        .collect();
    idp.control(serde_json::json!({ "redirect_uris": uris }))
        .await;

    // The sign-in page offers each provider.
    let mut b = Browser::new();
    let login = b.get(&format!("{}/login", hub.base)).await;
    assert!(
        login.body.contains("Sign in with Riverside Google account"),
        "{}",
        login.body
    );
    assert!(login.body.contains("/login/idp/entra"));
    // A provider whose discovery failed is shown as unavailable and refuses to start.
    assert!(login
        .body
        .contains("Riverside backup: not available right now"));
    assert!(!login.body.contains("/login/idp/down"));
    let down = b.get(&format!("{}/login/idp/down", hub.base)).await;
    refused(&down, &b, 503, "is not available", "down");

    // A good sign-in: a session for the person the verified e-mail finds, portal next.
    let mut b = Browser::new();
    let done = sign_in(&mut b, &hub, &idp, "google", "ana", "normal").await;
    assert_eq!(done.status, 303, "{}", done.body);
    assert_eq!(done.location.as_deref(), Some("/portal"));
    assert!(b.cookies.contains_key("hms_session"));
    assert!(!b.cookies.contains_key("hms_fed"), "binding cookie cleared");
    let portal = b.get(&format!("{}/portal", hub.base)).await;
    assert!(portal.body.contains("Ana"), "{}", portal.body);
    // What the provider was asked: code flow, PKCE S256, a nonce and a state, the
    // exact redirect URI, the configured scopes and the Workspace domain hint.
    let asked = idp.last_request().await;
    assert_eq!(asked["response_type"], "code");
    assert_eq!(asked["code_challenge_method"], "S256");
    assert!(asked["code_challenge"].as_str().unwrap().len() >= 43);
    assert!(asked["nonce"].as_str().unwrap().len() >= 32);
    assert!(asked["state"].as_str().unwrap().len() >= 32);
    assert_eq!(
        asked["redirect_uri"],
        format!("{}/login/oidc/google/callback", hub.base)
    );
    assert_eq!(asked["scope"], "openid email profile");
    assert_eq!(asked["hd"], "riverside.k12.example");

    // All the way to an OpenID Connect client's ID token: sub is the directory person,
    // and acr/amr say truthfully whether the provider used a second factor.
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
    let db = sqlx::SqlitePool::connect(&sqlite_url(dir.path()))
        .await
        .unwrap();
    let ana_id: String = sqlx::query_scalar(
        "SELECT id FROM people WHERE email = 'ana.diallo0@riverside.k12.example'",
    )
    .fetch_one(&db)
    .await
    .unwrap();
    let passed_on = "&max_age=300&prompt=login";
    for (idp_id, mode, extra, acr, amr) in [
        (
            "entra",
            "mfa",
            passed_on,
            "urn:hms-ach:acr:mfa",
            serde_json::json!(["fed", "mfa"]),
        ),
        (
            "google",
            "normal",
            "",
            "urn:hms-ach:acr:federated",
            serde_json::json!(["fed"]),
        ),
    ] {
        let app = (client_id.as_str(), redirect.as_str(), extra);
        let claims = to_id_token(&hub, &idp, app, idp_id, mode).await;
        // An app's max_age and prompt=login reach the provider (and the hub checks the
        // provider's auth_time against that max_age).
        let asked = idp.last_request().await;
        let seen = (asked["max_age"].as_str(), asked["prompt"].as_str());
        let want = if extra.is_empty() {
            (None, None)
        } else {
            (Some("300"), Some("login"))
        };
        assert_eq!(seen, want, "{idp_id}: {asked}");
        assert_eq!(claims["sub"], ana_id.as_str(), "{claims}");
        assert_eq!(claims["nonce"], "n1");
        assert_eq!(claims["acr"], acr, "{claims}");
        assert_eq!(claims["amr"], amr, "{claims}");
    }

    // Each wrong answer is refused with a page, and no session starts.
    for (idp_id, user, mode, status, text) in [
        (
            "google",
            "ana",
            "wrong_nonce",
            400,
            "was not accepted (nonce)",
        ),
        (
            "google",
            "ana",
            "wrong_aud",
            400,
            "was not accepted (audience)",
        ),
        (
            "google",
            "ana",
            "extra_aud",
            400,
            "was not accepted (audience)",
        ),
        ("google", "ana", "wrong_azp", 400, "was not accepted (azp)"),
        (
            "google",
            "ana",
            "expired",
            400,
            "was not accepted (token_expired)",
        ),
        (
            "google",
            "ana",
            "foreign_key",
            400,
            "was not accepted (signature)",
        ),
        (
            "google",
            "ana_other_hd",
            "normal",
            403,
            "accounts of elsewhere.example may not sign in here",
        ),
        (
            "entra",
            "ana_other_tid",
            "normal",
            403,
            "Microsoft tenant may not sign in here",
        ),
        (
            "google",
            "unverified",
            "normal",
            403,
            "has not verified your e-mail address",
        ),
        // email_verified as the string "false" means false (issue 14, defect 8)…
        (
            "google",
            "ana",
            "email_verified_false_string",
            403,
            "has not verified your e-mail address",
        ),
        // …and a value nobody can read is named, with who can have it fixed (not
        // "try again shortly": the provider would answer the same).
        (
            "google",
            "ana",
            "email_verified_word",
            502,
            "a value the hub cannot read in its email_verified claim",
        ),
        (
            "google",
            "ana",
            "access_denied",
            400,
            "did not sign you in (access_denied)",
        ),
        (
            "google",
            "newcomer",
            "normal",
            403,
            "no one in the district directory has the e-mail address",
        ),
    ] {
        let case = format!("{idp_id}/{user}/{mode}");
        let mut b = Browser::new();
        let answer = sign_in(&mut b, &hub, &idp, idp_id, user, mode).await;
        refused(&answer, &b, status, text, &case);
        assert!(
            !answer.body.contains("<script>"),
            "{case}: the IdP's text is not echoed"
        );
        assert!(
            !answer.body.contains("you may not"),
            "{case}: {}",
            answer.body
        );
    }

    // email_verified as the string "true" (some providers send it so) signs in.
    let mut b = Browser::new();
    let done = sign_in(&mut b, &hub, &idp, "google", "ana", "email_verified_string").await;
    assert_eq!(done.status, 303, "{}", done.body);
    assert!(b.cookies.contains_key("hms_session"));
    let mut b = Browser::new();
    let unreadable = sign_in(&mut b, &hub, &idp, "google", "ana", "email_verified_word").await;
    assert!(
        unreadable.body.contains("district IT office")
            && !unreadable.body.contains("try again shortly"),
        "{}",
        unreadable.body
    );

    // Login CSRF: a callback made in one browser is refused in another, and stays
    // usable by its own browser.
    let mut attacker = Browser::new();
    let mut victim = Browser::new();
    let back = to_callback(&mut attacker, &hub, &idp, "google", None, "ana", "normal").await;
    let stolen = victim.get(&back).await;
    refused(
        &stolen,
        &victim,
        400,
        "started in another browser",
        "other browser",
    );
    let own = attacker.get(&back).await;
    assert_eq!(own.status, 303, "{}", own.body);

    // Replay: the same callback again, binding cookie and all, finds its state used.
    let mut b = Browser::new();
    let back = to_callback(&mut b, &hub, &idp, "google", None, "ana", "normal").await;
    let binding = b.cookies["hms_fed"].clone();
    assert_eq!(b.get(&back).await.status, 303);
    let mut again = Browser::new();
    again.cookies.insert("hms_fed".into(), binding);
    let replayed = again.get(&back).await;
    refused(
        &replayed,
        &again,
        400,
        "already been used or has expired",
        "replay",
    );
    // A made-up state: the same.
    let forged = format!(
        "{}/login/oidc/google/callback?code=x&state=made-up-state",
        hub.base
    );
    refused(
        &again.get(&forged).await,
        &again,
        400,
        "already been used or has expired",
        "forged state",
    );

    // Mix-up defence (RFC 9207): the answer must name this provider, and may not leave
    // its name out when the provider's discovery says it always sends it.
    for (case, change) in [
        ("wrong iss", Some("https%3A%2F%2Fevil.example")),
        ("no iss", None),
    ] {
        let mut b = Browser::new();
        let back = to_callback(&mut b, &hub, &idp, "google", None, "ana", "normal").await;
        let (head, _) = back
            .split_once("&iss=")
            .expect("the provider sends iss last");
        let changed = match change {
            Some(iss) => format!("{head}&iss={iss}"),
            None => head.to_string(),
        };
        let answer = b.get(&changed).await;
        refused(&answer, &b, 400, "was not accepted (issuer)", case);
    }

    // Just-in-time: created once, pending, never duplicated.
    for _ in 0..2 {
        let mut b = Browser::new();
        let answer = sign_in(&mut b, &hub, &idp, "okta-jit", "newcomer", "normal").await;
        refused(&answer, &b, 403, "waiting for an administrator", "jit");
    }
    let (n, status): (i64, String) = sqlx::query_as(
        "SELECT COUNT(*), MAX(status) FROM people WHERE email = 'new.person@riverside.k12.example'",
    )
    .fetch_one(&db)
    .await
    .unwrap();
    assert_eq!((n, status.as_str()), (1, "pending"));

    // Home-realm discovery sends riverside.k12.example addresses to the provider.
    let mut b = Browser::new();
    let login = b.get(&format!("{}/login", hub.base)).await;
    let csrf = Browser::field(&login.body, "csrf").unwrap();
    let found = b
        .post(
            &format!("{}/login/discover", hub.base),
            &[("csrf", &csrf), ("email", "Someone@Riverside.K12.Example")],
        )
        .await;
    assert_eq!(found.status, 303);
    assert_eq!(found.location.as_deref(), Some("/login/idp/google"));

    // Refusals are counted and audited with their reason.
    let metrics = reqwest::get(format!("{}/metrics", hub.base))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    for outcome in [
        "ok",
        "nonce",
        "audience",
        "hd",
        "tid",
        "idp_error",
        "other_browser",
    ] {
        let line = "hms_ach_federated_signins_total{idp=\"";
        assert!(
            metrics
                .lines()
                .any(|l| l.starts_with(line) && l.contains(&format!("outcome=\"{outcome}\""))),
            "no {outcome} count in /metrics"
        );
    }
    let audited: Vec<String> = sqlx::query_scalar(
        "SELECT details FROM audit_events WHERE action = 'federation.signin' ORDER BY seq",
    )
    .fetch_all(&db)
    .await
    .unwrap();
    for reason in [
        "nonce",
        "audience",
        "azp",
        "token_expired",
        "signature",
        "hd",
        "tid",
    ] {
        assert!(
            audited
                .iter()
                .any(|d| d.contains(&format!("\"reason\":\"{reason}\""))),
            "{reason} not audited: {audited:?}"
        );
    }
    assert!(hub.stop().await);
    // Neither the client secret nor any token the provider issued reaches the log.
    let log = std::fs::read_to_string(dir.path().join("hub.log")).unwrap();
    assert!(log.contains("OpenID Provider discovery loaded"), "{log}");
    assert!(!log.contains(secret), "the client secret is in the log");
    assert!(!log.contains("eyJ"), "a JWT is in the log");
}

/// An OpenID Connect client of the hub (code + PKCE) whose sign-in goes through the
/// upstream provider: the claims of the hub's ID token.
async fn to_id_token(
    hub: &Hub,
    idp: &Idp,
    (client_id, redirect, extra): (&str, &str, &str),
    idp_id: &str,
    mode: &str,
) -> serde_json::Value {
    let verifier = "upstream-oidc-sign-in-pkce-verifier-0123456789-abcdefghijkl";
    let challenge = URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()));
    let mut b = Browser::new();
    let authz = b
        .get(&format!(
            "{}/oauth2/authorize?response_type=code&client_id={client_id}&redirect_uri={}&scope=openid%20profile&state=s1&nonce=n1&code_challenge={challenge}&code_challenge_method=S256{extra}",
            hub.base,
            url_encode(redirect)
        ))
        .await;
    assert_eq!(authz.status, 303, "{}", authz.body);
    let to_login = authz.location.unwrap();
    let request = to_login.split("request=").nth(1).unwrap().to_string();
    let back = to_callback(&mut b, hub, idp, idp_id, Some(&request), "ana", mode).await;
    let done = b.get(&back).await;
    assert_eq!(done.status, 303, "{}", done.body);
    let resumed = b.get(&absolute(&hub.base, &done.location.unwrap())).await;
    let back = resumed.location.expect("redirect back to the client");
    assert!(back.starts_with(redirect), "{back}");
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
            ("redirect_uri", redirect),
            ("client_id", client_id),
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
    serde_json::from_slice(
        &URL_SAFE_NO_PAD
            .decode(id_token.split('.').nth(1).unwrap())
            .unwrap(),
    )
    .unwrap()
}
