//! Email over a real SMTP server: aiosmtpd (PyPI, `peers/smtp_sink.py`) stands for the
//! district's mail relay and keeps every message it accepts. The real `hms-ach serve`
//! sends the security notices that real changes queue (`hms-ach user set-password`,
//! the admin's and the CLI's path), and each arrives exactly once — across a restart,
//! after a `kill -9` in the middle of a batch (duplicates then carry the same
//! Message-ID and are counted and reported), and with two hubs on one PostgreSQL
//! database.

use integration_tests::{hub_command, setup_peers, workspace, Hub};
use sha2::Digest;
use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

const FROM: &str = "Riverside Accounts <accounts@riverside.example>";

/// The SMTP sink, stopped when dropped.
struct Sink {
    child: Child,
    port: u16,
    out: PathBuf,
}

impl Drop for Sink {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start_sink(dir: &Path, extra: &[&str]) -> Sink {
    setup_peers();
    let port = integration_tests::free_port();
    let out = dir.join("received");
    let python = workspace().join("target/peers/venv/bin/python");
    let mut child = Command::new(python)
        .arg(workspace().join("integration-tests/peers/smtp_sink.py"))
        .args(["--port", &port.to_string(), "--out"])
        .arg(&out)
        .args(extra)
        .stdout(Stdio::piped())
        .stderr(Stdio::from(
            std::fs::File::create(dir.join("smtp.log")).unwrap(),
        ))
        .spawn()
        .expect("start the SMTP sink");
    let mut line = String::new();
    let stdout = child.stdout.take().unwrap();
    std::io::BufRead::read_line(&mut std::io::BufReader::new(stdout), &mut line).unwrap();
    assert!(
        line.starts_with("ready"),
        "the SMTP sink did not start: {line:?}"
    );
    Sink { child, port, out }
}

/// The hub's configuration: the sink as its SMTP server (plain: a local relay), the
/// district's branding, and cheap password hashing for the many CLI changes.
fn hub_env(sink: &Sink) -> Vec<(String, String)> {
    [
        ("HMS_ACH__MAIL__SMTP_HOST", "127.0.0.1".to_string()),
        ("HMS_ACH__MAIL__SMTP_PORT", sink.port.to_string()),
        ("HMS_ACH__MAIL__TLS", "none".into()),
        ("HMS_ACH__MAIL__TIMEOUT_SECONDS", "2".into()),
        ("HMS_ACH__MAIL__RETRY_BASE_SECONDS", "1".into()),
        ("HMS_ACH__MAIL__RETRY_MAX_SECONDS", "2".into()),
        ("HMS_ACH__MAIL__FROM", FROM.into()),
        ("HMS_ACH__DISTRICT__NAME", "Riverside Unified".into()),
        (
            "HMS_ACH__DISTRICT__SUPPORT_EMAIL",
            "help@riverside.example".into(),
        ),
        ("HMS_ACH__DISTRICT__TIME_ZONE", "America/Chicago".into()),
        ("HMS_ACH__AUTH__ARGON2_MEMORY_KIB", "8192".into()),
        ("HMS_ACH__AUTH__ARGON2_ITERATIONS", "1".into()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect()
}

fn borrowed(env: &[(String, String)]) -> Vec<(&str, &str)> {
    env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect()
}

/// `hms-ach user set-password USERNAME` with the password on standard input.
fn set_password(dir: &Path, db: &str, env: &[(String, String)], username: &str, password: &str) {
    let mut child = hub_command(dir)
        .envs(env.iter().map(|(k, v)| (k, v)))
        .args(["user", "set-password", username, "--database-url", db])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run hms-ach user set-password");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(format!("{password}\n").as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// What the sink received, as the standard library's parser read it.
fn received(sink: &Sink) -> Vec<serde_json::Value> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(&sink.out)
        .map(|d| d.filter_map(|e| e.ok().map(|e| e.path())).collect())
        .unwrap_or_default();
    files.retain(|p| p.extension().is_some_and(|e| e == "json"));
    files.sort();
    files
        .iter()
        .map(|p| serde_json::from_slice(&std::fs::read(p).unwrap()).unwrap())
        .collect()
}

fn message_id_of(m: &serde_json::Value) -> String {
    m["headers"]["Message-ID"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

/// The Message-ID the hub gives a notice (sha-256 of its key, first 16 bytes).
fn expected_message_id(notice_key: &str) -> String {
    let digest = sha2::Sha256::digest(notice_key.as_bytes());
    let hex: String = digest[..16].iter().map(|b| format!("{b:02x}")).collect();
    format!("<{hex}.notice@riverside.example>")
}

/// Polls the ledger through the admin API until nothing is pending; returns the
/// rows (state, notice key).
async fn wait_all_sent(base: &str, token: &str, at_least: usize) -> Vec<serde_json::Value> {
    let http = reqwest::Client::new();
    for _ in 0..600 {
        let mut all = Vec::new();
        let mut cursor: Option<String> = None;
        loop {
            let mut url = format!("{base}/api/v1/mail?limit=200");
            if let Some(c) = &cursor {
                url.push_str(&format!("&cursor={c}"));
            }
            let resp = http.get(&url).bearer_auth(token).send().await.unwrap();
            assert_eq!(resp.status(), 200, "GET {url}");
            let page: serde_json::Value = resp.json().await.unwrap();
            all.extend(page["items"].as_array().cloned().unwrap_or_default());
            match page["nextCursor"].as_str() {
                Some(c) => cursor = Some(c.to_string()),
                None => break,
            }
        }
        if all.len() >= at_least && all.iter().all(|r| r["state"] == "sent") {
            return all;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("the mail outbox did not drain");
}

/// An admin API token from the demo's printed client.
async fn demo_token(dir: &Path, base: &str) -> String {
    let out = std::fs::read_to_string(dir.join("hub.stdout")).unwrap();
    let field = |name: &str| {
        out.lines()
            .find_map(|l| l.trim().strip_prefix(name).map(|v| v.trim().to_string()))
            .unwrap_or_else(|| panic!("no {name} in {out}"))
    };
    let (id, secret) = (field("client_id:"), field("client_secret:"));
    let v: serde_json::Value = reqwest::Client::new()
        .post(format!("{base}/oauth2/token"))
        .basic_auth(id, Some(secret))
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    v["access_token"].as_str().unwrap().to_string()
}

/// Message-ID → how many times the sink received it.
fn counts(sink: &Sink) -> BTreeMap<String, usize> {
    let mut c = BTreeMap::new();
    for m in received(sink) {
        *c.entry(message_id_of(&m)).or_insert(0) += 1;
    }
    c
}

fn assert_exactly_once(sink: &Sink, rows: &[serde_json::Value]) {
    let keys: BTreeSet<String> = rows
        .iter()
        .map(|r| expected_message_id(r["noticeKey"].as_str().unwrap()))
        .collect();
    let got = counts(sink);
    let twice: Vec<_> = got.iter().filter(|(_, n)| **n > 1).collect();
    assert!(twice.is_empty(), "received more than once: {twice:?}");
    assert_eq!(got.keys().cloned().collect::<BTreeSet<_>>(), keys);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_notice_arrives_once_with_headers_both_parts_and_the_link() {
    let dir = tempfile::tempdir().unwrap();
    let sink = start_sink(dir.path(), &["--fail-first", "1"]);
    let env = hub_env(&sink);
    let db = integration_tests::sqlite_url(dir.path());
    let hub = Hub::start_demo(dir.path(), &borrowed(&env)).await;
    let token = demo_token(dir.path(), &hub.base).await;
    let student = Hub::demo_username(dir.path(), "student");
    set_password(dir.path(), &db, &env, &student, "a brand new passphrase 1");
    // The demo's own password notices (queued as it seeded), and this one; the
    // first delivery was refused with a 451 and retried.
    let rows = wait_all_sent(&hub.base, &token, 2).await;
    assert_exactly_once(&sink, &rows);
    // The CLI's change is the last notice queued.
    let mine = rows
        .iter()
        .rev()
        .find(|r| r["template"] == "password-changed")
        .cloned()
        .unwrap();
    let id = expected_message_id(mine["noticeKey"].as_str().unwrap());
    let messages = received(&sink);
    let m = messages.iter().find(|m| message_id_of(m) == id).unwrap();
    let h = &m["headers"];
    let from = h["From"].as_str().unwrap_or_default();
    assert!(
        from.contains("Riverside Accounts") && from.contains("<accounts@riverside.example>"),
        "{from}"
    );
    assert_eq!(h["To"], mine["recipient"]);
    assert_eq!(m["rcpt_tos"][0], mine["recipient"]);
    assert_eq!(h["Subject"], "Your Riverside Unified password was changed");
    assert_eq!(h["Reply-To"], "help@riverside.example");
    assert!(
        h["Date"].as_str().is_some_and(|d| d.contains("+0000")),
        "{h}"
    );
    assert_eq!(m["content_type"], "multipart/alternative");
    let parts = m["parts"].as_array().unwrap();
    let types: Vec<&str> = parts.iter().map(|p| p["type"].as_str().unwrap()).collect();
    assert_eq!(types, ["text/plain", "text/html"]);
    let link = format!("{}/portal/security", hub.base);
    for p in parts {
        let body = p["content"].as_str().unwrap();
        assert!(body.contains("Riverside Unified"), "{body}");
        assert!(body.contains(&link), "{body}");
        assert!(
            body.contains("An administrator set a new password"),
            "{body}"
        );
    }
    assert!(parts[1]["content"]
        .as_str()
        .unwrap()
        .contains(&format!("href=\"{link}\"")));
    let smtp_log = std::fs::read_to_string(dir.path().join("hub.log")).unwrap();
    assert!(smtp_log.contains("will retry"), "the 451 was retried");

    // A restart (and the demo seeding again) sends nothing again.
    let before = received(&sink).len();
    assert!(hub.stop().await, "clean shutdown");
    let hub = Hub::start_demo(dir.path(), &borrowed(&env)).await;
    let token = demo_token(dir.path(), &hub.base).await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(
        received(&sink).len(),
        before,
        "nothing sent twice after a restart"
    );
    let rows = wait_all_sent(&hub.base, &token, 2).await;
    assert_exactly_once(&sink, &rows);
    let log = std::fs::read_to_string(dir.path().join("hub.log")).unwrap();
    assert!(
        !log.contains("a brand new passphrase"),
        "no password in the log"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hub_killed_mid_batch_loses_nothing_and_duplicates_keep_their_message_id() {
    let dir = tempfile::tempdir().unwrap();
    // Slow acceptance, so the kill lands in the middle of the batch.
    let sink = start_sink(dir.path(), &["--delay", "0.15"]);
    let env = hub_env(&sink);
    let db = integration_tests::sqlite_url(dir.path());
    let hub = Hub::start_demo(dir.path(), &borrowed(&env)).await;
    let token = demo_token(dir.path(), &hub.base).await;
    wait_all_sent(&hub.base, &token, 1).await;
    assert!(hub.stop().await);
    // Forty password changes queue forty notices while the hub is down.
    let teacher = Hub::demo_username(dir.path(), "teacher");
    for i in 0..40 {
        set_password(
            dir.path(),
            &db,
            &env,
            &teacher,
            &format!("passphrase number {i:03}"),
        );
    }
    let first = received(&sink).len();
    let hub = Hub::start_demo(dir.path(), &borrowed(&env)).await;
    for _ in 0..200 {
        if received(&sink).len() >= first + 10 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    drop(hub); // SIGKILL
    let at_kill = received(&sink).len();
    assert!(
        at_kill < first + 40,
        "killed before the batch was done ({at_kill})"
    );
    // The leases of the dead process run out (3 × timeout + 10 s), then a new one sends
    // the rest.
    let hub = Hub::start_demo(dir.path(), &borrowed(&env)).await;
    let token = demo_token(dir.path(), &hub.base).await;
    let rows = wait_all_sent(&hub.base, &token, 41).await;
    let got = counts(&sink);
    let mut duplicates = 0;
    for r in &rows {
        let id = expected_message_id(r["noticeKey"].as_str().unwrap());
        let n = got.get(&id).copied().unwrap_or(0);
        assert!(n >= 1, "{} was never received", r["noticeKey"]);
        if n > 1 {
            duplicates += n - 1;
            println!("duplicate: {id} received {n} times (same Message-ID)");
        }
    }
    println!(
        "{} notices, {duplicates} duplicate deliveries after kill -9",
        rows.len()
    );
    assert_eq!(
        got.len(),
        rows.len(),
        "nothing received that the ledger does not know"
    );
    assert!(
        duplicates <= 1,
        "at most the message in flight at the kill: {duplicates}"
    );
    drop(hub);
}

/// PostgreSQL: a database of its own, dropped at the end.
struct PgDatabase {
    admin: String,
    name: String,
}

impl PgDatabase {
    fn create() -> PgDatabase {
        let admin = std::env::var("HMS_TEST_POSTGRES_URL")
            .expect("HMS_TEST_POSTGRES_URL must name a PostgreSQL server for this test");
        let name = format!("hms_mail_{}", std::process::id());
        let ok = Command::new("psql")
            .args([
                &admin,
                "-q",
                "-c",
                &format!("DROP DATABASE IF EXISTS {name}"),
                "-c",
                &format!("CREATE DATABASE {name}"),
            ])
            .status()
            .expect("run psql")
            .success();
        assert!(ok, "creating the test database");
        PgDatabase { admin, name }
    }

    fn url(&self) -> String {
        match self.admin.rsplit_once('/') {
            Some((server, _)) => format!("{server}/{}", self.name),
            None => panic!("HMS_TEST_POSTGRES_URL has no database part"),
        }
    }
}

impl Drop for PgDatabase {
    fn drop(&mut self) {
        let _ = Command::new("psql")
            .args([
                &self.admin,
                "-q",
                "-c",
                &format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name),
            ])
            .status();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_hubs_on_one_postgres_database_send_each_notice_once() {
    let pg = PgDatabase::create();
    let db = pg.url();
    let dir = tempfile::tempdir().unwrap();
    let (a_dir, b_dir) = (dir.path().join("a"), dir.path().join("b"));
    std::fs::create_dir_all(&a_dir).unwrap();
    std::fs::create_dir_all(&b_dir).unwrap();
    let sink = start_sink(dir.path(), &["--delay", "0.02"]);
    let env = hub_env(&sink);
    let a = Hub::start_on_database(&a_dir, &db, &borrowed(&env), true).await;
    let b = Hub::start_on_database(&b_dir, &db, &borrowed(&env), false).await;
    let token = demo_token(&a_dir, &a.base).await;
    let teacher = Hub::demo_username(&a_dir, "teacher");
    for i in 0..30 {
        set_password(
            &a_dir,
            &db,
            &env,
            &teacher,
            &format!("passphrase number {i:03}"),
        );
    }
    // (The token's issuer is hub a's address: the API is asked there; both hubs'
    // workers send.)
    let rows = wait_all_sent(&a.base, &token, 31).await;
    assert_exactly_once(&sink, &rows);
    // Both replicas' workers ran (each logs its start); the ledger decided who sent.
    for d in [&a_dir, &b_dir] {
        let log = std::fs::read_to_string(d.join("hub.log")).unwrap();
        assert!(log.contains("email"), "{log}");
    }
    drop(a);
    drop(b);
}
