//! The sender worker: on every replica, a loop that claims due rows of the mail
//! outbox with a lease, sends each, and records the outcome. A row is `sent` only
//! after the server accepted it; a crash between the two leaves it leased, and once
//! the lease runs out it is sent again with the same `Message-ID`.

use std::sync::Arc;
use std::time::Duration;

use rand::Rng;

use super::message;
use super::repo::{self, Outcome};
use super::sender::{Outgoing, SendError, Sender};
use super::templates::Renderer;
use super::{MailError, QueuedMail, Template};
use crate::AppState;

/// What one round did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Round {
    pub sent: usize,
    pub retried: usize,
    pub failed: usize,
}

/// The wait before attempt `attempts + 1` after a temporary failure: `base`·2^(n−1)
/// capped at `max`, then a random point in its upper half (full jitter would let a
/// retry come at once; none would let every replica's retries arrive together).
pub fn backoff(attempts: i64, base: Duration, max: Duration) -> Duration {
    let exp = u32::try_from(attempts.clamp(1, 31) - 1).unwrap_or(0);
    let full = base.saturating_mul(2u32.saturating_pow(exp)).min(max);
    let half = full / 2;
    let jitter_ms = u64::try_from(half.as_millis()).unwrap_or(0);
    half + Duration::from_millis(rand::thread_rng().gen_range(0..=jitter_ms))
}

/// One round: claims up to `[mail] batch_size` due rows for `owner` and sends them.
pub async fn deliver_due(
    app: &AppState,
    renderer: &Renderer,
    sender: &dyn Sender,
    owner: &str,
) -> Result<Round, MailError> {
    deliver_until(app, renderer, sender, owner, &|| false).await
}

/// [`deliver_due`], stopping between two messages once `stopping()` says so: the
/// rows not tried are handed back (their lease released) for the next worker.
async fn deliver_until(
    app: &AppState,
    renderer: &Renderer,
    sender: &dyn Sender,
    owner: &str,
    stopping: &(dyn Fn() -> bool + Sync),
) -> Result<Round, MailError> {
    let cfg = &app.config().mail;
    let now = app.clock().now();
    let rows = repo::claim_due(
        app.store(),
        owner,
        now,
        now.plus(cfg.lease()),
        i64::from(cfg.batch_size),
    )
    .await?;
    let mut round = Round::default();
    let mut rows = rows.into_iter();
    while let Some(row) = rows.next() {
        if stopping() {
            for left in std::iter::once(row).chain(rows.by_ref()) {
                repo::release(app.store(), &left.id, owner).await?;
            }
            break;
        }
        let result = attempt(app, renderer, sender, &row).await;
        let now = app.clock().now();
        let outcome = match &result {
            Ok(()) => Outcome::Sent { at: now },
            Err(SendError::Permanent(e)) => Outcome::Failed { at: now, error: e },
            Err(SendError::Temporary(e)) if row.attempts + 1 >= i64::from(cfg.max_attempts) => {
                Outcome::Failed { at: now, error: e }
            }
            Err(SendError::Temporary(e)) => Outcome::Retry {
                at: now.plus(backoff(row.attempts + 1, cfg.retry_base(), cfg.retry_max())),
                error: e,
            },
        };
        let recorded = repo::record_outcome(app.store(), &row.id, owner, outcome).await?;
        if !recorded {
            // Our lease ran out mid-send and another worker took the row: it sends
            // again, with the same Message-ID.
            tracing::warn!(mail = %row.id, template = %row.template, "mail lease lost before the outcome was recorded");
        }
        match outcome {
            Outcome::Sent { .. } => {
                round.sent += 1;
                crate::ops::metrics::mail_sent(&row.template);
            }
            Outcome::Retry { error, .. } => {
                round.retried += 1;
                crate::ops::metrics::mail_failed("temporary");
                tracing::warn!(mail = %row.id, template = %row.template, attempts = row.attempts + 1, error, "email not accepted; will retry");
            }
            Outcome::Failed { error, .. } => {
                round.failed += 1;
                crate::ops::metrics::mail_failed("permanent");
                tracing::error!(mail = %row.id, template = %row.template, attempts = row.attempts + 1, error, "email could not be delivered; given up");
            }
        }
    }
    Ok(round)
}

/// Renders, builds and sends one row. A row that cannot be rendered or built fails
/// for good: trying again would build the same thing.
async fn attempt(
    app: &AppState,
    renderer: &Renderer,
    sender: &dyn Sender,
    row: &QueuedMail,
) -> Result<(), SendError> {
    let permanent = |e: MailError| SendError::Permanent(e.to_string());
    let template = Template::parse(&row.template).ok_or_else(|| {
        SendError::Permanent(format!("no email template named {:?}", row.template))
    })?;
    let rendered = renderer
        .render(app.config(), template, &row.data)
        .map_err(permanent)?;
    let (message, message_id) = message::build(app.config(), row, &rendered).map_err(permanent)?;
    let outgoing = Outgoing {
        id: row.id.clone(),
        message_id,
        recipient: row.recipient.clone(),
        message,
    };
    sender.send(&outgoing).await
}

/// The worker loop `cli::serve` starts on every replica: a round a second (sooner
/// when a round was full), the pending gauge refreshed, until `stop` says so. A
/// round in progress is finished first, so no accepted message stays unrecorded.
pub async fn run(
    app: AppState,
    sender: Arc<dyn Sender>,
    mut stop: tokio::sync::watch::Receiver<bool>,
) {
    let renderer = match Renderer::new() {
        Ok(r) => r,
        Err(e) => {
            tracing::error!(error = %e, "email templates are broken; no email will be sent");
            return;
        }
    };
    let owner = format!("worker-{}", crate::store::new_id());
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = stop.changed() => break,
        }
        if *stop.borrow() {
            break;
        }
        loop {
            let stopping = || *stop.borrow();
            match deliver_until(&app, &renderer, sender.as_ref(), &owner, &stopping).await {
                Ok(r)
                    if r.sent + r.retried + r.failed >= app.config().mail.batch_size as usize
                        && !*stop.borrow() =>
                {
                    continue
                }
                Ok(_) => break,
                Err(e) => {
                    tracing::error!(error = %e, "the mail worker could not read or update the outbox");
                    break;
                }
            }
        }
        match repo::pending_stats(app.store()).await {
            Ok((n, oldest)) => crate::ops::metrics::mail_pending(
                n,
                oldest.map(|o| app.clock().now().saturating_sub(o).as_secs_f64()),
            ),
            Err(e) => tracing::debug!(error = %e, "counting pending mail failed"),
        }
    }
    tracing::info!("mail worker stopped");
}
