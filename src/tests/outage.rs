//! The database goes away under the hub (issue 13): a PostgreSQL server the test
//! runs itself (`initdb`/`pg_ctl` on a private port) is stopped, then frozen with
//! SIGSTOP. Valid tokens are never called invalid, writes and the token endpoint
//! answer 503 with `Retry-After`, introspection never says "inactive" because it
//! could not look, `/readyz` says why, and the hub recovers without a restart.

use super::*;
use std::path::PathBuf;
use std::process::Command;
use std::time::Instant;

/// A PostgreSQL server of the test's own. PostgreSQL refuses to run as root, so
/// as root it runs as `nobody` (through `runuser`).
struct PrivatePostgres {
    dir: PathBuf,
    bin: PathBuf,
    port: u16,
}

impl PrivatePostgres {
    fn start() -> PrivatePostgres {
        let bin = std::fs::read_dir("/usr/lib/postgresql")
            .ok()
            .and_then(|d| d.filter_map(Result::ok).map(|e| e.path().join("bin")).find(|p| p.join("initdb").exists()))
            .expect("the outage test needs PostgreSQL's server binaries (Debian: postgresql) for initdb and pg_ctl");
        let dir = std::env::temp_dir().join(format!("hms-pg-{}", uuid::Uuid::new_v4().simple()));
        std::fs::create_dir_all(&dir).unwrap();
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let pg = PrivatePostgres { dir, bin, port };
        if is_root() {
            let ok = Command::new("chown")
                .args(["-R", "nobody", pg.dir.to_str().unwrap()])
                .status()
                .unwrap();
            assert!(ok.success());
        }
        pg.run(
            "initdb",
            &[
                "-D",
                &pg.data(),
                "-A",
                "trust",
                "-U",
                "postgres",
                "--no-sync",
            ],
        );
        pg.ctl("start");
        pg
    }

    fn data(&self) -> String {
        self.dir.join("data").display().to_string()
    }

    fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }

    fn run(&self, tool: &str, args: &[&str]) {
        let exe = self.bin.join(tool);
        let out = if is_root() {
            Command::new("runuser")
                .args(["-u", "nobody", "--"])
                .arg(&exe)
                .args(args)
                .output()
        } else {
            Command::new(&exe).args(args).output()
        }
        .unwrap();
        assert!(
            out.status.success(),
            "{tool}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    fn ctl(&self, action: &str) {
        let opts = format!(
            "-p {} -k {} -c listen_addresses=127.0.0.1 -c fsync=off",
            self.port,
            self.dir.display()
        );
        let log = self.dir.join("pg.log").display().to_string();
        match action {
            "start" => self.run(
                "pg_ctl",
                &["-D", &self.data(), "-l", &log, "-o", &opts, "-w", "start"],
            ),
            _ => self.run("pg_ctl", &["-D", &self.data(), "-m", "fast", "-w", "stop"]),
        }
    }

    /// The postmaster and every backend it forked.
    fn processes(&self) -> Vec<String> {
        // No file: the server is stopped.
        let Ok(pid) = std::fs::read_to_string(self.dir.join("data/postmaster.pid")) else {
            return Vec::new();
        };
        let pid = pid.lines().next().unwrap_or_default().trim().to_string();
        let children =
            std::fs::read_to_string(format!("/proc/{pid}/task/{pid}/children")).unwrap_or_default();
        std::iter::once(pid)
            .chain(children.split_whitespace().map(str::to_string))
            .collect()
    }

    fn signal(&self, sig: &str) {
        for p in self.processes() {
            let _ = Command::new("kill").args([sig, &p]).status();
        }
    }
}

