//! The built-in roles, and seeding them and `policies/policy.csv` into the store.

use super::repo;
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
        changed |= repo::insert_builtin_role(&mut tx, code, name, description, *privileged).await?;
    }
    let wanted = builtin_policies();
    let mut have = Vec::new();
    for (id, line) in repo::builtin_policies(&mut tx).await? {
        if !wanted.contains(&line) {
            repo::delete_policy(&mut tx, &id).await?;
            changed = true;
        }
        have.push(line);
    }
    for line in wanted.iter().filter(|l| !have.contains(l)) {
        repo::insert_builtin_policy(&mut tx, line).await?;
        changed = true;
    }
    if changed {
        repo::bump_version(&mut tx).await?;
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
    let subject = super::Subject::Person(person_id.to_string()).key();
    Ok(repo::holds_privileged_role(store, &subject, now_ms).await?)
}

/// Whether a role is privileged (`None` for an unknown role). Granting a privileged
/// role takes a hub-wide `roles.write`: an approver of one department must not be
/// able to make someone a hub administrator there.
pub async fn role_is_privileged(store: &Store, code: &str) -> Result<Option<bool>, AuthzError> {
    Ok(repo::role_privileged(store, code).await?)
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
