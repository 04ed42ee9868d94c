//! Account linking: which directory person an upstream sign-in is.
//!
//! The IdP's configured link value (a SAML attribute such as eduPersonPrincipalName or
//! the NameID; an OpenID Connect claim such as `email`) is looked up first among
//! remembered links, then in the directory by the configured field. Exactly one person
//! must match: two is an error for the help desk, never a guess; none is refused, or
//! (when the IdP allows it) creates the person in status `pending`. A sign-in never
//! creates a second person for someone who exists.

use super::saml_response::{AssertedAttribute, Verified};
use super::FederationError;
use crate::audit::{self, Entry, Origin, Outcome};
use crate::config::{OidcIdpConfig, SamlIdpConfig};
use crate::directory::{self, Person, PersonInput};
use crate::store::StoreError;
use crate::AppState;

/// One IdP's linking rules, from its SAML or OpenID Connect configuration.
pub struct LinkPolicy<'a> {
    pub idp_id: &'a str,
    /// The attribute or claim that finds the person.
    pub link_name: &'a str,
    pub person_field: &'a str,
    pub email_domains: &'a [String],
    pub just_in_time: bool,
    /// Attribute/claim names of a new person's details; empty: not asserted.
    pub email: &'a str,
    pub given_name: &'a str,
    pub family_name: &'a str,
    pub affiliation: &'a str,
}

impl<'a> LinkPolicy<'a> {
    pub fn saml(cfg: &'a SamlIdpConfig) -> Self {
        LinkPolicy {
            idp_id: &cfg.id,
            link_name: &cfg.link.attribute,
            person_field: &cfg.link.person_field,
            email_domains: &cfg.email_domains,
            just_in_time: cfg.just_in_time,
            email: &cfg.attributes.email,
            given_name: &cfg.attributes.given_name,
            family_name: &cfg.attributes.family_name,
            affiliation: &cfg.attributes.affiliation,
        }
    }

    pub fn oidc(cfg: &'a OidcIdpConfig) -> Self {
        LinkPolicy {
            idp_id: &cfg.id,
            link_name: &cfg.link.claim,
            person_field: &cfg.link.person_field,
            email_domains: &cfg.email_domains,
            just_in_time: cfg.just_in_time,
            email: &cfg.attributes.email,
            given_name: &cfg.attributes.given_name,
            family_name: &cfg.attributes.family_name,
            affiliation: &cfg.attributes.affiliation,
        }
    }
}

/// What an upstream IdP asserted about the person, by attribute or claim name.
pub trait Asserted {
    /// The non-blank values of `name`.
    fn values(&self, name: &str) -> Vec<&str>;
    /// The IdP's stable, never reassigned id of the person, when it has one that is not
    /// the link value (OpenID Connect Core §5.7: only `iss` + `sub` are). A remembered
    /// link is keyed by it, so a later change of the link value keeps the person.
    fn stable_subject(&self) -> Option<&str> {
        None
    }
}

