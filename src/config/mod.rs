//! One typed configuration tree, layered defaults → file → `HMS_ACH__SECTION__KEY`
//! environment variables → command-line flags, validated once at start.
//!
//! Unknown keys are errors (a typo must not silently fall back to a default): in a
//! file they are reported with the file name, line and column; in the environment
//! with the variable's name.

mod district;
mod durations;
mod federation;
mod federation_oidc;
mod jobs;
mod mail;
mod mfa;
mod outbox;
mod paths;
mod saml_apps;
mod server;
mod signin_throttle;
mod sources;

pub use district::{DistrictConfig, DistrictTimeZone};
pub use federation::{AttributeMapping, FederationConfig, LinkConfig, SamlIdpConfig};
pub use federation_oidc::{ClaimMapping, OidcIdpConfig, OidcLinkConfig};
pub use jobs::{job_name, parse_cron, JobsConfig};
pub use mail::{MailConfig, MailTls};
pub use mfa::MfaConfig;
pub use outbox::{NatsSinkConfig, OutboxConfig, RabbitSinkConfig, StartAt, WebhookSinkConfig};
pub use saml_apps::{SamlAppsConfig, SamlSpConfig, ATTRIBUTE_SOURCES};
pub use server::ServerConfig;
pub use signin_throttle::SigninThrottleConfig;

use serde::Deserialize;
use sources::{describe_toml_error, overlay_env};
use std::path::Path;

pub const ENV_PREFIX: &str = "HMS_ACH__";

#[derive(Debug, Clone, Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    pub server: ServerConfig,
    pub database: DatabaseConfig,
    pub keys: KeysConfig,
    pub oauth: OAuthConfig,
    pub auth: AuthConfig,
    pub federation: FederationConfig,
    pub mfa: MfaConfig,
    pub saml_apps: SamlAppsConfig,
    pub district: DistrictConfig,
    pub outbox: OutboxConfig,
    pub jobs: JobsConfig,
    pub mail: MailConfig,
    pub log: LogConfig,
}

#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DatabaseConfig {
    /// `sqlite://hms-ach.db` (default, created on first start) or `postgres://…`.
    pub url: String,
    pub max_connections: u32,
    pub connect_timeout_seconds: u64,
}

/// A PostgreSQL URL may carry a password: `{:?}` of the config shows it redacted.
impl std::fmt::Debug for DatabaseConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DatabaseConfig")
            .field("url", &crate::store::redact_url(&self.url))
            .field("max_connections", &self.max_connections)
            .field("connect_timeout_seconds", &self.connect_timeout_seconds)
            .finish()
    }
}

