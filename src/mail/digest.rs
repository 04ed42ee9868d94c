//! The admins' daily digest: what could not be delivered in the last day (and what
//! other parts of the hub report as failed, such as outbox dead letters), queued as
//! one email per `[mail] admin_digest_to` address, once per district day.

use serde_json::json;

use super::{repo, MailError, Notice, Template};
use crate::clock::Timestamp;
use crate::AppState;

/// Something else that failed, for the digest (e.g. an outbox dead letter).
pub type OtherFailures = Vec<String>;

/// Queues the digest of the day before `now` for every configured admin address,
/// with the failed deliveries of the mail outbox and `other` lines from the other
/// failure sources. Keyed by the district's date, so running it twice a day (or
/// on two replicas) queues it once. Returns how many were queued. Nothing is queued
/// when nothing failed.
pub async fn digest(
    app: &AppState,
    now: Timestamp,
    other: OtherFailures,
) -> Result<usize, MailError> {
    let recipients = &app.config().mail.admin_digest_to;
    if recipients.is_empty() {
        return Ok(0);
    }
    let since = now.minus(std::time::Duration::from_secs(86_400));
    let failed = repo::failed_since(app.store(), since).await?;
    let failed: Vec<_> = failed
        .into_iter()
        .filter(|m| m.template != Template::AdminDigest.name())
        .collect();
    if failed.is_empty() && other.is_empty() {
        return Ok(0);
    }
    let failures: Vec<_> = failed
        .iter()
        .map(|m| {
            json!({
                "recipient": m.recipient,
                "template": m.template,
                "error": m.last_error.clone().unwrap_or_default(),
            })
        })
        .collect();
    let data = json!({
        "at": now.as_millis(),
        "failed_count": failed.len(),
        "failures": failures,
        "other": other,
    });
    let day = crate::calendar::date_at(now, app.config().district.time_zone.tz());
    let mut tx = app.store().begin().await?;
    let mut queued = 0;
    for to in recipients {
        let notice = Notice {
            key: format!("admin-digest:{day}:{}", to.to_lowercase()),
            template: Template::AdminDigest,
            recipient: to.clone(),
            data: data.clone(),
        };
        if super::enqueue(&mut tx, now, notice).await? {
            queued += 1;
        }
    }
    tx.commit().await.map_err(crate::store::StoreError::from)?;
    Ok(queued)
}

/// The job the scheduler runs once a day: the digest of failed deliveries.
pub async fn send_daily_digest(app: &AppState, now: Timestamp) -> Result<usize, MailError> {
    digest(app, now, Vec::new()).await
}
