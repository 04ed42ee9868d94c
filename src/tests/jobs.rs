//! Scheduled jobs (issue 16): a slot runs once however many replicas race for it, a
//! downtime's missed slots run once, a failing or crashed run is recorded as failed,
//! and the history is in the API for those allowed to read it.

use super::*;
use crate::clock::Timestamp;
use crate::jobs::{
    tick, Job, JobContext, JobOutcome, JobRun, Jobs, RunFilter, Schedule, ScheduledJob, Tick,
};
use std::sync::atomic::{AtomicUsize, Ordering};

/// How a test job's run ends.
#[derive(Clone, Copy)]
enum Ending {
    Succeed,
    Fail(&'static str),
    Panic,
}

/// A job that counts its runs, holds for `hold`, and ends as `ending` says.
struct Counting {
    runs: Arc<AtomicUsize>,
    hold: Duration,
    ending: Ending,
}

#[async_trait::async_trait]
impl Job for Counting {
    fn name(&self) -> &'static str {
        "test-counting"
    }
    fn description(&self) -> &'static str {
        "counts its runs"
    }
    fn default_schedule(&self) -> &'static str {
        "0 * * * * *"
    }
    async fn run(&self, _ctx: &JobContext) -> Result<JobOutcome, String> {
        self.runs.fetch_add(1, Ordering::SeqCst);
        tokio::time::sleep(self.hold).await;
        match self.ending {
            Ending::Fail(e) => Err(e.to_string()),
            Ending::Panic => panic!("a test job panics on purpose"),
            Ending::Succeed => Ok(JobOutcome {
                items: 3,
                detail: Some("did 3 things".into()),
            }),
        }
    }
}

fn counting(hold_ms: u64, ending: Ending) -> (ScheduledJob, Arc<AtomicUsize>) {
    let runs = Arc::new(AtomicUsize::new(0));
    let job = Counting {
        runs: runs.clone(),
        hold: Duration::from_millis(hold_ms),
        ending,
    };
    let entry = ScheduledJob {
        job: Arc::new(job),
        schedule: Schedule::new("0 * * * * *", "UTC").unwrap(),
    };
    (entry, runs)
}

/// Moves the test clock to 5 s past a whole minute, an hour ahead (never back:
/// the signing keys were made at the real time).
fn at_minute_plus_5s(t: &TestApp) -> Timestamp {
    let now = t.clock.now_ms();
    let to = Timestamp::from_millis((now / 60_000 + 60) * 60_000 + 5_000);
    t.clock.set(to);
    to
}

async fn runs_of(store: &Store, name: &str) -> Vec<JobRun> {
    crate::jobs::list_runs(
        store,
        &RunFilter {
            name: name.into(),
            before: None,
            limit: 200,
        },
    )
    .await
    .unwrap()
}

/// Another replica: its own pool on the same database, its own AppState (and so
/// its own replica id), the same clock.
async fn second_replica(t: &TestApp) -> AppState {
    let store = Store::connect(&t.url, 4, Duration::from_secs(5))
        .await
        .unwrap();
    AppState::build(t.app.config().clone(), store, t.clock.clone())
        .await
        .unwrap()
}

