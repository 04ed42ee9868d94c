//! Time comes from a [`Clock`] so that expiry (tokens, role grants, reminders)
//! can be tested without sleeping.
//!
//! An instant is a [`Timestamp`] (Unix milliseconds, the store's one time
//! representation); a calendar date in the district's time zone comes from
//! [`Clock::today`] and is computed with [`crate::calendar`].
//!
//! This is the only file that reads the wall clock: `clippy.toml` disallows
//! `OffsetDateTime::now_utc`, `SystemTime::now`, `chrono::Utc::now` and their
//! kin everywhere else.

use std::fmt;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

/// Milliseconds since the Unix epoch: the integer a [`Timestamp`] holds, as the
/// store keeps it.
pub type Millis = i64;

/// An instant, as milliseconds since the Unix epoch (UTC).
///
/// It is what the store keeps (an integer column; it binds and decodes as
/// `i64`), and what the API shows as RFC 3339 text (`Display`,
/// [`Timestamp::to_rfc3339`]). Serde writes it as the same integer; a field that
/// the API shows as text says `#[serde(with = "crate::clock::rfc3339")]`.
#[derive(
    Clone,
    Copy,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    Debug,
    serde::Serialize,
    serde::Deserialize,
    sqlx::Type,
)]
#[serde(transparent)]
#[sqlx(transparent)]
pub struct Timestamp(Millis);

impl Timestamp {
    pub const UNIX_EPOCH: Timestamp = Timestamp(0);

    pub const fn from_millis(ms: Millis) -> Self {
        Self(ms)
    }

    pub const fn as_millis(self) -> Millis {
        self.0
    }

    /// Whole seconds since the epoch, rounded down (JWT `iat`/`exp`, RFC 7519 §2).
    pub const fn as_secs(self) -> i64 {
        self.0.div_euclid(1000)
    }

    /// This instant moved by `secs` seconds (negative: earlier). Saturates at the
    /// ends of `i64` rather than wrapping: a configured lifetime can never turn an
    /// expiry into a date in the past.
    pub const fn plus_secs(self, secs: i64) -> Self {
        Self(self.0.saturating_add(secs.saturating_mul(1000)))
    }

    /// This instant plus `d` (saturating; sub-millisecond parts are dropped).
    pub fn plus(self, d: Duration) -> Self {
        let ms = i64::try_from(d.as_millis()).unwrap_or(i64::MAX);
        Self(self.0.saturating_add(ms))
    }

    /// This instant minus `d` (saturating; sub-millisecond parts are dropped).
    pub fn minus(self, d: Duration) -> Self {
        let ms = i64::try_from(d.as_millis()).unwrap_or(i64::MAX);
        Self(self.0.saturating_sub(ms))
    }

    /// How long after `earlier` this instant is; zero when `earlier` is later
    /// (as `Instant::saturating_duration_since`), so an age is never negative.
    pub fn saturating_sub(self, earlier: Timestamp) -> Duration {
        let ms = self.0.saturating_sub(earlier.0);
        Duration::from_millis(u64::try_from(ms).unwrap_or(0))
    }

    /// RFC 3339 text in UTC with millisecond precision (`2026-09-01T08:30:00.25Z`):
    /// the form every API response uses.
    pub fn to_rfc3339(self) -> String {
        format_rfc3339(self.0)
    }

    /// Parses RFC 3339 text (`2026-09-01T00:00:00Z`, any offset).
    pub fn parse_rfc3339(text: &str) -> Option<Self> {
        parse_rfc3339(text).map(Self)
    }

    /// The same instant as jiff's type, for calendar arithmetic in a time zone.
    /// `None` outside jiff's range (years -9999..=9999).
    pub fn to_jiff(self) -> Option<jiff::Timestamp> {
        jiff::Timestamp::from_millisecond(self.0).ok()
    }

    /// The instant a jiff timestamp stands for (truncated to milliseconds).
    pub fn from_jiff(t: jiff::Timestamp) -> Self {
        Self(t.as_millisecond())
    }
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_rfc3339())
    }
}

