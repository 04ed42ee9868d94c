//! The storage of authorization: every statement on `roles`, `authz_policies`,
//! `role_assignments` and `authz_version`. Rows come back as typed structs,
//! failures as `StoreError`; the rules (what a grant means, what is audited, when
//! the policy version moves) live in `assignments.rs`, `catalog.rs` and
//! `enforcer.rs`. Subjects are passed as their stored key (`Subject::key`).

use crate::store::{self, Store, StoreError, Tx};

/// A `p` line: (role, domain, object, action).
pub(super) type PolicyLine = [String; 4];

/// One row of `role_assignments` as stored: times in Unix milliseconds, the scope
/// an org id or `*` for hub-wide.
pub(super) struct AssignmentRow {
    pub id: String,
    pub role: String,
    pub scope: String,
    pub granted_by: String,
    pub granted_at_ms: i64,
    pub expires_at_ms: Option<i64>,
}

/// An assignment as the enforcer needs it: casbin's `g, subject, role, scope`.
pub(super) struct Grouping {
    pub subject: String,
    pub role: String,
    pub scope: String,
    pub expires_at_ms: Option<i64>,
}

/// A new assignment, as it is written.
pub(super) struct AssignmentInsert<'a> {
    pub id: &'a str,
    pub subject: &'a str,
    pub role: &'a str,
    pub scope: &'a str,
    pub granted_by: &'a str,
    pub granted_at_ms: i64,
    pub expires_at_ms: Option<i64>,
}

const ASSIGNMENT_COLUMNS: &str = "id, role, scope, granted_by, granted_at, expires_at";

fn assignment_from_row(r: &store::Row) -> Result<AssignmentRow, StoreError> {
    Ok(AssignmentRow {
        id: store::get(r, "id")?,
        role: store::get(r, "role")?,
        scope: store::get(r, "scope")?,
        granted_by: store::get(r, "granted_by")?,
        granted_at_ms: store::get(r, "granted_at")?,
        expires_at_ms: store::get(r, "expires_at")?,
    })
}

fn policy_from_row(r: &store::Row) -> Result<PolicyLine, StoreError> {
    Ok([
        store::get(r, "v0")?,
        store::get(r, "v1")?,
        store::get(r, "v2")?,
        store::get(r, "v3")?,
    ])
}

// --- the policy version -------------------------------------------------------

/// Moves the policy version, so that every replica rebuilds its enforcer.
pub(super) async fn bump_version(tx: &mut Tx) -> Result<(), StoreError> {
    sqlx::query("UPDATE authz_version SET version = version + 1 WHERE id = 1")
        .execute(&mut **tx)
        .await?;
    Ok(())
}

pub(super) async fn policy_version(store: &Store) -> Result<i64, StoreError> {
    let row = sqlx::query("SELECT version FROM authz_version WHERE id = 1")
        .fetch_one(store.reader())
        .await?;
    store::get(&row, "version")
}

// --- roles --------------------------------------------------------------------

pub(super) async fn role_exists(tx: &mut Tx, code: &str) -> Result<bool, StoreError> {
    let known = sqlx::query("SELECT code FROM roles WHERE code = $1")
        .bind(code)
        .fetch_optional(&mut **tx)
        .await?;
    Ok(known.is_some())
}

/// Inserts a built-in role unless one with its code exists; `true` when inserted.
pub(super) async fn insert_builtin_role(
    tx: &mut Tx,
    code: &str,
    name: &str,
    description: &str,
    privileged: bool,
) -> Result<bool, StoreError> {
    let done = sqlx::query(
        "INSERT INTO roles (code, name, description, privileged, builtin) VALUES ($1, $2, $3, $4, 1) \
         ON CONFLICT (code) DO NOTHING",
    )
    .bind(code)
    .bind(name)
    .bind(description)
    .bind(i64::from(privileged))
    .execute(&mut **tx)
    .await?;
    Ok(done.rows_affected() > 0)
}

/// Whether a role is privileged; `None` for an unknown role.
pub(super) async fn role_privileged(store: &Store, code: &str) -> Result<Option<bool>, StoreError> {
    let row = sqlx::query("SELECT privileged FROM roles WHERE code = $1")
        .bind(code)
        .fetch_optional(store.reader())
        .await?;
    Ok(row
        .map(|r| store::get::<i64>(&r, "privileged"))
        .transpose()?
        .map(|p| p != 0))
}

/// Whether the subject holds a privileged role, in any scope, at `now_ms`.
pub(super) async fn holds_privileged_role(
    store: &Store,
    subject: &str,
    now_ms: i64,
) -> Result<bool, StoreError> {
    let found: Option<i64> = sqlx::query_scalar(
        "SELECT 1 FROM role_assignments a JOIN roles r ON r.code = a.role \
         WHERE a.subject = $1 AND r.privileged = 1 AND (a.expires_at IS NULL OR a.expires_at > $2) LIMIT 1",
    )
    .bind(subject)
    .bind(now_ms)
    .fetch_optional(store.reader())
    .await?;
    Ok(found.is_some())
}

// --- policies -----------------------------------------------------------------

/// The stored built-in `p` lines with their row ids.
pub(super) async fn builtin_policies(tx: &mut Tx) -> Result<Vec<(String, PolicyLine)>, StoreError> {
    let rows = sqlx::query(
        "SELECT id, v0, v1, v2, v3 FROM authz_policies WHERE builtin = 1 AND ptype = 'p'",
    )
    .fetch_all(&mut **tx)
    .await?;
    rows.iter()
        .map(|r| Ok((store::get(r, "id")?, policy_from_row(r)?)))
        .collect()
}

