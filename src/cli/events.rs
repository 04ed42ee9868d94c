//! `hms-ach events …`: the outbox's subscribers, replay and dead letters from the
//! command line (the same operations as `/api/v1/subscribers`, audited as the CLI).

use crate::audit::Origin;
use crate::config::Config;
use crate::outbox::{self, SubscriberState, SubscriberView};

fn print_subscriber(v: &SubscriberView) {
    let h = &v.health;
    println!(
        "{:<20} {:<8} {:<8} {:<9} cursor={} pending={} oldest={} dead_letters={}{}",
        v.name,
        v.kind.as_str(),
        v.source_name(),
        v.state.as_str(),
        h.cursor,
        h.pending,
        h.oldest_pending_seconds
            .map_or_else(|| "-".to_string(), |s| format!("{s}s")),
        h.dead_letters,
        h.last_error
            .as_deref()
            .filter(|_| h.attempts > 0 || v.state != SubscriberState::Active)
            .map_or_else(String::new, |e| format!("  last error: {e}")),
    );
}

pub async fn subscribers(config: Config, json: bool) -> anyhow::Result<()> {
    let app = super::open_app(config).await?;
    outbox::sync_configured(&app).await?;
    let views = outbox::list_subscribers(&app).await?;
    if json {
        println!("{}", serde_json::to_string_pretty(&views)?);
    } else if views.is_empty() {
        println!("no subscribers; declare [[outbox.nats]], [[outbox.rabbitmq]] or [[outbox.webhooks]] in the configuration, or POST /api/v1/subscribers");
    } else {
        for v in &views {
            print_subscriber(v);
        }
    }
    Ok(())
}

pub async fn replay(config: Config, name: &str, from: i64) -> anyhow::Result<()> {
    let app = super::open_app(config).await?;
    let v = outbox::replay(&app, &Origin::cli(), name, from).await?;
    println!(
        "{}: events from position {from} will be sent again ({} pending)",
        v.name, v.health.pending
    );
    Ok(())
}

pub async fn set_state(config: Config, name: &str, state: SubscriberState) -> anyhow::Result<()> {
    let app = super::open_app(config).await?;
    let v = outbox::set_state(&app, &Origin::cli(), name, state).await?;
    print_subscriber(&v);
    Ok(())
}

pub async fn dead_letters(config: Config, name: &str, json: bool) -> anyhow::Result<()> {
    let app = super::open_app(config).await?;
    let mut after = 0;
    let mut all = Vec::new();
    loop {
        let page = outbox::dead_letters(&app, name, None, after, 500).await?;
        let Some(last) = page.last() else { break };
        after = last.sequence;
        all.extend(page);
    }
    if json {
        println!("{}", serde_json::to_string_pretty(&all)?);
    } else if all.is_empty() {
        println!("{name}: no dead letters");
    } else {
        for d in &all {
            println!(
                "{:>8} {:<9} {:<36} {:<34} {} attempts, dead {}: {}",
                d.sequence, d.state, d.event_id, d.kind, d.attempts, d.dead, d.last_error
            );
        }
    }
    Ok(())
}

pub async fn requeue(config: Config, name: &str, sequences: &[i64]) -> anyhow::Result<()> {
    let app = super::open_app(config).await?;
    let r = outbox::requeue(&app, &Origin::cli(), name, sequences).await?;
    println!("{name}: {} dead letter(s) requeued", r.requeued);
    Ok(())
}

pub async fn sweep(config: Config) -> anyhow::Result<()> {
    let app = super::open_app(config).await?;
    let n = outbox::sweep(&app, app.clock().now()).await?;
    println!("{n} event(s) past retention deleted");
    Ok(())
}
