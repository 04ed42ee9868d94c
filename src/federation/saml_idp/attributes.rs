//! The attributes a downstream app receives, as its registration maps them
//! (`saml_apps.service_providers.attributes`): directory fields, eduPersonAffiliation
//! values, and the person's live RBAC roles. Only what is mapped is released.

use std::collections::BTreeMap;

use super::response::Attribute;
use super::SamlIdpError;
use crate::directory::Person;
use crate::AppState;

/// Directory kinds → eduPersonAffiliation (eduPerson §2.2.1); everyone active is a
/// `member` (the eduPerson definition: "in good standing").
fn affiliations(person: &Person) -> Vec<String> {
    let mut out: Vec<String> = person
        .kinds
        .iter()
        .filter_map(|k| match k.as_str() {
            "student" => Some("student"),
            "teacher" | "clinical_instructor" => Some("faculty"),
            "staff" | "administrator" => Some("staff"),
            "guardian" => Some("affiliate"),
            _ => None,
        })
        .map(str::to_string)
        .collect();
    if out.iter().any(|a| a == "faculty" || a == "staff") {
        out.push("employee".into());
    }
    if person.status == "active" {
        out.push("member".into());
    }
    out.sort();
    out.dedup();
    out
}

/// Live role assignments as `role` (hub-wide) or `role@orgSourcedId`.
async fn roles(app: &AppState, person: &Person) -> Result<Vec<String>, SamlIdpError> {
    let mut out: Vec<String> =
        crate::authz::live_roles(app.store(), &person.id, app.clock().now_ms())
            .await
            .map_err(|e| SamlIdpError::Signing(format!("reading roles: {e}")))?
            .into_iter()
            .map(|(role, org)| match org {
                Some(o) => format!("{role}@{o}"),
                None => role,
            })
            .collect();
    out.sort();
    out.dedup();
    Ok(out)
}

/// The mapped attributes for this person; empty values are left out (SAML core
/// §2.7.3.1 allows an attribute without values, but apps read that as "cleared").
pub async fn release(
    app: &AppState,
    person: &Person,
    mapping: &BTreeMap<String, String>,
) -> Result<Vec<Attribute>, SamlIdpError> {
    let mut out = Vec::new();
    for (name, source) in mapping {
        let one = |v: Option<&String>| v.cloned().into_iter().collect::<Vec<_>>();
        let values = match source.as_str() {
            "email" => one(person.email.as_ref()),
            "username" => one(person.username.as_ref()),
            "given_name" => vec![person.given_name.clone()],
            "family_name" => vec![person.family_name.clone()],
            "display_name" => vec![format!(
                "{} {}",
                person
                    .preferred_name
                    .as_deref()
                    .unwrap_or(&person.given_name),
                person.family_name
            )],
            "sourced_id" => vec![person.sourced_id.clone()],
            "affiliation" => affiliations(person),
            "kinds" => person.kinds.clone(),
            "roles" => roles(app, person).await?,
            "orgs" => person
                .affiliations
                .iter()
                .map(|a| a.org_sourced_id.clone())
                .collect(),
            other => match other.strip_prefix("identifier:") {
                Some(t) => one(person.identifiers.get(t)),
                None => Vec::new(),
            },
        };
        let values: Vec<String> = values.into_iter().filter(|v| !v.is_empty()).collect();
        if !values.is_empty() {
            out.push(Attribute {
                name: name.clone(),
                values,
            });
        }
    }
    Ok(out)
}
