//! An outbox event and its CloudEvents 1.0 form (JSON event format).

use serde::Serialize;

use crate::clock::{format_rfc3339, Timestamp};

/// What happened, as the CloudEvents `type` names it (reverse-DNS, past tense).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventType {
    PersonCreated,
    PersonUpdated,
    /// Suspended, reinstated, graduated or separated.
    PersonLifecycle,
    /// A second factor added or removed, recovery codes issued, factors reset.
    PersonFactorsChanged,
    /// A password set, changed or reset (never the password or its hash).
    PersonPasswordChanged,
    /// Wrong passwords for the account from many places: a guessing attack.
    PersonSigninGuessing,
    OrgCreated,
    OrgUpdated,
    /// A role granted to a person or a client (at an org, or hub-wide).
    RoleGranted,
    /// A role held already, granted again with another end.
    RoleExtended,
    RoleRevoked,
    /// An API or app client registered.
    ClientCreated,
    ClientUpdated,
    /// Its secret replaced (the event never carries a secret or its digest).
    ClientSecretRotated,
    ClientDeleted,
    /// A signing key created (the first of its algorithm, or a rotation's next key).
    KeyCreated,
}

impl EventType {
    pub const ALL: [EventType; 16] = [
        EventType::PersonCreated,
        EventType::PersonUpdated,
        EventType::PersonLifecycle,
        EventType::PersonFactorsChanged,
        EventType::PersonPasswordChanged,
        EventType::PersonSigninGuessing,
        EventType::OrgCreated,
        EventType::OrgUpdated,
        EventType::RoleGranted,
        EventType::RoleExtended,
        EventType::RoleRevoked,
        EventType::ClientCreated,
        EventType::ClientUpdated,
        EventType::ClientSecretRotated,
        EventType::ClientDeleted,
        EventType::KeyCreated,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            EventType::PersonCreated => "org.hmsach.person.created",
            EventType::PersonUpdated => "org.hmsach.person.updated",
            EventType::PersonLifecycle => "org.hmsach.person.lifecycle",
            EventType::PersonFactorsChanged => "org.hmsach.person.factors_changed",
            EventType::PersonPasswordChanged => "org.hmsach.person.password_changed",
            EventType::PersonSigninGuessing => "org.hmsach.person.signin_guessing",
            EventType::OrgCreated => "org.hmsach.org.created",
            EventType::OrgUpdated => "org.hmsach.org.updated",
            EventType::RoleGranted => "org.hmsach.role.granted",
            EventType::RoleExtended => "org.hmsach.role.extended",
            EventType::RoleRevoked => "org.hmsach.role.revoked",
            EventType::ClientCreated => "org.hmsach.client.created",
            EventType::ClientUpdated => "org.hmsach.client.updated",
            EventType::ClientSecretRotated => "org.hmsach.client.secret_rotated",
            EventType::ClientDeleted => "org.hmsach.client.deleted",
            EventType::KeyCreated => "org.hmsach.key.created",
        }
    }

    pub fn parse(s: &str) -> Option<EventType> {
        EventType::ALL.into_iter().find(|t| t.as_str() == s)
    }
}

/// An event to append: what happened to which subject, and the resource after it.
#[derive(Debug, Clone)]
pub struct NewEvent {
    pub kind: EventType,
    /// The resource's path under `/api/v1` (`people/{id}`, `orgs/{id}`).
    pub subject: String,
    /// The resource as the API returns it.
    pub data: serde_json::Value,
}

/// A stored event.
#[derive(Debug, Clone, PartialEq)]
pub struct OutboxEvent {
    /// The order of all events.
    pub seq: i64,
    pub id: String,
    pub kind: String,
    pub subject: String,
    /// The order of this subject's events, from 1 without gaps.
    pub subject_seq: i64,
    pub created_at: Timestamp,
    pub data: serde_json::Value,
}

/// CloudEvents 1.0, JSON event format (§3), with the `sequence` extension
/// (CloudEvents extension "Sequence": a string that orders a subject's events) and the
/// hub's own position in `hmsachseq`, which the listing's cursor pages by.
#[derive(Debug, Serialize)]
pub struct CloudEvent {
    pub specversion: &'static str,
    pub id: String,
    pub source: String,
    #[serde(rename = "type")]
    pub kind: String,
    pub subject: String,
    pub time: String,
    pub datacontenttype: &'static str,
    pub sequence: String,
    pub hmsachseq: i64,
    pub data: serde_json::Value,
}

impl OutboxEvent {
    /// The event as consumers receive it; `source` is the hub's issuer URL.
    pub fn to_cloudevent(&self, source: &str) -> CloudEvent {
        CloudEvent {
            specversion: "1.0",
            id: self.id.clone(),
            source: source.to_string(),
            kind: self.kind.clone(),
            subject: self.subject.clone(),
            time: format_rfc3339(self.created_at.as_millis()),
            datacontenttype: "application/json",
            sequence: self.subject_seq.to_string(),
            hmsachseq: self.seq,
            data: self.data.clone(),
        }
    }
}
