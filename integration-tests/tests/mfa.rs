//! Second factors and the MFA policy against the real binary, driven by peers nobody
//! here wrote:
//! - PyOTP computes the authenticator-app codes from the otpauth:// URI the hub shows;
//!   soft-webauthn (a software FIDO2 authenticator) tries passkeys the hub must refuse
//!   (no user verification; a foreign origin). `peers/mfa_peer.py` drives them.
//! - Debian `chromium` (playwright-core) with the DevTools virtual authenticator adds a
//!   passkey at sign-in, then signs in with it alone and as the second factor
//!   (`peers/passkey_browser.mjs`); and, with the role made passkey-only, a holder of an
//!   authenticator app confirms with its code and adds a passkey at sign-in
//!   (`peers/passkey_upgrade_browser.mjs`); screenshots under target/screenshots/mfa/.
//!
//! The demo's hub administrator holds a privileged role, so a password alone must not
//! sign them in; the demo's student needs nothing more until an app asks for it.

use integration_tests::{client_json as client, run_node, setup_peers, workspace, Hub};
use std::process::Command;

const DEMO_PASSWORD: &str = "riverside-demo-2026";

fn assert_steps(out: &std::process::Output, steps: &[&str]) {
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stdout}\n{stderr}");
    for s in steps {
        assert!(
            stdout.contains(&format!("ok {s}\n")),
            "step {s}:\n{stdout}\n{stderr}"
        );
    }
    assert!(stdout.contains("all checks passed"), "{stdout}");
}

#[tokio::test]
async fn pyotp_codes_recovery_codes_and_refused_soft_authenticators() {
    setup_peers();
    let dir = tempfile::tempdir().unwrap();
    let hub = Hub::start_demo_localhost(dir.path(), &[]).await;
    let admin = Hub::demo_username(dir.path(), "hub administrator");
    let student = Hub::demo_username(dir.path(), "student");
    let redirect = "http://127.0.0.1:9/callback";
    let base_args = [
        "--grant",
        "authorization_code",
        "--scope",
        "openid",
        "--redirect-uri",
        redirect,
        "--first-party",
    ];
    let plain = client(
        dir.path(),
        &[&["--name", "Gradebook"][..], &base_args[..]].concat(),
    );
    let strict = client(
        dir.path(),
        &[
            &["--name", "Health records", "--mfa-required"][..],
            &base_args[..],
        ]
        .concat(),
    );
    let hub_base = hub.base.clone();
    let out = tokio::task::spawn_blocking(move || {
        Command::new(workspace().join("target/peers/venv-mfa/bin/python"))
            .arg(workspace().join("integration-tests/peers/mfa_peer.py"))
            .args([
                hub_base.as_str(),
                &admin,
                &student,
                DEMO_PASSWORD,
                plain["client_id"].as_str().unwrap(),
                plain["client_secret"].as_str().unwrap(),
                redirect,
                strict["client_id"].as_str().unwrap(),
            ])
            .output()
            .expect("run mfa_peer.py")
    })
    .await
    .unwrap();
    assert_steps(
        &out,
        &[
            "privileged-password-alone-is-not-enough",
            "totp-enrolment-with-pyotp",
            "id-token-says-mfa",
            "recovery-codes",
            "used-totp-code-is-refused-once-used",
            "recovery-code-works-once",
            "too-many-wrong-codes-end-the-sign-in",
            "no-csrf-no-code",
            "soft-webauthn-without-user-verification-is-refused",
            "student-needs-no-second-factor",
            "mfa-required-app-steps-up",
            "acr-values-step-up",
        ],
    );
    let log = std::fs::read_to_string(dir.path().join("hub.log")).unwrap();
    assert!(!log.contains("otpauth://"), "no TOTP secret in the log");
    assert!(hub.stop().await);
}

