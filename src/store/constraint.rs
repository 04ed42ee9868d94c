//! Which unique constraint a duplicate hit, named the same on both databases.
//!
//! PostgreSQL reports the constraint's name (`people_sourced_id_key`, or an index's
//! name); SQLite only a message, `UNIQUE constraint failed: people.sourced_id`. One
//! table maps both to a stable name (`people.sourced_id`), so a caller that reacts
//! to one particular duplicate, and the conflict a client is told about, do not
//! depend on the backend (the same request gets the same answer on both).

/// (stable name, PostgreSQL constraint or index names, SQLite's column list).
/// Constraint names are PostgreSQL's defaults for the migrations' `UNIQUE` and
/// `PRIMARY KEY` clauses (`{table}_{columns}_key`, `{table}_pkey`); a constraint
/// missing here is reported by its backend's own name.
const UNIQUE_CONSTRAINTS: &[(&str, &[&str], &str)] = &[
    ("orgs.sourced_id", &["orgs_sourced_id_key"], "orgs.sourced_id"),
    ("people.sourced_id", &["people_sourced_id_key"], "people.sourced_id"),
    ("people.username", &["people_username_key"], "people.username"),
    (
        "person_identifiers.value",
        &["person_identifiers_id_type_value_key"],
        "person_identifiers.id_type, person_identifiers.value",
    ),
    (
        "person_identifiers.id_type",
        &["person_identifiers_pkey"],
        "person_identifiers.person_id, person_identifiers.id_type",
    ),
    (
        "affiliations.role",
        &["affiliations_person_id_org_id_role_key"],
        "affiliations.person_id, affiliations.org_id, affiliations.role",
    ),
    (
        "authz_policies.rule",
        &["authz_policies_ptype_v0_v1_v2_v3_key"],
        "authz_policies.ptype, authz_policies.v0, authz_policies.v1, authz_policies.v2, authz_policies.v3",
    ),
    (
        "role_assignments.assignment",
        &["role_assignments_subject_role_scope_key"],
        "role_assignments.subject, role_assignments.role, role_assignments.scope",
    ),
    ("roles.code", &["roles_pkey"], "roles.code"),
    ("clients.id", &["clients_pkey"], "clients.id"),
    ("audit_events.id", &["audit_events_id_key"], "audit_events.id"),
    ("signing_keys.kid", &["signing_keys_pkey"], "signing_keys.kid"),
    // One active and one next key per algorithm: two partial indexes on one column,
    // which SQLite names alike.
    (
        "signing_keys.alg",
        &["signing_keys_one_active", "signing_keys_one_next"],
        "signing_keys.alg",
    ),
    (
        "sessions.token_digest",
        &["sessions_token_digest_key"],
        "sessions.token_digest",
    ),
    (
        "consents.client_id",
        &["consents_pkey"],
        "consents.person_id, consents.client_id",
    ),
    ("used_jtis.jti", &["used_jtis_pkey"], "used_jtis.jti"),
    (
        "federated_identities.subject",
        &["federated_identities_pkey"],
        "federated_identities.idp_id, federated_identities.subject",
    ),
    (
        "passkeys.credential_id",
        &["passkeys_credential_id_key"],
        "passkeys.credential_id",
    ),
];

/// The stable name of the unique constraint `e` violated, or `None` when `e` is not
/// a unique violation.
pub fn unique_violation(e: &sqlx::Error) -> Option<&str> {
    let sqlx::Error::Database(db) = e else {
        return None;
    };
    if !db.is_unique_violation() {
        return None;
    }
    if let Some(name) = db.constraint() {
        return Some(
            UNIQUE_CONSTRAINTS
                .iter()
                .find(|(_, pg, _)| pg.contains(&name))
                .map_or(name, |(stable, _, _)| stable),
        );
    }
    let columns = db
        .message()
        .strip_prefix("UNIQUE constraint failed: ")
        .unwrap_or("key");
    Some(
        UNIQUE_CONSTRAINTS
            .iter()
            .find(|(_, _, sqlite)| *sqlite == columns)
            .map_or(columns, |(stable, _, _)| stable),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stable_names_are_unique_and_each_backend_name_maps_once() {
        let mut stable: Vec<_> = UNIQUE_CONSTRAINTS.iter().map(|c| c.0).collect();
        stable.sort_unstable();
        stable.dedup();
        assert_eq!(stable.len(), UNIQUE_CONSTRAINTS.len());
        let mut pg: Vec<_> = UNIQUE_CONSTRAINTS.iter().flat_map(|c| c.1).collect();
        let n = pg.len();
        pg.sort_unstable();
        pg.dedup();
        assert_eq!(pg.len(), n);
        let mut sqlite: Vec<_> = UNIQUE_CONSTRAINTS.iter().map(|c| c.2).collect();
        sqlite.sort_unstable();
        sqlite.dedup();
        assert_eq!(sqlite.len(), UNIQUE_CONSTRAINTS.len());
    }
}