store_test!(
    replicas_racing_for_a_slot_run_it_once,
    |t: TestApp| async move {
        let b = second_replica(&t).await;
        assert_ne!(t.app.jobs().replica(), b.jobs().replica());
        let (entry, count) = counting(30, Ending::Succeed);
        at_minute_plus_5s(&t);
        assert_eq!(tick(&t.app, &entry).await.unwrap(), Tick::Started);
        for slot in 1..=5 {
            t.clock.advance_secs(60);
            // Three wake-ups on each replica at the same moment.
            let mut racers = Vec::new();
            for app in [&t.app, &b, &t.app, &b, &t.app, &b] {
                let (app, entry) = (app.clone(), entry.clone());
                racers.push(tokio::spawn(async move { tick(&app, &entry).await }));
            }
            let mut ran = Vec::new();
            for r in racers {
                match r.await.unwrap().unwrap() {
                    Tick::Ran(run) => ran.push(run),
                    Tick::Taken | Tick::Busy => {}
                    other => panic!("slot {slot}: unexpected {other:?}"),
                }
            }
            assert_eq!(ran.len(), 1, "slot {slot}: exactly one wake-up runs it");
            assert_eq!(
                count.load(Ordering::SeqCst),
                slot,
                "the job ran once per slot"
            );
            assert_eq!(ran[0].outcome, "succeeded");
            assert_eq!(ran[0].items, Some(3));
        }
        let runs = runs_of(t.store(), "test-counting").await;
        assert_eq!(runs.len(), 5, "{runs:?}");
        let mut slots: Vec<Timestamp> = runs.iter().map(|r| r.slot).collect();
        slots.sort();
        slots.dedup();
        assert_eq!(slots.len(), 5, "one row per slot");
        assert!(
            runs.iter().all(|r| r.slot.as_millis() % 60_000 == 0),
            "slots are the scheduled minutes, not the wake-up times"
        );
        // A wake-up late in the same minute finds its slot taken.
        t.clock.advance_secs(30);
        assert_eq!(tick(&b, &entry).await.unwrap(), Tick::Taken);
        b.store().close().await;
    }
);

store_test!(
    missed_slots_after_a_downtime_run_once,
    |t: TestApp| async move {
        let (entry, count) = counting(0, Ending::Succeed);
        let start = at_minute_plus_5s(&t);
        assert_eq!(tick(&t.app, &entry).await.unwrap(), Tick::Started);
        assert_eq!(
            count.load(Ordering::SeqCst),
            0,
            "a new job does not run for a slot from before it"
        );
        // Down for ten and a half minutes: ten slots passed.
        t.clock.advance_secs(630);
        let Tick::Ran(run) = tick(&t.app, &entry).await.unwrap() else {
            panic!("the latest missed slot runs");
        };
        assert_eq!(count.load(Ordering::SeqCst), 1);
        assert_eq!(run.slot.as_millis(), start.as_millis() - 5_000 + 600_000);
        assert_eq!(
            run.detail.as_deref(),
            Some("caught up: 9 missed slots skipped; did 3 things")
        );
        assert_eq!(tick(&t.app, &entry).await.unwrap(), Tick::Taken);
        // A restart changes nothing: the state is in the database.
        let before = t.clock.now();
        let t = t.restart().await;
        t.clock.set(before);
        assert_eq!(tick(&t.app, &entry).await.unwrap(), Tick::Taken);
        t.clock.advance_secs(60);
        let Tick::Ran(run) = tick(&t.app, &entry).await.unwrap() else {
            panic!("the next slot runs");
        };
        assert_eq!(
            run.detail.as_deref(),
            Some("did 3 things"),
            "nothing was missed"
        );
        assert_eq!(count.load(Ordering::SeqCst), 2);
        assert_eq!(runs_of(t.store(), "test-counting").await.len(), 2);
    }
);

store_test!(
    a_failing_job_records_failed_with_its_error,
    |t: TestApp| async move {
        let (entry, count) = counting(0, Ending::Fail("the upstream said no"));
        at_minute_plus_5s(&t);
        tick(&t.app, &entry).await.unwrap();
        t.clock.advance_secs(60);
        let Tick::Ran(run) = tick(&t.app, &entry).await.unwrap() else {
            panic!("runs");
        };
        assert_eq!(count.load(Ordering::SeqCst), 1);
        assert_eq!(run.outcome, "failed");
        assert_eq!(run.error.as_deref(), Some("the upstream said no"));
        assert_eq!(run.items, None);
        assert!(run.ended_at.is_some());
        // A failed slot is not retried: the next run is the next slot's.
        assert_eq!(tick(&t.app, &entry).await.unwrap(), Tick::Taken);
        let metrics = crate::ops::metrics::render();
        assert!(
            metrics.contains("hms_ach_job_runs_total{job=\"test-counting\",outcome=\"failed\"}"),
            "{metrics}"
        );
    }
);

