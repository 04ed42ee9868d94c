//! In-process HTTP tests through a `TestApp` (`Router::oneshot`), each run against
//! SQLite and against PostgreSQL (`HMS_TEST_POSTGRES_URL`, a database of its own per
//! test, dropped afterwards).

mod attacks;
mod audit_log;
mod backchannel;
mod browser;
mod clients_api;
mod data_safety;
mod demo;
mod district_day;
mod error_forms;
mod every_page;
mod federation_throttle;
mod guard;
mod input_rule;
mod jobs;
mod mail;
mod mfa;
mod mfa_upgrade;
mod oidc_exact;
mod orgs;
mod outage;
mod outbox;
mod outbox_dispatch;
mod replicas;
mod request_binding;
mod saml_idp;
mod saml_refusals;
mod schema;
mod signin_backoff;
mod signin_pages;
mod sso;
mod sso_attacks;
mod sso_extras;
mod sso_races;
mod token;
mod users;

use axum::body::Body;
use axum::http::{header, HeaderMap, Method, Request, StatusCode};
use axum::Router;
use http_body_util::BodyExt;
use serde_json::Value;
use std::sync::Arc;
use std::time::Duration;
use tower::ServiceExt;

use crate::clock::{Clock, ManualClock};
use crate::config::{Config, Overrides};
use crate::store::Store;
use crate::{AppState, SystemClock};

/// The issuer every `TestApp` has unless a test asks for another.
const TEST_ISSUER: &str = "http://hub.test";

/// `HMS_ACH__…` pairs as the configuration loader takes them.
fn owned(env: &[(&str, &str)]) -> Vec<(String, String)> {
    env.iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// Removes the test's database when the test ends, passed or failed.
enum DbGuard {
    /// The test owns the whole server (see `outage`).
    None,
    Sqlite(std::path::PathBuf),
    Postgres {
        admin_url: String,
        name: String,
    },
}

impl Drop for DbGuard {
    fn drop(&mut self) {
        match self {
            DbGuard::None => {}
            DbGuard::Sqlite(path) => {
                for suffix in ["", "-wal", "-shm"] {
                    let _ = std::fs::remove_file(format!("{}{suffix}", path.display()));
                }
            }
            DbGuard::Postgres { admin_url, name } => {
                let (url, name) = (admin_url.clone(), name.clone());
                // Drop runs inside the test's runtime; use a thread with its own.
                let _ = std::thread::spawn(move || {
                    if let Ok(rt) = tokio::runtime::Builder::new_current_thread()
                        .enable_all()
                        .build()
                    {
                        rt.block_on(async {
                            sqlx::any::install_default_drivers();
                            if let Ok(mut c) =
                                <sqlx::AnyConnection as sqlx::Connection>::connect(&url).await
                            {
                                let _ = sqlx::Executor::execute(
                                    &mut c,
                                    format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)")
                                        .as_str(),
                                )
                                .await;
                            }
                        });
                    }
                })
                .join();
            }
        }
    }
}

pub struct TestApp {
    pub app: AppState,
    pub router: Router,
    pub clock: Arc<ManualClock>,
    url: String,
    _db: DbGuard,
}

/// Replaces the database name in a PostgreSQL URL.
fn with_database(url: &str, name: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut u) => {
            u.set_path(&format!("/{name}"));
            u.to_string()
        }
        Err(_) => url.to_string(),
    }
}

impl TestApp {
    pub async fn sqlite() -> TestApp {
        let (url, guard) = Self::sqlite_database();
        Self::start(&url, guard).await
    }

    /// A fresh SQLite file (removed with the guard).
    fn sqlite_database() -> (String, DbGuard) {
        let path = std::env::temp_dir().join(format!("hms-test-{}.db", uuid::Uuid::new_v4()));
        (
            format!("sqlite://{}", path.display()),
            DbGuard::Sqlite(path),
        )
    }

