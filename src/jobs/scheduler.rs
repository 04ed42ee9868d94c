//! Waking the jobs up with tokio-cron-scheduler.
//!
//! Each job is added with its cron expression and time zone, and its wake-up calls
//! [`super::tick`], which works out the slot from the hub's clock: the scheduler
//! gives no slot to the job it runs (only a job id), and it keeps a time zone as the
//! UTC offset it had when the job was added, so across a daylight-saving change its
//! wake-ups can be an hour off until the next start. One more scheduler job, every
//! minute at second 0, wakes every job up as a safety net: a slot a wake-up missed
//! (the offset above, a wake-up that came while the previous run still worked) is
//! run then, once.

use std::time::Duration;

use super::runs::{fail_unfinished, log_tick};
use super::{tick, tick_all, JobError};
use crate::AppState;

/// How long shutdown waits for runs in progress before recording them as failed.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);

/// The running scheduler of one process (`hms-ach serve`).
pub struct Scheduler {
    inner: Option<tokio_cron_scheduler::JobScheduler>,
    app: AppState,
}

impl Scheduler {
    /// Adds every job and starts waking them; then wakes each once, so a slot
    /// missed while the hub was down runs now (once). With `[jobs] enabled =
    /// false` nothing is scheduled.
    pub async fn start(app: &AppState) -> Result<Scheduler, JobError> {
        if !app.jobs().enabled() {
            tracing::info!("scheduled jobs are off on this replica ([jobs] enabled = false)");
            return Ok(Scheduler {
                inner: None,
                app: app.clone(),
            });
        }
        let sched = tokio_cron_scheduler::JobScheduler::new().await?;
        for (index, entry) in app.jobs().entries().iter().enumerate() {
            let for_job = app.clone();
            let wake = tokio_cron_scheduler::Job::new_async_tz(
                entry.schedule.expr(),
                entry.schedule.tz(),
                move |_id, _scheduler| {
                    let app = for_job.clone();
                    Box::pin(async move {
                        if let Some(entry) = app.jobs().entries().get(index) {
                            log_tick(entry, tick(&app, entry).await);
                        }
                    })
                },
            )?;
            sched.add(wake).await?;
            tracing::info!(
                job = entry.name(),
                schedule = entry.schedule.expr(),
                time_zone = entry.schedule.time_zone(),
                "job scheduled"
            );
        }
        let for_all = app.clone();
        let safety_net =
            tokio_cron_scheduler::Job::new_async("0 * * * * *", move |_id, _scheduler| {
                let app = for_all.clone();
                Box::pin(async move { tick_all(&app).await })
            })?;
        sched.add(safety_net).await?;
        sched.start().await?;
        let first = app.clone();
        tokio::spawn(async move { tick_all(&first).await });
        Ok(Scheduler {
            inner: Some(sched),
            app: app.clone(),
        })
    }

    /// Stops waking jobs, waits (a bounded time) for runs in progress, and records
    /// those still working as failed. Call before the store closes.
    pub async fn shutdown(mut self) {
        self.app.jobs().stop();
        if let Some(mut sched) = self.inner.take() {
            if let Err(e) = sched.shutdown().await {
                tracing::error!(error = %e, "stopping the job scheduler failed");
            }
        }
        if !self.app.jobs().wait_idle(SHUTDOWN_GRACE).await {
            tracing::warn!(
                grace_seconds = SHUTDOWN_GRACE.as_secs(),
                "runs still working at shutdown"
            );
        }
        fail_unfinished(&self.app).await;
    }
}
