//! Issue 14, defect 2: a pending authorization request (OIDC or SAML) belongs to the
//! browser that started it. Someone else holding its handle (it is in the `/login`
//! and `/consent` URLs) is refused on every step with a page that says to start
//! again from the app, and the request stays usable by its own browser. Also the CSRF
//! cookie is new after each sign-in (defect 5).

use std::collections::HashMap;

use super::browser::{query, urlencode, Agent, Page, CHALLENGE, PASSWORD, REDIRECT};
use super::sso::{exchange, introspect};
use super::*;

fn authorize_path(client: &str, state: &str) -> String {
    format!("/oauth2/authorize?response_type=code&client_id={client}&redirect_uri={}&scope=openid%20profile&state={state}&nonce=n-{state}&code_challenge={CHALLENGE}&code_challenge_method=S256", urlencode(REDIRECT))
}

/// The request handle in a `…?request=` redirect or a page's hidden field.
fn handle_of(page: &Page) -> String {
    let loc = page.location();
    if let Some(h) = loc.split("request=").nth(1) {
        return h.split('&').next().unwrap().to_string();
    }
    page.hidden("request")
}

/// Signs `username` in without an app (a session of their own in this browser).
async fn own_session(b: &mut Agent<'_>, username: &str) {
    let login = b.get("/login").await;
    let page = b.sign_in(&login, username, PASSWORD).await;
    assert_eq!(page.status, StatusCode::OK, "the portal: {}", page.body);
    assert!(b.cookies.contains_key("hms_session"));
}

fn refused_as_other_browser(p: &Page, what: &str) {
    assert_eq!(p.status, StatusCode::FORBIDDEN, "{what}: {}", p.body);
    assert!(
        p.body.contains("started in another browser") && p.body.contains("Go back to the app"),
        "{what}: {}",
        p.body
    );
    assert!(
        !p.location().starts_with(REDIRECT),
        "{what}: nothing for the app"
    );
    assert!(p.body.contains("hms.css"), "{what}: the styled error page");
}

store_test!(
    someone_else_cannot_finish_a_request_with_their_own_session,
    |t: TestApp| async move {
        let victim_id = t.account("vic.tim").await;
        t.account("mal.lory").await;
        let rp = t.rp(false, false).await;
        // The victim's browser starts signing in to the app and stops at the login page.
        let mut victim = t.agent();
        let first = victim.get(&authorize_path(&rp.id, "victim-state")).await;
        assert!(
            first.location().starts_with("/login?request="),
            "{}",
            first.location()
        );
        assert!(
            first.headers.get_all(header::SET_COOKIE).iter().any(|c| {
                let c = c.to_str().unwrap();
                c.starts_with("hms_req=") && c.contains("HttpOnly") && c.contains("SameSite=Lax")
            }),
            "the binding cookie is set with the request"
        );
        let handle = handle_of(&first);
        let login = victim.follow(first).await;
        assert_eq!(login.status, StatusCode::OK);

        // The attacker learns the handle and tries every step with their own session.
        let mut attacker = t.agent();
        own_session(&mut attacker, "mal.lory").await;
        let csrf = attacker.get("/portal/sessions").await.hidden("csrf");
        for path in [
            format!("/oauth2/authorize/resume?request={handle}"),
            format!("/login?request={handle}"),
            format!("/consent?request={handle}"),
            format!("/select-account?request={handle}"),
            format!("/login/mfa/step-up?request={handle}"),
            format!("/login/idp/nowhere?request={handle}"),
        ] {
            let p = attacker.get(&path).await;
            refused_as_other_browser(&p, &path);
        }
        for (path, form) in [
            ("/consent", vec![("decision", "allow")]),
            ("/select-account", vec![("decision", "continue")]),
            (
                "/login",
                vec![("username", "mal.lory"), ("password", PASSWORD)],
            ),
        ] {
            let mut form = form;
            form.push(("csrf", &csrf));
            form.push(("request", &handle));
            let p = attacker.post(path, &form).await;
            refused_as_other_browser(&p, path);
        }
        // A browser with no cookies at all fares no better.
        let mut stranger = t.agent();
        let p = stranger
            .get(&format!("/oauth2/authorize/resume?request={handle}"))
            .await;
        refused_as_other_browser(&p, "no cookies");
        assert!(
            !stranger.cookies.contains_key("hms_req"),
            "no binding is handed out with a refusal"
        );
        assert!(
            t.audit_rows("oidc.authorize").await.is_empty(),
            "no code was issued"
        );

        // The victim still finishes, with their own state and account.
        let page = victim.sign_in(&login, "vic.tim", PASSWORD).await;
        let page = victim.consent(&page, "allow").await;
        assert!(page.location().starts_with(REDIRECT), "{}", page.body);
        let q: HashMap<String, String> = query(&page.location());
        assert_eq!(q["state"], "victim-state");
        let (s, tokens) = exchange(&t, &rp, &q["code"]).await;
        assert_eq!(s, StatusCode::OK, "{tokens}");
        let info = introspect(&t, &rp, tokens["access_token"].as_str().unwrap()).await;
        assert_eq!(info["sub"], victim_id.as_str());
    }
);

