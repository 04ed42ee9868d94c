//! The outbox into NATS JetStream (issue 16), on SQLite and PostgreSQL, beside a bare
//! `async-nats` publish loop with acks on the same server (the ceiling):
//!
//! - **write**: events appended, 100 per transaction (a bulk import's shape), per second;
//! - **dispatch**: a backlog read and published with acks (`Nats-Msg-Id`), cursor moved,
//!   per second;
//! - **end to end**: writing and dispatching at once, events per second until the last
//!   one is acknowledged;
//! - **latency**: one event per transaction at a steady 1,000/s through the real
//!   dispatcher (`outbox::start`, its default 25 ms poll), time from the event's
//!   `time` (taken inside the writing transaction) to a NATS subscriber receiving it:
//!   p50 / p99 / max;
//! - **memory**: this process's resident set while `--memory-events` events are written
//!   and dispatched (flat means nothing accumulates per event).
//!
//!     cargo bench -p hms-ach --bench outbox -- [--events N] [--latency-seconds S] [--memory-events M]
//!
//! PostgreSQL is measured when `HMS_BENCH_POSTGRES_URL` (or the test suite's
//! `HMS_TEST_POSTGRES_URL`) names a server: a database is created and dropped.
//! NATS: `nats://127.0.0.1:4222` (or `HMS_BENCH_NATS_URL`). The report goes to stdout
//! and `bench/outbox/last-run.md`.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use hms_ach::clock::Timestamp;
use hms_ach::config::{Config, Overrides};
use hms_ach::outbox::{self, EventType, NewEvent};
use hms_ach::store::Store;
use hms_ach::{AppState, Clock, SystemClock};

struct Args {
    events: usize,
    latency_seconds: u64,
    memory_events: usize,
}

fn args() -> Args {
    let mut a = Args {
        events: 100_000,
        latency_seconds: 20,
        memory_events: 200_000,
    };
    let argv: Vec<String> = std::env::args().collect();
    let mut i = 1;
    while i < argv.len() {
        let next = || argv.get(i + 1).and_then(|v| v.parse().ok());
        match argv[i].as_str() {
            "--events" => a.events = next().unwrap_or(a.events),
            "--latency-seconds" => {
                a.latency_seconds = next().map(|v: usize| v as u64).unwrap_or(a.latency_seconds)
            }
            "--memory-events" => a.memory_events = next().unwrap_or(a.memory_events),
            _ => {}
        }
        i += 1;
    }
    a
}

fn nats_url() -> String {
    std::env::var("HMS_BENCH_NATS_URL").unwrap_or_else(|_| "nats://127.0.0.1:4222".into())
}

fn rss_mib() -> f64 {
    std::fs::read_to_string("/proc/self/statm")
        .ok()
        .and_then(|s| {
            s.split_whitespace()
                .nth(1)
                .and_then(|p| p.parse::<f64>().ok())
        })
        .map_or(0.0, |pages| pages * 4096.0 / 1_048_576.0)
}

struct Db {
    url: String,
    label: &'static str,
    drop: Option<(String, String)>,
    _dir: Option<tempfile::TempDir>,
}

async fn sqlite() -> Db {
    let dir = tempfile::tempdir().unwrap();
    Db {
        url: format!("sqlite://{}/bench.db", dir.path().display()),
        label: "SQLite",
        drop: None,
        _dir: Some(dir),
    }
}

async fn postgres() -> Option<Db> {
    let admin = std::env::var("HMS_BENCH_POSTGRES_URL")
        .or_else(|_| std::env::var("HMS_TEST_POSTGRES_URL"))
        .ok()?;
    sqlx::any::install_default_drivers();
    let name = format!("hms_bench_{}", uuid::Uuid::new_v4().simple());
    let mut conn = <sqlx::AnyConnection as sqlx::Connection>::connect(&admin)
        .await
        .ok()?;
    sqlx::Executor::execute(&mut conn, format!("CREATE DATABASE \"{name}\"").as_str())
        .await
        .ok()?;
    let mut u = url::Url::parse(&admin).ok()?;
    u.set_path(&format!("/{name}"));
    Some(Db {
        url: u.to_string(),
        label: "PostgreSQL",
        drop: Some((admin, name)),
        _dir: None,
    })
}

async fn drop_db(db: &Db) {
    if let Some((admin, name)) = &db.drop {
        if let Ok(mut conn) = <sqlx::AnyConnection as sqlx::Connection>::connect(admin).await {
            let _ = sqlx::Executor::execute(
                &mut conn,
                format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)").as_str(),
            )
            .await;
        }
    }
}

