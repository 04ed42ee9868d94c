//! Directory records as the API shows them, and the inputs that create or replace them.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Kinds of org, from the top of the tree down.
pub const ORG_KINDS: &[&str] = &[
    "district",
    "school",
    "program",
    "department",
    "clinical_site",
];
pub const ORG_STATUSES: &[&str] = &["active", "inactive"];
pub const PERSON_KINDS: &[&str] = &[
    "student",
    "teacher",
    "staff",
    "administrator",
    "clinical_instructor",
    "guardian",
];
pub const IDENTIFIER_TYPES: &[&str] = &["sis", "state", "employee", "npi"];

/// Which kinds of org may be the parent of which.
pub fn allowed_parents(kind: &str) -> &'static [&'static str] {
    match kind {
        "school" => &["district"],
        "program" => &["district", "school"],
        "department" => &["school", "program"],
        "clinical_site" => &["district", "program"],
        _ => &[],
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PersonStatus {
    Active,
    /// Created just in time by a federated sign-in; waits for an administrator.
    Pending,
    Suspended,
    Graduated,
    Separated,
}

impl PersonStatus {
    pub const ALL: [PersonStatus; 5] = [
        PersonStatus::Active,
        PersonStatus::Pending,
        PersonStatus::Suspended,
        PersonStatus::Graduated,
        PersonStatus::Separated,
    ];
    pub fn as_str(self) -> &'static str {
        match self {
            PersonStatus::Active => "active",
            PersonStatus::Pending => "pending",
            PersonStatus::Suspended => "suspended",
            PersonStatus::Graduated => "graduated",
            PersonStatus::Separated => "separated",
        }
    }
    pub fn parse(s: &str) -> Option<PersonStatus> {
        Self::ALL.into_iter().find(|p| p.as_str() == s)
    }
    /// The lifecycle: suspension is reversible; graduation and separation end
    /// access but a person may be reinstated (re-enrolled, re-hired).
    pub fn may_become(self, next: PersonStatus) -> bool {
        use PersonStatus::*;
        matches!(
            (self, next),
            (Active, Suspended)
                | (Pending, Active | Separated)
                | (Suspended, Active)
                | (Active | Suspended, Graduated)
                | (Active | Suspended | Graduated, Separated)
                | (Graduated | Separated, Active)
        )
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AffiliationInput {
    /// Org id or sourcedId.
    pub org: String,
    pub role: String,
    #[serde(default)]
    pub primary: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub begin_date: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub end_date: Option<String>,
}

/// The whole of a person as a feed or admin sends it (`POST /users`). Optional
/// fields left out are empty: the request is the record.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PersonInput {
    pub sourced_id: String,
    pub kinds: Vec<String>,
    pub given_name: String,
    pub family_name: String,
    #[serde(default)]
    pub middle_name: Option<String>,
    #[serde(default)]
    pub preferred_name: Option<String>,
    #[serde(default)]
    pub email: Option<String>,
    #[serde(default)]
    pub username: Option<String>,
    /// E.164 (`+` and digits), as OIDC Core §5.1 recommends for `phone_number`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phone_number: Option<String>,
    /// The district's system of record confirmed the number.
    #[serde(default, skip_serializing_if = "is_false")]
    pub phone_number_verified: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub address: Option<PostalAddress>,
    /// Only when creating; afterwards status moves through `/users/{id}/lifecycle`.
    #[serde(default, skip_serializing)]
    pub status: Option<String>,
    #[serde(default)]
    pub identifiers: BTreeMap<String, String>,
    #[serde(default)]
    pub affiliations: Vec<AffiliationInput>,
}

fn is_false(b: &bool) -> bool {
    !*b
}

/// A postal address: the parts of OIDC Core §5.1.1's `address` claim (without
/// `formatted`, which is built from them), each one line.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PostalAddress {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub street_address: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub locality: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub region: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub postal_code: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub country: Option<String>,
}

impl PostalAddress {
    pub fn is_empty(&self) -> bool {
        self == &PostalAddress::default()
    }

    /// The OIDC `address` claim (§5.1.1): snake_case members and `formatted`, the
    /// parts on lines as a US address is written.
    pub fn to_claim(&self) -> serde_json::Value {
        let mut m = serde_json::Map::new();
        let city_line = [
            self.locality.as_deref(),
            self.region.as_deref(),
            self.postal_code.as_deref(),
        ];
        let city_line: Vec<&str> = city_line.into_iter().flatten().collect();
        let lines: Vec<String> = [
            self.street_address.clone(),
            (!city_line.is_empty()).then(|| city_line.join(" ")),
            self.country.clone(),
        ]
        .into_iter()
        .flatten()
        .collect();
        m.insert("formatted".into(), lines.join("\n").into());
        for (k, v) in [
            ("street_address", &self.street_address),
            ("locality", &self.locality),
            ("region", &self.region),
            ("postal_code", &self.postal_code),
            ("country", &self.country),
        ] {
            if let Some(v) = v {
                m.insert(k.into(), v.clone().into());
            }
        }
        serde_json::Value::Object(m)
    }
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Affiliation {
    pub org_id: String,
    pub org_sourced_id: String,
    pub role: String,
    pub primary: bool,
    pub begin_date: Option<String>,
    pub end_date: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Person {
    pub id: String,
    pub sourced_id: String,
    pub status: String,
    pub kinds: Vec<String>,
    pub given_name: String,
    pub family_name: String,
    pub middle_name: Option<String>,
    pub preferred_name: Option<String>,
    pub email: Option<String>,
    pub username: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub phone_number: Option<String>,
    #[serde(skip_serializing_if = "is_false")]
    pub phone_number_verified: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub address: Option<PostalAddress>,
    pub identifiers: BTreeMap<String, String>,
    pub affiliations: Vec<Affiliation>,
    pub status_changed_at: String,
    pub status_reason: Option<String>,
    pub created_at: String,
    pub updated_at: String,
    #[serde(skip)]
    pub updated_at_ms: i64,
}

impl Person {
    /// The `ETag` of this record as the API returns it.
    pub fn etag(&self) -> String {
        crate::api::etag_of(self)
    }

    pub fn org_ids(&self) -> Vec<String> {
        let mut v: Vec<String> = self.affiliations.iter().map(|a| a.org_id.clone()).collect();
        v.sort();
        v.dedup();
        v
    }

    /// The record as input, the base that a merge patch applies to.
    pub fn to_input(&self) -> PersonInput {
        PersonInput {
            sourced_id: self.sourced_id.clone(),
            kinds: self.kinds.clone(),
            given_name: self.given_name.clone(),
            family_name: self.family_name.clone(),
            middle_name: self.middle_name.clone(),
            preferred_name: self.preferred_name.clone(),
            email: self.email.clone(),
            username: self.username.clone(),
            phone_number: self.phone_number.clone(),
            phone_number_verified: self.phone_number_verified,
            address: self.address.clone(),
            status: None,
            identifiers: self.identifiers.clone(),
            affiliations: self
                .affiliations
                .iter()
                .map(|a| AffiliationInput {
                    org: a.org_id.clone(),
                    role: a.role.clone(),
                    primary: a.primary,
                    begin_date: a.begin_date.clone(),
                    end_date: a.end_date.clone(),
                })
                .collect(),
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct OrgInput {
    pub sourced_id: String,
    pub kind: String,
    pub name: String,
    #[serde(default)]
    pub identifier: Option<String>,
    /// Parent org id or sourcedId.
    #[serde(default)]
    pub parent: Option<String>,
    #[serde(default)]
    pub status: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Org {
    pub id: String,
    pub sourced_id: String,
    pub kind: String,
    pub name: String,
    pub identifier: Option<String>,
    pub parent_id: Option<String>,
    pub status: String,
    pub created_at: String,
    pub updated_at: String,
    #[serde(skip)]
    pub updated_at_ms: i64,
}

impl Org {
    /// The `ETag` of this record as the API returns it.
    pub fn etag(&self) -> String {
        crate::api::etag_of(self)
    }

    pub fn to_input(&self) -> OrgInput {
        OrgInput {
            sourced_id: self.sourced_id.clone(),
            kind: self.kind.clone(),
            name: self.name.clone(),
            identifier: self.identifier.clone(),
            parent: self.parent_id.clone(),
            status: Some(self.status.clone()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::PersonStatus::*;

    #[test]
    fn lifecycle_allows_only_sensible_moves() {
        assert!(Active.may_become(Suspended));
        assert!(Suspended.may_become(Active));
        assert!(Active.may_become(Graduated));
        assert!(Graduated.may_become(Active));
        assert!(!Graduated.may_become(Suspended));
        assert!(!Separated.may_become(Graduated));
        assert!(!Active.may_become(Active));
    }
}
