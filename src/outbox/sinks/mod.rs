//! Where events go: a NATS JetStream stream, a RabbitMQ exchange, a webhook endpoint.
//! Each sink sends a batch **in order** and says how many of its first events the
//! receiver confirmed; the dispatcher moves the subscriber's cursor only past those.
//! A sink never sees the database, and its errors never carry a URL's password.

mod nats;
mod rabbitmq;
mod webhook;

pub use nats::NatsSink;
pub use rabbitmq::RabbitSink;
pub use webhook::{sign, WebhookSecret, WebhookSink};

use crate::clock::Timestamp;

/// One event as it is sent: the CloudEvent JSON (structured mode) and what the
/// transports put in headers.
#[derive(Debug, Clone)]
pub struct Outgoing {
    pub seq: i64,
    pub id: String,
    pub kind: String,
    pub created_at: Timestamp,
    pub body: Vec<u8>,
}

/// What a receiver made of a batch.
#[derive(Debug, Default)]
pub struct Delivery {
    /// How many of the batch's first events it confirmed.
    pub delivered: usize,
    /// Of those, how many it said it had already (JetStream's de-duplication).
    pub duplicates: usize,
    /// Why the event after them was not confirmed.
    pub failure: Option<SinkFailure>,
}

impl Delivery {
    /// Nothing sent: the receiver could not be reached.
    pub fn refused(failure: SinkFailure) -> Delivery {
        Delivery {
            failure: Some(failure),
            ..Delivery::default()
        }
    }
}

#[derive(Debug, Clone)]
pub struct SinkFailure {
    pub message: String,
    /// The receiver asked never to be called again (a webhook's 410 Gone).
    pub gone: bool,
}

impl SinkFailure {
    pub fn new(message: impl Into<String>) -> SinkFailure {
        SinkFailure {
            message: message.into(),
            gone: false,
        }
    }
}

#[async_trait::async_trait]
pub trait Sink: Send + Sync {
    async fn deliver(&self, batch: &[Outgoing], now: Timestamp) -> Delivery;
}

/// The first line of an error, without anything that looks like a URL's user
/// information (`scheme://user:password@host` becomes `scheme://…@host`).
pub(super) fn describe(e: &dyn std::fmt::Display) -> String {
    let text = e.to_string();
    let line = text.lines().next().unwrap_or("").to_string();
    let mut out = String::with_capacity(line.len());
    let mut rest = line.as_str();
    while let Some(i) = rest.find("://") {
        let (head, tail) = rest.split_at(i + 3);
        out.push_str(head);
        let end = tail
            .find(|c: char| c.is_whitespace() || c == '/' || c == '"')
            .unwrap_or(tail.len());
        match tail[..end].rfind('@') {
            Some(at) => {
                out.push('…');
                rest = &tail[at..];
            }
            None => rest = tail,
        }
    }
    out.push_str(rest);
    out.chars().take(500).collect()
}

#[cfg(test)]
mod tests {
    #[test]
    fn errors_never_show_a_password() {
        let e = "cannot connect to amqp://guest:s3cret@127.0.0.1:5672/%2f: refused";
        let d = super::describe(&e);
        assert!(!d.contains("s3cret") && !d.contains("guest"), "{d}");
        assert!(d.contains("127.0.0.1:5672"), "{d}");
        assert_eq!(super::describe(&"plain error\nsecond line"), "plain error");
    }
}
