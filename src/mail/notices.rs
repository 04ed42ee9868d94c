//! The notices people get about their own account's security: what happened, when
//! (in the district's time zone), from where if known, and what to do if it was not
//! them. Each is queued in the transaction of the change, keyed by the change's
//! audit event, so it exists exactly when the change does and never twice.

use serde_json::{json, Value};

use super::{Notice, Template};
use crate::clock::Timestamp;
use crate::store::{StoreError, Tx};

/// A change to tell a person about.
pub struct SecurityNotice<'a> {
    pub template: Template,
    pub person_id: &'a str,
    /// What names the change once: its audit event's sequence number (or, for a
    /// lock, its end time). With the template and the person it makes the notice key.
    pub change_id: i64,
    /// The address the change came from, when it came over the network.
    pub source_ip: Option<&'a str>,
    /// What the template shows besides the common facts (`factor`, `by_admin`…).
    pub details: Value,
}

/// Queues `notice` for the person inside `tx`; nothing when they have no email
/// address. Returns whether a message was queued.
pub async fn notify_person(
    tx: &mut Tx,
    now: Timestamp,
    notice: SecurityNotice<'_>,
) -> Result<bool, StoreError> {
    let row: Option<(Option<String>, String, Option<String>)> =
        sqlx::query_as("SELECT email, given_name, preferred_name FROM people WHERE id = $1")
            .bind(notice.person_id)
            .fetch_optional(&mut **tx)
            .await?;
    let Some((Some(email), given, preferred)) = row else {
        return Ok(false);
    };
    let email = email.trim().to_string();
    if email.is_empty() {
        return Ok(false);
    }
    let mut data = json!({
        "person_name": preferred.filter(|p| !p.trim().is_empty()).unwrap_or(given),
        "at": now.as_millis(),
        "where": notice.source_ip,
    });
    if let (Some(m), Value::Object(extra)) = (data.as_object_mut(), notice.details) {
        m.extend(extra);
    }
    let key = format!(
        "{}:{}:{}",
        notice.template.name(),
        notice.person_id,
        notice.change_id
    );
    super::enqueue(
        tx,
        now,
        Notice {
            key,
            template: notice.template,
            recipient: email,
            data,
        },
    )
    .await
}

/// The words a notice uses for a factor the audit log names.
pub fn factor_label(factor: &str) -> &'static str {
    match factor {
        "totp" => "authenticator app",
        "recovery_code" => "set of recovery codes",
        "all" => "set of sign-in methods",
        // Passkeys are audited by their id.
        _ => "passkey",
    }
}
