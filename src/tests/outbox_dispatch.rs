//! Dispatch of the outbox, on both databases, through a recording sink: every event
//! reaches a subscriber once and in order; failures wait (backoff), become dead
//! letters after the bound, disable a receiver that keeps failing; replay and
//! requeue send again; one replica at a time holds a subscriber; retention keeps
//! what an active subscriber still needs. (The real NATS, RabbitMQ and webhook
//! receivers are in integration-tests/tests/outbox_sinks.rs.)

use super::*;
use crate::clock::Timestamp;
use crate::outbox::sinks::{Delivery, Outgoing, Sink, SinkFailure};
use std::sync::Mutex;

/// Records what it was sent; fails the events whose id is in `refuse` (or every
/// event while `down`), answering 410 Gone when `gone`.
#[derive(Default)]
struct Recorder {
    got: Mutex<Vec<Outgoing>>,
    refuse: Mutex<Vec<String>>,
    down: Mutex<bool>,
    gone: Mutex<bool>,
}

impl Recorder {
    fn ids(&self) -> Vec<String> {
        self.got
            .lock()
            .unwrap()
            .iter()
            .map(|o| o.id.clone())
            .collect()
    }
    fn seqs(&self) -> Vec<i64> {
        self.got.lock().unwrap().iter().map(|o| o.seq).collect()
    }
}

#[async_trait::async_trait]
impl Sink for Recorder {
    async fn deliver(&self, batch: &[Outgoing], _now: Timestamp) -> Delivery {
        let mut out = Delivery::default();
        for o in batch {
            let refused = *self.down.lock().unwrap() || self.refuse.lock().unwrap().contains(&o.id);
            if refused {
                out.failure = Some(SinkFailure {
                    message: "receiver refused".into(),
                    gone: *self.gone.lock().unwrap(),
                });
                return out;
            }
            self.got.lock().unwrap().push(o.clone());
            out.delivered += 1;
        }
        out
    }
}

