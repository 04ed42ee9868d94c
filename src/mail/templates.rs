//! The email templates of the top-level `email-templates/` folder, embedded in the
//! binary (the hub sends the same emails wherever it is started from), rendered with
//! minijinja: HTML auto-escaped, the plain-text part not; every sentence from
//! `strings.toml` through `t('key')`, its `{placeholders}` filled from the message.

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;

use minijinja::{Environment, State, Value as JinjaValue};
use serde_json::Value;

use super::{MailError, Template};
use crate::config::Config;

macro_rules! email_template {
    ($name:literal) => {
        (
            $name,
            include_str!(concat!("../../email-templates/", $name)),
        )
    };
}

/// Every file of `email-templates/` a message may use.
const FILES: &[(&str, &str)] = &[
    email_template!("layout.html"),
    email_template!("layout.txt"),
    email_template!("security_facts.html"),
    email_template!("security_facts.txt"),
    email_template!("password-changed.html"),
    email_template!("password-changed.txt"),
    email_template!("factor-added.html"),
    email_template!("factor-added.txt"),
    email_template!("factor-removed.html"),
    email_template!("factor-removed.txt"),
    email_template!("recovery-codes-issued.html"),
    email_template!("recovery-codes-issued.txt"),
    email_template!("recovery-code-used.html"),
    email_template!("recovery-code-used.txt"),
    email_template!("mfa-reset.html"),
    email_template!("mfa-reset.txt"),
    email_template!("account-locked.html"),
    email_template!("account-locked.txt"),
    email_template!("admin-digest.html"),
    email_template!("admin-digest.txt"),
];

const STRINGS_EN: &str = include_str!("../../email-templates/strings.toml");

/// One email, rendered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rendered {
    pub subject: String,
    pub html: String,
    pub text: String,
}

/// The compiled templates and the strings.
pub struct Renderer {
    env: Environment<'static>,
    strings: Arc<HashMap<String, String>>,
}

/// Fills `{name}` from `lookup`; an unknown name stays as written (a template test
/// catches it before a person does).
fn fill(text: &str, lookup: impl Fn(&str) -> Option<String>) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(open) = rest.find('{') {
        out.push_str(&rest[..open]);
        let after = &rest[open + 1..];
        match after.find('}') {
            Some(close)
                if after[..close]
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b == b'_') =>
            {
                let name = &after[..close];
                match lookup(name) {
                    Some(v) => out.push_str(&v),
                    None => {
                        out.push('{');
                        out.push_str(name);
                        out.push('}');
                    }
                }
                rest = &after[close + 1..];
            }
            _ => {
                out.push('{');
                rest = after;
            }
        }
    }
    out.push_str(rest);
    out
}

fn shown(v: &JinjaValue) -> Option<String> {
    (!v.is_undefined() && !v.is_none()).then(|| v.to_string())
}

/// The `t('key')` calls of a template source.
fn string_keys(source: &str) -> Vec<String> {
    let mut keys = Vec::new();
    for (i, _) in source.match_indices("t('") {
        let rest = &source[i + 3..];
        if let Some(end) = rest.find('\'') {
            keys.push(rest[..end].to_string());
        }
    }
    keys
}

