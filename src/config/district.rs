//! `[district]`: facts about the district that the hub works for.
//!
//! ```toml
//! [district]
//! time_zone = "America/Chicago"   # IANA name; default "UTC"
//! name = "Riverside Unified School District"   # shown in every email
//! logo_url = "https://www.riverside.example/logo.png"   # optional, in HTML emails
//! support_email = "help@riverside.example"     # "if this was not you, write to…"
//! ```
//!
//! The time zone decides which calendar day it is for "due on", "valid through"
//! and reminders (see `calendar.rs`): a training due on 1 March is late from
//! midnight in Chicago, not from midnight in UTC.

use jiff::tz::TimeZone;
use serde::Deserialize;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DistrictConfig {
    pub time_zone: DistrictTimeZone,
    /// The district's name as people know it: the emails are signed with it.
    pub name: String,
    /// An https URL of the district's logo, shown at the top of HTML emails.
    pub logo_url: Option<String>,
    /// Where people write when something looks wrong (emails name it, and it is
    /// their Reply-To unless `[mail] reply_to` says otherwise).
    pub support_email: Option<String>,
}

impl Default for DistrictConfig {
    fn default() -> Self {
        Self {
            time_zone: DistrictTimeZone::default(),
            name: "Access & Credentials Hub".into(),
            logo_url: None,
            support_email: None,
        }
    }
}

impl DistrictConfig {
    pub(super) fn validate(&self) -> Result<(), super::ConfigError> {
        let bad = |m: String| Err(super::ConfigError::Invalid(m));
        if self.name.trim().is_empty() || self.name.chars().any(char::is_control) {
            return bad("district.name must be a non-empty name without control characters".into());
        }
        if let Some(logo) = &self.logo_url {
            match url::Url::parse(logo) {
                Ok(u) if matches!(u.scheme(), "https" | "http") => {}
                _ => {
                    return bad(format!(
                        "district.logo_url = {logo:?} must be an http(s) URL"
                    ))
                }
            }
        }
        if let Some(s) = &self.support_email {
            if s.parse::<lettre::Address>().is_err() {
                return bad(format!(
                    "district.support_email = {s:?} is not an email address; write it as help@district.example"
                ));
            }
        }
        Ok(())
    }
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
    use crate::config::{load_env as load, Config};

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
