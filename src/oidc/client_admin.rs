//! Client administration for the API: a client as one JSON document (its fields and
//! registration settings side by side), created from one and changed by RFC 7396
//! merge patches, validated by the same rules as the CLI's.

use serde_json::{Map, Value};

use super::clients::validate;
use super::clients_repo::{self, find_client, ClientUpdate};
use super::registration::ClientSettings;
use super::{Client, ClientError, NewClient};
use crate::audit::{self, Entry, Origin, Outcome};
use crate::crypto::AuditKey;
use crate::error::FieldError;
use crate::outbox::EventType;
use crate::store::{Store, StoreError};

/// Top-level members that are not registration settings.
const OWN: &[&str] = &[
    "name",
    "grant_types",
    "scopes",
    "access_token_ttl_seconds",
    "enabled",
    "role",
    "org",
];

fn invalid(field: &str, reason: impl Into<String>) -> ClientError {
    ClientError::Invalid(vec![FieldError::new(field, reason)])
}

/// Splits a client document into its own fields and its settings; unknown members
/// are errors that name them.
fn split(doc: Value) -> Result<(Map<String, Value>, ClientSettings), ClientError> {
    let Value::Object(mut map) = doc else {
        return Err(invalid("body", "send a JSON object"));
    };
    let mut own = Map::new();
    for k in OWN {
        if let Some(v) = map.remove(*k) {
            own.insert((*k).to_string(), v);
        }
    }
    for read_only in [
        "client_id",
        "created_at",
        "secret_rotated_at",
        "client_secret",
    ] {
        map.remove(read_only);
    }
    let settings: ClientSettings = crate::api::from_json_value(Value::Object(map))
        .map_err(|e| ClientError::Invalid(vec![e]))?;
    Ok((own, settings))
}

fn strings(own: &Map<String, Value>, key: &str) -> Result<Vec<String>, ClientError> {
    match own.get(key) {
        None | Some(Value::Null) => Ok(Vec::new()),
        Some(v) => {
            serde_json::from_value(v.clone()).map_err(|_| invalid(key, "must be a list of strings"))
        }
    }
}

fn opt_string(own: &Map<String, Value>, key: &str) -> Result<Option<String>, ClientError> {
    match own.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(_) => Err(invalid(key, "must be a string")),
    }
}

/// A `NewClient` from an API document.
pub fn new_client_from_json(doc: Value) -> Result<NewClient, ClientError> {
    let (own, settings) = split(doc)?;
    let ttl =
        match own.get("access_token_ttl_seconds") {
            None | Some(Value::Null) => None,
            Some(v) => Some(v.as_i64().ok_or_else(|| {
                invalid("access_token_ttl_seconds", "must be a number of seconds")
            })?),
        };
    Ok(NewClient {
        name: opt_string(&own, "name")?.unwrap_or_default(),
        grants: strings(&own, "grant_types")?,
        scopes: strings(&own, "scopes")?,
        role: opt_string(&own, "role")?,
        org: opt_string(&own, "org")?,
        access_token_ttl_seconds: ttl,
        settings,
    })
}

/// Applies a merge patch to a client; roles are managed separately, and the secret
/// by rotation.
/// Applies a merge patch to the client as it is inside the write transaction (two
/// patches of different fields both stand); `if_match` makes it conditional on the
/// `ETag` the caller read (`Ok(Err(current_etag))` when it no longer matches).
pub async fn update_client(
    store: &Store,
    audit_key: &AuditKey,
    now_ms: i64,
    origin: &Origin,
    id: &str,
    patch: Value,
    if_match: Option<&str>,
) -> Result<Result<Client, String>, ClientError> {
    if !patch.is_object() {
        return Err(invalid(
            "body",
            "a merge patch (RFC 7396) is a JSON object of the fields to change",
        ));
    }
    if patch.get("role").is_some() || patch.get("org").is_some() {
        return Err(invalid(
            "role",
            "change a client's roles with the roles API, not by patching it",
        ));
    }
    let mut tx = store.begin().await?;
    store.lock_row(&mut tx, "clients", "id", id).await?;
    let current = find_client(&mut *tx, id)
        .await?
        .ok_or_else(|| ClientError::NotFound(id.to_string()))?;
    let view = super::ClientView::from(&current);
    if let Some(expected) = if_match {
        let etag = crate::api::etag_of(&view);
        if !crate::api::etag_matches(expected, &etag) {
            return Ok(Err(etag));
        }
    }
    let mut doc = serde_json::to_value(view).map_err(|e| invalid("body", e.to_string()))?;
    let before = doc.clone();
    crate::api::apply_merge_patch(&mut doc, patch);
    let enabled = doc
        .get("enabled")
        .and_then(|v| v.as_bool())
        .unwrap_or(current.enabled);
    let new = new_client_from_json(doc)?;
    let errors = validate(&new);
    if !errors.is_empty() {
        return Err(ClientError::Invalid(errors));
    }
    if new.settings.is_public() != current.settings.is_public() {
        return Err(invalid(
            "client_type",
            "a client cannot change between public and confidential; register a new one",
        ));
    }
    let mut scopes = new.scopes.clone();
    scopes.sort();
    scopes.dedup();
    let update = ClientUpdate {
        name: new.name.trim(),
        grant_types: &new.grants,
        scopes: &scopes,
        access_token_ttl_seconds: new.access_token_ttl_seconds,
        enabled,
        settings: &new.settings,
    };
    clients_repo::update_client(&mut tx, id, &update, now_ms).await?;
    let updated = clients_repo::find_client(&mut *tx, id)
        .await?
        .ok_or_else(|| ClientError::NotFound(id.to_string()))?;
    let after = serde_json::to_value(super::ClientView::from(&updated)).unwrap_or_default();
    let changed: Map<String, Value> = after
        .as_object()
        .map(|a| {
            a.iter()
                .filter(|(k, v)| before.get(k.as_str()) != Some(v))
                .map(|(k, v)| {
                    (
                        k.clone(),
                        serde_json::json!({ "from": before.get(k.as_str()), "to": v }),
                    )
                })
                .collect()
        })
        .unwrap_or_default();
    audit::record(
        &mut tx,
        audit_key,
        now_ms,
        origin,
        Entry {
            action: "client.update",
            outcome: Outcome::Success,
            target_kind: "client",
            target_id: id,
            details: Value::Object(changed),
        },
    )
    .await?;
    super::clients::announce(&mut tx, now_ms, EventType::ClientUpdated, &updated).await?;
    tx.commit().await.map_err(StoreError::from)?;
    Ok(Ok(updated))
}

pub async fn get_client(store: &Store, id: &str) -> Result<Client, ClientError> {
    find_client(store.reader(), id)
        .await?
        .ok_or_else(|| ClientError::NotFound(id.to_string()))
}
