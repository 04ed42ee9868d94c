//! `hms-ach client create` prints a secret only for clients that authenticate with
//! one (issue 14): a `private_key_jwt` client proves itself with its key and a public
//! client has nothing to keep, so neither gets a secret on screen or in `--json`.
//! Peer: none (the real binary's standard output).

use integration_tests::{client_json, hub_command, sqlite_url};

/// `client create` without `--json`: what an administrator sees.
fn create_text(dir: &std::path::Path, args: &[&str]) -> String {
    let url = sqlite_url(dir);
    let mut all = vec!["client", "create", "--database-url", &url];
    all.extend_from_slice(args);
    let out = hub_command(dir).args(&all).output().expect("run hms-ach");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn no_secret_is_printed_for_private_key_jwt_or_public_clients() {
    let dir = tempfile::tempdir().unwrap();
    let jwks = dir.path().join("keys.json");
    std::fs::write(
        &jwks,
        r#"{"keys":[{"kty":"EC","crv":"P-256","x":"f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU","y":"x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0"}]}"#,
    )
    .unwrap();
    let jwks = jwks.to_str().unwrap();
    let key_client = [
        "--name",
        "Key app",
        "--grant",
        "client_credentials",
        "--scope",
        "orgs.read",
        "--auth-method",
        "private_key_jwt",
        "--jwks-file",
        jwks,
    ];
    let public = [
        "--name",
        "SPA",
        "--grant",
        "authorization_code",
        "--scope",
        "openid",
        "--public",
        "--redirect-uri",
        "http://127.0.0.1:5173/cb",
    ];
    for args in [&key_client[..], &public[..]] {
        let text = create_text(dir.path(), args);
        assert!(text.contains("client_id:"), "{text}");
        assert!(
            !text.contains("secret"),
            "{args:?} printed a secret: {text}"
        );
        let json = client_json(dir.path(), args);
        assert!(json["client_id"].is_string(), "{json}");
        assert!(json.get("client_secret").is_none(), "{args:?}: {json}");
    }
    // A client_secret_basic client does get its secret, once.
    let text = create_text(
        dir.path(),
        &[
            "--name",
            "Feed",
            "--grant",
            "client_credentials",
            "--scope",
            "orgs.read",
        ],
    );
    assert!(text.contains("client_secret: "), "{text}");
}