    /// A fresh database of either kind (`postgres`: false for SQLite).
    async fn database(postgres: bool) -> (String, DbGuard) {
        if postgres {
            Self::postgres_database().await
        } else {
            Self::sqlite_database()
        }
    }

    /// A fresh PostgreSQL database. Without `HMS_TEST_POSTGRES_URL` the test fails:
    /// a PostgreSQL test never reports "passed" without running. `scripts/test.sh`
    /// leaves these tests out (and says how many) when no server is reachable.
    pub async fn postgres() -> TestApp {
        let (url, guard) = Self::postgres_database().await;
        Self::start(&url, guard).await
    }

    /// A fresh PostgreSQL database (dropped with the guard).
    async fn postgres_database() -> (String, DbGuard) {
        let Ok(admin_url) = std::env::var("HMS_TEST_POSTGRES_URL") else {
            panic!(
                "this is a PostgreSQL test and HMS_TEST_POSTGRES_URL is not set: set it \
                 (postgres://postgres@127.0.0.1:5432/postgres), or run scripts/test.sh, \
                 which leaves the PostgreSQL tests out when no server is reachable"
            );
        };
        sqlx::any::install_default_drivers();
        let name = format!("hms_test_{}", uuid::Uuid::new_v4().simple());
        let mut admin = <sqlx::AnyConnection as sqlx::Connection>::connect(&admin_url)
            .await
            .unwrap_or_else(|e| panic!("cannot reach PostgreSQL at HMS_TEST_POSTGRES_URL: {e}"));
        sqlx::Executor::execute(&mut admin, format!("CREATE DATABASE \"{name}\"").as_str())
            .await
            .unwrap();
        let url = with_database(&admin_url, &name);
        (url, DbGuard::Postgres { admin_url, name })
    }

    /// SQLite with extra configuration, given as `HMS_ACH__…` variables.
    pub async fn sqlite_with(env: &[(&str, &str)]) -> TestApp {
        let (url, guard) = Self::sqlite_database();
        Self::start_with(&url, guard, &owned(env)).await
    }

    /// PostgreSQL with environment overrides, as `sqlite_with`.
    pub async fn postgres_with(env: &[(&str, &str)]) -> TestApp {
        let (url, guard) = Self::postgres_database().await;
        Self::start_with(&url, guard, &owned(env)).await
    }

    async fn start(url: &str, guard: DbGuard) -> TestApp {
        Self::start_with(url, guard, &[]).await
    }

    async fn start_with(url: &str, guard: DbGuard, env: &[(String, String)]) -> TestApp {
        Self::start_full(url, guard, env, None).await
    }

    /// Either database (`postgres`: false for SQLite) with a configuration file.
    pub async fn with_config_file(postgres: bool, file: &std::path::Path) -> TestApp {
        let (url, guard) = Self::database(postgres).await;
        Self::start_full(&url, guard, &[], Some(file)).await
    }

    async fn start_full(
        url: &str,
        guard: DbGuard,
        env: &[(String, String)],
        file: Option<&std::path::Path>,
    ) -> TestApp {
        Self::start_at(url, guard, env, file, TEST_ISSUER, SystemClock.now_ms()).await
    }

    /// Either database with a configuration file, at `issuer`, its clock at `start_ms`
    /// (for fixtures signed at a fixed time).
    pub async fn with_config_file_at(
        postgres: bool,
        file: &std::path::Path,
        issuer: &str,
        start_ms: i64,
    ) -> TestApp {
        let (url, guard) = Self::database(postgres).await;
        Self::start_at(&url, guard, &[], Some(file), issuer, start_ms).await
    }