// A job that panics: the run is failed, the scheduler lives on.
store_test!(a_panicking_job_is_a_failed_run, |t: TestApp| async move {
    let (entry, count) = counting(0, Ending::Panic);
    at_minute_plus_5s(&t);
    tick(&t.app, &entry).await.unwrap();
    t.clock.advance_secs(60);
    let Tick::Ran(run) = tick(&t.app, &entry).await.unwrap() else {
        panic!("runs");
    };
    assert_eq!(count.load(Ordering::SeqCst), 1);
    assert_eq!(run.outcome, "failed");
    assert!(run.error.unwrap().contains("panicked"));
});

store_test!(
    a_crashed_run_is_reclaimed_after_its_lease,
    |t: TestApp| async move {
        let (entry, count) = counting(0, Ending::Succeed);
        let start = at_minute_plus_5s(&t);
        tick(&t.app, &entry).await.unwrap();
        // A replica claimed the next slot and died: its row stays `running`, its
        // lease (60 s by default) unrenewed.
        t.clock.advance_secs(60);
        let slot = start.as_millis() - 5_000 + 60_000;
        let now = t.clock.now_ms();
        sqlx::query(
            "INSERT INTO job_runs (id, name, kind, slot, replica, started_at, lease_until, outcome) \
             VALUES ('dead-run', 'test-counting', 'scheduled', $1, 'gone:1:x', $2, $3, 'running')",
        )
        .bind(slot)
        .bind(now)
        .bind(now + 60_000)
        .execute(t.store().writer())
        .await
        .unwrap();
        sqlx::query("UPDATE job_state SET last_slot = $1 WHERE name = 'test-counting'")
            .bind(slot)
            .execute(t.store().writer())
            .await
            .unwrap();
        // While its lease is live, the next slot waits: the job never overlaps itself.
        t.clock.advance_secs(30);
        assert_eq!(tick(&t.app, &entry).await.unwrap(), Tick::Busy);
        t.clock.advance_secs(30);
        assert_eq!(
            tick(&t.app, &entry).await.unwrap(),
            Tick::Busy,
            "the lease is not over yet"
        );
        assert_eq!(count.load(Ordering::SeqCst), 0);
        // Past the lease, the next claim marks it failed and runs the due slot.
        t.clock.advance_secs(5);
        let Tick::Ran(run) = tick(&t.app, &entry).await.unwrap() else {
            panic!("the due slot runs");
        };
        assert_eq!(run.outcome, "succeeded");
        assert_eq!(count.load(Ordering::SeqCst), 1);
        let runs = runs_of(t.store(), "test-counting").await;
        let dead = runs.iter().find(|r| r.id == "dead-run").unwrap();
        assert_eq!(dead.outcome, "failed");
        assert!(dead.error.as_deref().unwrap().contains("lease"), "{dead:?}");
        assert!(dead.ended_at.is_some());
    }
);