/// Serde as RFC 3339 text, for fields the API already shows as text:
/// `#[serde(with = "crate::clock::rfc3339")]`.
pub mod rfc3339 {
    use super::Timestamp;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(t: &Timestamp, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&t.to_rfc3339())
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Timestamp, D::Error> {
        let text = String::deserialize(d)?;
        Timestamp::parse_rfc3339(&text).ok_or_else(|| {
            serde::de::Error::custom(format!(
                "{text:?} is not an RFC 3339 date-time (e.g. 2026-09-01T00:00:00Z)"
            ))
        })
    }
}

pub trait Clock: Send + Sync + 'static {
    /// The store layer binds this integer; new code prefers [`Clock::now`].
    fn now_ms(&self) -> Millis;

    fn now(&self) -> Timestamp {
        Timestamp::from_millis(self.now_ms())
    }

    fn now_secs(&self) -> i64 {
        self.now().as_secs()
    }

    /// Today's calendar date in `tz` (the district's `[district] time_zone`):
    /// "due today" and "valid through" are dates where the district is, not in UTC.
    fn today(&self, tz: &jiff::tz::TimeZone) -> jiff::civil::Date {
        crate::calendar::date_at(self.now(), tz)
    }
}

#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    // The one place that reads the wall clock (clippy.toml disallows it
    // elsewhere): everything else asks a `Clock`, so tests can set the time.
    #[allow(clippy::disallowed_methods)]
    fn now_ms(&self) -> Millis {
        let now = time::OffsetDateTime::now_utc();
        (now.unix_timestamp_nanos() / 1_000_000) as i64
    }
}

/// A clock that only moves when told to; for tests and reproducible demos.
#[derive(Debug)]
pub struct ManualClock(AtomicI64);

impl ManualClock {
    pub fn new(start_ms: Millis) -> Self {
        Self(AtomicI64::new(start_ms))
    }
    pub fn at(start: Timestamp) -> Self {
        Self::new(start.as_millis())
    }
    pub fn advance_secs(&self, secs: i64) {
        self.0.fetch_add(secs * 1000, Ordering::SeqCst);
    }
    pub fn set(&self, to: Timestamp) {
        self.0.store(to.as_millis(), Ordering::SeqCst);
    }
}

impl Clock for ManualClock {
    fn now_ms(&self) -> Millis {
        self.0.load(Ordering::SeqCst)
    }
}

