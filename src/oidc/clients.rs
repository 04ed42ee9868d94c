//! The client registry: API clients (client_credentials) and relying parties
//! (authorization_code, refresh_token), with their registration settings.

use serde::Serialize;

use super::clients_repo;
use super::registration::{validate_settings, ClientSettings, OIDC_SCOPES, SUPPORTED_GRANTS};
use super::ClientError;
use crate::audit::{self, Entry, Origin, Outcome};
use crate::authz::{self, AuthzError, NewAssignment, Subject};
use crate::clock::{format_rfc3339, Timestamp};
use crate::crypto::{random_token, AuditKey, MasterKey};
use crate::error::FieldError;
use crate::outbox::{self, EventType, NewEvent};
use crate::store::{Store, StoreError, Tx};

#[derive(Debug, Clone)]
pub struct Client {
    pub id: String,
    pub name: String,
    pub secret_digest: String,
    pub grant_types: Vec<String>,
    pub scopes: Vec<String>,
    pub access_token_ttl_seconds: Option<i64>,
    pub enabled: bool,
    pub created_at: i64,
    pub updated_at: i64,
    pub secret_rotated_at: i64,
    pub settings: ClientSettings,
}

impl Client {
    pub fn has_grant(&self, grant: &str) -> bool {
        self.grant_types.iter().any(|g| g == grant)
    }
}

/// What an admin sees of a client: never the secret or its digest.
#[derive(Debug, Serialize)]
pub struct ClientView {
    pub client_id: String,
    pub name: String,
    pub grant_types: Vec<String>,
    pub scopes: Vec<String>,
    pub access_token_ttl_seconds: Option<i64>,
    pub enabled: bool,
    pub created_at: String,
    pub secret_rotated_at: String,
    #[serde(flatten)]
    pub settings: ClientSettings,
}

impl From<&Client> for ClientView {
    fn from(c: &Client) -> Self {
        ClientView {
            client_id: c.id.clone(),
            name: c.name.clone(),
            grant_types: c.grant_types.clone(),
            scopes: c.scopes.clone(),
            access_token_ttl_seconds: c.access_token_ttl_seconds,
            enabled: c.enabled,
            created_at: format_rfc3339(c.created_at),
            secret_rotated_at: format_rfc3339(c.secret_rotated_at),
            settings: c.settings.clone(),
        }
    }
}

pub struct NewClient {
    pub name: String,
    pub grants: Vec<String>,
    pub scopes: Vec<String>,
    /// A role to give the client, hub-wide or in `org` (an org id or sourcedId).
    pub role: Option<String>,
    pub org: Option<String>,
    pub access_token_ttl_seconds: Option<i64>,
    pub settings: ClientSettings,
}

pub(super) fn validate(new: &NewClient) -> Vec<FieldError> {
    let mut errors = Vec::new();
    let name = new.name.trim();
    // The consent page shows it: a name that could pass for another app's is refused.
    if let Some(refused) = crate::input::refused_in_name(name) {
        errors.push(FieldError::new("name", refused.reason()));
    } else if name.is_empty() || name.chars().count() > 100 {
        errors.push(FieldError::new("name", "must be 1 to 100 characters"));
    }
    if new.grants.is_empty() {
        errors.push(FieldError::new(
            "grant",
            format!(
                "give at least one grant type; supported: {}",
                SUPPORTED_GRANTS.join(", ")
            ),
        ));
    }
    for g in &new.grants {
        if !SUPPORTED_GRANTS.contains(&g.as_str()) {
            errors.push(FieldError::new(
                "grant",
                format!(
                    "{g:?} is not supported; supported: {}",
                    SUPPORTED_GRANTS.join(", ")
                ),
            ));
        }
    }
    let mut known = authz::known_scopes();
    known.extend(OIDC_SCOPES.iter().map(|s| s.to_string()));
    if new.scopes.is_empty() {
        errors.push(FieldError::new(
            "scope",
            format!(
                "give at least one scope, e.g. users.read; known: {}",
                known.join(" ")
            ),
        ));
    }
    for s in &new.scopes {
        if !known.contains(s) {
            errors.push(FieldError::new(
                "scope",
                format!("{s:?} is not a known scope; known: {}", known.join(" ")),
            ));
        }
    }
    if let Some(ttl) = new.access_token_ttl_seconds {
        if !(60..=86_400).contains(&ttl) {
            errors.push(FieldError::new(
                "access_token_ttl_seconds",
                "must be between 60 and 86400",
            ));
        }
    }
    errors.extend(validate_settings(&new.settings, &new.grants, &new.scopes));
    if new.settings.is_public() && new.role.is_some() {
        errors.push(FieldError::new(
            "role",
            "a public client cannot hold a role: anyone can act as it",
        ));
    }
    if new.org.is_some() && new.role.is_none() {
        errors.push(FieldError::new(
            "org",
            "an org only makes sense with a role",
        ));
    }
    errors
}

