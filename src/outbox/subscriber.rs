//! A subscriber: one receiver of the event log (a NATS JetStream stream, a RabbitMQ
//! exchange, a webhook endpoint) with its own cursor, retry state and health.

use serde::Serialize;

use crate::clock::{format_rfc3339, Timestamp};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum SinkKind {
    Nats,
    Rabbitmq,
    Webhook,
}

impl SinkKind {
    pub fn as_str(self) -> &'static str {
        match self {
            SinkKind::Nats => "nats",
            SinkKind::Rabbitmq => "rabbitmq",
            SinkKind::Webhook => "webhook",
        }
    }
    pub fn parse(s: &str) -> Option<SinkKind> {
        [SinkKind::Nats, SinkKind::Rabbitmq, SinkKind::Webhook]
            .into_iter()
            .find(|k| k.as_str() == s)
    }
}

/// Whether the dispatcher sends to it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum SubscriberState {
    Active,
    /// Stopped by an admin; events wait behind its cursor.
    Paused,
    /// Stopped by the hub after it kept failing (or answered 410 Gone); events wait
    /// behind its cursor until an admin enables it again.
    Disabled,
}

impl SubscriberState {
    pub fn as_str(self) -> &'static str {
        match self {
            SubscriberState::Active => "active",
            SubscriberState::Paused => "paused",
            SubscriberState::Disabled => "disabled",
        }
    }
    pub fn parse(s: &str) -> Option<SubscriberState> {
        [
            SubscriberState::Active,
            SubscriberState::Paused,
            SubscriberState::Disabled,
        ]
        .into_iter()
        .find(|k| k.as_str() == s)
    }
}

/// Declared in the configuration (read-only through the API) or registered
/// through the API.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum SubscriberSource {
    Config,
    Api,
}

impl SubscriberSource {
    pub fn as_str(self) -> &'static str {
        match self {
            SubscriberSource::Config => "config",
            SubscriberSource::Api => "api",
        }
    }
}

/// A stored subscriber.
#[derive(Debug, Clone)]
pub struct Subscriber {
    pub id: String,
    pub name: String,
    pub kind: SinkKind,
    pub source: SubscriberSource,
    /// A webhook's URL (brokers' URLs stay in the configuration).
    pub url: Option<String>,
    pub secret_sealed: Option<String>,
    pub types: TypeFilter,
    pub owner_email: Option<String>,
    pub state: SubscriberState,
    pub state_reason: Option<String>,
    pub cursor: i64,
    pub attempts: i64,
    pub next_attempt_at: Timestamp,
    pub last_error: Option<String>,
    pub last_success_at: Option<Timestamp>,
    pub last_failure_at: Option<Timestamp>,
    pub dead_in_a_row: i64,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

/// Which event types a subscriber receives: exact types, or prefixes written with a
/// final `*` (`org.hmsach.person.*`). Empty: every event.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TypeFilter(Vec<String>);

impl TypeFilter {
    pub fn parse(patterns: &[String]) -> Result<TypeFilter, String> {
        for p in patterns {
            let ok = match p.strip_suffix('*') {
                Some(prefix) => {
                    prefix.starts_with("org.hmsach.")
                        && prefix.ends_with('.')
                        && !prefix.contains('*')
                }
                None => super::EventType::parse(p).is_some(),
            };
            if !ok {
                return Err(format!(
                    "{p:?} is neither an event type (org.hmsach.person.created…) nor a prefix ending in \".*\" (org.hmsach.person.*)"
                ));
            }
        }
        Ok(TypeFilter(patterns.to_vec()))
    }

    /// Read back from the store (validated when written).
    pub(super) fn stored(patterns: Vec<String>) -> TypeFilter {
        TypeFilter(patterns)
    }

    pub fn patterns(&self) -> &[String] {
        &self.0
    }

