//! A job's schedule: its cron expression read in its time zone, and the slots it
//! gives. The slot — the scheduled time a run belongs to — is computed here from
//! the hub's clock, never taken from when a wake-up happened to arrive, so every
//! replica names the same slot for the same moment.

use chrono::TimeZone as _;

use super::JobError;
use crate::clock::Timestamp;

/// How many missed slots are counted one by one before "at least N" is reported
/// (an every-second job after a week's downtime).
pub const MISSED_COUNT_CAP: u64 = 100_000;

#[derive(Clone, Debug)]
pub struct Schedule {
    expr: String,
    cron: croner::Cron,
    tz: chrono_tz::Tz,
}

impl Schedule {
    /// `expr` as `config::parse_cron` reads it, in the IANA zone `tz`.
    pub fn new(expr: &str, tz: &str) -> Result<Schedule, JobError> {
        let cron = crate::config::parse_cron(expr).map_err(JobError::Config)?;
        let tz = tz.parse::<chrono_tz::Tz>().map_err(|_| {
            JobError::Config(format!(
                "the time zone {tz:?} is unknown to the scheduler; set jobs.time_zone to an IANA name such as \"America/Chicago\""
            ))
        })?;
        Ok(Schedule {
            expr: expr.trim().to_string(),
            cron,
            tz,
        })
    }

    pub fn expr(&self) -> &str {
        &self.expr
    }

    pub fn tz(&self) -> chrono_tz::Tz {
        self.tz
    }

    pub fn time_zone(&self) -> &'static str {
        self.tz.name()
    }

    fn at(&self, t: Timestamp) -> Option<chrono::DateTime<chrono_tz::Tz>> {
        // Cron has whole seconds: the latest slot at or before t is the latest at or
        // before t's second.
        let secs = t.as_secs();
        self.tz.timestamp_opt(secs, 0).single()
    }

    /// The latest slot at or before `now`: the one a wake-up at `now` runs.
    pub fn due(&self, now: Timestamp) -> Option<Timestamp> {
        let at = self.at(now)?;
        self.cron
            .find_previous_occurrence(&at, true)
            .ok()
            .map(|d| Timestamp::from_millis(d.timestamp_millis()))
    }

    /// The first slot after `t`.
    pub fn next_after(&self, t: Timestamp) -> Option<Timestamp> {
        let at = self.at(t)?;
        self.cron
            .find_next_occurrence(&at, false)
            .ok()
            .map(|d| Timestamp::from_millis(d.timestamp_millis()))
    }

    /// How many slots lie strictly between `last` and `due` (the ones a downtime
    /// missed), counting at most [`MISSED_COUNT_CAP`].
    pub fn missed_between(&self, last: Timestamp, due: Timestamp) -> u64 {
        let Some(from) = self.at(last) else { return 0 };
        let due_ms = due.as_millis();
        self.cron
            .iter_after(from)
            .take_while(|d| d.timestamp_millis() < due_ms)
            .take(usize::try_from(MISSED_COUNT_CAP).unwrap_or(usize::MAX))
            .count() as u64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(text: &str) -> Timestamp {
        Timestamp::parse_rfc3339(text).unwrap()
    }

    #[test]
    fn the_due_slot_is_the_latest_scheduled_time_at_or_before_now() {
        let s = Schedule::new("0 */5 * * * *", "UTC").unwrap();
        assert_eq!(
            s.due(at("2026-03-02T10:07:12.345Z")),
            Some(at("2026-03-02T10:05:00Z"))
        );
        assert_eq!(
            s.due(at("2026-03-02T10:05:00Z")),
            Some(at("2026-03-02T10:05:00Z"))
        );
        assert_eq!(
            s.due(at("2026-03-02T10:05:00.999Z")),
            Some(at("2026-03-02T10:05:00Z"))
        );
        assert_eq!(
            s.next_after(at("2026-03-02T10:05:00Z")),
            Some(at("2026-03-02T10:10:00Z"))
        );
        let every = Schedule::new("* * * * * *", "UTC").unwrap();
        assert_eq!(
            every.due(at("2026-03-02T10:07:12.345Z")),
            Some(at("2026-03-02T10:07:12Z"))
        );
    }

    #[test]
    fn missed_slots_are_counted_between_the_last_taken_and_the_due_one() {
        let s = Schedule::new("0 * * * * *", "UTC").unwrap();
        let last = at("2026-03-02T10:00:00Z");
        let due = s.due(at("2026-03-02T10:10:30Z")).unwrap();
        assert_eq!(due, at("2026-03-02T10:10:00Z"));
        assert_eq!(s.missed_between(last, due), 9);
        assert_eq!(s.missed_between(due, due), 0);
        let every = Schedule::new("* * * * * *", "UTC").unwrap();
        let week = at("2026-03-09T10:00:00Z");
        assert_eq!(every.missed_between(last, week), MISSED_COUNT_CAP);
    }

    /// A daily 02:30 job in Chicago: on the day the clocks spring forward there is no
    /// 02:30, and the slot is the first minute after the gap (03:00 CDT); the day
    /// after it is 02:30 CDT (07:30 UTC), not 02:30 CST.
    #[test]
    fn slots_follow_the_time_zone_across_daylight_saving() {
        let s = Schedule::new("0 30 2 * * *", "America/Chicago").unwrap();
        assert_eq!(s.time_zone(), "America/Chicago");
        // 2026-03-07 02:30 CST = 08:30 UTC.
        assert_eq!(
            s.due(at("2026-03-07T12:00:00Z")),
            Some(at("2026-03-07T08:30:00Z"))
        );
        let next = s.next_after(at("2026-03-07T08:30:00Z")).unwrap();
        assert_eq!(next, at("2026-03-08T08:00:00Z"), "03:00 CDT, after the gap");
        assert_eq!(s.next_after(next), Some(at("2026-03-09T07:30:00Z")));
    }

    #[test]
    fn an_unknown_time_zone_or_expression_is_a_config_error() {
        assert!(matches!(
            Schedule::new("0 * * * * *", "Mars/Olympus"),
            Err(JobError::Config(_))
        ));
        assert!(matches!(
            Schedule::new("soon", "UTC"),
            Err(JobError::Config(_))
        ));
    }
}
