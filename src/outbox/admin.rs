//! What admins do with subscribers (through the API and the CLI): register a webhook
//! (its secret shown once), pause and resume, enable one the hub disabled, replay
//! from a position, requeue dead letters, rotate a webhook's secret, delete. Each is
//! one transaction with its audit event. Configured subscribers are registered from
//! the configuration at start and are read-only here except for their state.

use serde::Serialize;

use super::dead_letters_repo::{self as letters, StoredDeadLetter};
use super::dispatch::SECRET_LABEL;
use super::sinks::WebhookSecret;
use super::subscriber::{
    check_subscriber_name, check_webhook_url, Health, SinkKind, Subscriber, SubscriberSource,
    SubscriberState, SubscriberView, TypeFilter,
};
use super::subscribers_repo::{self as repo, NewSubscriber};
use super::OutboxError;
use crate::audit::{self, Entry, Origin, Outcome};
use crate::clock::Timestamp;
use crate::config::StartAt;
use crate::error::FieldError;
use crate::store::{StoreError, Tx};
use crate::AppState;

/// Registers the subscribers the configuration declares (new ones start where
/// `start_at` says) and brings their settings up to date. Safe on several replicas
/// at once.
pub async fn sync_configured(app: &AppState) -> Result<(), OutboxError> {
    let cfg = &app.config().outbox;
    let now = app.clock().now();
    let declared = cfg
        .nats
        .iter()
        .map(|n| {
            (
                n.name.as_str(),
                SinkKind::Nats,
                None,
                &n.types,
                None,
                n.start_at,
            )
        })
        .chain(cfg.rabbitmq.iter().map(|r| {
            (
                r.name.as_str(),
                SinkKind::Rabbitmq,
                None,
                &r.types,
                None,
                r.start_at,
            )
        }))
        .chain(cfg.webhooks.iter().map(|w| {
            (
                w.name.as_str(),
                SinkKind::Webhook,
                Some(w.url.as_str()),
                &w.types,
                w.owner_email.as_deref(),
                w.start_at,
            )
        }));
    for (name, kind, url, types, owner, start_at) in declared {
        let types = TypeFilter::parse(types).map_err(OutboxError::BadFilter)?;
        let mut tx = app.store().begin().await?;
        let cursor = match start_at {
            StartAt::Earliest => 0,
            StartAt::Latest => repo::head_in(&mut tx).await?,
        };
        let inserted = repo::insert(
            &mut tx,
            now,
            &NewSubscriber {
                name,
                kind,
                source: SubscriberSource::Config,
                url,
                secret_sealed: None,
                types: &types,
                owner_email: owner,
                cursor,
            },
        )
        .await?;
        if inserted.is_none() {
            repo::refresh_configured(&mut tx, now, name, url, &types, owner).await?;
        }
        tx.commit().await.map_err(StoreError::from)?;
    }
    Ok(())
}

fn configured(app: &AppState, s: &Subscriber) -> bool {
    let cfg = &app.config().outbox;
    match (s.source, s.kind) {
        (SubscriberSource::Api, _) => true,
        (SubscriberSource::Config, SinkKind::Nats) => cfg.nats.iter().any(|n| n.name == s.name),
        (SubscriberSource::Config, SinkKind::Rabbitmq) => {
            cfg.rabbitmq.iter().any(|n| n.name == s.name)
        }
        (SubscriberSource::Config, SinkKind::Webhook) => {
            cfg.webhooks.iter().any(|n| n.name == s.name)
        }
    }
}

async fn view(app: &AppState, s: &Subscriber, head: i64) -> Result<SubscriberView, OutboxError> {
    let now = app.clock().now();
    let oldest = repo::oldest_after(app.store(), s.cursor).await?;
    let health = Health {
        cursor: s.cursor,
        pending: (head - s.cursor).max(0),
        oldest_pending_seconds: oldest.map(|t| now.saturating_sub(t).as_secs() as i64),
        attempts: s.attempts,
        next_attempt: (s.attempts > 0).then(|| s.next_attempt_at.to_rfc3339()),
        last_error: s.last_error.clone(),
        last_success: s.last_success_at.map(|t| t.to_rfc3339()),
        last_failure: s.last_failure_at.map(|t| t.to_rfc3339()),
        dead_letters: letters::count_dead_letters(app.store(), &s.id).await?,
    };
    Ok(s.view(configured(app, s), health))
}

pub async fn list_subscribers(app: &AppState) -> Result<Vec<SubscriberView>, OutboxError> {
    let head = repo::head(app.store()).await?;
    let mut out = Vec::new();
    for s in repo::list(app.store()).await? {
        out.push(view(app, &s, head).await?);
    }
    Ok(out)
}

async fn find(app: &AppState, key: &str) -> Result<Subscriber, OutboxError> {
    repo::find(app.store(), key)
        .await?
        .ok_or_else(|| OutboxError::NotFound(key.to_string()))
}

/// By id or name.
pub async fn get_subscriber(app: &AppState, key: &str) -> Result<SubscriberView, OutboxError> {
    let s = find(app, key).await?;
    view(app, &s, repo::head(app.store()).await?).await
}

