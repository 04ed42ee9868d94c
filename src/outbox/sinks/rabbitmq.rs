//! RabbitMQ: a durable topic exchange, the event type as routing key, persistent
//! messages (delivery mode 2) with `message_id` = the event id, and publisher
//! confirms awaited in order. A re-publish after a crash carries the same
//! `message_id`, so a consumer can tell (RabbitMQ itself does not de-duplicate).

use lapin::options::{
    BasicPublishOptions, ConfirmSelectOptions, ExchangeDeclareOptions, QueueBindOptions,
    QueueDeclareOptions,
};
use lapin::types::FieldTable;
use lapin::{BasicProperties, Channel, Connection, ConnectionProperties, ExchangeKind};
use std::time::Duration;
use tokio::sync::Mutex;

use super::{describe, Delivery, Outgoing, Sink, SinkFailure};
use crate::clock::Timestamp;
use crate::config::RabbitSinkConfig;

pub struct RabbitSink {
    config: RabbitSinkConfig,
    timeout: Duration,
    /// The connection is kept with its channel (dropping it closes both).
    held: Mutex<Option<(Connection, Channel)>>,
}

impl RabbitSink {
    pub fn new(config: RabbitSinkConfig, timeout: Duration) -> RabbitSink {
        RabbitSink {
            config,
            timeout,
            held: Mutex::new(None),
        }
    }

    async fn open(&self) -> Result<(Connection, Channel), SinkFailure> {
        let fail =
            |what: &str, e: lapin::Error| SinkFailure::new(format!("{what}: {}", describe(&e)));
        let conn = Connection::connect(self.config.url.expose(), ConnectionProperties::default())
            .await
            .map_err(|e| fail("cannot connect to RabbitMQ", e))?;
        let ch = conn
            .create_channel()
            .await
            .map_err(|e| fail("cannot open a channel", e))?;
        ch.confirm_select(ConfirmSelectOptions::default())
            .await
            .map_err(|e| fail("cannot turn on publisher confirms", e))?;
        let durable = ExchangeDeclareOptions {
            durable: true,
            ..Default::default()
        };
        ch.exchange_declare(
            self.config.exchange.as_str().into(),
            ExchangeKind::Topic,
            durable,
            FieldTable::default(),
        )
        .await
        .map_err(|e| fail("cannot declare the exchange", e))?;
        if let Some(queue) = &self.config.queue {
            ch.queue_declare(
                queue.as_str().into(),
                QueueDeclareOptions {
                    durable: true,
                    ..Default::default()
                },
                FieldTable::default(),
            )
            .await
            .map_err(|e| fail("cannot declare the queue", e))?;
            ch.queue_bind(
                queue.as_str().into(),
                self.config.exchange.as_str().into(),
                "#".into(),
                QueueBindOptions::default(),
                FieldTable::default(),
            )
            .await
            .map_err(|e| fail("cannot bind the queue", e))?;
        }
        Ok((conn, ch))
    }

    async fn channel(&self) -> Result<Channel, SinkFailure> {
        let mut held = self.held.lock().await;
        if let Some((conn, ch)) = held.as_ref() {
            if conn.status().connected() && ch.status().connected() {
                return Ok(ch.clone());
            }
        }
        *held = None;
        let (conn, ch) = tokio::time::timeout(self.timeout, self.open())
            .await
            .map_err(|_| SinkFailure::new("RabbitMQ did not answer in time"))??;
        *held = Some((conn, ch.clone()));
        Ok(ch)
    }

    async fn forget(&self) {
        *self.held.lock().await = None;
    }
}

#[async_trait::async_trait]
impl Sink for RabbitSink {
    async fn deliver(&self, batch: &[Outgoing], _now: Timestamp) -> Delivery {
        let ch = match self.channel().await {
            Ok(ch) => ch,
            Err(failure) => return Delivery::refused(failure),
        };
        let mut confirms = Vec::with_capacity(batch.len());
        let mut failure = None;
        for ev in batch {
            let props = BasicProperties::default()
                .with_delivery_mode(2)
                .with_message_id(ev.id.as_str().into())
                .with_content_type("application/cloudevents+json".into())
                .with_type(ev.kind.as_str().into())
                .with_timestamp(u64::try_from(ev.created_at.as_millis() / 1000).unwrap_or(0));
            match ch
                .basic_publish(
                    self.config.exchange.as_str().into(),
                    ev.kind.as_str().into(),
                    BasicPublishOptions::default(),
                    &ev.body,
                    props,
                )
                .await
            {
                Ok(c) => confirms.push(c),
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
        for confirm in confirms {
            match tokio::time::timeout(self.timeout, confirm).await {
                Ok(Ok(c)) if c.is_ack() => out.delivered += 1,
                Ok(Ok(_)) => {
                    out.failure = Some(SinkFailure::new("the broker refused (nack) the message"));
                    break;
                }
                Ok(Err(e)) => {
                    out.failure = Some(SinkFailure::new(format!(
                        "no confirm from the broker: {}",
                        describe(&e)
                    )));
                    break;
                }
                Err(_) => {
                    out.failure = Some(SinkFailure::new(format!(
                        "no confirm within {} ms",
                        self.timeout.as_millis()
                    )));
                    break;
                }
            }
        }
        if out.failure.is_none() {
            out.failure = failure;
        }
        if out.failure.is_some() {
            // A fresh connection next time: the channel may be closed by the broker.
            self.forget().await;
        }
        out
    }
}
