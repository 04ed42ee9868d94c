//! `[mail]`: how the hub sends email (the notices of `mail/`).
//!
//! ```toml
//! [mail]
//! smtp_host = "smtp.district.example"   # absent: messages are written as .eml files
//! smtp_port = 587                        # default 587 (starttls), 465 (tls), 25 (none)
//! tls = "starttls"                       # "starttls" | "tls" (implicit, port 465) | "none" (development only)
//! username = "hub@district.example"      # optional SMTP AUTH
//! password = "…"                         # or HMS_ACH__MAIL__PASSWORD; never logged
//! timeout_seconds = 10                   # connecting and each SMTP command
//! from = "District Accounts <no-reply@district.example>"
//! reply_to = "help@district.example"     # default: [district] support_email
//! eml_dir = "mail-out"                   # default: mail-out/ next to the SQLite database
//! admin_digest_to = ["it-security@district.example"]
//! ```
//!
//! The district's name, logo and support address, which every email shows, are in
//! `[district]`.

use std::path::PathBuf;
use std::time::Duration;

use lettre::message::Mailbox;
use serde::Deserialize;

use super::ConfigError;
use crate::crypto::Secret;

/// How the SMTP connection is protected.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MailTls {
    /// Plain connection upgraded with STARTTLS (RFC 3207), required: a server that
    /// does not offer it is an error, never a fallback to plain text.
    #[default]
    Starttls,
    /// TLS from the first byte (RFC 8314 §3, "implicit TLS", usually port 465).
    Tls,
    /// No encryption: a local relay or a development sink only.
    None,
}

#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MailConfig {
    pub smtp_host: Option<String>,
    pub smtp_port: Option<u16>,
    pub tls: MailTls,
    pub username: Option<String>,
    pub password: Option<Secret>,
    pub timeout_seconds: u64,
    /// The `From` of every email (`Name <address>` or a bare address).
    pub from: String,
    /// Where replies go; the district's support address when absent.
    pub reply_to: Option<String>,
    /// Where `.eml` files are written when no SMTP server is configured.
    pub eml_dir: Option<PathBuf>,
    /// Who receives the daily digest of failed deliveries (in the environment, one
    /// variable with the addresses separated by commas).
    #[serde(deserialize_with = "addresses")]
    pub admin_digest_to: Vec<String>,
    /// Rows one worker claims per round.
    pub batch_size: u32,
    /// The first retry after a temporary failure; each next one waits twice as long
    /// (with jitter), up to `retry_max_seconds`.
    pub retry_base_seconds: u64,
    pub retry_max_seconds: u64,
    /// After this many temporary failures a message is given up (`failed`).
    pub max_attempts: u32,
}

/// The password is never shown; the rest helps when reading a logged config.
impl std::fmt::Debug for MailConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MailConfig")
            .field("smtp_host", &self.smtp_host)
            .field("smtp_port", &self.smtp_port)
            .field("tls", &self.tls)
            .field("username", &self.username)
            .field("password", &self.password.as_ref().map(|_| "***"))
            .field("timeout_seconds", &self.timeout_seconds)
            .field("from", &self.from)
            .field("reply_to", &self.reply_to)
            .field("eml_dir", &self.eml_dir)
            .field("admin_digest_to", &self.admin_digest_to)
            .field("batch_size", &self.batch_size)
            .field("retry_base_seconds", &self.retry_base_seconds)
            .field("retry_max_seconds", &self.retry_max_seconds)
            .field("max_attempts", &self.max_attempts)
            .finish()
    }
}

impl Default for MailConfig {
    fn default() -> Self {
        Self {
            smtp_host: None,
            smtp_port: None,
            tls: MailTls::Starttls,
            username: None,
            password: None,
            timeout_seconds: 10,
            from: "Access & Credentials Hub <no-reply@localhost>".into(),
            reply_to: None,
            eml_dir: None,
            admin_digest_to: Vec::new(),
            batch_size: 50,
            retry_base_seconds: 30,
            retry_max_seconds: 3600,
            max_attempts: 10,
        }
    }
}

/// A list of addresses, or one string of them separated by commas (what an
/// `HMS_ACH__MAIL__ADMIN_DIGEST_TO` variable can say).
fn addresses<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum OneOrMany {
        One(String),
        Many(Vec<String>),
    }
    Ok(match OneOrMany::deserialize(d)? {
        OneOrMany::Many(v) => v,
        OneOrMany::One(s) => s
            .split(',')
            .map(str::trim)
            .filter(|a| !a.is_empty())
            .map(str::to_string)
            .collect(),
    })
}

fn mailbox(key: &str, value: &str) -> Result<Mailbox, ConfigError> {
    value.parse::<Mailbox>().map_err(|e| {
        ConfigError::Invalid(format!(
            "mail.{key} = {value:?} is not an email address ({e}); write it as \
             \"name@district.example\" or \"District Accounts <name@district.example>\""
        ))
    })
}

impl MailConfig {
    /// The port: the configured one, or the usual one for the TLS mode.
    pub fn port(&self) -> u16 {
        self.smtp_port.unwrap_or(match self.tls {
            MailTls::Starttls => 587,
            MailTls::Tls => 465,
            MailTls::None => 25,
        })
    }

    pub fn timeout(&self) -> Duration {
        Duration::from_secs(self.timeout_seconds)
    }

    pub fn retry_base(&self) -> Duration {
        Duration::from_secs(self.retry_base_seconds)
    }

