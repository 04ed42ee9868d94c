//! Connection limits of the real binary (issue 13, defect 5): slow and silent request
//! heads are cut at the header timeout, kept-alive connections at the idle timeout, and
//! a flood past `server.max_connections` leaves the probes and the scrape answering
//! while everything else gets 503 or a closed connection, and recovers when the flood
//! ends. Peers: raw `tokio` sockets (the flood and the slow clients, byte by byte) and
//! `reqwest` as an ordinary HTTP client. Every flood is bounded (at most 200 sockets)
//! and every wait has a generous upper bound; no assertion depends on exact timings.

use integration_tests::Hub;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::task::JoinSet;
use tokio::time::{timeout, Instant};

/// Generous: the limits under test are 1–6 s.
const CLOSED_WITHIN: Duration = Duration::from_secs(12);

fn limits(header: &str, idle: &str) -> Vec<(&'static str, String)> {
    vec![
        ("HMS_ACH__SERVER__MAX_CONNECTIONS", "50".into()),
        ("HMS_ACH__SERVER__RESERVED_CONNECTIONS", "4".into()),
        (
            "HMS_ACH__SERVER__HEADER_READ_TIMEOUT_SECONDS",
            header.into(),
        ),
        ("HMS_ACH__SERVER__KEEP_ALIVE_IDLE_SECONDS", idle.into()),
    ]
}

async fn start(dir: &std::path::Path, env: &[(&'static str, String)]) -> Hub {
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    Hub::start_with_env(dir, "info", &env).await
}

fn addr(hub: &Hub) -> String {
    hub.base.trim_start_matches("http://").to_string()
}

/// Reads until the server closes the connection (EOF or reset); false if it is still
/// open after `within`. Whatever the server sent is discarded.
async fn closed_by_server(stream: &mut TcpStream, within: Duration) -> bool {
    let deadline = Instant::now() + within;
    let mut buf = [0u8; 4096];
    loop {
        match timeout(
            deadline.saturating_duration_since(Instant::now()),
            stream.read(&mut buf),
        )
        .await
        {
            Err(_) => return false,
            Ok(Ok(0)) | Ok(Err(_)) => return true,
            Ok(Ok(_)) => continue,
        }
    }
}

/// Whether the server has closed the connection already (looked at for 50 ms).
async fn already_closed(stream: &mut TcpStream) -> bool {
    closed_by_server(stream, Duration::from_millis(50)).await
}

/// The connections the server has not closed (all looked at together).
async fn still_open(conns: Vec<TcpStream>) -> Vec<TcpStream> {
    let mut checks = JoinSet::new();
    for mut s in conns {
        checks.spawn(async move { (!already_closed(&mut s).await).then_some(s) });
    }
    let mut open = Vec::new();
    while let Some(r) = checks.join_next().await {
        open.extend(r.unwrap());
    }
    open
}

/// One HTTP/1.1 response head and body (Content-Length framed) read from `stream`.
async fn read_response(stream: &mut TcpStream) -> (u16, String, String) {
    let mut data = Vec::new();
    let mut buf = [0u8; 4096];
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if let Some(end) = data.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&data[..end]).to_string();
            let length: usize = head
                .lines()
                .find_map(|l| {
                    let (name, value) = l.split_once(':')?;
                    name.eq_ignore_ascii_case("content-length")
                        .then(|| value.trim().parse().ok())?
                })
                .unwrap_or(0);
            if data.len() >= end + 4 + length {
                let status = head[9..12].parse().unwrap();
                let body = String::from_utf8_lossy(&data[end + 4..end + 4 + length]).to_string();
                return (status, head, body);
            }
        }
        let n = timeout(
            deadline.saturating_duration_since(Instant::now()),
            stream.read(&mut buf),
        )
        .await
        .expect("a response within 10 s")
        .expect("read the response");
        assert!(
            n > 0,
            "the connection closed before a whole response: {data:?}"
        );
        data.extend_from_slice(&buf[..n]);
    }
}

