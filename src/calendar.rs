//! Calendar dates where the district is.
//!
//! A training "due on 1 March" or a licence "valid through 31 January" is a date
//! on the district's wall calendar (`[district] time_zone`), not in UTC: at
//! 19:00 in Chicago it is already tomorrow in UTC. These helpers turn an instant
//! into that date, a date back into the instants it covers, and do the month and
//! year arithmetic that validity periods need.
//!
//! Dates are [`jiff::civil::Date`]; time zones are [`jiff::tz::TimeZone`], from
//! the tz database bundled into the binary (Cargo.toml says why), so a container
//! without `/usr/share/zoneinfo` gives the same answers as any other replica.

use crate::clock::Timestamp;
use jiff::civil::Date;
use jiff::tz::TimeZone;
use jiff::ToSpan;

/// Why a date could not be computed: only at the ends of the calendar
/// (years -9999..=9999), which no validity period or due date reaches.
#[derive(Debug, thiserror::Error)]
#[error("date out of range: {0}")]
pub struct CalendarError(String);

impl From<jiff::Error> for CalendarError {
    fn from(e: jiff::Error) -> Self {
        CalendarError(e.to_string())
    }
}

/// The calendar date at instant `at` in `tz`.
///
/// An instant outside jiff's range (beyond year ±9999) is clamped to the
/// nearest end, so this never fails; no stored time comes near those years.
pub fn date_at(at: Timestamp, tz: &TimeZone) -> Date {
    let instant = at.to_jiff().unwrap_or(if at.as_millis() < 0 {
        jiff::Timestamp::MIN
    } else {
        jiff::Timestamp::MAX
    });
    tz.to_datetime(instant).date()
}

/// The first instant of `date` in `tz` (local midnight, or the first instant
/// after a gap where a zone skips midnight).
pub fn start_of(date: Date, tz: &TimeZone) -> Result<Timestamp, CalendarError> {
    let zoned = date.to_zoned_datetime(tz.clone())?;
    Ok(Timestamp::from_jiff(zoned.timestamp()))
}

/// The first instant after `date` ends in `tz`: something "valid through"
/// `date` is valid while `now < end_of(date)`. A day is 23 or 25 hours long on
/// the days the clocks change, which is why this is not `start_of + 24h`.
pub fn end_of(date: Date, tz: &TimeZone) -> Result<Timestamp, CalendarError> {
    start_of(date.tomorrow()?, tz)
}

/// `date` plus `months` calendar months (negative: earlier). A day that the
/// target month does not have is clamped to its last day: 31 January + 1 month
/// is 28 February (29 in a leap year), never 3 March.
pub fn add_months(date: Date, months: i32) -> Result<Date, CalendarError> {
    Ok(date.checked_add(months.months())?)
}

/// `date` plus `years` (negative: earlier); 29 February becomes 28 February in
/// a year that has none.
pub fn add_years(date: Date, years: i16) -> Result<Date, CalendarError> {
    Ok(date.checked_add(years.years())?)
}

/// `date` plus `days` (negative: earlier).
pub fn add_days(date: Date, days: i32) -> Result<Date, CalendarError> {
    Ok(date.checked_add(days.days())?)
}

/// The last day a credential obtained on `from` is valid when it lasts `months`
/// months: the day before the same date `months` later (a 12-month training done
/// on 15 March 2026 is valid through 14 March 2027). With clamping, a 1-month
/// period from 31 January ends on 27 February (28 in a leap year): the day
/// before 28 (29) February.
pub fn valid_through_months(from: Date, months: i32) -> Result<Date, CalendarError> {
    Ok(add_months(from, months)?.yesterday()?)
}

/// The last day of the month `date` is in: licences often run "through the end
/// of the month of issue".
pub fn end_of_month(date: Date) -> Date {
    date.last_of_month()
}

#[cfg(test)]
mod tests {
    use super::*;
    use jiff::civil::date;

    fn at(text: &str) -> Timestamp {
        Timestamp::parse_rfc3339(text).unwrap()
    }

    fn chicago() -> TimeZone {
        TimeZone::get("America/Chicago").unwrap()
    }

    #[test]
    fn a_chicago_day_begins_at_six_utc_in_winter() {
        let tz = chicago();
        // 2026-01-15: CST (UTC-6).
        assert_eq!(date_at(at("2026-01-15T05:59:00Z"), &tz), date(2026, 1, 14));
        assert_eq!(date_at(at("2026-01-15T06:00:00Z"), &tz), date(2026, 1, 15));
        assert_eq!(
            date_at(at("2026-01-15T05:59:00Z"), &TimeZone::UTC),
            date(2026, 1, 15)
        );
    }

