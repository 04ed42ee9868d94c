//! Scheduled jobs (issue 16): work that must happen on a schedule **once** across all
//! replicas — sweeping expired sign-in records, re-reading the district IdPs'
//! metadata, and next the outbox's retention and the admins' daily digest.
//!
//! A job implements [`Job`] and is listed in [`builtin`]. Its cron expression (with
//! seconds) comes from the job or from `[jobs.schedules]`, read in `[jobs] time_zone`
//! (the district's by default). tokio-cron-scheduler wakes each job at its times
//! (`scheduler.rs`); on every wake-up the replica computes the **slot** — the latest
//! scheduled time at or before now, in the job's time zone (`schedule.rs`, croner) —
//! and tries to insert the run's row keyed by (job, slot) (`runs.rs`, `repo.rs`). The
//! replica whose insert lands runs the job; the others meet the unique key and skip.
//! A slot missed while every replica was down is not replayed one by one: the next
//! wake-up (or the start) runs the latest due slot once and notes how many it
//! skipped. A run renews a lease while it works; a `running` row whose lease passed
//! belongs to a process that died, and the next claim marks it failed.
//!
//! History is in `job_runs` (`GET /api/v1/jobs`, `…/{name}/runs`, `hms-ach jobs
//! list`), a manual run is `POST /api/v1/jobs/{name}/run` or `hms-ach jobs run NAME`.

mod builtin;
mod catalog;
mod error;
mod http;
mod model;
mod repo;
mod runs;
mod schedule;
mod scheduler;

pub use builtin::builtin;
pub use catalog::{list_jobs, Jobs, ScheduledJob};
pub use error::JobError;
pub use http::router;
pub use model::{JobRun, JobView};
pub use repo::{list_runs, RunFilter};
pub use runs::{run_now, run_now_in_background, tick, tick_all, Tick};
pub use schedule::Schedule;
pub use scheduler::Scheduler;

use crate::clock::Timestamp;

/// Something the hub does on a schedule. Implementations must be idempotent in
/// effect (a slot runs once, but a run that dies half-way leaves half its work
/// done for the next one) and report how many things they handled.
#[async_trait::async_trait]
pub trait Job: Send + Sync + 'static {
    /// A stable name, lowercase with hyphens (`signin-sweep`): the key of its runs,
    /// its `[jobs.schedules]` entry and its URL.
    fn name(&self) -> &'static str;
    fn description(&self) -> &'static str;
    /// Cron with seconds, e.g. `"0 */5 * * * *"`.
    fn default_schedule(&self) -> &'static str;
    /// Does the work of one slot. `Err` is the failure's description, recorded on the
    /// run and shown to admins: no secret in it.
    async fn run(&self, ctx: &JobContext) -> Result<JobOutcome, String>;
}

/// What a run knows: the hub, the slot it belongs to (the scheduled time; for a
/// manual run, when it was asked for) and the time it started.
pub struct JobContext {
    pub app: crate::AppState,
    pub slot: Timestamp,
    pub now: Timestamp,
}

/// What a run did: how many things it processed, and a line about it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct JobOutcome {
    pub items: i64,
    pub detail: Option<String>,
}
