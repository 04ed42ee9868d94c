//! How a change to a person's factors is recorded: one audit event, and, for a change
//! (not a use), one outbox event, both in the caller's transaction.

use super::AuthnError;
use crate::audit::{self, Entry, Origin, Outcome};
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
    audit::record(
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
    }
    Ok(())
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
