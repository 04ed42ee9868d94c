//! What an email is about: its template and the data the template shows.

use serde_json::{json, Value};

/// The emails the hub sends. Each names a template pair in `email-templates/`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Template {
    /// A password set, changed or reset (by the person, an admin or the CLI).
    PasswordChanged,
    /// A passkey or an authenticator app added.
    FactorAdded,
    FactorRemoved,
    RecoveryCodesIssued,
    /// A recovery code used at sign-in.
    RecoveryCodeUsed,
    /// Every second factor removed by the help desk.
    MfaReset,
    /// Password guessing slowed every sign-in, or second-factor codes locked.
    AccountLocked,
    /// The admins' daily report of failed deliveries.
    AdminDigest,
}

impl Template {
    pub const ALL: [Template; 8] = [
        Template::PasswordChanged,
        Template::FactorAdded,
        Template::FactorRemoved,
        Template::RecoveryCodesIssued,
        Template::RecoveryCodeUsed,
        Template::MfaReset,
        Template::AccountLocked,
        Template::AdminDigest,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Template::PasswordChanged => "password-changed",
            Template::FactorAdded => "factor-added",
            Template::FactorRemoved => "factor-removed",
            Template::RecoveryCodesIssued => "recovery-codes-issued",
            Template::RecoveryCodeUsed => "recovery-code-used",
            Template::MfaReset => "mfa-reset",
            Template::AccountLocked => "account-locked",
            Template::AdminDigest => "admin-digest",
        }
    }

    pub fn parse(name: &str) -> Option<Template> {
        Template::ALL.into_iter().find(|t| t.name() == name)
    }

    pub fn names() -> String {
        Template::ALL.map(Template::name).join(", ")
    }

    /// Data as a real notice carries it, for `hms-ach email preview`.
    pub fn sample(self) -> Value {
        let person =
            json!({ "person_name": "Ana", "at": 1_780_000_000_000_i64, "where": "203.0.113.7" });
        let extra = match self {
            Template::PasswordChanged => json!({ "by_admin": false, "must_change": false }),
            Template::FactorAdded | Template::FactorRemoved => json!({ "factor": "passkey" }),
            Template::RecoveryCodeUsed => json!({ "codes_left": 9 }),
            Template::AccountLocked => json!({ "reason": "guessing" }),
            Template::AdminDigest => {
                return json!({
                    "at": 1_780_000_000_000_i64,
                    "failed_count": 1,
                    "failures": [{
                        "recipient": "ana.ruiz@students.riverside.example",
                        "template": "password-changed",
                        "error": "550 5.1.1 mailbox unavailable",
                    }],
                    "other": [],
                })
            }
            _ => json!({}),
        };
        let mut v = person;
        if let (Some(m), Value::Object(e)) = (v.as_object_mut(), extra) {
            m.extend(e);
        }
        v
    }
}

/// An email to queue: sent at most once per `key`.
#[derive(Debug, Clone)]
pub struct Notice {
    /// What makes this notice unique, e.g. `password-changed:{person}:{audit seq}`:
    /// queuing the same key again is a no-op.
    pub key: String,
    pub template: Template,
    pub recipient: String,
    /// What the template shows (besides the district's branding).
    pub data: Value,
}
