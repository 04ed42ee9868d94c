//! The MFA policy and the second step, in-process on both databases: a privileged
//! person cannot finish with a password, sets up TOTP at sign-in, codes work once,
//! recovery codes work once, wrong codes run out; an app marked `mfa_required` steps a
//! password session up. (Real authenticators and browsers: integration-tests/tests/mfa.rs.)

use axum::http::StatusCode;

use super::browser::{query, urlencode, PASSWORD, REDIRECT};
use super::*;
use crate::authn::totp::hotp;

/// RFC 4648 base32 (no padding), as the set-up page shows the key.
pub(super) fn base32_decode(s: &str) -> Vec<u8> {
    const ALPHABET: &str = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
    let (mut buf, mut bits, mut out) = (0u32, 0u32, Vec::new());
    for c in s.chars().filter(|c| !c.is_whitespace()) {
        buf = (buf << 5) | ALPHABET.find(c).unwrap() as u32;
        bits += 5;
        if bits >= 8 {
            bits -= 8;
            out.push((buf >> bits) as u8);
        }
    }
    out
}

fn code_at(secret: &[u8], t: &TestApp, offset_steps: i64) -> String {
    let step = t.clock.now_ms().div_euclid(30_000) + offset_steps;
    format!("{:06}", hotp(secret, step as u64))
}

async fn make_admin(t: &TestApp, username: &str) -> String {
    let id = t.account(username).await;
    grant_hub_admin(t, &id).await;
    id
}

/// hub-admin, a privileged role, hub-wide.
pub(super) async fn grant_hub_admin(t: &TestApp, person_id: &str) {
    let mut tx = t.store().begin().await.unwrap();
    crate::authz::assign_role(
        &mut tx,
        t.app.audit_key(),
        t.clock.now(),
        &crate::audit::Origin::system("test"),
        crate::authz::NewAssignment {
            subject: crate::authz::Subject::Person(person_id.to_string()),
            role: "hub-admin".into(),
            org_id: None,
            expires_at: None,
        },
    )
    .await
    .unwrap();
    tx.commit().await.unwrap();
}

