//! Dispatch: every replica runs a supervisor that keeps one worker task per active
//! subscriber, so a slow or broken receiver never holds up another. A worker takes
//! its subscriber's lease (one replica at a time), reads the events after the
//! cursor in order, hands the matching ones to the sink, and moves the cursor past
//! what the receiver confirmed. A failure keeps the cursor just before the event
//! that failed and waits (exponential backoff with jitter); after `max_attempts`
//! the event becomes a dead letter and the cursor moves on; after
//! `disable_after_dead_letters` in a row the subscriber is disabled and the events
//! wait for an admin. Delivery is at least once: a crash between the receiver's
//! confirmation and the cursor's move sends the batch again, with the same ids.

use rand::Rng;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;
use tokio::task::JoinHandle;

use super::dead_letters_repo as letters;
use super::sinks::{
    Delivery, NatsSink, Outgoing, RabbitSink, Sink, SinkFailure, WebhookSecret, WebhookSink,
};
use super::subscriber::{SinkKind, Subscriber, SubscriberSource, SubscriberState};
use super::subscribers_repo as repo;
use super::{OutboxError, OutboxEvent};
use crate::audit::{self, Entry, Origin, Outcome};
use crate::clock::Timestamp;
use crate::store::StoreError;
use crate::AppState;

/// The label a webhook secret is sealed under.
pub(super) const SECRET_LABEL: &str = "outbox.webhook-secret";

/// The wait before try `attempts + 1`: `first · 2^(attempts-1)`, capped at `max`,
/// of which the upper half is random ("equal jitter"), so receivers that come back
/// are not hit by every replica and subscriber at once.
pub fn backoff(first: Duration, max: Duration, attempts: i64, unit: f64) -> Duration {
    let exp = u32::try_from(attempts.saturating_sub(1).clamp(0, 30)).unwrap_or(30);
    let full = first.saturating_mul(2u32.saturating_pow(exp)).min(max);
    let half = full / 2;
    half + half.mul_f64(unit.clamp(0.0, 1.0))
}

/// What one round did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Round {
    /// Whether this replica held the subscriber's lease.
    pub claimed: bool,
    pub delivered: usize,
    pub duplicates: usize,
    pub failed: bool,
    pub dead_lettered: bool,
    pub disabled: bool,
    /// A full batch was read: more may be waiting.
    pub more: bool,
}

/// Builds the sink a subscriber sends through: from the configuration for the
/// configured ones, from its row (URL, sealed secret) for webhooks made through the
/// API. `None`: a configured subscriber no longer in the configuration.
pub fn sink_for(app: &AppState, sub: &Subscriber) -> Result<Option<Arc<dyn Sink>>, OutboxError> {
    let cfg = &app.config().outbox;
    let timeout = cfg.send_timeout;
    let sink: Option<Arc<dyn Sink>> = match (sub.source, sub.kind) {
        (SubscriberSource::Config, SinkKind::Nats) => cfg
            .nats
            .iter()
            .find(|n| n.name == sub.name)
            .map(|n| Arc::new(NatsSink::new(n.clone(), timeout)) as Arc<dyn Sink>),
        (SubscriberSource::Config, SinkKind::Rabbitmq) => cfg
            .rabbitmq
            .iter()
            .find(|r| r.name == sub.name)
            .map(|r| Arc::new(RabbitSink::new(r.clone(), timeout)) as Arc<dyn Sink>),
        (SubscriberSource::Config, SinkKind::Webhook) => {
            match cfg.webhooks.iter().find(|w| w.name == sub.name) {
                None => None,
                Some(w) => {
                    let url = super::check_webhook_url(&w.url).map_err(OutboxError::BadFilter)?;
                    let secret = WebhookSecret::parse(w.secret.expose()).ok_or_else(|| {
                        OutboxError::BadFilter("the webhook secret is not whsec_…".into())
                    })?;
                    Some(Arc::new(
                        WebhookSink::new(url, secret, timeout).map_err(OutboxError::Sink)?,
                    ))
                }
            }
        }
        (SubscriberSource::Api, SinkKind::Webhook) => {
            let url = sub
                .url
                .as_deref()
                .ok_or_else(|| {
                    OutboxError::Store(StoreError::Corrupt("webhook without url".into()))
                })
                .and_then(|u| super::check_webhook_url(u).map_err(OutboxError::BadFilter))?;
            let sealed = sub.secret_sealed.as_deref().ok_or_else(|| {
                OutboxError::Store(StoreError::Corrupt("webhook without secret".into()))
            })?;
            let text = crate::crypto::open(app.master_key(), SECRET_LABEL, sealed)
                .map_err(|e| OutboxError::Sink(format!("cannot open the webhook secret: {e}")))?;
            let secret = std::str::from_utf8(&text)
                .ok()
                .and_then(WebhookSecret::parse)
                .ok_or_else(|| {
                    OutboxError::Sink("the stored webhook secret is malformed".into())
                })?;
            Some(Arc::new(
                WebhookSink::new(url, secret, timeout).map_err(OutboxError::Sink)?,
            ))
        }
        (SubscriberSource::Api, _) => None,
    };
    Ok(sink)
}

