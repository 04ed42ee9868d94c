//! The transactional outbox (issue 16, first part): every audited change to a person
//! or an org writes one event in the same transaction as the change, so what other
//! systems hear is exactly what the hub committed, in the order it committed it.
//!
//! Events are CloudEvents 1.0 (`event.rs`): `type` such as
//! `org.hmsach.person.created`, `subject` such as `people/{id}`, `data` the resource as
//! the API returns it, and the `sequence` extension numbering one subject's events
//! 1, 2, 3…, so a consumer can order them and see a gap. `GET /api/v1/events` lists them
//! for admins and auditors. Dispatch to NATS, RabbitMQ and webhooks, retention and
//! replay stand on this table next.

mod error;
mod event;
mod http;
mod repo;

pub use error::OutboxError;
pub use event::{CloudEvent, EventType, NewEvent, OutboxEvent};
pub use http::router;
pub use repo::{append, list_events, EventFilter};