    #[test]
    fn dates_around_the_spring_change_in_chicago() {
        let tz = chicago();
        // 2026-03-08 begins in CST (06:00Z); at 02:00 local the clocks jump to
        // 03:00 CDT, so 2026-03-09 begins at 05:00Z.
        assert_eq!(date_at(at("2026-03-08T05:59:00Z"), &tz), date(2026, 3, 7));
        assert_eq!(date_at(at("2026-03-08T06:00:00Z"), &tz), date(2026, 3, 8));
        assert_eq!(date_at(at("2026-03-09T04:59:00Z"), &tz), date(2026, 3, 8));
        assert_eq!(date_at(at("2026-03-09T05:00:00Z"), &tz), date(2026, 3, 9));
        let start = start_of(date(2026, 3, 8), &tz).unwrap();
        let end = end_of(date(2026, 3, 8), &tz).unwrap();
        assert_eq!(start, at("2026-03-08T06:00:00Z"));
        assert_eq!(end, at("2026-03-09T05:00:00Z"));
        assert_eq!(end.saturating_sub(start).as_secs(), 23 * 3600);
    }

    #[test]
    fn dates_around_the_autumn_change_in_chicago() {
        let tz = chicago();
        // 2026-11-01 begins in CDT (05:00Z); at 02:00 local the clocks fall back
        // to 01:00 CST, so 2026-11-02 begins at 06:00Z.
        assert_eq!(date_at(at("2026-11-01T04:59:00Z"), &tz), date(2026, 10, 31));
        assert_eq!(date_at(at("2026-11-01T05:00:00Z"), &tz), date(2026, 11, 1));
        assert_eq!(date_at(at("2026-11-02T05:59:00Z"), &tz), date(2026, 11, 1));
        assert_eq!(date_at(at("2026-11-02T06:00:00Z"), &tz), date(2026, 11, 2));
        let start = start_of(date(2026, 11, 1), &tz).unwrap();
        let end = end_of(date(2026, 11, 1), &tz).unwrap();
        assert_eq!(start, at("2026-11-01T05:00:00Z"));
        assert_eq!(end, at("2026-11-02T06:00:00Z"));
        assert_eq!(end.saturating_sub(start).as_secs(), 25 * 3600);
    }

    #[test]
    fn instants_beyond_the_calendar_clamp_instead_of_failing() {
        assert_eq!(
            date_at(Timestamp::from_millis(i64::MAX), &TimeZone::UTC).year(),
            9999
        );
        assert_eq!(
            date_at(Timestamp::from_millis(i64::MIN), &TimeZone::UTC).year(),
            -9999
        );
    }

    #[test]
    fn add_months_clamps_to_the_end_of_a_shorter_month() {
        assert_eq!(add_months(date(2026, 1, 31), 1).unwrap(), date(2026, 2, 28));
        assert_eq!(add_months(date(2028, 1, 31), 1).unwrap(), date(2028, 2, 29));
        assert_eq!(add_months(date(2026, 3, 31), 1).unwrap(), date(2026, 4, 30));
        assert_eq!(
            add_months(date(2026, 3, 31), -1).unwrap(),
            date(2026, 2, 28)
        );
        assert_eq!(
            add_months(date(2026, 1, 15), 12).unwrap(),
            date(2027, 1, 15)
        );
        assert_eq!(
            add_months(date(2026, 11, 30), 3).unwrap(),
            date(2027, 2, 28)
        );
        assert!(add_months(date(9999, 12, 1), 1).is_err());
    }

    #[test]
    fn add_years_and_days() {
        assert_eq!(add_years(date(2028, 2, 29), 1).unwrap(), date(2029, 2, 28));
        assert_eq!(add_years(date(2028, 2, 29), 4).unwrap(), date(2032, 2, 29));
        assert_eq!(add_days(date(2026, 2, 28), 1).unwrap(), date(2026, 3, 1));
        assert_eq!(add_days(date(2026, 3, 1), -1).unwrap(), date(2026, 2, 28));
    }

    #[test]
    fn valid_through_is_the_day_before_the_anniversary() {
        assert_eq!(
            valid_through_months(date(2026, 3, 15), 12).unwrap(),
            date(2027, 3, 14)
        );
        assert_eq!(
            valid_through_months(date(2026, 1, 31), 1).unwrap(),
            date(2026, 2, 27)
        );
        assert_eq!(
            valid_through_months(date(2028, 1, 31), 1).unwrap(),
            date(2028, 2, 28)
        );
        assert_eq!(
            valid_through_months(date(2026, 3, 1), 1).unwrap(),
            date(2026, 3, 31)
        );
    }

    #[test]
    fn valid_through_a_date_ends_at_the_next_local_midnight() {
        let tz = chicago();
        let end = end_of(date(2026, 11, 1), &tz).unwrap();
        // Still valid at 23:59 Chicago time on the last day; not at midnight.
        assert!(at("2026-11-02T05:59:00Z") < end);
        assert!(at("2026-11-02T06:00:00Z") >= end);
    }

    #[test]
    fn end_of_month_knows_leap_years() {
        assert_eq!(end_of_month(date(2026, 2, 10)), date(2026, 2, 28));
        assert_eq!(end_of_month(date(2028, 2, 10)), date(2028, 2, 29));
        assert_eq!(end_of_month(date(2026, 12, 31)), date(2026, 12, 31));
    }
}