async fn request(stream: &mut TcpStream, host: &str, path: &str) -> (u16, String, String) {
    let req = format!("GET {path} HTTP/1.1\r\nHost: {host}\r\n\r\n");
    stream.write_all(req.as_bytes()).await.unwrap();
    read_response(stream).await
}

/// A client that opens a new connection for every request.
fn fresh_client() -> reqwest::Client {
    reqwest::Client::builder()
        .pool_max_idle_per_host(0)
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap()
}

/// The value of one Prometheus sample, e.g. `name{reason="evicted"}`; 0 if absent.
fn sample(metrics: &str, series: &str) -> f64 {
    metrics
        .lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' '))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0.0)
}

async fn scrape(hub: &Hub) -> String {
    let resp = fresh_client()
        .get(format!("{}/metrics", hub.base))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    resp.text().await.unwrap()
}

fn hub_log(dir: &std::path::Path) -> String {
    std::fs::read_to_string(dir.join("hub.log")).unwrap()
}

#[tokio::test]
async fn slow_silent_and_trickling_request_heads_are_closed_at_the_header_timeout() {
    let dir = tempfile::tempdir().unwrap();
    let hub = start(dir.path(), &limits("1", "6")).await;
    let host = addr(&hub);

    let mut clients = JoinSet::new();
    // Slowloris: half a request head, then nothing.
    for _ in 0..20 {
        let host = host.clone();
        clients.spawn(async move {
            let mut s = TcpStream::connect(&host).await.unwrap();
            let partial = format!("GET /healthz HTTP/1.1\r\nHost: {host}\r\nX-Slow: ");
            s.write_all(partial.as_bytes()).await.unwrap();
            closed_by_server(&mut s, CLOSED_WITHIN).await
        });
    }
    // Connected and silent.
    for _ in 0..10 {
        let host = host.clone();
        clients.spawn(async move {
            let mut s = TcpStream::connect(&host).await.unwrap();
            closed_by_server(&mut s, CLOSED_WITHIN).await
        });
    }
    // Trickling a byte every 200 ms does not extend the limit.
    for _ in 0..3 {
        let host = host.clone();
        clients.spawn(async move {
            let mut s = TcpStream::connect(&host).await.unwrap();
            let head = format!(
                "GET /healthz HTTP/1.1\r\nHost: {host}\r\nX-Slow: {}",
                "a".repeat(200)
            );
            let started = Instant::now();
            for b in head.bytes() {
                if started.elapsed() > CLOSED_WITHIN || s.write_all(&[b]).await.is_err() {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(200)).await;
                if already_closed(&mut s).await {
                    return true;
                }
            }
            false
        });
    }
    let mut closed = 0;
    while let Some(r) = clients.join_next().await {
        closed += usize::from(r.unwrap());
    }
    assert_eq!(
        closed, 33,
        "every slow, silent or trickling head is closed by the server"
    );

    // The hub still serves, and says what it did.
    let resp = fresh_client()
        .get(format!("{}/healthz", hub.base))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let metrics = scrape(&hub).await;
    let header_timeouts = sample(
        &metrics,
        "hms_ach_connections_timed_out_total{phase=\"header\"}",
    );
    assert!(header_timeouts >= 33.0, "{header_timeouts}\n{metrics}");
    assert!(hub_log(dir.path()).contains("sent no whole request head"));
    assert!(hub.stop().await, "the hub exits 0 on SIGTERM");
}