/// A webhook subscriber registered through the API, from the first event kept.
async fn subscriber(t: &TestApp, admin: &str, name: &str, types: Value) -> Value {
    let (s, _, body) = t
        .call(
            Method::POST,
            "/api/v1/subscribers",
            Some(admin),
            Some(serde_json::json!({
                "name": name, "url": "https://lms.example/hooks", "types": types,
                "ownerEmail": "lms-admin@district.example", "startAt": "earliest"
            })),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{body}");
    body
}

/// Rounds until nothing more is delivered; the rounds.
async fn drain(t: &TestApp, me: &str, name: &str, sink: &Recorder) -> Vec<crate::outbox::Round> {
    let mut rounds = Vec::new();
    for _ in 0..50 {
        let r = crate::outbox::deliver_once(&t.app, me, name, sink)
            .await
            .unwrap();
        let stop = !r.more && (r.delivered == 0 || r.failed);
        rounds.push(r);
        if stop {
            break;
        }
    }
    rounds
}

async fn all_events(t: &TestApp) -> Vec<crate::outbox::OutboxEvent> {
    crate::outbox::list_events(
        t.store(),
        &crate::outbox::EventFilter {
            limit: 10_000,
            ..Default::default()
        },
    )
    .await
    .unwrap()
}

async fn add_people(t: &TestApp, admin: &str, n: usize) {
    for i in 0..n {
        let (s, _, b) = t
            .call(
                Method::POST,
                "/api/v1/users",
                Some(admin),
                Some(serde_json::json!({
                    "sourcedId": format!("p-{i}"), "kinds": ["student"],
                    "givenName": "Pat", "familyName": format!("Num{i}"),
                    "affiliations": [{"org": "s1", "role": "student", "primary": true}]
                })),
            )
            .await;
        assert_eq!(s, StatusCode::CREATED, "{b}");
    }
}

async fn show(t: &TestApp, admin: &str, name: &str) -> Value {
    let (s, _, b) = t
        .call(
            Method::GET,
            &format!("/api/v1/subscribers/{name}"),
            Some(admin),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{b}");
    b
}

store_test!(
    every_event_reaches_a_subscriber_once_and_in_order,
    &[("HMS_ACH__OUTBOX__BATCH_SIZE", "7")],
    |t: TestApp| async move {
        let admin = t.admin_token().await;
        seed_orgs(&t, &admin).await;
        let created = subscriber(&t, &admin, "lms", serde_json::json!([])).await;
        assert!(created["secret"].as_str().unwrap().starts_with("whsec_"));
        add_people(&t, &admin, 10).await;
        let sink = Recorder::default();
        let rounds = drain(&t, "replica-a", "lms", &sink).await;
        assert!(rounds.len() > 2, "batches of 7: {rounds:?}");
        let events = all_events(&t).await;
        assert_eq!(
            sink.ids(),
            events.iter().map(|e| e.id.clone()).collect::<Vec<_>>()
        );
        // The body is the CloudEvent, with the per-subject sequence.
        let first: Value = serde_json::from_slice(&sink.got.lock().unwrap()[0].body).unwrap();
        assert_eq!(first["specversion"], "1.0");
        assert_eq!(first["source"], TEST_ISSUER);
        assert_eq!(first["sequence"], "1");
        // Nothing twice: another round sends nothing.
        let again = crate::outbox::deliver_once(&t.app, "replica-a", "lms", &sink)
            .await
            .unwrap();
        assert_eq!(again.delivered, 0);
        let v = show(&t, &admin, "lms").await;
        assert_eq!(v["health"]["pending"], 0, "{v}");
        assert_eq!(v["health"]["cursor"], events.last().unwrap().seq);
        assert!(v["health"]["lastSuccess"].is_string());
        assert!(v.get("secret").is_none(), "the secret is shown once: {v}");
        // A subscriber made now starts after the events already written.
        let (s, _, late) = t
            .call(
                Method::POST,
                "/api/v1/subscribers",
                Some(&admin),
                Some(serde_json::json!({"name": "late", "url": "https://late.example/h"})),
            )
            .await;
        assert_eq!(s, StatusCode::CREATED, "{late}");
        assert_eq!(late["health"]["pending"], 0, "{late}");
    }
);

store_test!(
    a_failure_waits_then_the_rest_follow_in_order,
    &[("HMS_ACH__OUTBOX__FIRST_RETRY", "2s")],
    |t: TestApp| async move {
        let admin = t.admin_token().await;
        seed_orgs(&t, &admin).await;
        subscriber(&t, &admin, "lms", serde_json::json!([])).await;
        add_people(&t, &admin, 3).await;
        let events = all_events(&t).await;
        let sink = Recorder::default();
        sink.refuse.lock().unwrap().push(events[5].id.clone());
        let r = crate::outbox::deliver_once(&t.app, "a", "lms", &sink)
            .await
            .unwrap();
        assert_eq!((r.delivered, r.failed), (5, true), "{r:?}");
        let v = show(&t, &admin, "lms").await;
        assert_eq!(v["health"]["cursor"], events[4].seq, "{v}");
        assert_eq!(v["health"]["attempts"], 1);
        assert_eq!(v["health"]["lastError"], "receiver refused");
        // Not due yet: the backoff (1–2 s for the first retry) holds it.
        sink.refuse.lock().unwrap().clear();
        let r = crate::outbox::deliver_once(&t.app, "a", "lms", &sink)
            .await
            .unwrap();
        assert!(!r.claimed && r.delivered == 0, "{r:?}");
        t.clock.advance_secs(3);
        drain(&t, "a", "lms", &sink).await;
        assert_eq!(
            sink.ids(),
            events.iter().map(|e| e.id.clone()).collect::<Vec<_>>(),
            "each event once, in order"
        );
        let v = show(&t, &admin, "lms").await;
        assert_eq!(v["health"]["attempts"], 0, "{v}");
    }
);

store_test!(
    after_the_bound_an_event_is_a_dead_letter_and_requeue_sends_it,
    &[
        ("HMS_ACH__OUTBOX__MAX_ATTEMPTS", "2"),
        ("HMS_ACH__OUTBOX__FIRST_RETRY", "10ms"),
        ("HMS_ACH__OUTBOX__MAX_RETRY", "10ms")
    ],
    |t: TestApp| async move {
        let admin = t.admin_token().await;
        seed_orgs(&t, &admin).await;
        subscriber(&t, &admin, "lms", serde_json::json!([])).await;
        let events = all_events(&t).await;
        let poison = events[1].clone();
        let sink = Recorder::default();
        sink.refuse.lock().unwrap().push(poison.id.clone());
        for _ in 0..3 {
            drain(&t, "a", "lms", &sink).await;
            t.clock.advance_secs(1);
        }
        let others: Vec<String> = events
            .iter()
            .filter(|e| e.id != poison.id)
            .map(|e| e.id.clone())
            .collect();
        assert_eq!(sink.ids(), others, "the rest flowed past the dead letter");
        let (s, _, page) = t
            .call(
                Method::GET,
                "/api/v1/subscribers/lms/dead-letters",
                Some(&admin),
                None,
            )
            .await;
        assert_eq!(s, StatusCode::OK, "{page}");
        let items = page["items"].as_array().unwrap();
        assert_eq!(items.len(), 1, "{page}");
        assert_eq!(items[0]["eventId"], poison.id.as_str());
        assert_eq!(items[0]["sequence"], poison.seq);
        assert_eq!(items[0]["attempts"], 2);
        assert_eq!(items[0]["state"], "dead");
        assert_eq!(show(&t, &admin, "lms").await["health"]["deadLetters"], 1);
        // Retention cannot lose it: the dead letter keeps its own copy.
        sink.refuse.lock().unwrap().clear();
        let (s, _, r) = t
            .call(
                Method::POST,
                "/api/v1/subscribers/lms/dead-letters/requeue",
                Some(&admin),
                Some(serde_json::json!({})),
            )
            .await;
        assert_eq!(
            (s, r["requeued"].as_i64()),
            (StatusCode::OK, Some(1)),
            "{r}"
        );
        let r = crate::outbox::deliver_once(&t.app, "a", "lms", &sink)
            .await
            .unwrap();
        assert_eq!(r.delivered, 1, "{r:?}");
        assert_eq!(sink.ids().last().unwrap(), &poison.id);
        let body: Value =
            serde_json::from_slice(&sink.got.lock().unwrap().last().unwrap().body).unwrap();
        assert_eq!(body["id"], poison.id.as_str(), "the same CloudEvent again");
        assert_eq!(show(&t, &admin, "lms").await["health"]["deadLetters"], 0);
        assert_eq!(t.audit_rows("outbox.dead_letters.requeue").await.len(), 1);
    }
);

store_test!(
    a_receiver_that_keeps_failing_is_disabled_and_events_wait_for_it,
    &[
        ("HMS_ACH__OUTBOX__MAX_ATTEMPTS", "1"),
        ("HMS_ACH__OUTBOX__DISABLE_AFTER_DEAD_LETTERS", "2")
    ],
    |t: TestApp| async move {
        let admin = t.admin_token().await;
        seed_orgs(&t, &admin).await;
        subscriber(&t, &admin, "lms", serde_json::json!([])).await;
        let events = all_events(&t).await;
        let sink = Recorder::default();
        *sink.down.lock().unwrap() = true;
        let r1 = crate::outbox::deliver_once(&t.app, "a", "lms", &sink)
            .await
            .unwrap();
        assert!(r1.dead_lettered && !r1.disabled, "{r1:?}");
        let r2 = crate::outbox::deliver_once(&t.app, "a", "lms", &sink)
            .await
            .unwrap();
        assert!(r2.dead_lettered && r2.disabled, "{r2:?}");
        let v = show(&t, &admin, "lms").await;
        assert_eq!(v["state"], "disabled", "{v}");
        assert!(v["stateReason"]
            .as_str()
            .unwrap()
            .contains("2 dead letters in a row"));
        assert_eq!(t.audit_rows("outbox.subscriber.disable").await.len(), 1);
        // The admins' daily digest names both dead letters and the disabled subscriber.
        let since = t
            .app
            .clock()
            .now()
            .minus(std::time::Duration::from_secs(86_400));
        let lines = crate::outbox::failures_since(t.store(), since)
            .await
            .unwrap();
        assert_eq!(
            lines
                .iter()
                .filter(|l| l.contains("is a dead letter: receiver refused"))
                .count(),
            2,
            "{lines:?}"
        );
        assert!(
            lines
                .iter()
                .any(|l| l.starts_with("subscriber lms is disabled")),
            "{lines:?}"
        );
        // Disabled: nothing is sent, the rest wait.
        *sink.down.lock().unwrap() = false;
        let r = crate::outbox::deliver_once(&t.app, "a", "lms", &sink)
            .await
            .unwrap();
        assert!(!r.claimed, "{r:?}");
        assert_eq!(v["health"]["pending"], events.len() as i64 - 2);
        // An admin enables it: the rest arrive in order.
        let (s, _, v) = t
            .call(
                Method::POST,
                "/api/v1/subscribers/lms/resume",
                Some(&admin),
                None,
            )
            .await;
        assert_eq!(
            (s, v["state"].as_str()),
            (StatusCode::OK, Some("active")),
            "{v}"
        );
        drain(&t, "a", "lms", &sink).await;
        assert_eq!(
            sink.ids(),
            events[2..].iter().map(|e| e.id.clone()).collect::<Vec<_>>()
        );
    }
);

store_test!(
    a_webhook_answering_gone_is_disabled_at_once,
    |t: TestApp| async move {
        let admin = t.admin_token().await;
        seed_orgs(&t, &admin).await;
        subscriber(&t, &admin, "lms", serde_json::json!([])).await;
        let sink = Recorder::default();
        *sink.down.lock().unwrap() = true;
        *sink.gone.lock().unwrap() = true;
        let r = crate::outbox::deliver_once(&t.app, "a", "lms", &sink)
            .await
            .unwrap();
        assert!(r.disabled && !r.dead_lettered, "{r:?}");
        let v = show(&t, &admin, "lms").await;
        assert_eq!(v["state"], "disabled");
        assert_eq!(v["health"]["deadLetters"], 0, "nothing lost: {v}");
    }
);

store_test!(
    one_replica_at_a_time_holds_a_subscriber,
    |t: TestApp| async move {
        let admin = t.admin_token().await;
        seed_orgs(&t, &admin).await;
        subscriber(&t, &admin, "lms", serde_json::json!([])).await;
        let a = Recorder::default();
        let b = Recorder::default();
        let ra = crate::outbox::deliver_once(&t.app, "replica-a", "lms", &a)
            .await
            .unwrap();
        assert!(ra.claimed && ra.delivered > 0);
        add_people(&t, &admin, 1).await;
        let rb = crate::outbox::deliver_once(&t.app, "replica-b", "lms", &b)
            .await
            .unwrap();
        assert!(!rb.claimed, "replica-a's lease holds: {rb:?}");
        // replica-a stopped renewing (it died): after the lease, replica-b takes over
        // from the cursor, so nothing is sent twice.
        t.clock.advance_secs(31);
        let rb = crate::outbox::deliver_once(&t.app, "replica-b", "lms", &b)
            .await
            .unwrap();
        assert!(rb.claimed && rb.delivered > 0, "{rb:?}");
        let mut both = a.ids();
        both.extend(b.ids());
        let all: Vec<String> = all_events(&t).await.iter().map(|e| e.id.clone()).collect();
        assert_eq!(both, all);
        // And replica-a, back, cannot move the cursor while replica-b holds it.
        let ra = crate::outbox::deliver_once(&t.app, "replica-a", "lms", &a)
            .await
            .unwrap();
        assert!(!ra.claimed);
    }
);

store_test!(
    type_filters_replay_and_retention,
    &[("HMS_ACH__OUTBOX__RETENTION", "1h")],
    |t: TestApp| async move {
        let admin = t.admin_token().await;
        seed_orgs(&t, &admin).await;
        subscriber(
            &t,
            &admin,
            "people",
            serde_json::json!(["org.hmsach.person.*"]),
        )
        .await;
        add_people(&t, &admin, 2).await;
        let sink = Recorder::default();
        drain(&t, "a", "people", &sink).await;
        let people: Vec<String> = all_events(&t)
            .await
            .iter()
            .filter(|e| e.kind.starts_with("org.hmsach.person."))
            .map(|e| e.id.clone())
            .collect();
        assert_eq!(sink.ids(), people, "only the person events");
        assert_eq!(show(&t, &admin, "people").await["health"]["pending"], 0);

        // Replay from the first event: the same events again, same ids, same order.
        let (s, _, v) = t
            .call(
                Method::POST,
                "/api/v1/subscribers/people/replay",
                Some(&admin),
                Some(serde_json::json!({"fromSequence": 1})),
            )
            .await;
        assert_eq!(s, StatusCode::OK, "{v}");
        drain(&t, "a", "people", &sink).await;
        let mut twice = people.clone();
        twice.extend(people.clone());
        assert_eq!(sink.ids(), twice);
        let (s, _, v) = t
            .call(
                Method::POST,
                "/api/v1/subscribers/people/replay",
                Some(&admin),
                Some(serde_json::json!({"fromSequence": 0})),
            )
            .await;
        assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{v}");

        // Retention: a paused subscriber does not hold events back; an active one
        // with a backlog does.
        let (s, _, _) = t
            .call(
                Method::POST,
                "/api/v1/subscribers/people/pause",
                Some(&admin),
                None,
            )
            .await;
        assert_eq!(s, StatusCode::OK);
        subscriber(&t, &admin, "slow", serde_json::json!([])).await;
        let before = all_events(&t).await.len();
        t.clock.advance_secs(2 * 3600);
        assert_eq!(
            crate::outbox::sweep(&t.app, t.app.clock().now())
                .await
                .unwrap(),
            0
        );
        assert_eq!(all_events(&t).await.len(), before, "slow has not had them");
        let slow = Recorder::default();
        drain(&t, "a", "slow", &slow).await;
        assert_eq!(slow.seqs().len(), before);
        let admin = t.admin_token().await; // two hours on: a fresh token
        assert_eq!(
            crate::outbox::sweep(&t.app, t.app.clock().now())
                .await
                .unwrap() as usize,
            before
        );
        // What is left is what the fresh token wrote (its client and role), inside retention.
        let left = all_events(&t).await;
        let cutoff = t.app.clock().now().as_millis() - 3_600_000;
        assert!(
            left.len() <= 2 && left.iter().all(|e| e.created_at.as_millis() > cutoff),
            "{left:?}"
        );
        // Numbering goes on after a sweep (positions are never reused).
        let (s, _, b) = t
            .call(
                Method::POST,
                "/api/v1/users",
                Some(&admin),
                Some(serde_json::json!({"sourcedId": "late-1", "kinds": ["staff"], "givenName": "L", "familyName": "Ate"})),
            )
            .await;
        assert_eq!(s, StatusCode::CREATED, "{b}");
        let next = all_events(&t).await;
        assert!(next.iter().all(|e| e.seq > *slow.seqs().last().unwrap()));
    }
);

store_test!(
    the_subscribers_api_checks_input_and_permissions,
    |t: TestApp| async move {
        let admin = t.admin_token().await;
        let auditor = t.token(Some("auditor"), None, &["audit.read"]).await;
        for (body, field) in [
            (
                serde_json::json!({"name": "Bad Name", "url": "https://x.example/h"}),
                "name",
            ),
            (
                serde_json::json!({"name": "x", "url": "http://x.example/h"}),
                "url",
            ),
            (
                serde_json::json!({"name": "x", "url": "https://x.example/h", "types": ["nope"]}),
                "types",
            ),
            (
                serde_json::json!({"name": "x", "url": "https://x.example/h", "ownerEmail": "no"}),
                "ownerEmail",
            ),
        ] {
            let (s, _, b) = t
                .call(
                    Method::POST,
                    "/api/v1/subscribers",
                    Some(&admin),
                    Some(body),
                )
                .await;
            assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{b}");
            assert_eq!(b["errors"][0]["field"], field, "{b}");
        }
        let (s, _, b) = t
            .call(
                Method::POST,
                "/api/v1/subscribers",
                Some(&admin),
                Some(
                    serde_json::json!({"name": "x", "url": "https://x.example/h", "colour": "red"}),
                ),
            )
            .await;
        assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{b}");
        let body = serde_json::json!({"name": "lms", "url": "https://lms.example/h"});
        let (s, _, b) = t
            .call(
                Method::POST,
                "/api/v1/subscribers",
                Some(&auditor),
                Some(body.clone()),
            )
            .await;
        assert_eq!(s, StatusCode::FORBIDDEN, "{b}");
        let (s, _, created) = t
            .call(
                Method::POST,
                "/api/v1/subscribers",
                Some(&admin),
                Some(body.clone()),
            )
            .await;
        assert_eq!(s, StatusCode::CREATED, "{created}");
        let (s, _, _) = t
            .call(
                Method::POST,
                "/api/v1/subscribers",
                Some(&admin),
                Some(body),
            )
            .await;
        assert_eq!(s, StatusCode::CONFLICT);
        let (s, _, list) = t
            .call(Method::GET, "/api/v1/subscribers", Some(&auditor), None)
            .await;
        assert_eq!(s, StatusCode::OK, "{list}");
        assert_eq!(list["items"][0]["name"], "lms");
        assert!(!list.to_string().contains("whsec_"), "{list}");
        // The stored secret is sealed, never the text.
        let sealed: String = sqlx::query_scalar("SELECT secret_sealed FROM outbox_subscribers")
            .fetch_one(t.store().reader())
            .await
            .unwrap();
        let secret = created["secret"].as_str().unwrap();
        assert!(!sealed.contains(&secret["whsec_".len()..]));
        // Rotation: a new secret, shown once.
        let (s, _, rotated) = t
            .call(
                Method::POST,
                "/api/v1/subscribers/lms/rotate-secret",
                Some(&admin),
                None,
            )
            .await;
        assert_eq!(s, StatusCode::OK, "{rotated}");
        assert_ne!(rotated["secret"], created["secret"]);
        let (s, _, _) = t
            .call(
                Method::DELETE,
                "/api/v1/subscribers/lms",
                Some(&auditor),
                None,
            )
            .await;
        assert_eq!(s, StatusCode::FORBIDDEN);
        let (s, _, _) = t
            .call(
                Method::DELETE,
                "/api/v1/subscribers/lms",
                Some(&admin),
                None,
            )
            .await;
        assert_eq!(s, StatusCode::NO_CONTENT);
        let (s, _, _) = t
            .call(Method::GET, "/api/v1/subscribers/lms", Some(&admin), None)
            .await;
        assert_eq!(s, StatusCode::NOT_FOUND);
        for action in [
            "outbox.subscriber.create",
            "outbox.subscriber.rotate_secret",
            "outbox.subscriber.delete",
        ] {
            assert_eq!(t.audit_rows(action).await.len(), 1, "{action}");
        }
    }
);

#[tokio::test]
async fn configured_subscribers_are_registered_and_read_only() {
    let (_dir, file) = config_file(
        "[[outbox.webhooks]]\nname = \"lms\"\nurl = \"http://127.0.0.1:9/h\"\nsecret = \"whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw\"\ntypes = [\"org.hmsach.org.*\"]\nstart_at = \"latest\"\n\n[[outbox.nats]]\nname = \"bus\"\nurl = \"nats://user:pw@127.0.0.1:4222\"\n",
    );
    let t = TestApp::with_config_file(false, &file).await;
    crate::outbox::sync_configured(&t.app).await.unwrap();
    crate::outbox::sync_configured(&t.app).await.unwrap();
    let admin = t.admin_token().await;
    let (s, _, list) = t
        .call(Method::GET, "/api/v1/subscribers", Some(&admin), None)
        .await;
    assert_eq!(s, StatusCode::OK);
    let items = list["items"].as_array().unwrap();
    assert_eq!(items.len(), 2, "{list}");
    assert!(items
        .iter()
        .all(|i| i["source"] == "config" && i["configured"] == true));
    assert!(
        !list.to_string().contains("pw@"),
        "no broker password: {list}"
    );
    let (s, _, b) = t
        .call(
            Method::DELETE,
            "/api/v1/subscribers/lms",
            Some(&admin),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::CONFLICT, "{b}");
    let (s, _, _) = t
        .call(
            Method::POST,
            "/api/v1/subscribers/lms/rotate-secret",
            Some(&admin),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::CONFLICT);
    // The configured webhook signs with its configured secret.
    let sub = crate::outbox::get_subscriber(&t.app, "lms").await.unwrap();
    assert_eq!(sub.types, vec!["org.hmsach.org.*".to_string()]);
}

#[test]
fn bad_outbox_configuration_is_refused_at_start() {
    for (toml, needle) in [
        ("[outbox]\nmax_attempts = 0\n", "max_attempts"),
        ("[outbox]\nfirst_retry = \"10m\"\nmax_retry = \"1m\"\n", "first_retry"),
        ("[[outbox.nats]]\nname = \"b\"\nurl = \"http://x\"\n", "nats://"),
        ("[[outbox.rabbitmq]]\nname = \"b\"\nurl = \"amqp://x\"\nexchange = \"amq.topic\"\n", "exchange"),
        ("[[outbox.webhooks]]\nname = \"w\"\nurl = \"http://lms.example/\"\nsecret = \"whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw\"\n", "https"),
        ("[[outbox.webhooks]]\nname = \"w\"\nurl = \"https://lms.example/\"\nsecret = \"short\"\n", "whsec_"),
        ("[[outbox.nats]]\nname = \"b\"\nurl = \"nats://x\"\ntypes = [\"x.*\"]\n", "types"),
        ("[[outbox.nats]]\nname = \"b\"\nurl = \"nats://x\"\n[[outbox.rabbitmq]]\nname = \"b\"\nurl = \"amqp://x\"\n", "twice"),
    ] {
        let (_dir, file) = config_file(toml);
        let err = crate::config::Config::load_from(Some(&file), &[], &Default::default())
            .unwrap_err()
            .to_string();
        assert!(err.contains(needle), "{toml}: {err}");
    }
}