store_test!(
    privileged_person_sets_up_totp_and_codes_work_once,
    |t: TestApp| async move {
        make_admin(&t, "ada.admin").await;
        let mut b = t.agent();
        let login = b.get("/login").await;
        let mfa = b.sign_in(&login, "ada.admin", PASSWORD).await;
        assert_eq!(mfa.status, StatusCode::OK);
        assert!(
            mfa.body.contains("Set up an authenticator app"),
            "{}",
            mfa.body
        );
        assert!(!b.cookies.contains_key("hms_session"), "no session yet");
        assert_eq!(b.get("/portal").await.location(), "/login");

        // Set up the authenticator app at sign-in.
        let setup = b
            .post("/login/mfa/enroll/totp", &[("csrf", &mfa.hidden("csrf"))])
            .await;
        assert_eq!(setup.status, StatusCode::OK);
        let marker = "data-testid=\"totp-secret\">";
        let start = setup.body.find(marker).unwrap() + marker.len();
        let shown = &setup.body[start..start + setup.body[start..].find('<').unwrap()];
        let secret = base32_decode(shown);
        assert_eq!(secret.len(), 20, "160-bit secret (RFC 4226 §4)");
        let csrf = setup.hidden("csrf");
        let wrong = b
            .post(
                "/login/mfa/enroll/totp/confirm",
                &[("csrf", &csrf), ("code", "000000")],
            )
            .await;
        assert_eq!(wrong.status, StatusCode::UNAUTHORIZED);
        let code = code_at(&secret, &t, 0);
        let done = b
            .post(
                "/login/mfa/enroll/totp/confirm",
                &[("csrf", &csrf), ("code", &code)],
            )
            .await;
        assert_eq!(done.location(), "/portal");
        assert!(b.cookies.contains_key("hms_session"));

        // Recovery codes, shown once.
        let sec = b.get("/portal/security").await;
        let codes_page = b
            .post(
                "/portal/security/recovery",
                &[("csrf", &sec.hidden("csrf"))],
            )
            .await;
        let codes: Vec<String> = codes_page
            .body
            .split("<li><code>")
            .skip(1)
            .map(|s| s[..11].to_string())
            .collect();
        assert_eq!(codes.len(), 10);

        // The next sign-in asks for a code; the one already used does not work again.
        let mut c = t.agent();
        let login = c.get("/login").await;
        let mfa = c.sign_in(&login, "ada.admin", PASSWORD).await;
        let csrf = mfa.hidden("csrf");
        let again = c
            .post(
                "/login/mfa/code",
                &[("csrf", &csrf), ("kind", "totp"), ("code", &code)],
            )
            .await;
        assert_eq!(again.status, StatusCode::UNAUTHORIZED, "RFC 6238 §5.2");
        t.clock.advance_secs(30);
        let next = code_at(&secret, &t, 0);
        let ok = c
            .post(
                "/login/mfa/code",
                &[("csrf", &csrf), ("kind", "totp"), ("code", &next)],
            )
            .await;
        assert_eq!(ok.location(), "/portal");

        // The portal's factor pages want a recent second factor: 16 minutes later the
        // same session is asked for one again first (a new code), then may see them.
        assert_eq!(c.get("/portal/security").await.status, StatusCode::OK);
        t.clock.advance_secs(16 * 60);
        let stale = c.get("/portal/security").await;
        assert_eq!(stale.location(), "/login/mfa/step-up");
        let step = c.follow(stale).await;
        assert_eq!(step.status, StatusCode::OK, "{}", step.body);
        let fresh = code_at(&secret, &t, 0);
        let ok = c
            .post(
                "/login/mfa/code",
                &[
                    ("csrf", &step.hidden("csrf")),
                    ("kind", "totp"),
                    ("code", &fresh),
                ],
            )
            .await;
        assert_eq!(ok.location(), "/portal/security", "back where it asked");
        assert_eq!(c.get("/portal/security").await.status, StatusCode::OK);

        // A recovery code works once.
        for expected in [StatusCode::SEE_OTHER, StatusCode::UNAUTHORIZED] {
            let mut d = t.agent();
            let login = d.get("/login").await;
            let mfa = d.sign_in(&login, "ada.admin", PASSWORD).await;
            let r = d
                .post(
                    "/login/mfa/code",
                    &[
                        ("csrf", &mfa.hidden("csrf")),
                        ("kind", "recovery"),
                        ("code", &codes[3]),
                    ],
                )
                .await;
            assert_eq!(r.status, expected);
        }
        assert!(!t.audit_rows("auth.mfa").await.is_empty());
        assert_eq!(t.audit_rows("auth.mfa.enrolled_at_signin").await.len(), 1);
    }
);