impl Renderer {
    pub fn new() -> Result<Renderer, MailError> {
        let strings: HashMap<String, String> =
            toml::from_str(STRINGS_EN).map_err(|e| MailError::Render {
                template: "strings.toml".into(),
                message: e.to_string(),
            })?;
        // Every key a template asks for, and each notice's subject, is in the catalog.
        let mut missing = BTreeSet::new();
        for (name, source) in FILES {
            for key in string_keys(source) {
                if !strings.contains_key(&key) {
                    missing.insert(format!("{name}: {key}"));
                }
            }
        }
        for t in Template::ALL {
            let key = format!("{}.subject", t.name());
            if !strings.contains_key(&key) {
                missing.insert(key);
            }
        }
        if !missing.is_empty() {
            return Err(MailError::Render {
                template: "strings.toml".into(),
                message: format!(
                    "missing strings: {}",
                    missing.into_iter().collect::<Vec<_>>().join(", ")
                ),
            });
        }
        let strings = Arc::new(strings);
        let mut env = Environment::new();
        env.set_trim_blocks(true);
        env.set_lstrip_blocks(true);
        env.set_undefined_behavior(minijinja::UndefinedBehavior::Strict);
        for (name, source) in FILES {
            env.add_template(name, source)
                .map_err(|e| MailError::Render {
                    template: (*name).into(),
                    message: e.to_string(),
                })?;
        }
        let catalog = strings.clone();
        env.add_function(
            "t",
            move |state: &State, key: &str| -> Result<String, minijinja::Error> {
                let text = catalog.get(key).ok_or_else(|| {
                    minijinja::Error::new(
                        minijinja::ErrorKind::UndefinedError,
                        format!("no string {key:?} in strings.toml"),
                    )
                })?;
                Ok(fill(text, |name| {
                    state.lookup(name).as_ref().and_then(shown)
                }))
            },
        );
        Ok(Renderer { env, strings })
    }

    /// The message's context: its data, the district's branding and the links.
    pub fn context(config: &Config, data: &Value) -> Value {
        let mut ctx = match data {
            Value::Object(m) => m.clone(),
            _ => serde_json::Map::new(),
        };
        let issuer = config.issuer();
        let district = &config.district;
        let at = ctx.get("at").and_then(Value::as_i64);
        let when = at.map(|ms| format_when(ms, district.time_zone.tz()));
        let defaults = [
            ("lang", Value::from("en")),
            ("district_name", Value::from(district.name.clone())),
            ("logo_url", district.logo_url.clone().into()),
            ("support_email", district.support_email.clone().into()),
            (
                "security_url",
                Value::from(format!("{issuer}/portal/security")),
            ),
            (
                "review_url",
                Value::from(format!("{issuer}/api/v1/mail?state=failed")),
            ),
            ("when", when.into()),
            ("where", Value::Null),
            ("person_name", Value::Null),
        ];
        for (k, v) in defaults {
            ctx.entry(k).or_insert(v);
        }
        Value::Object(ctx)
    }

    /// Subject, HTML and plain text of `template` with `data`.
    pub fn render(
        &self,
        config: &Config,
        template: Template,
        data: &Value,
    ) -> Result<Rendered, MailError> {
        let mut ctx = Self::context(config, data);
        let subject_text = self
            .strings
            .get(&format!("{}.subject", template.name()))
            .cloned()
            .unwrap_or_default();
        let subject = fill(&subject_text, |name| match ctx.get(name) {
            Some(Value::String(s)) => Some(s.clone()),
            Some(Value::Null) | None => None,
            Some(other) => Some(other.to_string()),
        });
        // A subject is one line (RFC 5322 §2.2.3 folds, but a newline here is a bug).
        let subject: String = subject.chars().filter(|c| !c.is_control()).collect();
        if let Some(m) = ctx.as_object_mut() {
            m.insert("subject".into(), Value::from(subject.clone()));
        }
        let plain = JinjaValue::from_serialize(&ctx);
        let html = with_links_as_written(&ctx);
        let part = |ext: &str| -> Result<String, MailError> {
            let name = format!("{}.{ext}", template.name());
            let value = if ext == "html" { &html } else { &plain };
            self.env
                .get_template(&name)
                .and_then(|t| t.render(value))
                .map_err(|e| MailError::Render {
                    template: name.clone(),
                    message: format!("{e:#}"),
                })
        };
        Ok(Rendered {
            subject,
            html: part("html")?,
            text: tidy_text(&part("txt")?),
        })
    }
}

/// The links a message carries, as they will be put into `href`/`src` and shown:
/// escaped for HTML by hand, without minijinja's escaping of `/` (`&#x2f;`), which
/// browsers read but mail clients' link checkers and people reading the source do
/// not.
const LINKS: [&str; 4] = ["security_url", "review_url", "logo_url", "support_email"];

