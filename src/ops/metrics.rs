//! Prometheus metrics, prefixed `hms_ach_`.

use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use std::sync::OnceLock;

static HANDLE: OnceLock<Option<PrometheusHandle>> = OnceLock::new();

/// Installs the process-wide recorder once (tests build many apps in one process).
pub fn init() {
    HANDLE.get_or_init(|| {
        PrometheusBuilder::new()
            .set_buckets_for_metric(
                Matcher::Full("hms_ach_http_request_duration_seconds".into()),
                &[
                    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
                ],
            )
            .and_then(|b| {
                b.set_buckets_for_metric(
                    Matcher::Full("hms_ach_refresh_rotation_batch_size".into()),
                    &[1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0],
                )
            })
            .and_then(|b| {
                b.set_buckets_for_metric(
                    Matcher::Full("hms_ach_refresh_rotation_batch_seconds".into()),
                    &[0.0002, 0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.1],
                )
            })
            .and_then(|b| {
                b.set_buckets_for_metric(
                    Matcher::Full("hms_ach_outbox_delivery_latency_seconds".into()),
                    &[
                        0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 5.0, 30.0, 300.0, 3600.0,
                    ],
                )
            })
            .ok()
            .and_then(|b| b.install_recorder().ok())
    });
}

pub fn render() -> String {
    init();
    HANDLE
        .get()
        .and_then(|h| h.as_ref())
        .map(|h| h.render())
        .unwrap_or_default()
}

pub fn http_request(method: &str, route: &str, status: u16, seconds: f64) {
    let labels = [
        ("method", method.to_string()),
        ("route", route.to_string()),
        ("status", status.to_string()),
    ];
    metrics::counter!("hms_ach_http_requests_total", &labels).increment(1);
    metrics::histogram!("hms_ach_http_request_duration_seconds", &labels[..2]).record(seconds);
}

pub fn token_issued(grant: &str) {
    metrics::counter!("hms_ach_tokens_issued_total", "grant_type" => grant.to_string())
        .increment(1);
}

/// Refresh-token rotations committed together (see `oidc::refresh_writer`).
pub fn refresh_batch(size: usize, seconds: f64) {
    metrics::histogram!("hms_ach_refresh_rotation_batch_size").record(size as f64);
    metrics::histogram!("hms_ach_refresh_rotation_batch_seconds").record(seconds);
}

pub fn token_failed(error: &'static str) {
    metrics::counter!("hms_ach_token_errors_total", "error" => error).increment(1);
}

pub fn authz_denied(object: &'static str) {
    metrics::counter!("hms_ach_authz_denied_total", "object" => object).increment(1);
}

pub fn signin(outcome: &'static str) {
    metrics::counter!("hms_ach_signins_total", "outcome" => outcome).increment(1);
}

/// A scheduled or manual job run ended (`outcome`: succeeded or failed); a success
/// also sets the job's last-success time (alert when it grows old).
pub fn job_run(job: &str, outcome: &'static str, now_ms: i64) {
    metrics::counter!("hms_ach_job_runs_total", "job" => job.to_string(), "outcome" => outcome)
        .increment(1);
    if outcome == "succeeded" {
        metrics::gauge!("hms_ach_job_last_success_timestamp_seconds", "job" => job.to_string())
            .set(now_ms as f64 / 1000.0);
    }
}

/// A spread-out password-guessing attack on one account (`authn::backoff`).
pub fn signin_guessing_alert() {
    metrics::counter!("hms_ach_signin_guessing_alerts_total").increment(1);
}

pub fn oidc_event(event: &'static str) {
    metrics::counter!("hms_ach_oidc_events_total", "event" => event).increment(1);
}

/// An upstream sign-in's outcome: `ok` or a `FederationError::code()`.
pub fn federated_signin(idp: &str, outcome: &'static str) {
    metrics::counter!("hms_ach_federated_signins_total", "idp" => idp.to_string(), "outcome" => outcome).increment(1);
}

/// When each upstream OpenID Provider's discovery document was last loaded.
pub fn oidc_discovery_loaded(idp: &str, now_ms: i64) {
    metrics::gauge!("hms_ach_oidc_discovery_loaded_timestamp_seconds", "idp" => idp.to_string())
        .set(now_ms as f64 / 1000.0);
}

/// When each upstream IdP's metadata was last loaded (alert when it grows old).
pub fn saml_metadata_loaded(idp: &str, now_ms: i64) {
    metrics::gauge!("hms_ach_saml_metadata_loaded_timestamp_seconds", "idp" => idp.to_string())
        .set(now_ms as f64 / 1000.0);
}

