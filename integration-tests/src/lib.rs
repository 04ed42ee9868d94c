//! End-to-end tests of the real `hms-ach` binary over real sockets. Each test says
//! which independent peer it uses. The binary comes from `HMS_ACH_BIN` or the
//! workspace's `target/debug/hms-ach` (`scripts/test.sh` builds it first).

pub mod browser;
pub mod oidc_peer;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

pub fn binary() -> PathBuf {
    if let Ok(p) = std::env::var("HMS_ACH_BIN") {
        return PathBuf::from(p);
    }
    let p = workspace().join("target/debug/hms-ach");
    assert!(
        p.exists(),
        "build the binary first: cargo build -p hms-ach (or set HMS_ACH_BIN)"
    );
    p
}

pub fn workspace() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// A port that was free a moment ago on 127.0.0.1.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .unwrap_or(18_181)
}

pub const TEST_MASTER_KEY: &str = "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=";

/// `hms-ach` run in `dir` with a fixed test master key.
pub fn hub_command(dir: &Path) -> Command {
    let mut c = Command::new(binary());
    c.current_dir(dir)
        .env_remove("HMS_ACH_CONFIG")
        .env("HMS_ACH__KEYS__MASTER_KEY", TEST_MASTER_KEY);
    c
}

pub fn sqlite_url(dir: &Path) -> String {
    format!("sqlite://{}/hub.db", dir.display())
}

/// Installs the third-party peers (`peers/setup.sh`: npm, Chromium, the Python venv).
pub fn setup_peers() {
    let status = Command::new("bash")
        .arg(workspace().join("integration-tests/peers/setup.sh"))
        .status()
        .expect("run peers/setup.sh");
    assert!(
        status.success(),
        "installing the peers failed (needs npm, apt for chromium, PyPI)"
    );
}

/// `hms-ach client create --json ARGS…`: the registration as JSON.
pub fn client_json(dir: &Path, args: &[&str]) -> serde_json::Value {
    let url = sqlite_url(dir);
    let mut all = vec!["client", "create", "--database-url", &url, "--json"];
    all.extend_from_slice(args);
    let out = hub_command(dir)
        .args(&all)
        .output()
        .expect("run hms-ach client create");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("client create --json prints JSON")
}

/// Registers a client with the CLI; returns (client_id, client_secret).
pub fn create_client(dir: &Path, name: &str, role: &str, scopes: &[&str]) -> (String, String) {
    let mut args = vec![
        "--name",
        name,
        "--grant",
        "client_credentials",
        "--role",
        role,
    ];
    for s in scopes {
        args.push("--scope");
        args.push(s);
    }
    let v = client_json(dir, &args);
    (
        v["client_id"].as_str().unwrap_or_default().to_string(),
        v["client_secret"].as_str().unwrap_or_default().to_string(),
    )
}

/// A running hub, stopped (SIGKILL) when dropped unless [`Hub::stop`] ran.
pub struct Hub {
    pub base: String,
    child: Option<Child>,
}

impl Hub {
    /// Starts `hms-ach serve` on a free port with the SQLite database in `dir` and
    /// waits until `/readyz` answers 200. The log goes to `dir/hub.log`.
    pub async fn start(dir: &Path) -> Hub {
        Self::start_with_log(dir, "info").await
    }

    pub async fn start_with_log(dir: &Path, rust_log: &str) -> Hub {
        Self::start_with_env(dir, rust_log, &[]).await
    }

    /// `serve --demo`: the demo district seeded before serving.
    pub async fn start_demo(dir: &Path, env: &[(&str, &str)]) -> Hub {
        Self::launch(dir, "info", env, true, false, None).await
    }

    /// `serve --demo` on a port chosen beforehand (a peer that must know the hub's
    /// address before the hub starts).
    pub async fn start_demo_at(dir: &Path, port: u16, env: &[(&str, &str)]) -> Hub {
        Self::launch_on(dir, port, "info", env, true, false, None).await
    }

    /// `serve --demo` with the issuer `http://localhost:PORT`: WebAuthn (passkeys)
    /// refuses an IP address as the relying party id.
    pub async fn start_demo_localhost(dir: &Path, env: &[(&str, &str)]) -> Hub {
        Self::launch(dir, "info", env, true, true, None).await
    }

    /// The username the demo printed for a persona (e.g. "hub administrator").
    pub fn demo_username(dir: &Path, persona: &str) -> String {
        let out = std::fs::read_to_string(dir.join("hub.stdout")).expect("read hub.stdout");
        out.lines()
            .map(str::trim)
            .find_map(|l| {
                l.strip_prefix(persona)
                    .filter(|rest| rest.starts_with("  "))
                    .map(|rest| rest.trim().to_string())
            })
            .unwrap_or_else(|| panic!("no demo account for {persona:?} in:\n{out}"))
    }

    /// With extra `HMS_ACH__…` configuration in the environment.
    pub async fn start_with_env(dir: &Path, rust_log: &str, env: &[(&str, &str)]) -> Hub {
        Self::launch(dir, rust_log, env, false, false, None).await
    }

