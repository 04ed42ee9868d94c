//! Third-party OAuth peers against the real binary. Peer: Python Authlib
//! (`OAuth2Session`, client_credentials with client_secret_basic and client_secret_post)
//! and joserfc verifying the access token against the JWKS; installed by
//! `peers/setup.sh` into target/peers/venv.

use integration_tests::{create_client, workspace, Hub};
use std::process::Command;

#[tokio::test]
async fn authlib_client_credentials_and_joserfc_verification() {
    let peers = workspace().join("integration-tests/peers");
    let setup = Command::new("bash")
        .arg(peers.join("setup.sh"))
        .status()
        .expect("run peers/setup.sh");
    assert!(
        setup.success(),
        "installing the Python peers failed (needs python3-venv and PyPI)"
    );
    let dir = tempfile::tempdir().unwrap();
    let (id, secret) = create_client(dir.path(), "lms", "auditor", &["orgs.read"]);
    // A second client registered for client_secret_post (the CLI's default is Basic).
    let post = integration_tests::client_json(
        dir.path(),
        &[
            "--name",
            "lms-post",
            "--grant",
            "client_credentials",
            "--role",
            "auditor",
            "--scope",
            "orgs.read",
            "--auth-method",
            "client_secret_post",
        ],
    );
    let post_id = post["client_id"].as_str().unwrap().to_string();
    let post_secret = post["client_secret"].as_str().unwrap().to_string();
    let hub = Hub::start(dir.path()).await;
    let python = workspace().join("target/peers/venv/bin/python");
    let out = tokio::task::spawn_blocking({
        let base = hub.base.clone();
        move || {
            Command::new(python)
                .arg(peers.join("authlib_client_credentials.py"))
                .args([&base, &id, &secret, &post_id, &post_secret])
                .output()
        }
    })
    .await
    .unwrap()
    .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("all checks passed"), "{stdout}");
}