store_test!(
    two_tabs_and_two_apps_in_one_browser_each_finish,
    |t: TestApp| async move {
        t.account("two.tabs").await;
        let app1 = t.rp(false, true).await;
        let app2 = t.rp(false, true).await;
        let mut b = t.agent();
        let tab1 = b.get(&authorize_path(&app1.id, "s1")).await;
        let tab2 = b.get(&authorize_path(&app1.id, "s2")).await;
        let tab3 = b.get(&authorize_path(&app2.id, "s3")).await;
        let binding = b.cookies["hms_req"].clone();
        for tab in [&tab2, &tab3] {
            assert!(
                !tab.headers
                    .get_all(header::SET_COOKIE)
                    .iter()
                    .any(|c| c.to_str().unwrap().starts_with("hms_req=")),
                "one binding per browser, kept for every request"
            );
        }
        let (h1, h2, h3) = (handle_of(&tab1), handle_of(&tab2), handle_of(&tab3));
        // Sign in on the third tab's page; then the others continue with the session.
        let login3 = b.follow(tab3).await;
        let done3 = b.sign_in(&login3, "two.tabs", PASSWORD).await;
        assert_eq!(query(&done3.location())["state"], "s3");
        for (h, state, rp) in [(&h1, "s1", &app1), (&h2, "s2", &app1)] {
            let p = b
                .get(&format!("/oauth2/authorize/resume?request={h}"))
                .await;
            let p = b.follow(p).await;
            assert!(p.location().starts_with(REDIRECT), "{state}: {}", p.body);
            let q = query(&p.location());
            assert_eq!(q["state"], state);
            let (s, _) = exchange(&t, rp, &q["code"]).await;
            assert_eq!(s, StatusCode::OK, "{state}");
        }
        assert_eq!(
            b.cookies["hms_req"], binding,
            "the binding outlives sign-in"
        );
        assert_eq!(t.audit_rows("oidc.authorize").await.len(), 3);
        let _ = h3;
    }
);

store_test!(
    a_cross_site_post_is_claimed_by_the_browser_it_lands_in,
    |t: TestApp| async move {
        t.account("po.st").await;
        let rp = t.rp(false, true).await;
        let mut b = t.agent();
        // A request already open in another tab of this browser.
        let open = b.get(&authorize_path(&rp.id, "open")).await;
        let open_handle = handle_of(&open);
        let binding = b.cookies["hms_req"].clone();
        // The app's page posts the request cross-site: SameSite=Lax keeps every
        // cookie of ours away from that POST.
        let kept = std::mem::take(&mut b.cookies);
        b.origin = Some("https://rp.example".into());
        let posted = b
            .post(
                "/oauth2/authorize",
                &[
                    ("response_type", "code"),
                    ("client_id", &rp.id),
                    ("redirect_uri", REDIRECT),
                    ("scope", "openid"),
                    ("state", "posted"),
                    ("code_challenge", CHALLENGE),
                    ("code_challenge_method", "S256"),
                ],
            )
            .await;
        assert_eq!(posted.status, StatusCode::SEE_OTHER, "{}", posted.body);
        assert!(
            posted
                .location()
                .starts_with("/oauth2/authorize/resume?request="),
            "{}",
            posted.location()
        );
        assert!(
            b.cookies.is_empty(),
            "no cookie is set on the cross-site answer: it would replace the browser's"
        );
        let handle = handle_of(&posted);
        b.cookies = kept;
        b.origin = Some("http://hub.test".into());
        // The same-site GET brings the binding and claims the request.
        let login = b.follow(posted).await;
        assert!(login.body.contains("action=\"/login\""), "{}", login.body);
        assert_eq!(
            b.cookies["hms_req"], binding,
            "the browser's binding is kept"
        );
        // Now it is this browser's: another one arriving later is refused.
        let mut other = t.agent();
        let p = other
            .get(&format!("/oauth2/authorize/resume?request={handle}"))
            .await;
        refused_as_other_browser(&p, "claimed");
        let done = b.sign_in(&login, "po.st", PASSWORD).await;
        assert_eq!(query(&done.location())["state"], "posted");
        // The tab opened before the POST still finishes.
        let p = b
            .get(&format!("/oauth2/authorize/resume?request={open_handle}"))
            .await;
        assert_eq!(query(&b.follow(p).await.location())["state"], "open");
    }
);

