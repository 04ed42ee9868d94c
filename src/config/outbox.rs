//! `[outbox]`: how long events are kept, how they are dispatched, and the message
//! buses and webhook endpoints that receive them.
//!
//! ```toml
//! [outbox]
//! retention = "30d"          # events older than this are deleted once every
//!                            # active subscriber has them
//! max_attempts = 20          # tries of one event before it becomes a dead letter
//! first_retry = "1s"         # the first wait; each failure doubles it (with jitter)…
//! max_retry = "5m"           # …up to this
//! disable_after_dead_letters = 3   # dead letters in a row that disable a subscriber
//!
//! [[outbox.nats]]
//! name = "district-bus"
//! url = "nats://127.0.0.1:4222"    # may carry user:password; never logged
//! stream = "HMSACH"                # created when missing, subjects "hmsach.>"
//! subject_prefix = "hmsach"        # an event goes to "hmsach.<type>"
//! types = ["org.hmsach.person.*"]  # which events; empty or absent: all
//!
//! [[outbox.rabbitmq]]
//! name = "campus-mq"
//! url = "amqp://guest:guest@127.0.0.1:5672/%2f"
//! exchange = "hmsach.events"       # a durable topic exchange, routing key = type
//! queue = "hmsach.all"             # optional: a durable queue bound with "#"
//!
//! [[outbox.webhooks]]
//! name = "lms"
//! url = "https://lms.district.example/hooks/hms-ach"
//! secret = "whsec_…"               # Standard Webhooks secret (base64 after whsec_)
//! owner_email = "lms-admin@district.example"
//! ```
//!
//! Webhooks can also be registered through `POST /api/v1/subscribers` (the secret is
//! then generated and shown once); the ones declared here show as read-only there.

use serde::Deserialize;
use std::time::Duration;

use super::signin_throttle::duration;
use super::ConfigError;
use crate::crypto::Secret;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct OutboxConfig {
    /// Events are kept at least this long (and until every active subscriber has
    /// them). Dead letters keep their own copy.
    #[serde(deserialize_with = "duration")]
    pub retention: Duration,
    /// Dispatch on this replica (every replica may: a lease per subscriber keeps
    /// one dispatching at a time).
    pub dispatch: bool,
    /// How often an idle dispatcher looks for new events.
    #[serde(deserialize_with = "duration")]
    pub poll_interval: Duration,
    /// Events read per round for one subscriber.
    pub batch_size: i64,
    pub max_attempts: i64,
    #[serde(deserialize_with = "duration")]
    pub first_retry: Duration,
    #[serde(deserialize_with = "duration")]
    pub max_retry: Duration,
    /// A replica dispatching for a subscriber holds it this long without renewing.
    #[serde(deserialize_with = "duration")]
    pub lease: Duration,
    /// How long one delivery (a batch to a bus, one webhook call) may take.
    #[serde(deserialize_with = "duration")]
    pub send_timeout: Duration,
    pub disable_after_dead_letters: i64,
    pub nats: Vec<NatsSinkConfig>,
    pub rabbitmq: Vec<RabbitSinkConfig>,
    pub webhooks: Vec<WebhookSinkConfig>,
}

impl Default for OutboxConfig {
    fn default() -> Self {
        Self {
            retention: Duration::from_secs(30 * 86_400),
            dispatch: true,
            poll_interval: Duration::from_millis(25),
            batch_size: 500,
            max_attempts: 20,
            first_retry: Duration::from_secs(1),
            max_retry: Duration::from_secs(300),
            lease: Duration::from_secs(30),
            send_timeout: Duration::from_secs(10),
            disable_after_dead_letters: 3,
            nats: Vec::new(),
            rabbitmq: Vec::new(),
            webhooks: Vec::new(),
        }
    }
}