pub(super) async fn delete_policy(tx: &mut Tx, id: &str) -> Result<(), StoreError> {
    sqlx::query("DELETE FROM authz_policies WHERE id = $1")
        .bind(id)
        .execute(&mut **tx)
        .await?;
    Ok(())
}

/// Inserts a built-in `p` line unless the same line is stored.
pub(super) async fn insert_builtin_policy(
    tx: &mut Tx,
    line: &PolicyLine,
) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO authz_policies (id, ptype, v0, v1, v2, v3, builtin) VALUES ($1, 'p', $2, $3, $4, $5, 1) \
         ON CONFLICT (ptype, v0, v1, v2, v3) DO NOTHING",
    )
    .bind(store::new_id())
    .bind(&line[0])
    .bind(&line[1])
    .bind(&line[2])
    .bind(&line[3])
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// Every `p` line, built-in or not.
pub(super) async fn all_policies(store: &Store) -> Result<Vec<PolicyLine>, StoreError> {
    let rows = sqlx::query("SELECT v0, v1, v2, v3 FROM authz_policies WHERE ptype = 'p'")
        .fetch_all(store.reader())
        .await?;
    rows.iter().map(policy_from_row).collect()
}

// --- assignments --------------------------------------------------------------

/// The assignments that stand at `now_ms`.
pub(super) async fn live_groupings(
    store: &Store,
    now_ms: i64,
) -> Result<Vec<Grouping>, StoreError> {
    let rows = sqlx::query(
        "SELECT subject, role, scope, expires_at FROM role_assignments \
         WHERE expires_at IS NULL OR expires_at > $1",
    )
    .bind(now_ms)
    .fetch_all(store.reader())
    .await?;
    rows.iter()
        .map(|r| {
            Ok(Grouping {
                subject: store::get(r, "subject")?,
                role: store::get(r, "role")?,
                scope: store::get(r, "scope")?,
                expires_at_ms: store::get(r, "expires_at")?,
            })
        })
        .collect()
}

/// Inserts an assignment unless the subject already holds the role in the scope;
/// `true` when inserted.
pub(super) async fn insert_assignment(
    tx: &mut Tx,
    a: &AssignmentInsert<'_>,
) -> Result<bool, StoreError> {
    let done = sqlx::query(&format!(
        "INSERT INTO role_assignments ({ASSIGNMENT_COLUMNS}, subject) \
         VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (subject, role, scope) DO NOTHING"
    ))
    .bind(a.id)
    .bind(a.role)
    .bind(a.scope)
    .bind(a.granted_by)
    .bind(a.granted_at_ms)
    .bind(a.expires_at_ms)
    .bind(a.subject)
    .execute(&mut **tx)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// The assignment of this role in this scope to this subject.
pub(super) async fn find_held(
    tx: &mut Tx,
    subject: &str,
    role: &str,
    scope: &str,
) -> Result<AssignmentRow, StoreError> {
    let row = sqlx::query(&format!(
        "SELECT {ASSIGNMENT_COLUMNS} FROM role_assignments WHERE subject = $1 AND role = $2 AND scope = $3"
    ))
    .bind(subject)
    .bind(role)
    .bind(scope)
    .fetch_one(&mut **tx)
    .await?;
    assignment_from_row(&row)
}

pub(super) async fn set_expiry(
    tx: &mut Tx,
    id: &str,
    expires_at_ms: Option<i64>,
) -> Result<(), StoreError> {
    sqlx::query("UPDATE role_assignments SET expires_at = $1 WHERE id = $2")
        .bind(expires_at_ms)
        .bind(id)
        .execute(&mut **tx)
        .await?;
    Ok(())
}

pub(super) async fn find_assignment(tx: &mut Tx, id: &str) -> Result<AssignmentRow, StoreError> {
    let row = sqlx::query(&format!(
        "SELECT {ASSIGNMENT_COLUMNS} FROM role_assignments WHERE id = $1"
    ))
    .bind(id)
    .fetch_one(&mut **tx)
    .await?;
    assignment_from_row(&row)
}

/// The subject's assignments, expired ones included, oldest first.
pub(super) async fn list_assignments(
    store: &Store,
    subject: &str,
) -> Result<Vec<AssignmentRow>, StoreError> {
    let rows = sqlx::query(&format!(
        "SELECT {ASSIGNMENT_COLUMNS} FROM role_assignments WHERE subject = $1 ORDER BY granted_at, id"
    ))
    .bind(subject)
    .fetch_all(store.reader())
    .await?;
    rows.iter().map(assignment_from_row).collect()
}

/// Deletes one of the subject's assignments; its (role, scope), or `None` when the
/// subject has no assignment with this id.
pub(super) async fn delete_assignment(
    tx: &mut Tx,
    id: &str,
    subject: &str,
) -> Result<Option<AssignmentRow>, StoreError> {
    let row = sqlx::query(&format!(
        "DELETE FROM role_assignments WHERE id = $1 AND subject = $2 RETURNING {ASSIGNMENT_COLUMNS}"
    ))
    .bind(id)
    .bind(subject)
    .fetch_optional(&mut **tx)
    .await?;
    row.map(|r| assignment_from_row(&r)).transpose()
}

/// Deletes every assignment of the subject; the rows deleted.
pub(super) async fn delete_all_assignments(
    tx: &mut Tx,
    subject: &str,
) -> Result<Vec<AssignmentRow>, StoreError> {
    let rows = sqlx::query(&format!(
        "DELETE FROM role_assignments WHERE subject = $1 RETURNING {ASSIGNMENT_COLUMNS}"
    ))
    .bind(subject)
    .fetch_all(&mut **tx)
    .await?;
    rows.iter().map(assignment_from_row).collect()
}
