//! Webhooks as the Standard Webhooks specification has them: a POST with
//! `webhook-id` (the event id, the same on every retry), `webhook-timestamp` (Unix
//! seconds) and `webhook-signature` (`v1,` + base64 of HMAC-SHA256 over
//! `{id}.{timestamp}.{body}`, keyed by the base64 part of the `whsec_…` secret).
//! One event per call, in order; a 2xx confirms it, 410 Gone disables the endpoint,
//! anything else is retried.

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use ring::hmac;
use std::time::Duration;

use super::{describe, Delivery, Outgoing, Sink, SinkFailure};
use crate::clock::Timestamp;

/// A Standard Webhooks signing secret: `whsec_` and base64 of 24 to 64 random bytes.
#[derive(Clone)]
pub struct WebhookSecret(Vec<u8>);

impl WebhookSecret {
    pub fn parse(text: &str) -> Option<WebhookSecret> {
        let key = STANDARD.decode(text.strip_prefix("whsec_")?).ok()?;
        (24..=64).contains(&key.len()).then_some(WebhookSecret(key))
    }

    /// A new secret (32 random bytes) and its text, shown once.
    pub fn generate() -> (WebhookSecret, String) {
        let key = crate::crypto::random_bytes::<32>().to_vec();
        let text = format!("whsec_{}", STANDARD.encode(&key));
        (WebhookSecret(key), text)
    }
}

impl std::fmt::Debug for WebhookSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("WebhookSecret(…)")
    }
}

/// The `webhook-signature` value for one message.
pub fn sign(secret: &WebhookSecret, id: &str, timestamp: i64, body: &[u8]) -> String {
    let key = hmac::Key::new(hmac::HMAC_SHA256, &secret.0);
    let mut ctx = hmac::Context::with_key(&key);
    ctx.update(id.as_bytes());
    ctx.update(b".");
    ctx.update(timestamp.to_string().as_bytes());
    ctx.update(b".");
    ctx.update(body);
    format!("v1,{}", STANDARD.encode(ctx.sign().as_ref()))
}

pub struct WebhookSink {
    url: url::Url,
    secret: WebhookSecret,
    http: reqwest::Client,
}

impl WebhookSink {
    pub fn new(
        url: url::Url,
        secret: WebhookSecret,
        timeout: Duration,
    ) -> Result<WebhookSink, String> {
        let http = reqwest::Client::builder()
            .timeout(timeout)
            .connect_timeout(timeout)
            // A receiver's redirect is not followed: the signed body goes where it was registered.
            .redirect(reqwest::redirect::Policy::none())
            .user_agent("hms-ach-webhooks/1")
            .build()
            .map_err(|e| describe(&e))?;
        Ok(WebhookSink { url, secret, http })
    }
}

#[async_trait::async_trait]
impl Sink for WebhookSink {
    async fn deliver(&self, batch: &[Outgoing], now: Timestamp) -> Delivery {
        let mut out = Delivery::default();
        let timestamp = now.as_millis().div_euclid(1000);
        for ev in batch {
            let signature = sign(&self.secret, &ev.id, timestamp, &ev.body);
            let sent = self
                .http
                .post(self.url.clone())
                .header("content-type", "application/json")
                .header("webhook-id", &ev.id)
                .header("webhook-timestamp", timestamp.to_string())
                .header("webhook-signature", signature)
                .body(ev.body.clone())
                .send()
                .await;
            match sent {
                Ok(r) if r.status().is_success() => out.delivered += 1,
                Ok(r) if r.status() == reqwest::StatusCode::GONE => {
                    out.failure = Some(SinkFailure {
                        message: "the endpoint answered 410 Gone".into(),
                        gone: true,
                    });
                    return out;
                }
                Ok(r) => {
                    out.failure = Some(SinkFailure::new(format!(
                        "the endpoint answered HTTP {}",
                        r.status().as_u16()
                    )));
                    return out;
                }
                Err(e) => {
                    let why = if e.is_timeout() {
                        "no answer in time".to_string()
                    } else if e.is_connect() {
                        "cannot connect".to_string()
                    } else {
                        describe(&e)
                    };
                    out.failure = Some(SinkFailure::new(format!("the call failed: {why}")));
                    return out;
                }
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The example from the Standard Webhooks specification's reference libraries
    /// (their test vector: id msg_p5jXN8AQM9LWM0D4loKWxJek, timestamp 1614265330,
    /// body {"test": 2432232314}, secret whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw).
    #[test]
    fn signs_like_the_reference_libraries() {
        let secret = WebhookSecret::parse("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").unwrap();
        let sig = sign(
            &secret,
            "msg_p5jXN8AQM9LWM0D4loKWxJek",
            1614265330,
            br#"{"test": 2432232314}"#,
        );
        assert_eq!(sig, "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=");
    }

    #[test]
    fn secrets_are_whsec_and_enough_bytes() {
        let (s, text) = WebhookSecret::generate();
        assert!(text.starts_with("whsec_"));
        assert_eq!(WebhookSecret::parse(&text).unwrap().0, s.0);
        assert!(WebhookSecret::parse("whsec_c2hvcnQ=").is_none());
        assert!(WebhookSecret::parse("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").is_none());
        assert_eq!(format!("{s:?}"), "WebhookSecret(…)");
    }
}