    /// With the open-file limit (soft and hard, `ulimit -n`) set to `limit`.
    pub async fn start_with_file_limit(dir: &Path, env: &[(&str, &str)], limit: u32) -> Hub {
        Self::launch(dir, "info", env, false, false, Some(limit)).await
    }

    async fn launch(
        dir: &Path,
        rust_log: &str,
        env: &[(&str, &str)],
        demo: bool,
        localhost: bool,
        file_limit: Option<u32>,
    ) -> Hub {
        Self::launch_on(dir, free_port(), rust_log, env, demo, localhost, file_limit).await
    }

    /// `serve` (with `--demo` when asked) on the database `database_url` (e.g. a
    /// PostgreSQL one that several hubs share); the log goes to `dir/hub.log`.
    pub async fn start_on_database(
        dir: &Path,
        database_url: &str,
        env: &[(&str, &str)],
        demo: bool,
    ) -> Hub {
        Self::launch_full(
            dir,
            database_url,
            free_port(),
            "info",
            env,
            demo,
            false,
            None,
        )
        .await
    }

    async fn launch_on(
        dir: &Path,
        port: u16,
        rust_log: &str,
        env: &[(&str, &str)],
        demo: bool,
        localhost: bool,
        file_limit: Option<u32>,
    ) -> Hub {
        let db = sqlite_url(dir);
        Self::launch_full(dir, &db, port, rust_log, env, demo, localhost, file_limit).await
    }

    #[allow(clippy::too_many_arguments)]
    async fn launch_full(
        dir: &Path,
        database_url: &str,
        port: u16,
        rust_log: &str,
        env: &[(&str, &str)],
        demo: bool,
        localhost: bool,
        file_limit: Option<u32>,
    ) -> Hub {
        let host = if localhost { "localhost" } else { "127.0.0.1" };
        let base = format!("http://{host}:{port}");
        let log = std::fs::File::create(dir.join("hub.log")).expect("create hub.log");
        let out = std::fs::File::create(dir.join("hub.stdout")).expect("create hub.stdout");
        let mut cmd = match file_limit {
            None => hub_command(dir),
            // The shell lowers the limit, then becomes the hub (same pid, so `stop` works).
            Some(n) => {
                let mut c = Command::new("sh");
                c.current_dir(dir)
                    .env_remove("HMS_ACH_CONFIG")
                    .env("HMS_ACH__KEYS__MASTER_KEY", TEST_MASTER_KEY)
                    .args(["-c", &format!("ulimit -n {n} && exec \"$0\" \"$@\"")])
                    .arg(binary());
                c
            }
        };
        if localhost {
            cmd.env("HMS_ACH__SERVER__ISSUER", &base);
        }
        // `HMS_ACH__DATABASE__URL` in `env` picks the database (PostgreSQL, or a
        // SQLite file shared by two hubs); the flag would otherwise override it.
        let database = env
            .iter()
            .find(|(k, _)| *k == "HMS_ACH__DATABASE__URL")
            .map_or_else(|| database_url.to_string(), |(_, v)| v.to_string());
        let child = cmd
            .envs(env.iter().copied())
            .env("RUST_LOG", rust_log)
            .args([
                "serve",
                "--database-url",
                &database,
                "--bind",
                &format!("127.0.0.1:{port}"),
            ])
            .args(if demo { &["--demo"][..] } else { &[][..] })
            .stdout(Stdio::from(out))
            .stderr(Stdio::from(log))
            .spawn()
            .expect("start hms-ach serve");
        let hub = Hub {
            base,
            child: Some(child),
        };
        let http = reqwest::Client::new();
        for _ in 0..150 {
            if let Ok(r) = http.get(format!("{}/readyz", hub.base)).send().await {
                if r.status() == 200 {
                    return hub;
                }
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("the hub did not become ready at {}", hub.base);
    }

    /// SIGTERM, then waits: returns whether the process exited with status 0.
    pub async fn stop(mut self) -> bool {
        let Some(mut child) = self.child.take() else {
            return false;
        };
        // The shell's `kill` builtin: present even where procps is not installed.
        let sent = Command::new("sh")
            .args(["-c", &format!("kill -TERM {}", child.id())])
            .status()
            .map(|s| s.success())
            .unwrap_or(false);
        let exit = tokio::task::spawn_blocking(move || child.wait()).await;
        sent && matches!(exit, Ok(Ok(s)) if s.success())
    }
}

impl Drop for Hub {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// Runs a Node peer script from `target/peers/node` (copied there by `setup.sh`) and
/// checks it succeeded and printed `all checks passed`; returns its output.
pub async fn run_node(script: &str, args: Vec<String>, env: Vec<(String, String)>) -> String {
    let path = workspace().join("target/peers/node").join(script);
    let out = tokio::task::spawn_blocking(move || {
        Command::new("node").arg(path).args(args).envs(env).output()
    })
    .await
    .expect("join the node runner")
    .expect("run node");
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("all checks passed"), "{stdout}");
    stdout
}