/// The hub as a SAML IdP: Responses issued, and error statuses by second-level code.
pub fn saml_idp_event(event: &'static str) {
    metrics::counter!("hms_ach_saml_idp_events_total", "event" => event).increment(1);
}

/// A database connection closed because it was left inside a failed transaction
/// (see `Store::connect`).
pub fn store_connection_recycled() {
    metrics::counter!("hms_ach_store_connections_recycled_total").increment(1);
}

/// A request answered 503 because the database could not take it (`reason` is one
/// of a few fixed strings, e.g. "database disk full").
pub fn store_unavailable(reason: &'static str) {
    metrics::counter!("hms_ach_store_unavailable_total", "reason" => reason).increment(1);
}

/// 1 while `/readyz` finds the database unable to take writes, else 0.
pub fn store_ready(ready: bool) {
    metrics::gauge!("hms_ach_store_ready").set(if ready { 1.0 } else { 0.0 });
}

/// Connections being served now (both bands), and the normal band's size: alert when
/// the first nears the second.
pub fn connections_open(delta: f64) {
    metrics::gauge!("hms_ach_connections_open").increment(delta);
}

pub fn connections_max(max: usize) {
    metrics::gauge!("hms_ach_connections_max").set(max as f64);
}

/// The connection limit bit: `over_capacity` (closed at accept), `evicted` (a reserve
/// connection that had sent nothing, closed for a newer one), `reserved_for_ops` (a
/// request other than a probe or a scrape answered 503 on a reserve connection).
pub fn connection_refused(reason: &'static str) {
    metrics::counter!("hms_ach_connections_refused_total", "reason" => reason).increment(1);
}

/// A connection closed by a timeout: `header` (no whole request head in time), `idle`
/// (kept alive without a next request), `stalled` (a response nobody read).
pub fn connection_timed_out(phase: &'static str) {
    metrics::counter!("hms_ach_connections_timed_out_total", "phase" => phase).increment(1);
}

/// `accept()` failed: `file_limit` (EMFILE/ENFILE) or `other`.
pub fn accept_failed(kind: &'static str) {
    metrics::counter!("hms_ach_accept_errors_total", "kind" => kind).increment(1);
}

/// Events a subscriber's receiver confirmed, and how long after they were written.
pub fn outbox_delivered(subscriber: &str, count: usize, duplicates: usize, latencies: &[f64]) {
    let label = ("subscriber", subscriber.to_string());
    metrics::counter!(
        "hms_ach_outbox_delivered_total",
        std::slice::from_ref(&label)
    )
    .increment(count as u64);
    if duplicates > 0 {
        metrics::counter!(
            "hms_ach_outbox_duplicates_total",
            std::slice::from_ref(&label)
        )
        .increment(duplicates as u64);
    }
    let h = metrics::histogram!("hms_ach_outbox_delivery_latency_seconds", &[label]);
    for l in latencies {
        h.record(*l);
    }
}

pub fn outbox_failed(subscriber: &str) {
    metrics::counter!("hms_ach_outbox_delivery_failures_total", "subscriber" => subscriber.to_string())
        .increment(1);
}

pub fn outbox_dead_letter(subscriber: &str) {
    metrics::counter!("hms_ach_outbox_dead_letters_total", "subscriber" => subscriber.to_string())
        .increment(1);
}

/// A subscriber's backlog: events after its cursor and the oldest one's age.
pub fn outbox_backlog(subscriber: &str, pending: i64, oldest_seconds: f64, active: bool) {
    let label = ("subscriber", subscriber.to_string());
    metrics::gauge!(
        "hms_ach_outbox_pending_events",
        std::slice::from_ref(&label)
    )
    .set(pending as f64);
    metrics::gauge!(
        "hms_ach_outbox_oldest_pending_seconds",
        std::slice::from_ref(&label)
    )
    .set(oldest_seconds);
    metrics::gauge!("hms_ach_outbox_subscriber_active", &[label]).set(if active {
        1.0
    } else {
        0.0
    });
}

/// An email the server accepted (by template).
pub fn mail_sent(template: &str) {
    metrics::counter!("hms_ach_mail_sent_total", "template" => template.to_string()).increment(1);
}

/// An email attempt that failed: `temporary` (retried later) or `permanent` (given up).
pub fn mail_failed(kind: &'static str) {
    metrics::counter!("hms_ach_mail_failed_total", "kind" => kind).increment(1);
}

/// Emails waiting in the mail outbox, and how long the oldest has waited.
pub fn mail_pending(count: i64, oldest_age_seconds: Option<f64>) {
    metrics::gauge!("hms_ach_mail_pending").set(count as f64);
    metrics::gauge!("hms_ach_mail_oldest_pending_seconds").set(oldest_age_seconds.unwrap_or(0.0));
}
