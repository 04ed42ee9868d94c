//! The outbox's real receivers (issue 16): the hub binary dispatches to the NATS
//! JetStream server (127.0.0.1:4222) and the RabbitMQ broker (127.0.0.1:5672) that run
//! on these machines, and to a webhook receiver that verifies every signature with the
//! Standard Webhooks reference library. Consumers: `peers/outbox_peer.py` (nats-py,
//! pika, standardwebhooks). Each test uses its own stream, exchange and queue, and
//! deletes them.
//!
//! - Every event of a burst reaches all three, each subject's events in order; the
//!   webhook receiver is down during the burst and gets everything later, in order.
//! - `kill -9` in the middle of a dispatch burst, restart: nothing is lost; JetStream
//!   holds no duplicate (`Nats-Msg-Id`); RabbitMQ's duplicates carry the same
//!   `message_id` and are counted and printed, not hidden.

use integration_tests::{create_client, free_port, workspace, Hub};
use serde_json::{json, Value};
use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

fn python() -> std::path::PathBuf {
    integration_tests::setup_peers();
    workspace().join("target/peers/venv-outbox/bin/python")
}

fn peer_script() -> std::path::PathBuf {
    workspace().join("integration-tests/peers/outbox_peer.py")
}

/// A name part no earlier run used (the NATS and RabbitMQ servers outlive test runs).
fn suffix() -> String {
    let mut bytes = [0u8; 6];
    std::io::Read::read_exact(
        &mut std::fs::File::open("/dev/urandom").expect("open /dev/urandom"),
        &mut bytes,
    )
    .expect("read /dev/urandom");
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

struct Names {
    stream: String,
    prefix: String,
    exchange: String,
    queue: String,
}

fn names() -> Names {
    let s = suffix();
    Names {
        stream: format!("HMSACH_T{s}"),
        prefix: format!("hmsacht{s}"),
        exchange: format!("hmsach.t{s}"),
        queue: format!("hmsach.t{s}.all"),
    }
}

fn config(dir: &Path, n: &Names, webhook_port: Option<u16>) -> String {
    let mut toml = format!(
        "[outbox]\nfirst_retry = \"100ms\"\nmax_retry = \"1s\"\nmax_attempts = 1000\nbatch_size = 50\n\n\
         [[outbox.nats]]\nname = \"bus\"\nurl = \"nats://127.0.0.1:4222\"\nstream = \"{}\"\nsubject_prefix = \"{}\"\n\n\
         [[outbox.rabbitmq]]\nname = \"mq\"\nurl = \"amqp://guest:guest@127.0.0.1:5672/%2f\"\nexchange = \"{}\"\nqueue = \"{}\"\n",
        n.stream, n.prefix, n.exchange, n.queue
    );
    if let Some(port) = webhook_port {
        toml.push_str(&format!(
            "\n[[outbox.webhooks]]\nname = \"lms\"\nurl = \"http://127.0.0.1:{port}/hook\"\nsecret = \"{SECRET}\"\n"
        ));
    }
    let path = dir.join("hub.toml");
    std::fs::write(&path, toml).unwrap();
    path.display().to_string()
}

async fn token(hub: &Hub, id: &str, secret: &str) -> String {
    let v: Value = reqwest::Client::new()
        .post(format!("{}/oauth2/token", hub.base))
        .basic_auth(id, Some(secret))
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    v["access_token"].as_str().unwrap().to_string()
}

/// Two orgs, then `people` people each created and then renamed: two events per
/// subject that must arrive in order.
async fn burst(hub: &Hub, token: &str, people: usize) {
    let http = reqwest::Client::new();
    for org in [
        json!({"sourcedId": "d1", "kind": "district", "name": "D"}),
        json!({"sourcedId": "s1", "kind": "school", "name": "S", "parent": "d1"}),
    ] {
        let r = http
            .post(format!("{}/api/v1/orgs", hub.base))
            .bearer_auth(token)
            .json(&org)
            .send()
            .await
            .unwrap();
        assert!(r.status().is_success(), "{}", r.text().await.unwrap());
    }
    for i in 0..people {
        let r = http
            .post(format!("{}/api/v1/users", hub.base))
            .bearer_auth(token)
            .json(&json!({"sourcedId": format!("p{i}"), "kinds": ["student"], "givenName": "Pat", "familyName": format!("N{i}"),
                "affiliations": [{"org": "s1", "role": "student", "primary": true}]}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 201, "{}", r.text().await.unwrap());
        let id = r.json::<Value>().await.unwrap()["id"]
            .as_str()
            .unwrap()
            .to_string();
        let r = http
            .patch(format!("{}/api/v1/users/{id}", hub.base))
            .bearer_auth(token)
            .header("content-type", "application/merge-patch+json")
            .body(json!({"preferredName": format!("P{i}")}).to_string())
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());
    }
}

async fn all_events(hub: &Hub, token: &str) -> Vec<Value> {
    let http = reqwest::Client::new();
    let mut out = Vec::new();
    let mut cursor = String::new();
    loop {
        let page: Value = http
            .get(format!("{}/api/v1/events?limit=200{cursor}", hub.base))
            .bearer_auth(token)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        out.extend(page["items"].as_array().unwrap().iter().cloned());
        match page["nextCursor"].as_str() {
            Some(c) => cursor = format!("&cursor={c}"),
            None => return out,
        }
    }
}

async fn subscribers(hub: &Hub, token: &str) -> Vec<Value> {
    let v: Value = reqwest::Client::new()
        .get(format!("{}/api/v1/subscribers", hub.base))
        .bearer_auth(token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    v["items"].as_array().cloned().unwrap_or_default()
}

/// Waits until every subscriber has nothing pending; panics with their state if not.
async fn wait_drained(hub: &Hub, token: &str, secs: u64) {
    let mut last = Vec::new();
    for _ in 0..secs * 10 {
        last = subscribers(hub, token).await;
        if !last.is_empty() && last.iter().all(|s| s["health"]["pending"] == 0) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("subscribers still have events pending: {last:#?}");
}

fn run_consumer(args: &[String]) -> Vec<Value> {
    let out = Command::new(python())
        .arg(peer_script())
        .args(args)
        .output()
        .expect("run outbox_peer.py");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect()
}

/// The JetStream stream read from its start: (messages, the stream's statistics).
fn consume_nats(n: &Names, expected: usize) -> (Vec<Value>, Vec<Value>) {
    let out = run_consumer(&[
        "nats".into(),
        "nats://127.0.0.1:4222".into(),
        n.stream.clone(),
        n.prefix.clone(),
        expected.to_string(),
        "30".into(),
    ]);
    out.into_iter().partition(|v| v.get("id").is_some())
}

/// The durable queue drained: one line per delivery.
fn consume_rabbitmq(n: &Names, expected: usize) -> Vec<Value> {
    run_consumer(&[
        "rabbitmq".into(),
        "amqp://guest:guest@127.0.0.1:5672/%2f".into(),
        n.queue.clone(),
        n.exchange.clone(),
        expected.to_string(),
        "30".into(),
    ])
}

/// Each subject's events, as received, numbered 1, 2, 3… without gaps.
fn assert_subject_order(what: &str, received: &[Value]) {
    let mut by_subject: BTreeMap<String, Vec<i64>> = BTreeMap::new();
    let mut seen = HashSet::new();
    for r in received {
        // Duplicates (RabbitMQ re-deliveries after a crash) are judged once, first copy.
        if !seen.insert(r["id"].as_str().unwrap_or("").to_string()) {
            continue;
        }
        let seq: i64 = r["sequence"].as_str().unwrap().parse().unwrap();
        by_subject
            .entry(r["subject"].as_str().unwrap().to_string())
            .or_default()
            .push(seq);
    }
    for (subject, seqs) in by_subject {
        let want: Vec<i64> = (1..=seqs.len() as i64).collect();
        assert_eq!(seqs, want, "{what}: {subject} out of order");
    }
}

fn ids(events: &[Value]) -> Vec<String> {
    events
        .iter()
        .map(|e| e["id"].as_str().unwrap().to_string())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn every_event_reaches_nats_rabbitmq_and_a_late_webhook_in_order() {
    let python = python();
    let dir = tempfile::tempdir().unwrap();
    let n = names();
    let port = free_port();
    let cfg = config(dir.path(), &n, Some(port));
    let (id, secret) = create_client(
        dir.path(),
        "feed",
        "hub-admin",
        &["users.write", "users.read", "orgs.write", "audit.read"],
    );
    let hub = Hub::start_with_env(dir.path(), "info", &[("HMS_ACH_CONFIG", &cfg)]).await;
    let token = token(&hub, &id, &secret).await;
    // The webhook receiver is down during the burst.
    burst(&hub, &token, 60).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let lms = subscribers(&hub, &token)
        .await
        .into_iter()
        .find(|s| s["name"] == "lms")
        .unwrap();
    assert!(lms["health"]["attempts"].as_i64().unwrap() >= 1, "{lms}");
    assert!(
        lms["health"]["lastError"]
            .as_str()
            .unwrap()
            .contains("connect"),
        "{lms}"
    );
    let hook_log = dir.path().join("webhook.jsonl");
    let mut receiver = Command::new(&python)
        .arg(peer_script())
        .args([
            "webhook",
            &port.to_string(),
            SECRET,
            &hook_log.display().to_string(),
        ])
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    wait_drained(&hub, &token, 60).await;
    let _ = receiver.kill();
    let _ = receiver.wait();
    let events = all_events(&hub, &token).await;
    // The first signing keys (2), the feed client and its role (2), two orgs, and two
    // events per person.
    assert_eq!(events.len(), 4 + 2 + 2 * 60);
    let want = ids(&events);

    // The webhook: every call verified by the reference library, all in commit order.
    let hooks: Vec<Value> = std::fs::read_to_string(&hook_log)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert!(
        hooks.iter().all(|h| h.get("rejected").is_none()),
        "signatures the reference library refused: {hooks:?}"
    );
    assert_eq!(
        ids(&hooks),
        want,
        "the late receiver got everything, in order, once"
    );
    assert!(hooks.iter().all(|h| h["header_id"] == h["id"]));

    // NATS JetStream.
    let (msgs, stats) = consume_nats(&n, want.len());
    assert_eq!(ids(&msgs), want, "JetStream: every event once, in order");
    assert_eq!(stats[0]["stream_messages"], want.len());
    for m in &msgs {
        assert_eq!(m["header_id"], m["id"], "Nats-Msg-Id is the event id");
        assert_eq!(
            m["subject_nats"],
            format!("{}.{}", n.prefix, m["type"].as_str().unwrap()).as_str()
        );
    }
    assert_subject_order("NATS", &msgs);

    // RabbitMQ.
    let rabbit = consume_rabbitmq(&n, want.len());
    assert_eq!(ids(&rabbit), want, "RabbitMQ: every event once, in order");
    for m in &rabbit {
        assert_eq!(m["header_id"], m["id"], "message_id is the event id");
        assert_eq!(m["routing_key"], m["type"], "routing key = type");
        assert_eq!(m["persistent"], true);
    }
    assert_subject_order("RabbitMQ", &rabbit);
    assert!(hub.stop().await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn kill_9_in_a_dispatch_burst_loses_nothing() {
    let _ = python();
    let dir = tempfile::tempdir().unwrap();
    let n = names();
    let cfg = config(dir.path(), &n, None);
    let (id, secret) = create_client(
        dir.path(),
        "feed",
        "hub-admin",
        &["users.write", "users.read", "orgs.write", "audit.read"],
    );
    // A backlog written with dispatch off…
    let hub = Hub::start_with_env(
        dir.path(),
        "info",
        &[
            ("HMS_ACH_CONFIG", &cfg),
            ("HMS_ACH__OUTBOX__DISPATCH", "false"),
        ],
    )
    .await;
    let t = token(&hub, &id, &secret).await;
    burst(&hub, &t, 400).await;
    let want = ids(&all_events(&hub, &t).await);
    assert!(hub.stop().await);

    // …then dispatched in small batches, and the process killed mid-burst.
    let slow = [
        ("HMS_ACH_CONFIG", cfg.as_str()),
        ("HMS_ACH__OUTBOX__BATCH_SIZE", "10"),
    ];
    let hub = Hub::start_with_env(dir.path(), "info", &slow).await;
    let t = token(&hub, &id, &secret).await;
    let mut at_kill = HashMap::new();
    for _ in 0..200 {
        let subs = subscribers(&hub, &t).await;
        let moving = subs
            .iter()
            .all(|s| s["health"]["cursor"].as_i64().unwrap_or(0) > 0);
        if moving {
            for s in subs {
                at_kill.insert(
                    s["name"].as_str().unwrap().to_string(),
                    s["health"]["pending"].as_i64().unwrap(),
                );
            }
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    drop(hub); // SIGKILL
    eprintln!("pending at kill -9: {at_kill:?}");
    assert!(
        at_kill.values().any(|p| *p > 0),
        "the kill came after dispatch finished: {at_kill:?}"
    );

    let hub = Hub::start_with_env(dir.path(), "info", &[("HMS_ACH_CONFIG", &cfg)]).await;
    let t = token(&hub, &id, &secret).await;
    wait_drained(&hub, &t, 90).await;

    let (msgs, stats) = consume_nats(&n, want.len());
    assert_eq!(ids(&msgs), want, "JetStream: nothing lost, nothing twice");
    assert_eq!(
        stats[0]["stream_messages"],
        want.len(),
        "the stream de-duplicated the re-published batch"
    );

    let rabbit = consume_rabbitmq(&n, want.len());
    let got: HashSet<String> = ids(&rabbit).into_iter().collect();
    let missing: Vec<&String> = want.iter().filter(|i| !got.contains(*i)).collect();
    assert!(missing.is_empty(), "RabbitMQ lost {missing:?}");
    let duplicates = rabbit.len() - got.len();
    // At least once: a re-sent batch carries the same message_id, so a consumer
    // can drop it. Reported, not hidden.
    eprintln!(
        "RabbitMQ: {} deliveries for {} events: {duplicates} duplicate(s), each with its original message_id",
        rabbit.len(),
        want.len()
    );
    assert!(duplicates <= 10, "at most one batch re-sent: {duplicates}");
    assert_subject_order("RabbitMQ", &rabbit);
    assert!(hub.stop().await);
}