    async fn start_at(
        url: &str,
        guard: DbGuard,
        env: &[(String, String)],
        file: Option<&std::path::Path>,
        issuer: &str,
        start_ms: i64,
    ) -> TestApp {
        let overrides = Overrides {
            database_url: Some(url.to_string()),
            issuer: Some(issuer.into()),
            bind: None,
        };
        let config = Config::load_from(file, env, &overrides).unwrap();
        let store = Store::connect(url, 4, config.database.connect_timeout())
            .await
            .unwrap();
        store.migrate().await.unwrap();
        let clock = Arc::new(ManualClock::new(start_ms));
        let app = AppState::build(config, store, clock.clone()).await.unwrap();
        let router = crate::build_router(app.clone());
        TestApp {
            app,
            router,
            clock,
            url: url.to_string(),
            _db: guard,
        }
    }

    /// The hub stopped (its connections closed) and started again on the same
    /// database: what survives is what was committed.
    pub async fn restart(self) -> TestApp {
        let TestApp {
            app,
            router,
            url,
            _db,
            ..
        } = self;
        app.store().close().await;
        drop(router);
        drop(app);
        Self::start_full(&url, _db, &[], None).await
    }

    pub fn store(&self) -> &Store {
        self.app.store()
    }

    /// Registers a client that sends its secret in the body (`client_secret_post`,
    /// as the helpers here do) and returns (id, secret).
    pub async fn client(
        &self,
        role: Option<&str>,
        org: Option<&str>,
        scopes: &[&str],
    ) -> (String, String) {
        self.client_using("client_secret_post", role, org, scopes)
            .await
    }

    /// Registers a client for the token endpoint authentication `method`.
    pub async fn client_using(
        &self,
        method: &str,
        role: Option<&str>,
        org: Option<&str>,
        scopes: &[&str],
    ) -> (String, String) {
        let new = crate::oidc::NewClient {
            name: "test".into(),
            grants: vec!["client_credentials".into()],
            scopes: scopes.iter().map(|s| s.to_string()).collect(),
            role: role.map(str::to_string),
            org: org.map(str::to_string),
            access_token_ttl_seconds: None,
            settings: crate::oidc::ClientSettings {
                token_endpoint_auth_method: method.into(),
                ..Default::default()
            },
        };
        let (c, secret) = self.register(new).await;
        (c.id, secret.unwrap())
    }

    /// Registers `new` as the system would (at the test clock's time) and returns
    /// the client and its secret, if it has one: the one place the tests call
    /// `oidc::create_client`.
    pub async fn register(
        &self,
        new: crate::oidc::NewClient,
    ) -> (crate::oidc::Client, Option<String>) {
        crate::oidc::create_client(
            self.store(),
            self.app.master_key(),
            self.clock.now_ms(),
            &crate::audit::Origin::system("test"),
            new,
        )
        .await
        .unwrap()
    }

    /// An access token, obtained through the token endpoint.
    pub async fn token(&self, role: Option<&str>, org: Option<&str>, scopes: &[&str]) -> String {
        let (id, secret) = self.client(role, org, scopes).await;
        let (status, _, body) = self
            .form(
                "/oauth2/token",
                &format!("grant_type=client_credentials&client_id={id}&client_secret={secret}"),
                None,
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        body["access_token"].as_str().unwrap().to_string()
    }

    pub async fn admin_token(&self) -> String {
        let scopes = crate::authz::known_scopes();
        let scopes: Vec<&str> = scopes.iter().map(String::as_str).collect();
        self.token(Some("hub-admin"), None, &scopes).await
    }

    pub async fn send(&self, req: Request<Body>) -> (StatusCode, HeaderMap, Value) {
        let resp = self.router.clone().oneshot(req).await.unwrap();
        let status = resp.status();
        let headers = resp.headers().clone();
        let bytes = resp.into_body().collect().await.unwrap().to_bytes();
        let body = serde_json::from_slice(&bytes)
            .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into()));
        (status, headers, body)
    }

    pub async fn form(
        &self,
        path: &str,
        body: &str,
        authorization: Option<&str>,
    ) -> (StatusCode, HeaderMap, Value) {
        let mut req = Request::builder()
            .method(Method::POST)
            .uri(path)
            .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded");
        if let Some(a) = authorization {
            req = req.header(header::AUTHORIZATION, a);
        }
        self.send(req.body(Body::from(body.to_string())).unwrap())
            .await
    }

    pub async fn call(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> (StatusCode, HeaderMap, Value) {
        let mut req = Request::builder().method(method).uri(path);
        if let Some(t) = token {
            req = req.header(header::AUTHORIZATION, format!("Bearer {t}"));
        }
        let body = match body {
            Some(v) => {
                req = req.header(header::CONTENT_TYPE, "application/json");
                Body::from(v.to_string())
            }
            None => Body::empty(),
        };
        self.send(req.body(body).unwrap()).await
    }

    pub async fn audit_rows(&self, action: &str) -> Vec<crate::audit::AuditEvent> {
        let filter = crate::audit::AuditFilter {
            action: Some(action.into()),
            limit: 200,
            ..Default::default()
        };
        crate::audit::list_events(self.store(), &filter)
            .await
            .unwrap()
    }
}