fn with_links_as_written(ctx: &Value) -> JinjaValue {
    let Value::Object(m) = ctx else {
        return JinjaValue::from_serialize(ctx);
    };
    m.iter()
        .map(|(k, v)| {
            let value = match (LINKS.contains(&k.as_str()), v) {
                (true, Value::String(s)) => JinjaValue::from_safe_string(escape_attribute(s)),
                _ => JinjaValue::from_serialize(v),
            };
            (k.clone(), value)
        })
        .collect()
}

fn escape_attribute(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#x27;"),
            c => out.push(c),
        }
    }
    out
}

/// At most one blank line in a row, no trailing spaces, one final newline.
fn tidy_text(text: &str) -> String {
    let mut out = String::new();
    let mut blank = 0;
    for line in text.lines() {
        let line = line.trim_end();
        if line.is_empty() {
            blank += 1;
            if blank > 1 || out.is_empty() {
                continue;
            }
        } else {
            blank = 0;
        }
        out.push_str(line);
        out.push('\n');
    }
    while out.ends_with("\n\n") {
        out.pop();
    }
    out
}

/// A moment as people in the district read it: "Thursday 3 December 2026, 12:30 CST".
pub fn format_when(ms: i64, tz: &jiff::tz::TimeZone) -> String {
    match jiff::Timestamp::from_millisecond(ms) {
        Ok(t) => t
            .to_zoned_datetime(tz.clone())
            .strftime("%A %-d %B %Y, %H:%M %Z")
            .to_string(),
        Err(_) => crate::clock::format_rfc3339(ms),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_are_filled_and_unknown_ones_kept() {
        let f = fill("Hi {a}, {b} {x y} {", |n| (n == "a").then(|| "Ana".into()));
        assert_eq!(f, "Hi Ana, {b} {x y} {");
    }

    #[test]
    fn every_template_renders_with_its_sample_and_both_parts_say_the_same() {
        let r = Renderer::new().unwrap();
        let mut config = Config::default();
        config.district.name = "Riverside <USD>".into();
        config.district.support_email = Some("help@riverside.example".into());
        for t in Template::ALL {
            let out = r.render(&config, t, &t.sample()).unwrap();
            assert!(
                out.subject.contains("Riverside <USD>"),
                "{t:?}: {}",
                out.subject
            );
            assert!(!out.subject.contains('{'), "{t:?}: {}", out.subject);
            for part in [&out.html, &out.text] {
                assert!(!part.contains('{') && !part.contains("}}"), "{t:?}: {part}");
                assert!(part.contains("help@riverside.example"), "{t:?}: {part}");
            }
            // The HTML escapes the name; the text shows it as written.
            assert!(out.html.contains("Riverside &lt;USD&gt;"), "{t:?}");
            assert!(!out.html.contains("Riverside <USD>"), "{t:?}");
            assert!(out.text.contains("Riverside <USD>"), "{t:?}");
            assert!(
                out.html.starts_with("<!DOCTYPE html>") && out.html.contains("<html lang=\"en\">")
            );
            if t != Template::AdminDigest {
                let link = "http://127.0.0.1:8080/portal/security";
                assert!(out.html.contains(&format!("href=\"{link}\"")), "{t:?}");
                assert!(out.text.contains(link), "{t:?}");
                assert!(out.text.contains("203.0.113.7"), "{t:?}");
            }
        }
    }

    #[test]
    fn links_are_escaped_for_html_but_keep_their_slashes() {
        let r = Renderer::new().unwrap();
        let mut config = Config::default();
        config.server.issuer = Some("https://sso.example/x?a=1&b=\"2".into());
        let out = r
            .render(&config, Template::MfaReset, &Template::MfaReset.sample())
            .unwrap();
        assert!(
            out.html
                .contains("href=\"https://sso.example/x?a=1&amp;b=&quot;2/portal/security\""),
            "{}",
            out.html
        );
        assert!(out
            .text
            .contains("https://sso.example/x?a=1&b=\"2/portal/security"));
    }

    #[test]
    fn times_are_in_the_district_zone() {
        let tz = jiff::tz::TimeZone::get("America/Chicago").unwrap();
        // 2026-12-03T18:30:00Z
        assert_eq!(
            format_when(1_796_322_600_000, &tz),
            "Thursday 3 December 2026, 12:30 CST"
        );
    }
}
