//! Append-only, hash-chained audit log: who did what, to what, when, from where.
//!
//! Every change and every denial writes one event in the same transaction as the
//! change itself. Each event's hash covers its content and the previous event's hash,
//! so `hms-ach audit verify` finds an edited, inserted or deleted row.

mod chain;
mod error;
mod http;
mod query;
mod verify;

pub use chain::{record, Entry, Origin, Outcome};
pub use error::AuditError;
pub use query::{list_events, AuditEvent, AuditFilter};
pub use verify::{verify_chain, VerifyReport};

pub fn router() -> axum::Router<crate::AppState> {
    http::router()
}
