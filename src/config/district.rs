//! `[district]`: facts about the district that the hub works for.
//!
//! ```toml
//! [district]
//! time_zone = "America/Chicago"   # IANA name; default "UTC"
//! ```
//!
//! The time zone decides which calendar day it is for "due on", "valid through"
//! and reminders (see `calendar.rs`): a training due on 1 March is late from
//! midnight in Chicago, not from midnight in UTC.

use jiff::tz::TimeZone;
use serde::Deserialize;

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DistrictConfig {
    pub time_zone: DistrictTimeZone,
}

/// An IANA time zone checked against the bundled tz database when the config is
/// read, so a typo stops the hub at start (with the file's line, or the
/// variable's name) instead of putting every date in UTC.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(try_from = "String")]
pub struct DistrictTimeZone(TimeZone);

impl DistrictTimeZone {
    pub fn tz(&self) -> &TimeZone {
        &self.0
    }

    /// The IANA name it was configured with (`UTC` by default).
    pub fn name(&self) -> &str {
        self.0.iana_name().unwrap_or("UTC")
    }
}

impl Default for DistrictTimeZone {
    fn default() -> Self {
        Self(TimeZone::UTC)
    }
}

impl TryFrom<String> for DistrictTimeZone {
    type Error = String;

    fn try_from(name: String) -> Result<Self, String> {
        // Fixed offsets ("-06:00") and POSIX rules are refused on purpose: they
        // know nothing of daylight saving time, so dates would be off by one
        // for an hour a day for half the year.
        match TimeZone::get(&name) {
            Ok(tz) => Ok(Self(tz)),
            Err(_) => Err(format!(
                "district.time_zone = {name:?} is not a time zone name; write an IANA name \
                 such as \"America/Chicago\", \"America/New_York\" or \"UTC\""
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::config::tests::load_env as load;
    use crate::config::Config;

    #[test]
    fn defaults_to_utc() {
        let c = load(&[]).unwrap();
        assert_eq!(c.district.time_zone.name(), "UTC");
        assert_eq!(c.district.time_zone.tz(), &jiff::tz::TimeZone::UTC);
    }

    #[test]
    fn reads_an_iana_name() {
        let c = load(&[("HMS_ACH__DISTRICT__TIME_ZONE", "America/Chicago")]).unwrap();
        assert_eq!(c.district.time_zone.name(), "America/Chicago");
        let c: Config = toml::from_str("[district]\ntime_zone = \"America/New_York\"\n").unwrap();
        assert_eq!(c.district.time_zone.name(), "America/New_York");
    }

    #[test]
    fn an_unknown_zone_says_what_to_write_and_where() {
        let err = load(&[("HMS_ACH__DISTRICT__TIME_ZONE", "America/Chikago")]).unwrap_err();
        assert!(err.contains("HMS_ACH__DISTRICT__TIME_ZONE"), "{err}");
        assert!(err.contains("\"America/Chikago\""), "{err}");
        assert!(
            err.contains("IANA name such as \"America/Chicago\""),
            "{err}"
        );
        let err = toml::from_str::<Config>("[district]\ntime_zone = \"Central\"\n")
            .unwrap_err()
            .to_string();
        assert!(err.contains("line 2") && err.contains("IANA"), "{err}");
    }
}