store_test!(
    wrong_codes_run_out_and_the_sign_in_ends,
    |t: TestApp| async move {
        make_admin(&t, "bo.admin").await;
        let mut b = t.agent();
        let login = b.get("/login").await;
        let mfa = b.sign_in(&login, "bo.admin", PASSWORD).await;
        let setup = b
            .post("/login/mfa/enroll/totp", &[("csrf", &mfa.hidden("csrf"))])
            .await;
        assert_eq!(setup.status, StatusCode::OK);
        // Someone else's code cannot finish this set-up: only this person's pending one.
        let mut c = t.agent();
        let login = c.get("/login").await;
        let other = c.sign_in(&login, "bo.admin", PASSWORD).await;
        let csrf = other.hidden("csrf");
        // Without a confirmed factor, the code form refuses everything.
        let mut statuses = Vec::new();
        for _ in 0..5 {
            let r = c
                .post(
                    "/login/mfa/code",
                    &[("csrf", &csrf), ("kind", "totp"), ("code", "123456")],
                )
                .await;
            statuses.push(r.status);
        }
        assert_eq!(statuses[0], StatusCode::UNAUTHORIZED);
        assert_eq!(statuses[4], StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(c.get("/login/mfa").await.status, StatusCode::BAD_REQUEST);
    }
);

/// Marks the app `mfa_required`: every sign-in to it needs a second factor.
async fn require_mfa_for(t: &TestApp, rp: &super::browser::Rp) {
    sqlx::query("UPDATE clients SET settings = $1 WHERE id = $2")
        .bind(
            serde_json::json!({
                "redirect_uris": [REDIRECT], "first_party": true, "mfa_required": true
            })
            .to_string(),
        )
        .bind(&rp.id)
        .execute(t.store().writer())
        .await
        .unwrap();
    t.app.clients().invalidate(&rp.id);
}

store_test!(
    mfa_required_app_steps_a_password_session_up,
    |t: TestApp| async move {
        t.account("sam.student").await;
        let rp = t.rp(false, true).await;
        require_mfa_for(&t, &rp).await;
        let mut b = t.agent();
        let login = b.get("/login").await;
        assert_eq!(
            b.sign_in(&login, "sam.student", PASSWORD).await.status,
            StatusCode::OK
        );
        let authorize = format!(
            "/oauth2/authorize?response_type=code&client_id={}&redirect_uri={}&scope=openid&state=s&code_challenge={}&code_challenge_method=S256",
            rp.id,
            urlencode(REDIRECT),
            super::browser::CHALLENGE
        );
        let r = b.get(&authorize).await;
        assert!(
            r.location().starts_with("/login/mfa/step-up?request="),
            "{}",
            r.location()
        );
        let r = b.get(&format!("{authorize}&prompt=none")).await;
        let q = query(&r.location());
        assert_eq!(q["error"], "interaction_required");
        // The step-up page offers setting up a factor (the student has none).
        let first = b.get(&authorize).await;
        let step = b.follow(first).await;
        assert!(step.body.contains("Confirm it"), "{}", step.body);
    }
);

store_test!(
    refresh_stops_when_the_mfa_policy_changes_after_sign_in,
    |t: TestApp| async move {
        let pat = t.account("pat.plain").await;
        let rp = t.rp(false, true).await;
        let mut b = t.agent();
        let q = b.authorize(&rp, "", "pat.plain").await;
        let (s, tokens) = super::sso::exchange(&t, &rp, &q["code"]).await;
        assert_eq!(s, StatusCode::OK, "{tokens}");
        let r1 = tokens["refresh_token"].as_str().unwrap().to_string();
        let (s, second) = super::sso::refresh(&t, &rp, &r1).await;
        assert_eq!(s, StatusCode::OK, "{second}");
        let r2 = second["refresh_token"].as_str().unwrap().to_string();

        // A privileged role granted after the password-only sign-in: the grant's
        // refresh tokens stop; nothing was rotated, so the token is not spent.
        grant_hub_admin(&t, &pat).await;
        let (s, err) = super::sso::refresh(&t, &rp, &r2).await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{err}");
        assert_eq!(err["error"], "invalid_grant");
        assert!(
            err["error_description"]
                .as_str()
                .unwrap()
                .contains("second factor"),
            "{err}"
        );
        // Introspection agrees (RFC 7662 §2.2: not usable, so not active).
        assert_eq!(super::sso::introspect(&t, &rp, &r2).await["active"], false);

        // The role ends: the same token works again (it was never spent).
        sqlx::query("DELETE FROM role_assignments WHERE subject = $1")
            .bind(format!("person:{pat}"))
            .execute(t.store().writer())
            .await
            .unwrap();
        assert_eq!(super::sso::introspect(&t, &rp, &r2).await["active"], true);
        let (s, third) = super::sso::refresh(&t, &rp, &r2).await;
        assert_eq!(s, StatusCode::OK, "{third}");
        let r3 = third["refresh_token"].as_str().unwrap().to_string();

        // The app is marked `mfa_required` after the grant: refused too.
        require_mfa_for(&t, &rp).await;
        let (s, err) = super::sso::refresh(&t, &rp, &r3).await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{err}");
        assert_eq!(err["error"], "invalid_grant");
    }
);