/// An app on `db` whose one subscriber is a fresh JetStream stream.
async fn open_app(db: &Db, tag: &str, dispatch: bool) -> (AppState, String, String) {
    let stream = format!("BENCH_{tag}_{}", uuid::Uuid::new_v4().simple());
    let prefix = format!("bench{}", uuid::Uuid::new_v4().simple());
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("hub.toml");
    std::fs::write(
        &file,
        format!(
            "[outbox]\ndispatch = {dispatch}\nbatch_size = 1000\n\n[[outbox.nats]]\nname = \"bus-{tag}\"\nurl = \"{}\"\nstream = \"{stream}\"\nsubject_prefix = \"{prefix}\"\n",
            nats_url()
        ),
    )
    .unwrap();
    let overrides = Overrides {
        database_url: Some(db.url.clone()),
        issuer: Some("https://hub.bench".into()),
        bind: None,
    };
    let config = Config::load_from(Some(&file), &[], &overrides).unwrap();
    let store = Store::connect(&db.url, 8, Duration::from_secs(5))
        .await
        .unwrap();
    store.migrate().await.unwrap();
    let app = AppState::build(config, store, Arc::new(SystemClock))
        .await
        .unwrap();
    outbox::sync_configured(&app).await.unwrap();
    (app, stream, prefix)
}

fn event(i: usize) -> NewEvent {
    NewEvent {
        kind: EventType::PersonUpdated,
        subject: format!("people/{:08}", i % 5000),
        data: serde_json::json!({
            "id": format!("{:08}", i % 5000), "sourcedId": format!("stu-{i}"),
            "kinds": ["student"], "givenName": "Pat", "familyName": "Bench",
            "status": "active", "affiliations": [{"org": "s1", "role": "student", "primary": true}]
        }),
    }
}

/// Appends `n` events, `per_tx` per transaction.
async fn write(app: &AppState, from: usize, n: usize, per_tx: usize) {
    let mut i = from;
    while i < from + n {
        let mut tx = app.store().begin().await.unwrap();
        let end = (i + per_tx).min(from + n);
        for k in i..end {
            outbox::append(&mut tx, app.clock().now(), event(k))
                .await
                .unwrap();
        }
        tx.commit().await.unwrap();
        i = end;
    }
}

