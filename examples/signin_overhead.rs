//! How much the sign-in path adds to the argon2id hash it is bounded by.
//!
//! `cargo run --release --example signin_overhead [ROUNDS]` prints the median time of:
//!   1. one raw argon2id verification with the configured parameters (the floor);
//!   2. `authn::sign_in` (name lookup, throttle check, verification off the runtime,
//!      throttle reset) against a SQLite file;
//!   3. a whole `POST /login` through the router (form parsing, CSRF check, sign-in,
//!      session creation with its audit event, cookies, the redirect).
//!
//! and the overhead of 2 and 3 over 1. Run it on a quiet machine.

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::http::{header, Request};
use hms_ach::audit::Origin;
use hms_ach::config::{Config, Overrides};
use hms_ach::store::Store;
use hms_ach::{AppState, SystemClock};
use tower::ServiceExt;

const PASSWORD: &str = "benchmark passphrase 2026";

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> anyhow::Result<()> {
    let rounds: usize = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(40);
    let dir = std::env::temp_dir().join(format!("hms-signin-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let url = format!("sqlite://{}/hub.db", dir.display());
    let overrides = Overrides {
        database_url: Some(url.clone()),
        issuer: Some("http://127.0.0.1:8080".into()),
        bind: None,
    };
    // Many sign-ins from one address in a minute: lift the per-address limit.
    let env = [(
        "HMS_ACH__AUTH__ATTEMPTS_PER_IP_PER_MINUTE".to_string(),
        "1000000".to_string(),
    )];
    let config = Config::load_from(None, &env, &overrides)?;
    let a = &config.auth;
    println!(
        "argon2id m={} KiB t={} p={}; {rounds} rounds each; medians",
        a.argon2_memory_kib, a.argon2_iterations, a.argon2_parallelism
    );
    let store = Store::connect(&url, 4, Duration::from_secs(5)).await?;
    store.migrate().await?;
    let app = AppState::build(config, store, Arc::new(SystemClock)).await?;
    let input: hms_ach::directory::PersonInput = serde_json::from_value(serde_json::json!({
        "sourcedId": "bench-1", "kinds": ["teacher"], "givenName": "Bea", "familyName": "Bench", "username": "bea.bench",
    }))?;
    let origin = Origin::system("bench");
    let person = hms_ach::directory::upsert_person(
        app.store(),
        app.audit_key(),
        app.clock().now(),
        &origin,
        None,
        input,
    )
    .await?
    .record;
    hms_ach::authn::set_password(&app, &person, PASSWORD, false, &origin).await?;
    let stored: String = sqlx::query_scalar("SELECT hash FROM passwords WHERE person_id = $1")
        .bind(&person.id)
        .fetch_one(app.store().reader())
        .await?;

    // 1. The raw hash, on a blocking thread as the hub runs it.
    let mut raw = Vec::new();
    for _ in 0..rounds {
        let h = app.passwords().clone();
        let s = stored.clone();
        let t = Instant::now();
        let (ok, _) =
            tokio::task::spawn_blocking(move || h.verify_blocking(PASSWORD, Some(&s))).await?;
        raw.push(t.elapsed());
        assert!(ok);
    }
    // 2. The domain sign-in.
    let mut domain = Vec::new();
    for _ in 0..rounds {
        let t = Instant::now();
        hms_ach::authn::sign_in(&app, "bea.bench", PASSWORD, &origin)
            .await
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        domain.push(t.elapsed());
    }
    // 3. POST /login through the whole router (with a CSRF cookie and token).
    let router = hms_ach::build_router(app.clone());
    let cookie = "x".repeat(32);
    let csrf = hms_ach::authn::csrf_token(app.master_key(), &cookie);
    let mut http = Vec::new();
    for _ in 0..rounds {
        let body = format!(
            "csrf={csrf}&username=bea.bench&password={}",
            PASSWORD.replace(' ', "+")
        );
        let req = Request::post("/login")
            .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
            .header(header::COOKIE, format!("hms_csrf={cookie}"))
            .header(header::ORIGIN, "http://127.0.0.1:8080")
            .body(Body::from(body))?;
        let t = Instant::now();
        let resp = router.clone().oneshot(req).await?;
        http.push(t.elapsed());
        assert_eq!(resp.status(), 303, "sign-in must succeed");
    }
    let (r, d, h) = (median(raw), median(domain), median(http));
    let pct = |x: Duration| (x.as_secs_f64() / r.as_secs_f64() - 1.0) * 100.0;
    println!("raw argon2id verify      {:>8.2} ms", r.as_secs_f64() * 1e3);
    println!(
        "authn::sign_in           {:>8.2} ms  (+{:.1}% over the hash)",
        d.as_secs_f64() * 1e3,
        pct(d)
    );
    println!(
        "POST /login (router)     {:>8.2} ms  (+{:.1}% over the hash)",
        h.as_secs_f64() * 1e3,
        pct(h)
    );
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}