store_test!(
    the_api_lists_jobs_runs_one_now_and_pages_its_runs,
    &[
        ("HMS_ACH__JOBS__SCHEDULES__SIGNIN_SWEEP", "*/10 * * * * *"),
        ("HMS_ACH__DISTRICT__TIME_ZONE", "America/Chicago"),
    ],
    |t: TestApp| async move {
        let admin = t.admin_token().await;
        let (s, _, page) = t
            .call(Method::GET, "/api/v1/jobs", Some(&admin), None)
            .await;
        assert_eq!(s, StatusCode::OK, "{page}");
        let items = page["items"].as_array().unwrap();
        let sweep = items.iter().find(|j| j["name"] == "signin-sweep").unwrap();
        assert_eq!(sweep["schedule"], "*/10 * * * * *", "the override applies");
        assert_eq!(
            sweep["timeZone"], "America/Chicago",
            "the district's zone by default"
        );
        assert!(sweep["nextRun"].as_str().unwrap().ends_with('Z'));
        assert!(sweep["lastRun"].is_null());
        assert!(items.iter().any(|j| j["name"] == "job-history-retention"));

        for _ in 0..3 {
            let (s, _, run) = t
                .call(
                    Method::POST,
                    "/api/v1/jobs/signin-sweep/run",
                    Some(&admin),
                    None,
                )
                .await;
            assert_eq!(s, StatusCode::OK, "{run}");
            assert_eq!(run["outcome"], "succeeded");
            assert_eq!(run["kind"], "manual");
            assert_eq!(run["job"], "signin-sweep");
            assert!(run["items"].is_i64());
            t.clock.advance_secs(1);
        }
        assert_eq!(
            t.audit_rows("job.run").await.len(),
            3,
            "each manual run is audited"
        );

        let (s, _, first) = t
            .call(
                Method::GET,
                "/api/v1/jobs/signin-sweep/runs?limit=2",
                Some(&admin),
                None,
            )
            .await;
        assert_eq!(s, StatusCode::OK, "{first}");
        let a = first["items"].as_array().unwrap();
        assert_eq!(a.len(), 2);
        assert!(
            a[0]["startedAt"].as_str() > a[1]["startedAt"].as_str(),
            "newest first"
        );
        let cursor = first["nextCursor"].as_str().unwrap();
        let (s, _, second) = t
            .call(
                Method::GET,
                &format!("/api/v1/jobs/signin-sweep/runs?limit=2&cursor={cursor}"),
                Some(&admin),
                None,
            )
            .await;
        assert_eq!(s, StatusCode::OK, "{second}");
        let b = second["items"].as_array().unwrap();
        assert_eq!(b.len(), 1);
        assert!(second.get("nextCursor").is_none());
        let mut ids: Vec<&str> = a
            .iter()
            .chain(b)
            .map(|r| r["id"].as_str().unwrap())
            .collect();
        ids.dedup();
        assert_eq!(ids.len(), 3, "every run once across the pages");

        let (_, _, page) = t
            .call(Method::GET, "/api/v1/jobs", Some(&admin), None)
            .await;
        let sweep = page["items"]
            .as_array()
            .unwrap()
            .iter()
            .find(|j| j["name"] == "signin-sweep")
            .unwrap()
            .clone();
        assert_eq!(sweep["lastRun"]["id"], a[0]["id"]);

        for (method, path, want) in [
            (Method::GET, "/api/v1/jobs/nope/runs", StatusCode::NOT_FOUND),
            (Method::POST, "/api/v1/jobs/nope/run", StatusCode::NOT_FOUND),
            (
                Method::GET,
                "/api/v1/jobs/signin-sweep/runs?cursor=zz",
                StatusCode::UNPROCESSABLE_ENTITY,
            ),
            (
                Method::GET,
                "/api/v1/jobs/signin-sweep/runs?limit=0",
                StatusCode::UNPROCESSABLE_ENTITY,
            ),
            (
                Method::GET,
                "/api/v1/jobs/signin-sweep/runs?since=1",
                StatusCode::BAD_REQUEST,
            ),
            (
                Method::GET,
                "/api/v1/jobs?name=signin-sweep",
                StatusCode::BAD_REQUEST,
            ),
        ] {
            let (s, _, b) = t.call(method, path, Some(&admin), None).await;
            assert_eq!(s, want, "{path}: {b}");
        }
    }
);

store_test!(
    a_manual_run_while_one_holds_its_lease_is_a_conflict,
    |t: TestApp| async move {
        let admin = t.admin_token().await;
        let now = t.clock.now_ms();
        sqlx::query(
            "INSERT INTO job_runs (id, name, kind, slot, replica, started_at, lease_until, outcome) \
             VALUES ('live-run', 'signin-sweep', 'scheduled', $1, 'other:1:x', $1, $2, 'running')",
        )
        .bind(now)
        .bind(now + 60_000)
        .execute(t.store().writer())
        .await
        .unwrap();
        let (s, _, b) = t
            .call(
                Method::POST,
                "/api/v1/jobs/signin-sweep/run",
                Some(&admin),
                None,
            )
            .await;
        assert_eq!(s, StatusCode::CONFLICT, "{b}");
        assert!(t.audit_rows("job.run").await.is_empty());
    }
);