    pub fn matches(&self, kind: &str) -> bool {
        self.0.is_empty()
            || self.0.iter().any(|p| match p.strip_suffix('*') {
                Some(prefix) => kind.starts_with(prefix),
                None => p == kind,
            })
    }
}

/// Subscriber names appear in metrics labels, URLs and logs: short and plain.
pub fn check_subscriber_name(name: &str) -> Result<(), String> {
    if name.is_empty() || name.len() > 64 {
        return Err("must be 1 to 64 characters".into());
    }
    if !name
        .chars()
        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_')
    {
        return Err("may hold only lower-case letters, digits, - and _".into());
    }
    Ok(())
}

/// A webhook URL: https, or http to the machine itself (development); no user
/// information (a secret in a URL ends up in logs) and no fragment.
pub fn check_webhook_url(url: &str) -> Result<url::Url, String> {
    let u = url::Url::parse(url).map_err(|e| format!("{url:?} is not a URL ({e})"))?;
    if !u.username().is_empty() || u.password().is_some() {
        return Err("must not carry a user name or password".into());
    }
    if u.fragment().is_some() {
        return Err("must not have a fragment".into());
    }
    let loopback = matches!(
        u.host(),
        Some(url::Host::Domain("localhost"))
            | Some(url::Host::Ipv4(std::net::Ipv4Addr::LOCALHOST))
            | Some(url::Host::Ipv6(std::net::Ipv6Addr::LOCALHOST))
    );
    match u.scheme() {
        "https" => Ok(u),
        "http" if loopback => Ok(u),
        "http" => Err("must use https (http only to localhost, for development)".into()),
        other => Err(format!("scheme {other:?} is not http(s)")),
    }
}

/// A subscriber as the API shows it, with its health.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SubscriberView {
    pub id: String,
    pub name: String,
    pub kind: SinkKind,
    pub source: SubscriberSource,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    pub types: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub owner_email: Option<String>,
    pub state: SubscriberState,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub state_reason: Option<String>,
    /// Set when a subscriber stored here is no longer in the configuration.
    pub configured: bool,
    pub health: Health,
    pub created: String,
    pub updated: String,
}

/// How a subscriber is doing.
#[derive(Debug, Serialize, Clone, Default)]
#[serde(rename_all = "camelCase")]
pub struct Health {
    /// The last event position it is done with.
    pub cursor: i64,
    /// Events after the cursor (whatever their type).
    pub pending: i64,
    /// Age of the oldest event after the cursor, in seconds.
    pub oldest_pending_seconds: Option<i64>,
    pub attempts: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_attempt: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_error: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_success: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_failure: Option<String>,
    pub dead_letters: i64,
}

impl SubscriberView {
    pub fn source_name(&self) -> &'static str {
        self.source.as_str()
    }
}

impl Subscriber {
    pub fn view(&self, configured: bool, health: Health) -> SubscriberView {
        SubscriberView {
            id: self.id.clone(),
            name: self.name.clone(),
            kind: self.kind,
            source: self.source,
            url: self.url.clone(),
            types: self.types.patterns().to_vec(),
            owner_email: self.owner_email.clone(),
            state: self.state,
            state_reason: self.state_reason.clone(),
            configured,
            health,
            created: format_rfc3339(self.created_at.as_millis()),
            updated: format_rfc3339(self.updated_at.as_millis()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn type_filters_match_exact_types_and_prefixes() {
        let f = TypeFilter::parse(&[
            "org.hmsach.person.*".to_string(),
            "org.hmsach.role.granted".to_string(),
        ])
        .unwrap();
        assert!(f.matches("org.hmsach.person.created"));
        assert!(f.matches("org.hmsach.person.factors_changed"));
        assert!(f.matches("org.hmsach.role.granted"));
        assert!(!f.matches("org.hmsach.role.revoked"));
        assert!(!f.matches("org.hmsach.org.created"));
        assert!(TypeFilter::default().matches("org.hmsach.org.created"));
        for bad in [
            "person.*",
            "org.hmsach.person*",
            "*",
            "org.hmsach.nope",
            "org.*.x.*",
        ] {
            assert!(TypeFilter::parse(&[bad.to_string()]).is_err(), "{bad}");
        }
    }

    #[test]
    fn webhook_urls_are_https_or_local() {
        assert!(check_webhook_url("https://lms.example/hooks").is_ok());
        assert!(check_webhook_url("http://127.0.0.1:9000/h").is_ok());
        assert!(check_webhook_url("http://localhost/h").is_ok());
        for bad in [
            "http://lms.example/hooks",
            "https://user:pw@lms.example/",
            "https://lms.example/#x",
            "ftp://lms.example/",
            "not a url",
        ] {
            assert!(check_webhook_url(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn names_are_plain() {
        assert!(check_subscriber_name("district-bus_1").is_ok());
        for bad in ["", "Bus", "a b", "a/b", &"x".repeat(65)] {
            assert!(check_subscriber_name(bad).is_err(), "{bad}");
        }
    }
}
