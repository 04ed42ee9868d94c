//! The storage of the client registry: every statement on `clients` (the consent
//! page's join lives with consents). Rows come back as `Client`, failures as
//! `StoreError`; the registry's rules and audit live in `clients.rs` and
//! `client_admin.rs`. A duplicate client id comes back as
//! `StoreError::Duplicate("clients.id")`, named alike on both databases by
//! `store::unique_violation`.

use super::clients::Client;
use super::registration::ClientSettings;
use crate::store::{self, Store, StoreError, Tx};

const COLUMNS: &str = "id, name, secret_digest, grant_types, scopes, access_token_ttl_seconds, enabled, created_at, updated_at, secret_rotated_at, settings";

/// The fields an admin may change, as they are written.
pub(super) struct ClientUpdate<'a> {
    pub name: &'a str,
    pub grant_types: &'a [String],
    pub scopes: &'a [String],
    pub access_token_ttl_seconds: Option<i64>,
    pub enabled: bool,
    pub settings: &'a ClientSettings,
}

fn corrupt(column: &str) -> impl Fn(serde_json::Error) -> StoreError + '_ {
    move |e| StoreError::Corrupt(format!("clients.{column}: {e}"))
}

fn from_row(r: &store::Row) -> Result<Client, StoreError> {
    let list = |col: &str| -> Result<Vec<String>, StoreError> {
        let text: String = store::get(r, col)?;
        serde_json::from_str(&text).map_err(corrupt(col))
    };
    Ok(Client {
        id: store::get(r, "id")?,
        name: store::get(r, "name")?,
        secret_digest: store::get(r, "secret_digest")?,
        grant_types: list("grant_types")?,
        scopes: list("scopes")?,
        access_token_ttl_seconds: store::get(r, "access_token_ttl_seconds")?,
        enabled: store::get::<i64>(r, "enabled")? != 0,
        created_at: store::get(r, "created_at")?,
        updated_at: store::get(r, "updated_at")?,
        secret_rotated_at: store::get(r, "secret_rotated_at")?,
        settings: {
            let text: String = store::get(r, "settings")?;
            serde_json::from_str(&text).map_err(corrupt("settings"))?
        },
    })
}

/// Inserts a new, enabled client; `created_at` stamps all three times.
pub(super) async fn insert_client(tx: &mut Tx, c: &Client) -> Result<(), StoreError> {
    sqlx::query(&format!(
        "INSERT INTO clients ({COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, 1, $7, $7, $7, $8)"
    ))
    .bind(&c.id)
    .bind(&c.name)
    .bind(&c.secret_digest)
    .bind(serde_json::to_string(&c.grant_types).unwrap_or_default())
    .bind(serde_json::to_string(&c.scopes).unwrap_or_default())
    .bind(c.access_token_ttl_seconds)
    .bind(c.created_at)
    .bind(serde_json::to_string(&c.settings).unwrap_or_default())
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// The client with this id, read through any executor: the reader pool for the
/// token endpoint's cache, the write transaction for a patch.
pub(super) async fn find_client<'e, E>(db: E, id: &str) -> Result<Option<Client>, StoreError>
where
    E: sqlx::Executor<'e, Database = sqlx::Any>,
{
    let row = sqlx::query(&format!("SELECT {COLUMNS} FROM clients WHERE id = $1"))
        .bind(id)
        .fetch_optional(db)
        .await?;
    row.as_ref().map(from_row).transpose()
}

pub(super) async fn list_clients(store: &Store) -> Result<Vec<Client>, StoreError> {
    let rows = sqlx::query(&format!(
        "SELECT {COLUMNS} FROM clients ORDER BY created_at, id"
    ))
    .fetch_all(store.reader())
    .await?;
    rows.iter().map(from_row).collect()
}

/// Replaces the secret's digest; `false` when there is no such client.
pub(super) async fn set_secret(
    tx: &mut Tx,
    id: &str,
    secret_digest: &str,
    now_ms: i64,
) -> Result<bool, StoreError> {
    let done = sqlx::query(
        "UPDATE clients SET secret_digest = $1, secret_rotated_at = $2, updated_at = $2 WHERE id = $3",
    )
    .bind(secret_digest)
    .bind(now_ms)
    .bind(id)
    .execute(&mut **tx)
    .await?;
    Ok(done.rows_affected() > 0)
}

pub(super) async fn update_client(
    tx: &mut Tx,
    id: &str,
    u: &ClientUpdate<'_>,
    now_ms: i64,
) -> Result<(), StoreError> {
    sqlx::query("UPDATE clients SET name = $1, grant_types = $2, scopes = $3, access_token_ttl_seconds = $4, enabled = $5, settings = $6, updated_at = $7 WHERE id = $8")
        .bind(u.name)
        .bind(serde_json::to_string(u.grant_types).unwrap_or_default())
        .bind(serde_json::to_string(u.scopes).unwrap_or_default())
        .bind(u.access_token_ttl_seconds)
        .bind(i64::from(u.enabled))
        .bind(serde_json::to_string(u.settings).unwrap_or_default())
        .bind(now_ms)
        .bind(id)
        .execute(&mut **tx)
        .await?;
    Ok(())
}

/// Deletes the client row; `false` when there was none.
pub(super) async fn delete_client(tx: &mut Tx, id: &str) -> Result<bool, StoreError> {
    let done = sqlx::query("DELETE FROM clients WHERE id = $1")
        .bind(id)
        .execute(&mut **tx)
        .await?;
    Ok(done.rows_affected() > 0)
}