fn outgoing(app: &AppState, e: &OutboxEvent) -> Outgoing {
    let body = serde_json::to_vec(&e.to_cloudevent(app.issuer())).unwrap_or_default();
    Outgoing {
        seq: e.seq,
        id: e.id.clone(),
        kind: e.kind.clone(),
        created_at: e.created_at,
        body,
    }
}

/// One round for one subscriber, as replica `me`: claim, send, move the cursor.
pub async fn deliver_once(
    app: &AppState,
    me: &str,
    sub_key: &str,
    sink: &dyn Sink,
) -> Result<Round, OutboxError> {
    let store = app.store();
    let cfg = &app.config().outbox;
    let Some(sub) = repo::find(store, sub_key).await? else {
        return Err(OutboxError::NotFound(sub_key.to_string()));
    };
    let now = app.clock().now();
    let until = now.plus(cfg.lease);
    if !repo::claim(store, &sub.id, me, now, until).await? {
        return Ok(Round::default());
    }
    let mut round = Round {
        claimed: true,
        ..Round::default()
    };
    // Dead letters an admin asked to try again go first.
    let requeued =
        letters::dead_letters(store, &sub.id, Some("requeued"), 0, cfg.batch_size).await?;
    if !requeued.is_empty() {
        let batch: Vec<Outgoing> = requeued
            .iter()
            .map(|d| Outgoing {
                seq: d.sequence,
                id: d.event_id.clone(),
                kind: d.kind.clone(),
                created_at: now,
                body: d.event.clone().into_bytes(),
            })
            .collect();
        let d = sink.deliver(&batch, now).await;
        let done: Vec<i64> = batch[..d.delivered].iter().map(|o| o.seq).collect();
        letters::delete_requeued(store, &sub.id, &done).await?;
        crate::ops::metrics::outbox_delivered(&sub.name, d.delivered, d.duplicates, &[]);
        round.delivered += d.delivered;
        round.duplicates += d.duplicates;
        if let Some(f) = d.failure {
            fail(app, me, &sub, sub.cursor, None, f, &mut round).await?;
            return Ok(round);
        }
    }
    let events = repo::events_after(store, sub.cursor, cfg.batch_size).await?;
    let Some(last) = events.last() else {
        return Ok(round);
    };
    round.more = events.len() as i64 == cfg.batch_size;
    let matching: Vec<&OutboxEvent> = events
        .iter()
        .filter(|e| sub.types.matches(&e.kind))
        .collect();
    if matching.is_empty() {
        repo::advance(store, &sub.id, me, last.seq, now, false).await?;
        return Ok(round);
    }
    let batch: Vec<Outgoing> = matching.iter().map(|e| outgoing(app, e)).collect();
    let Delivery {
        delivered,
        duplicates,
        failure,
    } = sink.deliver(&batch, now).await;
    let after = app.clock().now();
    let latencies: Vec<f64> = batch[..delivered]
        .iter()
        .map(|o| after.saturating_sub(o.created_at).as_secs_f64())
        .collect();
    crate::ops::metrics::outbox_delivered(&sub.name, delivered, duplicates, &latencies);
    round.delivered += delivered;
    round.duplicates += duplicates;
    match failure {
        None => {
            repo::advance(store, &sub.id, me, last.seq, after, true).await?;
        }
        Some(f) => {
            let failed = matching[delivered];
            // What was confirmed stays confirmed; the cursor waits just before the failure.
            if delivered > 0 {
                repo::advance(store, &sub.id, me, failed.seq - 1, after, true).await?;
            }
            let fresh = repo::find(store, &sub.id).await?.unwrap_or(sub);
            round.more = false;
            fail(app, me, &fresh, failed.seq - 1, Some(failed), f, &mut round).await?;
        }
    }
    Ok(round)
}

