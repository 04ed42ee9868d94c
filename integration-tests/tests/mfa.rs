//! Second factors and the MFA policy against the real binary, driven by peers nobody
//! here wrote:
//! - PyOTP computes the authenticator-app codes from the otpauth:// URI the hub shows;
//!   soft-webauthn (a software FIDO2 authenticator) tries passkeys the hub must refuse
//!   (no user verification; a foreign origin). `peers/mfa_peer.py` drives them.
//! - Debian `chromium` (playwright-core) with the DevTools virtual authenticator adds a
//!   passkey at sign-in, then signs in with it alone and as the second factor
//!   (`peers/passkey_browser.mjs`); screenshots under target/screenshots/mfa/.
//!
//! The demo's hub administrator holds a privileged role, so a password alone must not
//! sign them in; the demo's student needs nothing more until an app asks for it.

use integration_tests::{client_json as client, setup_peers, workspace, Hub};
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