#[tokio::test]
async fn chromium_virtual_authenticator_registers_and_uses_a_passkey() {
    setup_peers();
    let dir = tempfile::tempdir().unwrap();
    let hub = Hub::start_demo_localhost(dir.path(), &[]).await;
    let admin = Hub::demo_username(dir.path(), "hub administrator");
    let shots = workspace().join("target/screenshots/mfa");
    std::fs::create_dir_all(&shots).unwrap();
    let args = vec![
        hub.base.clone(),
        admin,
        DEMO_PASSWORD.to_string(),
        shots.display().to_string(),
    ];
    let script = workspace().join("target/peers/node/passkey_browser.mjs");
    let out =
        tokio::task::spawn_blocking(move || Command::new("node").arg(script).args(args).output())
            .await
            .unwrap()
            .expect("run node");
    assert_steps(
        &out,
        &[
            "password-alone-is-not-enough",
            "add-passkey-at-sign-in",
            "portal-lists-the-passkey",
            "passwordless-sign-in",
            "passkey-as-second-factor",
            "no-inline-script",
        ],
    );
    for name in [
        "mfa-enrol.png",
        "security.png",
        "signin-passkey.png",
        "mfa-passkey.png",
    ] {
        let bytes = std::fs::read(shots.join(name)).unwrap_or_else(|_| panic!("{name} missing"));
        assert_eq!(&bytes[1..4], b"PNG", "{name}");
        assert!(bytes.len() > 10_000, "{name}: {} bytes", bytes.len());
    }
    assert!(hub.stop().await);
}

/// A role made passkey-only whose holder has only an authenticator app: Chromium sets the
/// app up in the portal (phase `totp`), the admin API then makes the person a hub
/// administrator, and at the next sign-in the app's code lets them add a passkey
/// (virtual authenticator), which signs them in (`peers/passkey_upgrade_browser.mjs`).
#[tokio::test]
async fn chromium_holder_of_a_code_adds_the_passkey_their_role_now_needs() {
    setup_peers();
    let dir = tempfile::tempdir().unwrap();
    let hub =
        Hub::start_demo_localhost(dir.path(), &[("HMS_ACH__MFA__PRIVILEGED_ROLES", "passkey")])
            .await;
    let teacher = Hub::demo_username(dir.path(), "teacher");
    let shots = workspace().join("target/screenshots/mfa");
    let args = |phase: &[&str]| {
        let mut a = vec![
            hub.base.clone(),
            teacher.clone(),
            DEMO_PASSWORD.to_string(),
            shots.display().to_string(),
        ];
        a.extend(phase.iter().map(|s| s.to_string()));
        a
    };
    let out = run_node("passkey_upgrade_browser.mjs", args(&["totp"]), vec![]).await;
    assert!(
        out.contains("ok authenticator-app-set-up-in-the-portal\n"),
        "{out}"
    );
    let line = out.lines().find(|l| l.starts_with("secret=")).unwrap();
    let (secret, step) = line
        .strip_prefix("secret=")
        .unwrap()
        .split_once(" step=")
        .unwrap();

    // The district makes the teacher a hub administrator (a privileged role).
    let (id, key) =
        integration_tests::create_client(dir.path(), "role admin", "hub-admin", &["roles.write"]);
    let http = reqwest::Client::new();
    let token: serde_json::Value = http
        .post(format!("{}/oauth2/token", hub.base))
        .basic_auth(&id, Some(&key))
        .header("content-type", "application/x-www-form-urlencoded")
        .body("grant_type=client_credentials&scope=roles.write")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let granted = http
        .post(format!("{}/api/v1/users/tch-002/roles", hub.base))
        .bearer_auth(token["access_token"].as_str().unwrap())
        .json(&serde_json::json!({ "role": "hub-admin" }))
        .send()
        .await
        .unwrap();
    assert_eq!(granted.status(), 201, "{}", granted.text().await.unwrap());

    let out = run_node(
        "passkey_upgrade_browser.mjs",
        args(&["upgrade", secret, step]),
        vec![],
    )
    .await;
    for s in ["code-first-then-a-passkey", "passkey-added-signs-in"] {
        assert!(out.contains(&format!("ok {s}\n")), "{out}");
    }
    for name in ["upgrade-code.png", "upgrade-passkey.png"] {
        let bytes = std::fs::read(shots.join(name)).unwrap_or_else(|_| panic!("{name} missing"));
        assert_eq!(&bytes[1..4], b"PNG", "{name}");
    }
    assert!(hub.stop().await);
}