    pub fn retry_max(&self) -> Duration {
        Duration::from_secs(self.retry_max_seconds)
    }

    /// How long a worker holds the rows it claimed: longer than one SMTP exchange can
    /// take (connect, greeting, each command bounded by the timeout), so a row is
    /// taken over only from a worker that died.
    pub fn lease(&self) -> Duration {
        Duration::from_secs(self.timeout_seconds.saturating_mul(3).saturating_add(10))
    }

    pub fn from_mailbox(&self) -> Result<Mailbox, ConfigError> {
        mailbox("from", &self.from)
    }

    /// The `.eml` folder: the configured one, or `mail-out/` beside the SQLite
    /// database file (the working directory's for PostgreSQL).
    pub fn eml_dir(&self, database_url: &str) -> PathBuf {
        if let Some(dir) = &self.eml_dir {
            return dir.clone();
        }
        let file = database_url
            .strip_prefix("sqlite://")
            .or_else(|| database_url.strip_prefix("sqlite:"))
            .map(|f| f.split('?').next().unwrap_or(f))
            .filter(|f| !f.is_empty() && !f.contains(":memory:"));
        match file.and_then(|f| std::path::Path::new(f).parent()) {
            Some(parent) => parent.join("mail-out"),
            None => PathBuf::from("mail-out"),
        }
    }

    pub(super) fn validate(&self) -> Result<(), ConfigError> {
        let bad = |m: String| Err(ConfigError::Invalid(m));
        self.from_mailbox()?;
        if let Some(r) = &self.reply_to {
            mailbox("reply_to", r)?;
        }
        for a in &self.admin_digest_to {
            mailbox("admin_digest_to", a)?;
        }
        if let Some(host) = &self.smtp_host {
            if host.trim().is_empty() || host.contains(['/', ' ', ':']) {
                return bad(format!(
                    "mail.smtp_host = {host:?} must be a host name or address without scheme or port (the port is mail.smtp_port)"
                ));
            }
        }
        if self.smtp_port == Some(0) {
            return bad("mail.smtp_port must be between 1 and 65535".into());
        }
        if self.password.is_some() && self.username.is_none() {
            return bad("mail.password is set without mail.username".into());
        }
        if !(1..=300).contains(&self.timeout_seconds) {
            return bad("mail.timeout_seconds must be between 1 and 300".into());
        }
        if !(1..=1000).contains(&self.batch_size) {
            return bad("mail.batch_size must be between 1 and 1000".into());
        }
        if self.retry_base_seconds == 0 || self.retry_max_seconds < self.retry_base_seconds {
            return bad(
                "mail.retry_base_seconds must be at least 1 and at most mail.retry_max_seconds"
                    .into(),
            );
        }
        if !(1..=100).contains(&self.max_attempts) {
            return bad("mail.max_attempts must be between 1 and 100".into());
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use crate::config::{load_env as load, Config};

    #[test]
    fn a_bad_address_stops_the_start_and_says_which() {
        let err = load(&[("HMS_ACH__MAIL__FROM", "not an address")]).unwrap_err();
        assert!(
            err.contains("mail.from") && err.contains("not an address"),
            "{err}"
        );
        let err = load(&[("HMS_ACH__DISTRICT__SUPPORT_EMAIL", "help@")]).unwrap_err();
        assert!(err.contains("district.support_email"), "{err}");
        let err = toml::from_str::<Config>("[mail]\ntls = \"ssl\"\n")
            .unwrap_err()
            .to_string();
        assert!(err.contains("line 2"), "{err}");
    }

    #[test]
    fn digest_addresses_come_as_a_list_or_one_variable() {
        let c = load(&[("HMS_ACH__MAIL__ADMIN_DIGEST_TO", "a@x.example, b@x.example")]).unwrap();
        assert_eq!(c.mail.admin_digest_to, ["a@x.example", "b@x.example"]);
        let c: Config = toml::from_str("[mail]\nadmin_digest_to = [\"a@x.example\"]\n").unwrap();
        assert_eq!(c.mail.admin_digest_to, ["a@x.example"]);
        let err = load(&[("HMS_ACH__MAIL__ADMIN_DIGEST_TO", "a@x.example, nope")]).unwrap_err();
        assert!(
            err.contains("admin_digest_to") && err.contains("nope"),
            "{err}"
        );
    }

    #[test]
    fn the_password_is_never_printed() {
        let c = load(&[
            ("HMS_ACH__MAIL__SMTP_HOST", "smtp.example"),
            ("HMS_ACH__MAIL__USERNAME", "hub"),
            ("HMS_ACH__MAIL__PASSWORD", "s3cr3t-smtp-pw"),
        ])
        .unwrap();
        assert_eq!(c.mail.password.as_ref().unwrap().expose(), "s3cr3t-smtp-pw");
        let shown = format!("{c:?}");
        assert!(!shown.contains("s3cr3t"), "{shown}");
        assert!(shown.contains("password: Some(\"***\")"), "{shown}");
        assert_eq!(c.mail.port(), 587);
    }

    #[test]
    fn eml_files_go_next_to_the_database() {
        let c = load(&[]).unwrap();
        assert_eq!(
            c.mail.eml_dir("sqlite:///var/lib/hub/hub.db?mode=rwc"),
            std::path::PathBuf::from("/var/lib/hub/mail-out")
        );
        assert_eq!(
            c.mail.eml_dir("postgres://h/db"),
            std::path::PathBuf::from("mail-out")
        );
    }
}
