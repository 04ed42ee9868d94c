//! Remembered consent: which scopes a person agreed to share with a client. People
//! see and withdraw these in the portal; withdrawing also revokes the client's grants.

use serde::Serialize;

use super::OidcError;
use crate::audit::{self, Entry, Origin, Outcome};
use crate::clock::format_rfc3339;
use crate::AppState;

pub async fn granted_scopes(
    app: &AppState,
    person_id: &str,
    client_id: &str,
) -> Result<Vec<String>, OidcError> {
    let row: Option<String> =
        sqlx::query_scalar("SELECT scopes FROM consents WHERE person_id = $1 AND client_id = $2")
            .bind(person_id)
            .bind(client_id)
            .fetch_optional(app.store().reader())
            .await
            .map_err(OidcError::server_error)?;
    Ok(row
        .and_then(|t| serde_json::from_str(&t).ok())
        .unwrap_or_default())
}

/// Remembers consent to `scopes` (added to what was granted before).
pub async fn remember_consent(
    app: &AppState,
    person_id: &str,
    client_id: &str,
    scopes: &[String],
    origin: &Origin,
) -> Result<(), OidcError> {
    let now = app.clock().now_ms();
    // Read what was granted inside the transaction, the person locked: two "Allow"
    // clicks both add their scopes, and a withdrawal is not undone by a click that
    // read the consent before it.
    let mut tx = app
        .store()
        .begin_locked("people", "id", person_id)
        .await
        .map_err(OidcError::server_error)?;
    let row: Option<String> =
        sqlx::query_scalar("SELECT scopes FROM consents WHERE person_id = $1 AND client_id = $2")
            .bind(person_id)
            .bind(client_id)
            .fetch_optional(&mut *tx)
            .await
            .map_err(OidcError::server_error)?;
    let mut all: Vec<String> = row
        .and_then(|t| serde_json::from_str(&t).ok())
        .unwrap_or_default();
    for s in scopes {
        if !all.contains(s) {
            all.push(s.clone());
        }
    }
    all.sort();
    // An upsert: two concurrent "Allow" clicks must not collide on the primary key.
    sqlx::query(
        "INSERT INTO consents (person_id, client_id, scopes, granted_at) VALUES ($1, $2, $3, $4) \
         ON CONFLICT (person_id, client_id) DO UPDATE SET scopes = excluded.scopes, granted_at = excluded.granted_at",
    )
    .bind(person_id)
    .bind(client_id)
    .bind(serde_json::to_string(&all).unwrap_or_default())
    .bind(now)
    .execute(&mut *tx)
    .await
    .map_err(OidcError::server_error)?;
    audit::record(
        &mut tx,
        app.audit_key(),
        now,
        origin,
        Entry {
            action: "consent.grant",
            outcome: Outcome::Success,
            target_kind: "client",
            target_id: client_id,
            details: serde_json::json!({ "person": person_id, "scopes": all }),
        },
    )
    .await
    .map_err(OidcError::server_error)?;
    tx.commit().await.map_err(OidcError::server_error)?;
    Ok(())
}

#[derive(Debug, Serialize)]
pub struct ConsentView {
    pub client_id: String,
    pub client_name: String,
    pub scopes: Vec<String>,
    pub granted_at: String,
}

pub async fn list_consents(app: &AppState, person_id: &str) -> Result<Vec<ConsentView>, OidcError> {
    let rows: Vec<(String, String, String, i64)> = sqlx::query_as(
        "SELECT c.client_id, k.name, c.scopes, c.granted_at FROM consents c JOIN clients k ON k.id = c.client_id WHERE c.person_id = $1 ORDER BY k.name, c.client_id",
    )
    .bind(person_id)
    .fetch_all(app.store().reader())
    .await
    .map_err(OidcError::server_error)?;
    Ok(rows
        .into_iter()
        .map(|(client_id, client_name, scopes, at)| ConsentView {
            client_id,
            client_name,
            scopes: serde_json::from_str(&scopes).unwrap_or_default(),
            granted_at: format_rfc3339(at),
        })
        .collect())
}

/// Withdraws consent and revokes every grant the person gave the client.
pub async fn revoke_consent(
    app: &AppState,
    person_id: &str,
    client_id: &str,
    origin: &Origin,
) -> Result<bool, OidcError> {
    let now = app.clock().now_ms();
    let mut tx = app
        .store()
        .begin_locked("people", "id", person_id)
        .await
        .map_err(OidcError::server_error)?;
    let done = sqlx::query("DELETE FROM consents WHERE person_id = $1 AND client_id = $2")
        .bind(person_id)
        .bind(client_id)
        .execute(&mut *tx)
        .await
        .map_err(OidcError::server_error)?;
    if done.rows_affected() == 0 {
        return Ok(false);
    }
    sqlx::query("UPDATE grants SET revoked_at = $1, revoked_reason = 'consent withdrawn' WHERE person_id = $2 AND client_id = $3 AND revoked_at IS NULL")
        .bind(now)
        .bind(person_id)
        .bind(client_id)
        .execute(&mut *tx)
        .await
        .map_err(OidcError::server_error)?;
    audit::record(
        &mut tx,
        app.audit_key(),
        now,
        origin,
        Entry {
            action: "consent.revoke",
            outcome: Outcome::Success,
            target_kind: "client",
            target_id: client_id,
            details: serde_json::json!({ "person": person_id }),
        },
    )
    .await
    .map_err(OidcError::server_error)?;
    tx.commit().await.map_err(OidcError::server_error)?;
    Ok(true)
}