/// A webhook endpoint to register.
#[derive(Debug, Clone, serde::Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct NewWebhook {
    pub name: String,
    pub url: String,
    #[serde(default)]
    pub types: Vec<String>,
    #[serde(default)]
    pub owner_email: Option<String>,
    /// `latest` (default): events from now on; `earliest`: every event still kept.
    #[serde(default = "latest")]
    pub start_at: StartAt,
}

fn latest() -> StartAt {
    StartAt::Latest
}

fn check_email(e: &str) -> bool {
    let mut parts = e.split('@');
    matches!((parts.next(), parts.next(), parts.next()), (Some(l), Some(d), None)
        if !l.is_empty() && d.contains('.') && !e.chars().any(|c| c.is_whitespace() || c.is_control()) && e.len() <= 254)
}

async fn record(
    app: &AppState,
    tx: &mut Tx,
    origin: &Origin,
    action: &str,
    s: &Subscriber,
    details: serde_json::Value,
) -> Result<(), OutboxError> {
    audit::record(
        tx,
        app.audit_key(),
        app.clock().now_ms(),
        origin,
        Entry {
            action,
            outcome: Outcome::Success,
            target_kind: "subscriber",
            target_id: &s.id,
            details,
        },
    )
    .await?;
    Ok(())
}

/// Registers a webhook endpoint; the answer carries its secret, which is shown
/// this once (only a sealed copy is kept, for signing).
pub async fn create_webhook(
    app: &AppState,
    origin: &Origin,
    new: NewWebhook,
) -> Result<(SubscriberView, String), OutboxError> {
    let mut errors = Vec::new();
    if let Err(e) = check_subscriber_name(&new.name) {
        errors.push(FieldError::new("name", e));
    }
    if let Err(e) = check_webhook_url(&new.url) {
        errors.push(FieldError::new("url", e));
    }
    let types = TypeFilter::parse(&new.types).map_err(|e| errors.push(FieldError::new("types", e)));
    if let Some(e) = &new.owner_email {
        if !check_email(e) {
            errors.push(FieldError::new("ownerEmail", "is not an email address"));
        }
    }
    if app
        .config()
        .outbox
        .webhooks
        .iter()
        .any(|w| w.name == new.name)
        || app.config().outbox.nats.iter().any(|w| w.name == new.name)
        || app
            .config()
            .outbox
            .rabbitmq
            .iter()
            .any(|w| w.name == new.name)
    {
        errors.push(FieldError::new("name", "is declared in the configuration"));
    }
    let Ok(types) = types else {
        return Err(OutboxError::Invalid(errors));
    };
    if !errors.is_empty() {
        return Err(OutboxError::Invalid(errors));
    }
    let (_, secret) = WebhookSecret::generate();
    let sealed = crate::crypto::seal(app.master_key(), SECRET_LABEL, secret.as_bytes())
        .map_err(|e| OutboxError::Sink(format!("cannot seal the secret: {e}")))?;
    let now = app.clock().now();
    let mut tx = app.store().begin().await?;
    let cursor = match new.start_at {
        StartAt::Earliest => 0,
        StartAt::Latest => repo::head_in(&mut tx).await?,
    };
    let Some(id) = repo::insert(
        &mut tx,
        now,
        &NewSubscriber {
            name: &new.name,
            kind: SinkKind::Webhook,
            source: SubscriberSource::Api,
            url: Some(&new.url),
            secret_sealed: Some(&sealed),
            types: &types,
            owner_email: new.owner_email.as_deref(),
            cursor,
        },
    )
    .await?
    else {
        return Err(OutboxError::Duplicate(new.name));
    };
    let s = repo::find_in(&mut tx, &id)
        .await?
        .ok_or_else(|| OutboxError::NotFound(id.clone()))?;
    record(
        app,
        &mut tx,
        origin,
        "outbox.subscriber.create",
        &s,
        serde_json::json!({"name": s.name, "kind": "webhook", "url": new.url, "types": new.types}),
    )
    .await?;
    tx.commit().await.map_err(StoreError::from)?;
    Ok((get_subscriber(app, &s.id).await?, secret))
}

/// A new secret for a webhook registered through the API, shown once; the old one
/// stops working at once.
pub async fn rotate_webhook_secret(
    app: &AppState,
    origin: &Origin,
    key: &str,
) -> Result<(SubscriberView, String), OutboxError> {
    let (_, secret) = WebhookSecret::generate();
    let sealed = crate::crypto::seal(app.master_key(), SECRET_LABEL, secret.as_bytes())
        .map_err(|e| OutboxError::Sink(format!("cannot seal the secret: {e}")))?;
    let mut tx = app.store().begin().await?;
    let s = found(repo::find_in(&mut tx, key).await?, key)?;
    if s.source != SubscriberSource::Api || s.kind != SinkKind::Webhook {
        return Err(OutboxError::ReadOnly(format!(
            "{} is not a webhook registered through the API; its secret is in the configuration",
            s.name
        )));
    }
    repo::set_secret(&mut tx, &s.id, &sealed, app.clock().now()).await?;
    record(
        app,
        &mut tx,
        origin,
        "outbox.subscriber.rotate_secret",
        &s,
        serde_json::json!({"name": s.name}),
    )
    .await?;
    tx.commit().await.map_err(StoreError::from)?;
    Ok((get_subscriber(app, &s.id).await?, secret))
}

