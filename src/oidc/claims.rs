//! Claims about a person, released by scope (OIDC Core §5.4): `profile`, `email`,
//! `phone`, `address`, and the hub's own `roles` (RBAC assignments) and `orgs` (directory affiliations);
//! district identifiers only with `identifiers`, for clients allowed them.

use serde_json::{json, Map, Value};

use super::claims_request::claim_scope;
use super::{Client, OidcError};
use crate::directory::Person;
use crate::AppState;

/// The claims released for `scopes`, plus the claims in `requested` (named by the
/// `claims` parameter for this place, OIDC Core §5.5) whose scope the client is
/// registered for (consent covered them at authorization, `claims_request`): only
/// those, not the rest of their scope.
pub async fn person_claims(
    app: &AppState,
    person: &Person,
    scopes: &[String],
    client: &Client,
    requested: &[String],
) -> Result<Map<String, Value>, OidcError> {
    let mut extra: Vec<&str> = requested
        .iter()
        .filter_map(|c| claim_scope(c))
        .filter(|s| !scopes.iter().any(|x| x == s) && client.scopes.iter().any(|x| x == s))
        .collect();
    extra.sort_unstable();
    extra.dedup();
    let mut c = scope_claims(app, person, scopes, &extra, client).await?;
    // Claims of the extra scopes that were not asked for by name stay out.
    c.retain(|name, _| {
        claim_scope(name).is_none_or(|s| !extra.contains(&s)) || requested.iter().any(|r| r == name)
    });
    Ok(c)
}

async fn scope_claims(
    app: &AppState,
    person: &Person,
    scopes: &[String],
    extra: &[&str],
    client: &Client,
) -> Result<Map<String, Value>, OidcError> {
    let has = |s: &str| scopes.iter().any(|x| x == s) || extra.contains(&s);
    let mut c = Map::new();
    // The caller may hold only the person's own fields (`get_person_core`); kinds,
    // affiliations and identifiers are loaded here when a scope releases them.
    let detailed;
    let details = if has("roles") || has("identifiers") {
        detailed = crate::directory::get_person(app.store(), &person.id)
            .await
            .map_err(OidcError::server_error)?;
        &detailed
    } else {
        person
    };
    if has("profile") {
        let display = person
            .preferred_name
            .as_deref()
            .unwrap_or(&person.given_name);
        c.insert(
            "name".into(),
            json!(format!("{display} {}", person.family_name)),
        );
        c.insert("given_name".into(), json!(person.given_name));
        c.insert("family_name".into(), json!(person.family_name));
        if let Some(m) = &person.middle_name {
            c.insert("middle_name".into(), json!(m));
        }
        if let Some(n) = &person.preferred_name {
            c.insert("nickname".into(), json!(n));
        }
        if let Some(u) = &person.username {
            c.insert("preferred_username".into(), json!(u));
        }
        c.insert(
            "updated_at".into(),
            json!(person.updated_at_ms.div_euclid(1000)),
        );
    }
    if has("email") {
        if let Some(e) = &person.email {
            c.insert("email".into(), json!(e));
            // Addresses come from the district's systems of record, not from the person.
            c.insert("email_verified".into(), json!(true));
        }
    }
    if has("phone") {
        if let Some(p) = &person.phone_number {
            c.insert("phone_number".into(), json!(p));
            c.insert(
                "phone_number_verified".into(),
                json!(person.phone_number_verified),
            );
        }
    }
    if has("address") {
        if let Some(a) = &person.address {
            c.insert("address".into(), a.to_claim());
        }
    }
    if has("roles") {
        let roles: Vec<Value> =
            crate::authz::live_roles(app.store(), &person.id, app.clock().now_ms())
                .await
                .map_err(OidcError::server_error)?
                .into_iter()
                .map(|(role, org)| json!({ "role": role, "org": org }))
                .collect();
        c.insert("roles".into(), Value::Array(roles));
        c.insert("kinds".into(), json!(details.kinds));
        let orgs: Vec<Value> = details
            .affiliations
            .iter()
            .map(|a| json!({ "id": a.org_id, "sourcedId": a.org_sourced_id, "role": a.role, "primary": a.primary }))
            .collect();
        c.insert("orgs".into(), Value::Array(orgs));
    }
    if has("identifiers") && client.settings.district_identifiers {
        c.insert("district_identifiers".into(), json!(details.identifiers));
    }
    Ok(c)
}
