//! Scheduled jobs across real processes (issue 16): two `hms-ach serve` processes on
//! one database, `signin-sweep` scheduled every second, for several seconds. Each
//! slot must have run exactly once (one `job_runs` row per slot, whichever process
//! took it) while both processes stayed up. On PostgreSQL (a database created for
//! the test, from `HMS_TEST_POSTGRES_URL`) and on one SQLite file shared by both.
//! Peer: none; the hubs are each other's competition, read back with sqlx.

use integration_tests::{hub_command, Hub};
use sqlx::Row;
use std::time::Duration;

const EVERY_SECOND: (&str, &str) = ("HMS_ACH__JOBS__SCHEDULES__SIGNIN_SWEEP", "* * * * * *");

/// How long both hubs run side by side.
const RUN_FOR: Duration = Duration::from_secs(8);

/// A PostgreSQL database for this test, dropped when the guard goes.
struct PgDatabase {
    admin_url: String,
    name: String,
    url: String,
}

impl PgDatabase {
    async fn create() -> PgDatabase {
        let admin_url = std::env::var("HMS_TEST_POSTGRES_URL").unwrap_or_else(|_| {
            panic!(
                "this is a PostgreSQL test and HMS_TEST_POSTGRES_URL is not set \
                 (postgres://postgres@127.0.0.1:5432/postgres); scripts/test.sh leaves it out without a server"
            )
        });
        // A fresh temporary folder's name is unique on this machine.
        let unique = tempfile::tempdir().unwrap();
        let suffix: String = unique
            .path()
            .file_name()
            .map(|n| n.to_string_lossy().to_ascii_lowercase())
            .unwrap_or_default()
            .chars()
            .filter(char::is_ascii_alphanumeric)
            .collect();
        let name = format!("hms_it_jobs_{}_{suffix}", std::process::id());
        let mut admin = <sqlx::PgConnection as sqlx::Connection>::connect(&admin_url)
            .await
            .expect("reach PostgreSQL at HMS_TEST_POSTGRES_URL");
        sqlx::Executor::execute(&mut admin, format!("CREATE DATABASE \"{name}\"").as_str())
            .await
            .expect("create the test database");
        let (base, query) = match admin_url.split_once('?') {
            Some((b, q)) => (b, format!("?{q}")),
            None => (admin_url.as_str(), String::new()),
        };
        let base = base.rsplit_once('/').map_or(base, |(b, _)| b);
        let url = format!("{base}/{name}{query}");
        PgDatabase {
            admin_url,
            name,
            url,
        }
    }
}

impl Drop for PgDatabase {
    fn drop(&mut self) {
        let (url, name) = (self.admin_url.clone(), self.name.clone());
        let _ = std::thread::spawn(move || {
            if let Ok(rt) = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            {
                rt.block_on(async {
                    if let Ok(mut c) = <sqlx::PgConnection as sqlx::Connection>::connect(&url).await
                    {
                        let _ = sqlx::Executor::execute(
                            &mut c,
                            format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)").as_str(),
                        )
                        .await;
                    }
                });
            }
        })
        .join();
    }
}

/// One row of `job_runs`.
#[derive(Debug)]
struct Run {
    slot: i64,
    replica: String,
    outcome: String,
}

