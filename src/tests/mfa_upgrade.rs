//! A role made passkey-only (`mfa.privileged_roles = "passkey"`) whose holder has only an
//! authenticator app: the code proves it is them but signs nothing in; then, and only
//! then, they may add a passkey at sign-in. (The passkey itself is made by Chromium's
//! virtual authenticator in integration-tests/tests/mfa.rs; here the hub's side up to
//! the creation options, on both databases.)

use axum::http::StatusCode;

use super::browser::PASSWORD;
use super::*;
use crate::authn::totp::hotp;

const PASSKEY_ONLY: (&str, &str) = ("HMS_ACH__MFA__PRIVILEGED_ROLES", "passkey");

fn data_csrf(body: &str) -> String {
    let at = body.find("data-csrf=\"").expect("a data-csrf attribute") + 11;
    body[at..at + body[at..].find('"').unwrap()].to_string()
}

async fn code_proves_then_a_passkey_may_be_added(t: TestApp) {
    let id = t.account("ivy.admin").await;
    let en = crate::authn::totp::start_enrollment(&t.app, &id, "ivy.admin")
        .await
        .unwrap();
    let secret = super::mfa::base32_decode(&en.secret_base32);
    let code = |t: &TestApp| {
        let step = t.clock.now_ms().div_euclid(30_000) as u64;
        format!("{:06}", hotp(&secret, step))
    };
    assert!(crate::authn::totp::confirm_enrollment(
        &t.app,
        &id,
        &code(&t),
        &crate::audit::Origin::system("test")
    )
    .await
    .unwrap());
    super::mfa::grant_hub_admin(&t, &id).await;
    t.clock.advance_secs(30);

    let mut b = t.agent();
    let login = b.get("/login").await;
    let page = b.sign_in(&login, "ivy.admin", PASSWORD).await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.body.contains("First confirm it"), "{}", page.body);
    assert!(!page.body.contains("Ask the help desk"), "{}", page.body);
    // No passkey may be added before the code.
    let csrf = page.hidden("csrf");
    let early = b
        .post_json(
            "/login/mfa/enroll/passkey/options",
            &serde_json::json!({ "csrf": csrf }),
        )
        .await;
    assert_eq!(early.status, StatusCode::FORBIDDEN, "{}", early.body);

    let wrong = b
        .post(
            "/login/mfa/code",
            &[("csrf", &csrf), ("kind", "totp"), ("code", "000000")],
        )
        .await;
    assert_eq!(wrong.status, StatusCode::UNAUTHORIZED);
    let proven = b
        .post(
            "/login/mfa/code",
            &[("csrf", &csrf), ("kind", "totp"), ("code", &code(&t))],
        )
        .await;
    assert_eq!(proven.status, StatusCode::OK, "{}", proven.body);
    assert!(proven.body.contains("Now add a passkey"), "{}", proven.body);
    assert!(proven.body.contains("data-passkey=\"create\""));
    // The code signed nothing in.
    assert!(!b.cookies.contains_key("hms_session"));
    assert_eq!(b.get("/portal").await.location(), "/login");
    let options = b
        .post_json(
            "/login/mfa/enroll/passkey/options",
            &serde_json::json!({ "csrf": data_csrf(&proven.body) }),
        )
        .await;
    assert_eq!(options.status, StatusCode::OK, "{}", options.body);
    let v: serde_json::Value = serde_json::from_str(&options.body).unwrap();
    assert!(v["publicKey"]["challenge"].is_string(), "{v}");
    assert_eq!(t.audit_rows("auth.mfa.proven_for_passkey").await.len(), 1);
}

/// Recovery codes alone are something to prove, not nothing: no passkey before one of
/// them is used (a password alone must never add a factor to such an account).
async fn recovery_codes_only_prove_first(t: TestApp) {
    let id = t.account("rex.admin").await;
    let mut tx = t.store().begin().await.unwrap();
    let codes = crate::authn::recovery::issue(&mut tx, &t.app, &id)
        .await
        .unwrap();
    tx.commit().await.unwrap();
    super::mfa::grant_hub_admin(&t, &id).await;

    let mut b = t.agent();
    let login = b.get("/login").await;
    let page = b.sign_in(&login, "rex.admin", PASSWORD).await;
    assert!(page.body.contains("First confirm it"), "{}", page.body);
    assert!(page.body.contains("name=\"kind\" value=\"recovery\""));
    let csrf = page.hidden("csrf");
    for path in [
        "/login/mfa/enroll/passkey/options",
        "/login/mfa/enroll/passkey",
    ] {
        let r = b
            .post_json(path, &serde_json::json!({ "csrf": csrf }))
            .await;
        assert!(
            r.status == StatusCode::FORBIDDEN || r.status == StatusCode::UNPROCESSABLE_ENTITY,
            "{path}: {} {}",
            r.status,
            r.body
        );
    }
    let proven = b
        .post(
            "/login/mfa/code",
            &[("csrf", &csrf), ("kind", "recovery"), ("code", &codes[0])],
        )
        .await;
    assert!(proven.body.contains("Now add a passkey"), "{}", proven.body);
    let options = b
        .post_json(
            "/login/mfa/enroll/passkey/options",
            &serde_json::json!({ "csrf": data_csrf(&proven.body) }),
        )
        .await;
    assert_eq!(options.status, StatusCode::OK, "{}", options.body);
}

store_test!(
    passkey_after_code,
    &[PASSKEY_ONLY],
    code_proves_then_a_passkey_may_be_added
);

store_test!(
    passkey_after_recovery_code,
    &[PASSKEY_ONLY],
    recovery_codes_only_prove_first
);

/// Off (`passkey_after_code = false`): the page sends such a person to the help desk.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn passkey_after_code_can_be_turned_off() {
    let t =
        TestApp::sqlite_with(&[PASSKEY_ONLY, ("HMS_ACH__MFA__PASSKEY_AFTER_CODE", "false")]).await;
    let id = t.account("ola.admin").await;
    let mut tx = t.store().begin().await.unwrap();
    crate::authn::recovery::issue(&mut tx, &t.app, &id)
        .await
        .unwrap();
    tx.commit().await.unwrap();
    super::mfa::grant_hub_admin(&t, &id).await;
    let mut b = t.agent();
    let login = b.get("/login").await;
    let page = b.sign_in(&login, "ola.admin", PASSWORD).await;
    assert!(page.body.contains("Ask the help desk"), "{}", page.body);
    assert!(!page.body.contains("First confirm it"));
}
