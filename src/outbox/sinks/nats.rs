//! NATS JetStream: each event is published to `<prefix>.<type>` with
//! `Nats-Msg-Id` = the event id, so the stream drops a re-publish inside its
//! duplicate window (a dispatcher killed after publishing and before moving its
//! cursor sends the batch again). Publishes are pipelined; the acks are awaited in
//! order.

use async_nats::jetstream::{self, stream};
use std::time::Duration;
use tokio::sync::Mutex;

use super::{describe, Delivery, Outgoing, Sink, SinkFailure};
use crate::clock::Timestamp;
use crate::config::NatsSinkConfig;

pub struct NatsSink {
    config: NatsSinkConfig,
    timeout: Duration,
    context: Mutex<Option<jetstream::Context>>,
}

impl NatsSink {
    pub fn new(config: NatsSinkConfig, timeout: Duration) -> NatsSink {
        NatsSink {
            config,
            timeout,
            context: Mutex::new(None),
        }
    }

    async fn context(&self) -> Result<jetstream::Context, SinkFailure> {
        let mut held = self.context.lock().await;
        if let Some(c) = held.as_ref() {
            return Ok(c.clone());
        }
        let client = async_nats::ConnectOptions::new()
            .connection_timeout(self.timeout)
            .request_timeout(Some(self.timeout))
            .name("hms-ach outbox")
            .connect(self.config.url.expose())
            .await
            .map_err(|e| SinkFailure::new(format!("cannot connect to NATS: {}", describe(&e))))?;
        let js = jetstream::new(client);
        if self.config.create_stream {
            js.get_or_create_stream(stream::Config {
                name: self.config.stream.clone(),
                subjects: vec![format!("{}.>", self.config.subject_prefix)],
                storage: stream::StorageType::File,
                duplicate_window: Duration::from_secs(120),
                ..Default::default()
            })
            .await
            .map_err(|e| {
                SinkFailure::new(format!(
                    "cannot find or create the stream {}: {}",
                    self.config.stream,
                    describe(&e)
                ))
            })?;
        }
        *held = Some(js.clone());
        Ok(js)
    }
}

#[async_trait::async_trait]
impl Sink for NatsSink {
    async fn deliver(&self, batch: &[Outgoing], _now: Timestamp) -> Delivery {
        let js = match self.context().await {
            Ok(js) => js,
            Err(failure) => return Delivery::refused(failure),
        };
        let mut pending = Vec::with_capacity(batch.len());
        let mut failure = None;
        for ev in batch {
            let mut headers = async_nats::HeaderMap::new();
            headers.insert("Nats-Msg-Id", ev.id.as_str());
            headers.insert("Content-Type", "application/cloudevents+json");
            let subject = format!("{}.{}", self.config.subject_prefix, ev.kind);
            match js
                .publish_with_headers(subject, headers, ev.body.clone().into())
                .await
            {
                Ok(ack) => pending.push(ack),
                Err(e) => {
                    failure = Some(SinkFailure::new(format!(
                        "publish failed: {}",
                        describe(&e)
                    )));
                    break;
                }
            }
        }
        let mut out = Delivery::default();
        for ack in pending {
            match tokio::time::timeout(self.timeout, ack).await {
                Ok(Ok(a)) => {
                    out.delivered += 1;
                    if a.duplicate {
                        out.duplicates += 1;
                    }
                }
                Ok(Err(e)) => {
                    out.failure = Some(SinkFailure::new(format!(
                        "the stream did not acknowledge: {}",
                        describe(&e)
                    )));
                    return out;
                }
                Err(_) => {
                    out.failure = Some(SinkFailure::new(format!(
                        "no acknowledgement within {} ms",
                        self.timeout.as_millis()
                    )));
                    return out;
                }
            }
        }
        out.failure = failure;
        out
    }
}