impl Asserted for Verified {
    fn values(&self, name: &str) -> Vec<&str> {
        if name == "NameID" {
            return self.name_id.as_deref().into_iter().collect();
        }
        attribute_values(&self.attributes, name)
    }
}

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
pub fn link_value(
    policy: &LinkPolicy<'_>,
    asserted: &(dyn Asserted + Sync),
) -> Result<String, FederationError> {
    let value = asserted
        .values(policy.link_name)
        .first()
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty() && s.len() <= 256)
        .ok_or_else(|| FederationError::MissingAttribute(policy.link_name.to_string()))?;
    // A scoped value (user@domain: mail, eduPersonPrincipalName, an OIDC email) must be
    // in this IdP's own domains when it has any: otherwise any trusted IdP could assert
    // anyone's address and become them (eduPerson §2.2.6: the scope names the asserting
    // domain).
    if let Some((_, domain)) = value.rsplit_once('@') {
        let ours = policy.email_domains.is_empty()
            || policy
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
    policy: &LinkPolicy<'_>,
    asserted: &(dyn Asserted + Sync),
    origin: &Origin,
) -> Result<Person, FederationError> {
    let value = link_value(policy, asserted)?;
    let subject = match asserted.stable_subject() {
        // Kept apart from link values, which an IdP could set to the same text.
        Some(sub) => format!("sub:{sub}"),
        None if matches!(policy.person_field, "username" | "email") => value.to_lowercase(),
        None => value.clone(),
    };
    let now = app.clock().now_ms();
    let linked: Option<String> = sqlx::query_scalar(
        "SELECT person_id FROM federated_identities WHERE idp_id = $1 AND subject = $2",
    )
    .bind(policy.idp_id)
    .bind(&subject)
    .fetch_optional(app.store().reader())
    .await?;
    let person = match linked {
        Some(id) => {
            sqlx::query("UPDATE federated_identities SET last_used_at = $1 WHERE idp_id = $2 AND subject = $3")
                .bind(now)
                .bind(policy.idp_id)
                .bind(&subject)
                .execute(app.store().writer())
                .await?;
            directory::get_person_core(app.store(), &id).await?
        }
        None => {
            let mut found =
                directory::find_people_by_field(app.store(), policy.person_field, &value).await?;
            let field = policy.person_field;
            match found.len() {
                1 => {
                    let p = found.remove(0);
                    link(app, policy, &subject, &p.id, origin, "matched").await?;
                    p
                }
                0 if policy.just_in_time => {
                    let p = create_pending(app, policy, asserted, &value, origin).await?;
                    link(app, policy, &subject, &p.id, origin, "created").await?;
                    p
                }
                0 => {
                    return Err(FederationError::NoMatch {
                        field: describe(field),
                        value,
                    })
                }
                _ => {
                    return Err(FederationError::Ambiguous {
                        field: describe(field),
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
    policy: &LinkPolicy<'_>,
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
    .bind(policy.idp_id)
    .bind(subject)
    .bind(person_id)
    .bind(now)
    .execute(&mut *tx)
    .await?
    .rows_affected();
    if inserted == 1 {
        audit::record(
            &mut tx,
            app.audit_key(),
            now,
            origin,
            Entry {
                action: "federation.link",
                outcome: Outcome::Success,
                target_kind: "person",
                target_id: person_id,
                details: serde_json::json!({ "idp": policy.idp_id, "how": how, "field": policy.person_field }),
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
    policy: &LinkPolicy<'_>,
    asserted: &(dyn Asserted + Sync),
    value: &str,
    origin: &Origin,
) -> Result<Person, FederationError> {
    let first = |name: &str| {
        if name.is_empty() {
            return None;
        }
        asserted.values(name).first().map(|s| s.trim().to_string())
    };
    let given = first(policy.given_name)
        .ok_or_else(|| FederationError::MissingAttribute(policy.given_name.to_string()))?;
    let family = first(policy.family_name)
        .ok_or_else(|| FederationError::MissingAttribute(policy.family_name.to_string()))?;
    let affiliations = if policy.affiliation.is_empty() {
        Vec::new()
    } else {
        asserted.values(policy.affiliation)
    };
    let mut input = PersonInput {
        // Stable for this IdP and value: a retry after a failure finds the same record.
        sourced_id: format!(
            "fed-{}-{}",
            policy.idp_id,
            &crate::crypto::sha256_hex(value)[..16]
        ),
        kinds: kinds_from(&affiliations),
        given_name: given,
        family_name: family,
        middle_name: None,
        preferred_name: None,
        email: first(policy.email).map(|e| e.to_lowercase()),
        username: None,
        phone_number: None,
        phone_number_verified: false,
        address: None,
        status: Some("pending".into()),
        identifiers: Default::default(),
        affiliations: Vec::new(),
    };
    match policy.person_field {
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
    let created = directory::upsert_person(
        app.store(),
        app.audit_key(),
        app.clock().now(),
        origin,
        None,
        input,
    )
    .await?;
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
