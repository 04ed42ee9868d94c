//! Email (issue 16): the notices people get about their account, and the admins'
//! daily digest, sent through a ledger that loses none and sends none twice.
//!
//! Every email is first a row of the mail outbox (`repo.rs`, table `mail_outbox`),
//! queued with [`enqueue`] in the transaction of the change it tells about and keyed
//! by a `notice_key` (`password-changed:{person}:{audit seq}`), so a rolled-back
//! change queues nothing and the same notice is never queued twice. The worker
//! (`worker.rs`, started by `cli::serve` on every replica) claims due rows with a
//! lease, renders them from the top-level `email-templates/` folder (`templates.rs`),
//! builds an RFC 5322 message with a `Message-ID` derived from the notice key
//! (`message.rs`), and hands it to a [`Sender`] (`sender.rs`): SMTP through lettre,
//! `.eml` files when no SMTP server is configured, or memory in tests. A row is
//! `sent` only after the server accepted it; temporary failures retry with
//! exponential backoff and jitter, permanent ones are kept with the server's reply
//! and listed by `GET /api/v1/mail` and the daily digest (`digest.rs`).

mod digest;
mod error;
mod http;
mod message;
mod notice;
mod notices;
mod repo;
mod sender;
mod templates;
mod worker;

pub use digest::{digest, send_daily_digest, OtherFailures};
pub use error::MailError;
pub use http::{router, MailView};
pub use message::message_id;
pub use notice::{Notice, Template};
pub use notices::{factor_label, notify_person, SecurityNotice};
pub use repo::{enqueue, failed_since, list, pending_stats, MailFilter, QueuedMail, STATES};
pub use sender::{
    from_config as sender_from_config, Captured, FileSender, MemorySender, SendError, Sender,
};
pub use templates::{format_when, Rendered, Renderer};
pub use worker::{backoff, deliver_due, run, Round};

/// Renders `name` with its sample data, for `hms-ach email preview`.
pub fn preview(config: &crate::config::Config, name: &str) -> Result<Rendered, MailError> {
    let template = Template::parse(name).ok_or_else(|| MailError::UnknownTemplate {
        name: name.to_string(),
        known: Template::names(),
    })?;
    Renderer::new()?.render(config, template, &template.sample())
}
