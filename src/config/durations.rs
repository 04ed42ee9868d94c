//! The `*_seconds` settings as [`Duration`]s.
//!
//! The TOML keys and `HMS_ACH__…` variables stay whole seconds (they are
//! documented, and operators write them); code asks these accessors instead of
//! multiplying by 1000 at each use, so a unit mistake has one place to live.
//! (`[auth.throttle]` is typed already: `"15m"`.) `validate` has already refused negative values; a negative one read here
//! (a `Config` built by hand) counts as zero rather than wrapping around.

use std::time::Duration;

use super::ServerConfig;
use super::{AuthConfig, DatabaseConfig, FederationConfig, KeysConfig, MfaConfig, OAuthConfig};

/// Whole seconds as a `Duration`; zero for a negative count.
pub(super) fn seconds(n: i64) -> Duration {
    Duration::from_secs(u64::try_from(n).unwrap_or(0))
}

impl ServerConfig {
    pub fn request_timeout(&self) -> Duration {
        Duration::from_secs(self.request_timeout_seconds)
    }
    pub fn header_read_timeout(&self) -> Duration {
        Duration::from_secs(self.header_read_timeout_seconds)
    }
    pub fn keep_alive_idle(&self) -> Duration {
        Duration::from_secs(self.keep_alive_idle_seconds)
    }
}

impl DatabaseConfig {
    pub fn connect_timeout(&self) -> Duration {
        Duration::from_secs(self.connect_timeout_seconds)
    }
}

impl KeysConfig {
    pub fn publish_ahead(&self) -> Duration {
        seconds(self.publish_ahead_seconds)
    }
}

impl OAuthConfig {
    pub fn access_token_ttl(&self) -> Duration {
        seconds(self.access_token_ttl_seconds)
    }
    pub fn client_cache(&self) -> Duration {
        seconds(self.client_cache_seconds)
    }
    pub fn code_ttl(&self) -> Duration {
        seconds(self.code_ttl_seconds)
    }
    pub fn id_token_ttl(&self) -> Duration {
        seconds(self.id_token_ttl_seconds)
    }
    pub fn refresh_token_ttl(&self) -> Duration {
        seconds(self.refresh_token_ttl_seconds)
    }
    pub fn offline_refresh_token_ttl(&self) -> Duration {
        seconds(self.offline_refresh_token_ttl_seconds)
    }
    pub fn auth_request_ttl(&self) -> Duration {
        seconds(self.auth_request_ttl_seconds)
    }
    pub fn par_ttl(&self) -> Duration {
        seconds(self.par_ttl_seconds)
    }
}

impl AuthConfig {
    pub fn failure_window(&self) -> Duration {
        seconds(self.failure_window_seconds)
    }
    pub fn lockout(&self) -> Duration {
        seconds(self.lockout_seconds)
    }
    pub fn session_ttl(&self) -> Duration {
        seconds(self.session_ttl_seconds)
    }
    pub fn session_idle(&self) -> Duration {
        seconds(self.session_idle_seconds)
    }
}

impl FederationConfig {
    pub fn clock_skew(&self) -> Duration {
        seconds(self.clock_skew_seconds)
    }
    pub fn request_ttl(&self) -> Duration {
        seconds(self.request_ttl_seconds)
    }
}

impl MfaConfig {
    pub fn challenge_ttl(&self) -> Duration {
        seconds(self.challenge_ttl_seconds)
    }
    pub fn manage_factors_max_age(&self) -> Duration {
        seconds(self.manage_factors_max_age_seconds)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{Config, Overrides};

    #[test]
    fn accessors_read_the_documented_keys_in_seconds() {
        let env: Vec<(String, String)> = [
            ("HMS_ACH__OAUTH__CODE_TTL_SECONDS", "90"),
            ("HMS_ACH__AUTH__SESSION_IDLE_SECONDS", "1800"),
            ("HMS_ACH__SERVER__REQUEST_TIMEOUT_SECONDS", "45"),
            ("HMS_ACH__FEDERATION__CLOCK_SKEW_SECONDS", "30"),
        ]
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        let c = Config::load_from(None, &env, &Overrides::default()).unwrap();
        assert_eq!(c.oauth.code_ttl(), Duration::from_secs(90));
        assert_eq!(c.auth.session_idle(), Duration::from_secs(1800));
        assert_eq!(c.server.request_timeout(), Duration::from_secs(45));
        assert_eq!(c.federation.clock_skew(), Duration::from_secs(30));
        // Defaults, as README's configuration section shows them.
        assert_eq!(c.oauth.access_token_ttl(), Duration::from_secs(900));
        assert_eq!(c.keys.publish_ahead(), Duration::from_secs(600));
        assert_eq!(c.database.connect_timeout(), Duration::from_secs(5));
        assert_eq!(c.mfa.challenge_ttl(), Duration::from_secs(600));
        assert_eq!(c.auth.session_ttl(), Duration::from_secs(12 * 3600));
    }

    #[test]
    fn a_negative_count_is_zero_not_a_huge_duration() {
        assert_eq!(seconds(-5), Duration::ZERO);
        assert_eq!(seconds(7), Duration::from_secs(7));
    }
}
