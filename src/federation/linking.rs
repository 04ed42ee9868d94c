//! Account linking: which directory person an upstream sign-in is.
//!
//! The IdP's configured link attribute (eduPersonPrincipalName, mail, employeeNumber,
//! the NameID …) is looked up first among remembered links, then in the directory by
//! the configured field. Exactly one person must match: two is an error for the help
//! desk, never a guess; none is refused, or (when the IdP allows it) creates the person
//! in status `pending`. A sign-in never creates a second person for someone who exists.

use super::saml_response::{AssertedAttribute, Verified};
use super::FederationError;
use crate::audit::{self, Entry, Origin, Outcome};
use crate::config::SamlIdpConfig;
use crate::directory::{self, Person, PersonInput};
use crate::store::StoreError;
use crate::AppState;

/// Well-known attribute names: LDAP/eduPerson friendly names, their OIDs (SAML
/// V2.0 X.500/LDAP attribute profile, as Shibboleth and Okta send them), and the claim
/// URIs ADFS and Entra send.
const ALIASES: &[(&str, &[&str])] = &[
    (
        "eduPersonPrincipalName",
        &["urn:oid:1.3.6.1.4.1.5923.1.1.1.6"],
    ),
    (
        "eduPersonAffiliation",
        &["urn:oid:1.3.6.1.4.1.5923.1.1.1.1"],
    ),
    (
        "eduPersonScopedAffiliation",
        &["urn:oid:1.3.6.1.4.1.5923.1.1.1.9"],
    ),
    (
        "mail",
        &[
            "urn:oid:0.9.2342.19200300.100.1.3",
            "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/emailaddress",
            "email",
        ],
    ),
    (
        "givenName",
        &[
            "urn:oid:2.5.4.42",
            "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/givenname",
        ],
    ),
    (
        "sn",
        &[
            "urn:oid:2.5.4.4",
            "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/surname",
            "surname",
        ],
    ),
    ("employeeNumber", &["urn:oid:2.16.840.1.113730.3.1.3"]),
    ("uid", &["urn:oid:0.9.2342.19200300.100.1.1"]),
    (
        "upn",
        &["http://schemas.xmlsoap.org/ws/2005/05/identity/claims/upn"],
    ),
];

fn names_for(wanted: &str) -> Vec<&str> {
    let mut out = vec![wanted];
    for (friendly, others) in ALIASES {
        if *friendly == wanted || others.contains(&wanted) {
            out.push(friendly);
            out.extend_from_slice(others);
        }
    }
    out
}

/// The values of the attribute called `wanted` (by Name, FriendlyName or alias).
pub fn attribute_values<'a>(attrs: &'a [AssertedAttribute], wanted: &str) -> Vec<&'a str> {
    let names = names_for(wanted);
    attrs
        .iter()
        .filter(|a| {
            names.contains(&a.name.as_str())
                || a.friendly_name
                    .as_deref()
                    .is_some_and(|f| names.contains(&f))
        })
        .flat_map(|a| a.values.iter().map(String::as_str))
        .filter(|v| !v.trim().is_empty())
        .collect()
}

/// The value that identifies the person at this IdP.
pub fn link_value(cfg: &SamlIdpConfig, v: &Verified) -> Result<String, FederationError> {
    let value = if cfg.link.attribute == "NameID" {
        v.name_id.clone()
    } else {
        attribute_values(&v.attributes, &cfg.link.attribute)
            .first()
            .map(|s| s.to_string())
    };
    let value = value
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty() && s.len() <= 256)
        .ok_or_else(|| FederationError::MissingAttribute(cfg.link.attribute.clone()))?;
    // A scoped value (user@domain: mail, eduPersonPrincipalName) must be in this IdP's
    // own domains when it has any: otherwise any trusted IdP could assert anyone's
    // address and become them (eduPerson §2.2.6: the scope names the asserting domain).
    if let Some((_, domain)) = value.rsplit_once('@') {
        let ours = cfg.email_domains.is_empty()
            || cfg
                .email_domains
                .iter()
                .any(|d| d.eq_ignore_ascii_case(domain));
        if !ours {
            return Err(FederationError::OutOfScope(
                domain.chars().take(100).collect(),
            ));
        }
    }
    Ok(value)
}

/// The directory person this sign-in is; links them on first use. Active people
/// only: others get an error that says their status.
pub async fn resolve_person(
    app: &AppState,
    cfg: &SamlIdpConfig,
    v: &Verified,
    origin: &Origin,
) -> Result<Person, FederationError> {
    let value = link_value(cfg, v)?;
    let subject = if matches!(cfg.link.person_field.as_str(), "username" | "email") {
        value.to_lowercase()
    } else {
        value.clone()
    };
    let now = app.clock().now_ms();
    let linked: Option<String> = sqlx::query_scalar(
        "SELECT person_id FROM federated_identities WHERE idp_id = $1 AND subject = $2",
    )
    .bind(&cfg.id)
    .bind(&subject)
    .fetch_optional(app.store().reader())
    .await?;
    let person = match linked {
        Some(id) => {
            sqlx::query("UPDATE federated_identities SET last_used_at = $1 WHERE idp_id = $2 AND subject = $3")
                .bind(now)
                .bind(&cfg.id)
                .bind(&subject)
                .execute(app.store().writer())
                .await?;
            directory::get_person_core(app.store(), &id).await?
        }
        None => {
            let mut found =
                directory::find_people_by_field(app.store(), &cfg.link.person_field, &value)
                    .await?;
            let field = cfg.link.person_field.clone();
            match found.len() {
                1 => {
                    let p = found.remove(0);
                    link(app, cfg, &subject, &p.id, origin, "matched").await?;
                    p
                }
                0 if cfg.just_in_time => {
                    let p = create_pending(app, cfg, v, &value, origin).await?;
                    link(app, cfg, &subject, &p.id, origin, "created").await?;
                    p
                }
                0 => {
                    return Err(FederationError::NoMatch {
                        field: describe(&field),
                        value,
                    })
                }
                _ => {
                    return Err(FederationError::Ambiguous {
                        field: describe(&field),
                        value,
                    })
                }
            }
        }
    };
    match person.status.as_str() {
        "active" => Ok(person),
        "pending" => Err(FederationError::Pending),
        other => Err(FederationError::Inactive(other.to_string())),
    }
}

