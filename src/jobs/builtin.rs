//! The hub's own jobs. Another capability adds one by implementing [`Job`] and
//! listing it in [`builtin`].

use std::sync::Arc;

use super::{Job, JobContext, JobOutcome};

/// Every job the hub runs, in the order `GET /api/v1/jobs` lists them.
pub fn builtin() -> Vec<Arc<dyn Job>> {
    vec![
        Arc::new(SigninSweep),
        Arc::new(crate::outbox::RetentionJob),
        Arc::new(MailDigest),
        Arc::new(HistoryRetention),
    ]
}

/// Deletes expired sign-in records of every kind (`oidc::sweep_expired`): the
/// background loop did it every minute on every replica; once a minute across
/// replicas is enough.
struct SigninSweep;

#[async_trait::async_trait]
impl Job for SigninSweep {
    fn name(&self) -> &'static str {
        "signin-sweep"
    }

    fn description(&self) -> &'static str {
        "Deletes expired sign-in records: pending requests, codes, refresh tokens, grants, sessions, SAML and upstream requests, MFA challenges, sign-in counters"
    }

    fn default_schedule(&self) -> &'static str {
        "0 * * * * *"
    }

    async fn run(&self, ctx: &JobContext) -> Result<JobOutcome, String> {
        let removed = crate::oidc::sweep_expired(&ctx.app)
            .await
            .map_err(|e| e.description)?;
        Ok(JobOutcome {
            items: i64::try_from(removed).unwrap_or(i64::MAX),
            detail: Some(format!("{removed} expired records deleted")),
        })
    }
}

/// Deletes finished runs older than `[jobs] history_days`: an every-minute job
/// leaves half a million rows a year.
struct HistoryRetention;

#[async_trait::async_trait]
impl Job for HistoryRetention {
    fn name(&self) -> &'static str {
        "job-history-retention"
    }

    fn description(&self) -> &'static str {
        "Deletes the history of job runs older than jobs.history_days"
    }

    fn default_schedule(&self) -> &'static str {
        "0 15 3 * * *"
    }

    async fn run(&self, ctx: &JobContext) -> Result<JobOutcome, String> {
        let days = ctx.app.config().jobs.history_days;
        let before = ctx.now.plus_secs(-days.saturating_mul(86_400));
        let removed = super::repo::delete_finished_before(ctx.app.store(), before)
            .await
            .map_err(|e| format!("deleting old runs failed: {e}"))?;
        Ok(JobOutcome {
            items: i64::try_from(removed).unwrap_or(i64::MAX),
            detail: Some(format!("{removed} runs older than {days} days deleted")),
        })
    }
}

/// The admins' daily digest (`[mail] admin_digest_to`): failed emails, outbox dead
/// letters and disabled subscribers of the last day, once per district day.
struct MailDigest;

#[async_trait::async_trait]
impl Job for MailDigest {
    fn name(&self) -> &'static str {
        "mail-digest"
    }

    fn description(&self) -> &'static str {
        "Emails the admins what failed in the last day: emails not delivered, outbox dead letters, disabled subscribers"
    }

    fn default_schedule(&self) -> &'static str {
        "0 0 7 * * *"
    }

    async fn run(&self, ctx: &JobContext) -> Result<JobOutcome, String> {
        let since = ctx.now.minus(std::time::Duration::from_secs(86_400));
        let other = crate::outbox::failures_since(ctx.app.store(), since)
            .await
            .map_err(|e| format!("reading the outbox failures failed: {e}"))?;
        let queued = crate::mail::digest(&ctx.app, ctx.now, other)
            .await
            .map_err(|e| format!("queueing the digest failed: {e}"))?;
        Ok(JobOutcome {
            items: i64::try_from(queued).unwrap_or(i64::MAX),
            detail: Some(format!("{queued} digest email(s) queued")),
        })
    }
}