/// RFC 3339 text for API output (UTC, millisecond precision).
pub fn format_rfc3339(ms: Millis) -> String {
    let nanos = i128::from(ms) * 1_000_000;
    time::OffsetDateTime::from_unix_timestamp_nanos(nanos)
        .ok()
        .and_then(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_else(|| ms.to_string())
}

/// Parses RFC 3339 text (`2026-09-01T00:00:00Z`) into milliseconds.
pub fn parse_rfc3339(text: &str) -> Option<Millis> {
    let t =
        time::OffsetDateTime::parse(text, &time::format_description::well_known::Rfc3339).ok()?;
    Some((t.unix_timestamp_nanos() / 1_000_000) as i64)
}

/// Parses a calendar date (`2026-09-01`) as midnight UTC, for affiliation begin/end dates.
pub fn parse_date(text: &str) -> Option<time::Date> {
    time::Date::parse(
        text,
        &time::macros::format_description!("[year]-[month]-[day]"),
    )
    .ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339_round_trips() {
        let ms = parse_rfc3339("2026-09-01T08:30:00.250Z").unwrap();
        assert_eq!(format_rfc3339(ms), "2026-09-01T08:30:00.25Z");
        assert!(parse_rfc3339("yesterday").is_none());
    }

    #[test]
    fn manual_clock_moves_only_when_told() {
        let c = ManualClock::new(1_000);
        assert_eq!(c.now_secs(), 1);
        c.advance_secs(59);
        assert_eq!(c.now_secs(), 60);
        c.set(Timestamp::from_millis(5_000));
        assert_eq!(c.now(), Timestamp::from_millis(5_000));
    }

    #[test]
    fn timestamp_arithmetic_saturates_and_never_goes_negative() {
        let t = Timestamp::from_millis(10_000);
        assert_eq!(t.plus_secs(5).as_millis(), 15_000);
        assert_eq!(t.plus_secs(-5).as_millis(), 5_000);
        assert_eq!(t.plus(Duration::from_millis(1_500)).as_millis(), 11_500);
        assert_eq!(t.minus(Duration::from_secs(10)), Timestamp::UNIX_EPOCH);
        assert_eq!(
            t.saturating_sub(Timestamp::from_millis(4_000)),
            Duration::from_secs(6)
        );
        assert_eq!(
            Timestamp::from_millis(4_000).saturating_sub(t),
            Duration::ZERO
        );
        let far = Timestamp::from_millis(i64::MAX - 1);
        assert_eq!(far.plus_secs(1).as_millis(), i64::MAX);
        assert_eq!(far.plus(Duration::MAX).as_millis(), i64::MAX);
        assert_eq!(
            Timestamp::from_millis(i64::MIN)
                .minus(Duration::MAX)
                .as_millis(),
            i64::MIN
        );
        assert!(Timestamp::from_millis(1) < Timestamp::from_millis(2));
    }

    #[test]
    fn timestamp_seconds_round_down_before_the_epoch() {
        assert_eq!(Timestamp::from_millis(1_999).as_secs(), 1);
        assert_eq!(Timestamp::from_millis(-1).as_secs(), -1);
    }

    #[test]
    fn timestamp_text_is_the_apis_rfc3339() {
        let t = Timestamp::parse_rfc3339("2026-09-01T08:30:00.250Z").unwrap();
        assert_eq!(t.to_rfc3339(), "2026-09-01T08:30:00.25Z");
        assert_eq!(t.to_string(), t.to_rfc3339());
        assert_eq!(t.to_rfc3339(), format_rfc3339(t.as_millis()));
        // An offset is read, and written back in UTC.
        let chicago = Timestamp::parse_rfc3339("2026-03-08T00:00:00-06:00").unwrap();
        assert_eq!(chicago.to_rfc3339(), "2026-03-08T06:00:00Z");
        assert!(Timestamp::parse_rfc3339("2026-03-08").is_none());
    }

    #[test]
    fn timestamp_serde_is_the_integer_or_rfc3339_on_request() {
        let t = Timestamp::from_millis(1_788_251_400_000);
        assert_eq!(serde_json::to_string(&t).unwrap(), "1788251400000");
        assert_eq!(
            serde_json::from_str::<Timestamp>("1788251400000").unwrap(),
            t
        );

        #[derive(serde::Serialize, serde::Deserialize, PartialEq, Debug)]
        struct View {
            #[serde(with = "super::rfc3339")]
            at: Timestamp,
        }
        let text = serde_json::to_string(&View { at: t }).unwrap();
        assert_eq!(text, r#"{"at":"2026-09-01T08:30:00Z"}"#);
        assert_eq!(serde_json::from_str::<View>(&text).unwrap(), View { at: t });
        let err = serde_json::from_str::<View>(r#"{"at":"tomorrow"}"#).unwrap_err();
        assert!(err.to_string().contains("RFC 3339"), "{err}");
    }

    #[test]
    fn timestamp_converts_to_and_from_jiff() {
        let t = Timestamp::from_millis(1_788_251_400_250);
        let j = t.to_jiff().unwrap();
        assert_eq!(Timestamp::from_jiff(j), t);
        assert!(Timestamp::from_millis(i64::MAX).to_jiff().is_none());
    }

    #[test]
    fn today_is_the_date_in_the_given_zone() {
        let tz = jiff::tz::TimeZone::get("America/Chicago").unwrap();
        // 2026-01-15T05:30Z is still the 14th in Chicago (UTC-6).
        let c = ManualClock::at(Timestamp::parse_rfc3339("2026-01-15T05:30:00Z").unwrap());
        assert_eq!(c.today(&tz), jiff::civil::date(2026, 1, 14));
        assert_eq!(
            c.today(&jiff::tz::TimeZone::UTC),
            jiff::civil::date(2026, 1, 15)
        );
    }
}
