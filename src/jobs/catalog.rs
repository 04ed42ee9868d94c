//! The jobs this process knows, with their schedules resolved from the config, and
//! what the process needs to run them: its replica id, the lease, and a count of
//! runs in flight so that shutdown can wait for them.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use super::{Job, JobError, Schedule};
use crate::config::{job_name, Config};

/// A job and when it runs.
#[derive(Clone)]
pub struct ScheduledJob {
    pub job: Arc<dyn Job>,
    pub schedule: Schedule,
}

impl ScheduledJob {
    pub fn name(&self) -> &'static str {
        self.job.name()
    }
}

/// The jobs of one process (`AppState::jobs`).
pub struct Jobs {
    entries: Vec<ScheduledJob>,
    replica: String,
    lease: Duration,
    enabled: bool,
    stopping: AtomicBool,
    in_flight: Arc<InFlight>,
}

#[derive(Default)]
struct InFlight {
    count: AtomicUsize,
}

/// Held while a run works; shutdown waits until none is held.
pub(super) struct RunGuard(Arc<InFlight>);

impl Drop for RunGuard {
    fn drop(&mut self) {
        self.0.count.fetch_sub(1, Ordering::AcqRel);
    }
}

impl Jobs {
    /// Resolves each job's schedule (`[jobs.schedules]` or its default) in the jobs'
    /// time zone. A schedule for a job that does not exist, two jobs with one name,
    /// or a time zone the scheduler does not know stop the hub at start.
    pub fn new(config: &Config, jobs: Vec<Arc<dyn Job>>) -> Result<Jobs, JobError> {
        let tz = config.jobs_time_zone();
        let mut entries: Vec<ScheduledJob> = Vec::with_capacity(jobs.len());
        for job in jobs {
            if entries.iter().any(|e| e.name() == job.name()) {
                return Err(JobError::Config(format!(
                    "two jobs are named {:?}",
                    job.name()
                )));
            }
            let expr = config
                .jobs
                .schedule_of(job.name())
                .unwrap_or(job.default_schedule());
            let schedule = Schedule::new(expr, &tz).map_err(|e| {
                JobError::Config(format!("the schedule of the job {}: {e}", job.name()))
            })?;
            entries.push(ScheduledJob { job, schedule });
        }
        for key in config.jobs.schedules.keys() {
            let name = job_name(key);
            if !entries.iter().any(|e| e.name() == name) {
                let known: Vec<&str> = entries.iter().map(|e| e.name()).collect();
                return Err(JobError::Config(format!(
                    "jobs.schedules.{key}: there is no job named {name:?}; the jobs are {}",
                    known.join(", ")
                )));
            }
        }
        Ok(Jobs {
            entries,
            replica: replica_id(),
            lease: Duration::from_secs(u64::try_from(config.jobs.lease_seconds).unwrap_or(60)),
            enabled: config.jobs.enabled,
            stopping: AtomicBool::new(false),
            in_flight: Arc::default(),
        })
    }

    pub fn entries(&self) -> &[ScheduledJob] {
        &self.entries
    }

    pub fn find(&self, name: &str) -> Option<&ScheduledJob> {
        self.entries.iter().find(|e| e.name() == name)
    }

    /// This process, as runs record it: `host:pid:random`.
    pub fn replica(&self) -> &str {
        &self.replica
    }

    pub fn lease(&self) -> Duration {
        self.lease
    }

    /// Whether this process's scheduler runs the jobs (`[jobs] enabled`).
    pub fn enabled(&self) -> bool {
        self.enabled
    }

    pub(super) fn stopping(&self) -> bool {
        self.stopping.load(Ordering::Acquire)
    }

    /// No new run starts after this.
    pub(super) fn stop(&self) {
        self.stopping.store(true, Ordering::Release);
    }

    pub(super) fn enter(&self) -> RunGuard {
        self.in_flight.count.fetch_add(1, Ordering::AcqRel);
        RunGuard(self.in_flight.clone())
    }

    /// Waits until no run is in flight, at most `grace`; whether none is.
    pub(super) async fn wait_idle(&self, grace: Duration) -> bool {
        let wait = async {
            while self.in_flight.count.load(Ordering::Acquire) > 0 {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        };
        tokio::time::timeout(grace, wait).await.is_ok()
    }
}

/// The host's name, the process id and a random part (two processes in one test, or
/// a restarted process with a reused pid, are told apart).
fn replica_id() -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|h| h.trim().to_string())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "hub".into());
    let random = uuid::Uuid::new_v4().simple().to_string();
    format!("{host}:{}:{}", std::process::id(), &random[..8])
}

/// Every job with its schedule, next slot and latest run (`GET /api/v1/jobs`,
/// `hms-ach jobs list`).
pub async fn list_jobs(app: &crate::AppState) -> Result<Vec<super::model::JobView>, JobError> {
    let now = app.clock().now();
    let jobs = app.jobs();
    let mut views = Vec::with_capacity(jobs.entries().len());
    for e in jobs.entries() {
        views.push(super::model::JobView {
            name: e.name().to_string(),
            description: e.job.description().to_string(),
            schedule: e.schedule.expr().to_string(),
            time_zone: e.schedule.time_zone().to_string(),
            enabled: jobs.enabled(),
            next_run: e.schedule.next_after(now),
            last_run: super::repo::last_run(app.store(), e.name()).await?,
        });
    }
    Ok(views)
}
