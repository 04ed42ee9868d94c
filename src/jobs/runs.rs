//! Claiming a slot and running it: the one path every run takes, scheduled or
//! manual, on any replica.

use futures_util::FutureExt as _;
use std::time::Duration;

use super::model::{JobRun, KIND_MANUAL, KIND_SCHEDULED, OUTCOME_FAILED, OUTCOME_SUCCEEDED};
use super::repo::{self, Ending, NewRun};
use super::schedule::MISSED_COUNT_CAP;
use super::{JobContext, JobError, ScheduledJob};
use crate::audit::{self, Entry, Origin, Outcome};
use crate::clock::Timestamp;
use crate::store;
use crate::AppState;

/// What one wake-up of a job did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Tick {
    /// The process is shutting down.
    Stopping,
    /// The schedule has no slot at or before now.
    NotDue,
    /// The first wake-up this database has seen for the job: the due slot is
    /// recorded as the starting point and nothing runs (a new job does not run for
    /// a slot from before it existed).
    Started,
    /// The due slot was taken already, by this replica or another.
    Taken,
    /// A run of the job still holds its lease: the slot waits, and is run (once)
    /// by the first wake-up after that run ends.
    Busy,
    /// This replica ran the slot.
    Ran(Box<JobRun>),
}

/// A slot this replica won.
struct Claim {
    id: String,
    slot: Timestamp,
    started: Timestamp,
    note: Option<String>,
}

/// Wakes `entry` up now: claims the latest due slot if no one has, and runs it.
pub async fn tick(app: &AppState, entry: &ScheduledJob) -> Result<Tick, JobError> {
    let jobs = app.jobs();
    let _guard = jobs.enter();
    if jobs.stopping() {
        return Ok(Tick::Stopping);
    }
    let now = app.clock().now();
    let claim = match claim_scheduled(app, entry, now).await? {
        Ok(claim) => claim,
        Err(tick) => return Ok(tick),
    };
    Ok(Tick::Ran(Box::new(execute(app, entry, claim).await?)))
}

/// Wakes every job up (at start, and every minute as a safety net for a wake-up the
/// scheduler missed); failures are logged.
pub async fn tick_all(app: &AppState) {
    for entry in app.jobs().entries() {
        log_tick(entry, tick(app, entry).await);
    }
}

pub(super) fn log_tick(entry: &ScheduledJob, result: Result<Tick, JobError>) {
    match result {
        Ok(Tick::Ran(_)) | Ok(Tick::Stopping) | Ok(Tick::NotDue) | Ok(Tick::Taken) => {}
        Ok(Tick::Started) => {
            tracing::debug!(
                job = entry.name(),
                "first wake-up: the job's slots start now"
            )
        }
        Ok(Tick::Busy) => {
            tracing::debug!(job = entry.name(), "still running: the due slot waits")
        }
        Err(e) => tracing::error!(job = entry.name(), error = %e, "claiming a job's slot failed"),
    }
}

async fn claim_scheduled(
    app: &AppState,
    entry: &ScheduledJob,
    now: Timestamp,
) -> Result<Result<Claim, Tick>, JobError> {
    let name = entry.name();
    let Some(due) = entry.schedule.due(now) else {
        return Ok(Err(Tick::NotDue));
    };
    let mut tx = app.store().begin().await?;
    let reclaimed = repo::fail_expired(&mut tx, name, now).await?;
    if reclaimed > 0 {
        tracing::warn!(
            job = name,
            runs = reclaimed,
            "a run stopped renewing its lease (its process died?): marked failed"
        );
    }
    let outcome = if repo::is_running(&mut tx, name).await? {
        Err(Tick::Busy)
    } else {
        match repo::last_slot(&mut tx, name).await? {
            None => {
                repo::advance_state(&mut tx, name, due, now).await?;
                Err(Tick::Started)
            }
            Some(last) if last >= due => Err(Tick::Taken),
            Some(last) => {
                let id = store::new_id();
                let lease_until = now.plus(app.jobs().lease());
                let new = NewRun {
                    id: &id,
                    name,
                    kind: KIND_SCHEDULED,
                    slot: due,
                    replica: app.jobs().replica(),
                    now,
                    lease_until,
                };
                if repo::insert_run(&mut tx, &new).await? {
                    repo::advance_state(&mut tx, name, due, now).await?;
                    let missed = entry.schedule.missed_between(last, due);
                    Ok(Claim {
                        id,
                        slot: due,
                        started: now,
                        note: caught_up_note(missed),
                    })
                } else {
                    Err(Tick::Taken)
                }
            }
        }
    };
    tx.commit().await?;
    Ok(outcome)
}

fn caught_up_note(missed: u64) -> Option<String> {
    match missed {
        0 => None,
        1 => Some("caught up: 1 missed slot skipped".into()),
        n if n >= MISSED_COUNT_CAP => Some(format!("caught up: at least {n} missed slots skipped")),
        n => Some(format!("caught up: {n} missed slots skipped")),
    }
}