impl Drop for PrivatePostgres {
    fn drop(&mut self) {
        self.signal("-CONT");
        let _ = Command::new(self.bin.join("pg_ctl"))
            .args(["-D", &self.data(), "-m", "immediate", "stop"])
            .output();
        if is_root() {
            let _ = Command::new("runuser")
                .args(["-u", "nobody", "--"])
                .arg(self.bin.join("pg_ctl"))
                .args(["-D", &self.data(), "-m", "immediate", "stop"])
                .output();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .map(|o| o.stdout.starts_with(b"0\n"))
        .unwrap_or(false)
}

/// What every request must answer while the database is away.
async fn check_outage(
    t: &TestApp,
    admin: &str,
    user_path: &str,
    client: &(String, String),
    own_token: &str,
    what: &str,
) {
    // A valid token on the admin API: 503, never 401.
    let (s, h, b) = t.call(Method::GET, user_path, Some(admin), None).await;
    assert_eq!(
        s,
        StatusCode::SERVICE_UNAVAILABLE,
        "{what}: GET with a valid token: {b}"
    );
    assert!(h.contains_key(header::RETRY_AFTER), "{what}");
    assert_eq!(
        h[header::CONTENT_TYPE],
        "application/problem+json",
        "{what}"
    );
    // A write: 503 problem+json.
    let (s, _, b) = t
        .call(Method::POST, "/api/v1/users", Some(admin), Some(serde_json::json!({"sourcedId": "during", "kinds": ["staff"], "givenName": "D", "familyName": "U"})))
        .await;
    assert_eq!(s, StatusCode::SERVICE_UNAVAILABLE, "{what}: write: {b}");
    // The token endpoint: a JSON error the client can retry.
    let (id, secret) = client;
    let (s, h, b) = t
        .form(
            "/oauth2/token",
            &format!("grant_type=client_credentials&client_id={id}&client_secret={secret}"),
            None,
        )
        .await;
    assert_eq!(
        s,
        StatusCode::SERVICE_UNAVAILABLE,
        "{what}: token endpoint: {b}"
    );
    assert_eq!(b["error"], "temporarily_unavailable", "{what}: {b}");
    assert!(h.contains_key(header::RETRY_AFTER), "{what}");
    // Introspection of a valid token: never "inactive" because it could not look.
    let (s, _, b) = t
        .form(
            "/oauth2/introspect",
            &format!("token={own_token}&client_id={id}&client_secret={secret}"),
            None,
        )
        .await;
    assert_eq!(
        s,
        StatusCode::SERVICE_UNAVAILABLE,
        "{what}: introspection: {b}"
    );
    assert_ne!(b["active"], false, "{what}");
    let (s, _, b) = t
        .send(Request::get("/readyz").body(Body::empty()).unwrap())
        .await;
    assert_eq!(s, StatusCode::SERVICE_UNAVAILABLE, "{what}: readyz {b}");
    assert!(
        b["detail"]
            .as_str()
            .unwrap()
            .starts_with("not ready: database"),
        "{b}"
    );
}

/// Polls until a read with the token answers 200; returns how long that took.
async fn recovery(t: &TestApp, admin: &str, user_path: &str) -> Duration {
    let began = Instant::now();
    loop {
        let (s, _, _) = t.call(Method::GET, user_path, Some(admin), None).await;
        if s == StatusCode::OK {
            return began.elapsed();
        }
        assert!(
            began.elapsed() < Duration::from_secs(60),
            "no recovery within 60 s (last {s})"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn database_stopped_and_frozen_answers_503_and_recovers() {
    let pg = PrivatePostgres::start();
    let url = pg.url();
    let env = vec![
        // A request stuck on a frozen database gives up well before the client does.
        (
            "HMS_ACH__SERVER__REQUEST_TIMEOUT_SECONDS".to_string(),
            "8".to_string(),
        ),
        // Clients are read from the store on every check, as after the cache expires.
        (
            "HMS_ACH__OAUTH__CLIENT_CACHE_SECONDS".to_string(),
            "0".to_string(),
        ),
    ];
    let t = TestApp::start_full(&url, DbGuard::None, &env, None).await;
    let admin = t.admin_token().await;
    seed_orgs(&t, &admin).await;
    let (s, _, p) = t
        .call(Method::POST, "/api/v1/users", Some(&admin), Some(serde_json::json!({"sourcedId": "o-1", "kinds": ["staff"], "givenName": "O", "familyName": "K"})))
        .await;
    assert_eq!(s, StatusCode::CREATED, "{p}");
    let user_path = format!("/api/v1/users/{}", p["id"].as_str().unwrap());
    let client = t.client(Some("hub-admin"), None, &["users.read"]).await;
    let (s, _, b) = t
        .form(
            "/oauth2/token",
            &format!(
                "grant_type=client_credentials&client_id={}&client_secret={}",
                client.0, client.1
            ),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{b}");
    let own_token = b["access_token"].as_str().unwrap().to_string();

    // Stopped.
    pg.ctl("stop");
    check_outage(&t, &admin, &user_path, &client, &own_token, "stopped").await;
    pg.ctl("start");
    let after_stop = recovery(&t, &admin, &user_path).await;

    // Frozen: the server holds its connections and answers nothing.
    pg.signal("-STOP");
    let frozen_at = Instant::now();
    check_outage(&t, &admin, &user_path, &client, &own_token, "frozen").await;
    let answered_within = frozen_at.elapsed();
    pg.signal("-CONT");
    let after_freeze = recovery(&t, &admin, &user_path).await;
    let (s, _, _) = t
        .send(Request::get("/readyz").body(Body::empty()).unwrap())
        .await;
    assert_eq!(s, StatusCode::OK);
    // Figures for BENCHMARKS.md (not pass/fail).
    eprintln!(
        "RECOVERY postgres stopped→started: {after_stop:?}; frozen→thawed: {after_freeze:?}; five checks answered while frozen in {answered_within:?}"
    );
}
