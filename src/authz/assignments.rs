//! Role assignments: a subject holds a role in an org (and the orgs below it) or
//! hub-wide, optionally until a time.

use serde::Serialize;

use super::{AuthzError, Subject};
use crate::audit::{self, Entry, Origin, Outcome};
use crate::clock::{format_rfc3339, Timestamp};
use crate::crypto::AuditKey;
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

fn from_row(r: &store::Row) -> Result<Assignment, AuthzError> {
    let scope: String = store::get(r, "scope")?;
    Ok(Assignment {
        id: store::get(r, "id")?,
        role: store::get(r, "role")?,
        org_id: (scope != "*").then_some(scope),
        granted_by: store::get(r, "granted_by")?,
        granted_at: format_rfc3339(store::get(r, "granted_at")?),
        expires_at: store::get::<Option<i64>>(r, "expires_at")?.map(format_rfc3339),
    })
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
    let known = sqlx::query("SELECT code FROM roles WHERE code = $1")
        .bind(&new.role)
        .fetch_optional(&mut **tx)
        .await?;
    if known.is_none() {
        return Err(AuthzError::UnknownRole(new.role));
    }
    let subject = new.subject.key();
    let scope = new.org_id.clone().unwrap_or_else(|| "*".into());
    // Insert first: of two identical grants at once, one inserts and the other finds
    // the row (PostgreSQL waits for the first to commit, then does nothing), so both
    // answer with the one assignment, on either database, never a 409.
    let id = store::new_id();
    let inserted = sqlx::query(
        "INSERT INTO role_assignments (id, subject, role, scope, granted_by, granted_at, expires_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (subject, role, scope) DO NOTHING",
    )
    .bind(&id)
    .bind(&subject)
    .bind(&new.role)
    .bind(&scope)
    .bind(format!("{}:{}", origin.actor_kind, origin.actor_id))
    .bind(now)
    .bind(new.expires_at)
    .execute(&mut **tx)
    .await?
    .rows_affected()
        == 1;
    let (id, action) = if inserted {
        (id, "role.assign")
    } else {
        let row = sqlx::query("SELECT id, expires_at FROM role_assignments WHERE subject = $1 AND role = $2 AND scope = $3")
            .bind(&subject)
            .bind(&new.role)
            .bind(&scope)
            .fetch_one(&mut **tx)
            .await?;
        let id: String = store::get(&row, "id")?;
        let old: Option<Timestamp> = store::get(&row, "expires_at")?;
        if old == new.expires_at {
            return find(tx, &id).await;
        }
        sqlx::query("UPDATE role_assignments SET expires_at = $1 WHERE id = $2")
            .bind(new.expires_at)
            .bind(&id)
            .execute(&mut **tx)
            .await?;
        (id, "role.extend")
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
    super::enforcer::bump_version(tx).await?;
    find(tx, &id).await
}

async fn find(tx: &mut Tx, id: &str) -> Result<Assignment, AuthzError> {
    let row = sqlx::query("SELECT id, role, scope, granted_by, granted_at, expires_at FROM role_assignments WHERE id = $1")
        .bind(id)
        .fetch_one(&mut **tx)
        .await?;
    from_row(&row)
}

/// The subject's assignments, expired ones included (they show when access ended).
pub async fn list_assignments(
    store: &Store,
    subject: &Subject,
) -> Result<Vec<Assignment>, AuthzError> {
    let rows = sqlx::query(
        "SELECT id, role, scope, granted_by, granted_at, expires_at FROM role_assignments \
         WHERE subject = $1 ORDER BY granted_at, id",
    )
    .bind(subject.key())
    .fetch_all(store.reader())
    .await?;
    rows.iter().map(from_row).collect()
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
    let row = sqlx::query(
        "DELETE FROM role_assignments WHERE id = $1 AND subject = $2 RETURNING role, scope",
    )
    .bind(id)
    .bind(&subject)
    .fetch_optional(&mut **tx)
    .await?;
    let Some(row) = row else { return Ok(false) };
    let role: String = store::get(&row, "role")?;
    let scope: String = store::get(&row, "scope")?;
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
    super::enforcer::bump_version(tx).await?;
    Ok(true)
}

/// Removes every assignment of a subject (a deleted client), inside the caller's transaction.
pub(crate) async fn revoke_all(tx: &mut Tx, subject: &Subject) -> Result<u64, AuthzError> {
    let done = sqlx::query("DELETE FROM role_assignments WHERE subject = $1")
        .bind(subject.key())
        .execute(&mut **tx)
        .await?;
    if done.rows_affected() > 0 {
        super::enforcer::bump_version(tx).await?;
    }
    Ok(done.rows_affected())
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
