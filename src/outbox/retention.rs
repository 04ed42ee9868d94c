//! The `outbox-retention` job: deletes events past `[outbox] retention` that every
//! active subscriber already has (`admin::sweep`), once an hour across replicas.

use crate::jobs::{Job, JobContext, JobOutcome};

pub struct RetentionJob;

#[async_trait::async_trait]
impl Job for RetentionJob {
    fn name(&self) -> &'static str {
        "outbox-retention"
    }

    fn description(&self) -> &'static str {
        "Deletes outbox events older than outbox.retention that every active subscriber has received"
    }

    fn default_schedule(&self) -> &'static str {
        "0 40 * * * *"
    }

    async fn run(&self, ctx: &JobContext) -> Result<JobOutcome, String> {
        let removed = super::sweep(&ctx.app, ctx.now)
            .await
            .map_err(|e| format!("deleting old events failed: {e}"))?;
        Ok(JobOutcome {
            items: i64::try_from(removed).unwrap_or(i64::MAX),
            detail: Some(format!("{removed} events past retention deleted")),
        })
    }
}
