//! Role assignments: a subject holds a role in an org (and the orgs below it) or
//! hub-wide, optionally until a time.

use serde::Serialize;

use super::repo::{self, AssignmentInsert, AssignmentRow};
use super::{AuthzError, Subject};
use crate::audit::{self, Entry, Origin, Outcome};
use crate::clock::{format_rfc3339, Timestamp};
use crate::crypto::AuditKey;
use crate::outbox::{self, EventType, NewEvent};
use crate::store::{self, Store, Tx};

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Assignment {
    pub id: String,
    pub role: String,
    /// The org id the role applies in (and below), or `None` for hub-wide.
    pub org_id: Option<String>,
    pub granted_by: String,
    pub granted_at: String,
    pub expires_at: Option<String>,
}

pub struct NewAssignment {
    pub subject: Subject,
    pub role: String,
    pub org_id: Option<String>,
    /// When the role ends by itself (`None`: until revoked).
    pub expires_at: Option<Timestamp>,
}

impl From<AssignmentRow> for Assignment {
    fn from(r: AssignmentRow) -> Self {
        Assignment {
            id: r.id,
            role: r.role,
            org_id: (r.scope != "*").then_some(r.scope),
            granted_by: r.granted_by,
            granted_at: format_rfc3339(r.granted_at_ms),
            expires_at: r.expires_at_ms.map(format_rfc3339),
        }
    }
}

/// Grants a role inside the caller's transaction (so that, e.g., creating a client
/// and giving it its role commit together). Granting what is already held returns
/// the existing assignment, with its expiry updated.
pub async fn assign_role(
    tx: &mut Tx,
    key: &AuditKey,
    now: Timestamp,
    origin: &Origin,
    new: NewAssignment,
) -> Result<Assignment, AuthzError> {
    if !repo::role_exists(tx, &new.role).await? {
        return Err(AuthzError::UnknownRole(new.role));
    }
    let subject = new.subject.key();
    let scope = new.org_id.clone().unwrap_or_else(|| "*".into());
    // Insert first: of two identical grants at once, one inserts and the other finds
    // the row (PostgreSQL waits for the first to commit, then does nothing), so both
    // answer with the one assignment, on either database, never a 409.
    let id = store::new_id();
    let granted_by = format!("{}:{}", origin.actor_kind, origin.actor_id);
    let inserted = repo::insert_assignment(
        tx,
        &AssignmentInsert {
            id: &id,
            subject: &subject,
            role: &new.role,
            scope: &scope,
            granted_by: &granted_by,
            granted_at_ms: now.as_millis(),
            expires_at_ms: new.expires_at.map(Timestamp::as_millis),
        },
    )
    .await?;
    let (id, action) = if inserted {
        (id, "role.assign")
    } else {
        let held = repo::find_held(tx, &subject, &new.role, &scope).await?;
        if held.expires_at_ms == new.expires_at.map(Timestamp::as_millis) {
            return Ok(held.into());
        }
        repo::set_expiry(tx, &held.id, new.expires_at.map(Timestamp::as_millis)).await?;
        (held.id, "role.extend")
    };
    audit::record(
        tx,
        key,
        now.as_millis(),
        origin,
        Entry {
            action,
            outcome: Outcome::Success,
            target_kind: "subject",
            target_id: &subject,
            details: serde_json::json!({ "assignment": id, "role": new.role, "org": new.org_id, "expiresAt": new.expires_at.map(Timestamp::to_rfc3339) }),
        },
    )
    .await?;
    repo::bump_version(tx).await?;
    let assignment: Assignment = repo::find_assignment(tx, &id).await?.into();
    let kind = if action == "role.assign" {
        EventType::RoleGranted
    } else {
        EventType::RoleExtended
    };
    announce(tx, now, kind, &subject, &assignment).await?;
    Ok(assignment)
}

/// The outbox event of a grant, extension or revocation, in its transaction: the
/// assignment as the API returns it, with who holds it (`person:{id}`, `client:{id}`).
/// One assignment's events share a subject, so a consumer applies them in order.
async fn announce(
    tx: &mut Tx,
    now: Timestamp,
    kind: EventType,
    holder: &str,
    assignment: &Assignment,
) -> Result<(), AuthzError> {
    let mut data = serde_json::to_value(assignment).unwrap_or_default();
    if let Some(map) = data.as_object_mut() {
        map.insert("holder".into(), holder.into());
    }
    let event = NewEvent {
        kind,
        subject: format!("role-assignments/{}", assignment.id),
        data,
    };
    outbox::append(tx, now, event).await?;
    Ok(())
}

/// The subject's assignments, expired ones included (they show when access ended).
pub async fn list_assignments(
    store: &Store,
    subject: &Subject,
) -> Result<Vec<Assignment>, AuthzError> {
    let rows = repo::list_assignments(store, &subject.key()).await?;
    Ok(rows.into_iter().map(Assignment::from).collect())
}

/// Removes one assignment; `Ok(false)` when the subject has no such assignment.
pub async fn revoke_assignment(
    tx: &mut Tx,
    key: &AuditKey,
    now: Timestamp,
    origin: &Origin,
    subject: &Subject,
    id: &str,
) -> Result<bool, AuthzError> {
    let subject = subject.key();
    let Some(row) = repo::delete_assignment(tx, id, &subject).await? else {
        return Ok(false);
    };
    let (role, scope) = (row.role.clone(), row.scope.clone());
    announce(tx, now, EventType::RoleRevoked, &subject, &row.into()).await?;
    audit::record(
        tx,
        key,
        now.as_millis(),
        origin,
        Entry {
            action: "role.revoke",
            outcome: Outcome::Success,
            target_kind: "subject",
            target_id: &subject,
            details: serde_json::json!({ "assignment": id, "role": role, "org": (scope != "*").then_some(scope) }),
        },
    )
    .await?;
    repo::bump_version(tx).await?;
    Ok(true)
}

/// Removes every assignment of a subject (a deleted client), inside the caller's transaction.
/// Each removal is a `role.revoked` outbox event, as a single revocation is.
pub(crate) async fn revoke_all(
    tx: &mut Tx,
    now: Timestamp,
    subject: &Subject,
) -> Result<u64, AuthzError> {
    let key = subject.key();
    let removed = repo::delete_all_assignments(tx, &key).await?;
    let count = removed.len() as u64;
    for row in removed {
        announce(tx, now, EventType::RoleRevoked, &key, &row.into()).await?;
    }
    if count > 0 {
        repo::bump_version(tx).await?;
    }
    Ok(count)
}

/// The person's role assignments in force at `now`: (role, org sourcedId or None for
/// hub-wide). Released as the OpenID Connect `roles` claim and as SAML role
/// attributes.
pub async fn live_roles(
    store: &Store,
    person_id: &str,
    now: i64,
) -> Result<Vec<(String, Option<String>)>, AuthzError> {
    let assignments = list_assignments(store, &Subject::Person(person_id.to_string())).await?;
    let mut roles = Vec::new();
    for a in assignments {
        let live = a
            .expires_at
            .as_deref()
            .and_then(crate::clock::parse_rfc3339)
            .is_none_or(|exp| exp > now);
        if !live {
            continue;
        }
        let org = match &a.org_id {
            Some(id) => crate::directory::get_org(store, id)
                .await
                .ok()
                .map(|o| o.sourced_id),
            None => None,
        };
        roles.push((a.role, org));
    }
    Ok(roles)
}
