//! The transactional outbox and its dispatch (issue 16).
//!
//! Every audited change writes one event in the same transaction as the change
//! (`append`), so what other systems hear is exactly what the hub committed, in the
//! order it committed it. Events are CloudEvents 1.0 (`event.rs`): `type` such as
//! `org.hmsach.person.created`, `subject` such as `people/{id}`, `data` the resource
//! as the API returns it, and the `sequence` extension numbering one subject's events
//! 1, 2, 3…, so a consumer can order them and see a gap. `GET /api/v1/events` lists
//! them for admins and auditors.
//!
//! Dispatch (`dispatch.rs`) sends them to subscribers, each with its own cursor:
//! NATS JetStream, RabbitMQ and Standard Webhooks endpoints (`sinks/`), with retries,
//! dead letters, replay and health (`admin.rs`, `subscribers_http.rs`).

mod admin;
mod dead_letters_repo;
mod dispatch;
mod error;
mod event;
mod http;
mod repo;
mod retention;
pub mod sinks;
mod subscriber;
mod subscribers_http;
mod subscribers_repo;

pub use admin::{
    create_webhook, dead_letters, delete_subscriber, get_subscriber, list_subscribers, replay,
    requeue, rotate_webhook_secret, set_state, sweep, sync_configured, NewWebhook, Requeued,
};
pub use dead_letters_repo::{failures_since, StoredDeadLetter};
pub use dispatch::{backoff, deliver_once, sink_for, start, DispatchHandle, Round};
pub use error::OutboxError;
pub use event::{CloudEvent, EventType, NewEvent, OutboxEvent};
pub use repo::{append, list_events, EventFilter};
pub use retention::RetentionJob;
pub use sinks::WebhookSecret;
pub use subscriber::{
    check_subscriber_name, check_webhook_url, Health, SinkKind, SubscriberSource, SubscriberState,
    SubscriberView, TypeFilter,
};

/// `/api/v1/events` and `/api/v1/subscribers`.
pub fn router() -> axum::Router<crate::AppState> {
    http::router().merge(subscribers_http::router())
}