/// Dispatches until the subscriber has everything; events delivered.
async fn dispatch_all(app: &AppState, sink: &dyn outbox::sinks::Sink, until: i64) -> usize {
    let mut delivered = 0;
    loop {
        let name = &app.config().outbox.nats[0].name;
        let r = outbox::deliver_once(app, "bench", name, sink)
            .await
            .unwrap();
        assert!(!r.failed, "delivery failed: {r:?}");
        delivered += r.delivered;
        if delivered >= until as usize {
            return delivered;
        }
        if r.delivered == 0 {
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
    }
}

fn sink(app: &AppState) -> Arc<dyn outbox::sinks::Sink> {
    let cfg = app.config().outbox.nats[0].clone();
    Arc::new(outbox::sinks::NatsSink::new(cfg, Duration::from_secs(10)))
}

async fn delete_stream(stream: &str) {
    if let Ok(c) = async_nats::connect(nats_url()).await {
        let _ = async_nats::jetstream::new(c).delete_stream(stream).await;
    }
}

struct Row {
    label: String,
    write: f64,
    dispatch: f64,
    e2e: f64,
    p50: f64,
    p99: f64,
    max: f64,
    rss: Vec<f64>,
}

async fn measure(db: &Db, a: &Args) -> Row {
    // write, then dispatch the backlog
    let (app, stream, _) = open_app(db, "tp", false).await;
    let s = sink(&app);
    let t = Instant::now();
    write(&app, 0, a.events, 100).await;
    let write_rate = a.events as f64 / t.elapsed().as_secs_f64();
    let t = Instant::now();
    dispatch_all(&app, s.as_ref(), a.events as i64).await;
    let dispatch_rate = a.events as f64 / t.elapsed().as_secs_f64();
    // both at once
    let t = Instant::now();
    let writer = {
        let app = app.clone();
        let n = a.events;
        tokio::spawn(async move { write(&app, n, n, 100).await })
    };
    dispatch_all(&app, s.as_ref(), a.events as i64).await;
    writer.await.unwrap();
    let e2e_rate = a.events as f64 / t.elapsed().as_secs_f64();
    delete_stream(&stream).await;
    app.store().close().await;

    // latency at 1,000 events/s through the real dispatcher
    let (app, stream, prefix) = open_app(db, "lat", true).await;
    let handle = outbox::start(app.clone()).await.unwrap().unwrap();
    let client = async_nats::connect(nats_url()).await.unwrap();
    let mut subscription = client.subscribe(format!("{prefix}.>")).await.unwrap();
    tokio::time::sleep(Duration::from_millis(1500)).await; // the supervisor starts the worker
    let total = (a.latency_seconds * 1000) as usize;
    let writer = {
        let app = app.clone();
        tokio::spawn(async move {
            let start = Instant::now();
            for i in 0..total {
                let due = start + Duration::from_micros(i as u64 * 1000);
                tokio::time::sleep_until(due.into()).await;
                write(&app, i, 1, 1).await;
            }
        })
    };
    let mut lat = Vec::with_capacity(total);
    while lat.len() < total {
        let Ok(Some(m)) = tokio::time::timeout(Duration::from_secs(10), subscription.next()).await
        else {
            panic!("latency run: {} of {total} events arrived", lat.len());
        };
        let now = SystemClock.now_ms();
        let v: serde_json::Value = serde_json::from_slice(&m.payload).unwrap();
        let at = Timestamp::parse_rfc3339(v["time"].as_str().unwrap()).unwrap();
        lat.push((now - at.as_millis()) as f64);
    }
    writer.await.unwrap();
    handle.stop().await;
    delete_stream(&stream).await;
    app.store().close().await;
    lat.sort_by(f64::total_cmp);
    let pct = |p: f64| lat[((lat.len() as f64 * p) as usize).min(lat.len() - 1)];

    // memory over a long run, written and dispatched together
    let (app, stream, _) = open_app(db, "mem", false).await;
    let s = sink(&app);
    let mut rss = vec![rss_mib()];
    let step = a.memory_events / 4;
    for k in 0..4 {
        let writer = {
            let app = app.clone();
            tokio::spawn(async move { write(&app, k * step, step, 100).await })
        };
        dispatch_all(&app, s.as_ref(), step as i64).await;
        writer.await.unwrap();
        rss.push(rss_mib());
    }
    delete_stream(&stream).await;
    app.store().close().await;

    Row {
        label: db.label.to_string(),
        write: write_rate,
        dispatch: dispatch_rate,
        e2e: e2e_rate,
        p50: pct(0.50),
        p99: pct(0.99),
        max: *lat.last().unwrap(),
        rss,
    }
}

/// The ceiling: the same payloads published straight to a stream with acks,
/// pipelined 1,000 at a time.
async fn bare(n: usize) -> f64 {
    let stream = format!("BENCH_BARE_{}", uuid::Uuid::new_v4().simple());
    let prefix = format!("bare{}", uuid::Uuid::new_v4().simple());
    let js = async_nats::jetstream::new(async_nats::connect(nats_url()).await.unwrap());
    js.get_or_create_stream(async_nats::jetstream::stream::Config {
        name: stream.clone(),
        subjects: vec![format!("{prefix}.>")],
        duplicate_window: Duration::from_secs(120),
        ..Default::default()
    })
    .await
    .unwrap();
    let payload: Vec<u8> = serde_json::to_vec(&event(1).data).unwrap();
    let t = Instant::now();
    let mut i = 0;
    while i < n {
        let mut acks = Vec::with_capacity(1000);
        for _ in 0..1000.min(n - i) {
            let mut h = async_nats::HeaderMap::new();
            h.insert("Nats-Msg-Id", uuid::Uuid::new_v4().to_string().as_str());
            acks.push(
                js.publish_with_headers(format!("{prefix}.x"), h, payload.clone().into())
                    .await
                    .unwrap(),
            );
            i += 1;
        }
        for a in acks {
            a.await.unwrap();
        }
    }
    let rate = n as f64 / t.elapsed().as_secs_f64();
    let _ = js.delete_stream(&stream).await;
    rate
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let a = args();
    let mut rows = Vec::new();
    let db = sqlite().await;
    rows.push(measure(&db, &a).await);
    if let Some(db) = postgres().await {
        rows.push(measure(&db, &a).await);
        drop_db(&db).await;
    } else {
        eprintln!("PostgreSQL skipped: set HMS_BENCH_POSTGRES_URL");
    }
    let ceiling = bare(a.events).await;
    let mut out = format!(
        "## Outbox → NATS JetStream ({} events per phase, latency {} s at 1,000/s, memory over {} events)\n\n\
         | store | written/s (100 per tx) | dispatched/s (backlog) | written+dispatched/s | latency p50 / p99 / max ms at 1,000/s | RSS MiB at 0, ¼, ½, ¾, all |\n\
         | --- | ---: | ---: | ---: | ---: | --- |\n",
        a.events, a.latency_seconds, a.memory_events
    );
    for r in &rows {
        out.push_str(&format!(
            "| {} | {:.0} | {:.0} | {:.0} | {:.0} / {:.0} / {:.0} | {} |\n",
            r.label,
            r.write,
            r.dispatch,
            r.e2e,
            r.p50,
            r.p99,
            r.max,
            r.rss
                .iter()
                .map(|m| format!("{m:.1}"))
                .collect::<Vec<_>>()
                .join(", ")
        ));
    }
    out.push_str(&format!(
        "| bare async-nats publish with acks (ceiling) | – | {ceiling:.0} | – | – | – |\n"
    ));
    print!("{out}");
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("bench/outbox/last-run.md");
    let _ = std::fs::write(path, out);
}
