//! A ledger row as an RFC 5322 message: headers, and a multipart/alternative body
//! with the plain-text part first and the HTML part last (RFC 2046 §5.1.4: the last
//! part is the preferred one).

use std::time::{Duration, UNIX_EPOCH};

use lettre::message::{header::ContentType, Mailbox, Message, MultiPart, SinglePart};

use super::templates::Rendered;
use super::{MailError, QueuedMail};
use crate::config::Config;

/// The `Message-ID` of a notice: the same for every attempt (and every replica), so
/// a message sent again after a crash between the server's acceptance and the
/// ledger's update is recognisably the same one (RFC 5322 §3.6.4).
pub fn message_id(notice_key: &str, from: &Mailbox) -> String {
    let digest = ring::digest::digest(&ring::digest::SHA256, notice_key.as_bytes());
    let hex = hex::encode(&digest.as_ref()[..16]);
    format!("<{hex}.notice@{}>", from.email.domain())
}

/// Builds the message of `row`. An error here (a recipient that is no address) is
/// permanent: sending again would not change it.
pub fn build(
    config: &Config,
    row: &QueuedMail,
    rendered: &Rendered,
) -> Result<(Message, String), MailError> {
    let from = config
        .mail
        .from_mailbox()
        .map_err(|e| MailError::Config(e.to_string()))?;
    let to: Mailbox = row
        .recipient
        .parse()
        .map_err(|e| MailError::Message(format!("recipient {:?}: {e}", row.recipient)))?;
    let id = message_id(&row.notice_key, &from);
    let reply_to = config
        .mail
        .reply_to
        .as_deref()
        .or(config.district.support_email.as_deref())
        .and_then(|r| r.parse::<Mailbox>().ok());
    // The Date is when the notice was queued (the change's time), the same in every
    // attempt.
    let date =
        UNIX_EPOCH + Duration::from_millis(u64::try_from(row.created_at.as_millis()).unwrap_or(0));
    let mut builder = Message::builder()
        .from(from)
        .to(to)
        .subject(rendered.subject.clone())
        .date(date)
        .message_id(Some(id.clone()));
    if let Some(r) = reply_to {
        builder = builder.reply_to(r);
    }
    let body = MultiPart::alternative()
        .singlepart(
            SinglePart::builder()
                .header(ContentType::TEXT_PLAIN)
                .body(rendered.text.clone()),
        )
        .singlepart(
            SinglePart::builder()
                .header(ContentType::TEXT_HTML)
                .body(rendered.html.clone()),
        );
    let message = builder
        .multipart(body)
        .map_err(|e| MailError::Message(e.to_string()))?;
    Ok((message, id))
}
