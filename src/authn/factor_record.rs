//! How a change to a person's factors is recorded: one audit event, and, for a change
//! (not a use), one outbox event, both in the caller's transaction; and the email
//! telling the person (a change, or a recovery code used), queued in it too.

use super::AuthnError;
use crate::audit::{self, Entry, Origin, Outcome};
use crate::mail::{self, Template};
use crate::outbox::{self, EventType, NewEvent};
use crate::store::Tx;
use crate::AppState;

/// One audit record about a person's second factor.
pub(super) async fn audit_factor(
    tx: &mut Tx,
    app: &AppState,
    origin: &Origin,
    action: &'static str,
    outcome: Outcome,
    person_id: &str,
    factor: &str,
) -> Result<(), AuthnError> {
    let seq = audit::record(
        tx,
        app.audit_key(),
        app.clock().now_ms(),
        origin,
        Entry {
            action,
            outcome,
            target_kind: "person",
            target_id: person_id,
            details: serde_json::json!({ "factor": factor }),
        },
    )
    .await?;
    // A change to how the person signs in is also an outbox event, in this
    // transaction (issue 16): the notices and the systems that mirror it hear it once.
    if outcome == Outcome::Success {
        if let Some(change) = factor_change(action) {
            let event = NewEvent {
                kind: EventType::PersonFactorsChanged,
                subject: format!("people/{person_id}/factors"),
                data: serde_json::json!({ "person": person_id, "change": change, "factor": factor }),
            };
            outbox::append(tx, app.clock().now(), event).await?;
        }
        if let Some((template, mut details)) = notice_for(action, factor) {
            if template == Template::RecoveryCodeUsed {
                details["codes_left"] = super::recovery::remaining(app, person_id).await?.into();
            }
            let notice = mail::SecurityNotice {
                template,
                person_id,
                change_id: seq,
                source_ip: origin.meta.source_ip.as_deref(),
                details,
            };
            mail::notify_person(tx, app.clock().now(), notice).await?;
        }
    }
    Ok(())
}

/// The email a factor action sends the person, if any: every change, and a
/// recovery code used to sign in (someone holding one of their codes signed in).
fn notice_for(action: &str, factor: &str) -> Option<(Template, serde_json::Value)> {
    let label = serde_json::json!({ "factor": mail::factor_label(factor) });
    match (action, factor) {
        // Not `auth.mfa.enrolled_at_signin`: the factor it finishes with was added
        // (and told) a moment before, as `auth.totp.add` or `auth.passkey.add`.
        ("auth.totp.add" | "auth.passkey.add", _) => Some((Template::FactorAdded, label)),
        ("auth.totp.remove" | "auth.passkey.remove", _) => Some((Template::FactorRemoved, label)),
        ("auth.recovery_codes.issue", _) => Some((Template::RecoveryCodesIssued, label)),
        ("auth.mfa.reset", _) => Some((Template::MfaReset, label)),
        ("auth.mfa" | "auth.mfa.proven_for_passkey", "recovery_code") => {
            Some((Template::RecoveryCodeUsed, label))
        }
        _ => None,
    }
}

/// What an audited factor action changed, for the outbox; `None` for actions that
/// only use a factor (a sign-in, a step-up).
fn factor_change(action: &str) -> Option<&'static str> {
    match action {
        "auth.totp.add" | "auth.passkey.add" | "auth.mfa.enrolled_at_signin" => Some("added"),
        "auth.totp.remove" | "auth.passkey.remove" => Some("removed"),
        "auth.recovery_codes.issue" => Some("recovery_codes_issued"),
        "auth.mfa.reset" => Some("reset"),
        _ => None,
    }
}