#[tokio::test]
async fn kept_alive_connections_outlive_the_header_timeout_and_close_at_the_idle_timeout() {
    let dir = tempfile::tempdir().unwrap();
    let hub = start(dir.path(), &limits("1", "6")).await;
    let host = addr(&hub);

    let mut conns = Vec::new();
    for _ in 0..5 {
        let mut s = TcpStream::connect(&host).await.unwrap();
        let (status, head, body) = request(&mut s, &host, "/healthz").await;
        assert_eq!((status, body.as_str()), (200, "ok"), "{head}");
        conns.push(s);
    }
    // Idle past the header timeout (1 s) but well within the idle one (6 s): the
    // connections are still usable, so the two limits are distinct.
    tokio::time::sleep(Duration::from_millis(2_500)).await;
    for s in &mut conns {
        let (status, head, _) = request(s, &host, "/readyz").await;
        assert_eq!(status, 200, "{head}");
        assert!(
            !head.to_ascii_lowercase().contains("connection: close"),
            "{head}"
        );
    }
    // Then idle for good: the server closes them.
    let mut clients = JoinSet::new();
    for mut s in conns {
        clients.spawn(async move { closed_by_server(&mut s, CLOSED_WITHIN).await });
    }
    let mut closed = 0;
    while let Some(r) = clients.join_next().await {
        closed += usize::from(r.unwrap());
    }
    assert_eq!(
        closed, 5,
        "idle kept-alive connections are closed by the server"
    );

    let metrics = scrape(&hub).await;
    let idle = sample(
        &metrics,
        "hms_ach_connections_timed_out_total{phase=\"idle\"}",
    );
    assert!(idle >= 5.0, "{idle}\n{metrics}");
    assert_eq!(
        sample(
            &metrics,
            "hms_ach_connections_timed_out_total{phase=\"header\"}"
        ),
        0.0,
        "no kept-alive connection was cut by the header timeout\n{metrics}"
    );
    assert!(hub.stop().await, "the hub exits 0 on SIGTERM");
}

#[tokio::test]
async fn a_flood_past_the_cap_leaves_probes_answering_refuses_the_rest_and_recovers() {
    let dir = tempfile::tempdir().unwrap();
    // Long timeouts, so that the flood holds while the checks run.
    let hub = start(dir.path(), &limits("20", "20")).await;
    let host = addr(&hub);
    let http = fresh_client();

    // 200 silent connections against 50 normal + 4 reserved.
    let mut flood = Vec::new();
    for _ in 0..200 {
        flood.push(TcpStream::connect(&host).await.unwrap());
    }
    // Past the cap the server closes connections at once (the reserve keeps only the
    // newest silent ones); wait until it has gone through the backlog.
    let deadline = Instant::now() + CLOSED_WITHIN;
    let mut open = still_open(flood).await;
    while open.len() > 54 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(200)).await;
        open = still_open(open).await;
    }
    assert!(
        (50..=54).contains(&open.len()),
        "the flood holds the 50 normal connections and at most the 4 reserved ones: {} open",
        open.len()
    );

    // While the flood holds: the probes and the scrape answer, on new connections.
    for _ in 0..5 {
        for path in ["/healthz", "/readyz"] {
            let resp = http
                .get(format!("{}{path}", hub.base))
                .send()
                .await
                .unwrap();
            assert_eq!(resp.status(), 200, "{path} during the flood");
        }
    }
    let metrics = scrape(&hub).await;
    assert!(
        sample(&metrics, "hms_ach_connections_open") >= 50.0,
        "{metrics}"
    );

    // Anything else: 503 problem+json with Retry-After, or a closed connection.
    let mut answered_503 = 0;
    for _ in 0..3 {
        match http.get(format!("{}/oauth2/jwks", hub.base)).send().await {
            Ok(resp) => {
                assert_eq!(resp.status(), 503);
                let h = resp.headers().clone();
                assert_eq!(h["content-type"], "application/problem+json");
                assert_eq!(h["retry-after"], "20");
                assert_eq!(h["connection"], "close");
                let problem: serde_json::Value = resp.json().await.unwrap();
                assert_eq!(problem["status"], 503);
                assert_eq!(problem["type"], "urn:hms-ach:problem:unavailable");
                answered_503 += 1;
            }
            Err(e) => assert!(e.is_connect() || e.is_request(), "{e}"),
        }
    }
    assert!(
        answered_503 > 0,
        "the reserve answers 503 rather than nothing"
    );

    // The flood ends: normal requests succeed again.
    drop(open);
    let deadline = Instant::now() + CLOSED_WITHIN;
    loop {
        let resp = http.get(format!("{}/oauth2/jwks", hub.base)).send().await;
        if matches!(&resp, Ok(r) if r.status() == 200) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "no recovery after the flood: {resp:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // The metrics and the log tell what happened.
    let metrics = scrape(&hub).await;
    let evicted = sample(
        &metrics,
        "hms_ach_connections_refused_total{reason=\"evicted\"}",
    );
    let over = sample(
        &metrics,
        "hms_ach_connections_refused_total{reason=\"over_capacity\"}",
    );
    // The 146 flood connections past 54, and at most one more per connection opened
    // during the flood (10 probes, a scrape, 3 API requests).
    assert!(
        (146.0..=160.0).contains(&(evicted + over)),
        "evicted {evicted}, over capacity {over}\n{metrics}"
    );
    let shed = sample(
        &metrics,
        "hms_ach_connections_refused_total{reason=\"reserved_for_ops\"}",
    );
    assert!(shed >= answered_503 as f64, "{metrics}");
    assert_eq!(
        sample(&metrics, "hms_ach_connections_max"),
        50.0,
        "{metrics}"
    );
    let log = hub_log(dir.path());
    assert!(log.contains("connection limit reached"), "{log}");
    // Throttled: 150 refusals make a handful of lines, not 150.
    let lines = log.matches("connection limit reached").count();
    assert!(lines <= 10, "{lines} log lines");
    assert!(hub.stop().await, "the hub exits 0 on SIGTERM");
}

