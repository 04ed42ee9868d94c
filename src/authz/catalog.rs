//! The built-in roles, and seeding them and `policies/policy.csv` into the store.

use super::AuthzError;
use crate::crypto::AuditKey;
use crate::store::{self, Store};

pub const MODEL: &str = include_str!("../../policies/model.conf");
pub const POLICY_CSV: &str = include_str!("../../policies/policy.csv");

/// (code, name, description, privileged)
pub const BUILTIN_ROLES: &[(&str, &str, &str, bool)] = &[
    (
        "hub-admin",
        "Hub administrator",
        "Everything: people, orgs, roles, clients and the audit log",
        true,
    ),
    (
        "registrar",
        "Registrar",
        "Creates and updates people and orgs (rosters, lifecycle)",
        true,
    ),
    (
        "compliance-officer",
        "Compliance officer",
        "Reads people and orgs to follow training compliance",
        false,
    ),
    (
        "approver",
        "Approver",
        "Reads people and grants roles within their org (e.g. a department chair)",
        false,
    ),
    (
        "auditor",
        "Auditor",
        "Reads the audit log, people and orgs; changes nothing",
        false,
    ),
];

/// The `p` lines of `policy.csv`: (role, domain, object, action).
pub fn builtin_policies() -> Vec<[String; 4]> {
    POLICY_CSV
        .lines()
        .map(str::trim)
        .filter(|l| l.starts_with("p,"))
        .filter_map(|l| {
            let f: Vec<String> = l.split(',').map(|s| s.trim().to_string()).collect();
            (f.len() == 5).then(|| [f[1].clone(), f[2].clone(), f[3].clone(), f[4].clone()])
        })
        .collect()
}

/// Makes the stored built-in roles and policies match this release's files.
/// Idempotent; bumps the policy version only when something changed.
pub async fn seed_builtin(
    store: &Store,
    audit_key: &AuditKey,
    now_ms: i64,
) -> Result<(), AuthzError> {
    let mut tx = store.begin().await?;
    let mut changed = false;
    for (code, name, description, privileged) in BUILTIN_ROLES {
        let done = sqlx::query(
            "INSERT INTO roles (code, name, description, privileged, builtin) VALUES ($1, $2, $3, $4, 1) \
             ON CONFLICT (code) DO NOTHING",
        )
        .bind(*code)
        .bind(*name)
        .bind(*description)
        .bind(i64::from(*privileged))
        .execute(&mut *tx)
        .await?;
        changed |= done.rows_affected() > 0;
    }
    let wanted = builtin_policies();
    let rows = sqlx::query(
        "SELECT id, v0, v1, v2, v3 FROM authz_policies WHERE builtin = 1 AND ptype = 'p'",
    )
    .fetch_all(&mut *tx)
    .await?;
    let mut have = Vec::new();
    for r in &rows {
        let line = [
            store::get::<String>(r, "v0")?,
            store::get::<String>(r, "v1")?,
            store::get::<String>(r, "v2")?,
            store::get::<String>(r, "v3")?,
        ];
        if !wanted.contains(&line) {
            sqlx::query("DELETE FROM authz_policies WHERE id = $1")
                .bind(store::get::<String>(r, "id")?)
                .execute(&mut *tx)
                .await?;
            changed = true;
        }
        have.push(line);
    }
    for line in wanted.iter().filter(|l| !have.contains(l)) {
        sqlx::query(
            "INSERT INTO authz_policies (id, ptype, v0, v1, v2, v3, builtin) VALUES ($1, 'p', $2, $3, $4, $5, 1) \
             ON CONFLICT (ptype, v0, v1, v2, v3) DO NOTHING",
        )
        .bind(store::new_id())
        .bind(&line[0])
        .bind(&line[1])
        .bind(&line[2])
        .bind(&line[3])
        .execute(&mut *tx)
        .await?;
        changed = true;
    }
    if changed {
        super::enforcer::bump_version(&mut tx).await?;
        let entry = crate::audit::Entry {
            action: "authz.seed",
            outcome: crate::audit::Outcome::Success,
            target_kind: "policy",
            target_id: "builtin",
            details: serde_json::json!({ "roles": BUILTIN_ROLES.len(), "policies": wanted.len() }),
        };
        crate::audit::record(
            &mut tx,
            audit_key,
            now_ms,
            &crate::audit::Origin::system("seed"),
            entry,
        )
        .await?;
    }
    tx.commit().await.map_err(store::StoreError::from)?;
    Ok(())
}

/// Whether a person holds a privileged role now (any scope): such a person signs in
/// with a second factor (`[mfa] privileged_roles`).
pub async fn holds_privileged_role(
    store: &Store,
    person_id: &str,
    now_ms: i64,
) -> Result<bool, AuthzError> {
    let found: Option<i64> = sqlx::query_scalar(
        "SELECT 1 FROM role_assignments a JOIN roles r ON r.code = a.role \
         WHERE a.subject = $1 AND r.privileged = 1 AND (a.expires_at IS NULL OR a.expires_at > $2) LIMIT 1",
    )
    .bind(super::Subject::Person(person_id.to_string()).key())
    .bind(now_ms)
    .fetch_optional(store.reader())
    .await?;
    Ok(found.is_some())
}

/// Whether a role is privileged (`None` for an unknown role). Granting a privileged
/// role takes a hub-wide `roles.write`: an approver of one department must not be
/// able to make someone a hub administrator there.
pub async fn role_is_privileged(store: &Store, code: &str) -> Result<Option<bool>, AuthzError> {
    let row = sqlx::query("SELECT privileged FROM roles WHERE code = $1")
        .bind(code)
        .fetch_optional(store.reader())
        .await?;
    Ok(row
        .map(|r| store::get::<i64>(&r, "privileged"))
        .transpose()?
        .map(|p| p != 0))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn policy_file_parses_into_lines_for_every_builtin_role() {
        let lines = builtin_policies();
        for (code, ..) in BUILTIN_ROLES {
            assert!(
                lines.iter().any(|l| l[0] == *code),
                "{code} has no policy line"
            );
        }
    }
}
