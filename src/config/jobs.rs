//! `[jobs]`: when the scheduled jobs run (see `jobs/`).
//!
//! ```toml
//! [jobs]
//! enabled = true                 # false: this replica runs no scheduled job
//! time_zone = "America/Chicago"  # default: [district] time_zone
//! lease_seconds = 60             # a run that stops renewing this long is failed
//! history_days = 30              # runs older than this are deleted (job-history-retention)
//!
//! [jobs.schedules]               # cron with seconds: sec min hour day month weekday
//! signin-sweep = "0 * * * * *"
//! metadata-refresh = "30 */5 * * * *"
//! ```
//!
//! In the environment a job's name is written with underscores:
//! `HMS_ACH__JOBS__SCHEDULES__SIGNIN_SWEEP="*/10 * * * * *"`. The expressions are
//! checked here; that each name is a job the hub has is checked when the hub starts
//! (`jobs::Jobs::new`), where the jobs are known.

use serde::Deserialize;
use std::collections::BTreeMap;

use super::ConfigError;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct JobsConfig {
    /// Whether this process runs scheduled jobs at all (`hms-ach jobs run` and the
    /// API's "run now" still work).
    pub enabled: bool,
    /// IANA name; `None`: the district's time zone.
    pub time_zone: Option<String>,
    /// How long a run may go without renewing its lease before another replica
    /// takes it for dead (renewed every third of it while the job works).
    pub lease_seconds: i64,
    /// How long the run history is kept (the `job-history-retention` job).
    pub history_days: i64,
    /// Per-job cron expressions replacing the job's default schedule.
    pub schedules: BTreeMap<String, String>,
}

impl Default for JobsConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            time_zone: None,
            lease_seconds: 60,
            history_days: 30,
            schedules: BTreeMap::new(),
        }
    }
}

/// Parses a six-field cron expression (seconds first) the way tokio-cron-scheduler
/// reads it: `dom_and_dow` means a day must match both the day-of-month and the
/// day-of-week field when both are given.
pub fn parse_cron(expr: &str) -> Result<croner::Cron, String> {
    croner::parser::CronParser::builder()
        .seconds(croner::parser::Seconds::Required)
        .dom_and_dow(true)
        .build()
        .parse(expr.trim())
        .map_err(|e| {
            format!(
                "{expr:?} is not a cron expression ({e}); write six fields, second minute \
                 hour day-of-month month day-of-week, e.g. \"0 */5 * * * *\" for every five minutes"
            )
        })
}

/// A job name as configured (`signin_sweep` from the environment) in its canonical
/// form (`signin-sweep`).
pub fn job_name(key: &str) -> String {
    key.trim().to_ascii_lowercase().replace('_', "-")
}

impl JobsConfig {
    /// The schedule configured for `job`, if any.
    pub fn schedule_of(&self, job: &str) -> Option<&str> {
        self.schedules
            .iter()
            .find(|(k, _)| job_name(k) == job)
            .map(|(_, v)| v.as_str())
    }

    pub(super) fn validate(&self) -> Result<(), ConfigError> {
        let bad = |m: String| Err(ConfigError::Invalid(m));
        if !(5..=86_400).contains(&self.lease_seconds) {
            return bad(format!(
                "jobs.lease_seconds = {} must be between 5 and 86400",
                self.lease_seconds
            ));
        }
        if !(1..=3650).contains(&self.history_days) {
            return bad(format!(
                "jobs.history_days = {} must be between 1 and 3650",
                self.history_days
            ));
        }
        if let Some(tz) = &self.time_zone {
            if jiff::tz::TimeZone::get(tz).is_err() || tz.parse::<chrono_tz::Tz>().is_err() {
                return bad(format!(
                    "jobs.time_zone = {tz:?} is not a time zone name; write an IANA name such \
                     as \"America/Chicago\" or \"UTC\", or leave it out to use district.time_zone"
                ));
            }
        }
        let mut seen = BTreeMap::new();
        for (key, expr) in &self.schedules {
            if let Some(other) = seen.insert(job_name(key), key) {
                return bad(format!(
                    "jobs.schedules names the job {:?} twice ({other:?} and {key:?})",
                    job_name(key)
                ));
            }
            if let Err(why) = parse_cron(expr) {
                return bad(format!("jobs.schedules.{key} = {why}"));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use crate::config::load_env as load;

    #[test]
    fn defaults_run_jobs_in_the_district_time_zone() {
        let c = load(&[("HMS_ACH__DISTRICT__TIME_ZONE", "America/Chicago")]).unwrap();
        assert!(c.jobs.enabled);
        assert_eq!(c.jobs_time_zone(), "America/Chicago");
        let c = load(&[
            ("HMS_ACH__DISTRICT__TIME_ZONE", "America/Chicago"),
            ("HMS_ACH__JOBS__TIME_ZONE", "Europe/Paris"),
        ])
        .unwrap();
        assert_eq!(c.jobs_time_zone(), "Europe/Paris");
    }

    #[test]
    fn a_schedule_from_the_environment_is_found_by_the_jobs_name() {
        let c = load(&[("HMS_ACH__JOBS__SCHEDULES__SIGNIN_SWEEP", "*/10 * * * * *")]).unwrap();
        assert_eq!(c.jobs.schedule_of("signin-sweep"), Some("*/10 * * * * *"));
        assert_eq!(c.jobs.schedule_of("metadata-refresh"), None);
    }

    #[test]
    fn a_bad_cron_expression_or_time_zone_is_refused_with_what_to_write() {
        let e = load(&[("HMS_ACH__JOBS__SCHEDULES__SIGNIN_SWEEP", "every minute")]).unwrap_err();
        assert!(e.contains("jobs.schedules.signin_sweep"), "{e}");
        assert!(e.contains("six fields"), "{e}");
        // Five fields (no seconds) are refused too: the scheduler needs seconds.
        let e = load(&[("HMS_ACH__JOBS__SCHEDULES__SIGNIN_SWEEP", "*/5 * * * *")]).unwrap_err();
        assert!(e.contains("six fields"), "{e}");
        let e = load(&[("HMS_ACH__JOBS__SCHEDULES__SIGNIN_SWEEP", "0 0 25 * * *")]).unwrap_err();
        assert!(e.contains("not a cron expression"), "{e}");
        let e = load(&[("HMS_ACH__JOBS__TIME_ZONE", "Mars/Olympus")]).unwrap_err();
        assert!(e.contains("jobs.time_zone"), "{e}");
        let e = load(&[("HMS_ACH__JOBS__LEASE_SECONDS", "0")]).unwrap_err();
        assert!(e.contains("jobs.lease_seconds"), "{e}");
        let e = load(&[("HMS_ACH__JOBS__COLOR", "red")]).unwrap_err();
        assert!(e.contains("HMS_ACH__JOBS__COLOR"), "{e}");
    }
}