/// The production failure: the open-file limit ran out before any connection limit, and
/// then nothing could be accepted, health checks included. Under a low limit the hub
/// lowers its cap to fit, so a flood meets the cap, not the file limit.
#[tokio::test]
async fn under_a_low_file_limit_the_cap_is_lowered_and_probes_outlast_a_flood() {
    let dir = tempfile::tempdir().unwrap();
    let env = [
        ("HMS_ACH__SERVER__RESERVED_CONNECTIONS", "4"),
        ("HMS_ACH__SERVER__HEADER_READ_TIMEOUT_SECONDS", "20"),
        ("HMS_ACH__SERVER__KEEP_ALIVE_IDLE_SECONDS", "20"),
    ];
    let hub = Hub::start_with_file_limit(dir.path(), &env, 256).await;
    let host = addr(&hub);
    let http = fresh_client();
    let log = hub_log(dir.path());
    assert!(log.contains("max_connections lowered"), "{log}");
    // 256 descriptors: 128 for the hub's other files, 4 reserved, 124 normal.
    assert_eq!(
        sample(&scrape(&hub).await, "hms_ach_connections_max"),
        124.0
    );

    // More silent sockets than the hub has descriptors.
    let mut flood = Vec::new();
    for _ in 0..300 {
        flood.push(TcpStream::connect(&host).await.unwrap());
    }
    let deadline = Instant::now() + CLOSED_WITHIN;
    let mut open = still_open(flood).await;
    while open.len() > 128 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(200)).await;
        open = still_open(open).await;
    }
    assert!(open.len() <= 128, "{} open", open.len());
    for path in ["/healthz", "/readyz", "/healthz"] {
        let resp = http
            .get(format!("{}{path}", hub.base))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 200, "{path} during the flood");
    }
    drop(open);
    let deadline = Instant::now() + CLOSED_WITHIN;
    loop {
        let resp = http.get(format!("{}/oauth2/jwks", hub.base)).send().await;
        if matches!(&resp, Ok(r) if r.status() == 200) {
            break;
        }
        assert!(Instant::now() < deadline, "no recovery: {resp:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let metrics = scrape(&hub).await;
    assert_eq!(
        sample(&metrics, "hms_ach_accept_errors_total{kind=\"file_limit\"}"),
        0.0,
        "the hub never ran out of descriptors\n{metrics}"
    );
    // Each socket past the cap was either evicted from the reserve or, while eight
    // evicted ones were still closing, closed at once.
    let evicted = sample(
        &metrics,
        "hms_ach_connections_refused_total{reason=\"evicted\"}",
    );
    let over = sample(
        &metrics,
        "hms_ach_connections_refused_total{reason=\"over_capacity\"}",
    );
    assert!(evicted + over >= 300.0 - 128.0, "{metrics}");
    assert!(hub.stop().await, "the hub exits 0 on SIGTERM");
}