store_test!(
    reading_needs_jobs_read_and_running_needs_an_admin,
    |t: TestApp| async move {
        let auditor = t
            .token(Some("auditor"), None, &["jobs.read", "jobs.write"])
            .await;
        let (s, _, b) = t
            .call(Method::GET, "/api/v1/jobs", Some(&auditor), None)
            .await;
        assert_eq!(s, StatusCode::OK, "auditors read the jobs: {b}");
        let (s, _, b) = t
            .call(
                Method::GET,
                "/api/v1/jobs/signin-sweep/runs",
                Some(&auditor),
                None,
            )
            .await;
        assert_eq!(s, StatusCode::OK, "{b}");
        let (s, _, b) = t
            .call(
                Method::POST,
                "/api/v1/jobs/signin-sweep/run",
                Some(&auditor),
                None,
            )
            .await;
        assert_eq!(s, StatusCode::FORBIDDEN, "an auditor changes nothing: {b}");
        let registrar = t.token(Some("registrar"), None, &["jobs.read"]).await;
        let (s, _, _) = t
            .call(Method::GET, "/api/v1/jobs", Some(&registrar), None)
            .await;
        assert_eq!(s, StatusCode::FORBIDDEN);
        let (s, _, _) = t.call(Method::GET, "/api/v1/jobs", None, None).await;
        assert_eq!(s, StatusCode::UNAUTHORIZED);
        assert!(
            runs_of(t.store(), "signin-sweep").await.is_empty(),
            "nothing ran"
        );
    }
);

#[test]
fn a_schedule_for_an_unknown_job_stops_the_hub_at_start() {
    let env = owned(&[("HMS_ACH__JOBS__SCHEDULES__SIGNIN_SWEPE", "0 * * * * *")]);
    let config = Config::load_from(None, &env, &Overrides::default()).unwrap();
    let Err(e) = Jobs::new(&config, crate::jobs::builtin()) else {
        panic!("an unknown job's schedule must be refused");
    };
    let e = e.to_string();
    assert!(
        e.contains("signin-swepe") && e.contains("signin-sweep"),
        "{e}"
    );
    let env = owned(&[("HMS_ACH__JOBS__SCHEDULES__SIGNIN_SWEEP", "0 61 * * * *")]);
    let e = Config::load_from(None, &env, &Overrides::default()).unwrap_err();
    assert!(e.to_string().contains("jobs.schedules.signin_sweep"), "{e}");
    let env = owned(&[("HMS_ACH__JOBS__SCHEDULES__SIGNIN_SWEEP", "0 */2 * * * *")]);
    let config = Config::load_from(None, &env, &Overrides::default()).unwrap();
    let jobs = Jobs::new(&config, crate::jobs::builtin()).unwrap();
    assert_eq!(
        jobs.find("signin-sweep").unwrap().schedule.expr(),
        "0 */2 * * * *"
    );
    assert_eq!(
        jobs.find("job-history-retention").unwrap().schedule.expr(),
        "0 15 3 * * *"
    );
}

store_test!(
    the_scheduler_wakes_jobs_and_stops_before_the_store_closes,
    &[("HMS_ACH__JOBS__SCHEDULES__SIGNIN_SWEEP", "* * * * * *")],
    |t: TestApp| async move {
        let scheduler = crate::jobs::Scheduler::start(&t.app).await.unwrap();
        // The scheduler wakes the job each (real) second; the slots come from the
        // test clock, moved a second per wake-up.
        let mut runs = Vec::new();
        for _ in 0..100 {
            t.clock.advance_secs(1);
            tokio::time::sleep(Duration::from_millis(100)).await;
            runs = runs_of(t.store(), "signin-sweep").await;
            if runs.len() >= 2 {
                break;
            }
        }
        assert!(runs.len() >= 2, "the scheduler ran the job: {runs:?}");
        scheduler.shutdown().await;
        let entry = t.app.jobs().find("signin-sweep").unwrap().clone();
        t.clock.advance_secs(5);
        assert_eq!(tick(&t.app, &entry).await.unwrap(), Tick::Stopping);
        let runs = runs_of(t.store(), "signin-sweep").await;
        assert!(runs.iter().all(|r| r.outcome == "succeeded"), "{runs:?}");
        assert!(runs.iter().all(|r| r.kind == "scheduled"));
    }
);