/// Records a failed try of `failed` (or of the requeued dead letters when `None`).
async fn fail(
    app: &AppState,
    me: &str,
    sub: &Subscriber,
    cursor: i64,
    failed: Option<&OutboxEvent>,
    f: SinkFailure,
    round: &mut Round,
) -> Result<(), OutboxError> {
    let cfg = &app.config().outbox;
    let now = app.clock().now();
    round.failed = true;
    crate::ops::metrics::outbox_failed(&sub.name);
    // The same event failing again counts on; a new head starts at one.
    let attempts = if sub.cursor == cursor {
        sub.attempts + 1
    } else {
        1
    };
    tracing::warn!(subscriber = %sub.name, attempts, error = %f.message, "outbox delivery failed");
    let mut tx = app.store().begin().await?;
    let mut disable: Option<String> = None;
    if f.gone {
        disable = Some(format!("disabled: {}", f.message));
        repo::record_failure(&mut tx, &sub.id, me, cursor, attempts, now, now, &f.message).await?;
    } else if attempts >= cfg.max_attempts {
        match failed {
            Some(ev) => {
                let body =
                    serde_json::to_string(&ev.to_cloudevent(app.issuer())).unwrap_or_default();
                letters::insert_dead_letter(
                    &mut tx,
                    now,
                    &letters::DeadLetter {
                        subscriber_id: &sub.id,
                        seq: ev.seq,
                        event_id: &ev.id,
                        kind: &ev.kind,
                        subject: &ev.subject,
                        event: &body,
                        attempts,
                        last_error: &f.message,
                    },
                )
                .await?;
                round.dead_lettered = true;
                crate::ops::metrics::outbox_dead_letter(&sub.name);
                let reason = (sub.dead_in_a_row + 1 >= cfg.disable_after_dead_letters).then(|| {
                    format!(
                        "disabled after {} dead letters in a row; last error: {}",
                        sub.dead_in_a_row + 1,
                        f.message
                    )
                });
                repo::pass_dead_letter(
                    &mut tx,
                    &sub.id,
                    me,
                    ev.seq,
                    now,
                    &f.message,
                    reason.as_deref(),
                )
                .await?;
                if let Some(r) = reason {
                    round.disabled = true;
                    audit_disable(app, &mut tx, sub, &r, now).await?;
                }
                tx.commit().await.map_err(StoreError::from)?;
                return Ok(());
            }
            None => {
                letters::return_requeued(&mut tx, &sub.id).await?;
                repo::record_failure(&mut tx, &sub.id, me, cursor, 0, now, now, &f.message).await?;
            }
        }
    } else {
        let wait = backoff(
            cfg.first_retry,
            cfg.max_retry,
            attempts,
            rand::thread_rng().gen::<f64>(),
        );
        repo::record_failure(
            &mut tx,
            &sub.id,
            me,
            cursor,
            attempts,
            now.plus(wait),
            now,
            &f.message,
        )
        .await?;
    }
    if let Some(reason) = disable {
        repo::set_state(
            &mut tx,
            &sub.id,
            SubscriberState::Disabled,
            Some(&reason),
            now,
        )
        .await?;
        round.disabled = true;
        audit_disable(app, &mut tx, sub, &reason, now).await?;
    }
    tx.commit().await.map_err(StoreError::from)?;
    Ok(())
}

async fn audit_disable(
    app: &AppState,
    tx: &mut crate::store::Tx,
    sub: &Subscriber,
    reason: &str,
    now: Timestamp,
) -> Result<(), OutboxError> {
    tracing::error!(subscriber = %sub.name, %reason, "outbox subscriber disabled");
    audit::record(
        tx,
        app.audit_key(),
        now.as_millis(),
        &Origin::system("outbox-dispatch"),
        Entry {
            action: "outbox.subscriber.disable",
            outcome: Outcome::Success,
            target_kind: "subscriber",
            target_id: &sub.id,
            details: serde_json::json!({ "name": sub.name, "reason": reason }),
        },
    )
    .await?;
    Ok(())
}

/// The dispatcher of one replica: a supervisor and one worker per active subscriber.
pub struct DispatchHandle {
    supervisor: JoinHandle<()>,
    app: AppState,
    replica: String,
}

impl DispatchHandle {
    /// Stops every worker and gives up this replica's leases, so another replica
    /// takes over without waiting for them to run out.
    pub async fn stop(self) {
        self.supervisor.abort();
        let _ = self.supervisor.await;
        if let Err(e) = repo::release_all(self.app.store(), &self.replica).await {
            tracing::warn!(error = %e, "releasing the outbox leases failed");
        }
    }
}

/// Starts dispatch on this replica (when `[outbox] dispatch` is on): the configured
/// subscribers are registered first.
pub async fn start(app: AppState) -> Result<Option<DispatchHandle>, OutboxError> {
    super::admin::sync_configured(&app).await?;
    if !app.config().outbox.dispatch {
        return Ok(None);
    }
    let replica = format!("replica-{}", crate::store::new_id());
    let supervisor = tokio::spawn(supervise(app.clone(), replica.clone()));
    Ok(Some(DispatchHandle {
        supervisor,
        app,
        replica,
    }))
}