fn describe(field: &str) -> String {
    match field {
        "sourced_id" => "sourcedId".into(),
        "email" => "e-mail address".into(),
        other => other
            .strip_prefix("identifier:")
            .map(|t| format!("{t} identifier"))
            .unwrap_or_else(|| other.to_string()),
    }
}

async fn link(
    app: &AppState,
    cfg: &SamlIdpConfig,
    subject: &str,
    person_id: &str,
    origin: &Origin,
    how: &str,
) -> Result<(), FederationError> {
    let now = app.clock().now_ms();
    let mut tx = app.store().begin().await?;
    // Two first sign-ins at once: the first link stands (same person either way).
    let inserted = sqlx::query(
        "INSERT INTO federated_identities (idp_id, subject, person_id, created_at, last_used_at)
         VALUES ($1, $2, $3, $4, $4) ON CONFLICT (idp_id, subject) DO NOTHING",
    )
    .bind(&cfg.id)
    .bind(subject)
    .bind(person_id)
    .bind(now)
    .execute(&mut *tx)
    .await?
    .rows_affected();
    if inserted == 1 {
        audit::record(
            &mut tx,
            app.store().audit_key(),
            now,
            origin,
            Entry {
                action: "federation.link",
                outcome: Outcome::Success,
                target_kind: "person",
                target_id: person_id,
                details: serde_json::json!({ "idp": cfg.id, "how": how, "field": cfg.link.person_field }),
            },
        )
        .await?;
    }
    tx.commit().await.map_err(StoreError::from)?;
    Ok(())
}

/// eduPersonAffiliation (eduPerson §2.2.1) → directory kinds.
fn kinds_from(affiliations: &[&str]) -> Vec<String> {
    let mut kinds: Vec<String> = affiliations
        .iter()
        .filter_map(|a| match a.to_ascii_lowercase().as_str() {
            "student" => Some("student"),
            "faculty" => Some("teacher"),
            "staff" | "employee" => Some("staff"),
            _ => None,
        })
        .map(str::to_string)
        .collect();
    kinds.sort();
    kinds.dedup();
    if kinds.is_empty() {
        kinds.push("staff".into());
    }
    kinds
}

async fn create_pending(
    app: &AppState,
    cfg: &SamlIdpConfig,
    v: &Verified,
    value: &str,
    origin: &Origin,
) -> Result<Person, FederationError> {
    let first = |name: &str| {
        attribute_values(&v.attributes, name)
            .first()
            .map(|s| s.trim().to_string())
    };
    let map = &cfg.attributes;
    let given = first(&map.given_name)
        .ok_or_else(|| FederationError::MissingAttribute(map.given_name.clone()))?;
    let family = first(&map.family_name)
        .ok_or_else(|| FederationError::MissingAttribute(map.family_name.clone()))?;
    let mut input = PersonInput {
        // Stable for this IdP and value: a retry after a failure finds the same record.
        sourced_id: format!("fed-{}-{}", cfg.id, &super::digest_hex(value)[..16]),
        kinds: kinds_from(&attribute_values(&v.attributes, &map.affiliation)),
        given_name: given,
        family_name: family,
        middle_name: None,
        preferred_name: None,
        email: first(&map.email).map(|e| e.to_lowercase()),
        username: None,
        status: Some("pending".into()),
        identifiers: Default::default(),
        affiliations: Vec::new(),
    };
    match cfg.link.person_field.as_str() {
        "username" => input.username = Some(value.to_lowercase()),
        "email" => input.email = Some(value.to_lowercase()),
        "sourced_id" => input.sourced_id = value.to_string(),
        f => {
            if let Some(kind) = f.strip_prefix("identifier:") {
                input
                    .identifiers
                    .insert(kind.to_string(), value.to_string());
            }
        }
    }
    let created =
        directory::upsert_person(app.store(), app.clock().now_ms(), origin, None, input).await?;
    Ok(created.record)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn attr(name: &str, friendly: Option<&str>, v: &str) -> AssertedAttribute {
        AssertedAttribute {
            name: name.into(),
            friendly_name: friendly.map(str::to_string),
            values: vec![v.into()],
        }
    }

    #[test]
    fn attributes_are_found_by_oid_friendly_name_or_claim_uri() {
        let attrs = vec![
            attr(
                "urn:oid:1.3.6.1.4.1.5923.1.1.1.6",
                None,
                "ana@riverside.edu",
            ),
            attr(
                "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/emailaddress",
                None,
                "a@x.org",
            ),
            attr("custom", Some("employeeNumber"), "E-7"),
        ];
        assert_eq!(
            attribute_values(&attrs, "eduPersonPrincipalName"),
            ["ana@riverside.edu"]
        );
        assert_eq!(attribute_values(&attrs, "mail"), ["a@x.org"]);
        assert_eq!(attribute_values(&attrs, "employeeNumber"), ["E-7"]);
        assert!(attribute_values(&attrs, "sn").is_empty());
    }

    #[test]
    fn affiliations_become_kinds() {
        assert_eq!(
            kinds_from(&["faculty", "member", "employee"]),
            ["staff", "teacher"]
        );
        assert_eq!(kinds_from(&["affiliate"]), ["staff"]);
    }
}