/// Claims a manual run of `name` (its slot: now), audited as `job.run` in the same
/// transaction. `Busy` when a run of the job holds its lease.
async fn claim_manual(
    app: &AppState,
    name: &str,
    origin: &Origin,
) -> Result<(ScheduledJob, Claim), JobError> {
    let entry = app
        .jobs()
        .find(name)
        .cloned()
        .ok_or_else(|| JobError::UnknownJob(name.to_string()))?;
    let now = app.clock().now();
    let mut tx = app.store().begin().await?;
    repo::fail_expired(&mut tx, entry.name(), now).await?;
    let id = store::new_id();
    let new = NewRun {
        id: &id,
        name: entry.name(),
        kind: KIND_MANUAL,
        slot: now,
        replica: app.jobs().replica(),
        now,
        lease_until: now.plus(app.jobs().lease()),
    };
    if repo::is_running(&mut tx, entry.name()).await? || !repo::insert_run(&mut tx, &new).await? {
        tx.commit().await?;
        return Err(JobError::Busy(entry.name().to_string()));
    }
    audit::record(
        &mut tx,
        app.audit_key(),
        now.as_millis(),
        origin,
        Entry {
            action: "job.run",
            outcome: Outcome::Success,
            target_kind: "job",
            target_id: entry.name(),
            details: serde_json::json!({ "runId": id }),
        },
    )
    .await?;
    tx.commit().await?;
    let claim = Claim {
        id,
        slot: now,
        started: now,
        note: None,
    };
    Ok((entry, claim))
}

/// Runs `name` now in this process, whatever its schedule (`hms-ach jobs run`), and
/// returns the finished run.
pub async fn run_now(app: &AppState, name: &str, origin: &Origin) -> Result<JobRun, JobError> {
    let _guard = app.jobs().enter();
    let (entry, claim) = claim_manual(app, name, origin).await?;
    execute(app, &entry, claim).await
}

/// Starts a manual run and waits for it at most `wait`: the finished run and `true`,
/// or the running run and `false` (it goes on; its row says how it ended).
pub async fn run_now_in_background(
    app: &AppState,
    name: &str,
    origin: &Origin,
    wait: Duration,
) -> Result<(JobRun, bool), JobError> {
    let guard = app.jobs().enter();
    let (entry, claim) = claim_manual(app, name, origin).await?;
    let id = claim.id.clone();
    let task = {
        let app = app.clone();
        tokio::spawn(async move {
            let _guard = guard;
            execute(&app, &entry, claim).await
        })
    };
    match tokio::time::timeout(wait, task).await {
        Ok(Ok(Ok(run))) => Ok((run, true)),
        Ok(Ok(Err(e))) => Err(e),
        Ok(Err(join)) => Err(JobError::Scheduler(join.to_string())),
        Err(_) => repo::get_run(app.store(), &id)
            .await?
            .map(|run| (run, false))
            .ok_or_else(|| vanished(&id)),
    }
}

/// Runs a claimed slot, renewing its lease every third of it while the job works,
/// and records how it ended. A panic in the job is a failed run, not a dead task.
async fn execute(app: &AppState, entry: &ScheduledJob, claim: Claim) -> Result<JobRun, JobError> {
    let name = entry.name();
    let ctx = JobContext {
        app: app.clone(),
        slot: claim.slot,
        now: claim.started,
    };
    let lease = app.jobs().lease();
    let mut renew = tokio::time::interval(lease / 3);
    renew.tick().await;
    let work = std::panic::AssertUnwindSafe(entry.job.run(&ctx)).catch_unwind();
    tokio::pin!(work);
    let result = loop {
        tokio::select! {
            r = &mut work => break r,
            _ = renew.tick() => {
                let until = app.clock().now().plus(lease);
                match repo::renew_lease(app.store(), &claim.id, until).await {
                    Ok(true) => {}
                    Ok(false) => tracing::warn!(job = name, run = %claim.id, "the run's lease was taken over while it worked"),
                    Err(e) => tracing::error!(job = name, error = %e, "renewing a run's lease failed"),
                }
            }
        }
    };
    let ended = app.clock().now();
    let note = claim.note.as_deref();
    let (outcome, items, detail, error) = match &result {
        Ok(Ok(o)) => {
            let detail = match (note, o.detail.as_deref()) {
                (Some(n), Some(d)) => Some(format!("{n}; {d}")),
                (n, d) => n.or(d).map(str::to_string),
            };
            (OUTCOME_SUCCEEDED, Some(o.items), detail, None)
        }
        Ok(Err(e)) => (
            OUTCOME_FAILED,
            None,
            note.map(str::to_string),
            Some(e.clone()),
        ),
        Err(_) => (
            OUTCOME_FAILED,
            None,
            note.map(str::to_string),
            Some("the job panicked; see the hub's log".to_string()),
        ),
    };
    let end = Ending {
        outcome,
        items,
        detail: detail.as_deref(),
        error: error.as_deref(),
    };
    repo::finish_run(app.store(), &claim.id, ended, &end).await?;
    crate::ops::metrics::job_run(name, outcome, ended.as_millis());
    let took = ended.saturating_sub(claim.started).as_secs_f64();
    match &error {
        None => {
            tracing::info!(job = name, slot = %claim.slot, items = items.unwrap_or(0), seconds = took, detail = detail.as_deref().unwrap_or(""), "job ran")
        }
        Some(e) => {
            tracing::error!(job = name, slot = %claim.slot, error = %e, seconds = took, "job failed")
        }
    }
    repo::get_run(app.store(), &claim.id)
        .await?
        .ok_or_else(|| vanished(&claim.id))
}

fn vanished(id: &str) -> JobError {
    JobError::Store(crate::store::StoreError::Corrupt(format!(
        "the run {id} is no longer in job_runs"
    )))
}

/// At shutdown: this process's runs that did not end in time are recorded as failed
/// (rather than waiting for their leases to lapse).
pub(super) async fn fail_unfinished(app: &AppState) {
    let now = app.clock().now();
    match repo::fail_unfinished(app.store(), app.jobs().replica(), now).await {
        Ok(0) => {}
        Ok(n) => tracing::warn!(
            runs = n,
            "runs still working at shutdown were marked failed"
        ),
        Err(e) => tracing::error!(error = %e, "marking unfinished runs failed at shutdown failed"),
    }
}
