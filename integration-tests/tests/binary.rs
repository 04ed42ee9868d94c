//! The real binary: CLI, config errors, serve, token endpoint, JWKS, the API, audit
//! verify and graceful shutdown. Peers: `reqwest` as the HTTP client, `jsonwebtoken`
//! (an independent JOSE library) to verify tokens against the published JWKS,
//! `sqlx`'s SQLite driver to tamper with the audit table as an attacker would.

use integration_tests::{create_client, hub_command as hub, sqlite_url as db_url, Hub};

#[tokio::test]
async fn serve_issue_token_verify_with_jwks_call_api_and_shut_down() {
    let dir = tempfile::tempdir().unwrap();
    let (id, secret) = create_client(
        dir.path(),
        "sis-feed",
        "registrar",
        &["orgs.read", "orgs.write"],
    );
    assert_eq!(secret.len(), 43, "256-bit secret, base64url");
    // Debug logging, so the check below covers everything the hub can log.
    let server = Hub::start_with_log(dir.path(), "debug").await;
    let base = server.base.clone();
    let http = reqwest::Client::new();

    let resp = http
        .post(format!("{base}/oauth2/token"))
        .basic_auth(&id, Some(&secret))
        .header("content-type", "application/x-www-form-urlencoded")
        .body("grant_type=client_credentials&scope=orgs.write")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let token: serde_json::Value = resp.json().await.unwrap();
    let access = token["access_token"].as_str().unwrap();

    let jwks: jsonwebtoken::jwk::JwkSet = http
        .get(format!("{base}/oauth2/jwks"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let header = jsonwebtoken::decode_header(access).unwrap();
    let key =
        jsonwebtoken::DecodingKey::from_jwk(jwks.find(header.kid.as_deref().unwrap()).unwrap())
            .unwrap();
    let mut v = jsonwebtoken::Validation::new(header.alg);
    v.set_issuer(&[base.as_str()]);
    v.set_audience(&[format!("{base}/api/v1")]);
    let claims = jsonwebtoken::decode::<serde_json::Value>(access, &key, &v)
        .unwrap()
        .claims;
    assert_eq!(claims["scope"], "orgs.write");

    let resp = http
        .post(format!("{base}/api/v1/orgs"))
        .bearer_auth(access)
        .json(&serde_json::json!({"sourcedId": "d1", "kind": "district", "name": "Test District"}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 201);
    assert!(resp.headers().contains_key("x-request-id"));
    // orgs.write does not include orgs.read: the scope limits the token.
    let resp = http
        .get(format!("{base}/api/v1/orgs"))
        .bearer_auth(access)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 403);

    let metrics = http
        .get(format!("{base}/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(metrics.contains("hms_ach_tokens_issued_total"));

    // Graceful shutdown on SIGTERM, exit status 0.
    assert!(server.stop().await, "the hub exits 0 on SIGTERM");

    // The accept loop hands the peer address to the app (`ConnectInfo`): the audit
    // event of the org created above names the address the request came from.
    let pool = sqlx::SqlitePool::connect(&db_url(dir.path()))
        .await
        .unwrap();
    let ips: Vec<(String,)> =
        sqlx::query_as("SELECT source_ip FROM audit_events WHERE action = 'org.create'")
            .fetch_all(&pool)
            .await
            .unwrap();
    pool.close().await;
    assert!(!ips.is_empty(), "the org's creation was audited");
    assert!(ips.iter().all(|(ip,)| ip == "127.0.0.1"), "{ips:?}");

    // Neither the secret nor the token appears in the logs, even at debug level.
    let log = std::fs::read_to_string(dir.path().join("hub.log")).unwrap();
    assert!(log.contains("request"), "the log was captured: {log}");
    assert!(
        !log.contains(&secret),
        "the client secret leaked into the log"
    );
    assert!(
        !log.contains(access),
        "the access token leaked into the log"
    );
}

#[tokio::test]
async fn audit_verify_reports_an_edited_row() {
    let dir = tempfile::tempdir().unwrap();
    let url = db_url(dir.path());
    for name in ["a", "b", "c"] {
        create_client(dir.path(), name, "auditor", &["users.read"]);
    }
    let out = hub(dir.path())
        .args(["audit", "verify", "--database-url", &url])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("intact"));

    let pool = sqlx::SqlitePool::connect(&url).await.unwrap();
    sqlx::query("UPDATE audit_events SET details = '{\"name\":\"innocent\"}' WHERE seq = 3")
        .execute(&pool)
        .await
        .unwrap();
    pool.close().await;

    let out = hub(dir.path())
        .args(["audit", "verify", "--database-url", &url])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    assert!(
        stdout.contains("event 3") && stdout.contains("edited"),
        "{stdout}"
    );
}

#[test]
fn configuration_errors_say_what_to_fix() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("hms-ach.toml"),
        "[server]\nbind = \"127.0.0.1:8080\"\nbnid = \"typo\"\n",
    )
    .unwrap();
    let out = hub(dir.path())
        .args(["check-config", "--config", "hms-ach.toml"])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        err.contains("hms-ach.toml") && err.contains("line 3") && err.contains("bnid"),
        "{err}"
    );

    let out = hub(dir.path())
        .args(["migrate", "--database-url", "mysql://localhost/x"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("sqlite://"));

    let out = hub(dir.path())
        .args([
            "migrate",
            "--database-url",
            "postgres://nobody:hunter2@127.0.0.1:1/none",
        ])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(err.contains("PostgreSQL is running"), "{err}");
    assert!(!err.contains("hunter2"), "passwords are redacted: {err}");

    let out = hub(dir.path())
        .args([
            "client",
            "create",
            "--database-url",
            &db_url(dir.path()),
            "--name",
            "x",
            "--grant",
            "implicit",
            "--scope",
            "users.read",
        ])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        err.contains("--grant") && err.contains("client_credentials"),
        "{err}"
    );
}