/// Registers a client and returns it with its secret (none for public and
/// `private_key_jwt` clients), which is shown this once.
pub async fn create_client(
    store: &Store,
    master: &MasterKey,
    now_ms: i64,
    origin: &Origin,
    new: NewClient,
) -> Result<(Client, Option<String>), ClientError> {
    let mut errors = validate(&new);
    let org_id = match &new.org {
        Some(o) => match crate::directory::resolve_org(store, o)
            .await
            .map_err(|e| ClientError::Store(StoreError::Corrupt(e.to_string())))?
        {
            Some(id) => Some(id),
            None => {
                errors.push(FieldError::new(
                    "org",
                    format!("no org with id or sourcedId {o:?}"),
                ));
                None
            }
        },
        None => None,
    };
    if !errors.is_empty() {
        return Err(ClientError::Invalid(errors));
    }
    let mut grants = new.grants.clone();
    grants.dedup();
    let mut scopes = new.scopes.clone();
    scopes.sort();
    scopes.dedup();
    let id = format!("hms_{}", random_token(12));
    // Only clients that authenticate with a secret get one: a public client has
    // none, and a private_key_jwt client proves itself with its key (a secret it
    // never uses would only be something more to leak).
    let secret = new.settings.uses_secret().then(|| random_token(32));
    let client = Client {
        id: id.clone(),
        name: new.name.trim().to_string(),
        secret_digest: secret
            .as_deref()
            .map(|s| master.digest_secret(s))
            .unwrap_or_default(),
        grant_types: grants,
        scopes,
        access_token_ttl_seconds: new.access_token_ttl_seconds,
        enabled: true,
        created_at: now_ms,
        updated_at: now_ms,
        secret_rotated_at: now_ms,
        settings: new.settings,
    };
    let mut tx = store.begin().await?;
    clients_repo::insert_client(&mut tx, &client).await?;
    audit::record(
        &mut tx,
        master.audit_key(),
        now_ms,
        origin,
        Entry {
            action: "client.create",
            outcome: Outcome::Success,
            target_kind: "client",
            target_id: &client.id,
            details: serde_json::json!({ "name": client.name, "grants": client.grant_types, "scopes": client.scopes, "role": new.role, "org": org_id, "settings": client.settings }),
        },
    )
    .await?;
    announce(&mut tx, now_ms, EventType::ClientCreated, &client).await?;
    if let Some(role) = new.role {
        let assignment = NewAssignment {
            subject: Subject::Client(id.clone()),
            role,
            org_id,
            expires_at: None,
        };
        let now = crate::clock::Timestamp::from_millis(now_ms);
        authz::assign_role(&mut tx, master.audit_key(), now, origin, assignment)
            .await
            .map_err(|e| match e {
                AuthzError::UnknownRole(r) => ClientError::Invalid(vec![FieldError::new(
                    "role",
                    format!(
                        "no role {r:?}; built-in roles: {}",
                        authz::BUILTIN_ROLES
                            .iter()
                            .map(|r| r.0)
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                )]),
                other => other.into(),
            })?;
    }
    tx.commit().await.map_err(StoreError::from)?;
    Ok((client, secret))
}

/// The outbox event of a change to `client`, in its transaction: the client as the
/// admin API shows it (`ClientView`: never the secret or its digest).
pub(super) async fn announce(
    tx: &mut Tx,
    now_ms: i64,
    kind: EventType,
    client: &Client,
) -> Result<(), StoreError> {
    let event = NewEvent {
        kind,
        subject: format!("clients/{}", client.id),
        data: serde_json::to_value(ClientView::from(client)).unwrap_or_default(),
    };
    outbox::append(tx, Timestamp::from_millis(now_ms), event).await?;
    Ok(())
}

pub async fn list_clients(store: &Store) -> Result<Vec<Client>, ClientError> {
    Ok(clients_repo::list_clients(store).await?)
}

/// Replaces the secret; the old one stops working at once on this replica and within
/// `oauth.client_cache_seconds` on others.
pub async fn rotate_secret(
    store: &Store,
    master: &MasterKey,
    now_ms: i64,
    origin: &Origin,
    id: &str,
) -> Result<(Client, String), ClientError> {
    let secret = random_token(32);
    let mut tx = store.begin().await?;
    let current = clients_repo::find_client(&mut *tx, id)
        .await?
        .ok_or_else(|| ClientError::NotFound(id.to_string()))?;
    if !current.settings.uses_secret() {
        return Err(ClientError::Invalid(vec![FieldError::new(
            "client_id",
            "this client has no secret to rotate (a public client, or one that authenticates with private_key_jwt)",
        )]));
    }
    if !clients_repo::set_secret(&mut tx, id, &master.digest_secret(&secret), now_ms).await? {
        return Err(ClientError::NotFound(id.to_string()));
    }
    audit::record(
        &mut tx,
        master.audit_key(),
        now_ms,
        origin,
        Entry {
            action: "client.rotate-secret",
            outcome: Outcome::Success,
            target_kind: "client",
            target_id: id,
            details: serde_json::json!({}),
        },
    )
    .await?;
    let client = clients_repo::find_client(&mut *tx, id)
        .await?
        .ok_or_else(|| ClientError::NotFound(id.to_string()))?;
    announce(&mut tx, now_ms, EventType::ClientSecretRotated, &client).await?;
    tx.commit().await.map_err(StoreError::from)?;
    Ok((client, secret))
}

/// Deletes a client and its role assignments.
pub async fn delete_client(
    store: &Store,
    audit_key: &AuditKey,
    now_ms: i64,
    origin: &Origin,
    id: &str,
) -> Result<(), ClientError> {
    let mut tx = store.begin().await?;
    if !clients_repo::delete_client(&mut tx, id).await? {
        return Err(ClientError::NotFound(id.to_string()));
    }
    let roles = authz::revoke_all(
        &mut tx,
        crate::clock::Timestamp::from_millis(now_ms),
        &Subject::Client(id.to_string()),
    )
    .await?;
    audit::record(
        &mut tx,
        audit_key,
        now_ms,
        origin,
        Entry {
            action: "client.delete",
            outcome: Outcome::Success,
            target_kind: "client",
            target_id: id,
            details: serde_json::json!({ "rolesRevoked": roles }),
        },
    )
    .await?;
    let event = NewEvent {
        kind: EventType::ClientDeleted,
        subject: format!("clients/{id}"),
        data: serde_json::json!({ "client_id": id, "rolesRevoked": roles }),
    };
    outbox::append(&mut tx, Timestamp::from_millis(now_ms), event).await?;
    tx.commit().await.map_err(StoreError::from)?;
    Ok(())
}