fn found(s: Option<Subscriber>, key: &str) -> Result<Subscriber, OutboxError> {
    s.ok_or_else(|| OutboxError::NotFound(key.to_string()))
}

/// Pauses (`Paused`) or resumes (`Active`) a subscriber; resuming one the hub
/// disabled also clears its retry state.
pub async fn set_state(
    app: &AppState,
    origin: &Origin,
    key: &str,
    state: SubscriberState,
) -> Result<SubscriberView, OutboxError> {
    let mut tx = app.store().begin().await?;
    let s = found(repo::find_in(&mut tx, key).await?, key)?;
    if s.state != state {
        let reason = (state == SubscriberState::Paused).then_some("paused by an admin");
        repo::set_state(&mut tx, &s.id, state, reason, app.clock().now()).await?;
        record(
            app,
            &mut tx,
            origin,
            "outbox.subscriber.state",
            &s,
            serde_json::json!({"name": s.name, "from": s.state.as_str(), "to": state.as_str()}),
        )
        .await?;
    }
    tx.commit().await.map_err(StoreError::from)?;
    get_subscriber(app, &s.id).await
}

/// Sends everything again from position `from` (1: every event still kept).
pub async fn replay(
    app: &AppState,
    origin: &Origin,
    key: &str,
    from: i64,
) -> Result<SubscriberView, OutboxError> {
    let mut tx = app.store().begin().await?;
    let s = found(repo::find_in(&mut tx, key).await?, key)?;
    let head = repo::head_in(&mut tx).await?;
    if from < 1 || from > head + 1 {
        return Err(OutboxError::Invalid(vec![FieldError::new(
            "fromSequence",
            format!("must be between 1 and {} (the next event)", head + 1),
        )]));
    }
    repo::set_cursor(&mut tx, &s.id, from - 1, app.clock().now()).await?;
    record(
        app,
        &mut tx,
        origin,
        "outbox.subscriber.replay",
        &s,
        serde_json::json!({"name": s.name, "fromSequence": from, "previousCursor": s.cursor}),
    )
    .await?;
    tx.commit().await.map_err(StoreError::from)?;
    get_subscriber(app, &s.id).await
}

pub async fn delete_subscriber(
    app: &AppState,
    origin: &Origin,
    key: &str,
) -> Result<(), OutboxError> {
    let mut tx = app.store().begin().await?;
    let s = found(repo::find_in(&mut tx, key).await?, key)?;
    if s.source == SubscriberSource::Config && configured(app, &s) {
        return Err(OutboxError::ReadOnly(format!(
            "{} is declared in the configuration: remove it there first",
            s.name
        )));
    }
    repo::delete(&mut tx, &s.id).await?;
    record(
        app,
        &mut tx,
        origin,
        "outbox.subscriber.delete",
        &s,
        serde_json::json!({"name": s.name}),
    )
    .await?;
    tx.commit().await.map_err(StoreError::from)?;
    Ok(())
}

pub async fn dead_letters(
    app: &AppState,
    key: &str,
    state: Option<&str>,
    after: i64,
    limit: i64,
) -> Result<Vec<StoredDeadLetter>, OutboxError> {
    if let Some(s) = state {
        if s != "dead" && s != "requeued" {
            return Err(OutboxError::BadFilter(
                "state must be dead or requeued".into(),
            ));
        }
    }
    let s = find(app, key).await?;
    letters::dead_letters(app.store(), &s.id, state, after, limit).await
}

/// How many dead letters were requeued.
#[derive(Debug, Serialize)]
pub struct Requeued {
    pub requeued: u64,
}

/// Marks dead letters (the listed positions, or all) for another try.
pub async fn requeue(
    app: &AppState,
    origin: &Origin,
    key: &str,
    sequences: &[i64],
) -> Result<Requeued, OutboxError> {
    let mut tx = app.store().begin().await?;
    let s = found(repo::find_in(&mut tx, key).await?, key)?;
    let n = letters::requeue(&mut tx, &s.id, sequences, app.clock().now()).await?;
    if n > 0 {
        record(
            app,
            &mut tx,
            origin,
            "outbox.dead_letters.requeue",
            &s,
            serde_json::json!({"name": s.name, "count": n, "sequences": sequences}),
        )
        .await?;
    }
    tx.commit().await.map_err(StoreError::from)?;
    Ok(Requeued { requeued: n })
}

/// Deletes events past `[outbox] retention` that every active subscriber has; how
/// many. Runs in bounded steps.
pub async fn sweep(app: &AppState, now: Timestamp) -> Result<u64, OutboxError> {
    let before = now.minus(app.config().outbox.retention);
    let mut total = 0;
    loop {
        let n = repo::sweep(app.store(), before, 5000).await?;
        total += n;
        if n < 5000 {
            return Ok(total);
        }
    }
}