/// Where a subscriber starts when it first appears.
#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq, Default)]
#[serde(rename_all = "lowercase")]
pub enum StartAt {
    /// Every event still kept (a new consumer catches up on history).
    #[default]
    Earliest,
    /// Only events written from now on.
    Latest,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NatsSinkConfig {
    pub name: String,
    pub url: Secret,
    #[serde(default = "default_stream")]
    pub stream: String,
    #[serde(default = "default_prefix")]
    pub subject_prefix: String,
    /// Create the stream (subjects `<prefix>.>`, a 2-minute duplicate window) when
    /// it is missing.
    #[serde(default = "yes")]
    pub create_stream: bool,
    #[serde(default)]
    pub types: Vec<String>,
    #[serde(default)]
    pub start_at: StartAt,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RabbitSinkConfig {
    pub name: String,
    pub url: Secret,
    #[serde(default = "default_exchange")]
    pub exchange: String,
    /// A durable queue declared and bound to the exchange with `#`, so events are
    /// kept for a consumer that is not connected yet.
    #[serde(default)]
    pub queue: Option<String>,
    #[serde(default)]
    pub types: Vec<String>,
    #[serde(default)]
    pub start_at: StartAt,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebhookSinkConfig {
    pub name: String,
    pub url: String,
    pub secret: Secret,
    #[serde(default)]
    pub owner_email: Option<String>,
    #[serde(default)]
    pub types: Vec<String>,
    #[serde(default)]
    pub start_at: StartAt,
}

fn default_stream() -> String {
    "HMSACH".into()
}
fn default_prefix() -> String {
    "hmsach".into()
}
fn default_exchange() -> String {
    "hmsach.events".into()
}
fn yes() -> bool {
    true
}

impl OutboxConfig {
    pub(super) fn validate(&self) -> Result<(), ConfigError> {
        let bad = |m: String| Err(ConfigError::Invalid(format!("outbox.{m}")));
        if self.retention < Duration::from_secs(3600) {
            return bad("retention must be at least 1h".into());
        }
        if self.poll_interval < Duration::from_millis(5)
            || self.poll_interval > Duration::from_secs(60)
        {
            return bad("poll_interval must be between 5ms and 60s".into());
        }
        if !(1..=10_000).contains(&self.batch_size) {
            return bad("batch_size must be between 1 and 10000".into());
        }
        if !(1..=1000).contains(&self.max_attempts) {
            return bad("max_attempts must be between 1 and 1000".into());
        }
        if self.first_retry < Duration::from_millis(10) || self.first_retry > self.max_retry {
            return bad("first_retry must be at least 10ms and at most max_retry".into());
        }
        if self.max_retry > Duration::from_secs(86_400) {
            return bad("max_retry must be at most 1d".into());
        }
        if self.lease < Duration::from_secs(1) || self.send_timeout >= self.lease {
            return bad("lease must be at least 1s and longer than send_timeout".into());
        }
        if self.disable_after_dead_letters < 1 {
            return bad("disable_after_dead_letters must be at least 1".into());
        }
        let mut names = std::collections::HashSet::new();
        let all = self
            .nats
            .iter()
            .map(|n| ("nats", n.name.as_str(), &n.types))
            .chain(
                self.rabbitmq
                    .iter()
                    .map(|r| ("rabbitmq", r.name.as_str(), &r.types)),
            )
            .chain(
                self.webhooks
                    .iter()
                    .map(|w| ("webhooks", w.name.as_str(), &w.types)),
            );
        for (kind, name, types) in all {
            if let Err(e) = crate::outbox::check_subscriber_name(name) {
                return bad(format!("{kind}: name {name:?}: {e}"));
            }
            if !names.insert(name.to_string()) {
                return bad(format!(
                    "{kind}: name {name:?} is used twice (subscriber names are unique)"
                ));
            }
            if let Err(e) = crate::outbox::TypeFilter::parse(types) {
                return bad(format!("{kind} {name:?}: types: {e}"));
            }
        }
        for n in &self.nats {
            if !n.url.expose().starts_with("nats://") && !n.url.expose().starts_with("tls://") {
                return bad(format!(
                    "nats {:?}: url must start with nats:// or tls://",
                    n.name
                ));
            }
            if !is_token(&n.stream) || !n.subject_prefix.split('.').all(is_token) {
                return bad(format!(
                    "nats {:?}: stream and subject_prefix are NATS names (letters, digits, - and _; the prefix may have dots)",
                    n.name
                ));
            }
        }
        for r in &self.rabbitmq {
            if !r.url.expose().starts_with("amqp://") && !r.url.expose().starts_with("amqps://") {
                return bad(format!(
                    "rabbitmq {:?}: url must start with amqp:// or amqps://",
                    r.name
                ));
            }
            if r.exchange.is_empty() || r.exchange.starts_with("amq.") {
                return bad(format!(
                    "rabbitmq {:?}: exchange must be named and not start with amq. (reserved)",
                    r.name
                ));
            }
        }
        for w in &self.webhooks {
            if let Err(e) = crate::outbox::check_webhook_url(&w.url) {
                return bad(format!("webhooks {:?}: url: {e}", w.name));
            }
            if crate::outbox::WebhookSecret::parse(w.secret.expose()).is_none() {
                return bad(format!(
                    "webhooks {:?}: secret must be whsec_ followed by base64 of 24 to 64 bytes",
                    w.name
                ));
            }
        }
        Ok(())
    }
}

fn is_token(s: &str) -> bool {
    !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
}
