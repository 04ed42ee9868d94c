//! Single sign-on against the real binary, driven by peers nobody here wrote:
//! - node `openid-client` (a certified OpenID relying-party library): discovery, code
//!   with PKCE, ID token validation against the JWKS, UserInfo, refresh rotation,
//!   introspection, a key rotation mid-grant (through `hms-ach keys rotate`),
//!   refresh-token reuse, revocation, RP-initiated logout;
//! - Debian `chromium` driven by `playwright-core`: the real sign-in, consent and
//!   portal pages, with screenshots saved under target/screenshots/sso/.
//!
//! Both are installed by `peers/setup.sh` (npm into target/peers/node; apt chromium).

use integration_tests::{
    client_json as client, hub_command, setup_peers, sqlite_url, workspace, Hub,
};
use std::path::Path;

const PASSWORD: &str = "correct horse battery staple";

fn set_password(dir: &Path, username: &str) {
    use std::io::Write;
    let mut child = hub_command(dir)
        .args([
            "user",
            "set-password",
            username,
            "--database-url",
            &sqlite_url(dir),
        ])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(format!("{PASSWORD}\n").as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[tokio::test]
async fn openid_client_library_runs_every_flow_against_the_hub() {
    setup_peers();
    let dir = tempfile::tempdir().unwrap();
    let hub = Hub::start_demo(dir.path(), &[("HMS_ACH__KEYS__PUBLISH_AHEAD_SECONDS", "3")]).await;
    set_password(dir.path(), "ana.diallo0");
    let port = integration_tests::free_port();
    let redirect = format!("http://127.0.0.1:{port}/cb");
    let bye = format!("http://127.0.0.1:{port}/bye");
    let c = client(
        dir.path(),
        &[
            "--name",
            "District LMS",
            "--grant",
            "authorization_code",
            "--grant",
            "refresh_token",
            "--scope",
            "openid",
            "--scope",
            "profile",
            "--scope",
            "email",
            "--scope",
            "offline_access",
            "--scope",
            "roles",
            "--redirect-uri",
            &redirect,
            "--post-logout-redirect-uri",
            &bye,
        ],
    );
    let rotate = serde_json::json!([
        integration_tests::binary(),
        "keys",
        "rotate",
        "--database-url",
        sqlite_url(dir.path())
    ])
    .to_string();
    let env = vec![
        ("HUB_ROTATE".to_string(), rotate),
        ("HUB_ROTATE_WAIT_MS".to_string(), "3500".to_string()),
        (
            "HMS_ACH__KEYS__PUBLISH_AHEAD_SECONDS".to_string(),
            "3".to_string(),
        ),
        (
            "HMS_ACH__KEYS__MASTER_KEY".to_string(),
            integration_tests::TEST_MASTER_KEY.to_string(),
        ),
    ];
    let args = vec![
        hub.base.clone(),
        c["client_id"].as_str().unwrap().to_string(),
        c["client_secret"].as_str().unwrap().to_string(),
        redirect,
        bye,
        "ana.diallo0".to_string(),
        PASSWORD.to_string(),
    ];
    let out = integration_tests::run_node("openid_client_flow.mjs", args, env).await;
    for step in [
        "discovery",
        "authorization-code-flow",
        "userinfo",
        "introspection",
        "refresh",
        "key-rotation",
        "refresh-token-reuse",
        "rp-initiated-logout",
    ] {
        assert!(out.contains(&format!("ok {step}")), "{out}");
    }
    assert!(hub.stop().await);
}

#[tokio::test]
async fn chromium_signs_in_through_the_real_pages() {
    setup_peers();
    let dir = tempfile::tempdir().unwrap();
    let hub = Hub::start_demo(dir.path(), &[]).await;
    set_password(dir.path(), "zoe.williams25");
    let port = integration_tests::free_port();
    let redirect = format!("http://127.0.0.1:{port}/callback");
    let c = client(
        dir.path(),
        &[
            "--name",
            "Nursing simulation app",
            "--public",
            "--grant",
            "authorization_code",
            "--scope",
            "openid",
            "--scope",
            "profile",
            "--scope",
            "email",
            "--redirect-uri",
            &redirect,
        ],
    );
    let shots = workspace().join("target/screenshots/sso");
    std::fs::create_dir_all(&shots).unwrap();
    let args = vec![
        hub.base.clone(),
        c["client_id"].as_str().unwrap().to_string(),
        redirect,
        "zoe.williams25".to_string(),
        PASSWORD.to_string(),
        shots.display().to_string(),
    ];
    integration_tests::run_node("browser_signin.mjs", args, vec![]).await;
    // The screenshots exist and are real PNGs of a sensible size.
    for name in [
        "signin.png",
        "signin-error.png",
        "consent.png",
        "portal.png",
        "sessions.png",
    ] {
        let bytes = std::fs::read(shots.join(name)).unwrap_or_else(|_| panic!("{name} missing"));
        assert_eq!(&bytes[1..4], b"PNG", "{name}");
        let (w, h) = (
            u32::from_be_bytes(bytes[16..20].try_into().unwrap()),
            u32::from_be_bytes(bytes[20..24].try_into().unwrap()),
        );
        assert!(
            w >= 800 && h >= 400 && bytes.len() > 10_000,
            "{name}: {w}x{h}, {} bytes",
            bytes.len()
        );
    }
    assert!(hub.stop().await);
}
