//! The CLI and the server on one SQLite file (issue 13): `client create` and `keys
//! rotate` run while the hub takes a stream of API writes. Both sides wait for the
//! write lock (a busy timeout, and write transactions that take the lock when they
//! begin), so no API write fails and no CLI command fails. Peer: `reqwest`.

use integration_tests::{create_client, hub_command, sqlite_url, Hub};
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn cli_and_server_share_one_sqlite_file_without_errors() {
    let dir = tempfile::tempdir().unwrap();
    let (id, secret) = create_client(
        dir.path(),
        "feed",
        "hub-admin",
        &["users.write", "users.read", "orgs.write"],
    );
    let hub = Hub::start(dir.path()).await;
    let http = reqwest::Client::new();
    let token: serde_json::Value = http
        .post(format!("{}/oauth2/token", hub.base))
        .basic_auth(&id, Some(&secret))
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let token = token["access_token"].as_str().unwrap().to_string();
    let r = http
        .post(format!("{}/api/v1/orgs", hub.base))
        .bearer_auth(&token)
        .json(&json!({"sourcedId": "d1", "kind": "district", "name": "D"}))
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success());

    // Eight writers, 60 creates each, while the CLI writes to the same file.
    let writers: Vec<_> = (0..8)
        .map(|w| {
            let (http, base, token) = (http.clone(), hub.base.clone(), token.clone());
            tokio::spawn(async move {
                let mut statuses = Vec::new();
                for i in 0..60 {
                    let r = http
                        .post(format!("{base}/api/v1/users"))
                        .bearer_auth(&token)
                        .json(&json!({"sourcedId": format!("w{w}-{i}"), "kinds": ["staff"], "givenName": "W", "familyName": "R"}))
                        .send()
                        .await
                        .unwrap();
                    statuses.push((format!("w{w}-{i}"), r.status().as_u16()));
                }
                statuses
            })
        })
        .collect();
    let url = sqlite_url(dir.path());
    let cli = tokio::task::spawn_blocking(move || {
        let mut failures = Vec::new();
        for i in 0..9 {
            let name = format!("cli-{i}");
            let args: Vec<&str> = if i % 3 == 2 {
                vec!["keys", "rotate", "--database-url", &url]
            } else {
                vec![
                    "client",
                    "create",
                    "--database-url",
                    &url,
                    "--name",
                    &name,
                    "--grant",
                    "client_credentials",
                    "--scope",
                    "users.read",
                ]
            };
            let out = hub_command(std::path::Path::new("."))
                .args(&args)
                .output()
                .unwrap();
            if !out.status.success() {
                failures.push(format!(
                    "{args:?}: {}",
                    String::from_utf8_lossy(&out.stderr)
                ));
            }
        }
        failures
    });
    let mut answers = Vec::new();
    for w in writers {
        answers.extend(w.await.unwrap());
    }
    let cli_failures = cli.await.unwrap();
    assert!(
        cli_failures.is_empty(),
        "CLI commands failed: {cli_failures:#?}"
    );
    let bad: Vec<_> = answers.iter().filter(|(_, s)| *s != 201).collect();
    assert!(
        bad.is_empty(),
        "{} of {} API writes were not created: {bad:?}",
        bad.len(),
        answers.len()
    );
    // And every acknowledged write is there.
    for (sid, _) in &answers {
        let r = http
            .get(format!("{}/api/v1/users/{sid}", hub.base))
            .bearer_auth(&token)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200, "{sid}");
    }
    assert!(hub.stop().await);
}