impl Default for DatabaseConfig {
    fn default() -> Self {
        Self {
            url: "sqlite://hms-ach.db".into(),
            max_connections: 10,
            connect_timeout_seconds: 5,
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct KeysConfig {
    /// Base64 of 32 random bytes. Encrypts signing keys at rest and keys client-secret
    /// digests. Without it a fixed development key is used, with a loud warning.
    pub master_key: Option<crate::crypto::Secret>,
    /// Algorithm of access tokens: `ES256` (default) or `RS256`.
    pub access_token_alg: String,
    /// Rotate the signing keys when the active one is this old (0: only by
    /// `hms-ach keys rotate`).
    pub rotate_after_days: i64,
    /// A new key is published in the JWKS this long before it signs anything, so
    /// relying parties that cache the JWKS (ours says `max-age=300`) have it in time.
    pub publish_ahead_seconds: i64,
}

impl Default for KeysConfig {
    fn default() -> Self {
        Self {
            master_key: None,
            access_token_alg: "ES256".into(),
            rotate_after_days: 90,
            publish_ahead_seconds: 600,
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct OAuthConfig {
    pub access_token_ttl_seconds: i64,
    /// How long a replica may use a client registration it read, before reading it again.
    /// Changes made on this replica take effect at once; on other replicas within this bound.
    pub client_cache_seconds: i64,
    /// Authorization codes are single use and short-lived (RFC 6749 §4.1.2 advises
    /// at most 10 minutes).
    pub code_ttl_seconds: i64,
    pub id_token_ttl_seconds: i64,
    /// Refresh tokens bound to the browser session (no `offline_access`) end with it;
    /// these bound each token's own life.
    pub refresh_token_ttl_seconds: i64,
    pub offline_refresh_token_ttl_seconds: i64,
    /// How long a person has to sign in and consent after the client sent them.
    pub auth_request_ttl_seconds: i64,
    /// Lifetime of a pushed authorization request's `request_uri` (RFC 9126 §2.2).
    pub par_ttl_seconds: i64,
}

impl Default for OAuthConfig {
    fn default() -> Self {
        Self {
            access_token_ttl_seconds: 900,
            client_cache_seconds: 5,
            code_ttl_seconds: 60,
            id_token_ttl_seconds: 3600,
            refresh_token_ttl_seconds: 86_400,
            offline_refresh_token_ttl_seconds: 30 * 86_400,
            auth_request_ttl_seconds: 900,
            par_ttl_seconds: 90,
        }
    }
}

/// Sign-in: password hashing, lockout and browser sessions.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AuthConfig {
    /// argon2id parameters (RFC 9106 §4; the defaults are OWASP's 19 MiB, t=2, p=1).
    pub argon2_memory_kib: u32,
    pub argon2_iterations: u32,
    pub argon2_parallelism: u32,
    pub min_password_length: usize,
    /// Second-factor codes and the current password on the change-password page
    /// (both need a session or a password already): after this many failures within
    /// `failure_window_seconds` they are refused for `lockout_seconds`. Passwords at
    /// sign-in are never locked: see `throttle`.
    pub max_failures: i64,
    pub failure_window_seconds: i64,
    pub lockout_seconds: i64,
    /// Sign-in attempts per source address per minute, per replica.
    pub attempts_per_ip_per_minute: u32,
    /// A browser session ends this long after sign-in, or after this long unused.
    pub session_ttl_seconds: i64,
    pub session_idle_seconds: i64,
    /// How password guessing at sign-in is slowed (`[auth.throttle]`).
    pub throttle: SigninThrottleConfig,
}

impl Default for AuthConfig {
    fn default() -> Self {
        Self {
            argon2_memory_kib: 19_456,
            argon2_iterations: 2,
            argon2_parallelism: 1,
            min_password_length: 12,
            max_failures: 5,
            failure_window_seconds: 900,
            lockout_seconds: 900,
            attempts_per_ip_per_minute: 30,
            session_ttl_seconds: 12 * 3600,
            session_idle_seconds: 2 * 3600,
            throttle: SigninThrottleConfig::default(),
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LogConfig {
    /// `pretty` for a terminal, `json` for a log pipeline.
    pub format: String,
    /// A tracing filter, e.g. `info` or `hms_ach=debug,info`. `RUST_LOG` wins when set.
    pub level: String,
}

impl Default for LogConfig {
    fn default() -> Self {
        Self {
            format: "pretty".into(),
            level: "info".into(),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("config file {path}: {message}")]
    File { path: String, message: String },
    #[error("environment variable {var}: {message}")]
    Env { var: String, message: String },
    #[error("invalid configuration: {0}")]
    Invalid(String),
}

/// Flags given on the command line; they override file and environment.
#[derive(Debug, Default, Clone)]
pub struct Overrides {
    pub bind: Option<String>,
    pub database_url: Option<String>,
    pub issuer: Option<String>,
}

impl Config {
    /// Loads defaults, then the file (if any), then the environment, then `overrides`,
    /// and validates the result.
    pub fn load(path: Option<&Path>, overrides: &Overrides) -> Result<Config, ConfigError> {
        let env: Vec<(String, String)> = std::env::vars()
            .filter(|(k, _)| k.starts_with(ENV_PREFIX))
            .collect();
        Self::load_from(path, &env, overrides)
    }

    pub fn load_from(
        path: Option<&Path>,
        env: &[(String, String)],
        overrides: &Overrides,
    ) -> Result<Config, ConfigError> {
        let mut tree = toml::Table::new();
        if let Some(path) = path {
            let shown = path.display().to_string();
            let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
                path: shown.clone(),
                source,
            })?;
            // Deserialize the file on its own first: toml's errors then carry the
            // line and column of an unknown key or a wrong type.
            toml::from_str::<Config>(&text).map_err(|e| ConfigError::File {
                path: shown.clone(),
                message: describe_toml_error(&e, &text),
            })?;
            tree = toml::from_str(&text).map_err(|e| ConfigError::File {
                path: shown,
                message: describe_toml_error(&e, &text),
            })?;
            // Relative to the file, not to wherever the hub was started from.
            let file = std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf());
            if let Some(dir) = file.parent() {
                paths::resolve_file_paths(&mut tree, dir);
            }
        }
        for (var, raw) in env {
            overlay_env(&mut tree, var, raw)?;
            // Check each variable alone so an error names the variable.
            let mut alone = toml::Table::new();
            overlay_env(&mut alone, var, raw)?;
            Config::deserialize(toml::Value::Table(alone)).map_err(|e| ConfigError::Env {
                var: var.clone(),
                message: e.to_string(),
            })?;
        }
        let mut config = Config::deserialize(toml::Value::Table(tree))
            .map_err(|e| ConfigError::Invalid(e.to_string()))?;
        if let Some(bind) = &overrides.bind {
            config.server.bind = bind.clone();
        }
        if let Some(url) = &overrides.database_url {
            config.database.url = url.clone();
        }
        if let Some(issuer) = &overrides.issuer {
            config.server.issuer = Some(issuer.clone());
        }
        config.validate()?;
        Ok(config)
    }

    /// The issuer without a trailing slash.
    pub fn issuer(&self) -> String {
        match &self.server.issuer {
            Some(i) => i.trim_end_matches('/').to_string(),
            None => format!("http://{}", self.server.bind),
        }
    }

    /// The IANA time zone scheduled jobs' cron expressions are read in:
    /// `[jobs] time_zone`, or the district's.
    pub fn jobs_time_zone(&self) -> String {
        self.jobs
            .time_zone
            .clone()
            .unwrap_or_else(|| self.district.time_zone.name().to_string())
    }

    /// The audience of access tokens for the admin API.
    pub fn api_audience(&self) -> String {
        format!("{}/api/v1", self.issuer())
    }

    pub fn validate(&self) -> Result<(), ConfigError> {
        let bad = |m: String| Err(ConfigError::Invalid(m));
        if self.server.bind.parse::<std::net::SocketAddr>().is_err() {
            return bad(format!(
                "server.bind = {:?} is not an address; write it as IP:PORT, e.g. 127.0.0.1:8080",
                self.server.bind
            ));
        }
        if let Some(issuer) = &self.server.issuer {
            match url::Url::parse(issuer) {
                Ok(u) if matches!(u.scheme(), "http" | "https") && u.query().is_none() && u.fragment().is_none() => {}
                _ => {
                    return bad(format!(
                        "server.issuer = {issuer:?} must be an http(s) URL without query or fragment (RFC 8414 §2), e.g. https://sso.district.example"
                    ))
                }
            }
        }
        let url = &self.database.url;
        if !(url.starts_with("sqlite:")
            || url.starts_with("postgres://")
            || url.starts_with("postgresql://"))
        {
            return bad(format!(
                "database.url = {:?} is not supported; use sqlite://FILE (e.g. sqlite://hms-ach.db) or postgres://USER@HOST:PORT/DB",
                crate::store::redact_url(url)
            ));
        }
        if self.database.max_connections == 0 {
            return bad("database.max_connections must be at least 1".into());
        }
        if let Some(key) = &self.keys.master_key {
            if crate::crypto::MasterKey::from_base64(key.expose()).is_none() {
                return bad("keys.master_key must be base64 of exactly 32 bytes; generate one with `head -c32 /dev/urandom | base64`".into());
            }
        }
        if !matches!(self.keys.access_token_alg.as_str(), "ES256" | "RS256") {
            return bad(format!(
                "keys.access_token_alg = {:?}: use ES256 or RS256",
                self.keys.access_token_alg
            ));
        }
        if !(60..=86_400).contains(&self.oauth.access_token_ttl_seconds) {
            return bad("oauth.access_token_ttl_seconds must be between 60 and 86400".into());
        }
        let ranges: [(&str, i64, i64, i64); 11] = [
            (
                "oauth.code_ttl_seconds",
                self.oauth.code_ttl_seconds,
                5,
                600,
            ),
            (
                "oauth.id_token_ttl_seconds",
                self.oauth.id_token_ttl_seconds,
                60,
                86_400,
            ),
            (
                "oauth.refresh_token_ttl_seconds",
                self.oauth.refresh_token_ttl_seconds,
                60,
                365 * 86_400,
            ),
            (
                "oauth.offline_refresh_token_ttl_seconds",
                self.oauth.offline_refresh_token_ttl_seconds,
                60,
                365 * 86_400,
            ),
            (
                "oauth.auth_request_ttl_seconds",
                self.oauth.auth_request_ttl_seconds,
                60,
                86_400,
            ),
            ("oauth.par_ttl_seconds", self.oauth.par_ttl_seconds, 5, 600),
            (
                "keys.rotate_after_days",
                self.keys.rotate_after_days,
                0,
                3650,
            ),
            (
                "keys.publish_ahead_seconds",
                self.keys.publish_ahead_seconds,
                0,
                7 * 86_400,
            ),
            ("auth.max_failures", self.auth.max_failures, 1, 100),
            (
                "auth.session_ttl_seconds",
                self.auth.session_ttl_seconds,
                60,
                30 * 86_400,
            ),
            (
                "auth.session_idle_seconds",
                self.auth.session_idle_seconds,
                60,
                30 * 86_400,
            ),
        ];
        for (name, value, lo, hi) in ranges {
            if !(lo..=hi).contains(&value) {
                return bad(format!("{name} = {value} must be between {lo} and {hi}"));
            }
        }
        let a = &self.auth;
        if argon2::Params::new(
            a.argon2_memory_kib,
            a.argon2_iterations,
            a.argon2_parallelism,
            None,
        )
        .is_err()
            || a.argon2_memory_kib < 8 * 1024
        {
            return bad("auth.argon2_memory_kib (at least 8192), argon2_iterations (at least 1) and argon2_parallelism (at least 1) must be valid argon2id parameters (RFC 9106 §4)".into());
        }
        if !(8..=128).contains(&a.min_password_length) {
            return bad("auth.min_password_length must be between 8 and 128".into());
        }
        if !(0..=300).contains(&self.oauth.client_cache_seconds) {
            return bad("oauth.client_cache_seconds must be between 0 and 300".into());
        }
        if !matches!(self.log.format.as_str(), "pretty" | "json") {
            return bad(format!(
                "log.format = {:?}: use pretty or json",
                self.log.format
            ));
        }
        self.server.validate()?;
        self.auth.throttle.validate()?;
        self.mfa.validate()?;
        self.outbox.validate()?;
        self.jobs.validate()?;
        self.saml_apps.validate()?;
        self.district.validate()?;
        self.mail.validate()?;
        self.federation.validate()
    }
}

/// The configuration from `HMS_ACH__…` pairs alone, as the tests of each section
/// load it; the error as its message.
#[cfg(test)]
pub(crate) fn load_env(env: &[(&str, &str)]) -> Result<Config, String> {
    let env: Vec<(String, String)> = env
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    Config::load_from(None, &env, &Overrides::default()).map_err(|e| e.to_string())
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use std::io::Write;

    fn write(text: &str) -> tempfile_path::TempPath {
        tempfile_path::TempPath::with(text)
    }

    mod tempfile_path {
        pub struct TempPath(pub std::path::PathBuf);
        impl TempPath {
            pub fn with(text: &str) -> Self {
                let p = std::env::temp_dir().join(format!("hms-cfg-{}.toml", uuid::Uuid::new_v4()));
                let mut f = std::fs::File::create(&p).unwrap();
                super::Write::write_all(&mut f, text.as_bytes()).unwrap();
                Self(p)
            }
        }
        impl Drop for TempPath {
            fn drop(&mut self) {
                let _ = std::fs::remove_file(&self.0);
            }
        }
    }

    /// A logged or printed `Config` must not carry a secret: the master key prints
    /// as `Secret(…)` and a database password as `***`.
    #[test]
    fn debug_of_the_config_prints_no_secret() {
        let key = "c2VjcmV0LXNlY3JldC1zZWNyZXQtc2VjcmV0LTMyYiE=";
        let env = [
            ("HMS_ACH__KEYS__MASTER_KEY".to_string(), key.to_string()),
            (
                "HMS_ACH__DATABASE__URL".to_string(),
                "postgres://hub:pa55word@db.example:5432/hub".to_string(),
            ),
        ];
        let c = Config::load_from(None, &env, &Overrides::default()).unwrap();
        assert_eq!(c.keys.master_key.as_ref().unwrap().expose(), key);
        let shown = format!("{c:?}");
        assert!(!shown.contains(key), "{shown}");
        assert!(!shown.contains("c2VjcmV0"), "{shown}");
        assert!(!shown.contains("pa55word"), "{shown}");
        assert!(shown.contains("master_key: Some(Secret(…))"), "{shown}");
        assert!(shown.contains("hub:***@db.example"), "{shown}");
    }

    #[test]
    fn defaults_listen_locally_on_sqlite() {
        let c = Config::load_from(None, &[], &Overrides::default()).unwrap();
        assert_eq!(c.server.bind, "127.0.0.1:8080");
        assert_eq!(c.database.url, "sqlite://hms-ach.db");
        assert_eq!(c.issuer(), "http://127.0.0.1:8080");
    }

    #[test]
    fn unknown_key_in_file_names_file_and_line() {
        let f = write("[server]\nbind = \"127.0.0.1:9000\"\nbnid = \"x\"\n");
        let err = Config::load_from(Some(&f.0), &[], &Overrides::default())
            .unwrap_err()
            .to_string();
        assert!(err.contains(&f.0.display().to_string()), "{err}");
        assert!(err.contains("line 3"), "{err}");
        assert!(err.contains("bnid"), "{err}");
    }

    #[test]
    fn file_errors_do_not_quote_the_line() {
        let f = write("[keys]\nmaster-key = \"c2VjcmV0LXNlY3JldC1zZWNyZXQtc2VjcmV0LXNlY3I=\"\n");
        let err = Config::load_from(Some(&f.0), &[], &Overrides::default())
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("line 2") && err.contains("master-key"),
            "{err}"
        );
        assert!(
            !err.contains("c2VjcmV0"),
            "the value must not be echoed: {err}"
        );
    }

    #[test]
    fn env_overrides_file_and_flags_override_env() {
        let f =
            write("[server]\nbind = \"127.0.0.1:9000\"\n[oauth]\naccess_token_ttl_seconds = 600\n");
        let env = vec![
            (
                "HMS_ACH__SERVER__BIND".to_string(),
                "127.0.0.1:9100".to_string(),
            ),
            (
                "HMS_ACH__OAUTH__ACCESS_TOKEN_TTL_SECONDS".to_string(),
                "300".to_string(),
            ),
        ];
        let c = Config::load_from(Some(&f.0), &env, &Overrides::default()).unwrap();
        assert_eq!(c.server.bind, "127.0.0.1:9100");
        assert_eq!(c.oauth.access_token_ttl_seconds, 300);
        let flags = Overrides {
            bind: Some("127.0.0.1:9200".into()),
            ..Default::default()
        };
        let c = Config::load_from(Some(&f.0), &env, &flags).unwrap();
        assert_eq!(c.server.bind, "127.0.0.1:9200");
    }

    #[test]
    fn unknown_env_key_names_the_variable() {
        let env = vec![("HMS_ACH__SERVER__PORT".to_string(), "1".to_string())];
        let err = Config::load_from(None, &env, &Overrides::default())
            .unwrap_err()
            .to_string();
        assert!(err.contains("HMS_ACH__SERVER__PORT"), "{err}");
    }

    #[test]
    fn validation_says_what_to_fix() {
        let bad = |o: Overrides| Config::load_from(None, &[], &o).unwrap_err().to_string();
        assert!(bad(Overrides {
            bind: Some("localhost".into()),
            ..Default::default()
        })
        .contains("IP:PORT"));
        assert!(bad(Overrides {
            database_url: Some("mysql://x".into()),
            ..Default::default()
        })
        .contains("sqlite://"));
        assert!(bad(Overrides {
            issuer: Some("ftp://x".into()),
            ..Default::default()
        })
        .contains("http(s)"));
        let env = vec![(
            "HMS_ACH__KEYS__MASTER_KEY".to_string(),
            "c2hvcnQ=".to_string(),
        )];
        assert!(Config::load_from(None, &env, &Overrides::default())
            .unwrap_err()
            .to_string()
            .contains("32 bytes"));
    }
}