/// An `Authorization: Basic` header (client_secret_basic, RFC 6749 §2.3.1).
pub fn basic_auth(id: &str, secret: &str) -> String {
    use base64::Engine;
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{id}:{secret}"))
    )
}

/// Defines `mod $name { sqlite(), postgres() }`: one test body, both databases.
/// One test body on both databases: `store_test!(name, |t: TestApp| …)`, or with
/// configuration as `HMS_ACH__…` variables: `store_test!(name, &[("K", "V")], |t| …)`.
macro_rules! store_test {
    ($name:ident, $env:expr, $body:expr) => {
        mod $name {
            #[allow(unused_imports)]
            use super::*;
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                let t = $crate::tests::TestApp::sqlite_with($env).await;
                ($body)(t).await;
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                let t = $crate::tests::TestApp::postgres_with($env).await;
                ($body)(t).await;
            }
        }
    };
    ($name:ident, $body:expr) => {
        mod $name {
            #[allow(unused_imports)]
            use super::*;
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                let t = $crate::tests::TestApp::sqlite().await;
                ($body)(t).await;
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                let t = $crate::tests::TestApp::postgres().await;
                ($body)(t).await;
            }
        }
    };
}
pub(crate) use store_test;

/// The district IdP's metadata used by the SAML fixtures (`bench/saml/fixture/`).
pub fn fixture_idp_metadata() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("bench/saml/fixture/idp-metadata.xml")
}

/// A configuration file `hms-ach.toml` holding `toml`, in a folder of its own that
/// is removed with the returned guard.
pub fn config_file(toml: &str) -> (tempfile::TempDir, std::path::PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("hms-ach.toml");
    std::fs::write(&file, toml).unwrap();
    (dir, file)
}

/// `[[federation.saml_idps]]` for the fixture IdP as "District SSO" (id `district`),
/// followed by `extra` lines of that table (e.g. `email_domains = […]`).
pub fn district_idp_toml(extra: &str) -> String {
    format!(
        "[[federation.saml_idps]]\nid = \"district\"\ndisplay_name = \"District SSO\"\nmetadata_file = \"{}\"\n{extra}",
        fixture_idp_metadata().display()
    )
}

/// A small tree: district → school → department, and a second school.
pub async fn seed_orgs(t: &TestApp, token: &str) {
    for (sid, kind, parent) in [
        ("d1", "district", None),
        ("s1", "school", Some("d1")),
        ("s2", "school", Some("d1")),
        ("dep1", "department", Some("s1")),
    ] {
        let mut body =
            serde_json::json!({ "sourcedId": sid, "kind": kind, "name": format!("Org {sid}") });
        if let Some(p) = parent {
            body["parent"] = p.into();
        }
        let (s, _, b) = t
            .call(Method::POST, "/api/v1/orgs", Some(token), Some(body))
            .await;
        assert!(s == StatusCode::CREATED || s == StatusCode::OK, "{b}");
    }
}
