//! `[auth.throttle]`: how password guessing is slowed (`authn::backoff`). Nothing
//! here locks an account: failures are counted per (account, source address) and
//! per source address, each with delays that double up to a cap, and per account
//! across all addresses only to raise an alert and to drop the free attempts.

use serde::{Deserialize, Deserializer};
use std::time::Duration;

use super::ConfigError;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SigninThrottleConfig {
    /// Failed passwords for one account from one address before delays start.
    pub free_failures_per_account_and_address: u32,
    /// Failed passwords from one address (any accounts) before delays start. Raise
    /// it when a whole school signs in from behind one NAT address.
    pub free_failures_per_address: u32,
    /// The first delay; each further failure doubles it, up to `max_delay`.
    #[serde(deserialize_with = "duration")]
    pub first_delay: Duration,
    #[serde(deserialize_with = "duration")]
    pub max_delay: Duration,
    /// An (account, address) count is forgotten this long after its last failure;
    /// an address's count this long after its first (a fixed window).
    #[serde(deserialize_with = "duration")]
    pub forget_after: Duration,
    /// Failures for one account from all addresses within `account_window` that
    /// mean a spread-out guessing attack: an alert (audit event, metric, warning),
    /// and from then on every address is delayed after its first failure for it.
    pub account_alert_failures: u32,
    #[serde(deserialize_with = "duration")]
    pub account_window: Duration,
}

impl Default for SigninThrottleConfig {
    fn default() -> Self {
        Self {
            free_failures_per_account_and_address: 3,
            free_failures_per_address: 30,
            first_delay: Duration::from_secs(1),
            max_delay: Duration::from_secs(15 * 60),
            forget_after: Duration::from_secs(3600),
            account_alert_failures: 30,
            account_window: Duration::from_secs(24 * 3600),
        }
    }
}

impl SigninThrottleConfig {
    pub(super) fn validate(&self) -> Result<(), ConfigError> {
        let bad = |m: &str| Err(ConfigError::Invalid(format!("auth.throttle.{m}")));
        if !(1..=100).contains(&self.free_failures_per_account_and_address) {
            return bad("free_failures_per_account_and_address must be between 1 and 100");
        }
        if !(1..=100_000).contains(&self.free_failures_per_address) {
            return bad("free_failures_per_address must be between 1 and 100000");
        }
        if self.first_delay < Duration::from_millis(100) || self.first_delay > self.max_delay {
            return bad("first_delay must be at least 100ms and at most max_delay");
        }
        if self.max_delay > Duration::from_secs(24 * 3600) {
            return bad("max_delay must be at most 24h");
        }
        if self.forget_after < Duration::from_secs(60)
            || self.forget_after > Duration::from_secs(30 * 86_400)
        {
            return bad("forget_after must be between 1m and 30d");
        }
        if !(1..=1_000_000).contains(&self.account_alert_failures) {
            return bad("account_alert_failures must be between 1 and 1000000");
        }
        if self.account_window < Duration::from_secs(60)
            || self.account_window > Duration::from_secs(30 * 86_400)
        {
            return bad("account_window must be between 1m and 30d");
        }
        Ok(())
    }
}

/// A duration as `250ms`, `30s`, `15m`, `2h` or `1d`, or a whole number of seconds.
pub(super) fn duration<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Raw {
        Seconds(u64),
        Text(String),
    }
    match Raw::deserialize(d)? {
        Raw::Seconds(s) => Ok(Duration::from_secs(s)),
        Raw::Text(t) => parse_duration(&t).map_err(serde::de::Error::custom),
    }
}

pub(super) fn parse_duration(text: &str) -> Result<Duration, String> {
    let t = text.trim();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (digits, unit) = t.split_at(split);
    let n: u64 = digits
        .parse()
        .map_err(|_| format!("{text:?} is not a duration: write e.g. 500ms, 30s, 15m, 2h or 1d"))?;
    let ms = match unit.trim() {
        "ms" => Some(n),
        "" | "s" => n.checked_mul(1000),
        "m" | "min" => n.checked_mul(60_000),
        "h" => n.checked_mul(3_600_000),
        "d" => n.checked_mul(86_400_000),
        _ => None,
    }
    .ok_or_else(|| format!("{text:?} is not a duration: write e.g. 500ms, 30s, 15m, 2h or 1d"))?;
    Ok(Duration::from_millis(ms))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_with_units_or_as_seconds() {
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse_duration("30s"), Ok(Duration::from_secs(30)));
        assert_eq!(parse_duration("15m"), Ok(Duration::from_secs(900)));
        assert_eq!(parse_duration("2h"), Ok(Duration::from_secs(7200)));
        assert_eq!(parse_duration("1d"), Ok(Duration::from_secs(86_400)));
        assert_eq!(parse_duration("45"), Ok(Duration::from_secs(45)));
        for bad in ["", "m", "1w", "-1s", "1.5h", "99999999999999999999d"] {
            assert!(parse_duration(bad).is_err(), "{bad}");
        }
        let c: SigninThrottleConfig =
            toml::from_str("first_delay = \"2s\"\nmax_delay = 600\n").unwrap();
        assert_eq!(
            (c.first_delay, c.max_delay),
            (Duration::from_secs(2), Duration::from_secs(600))
        );
        assert!(c.validate().is_ok());
        let c: SigninThrottleConfig = toml::from_str("first_delay = \"20m\"").unwrap();
        assert!(c
            .validate()
            .unwrap_err()
            .to_string()
            .contains("first_delay"));
    }
}