struct Workers(HashMap<String, (Timestamp, JoinHandle<()>)>);

impl Drop for Workers {
    fn drop(&mut self) {
        for (_, (_, h)) in self.0.drain() {
            h.abort();
        }
    }
}

async fn supervise(app: AppState, replica: String) {
    let mut workers = Workers(HashMap::new());
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    loop {
        tick.tick().await;
        let subs = match repo::list(app.store()).await {
            Ok(s) => s,
            Err(e) => {
                tracing::warn!(error = %e, "listing outbox subscribers failed");
                continue;
            }
        };
        workers.0.retain(|id, (version, h)| {
            let current = subs.iter().find(|s| &s.id == id);
            let keep = !h.is_finished()
                && current.is_some_and(|s| {
                    s.updated_at == *version && s.state == SubscriberState::Active
                });
            if !keep {
                h.abort();
            }
            keep
        });
        for sub in subs {
            let gauge_oldest = match repo::oldest_after(app.store(), sub.cursor).await {
                Ok(t) => t.map_or(0.0, |t| app.clock().now().saturating_sub(t).as_secs_f64()),
                Err(_) => 0.0,
            };
            let head = repo::head(app.store()).await.unwrap_or(sub.cursor);
            crate::ops::metrics::outbox_backlog(
                &sub.name,
                (head - sub.cursor).max(0),
                gauge_oldest,
                sub.state == SubscriberState::Active,
            );
            if sub.state != SubscriberState::Active || workers.0.contains_key(&sub.id) {
                continue;
            }
            let sink = match sink_for(&app, &sub) {
                Ok(Some(s)) => s,
                Ok(None) => continue,
                Err(e) => {
                    tracing::error!(subscriber = %sub.name, error = %e, "cannot build the subscriber's sink");
                    continue;
                }
            };
            let task = tokio::spawn(work(app.clone(), replica.clone(), sub.id.clone(), sink));
            workers.0.insert(sub.id, (sub.updated_at, task));
        }
    }
}

/// One subscriber's worker: rounds while there is work, a short sleep when idle or
/// waiting for a retry, a longer one while another replica holds the lease.
async fn work(app: AppState, replica: String, id: String, sink: Arc<dyn Sink>) {
    let poll = app.config().outbox.poll_interval;
    loop {
        let wait = match repo::find(app.store(), &id).await {
            Ok(Some(sub)) if sub.state == SubscriberState::Active => {
                let now = app.clock().now();
                if sub.next_attempt_at > now {
                    sub.next_attempt_at
                        .saturating_sub(now)
                        .min(Duration::from_secs(1))
                } else {
                    match due(&app, &sub).await {
                        Ok(false) => poll,
                        Ok(true) => match deliver_once(&app, &replica, &id, sink.as_ref()).await {
                            Ok(r) if r.more => Duration::ZERO,
                            Ok(r) if !r.claimed => Duration::from_secs(1),
                            Ok(_) => poll,
                            Err(e) => {
                                tracing::warn!(subscriber = %sub.name, error = %e, "outbox dispatch round failed");
                                Duration::from_secs(1)
                            }
                        },
                        Err(e) => {
                            tracing::warn!(error = %e, "reading the outbox failed");
                            Duration::from_secs(1)
                        }
                    }
                }
            }
            // Gone, paused or disabled: the supervisor starts a new worker if it comes back.
            Ok(_) => return,
            Err(e) => {
                tracing::warn!(error = %e, "reading an outbox subscriber failed");
                Duration::from_secs(1)
            }
        };
        if !wait.is_zero() {
            tokio::time::sleep(wait).await;
        }
    }
}

/// Whether there is anything for the subscriber: events after its cursor, or
/// requeued dead letters.
async fn due(app: &AppState, sub: &Subscriber) -> Result<bool, OutboxError> {
    if repo::head(app.store()).await? > sub.cursor {
        return Ok(true);
    }
    letters::has_requeued(app.store(), &sub.id).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_the_cap_with_jitter_in_the_upper_half() {
        let first = Duration::from_secs(1);
        let max = Duration::from_secs(300);
        assert_eq!(backoff(first, max, 1, 0.0), Duration::from_millis(500));
        assert_eq!(backoff(first, max, 1, 1.0), Duration::from_secs(1));
        assert_eq!(backoff(first, max, 4, 1.0), Duration::from_secs(8));
        assert_eq!(backoff(first, max, 4, 0.5), Duration::from_secs(6));
        assert_eq!(backoff(first, max, 20, 1.0), max);
        assert_eq!(backoff(first, max, 10_000, 0.0), max / 2);
        assert_eq!(backoff(first, max, 0, 1.0), first);
    }
}