/// Keeps `hubs` up for `span`, checking every half second that each answers.
async fn keep_up(hubs: &[&Hub], span: Duration) {
    let http = reqwest::Client::new();
    let started = std::time::Instant::now();
    while started.elapsed() < span {
        for hub in hubs {
            let r = http
                .get(format!("{}/readyz", hub.base))
                .send()
                .await
                .expect("the hub stays up");
            assert_eq!(r.status(), 200, "{} is ready throughout", hub.base);
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// Starts two hubs on `database_url` and keeps both up for [`RUN_FOR`]; stops A and
/// keeps B alone for a few seconds more (B must take every slot then); stops B. Returns
/// the scheduled runs of `signin-sweep`.
async fn two_hubs_side_by_side(database_url: &str) -> Vec<Run> {
    let (dir_a, dir_b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let env = [("HMS_ACH__DATABASE__URL", database_url), EVERY_SECOND];
    let a = Hub::start_with_env(dir_a.path(), "info", &env).await;
    let b = Hub::start_with_env(dir_b.path(), "info", &env).await;
    keep_up(&[&a, &b], RUN_FOR).await;
    assert!(a.stop().await, "hub A stops cleanly (SIGTERM, exit 0)");
    let before = read_runs(database_url).await;
    check_once_per_slot(&before);
    let boundary = before.iter().map(|r| r.slot).max().unwrap_or(0);
    keep_up(&[&b], Duration::from_secs(4)).await;
    assert!(b.stop().await, "hub B stops cleanly (SIGTERM, exit 0)");
    for dir in [dir_a.path(), dir_b.path()] {
        let log = std::fs::read_to_string(dir.join("hub.log")).unwrap();
        assert!(
            log.contains("job scheduled") && log.contains("signin-sweep"),
            "each hub scheduled the job:\n{log}"
        );
        assert!(!log.contains("claiming a job's slot failed"), "{log}");
    }
    let runs = read_runs(database_url).await;
    check_once_per_slot(&runs);
    let alone: Vec<&Run> = runs.iter().filter(|r| r.slot > boundary).collect();
    assert!(
        alone.len() >= 2,
        "B went on running the slots after A stopped: {runs:?}"
    );
    assert!(
        alone.iter().all(|r| r.replica == alone[0].replica),
        "only B was up: {alone:?}"
    );
    // The CLI reads the same history.
    let out = hub_command(dir_a.path())
        .args(["jobs", "list", "--json", "--database-url", database_url])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let list: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let sweep = list
        .as_array()
        .unwrap()
        .iter()
        .find(|j| j["name"] == "signin-sweep")
        .unwrap();
    assert_eq!(
        sweep["schedule"], "0 * * * * *",
        "this process has no override"
    );
    assert_eq!(sweep["lastRun"]["outcome"], "succeeded", "{sweep}");
    runs
}

fn check_once_per_slot(runs: &[Run]) {
    let mut slots: Vec<i64> = runs.iter().map(|r| r.slot).collect();
    slots.sort();
    let all = slots.len();
    slots.dedup();
    assert_eq!(slots.len(), all, "a slot ran twice: {runs:?}");
    // About one slot a second while both ran; a generous lower bound keeps a slow
    // machine from failing the test.
    assert!(
        slots.len() >= 3,
        "expected a run for most of the {} s: {runs:?}",
        RUN_FOR.as_secs()
    );
    assert!(
        slots.iter().all(|s| s % 1000 == 0),
        "slots are whole seconds: {slots:?}"
    );
    assert!(
        runs.iter().all(|r| r.outcome == "succeeded"),
        "no run failed or was left running: {runs:?}"
    );
    let mut replicas: Vec<&str> = runs.iter().map(|r| r.replica.as_str()).collect();
    replicas.sort();
    replicas.dedup();
    eprintln!(
        "{} slots, taken by {} replica(s): {replicas:?}",
        slots.len(),
        replicas.len()
    );
}

const RUNS_SQL: &str = "SELECT slot, replica, outcome FROM job_runs \
     WHERE name = 'signin-sweep' AND kind = 'scheduled' ORDER BY slot";

/// The scheduled runs of `signin-sweep`, oldest slot first.
async fn read_runs(database_url: &str) -> Vec<Run> {
    sqlx::any::install_default_drivers();
    let mut c = <sqlx::AnyConnection as sqlx::Connection>::connect(database_url)
        .await
        .unwrap();
    sqlx::query(RUNS_SQL)
        .fetch_all(&mut c)
        .await
        .unwrap()
        .iter()
        .map(|r| Run {
            slot: r.get("slot"),
            replica: r.get("replica"),
            outcome: r.get("outcome"),
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn postgres_two_hubs_run_each_scheduled_slot_once() {
    let db = PgDatabase::create().await;
    assert!(!two_hubs_side_by_side(&db.url).await.is_empty());
}

/// The same on one SQLite file: the two processes take turns at its write lock.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_hubs_on_one_sqlite_file_run_each_scheduled_slot_once() {
    let shared = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}/hub.db", shared.path().display());
    assert!(!two_hubs_side_by_side(&url).await.is_empty());
}