/// The SAML IdP rides the same pending requests: an app's AuthnRequest started in
/// one browser cannot be answered for whoever is signed in elsewhere.
async fn saml_request_bound(postgres: bool) {
    let (t, _dir) = super::saml_idp::app_with_sp(postgres).await;
    t.account("sam.victim").await;
    t.account("sam.attacker").await;
    let mut victim = t.agent();
    let to_login = victim
        .get(&super::saml_idp::redirect_request(
            "_bind1",
            t.clock.now_ms(),
        ))
        .await;
    assert_eq!(to_login.status, StatusCode::SEE_OTHER, "{}", to_login.body);
    let handle = handle_of(&to_login);
    let login = victim.follow(to_login).await;

    let mut attacker = t.agent();
    own_session(&mut attacker, "sam.attacker").await;
    for path in [
        format!("/oauth2/authorize/resume?request={handle}"),
        format!("/login?request={handle}"),
    ] {
        let p = attacker.get(&path).await;
        refused_as_other_browser(&p, &path);
        assert!(!p.body.contains("SAMLResponse"), "{path}");
    }
    assert!(t.audit_rows("saml.sso").await.is_empty());

    let page = victim.sign_in(&login, "sam.victim", PASSWORD).await;
    let xml = super::saml_idp::response_xml(&page);
    assert!(xml.contains(r#"InResponseTo="_bind1""#), "{xml}");
    assert!(xml.contains("sam.victim@district.example"), "{xml}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn saml_request_is_bound_to_its_browser_sqlite() {
    saml_request_bound(false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn saml_request_is_bound_to_its_browser_postgres() {
    saml_request_bound(true).await;
}

/// A federated sign-in the upstream IdP has already vouched for (what the ACS leaves
/// for the browser); the browser then completes it at `/login/federated`.
pub(super) async fn federated_handoff(
    t: &TestApp,
    person_id: &str,
    auth_request: Option<&str>,
) -> String {
    let handle = crate::crypto::random_token(32);
    sqlx::query(
        "INSERT INTO federated_signins (handle_digest, idp_id, person_id, browser_digest, amr, acr, auth_request, expires_at)
         VALUES ($1, 'district', $2, NULL, '[\"fed\"]', 'urn:hms-ach:acr:federated', $3, $4)",
    )
    .bind(crate::crypto::sha256_hex(&handle))
    .bind(person_id)
    .bind(auth_request)
    .bind(t.clock.now_ms() + 60_000)
    .execute(t.store().writer())
    .await
    .unwrap();
    format!("/login/federated?handle={handle}")
}

store_test!(
    the_csrf_cookie_is_new_after_every_sign_in,
    |t: TestApp| async move {
        let person = t.account("cs.rf").await;
        // By password.
        let mut b = t.agent();
        let login = b.get("/login").await;
        let (cookie_before, token_before) = (b.cookies["hms_csrf"].clone(), login.hidden("csrf"));
        let portal = b.sign_in(&login, "cs.rf", PASSWORD).await;
        assert_eq!(portal.status, StatusCode::OK);
        assert_ne!(b.cookies["hms_csrf"], cookie_before, "a new CSRF cookie");
        // A token from before the sign-in (planted, or read by someone) is refused…
        let stale = b
            .post("/portal/sessions/end-all", &[("csrf", &token_before)])
            .await;
        assert_eq!(stale.status, StatusCode::FORBIDDEN, "{}", stale.body);
        assert!(b.cookies.contains_key("hms_session"), "still signed in");
        // …and the page's new one works.
        let fresh = b.get("/portal/sessions").await.hidden("csrf");
        assert_ne!(fresh, token_before);
        let out = b
            .post("/portal/sessions/end-all", &[("csrf", &fresh)])
            .await;
        assert_eq!(out.status, StatusCode::SEE_OTHER, "{}", out.body);
        assert!(!b.cookies.contains_key("hms_session"), "signed out");

        // Through an upstream IdP (the same for passkeys: every sign-in opens its
        // session in one place, which rotates the cookie).
        let mut f = t.agent();
        let token_before = f.get("/login").await.hidden("csrf");
        let cookie_before = f.cookies["hms_csrf"].clone();
        let path = federated_handoff(&t, &person, None).await;
        let p = f.get(&path).await;
        assert!(p.status.is_redirection(), "{}", p.body);
        assert!(f.cookies.contains_key("hms_session"));
        assert_ne!(f.cookies["hms_csrf"], cookie_before);
        let stale = f
            .post("/portal/sessions/end-all", &[("csrf", &token_before)])
            .await;
        assert_eq!(stale.status, StatusCode::FORBIDDEN, "{}", stale.body);
    }
);
