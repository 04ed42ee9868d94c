//! `[server]`: where the hub listens, what it calls itself, and how much one request or
//! one client may hold.
//!
//! ```toml
//! [server]
//! bind = "127.0.0.1:8080"
//! request_timeout_seconds = 30
//! header_read_timeout_seconds = 10   # a whole request head, or the connection is closed
//! keep_alive_idle_seconds = 75       # above the load balancer's idle timeout
//! max_connections = 4096             # served normally at once
//! reserved_connections = 32          # then only /healthz, /readyz and /metrics
//! ```

use serde::Deserialize;

use super::ConfigError;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ServerConfig {
    /// Address the HTTP server listens on.
    pub bind: String,
    /// The issuer URL (RFC 8414 §2): what tokens carry in `iss`. Defaults to `http://{bind}`.
    pub issuer: Option<String>,
    pub request_body_limit_bytes: usize,
    pub request_timeout_seconds: u64,
    /// Take the client address from `X-Forwarded-For` (only behind a trusted proxy).
    pub trust_forwarded_for: bool,
    /// Time a client has to send a whole request head (request line and headers),
    /// counted from the connection's start or from its first byte after an idle pause.
    pub header_read_timeout_seconds: u64,
    /// How long a kept-alive connection may wait for its next request. Keep it longer
    /// than the idle timeout of the proxy in front (AWS ALB: 60 s), so that the proxy,
    /// not the hub, closes idle connections.
    pub keep_alive_idle_seconds: u64,
    /// Connections served normally at once; beyond them only the reserve below.
    pub max_connections: usize,
    /// Further connections kept for `/healthz`, `/readyz` and `/metrics` when the
    /// normal ones are taken; any other request on them gets 503.
    pub reserved_connections: usize,
}

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            bind: "127.0.0.1:8080".into(),
            issuer: None,
            request_body_limit_bytes: 1024 * 1024,
            request_timeout_seconds: 30,
            trust_forwarded_for: false,
            header_read_timeout_seconds: 10,
            keep_alive_idle_seconds: 75,
            max_connections: 4096,
            reserved_connections: 32,
        }
    }
}

impl ServerConfig {
    /// `bind` and `issuer` are checked with the rest of the tree (`Config::validate`);
    /// these are the limits.
    pub(super) fn validate(&self) -> Result<(), ConfigError> {
        let bad = |m: String| Err(ConfigError::Invalid(m));
        if self.request_body_limit_bytes < 1024 {
            return bad("server.request_body_limit_bytes must be at least 1024".into());
        }
        if !(1..=300).contains(&self.header_read_timeout_seconds) {
            return bad(format!(
                "server.header_read_timeout_seconds = {} must be between 1 and 300 (10 suits browsers and API clients)",
                self.header_read_timeout_seconds
            ));
        }
        if !(1..=3600).contains(&self.keep_alive_idle_seconds) {
            return bad(format!(
                "server.keep_alive_idle_seconds = {} must be between 1 and 3600 (set it above your load balancer's idle timeout)",
                self.keep_alive_idle_seconds
            ));
        }
        if !(1..=1_000_000).contains(&self.max_connections) {
            return bad(format!(
                "server.max_connections = {} must be between 1 and 1000000, and below the open-file limit (`ulimit -Hn`)",
                self.max_connections
            ));
        }
        if !(1..=self.max_connections).contains(&self.reserved_connections) {
            return bad(format!(
                "server.reserved_connections = {} must be between 1 and server.max_connections ({}): health checks and metrics need at least one",
                self.reserved_connections, self.max_connections
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(edit: impl FnOnce(&mut ServerConfig)) -> String {
        let mut c = ServerConfig::default();
        edit(&mut c);
        c.validate()
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default()
    }

    #[test]
    fn connection_limits_are_checked_with_what_to_fix() {
        assert_eq!(check(|_| {}), "", "the defaults are valid");
        assert!(check(|c| c.header_read_timeout_seconds = 0)
            .contains("server.header_read_timeout_seconds = 0 must be between 1 and 300"));
        assert!(check(|c| c.keep_alive_idle_seconds = 7200).contains("load balancer"));
        assert!(check(|c| c.max_connections = 0).contains("server.max_connections = 0"));
        assert!(check(|c| c.reserved_connections = 0).contains("health checks"));
        assert!(check(|c| {
            c.max_connections = 10;
            c.reserved_connections = 11;
        })
        .contains("server.max_connections (10)"));
        assert!(check(|c| c.request_body_limit_bytes = 10).contains("at least 1024"));
    }
}
