//! Orgs: the tree the district's people, roles and requirements hang from.

use super::model::{allowed_parents, Org, OrgInput};
use super::validate::check_org;
use super::{DirectoryError, Upserted};
use crate::audit::{self, Entry, Origin, Outcome};
use crate::clock::format_rfc3339;
use crate::clock::Timestamp;
use crate::crypto::AuditKey;
use crate::error::FieldError;
use crate::outbox::{self, EventType, NewEvent};
use crate::store::{self, Store, Tx};

const COLUMNS: &str =
    "id, sourced_id, kind, name, identifier, parent_id, status, created_at, updated_at";

fn from_row(r: &store::Row) -> Result<Org, DirectoryError> {
    let updated: i64 = store::get(r, "updated_at")?;
    Ok(Org {
        id: store::get(r, "id")?,
        sourced_id: store::get(r, "sourced_id")?,
        kind: store::get(r, "kind")?,
        name: store::get(r, "name")?,
        identifier: store::get(r, "identifier")?,
        parent_id: store::get(r, "parent_id")?,
        status: store::get(r, "status")?,
        created_at: format_rfc3339(store::get(r, "created_at")?),
        updated_at: format_rfc3339(updated),
        updated_at_ms: updated,
    })
}

/// The id of the org named by its id or its sourcedId.
pub async fn resolve_org(
    store: &Store,
    id_or_sourced: &str,
) -> Result<Option<String>, DirectoryError> {
    let row = sqlx::query("SELECT id FROM orgs WHERE id = $1 OR sourced_id = $1 ORDER BY CASE WHEN id = $1 THEN 0 ELSE 1 END LIMIT 1")
        .bind(id_or_sourced)
        .fetch_optional(store.reader())
        .await?;
    Ok(row.map(|r| store::get(&r, "id")).transpose()?)
}

pub(super) async fn resolve_org_tx(
    tx: &mut Tx,
    id_or_sourced: &str,
) -> Result<Option<(String, String)>, DirectoryError> {
    let row = sqlx::query("SELECT id, sourced_id FROM orgs WHERE id = $1 OR sourced_id = $1 ORDER BY CASE WHEN id = $1 THEN 0 ELSE 1 END LIMIT 1")
        .bind(id_or_sourced)
        .fetch_optional(&mut **tx)
        .await?;
    match row {
        Some(r) => Ok(Some((store::get(&r, "id")?, store::get(&r, "sourced_id")?))),
        None => Ok(None),
    }
}

pub async fn get_org(store: &Store, id: &str) -> Result<Org, DirectoryError> {
    let row = sqlx::query(&format!("SELECT {COLUMNS} FROM orgs WHERE id = $1 OR sourced_id = $1 ORDER BY CASE WHEN id = $1 THEN 0 ELSE 1 END LIMIT 1"))
        .bind(id)
        .fetch_optional(store.reader())
        .await?;
    match row {
        Some(r) => from_row(&r),
        None => Err(DirectoryError::NotFound {
            kind: "org",
            id: id.to_string(),
        }),
    }
}

/// The org and its ancestors, nearest first: the domains a role may be held in.
pub async fn org_ancestry(store: &Store, id: &str) -> Result<Vec<String>, DirectoryError> {
    let mut conn = store.reader().acquire().await?;
    ancestry(&mut conn, id).await
}

async fn ancestry(conn: &mut sqlx::AnyConnection, id: &str) -> Result<Vec<String>, DirectoryError> {
    // The depth bound stops the walk even if a cycle were ever stored.
    let rows = sqlx::query(
        "WITH RECURSIVE chain(id, parent_id, depth) AS ( \
           SELECT id, parent_id, 0 FROM orgs WHERE id = $1 \
           UNION ALL SELECT o.id, o.parent_id, c.depth + 1 FROM orgs o JOIN chain c ON o.id = c.parent_id WHERE c.depth < 32) \
         SELECT id FROM chain ORDER BY depth",
    )
    .bind(id)
    .fetch_all(conn)
    .await?;
    rows.iter().map(|r| Ok(store::get(r, "id")?)).collect()
}

/// The id of the org with this sourcedId (not its id): what `POST /orgs` updates.
pub async fn find_org_by_sourced_id(
    store: &Store,
    sourced_id: &str,
) -> Result<Option<Org>, DirectoryError> {
    let row = sqlx::query(&format!("SELECT {COLUMNS} FROM orgs WHERE sourced_id = $1"))
        .bind(sourced_id)
        .fetch_optional(store.reader())
        .await?;
    row.as_ref().map(from_row).transpose()
}

#[derive(Debug, Default)]
pub struct OrgFilter {
    pub kind: Option<String>,
    pub parent: Option<String>,
    pub updated_since: Option<Timestamp>,
    pub after: Option<(i64, String)>,
    pub limit: i64,
}

pub async fn list_orgs(store: &Store, f: &OrgFilter) -> Result<Vec<Org>, DirectoryError> {
    let (after_at, after_id) = f.after.clone().unwrap_or((i64::MIN, String::new()));
    let rows = sqlx::query(&format!(
        "SELECT {COLUMNS} FROM orgs WHERE ($1 = '' OR kind = $1) AND ($2 = '' OR parent_id = $2) AND updated_at >= $3 \
         AND (updated_at > $4 OR (updated_at = $4 AND id > $5)) ORDER BY updated_at, id LIMIT $6"
    ))
    .bind(f.kind.clone().unwrap_or_default())
    .bind(f.parent.clone().unwrap_or_default())
    .bind(f.updated_since.map_or(i64::MIN, Timestamp::as_millis))
    .bind(after_at)
    .bind(after_id)
    .bind(f.limit)
    .fetch_all(store.reader())
    .await?;
    rows.iter().map(from_row).collect()
}

/// Creates the org, or updates it when `target` or its sourcedId (POST) names an
/// existing one. Sending what is already stored changes nothing.
pub async fn upsert_org(
    store: &Store,
    audit_key: &AuditKey,
    now: Timestamp,
    origin: &Origin,
    target: Option<&str>,
    input: OrgInput,
) -> Result<Upserted<Org>, DirectoryError> {
    let change = || OrgChange::Replace(input.clone());
    match write_org(store, audit_key, now, origin, target, change(), None, true).await {
        // Two first-time creates of one sourcedId raced (PostgreSQL: the row the
        // loser would have locked did not exist yet). The same record is a no-op;
        // a different one was authorized against another state: read and retry.
        Err(DirectoryError::Store(store::StoreError::Duplicate(_))) if target.is_none() => {
            write_org(store, audit_key, now, origin, None, change(), None, false).await
        }
        other => other,
    }
}

/// Applies an RFC 7396 merge patch to the org as it is inside the write
/// transaction (two patches of different fields both stand); `if_match` makes it
/// conditional on the `ETag` the caller read (412 otherwise).
pub async fn patch_org(
    store: &Store,
    audit_key: &AuditKey,
    now: Timestamp,
    origin: &Origin,
    id: &str,
    patch: serde_json::Value,
    if_match: Option<&str>,
) -> Result<Upserted<Org>, DirectoryError> {
    if patch.get("id").is_some() {
        return Err(DirectoryError::field(
            "id",
            "set by the server; leave it out",
        ));
    }
    write_org(
        store,
        audit_key,
        now,
        origin,
        Some(id),
        OrgChange::Patch(patch),
        if_match,
        true,
    )
    .await
}

enum OrgChange {
    Replace(OrgInput),
    Patch(serde_json::Value),
}

// The audit key is an explicit argument since it left `Store` (issue 15); bundling
// store, key, clock and origin into one write context is left to the directory's
// storage rework rather than done piecemeal here.
#[allow(clippy::too_many_arguments)]
async fn write_org(
    store: &Store,
    audit_key: &AuditKey,
    now: Timestamp,
    origin: &Origin,
    target: Option<&str>,
    change: OrgChange,
    if_match: Option<&str>,
    may_update: bool,
) -> Result<Upserted<Org>, DirectoryError> {
    let mut tx = store.begin().await?;
    let (existing, mut input) = match (change, target) {
        (OrgChange::Replace(input), None) => {
            store
                .lock_row(&mut tx, "orgs", "sourced_id", &input.sourced_id)
                .await?;
            let row = sqlx::query(&format!("SELECT {COLUMNS} FROM orgs WHERE sourced_id = $1"))
                .bind(&input.sourced_id)
                .fetch_optional(&mut *tx)
                .await?;
            (row.as_ref().map(from_row).transpose()?, input)
        }
        (change, Some(id)) => {
            store.lock_row(&mut tx, "orgs", "id", id).await?;
            let row = sqlx::query(&format!("SELECT {COLUMNS} FROM orgs WHERE id = $1"))
                .bind(id)
                .fetch_optional(&mut *tx)
                .await?
                .ok_or_else(|| DirectoryError::NotFound {
                    kind: "org",
                    id: id.to_string(),
                })?;
            let current = from_row(&row)?;
            let input = match change {
                OrgChange::Replace(input) => input,
                OrgChange::Patch(patch) => super::patch::merge_patch(&current.to_input(), patch)?,
            };
            (Some(current), input)
        }
        (OrgChange::Patch(_), None) => {
            return Err(DirectoryError::field(
                "id",
                "a patch names the org to change",
            ))
        }
    };
    if let (Some(expected), Some(current)) = (if_match, &existing) {
        if !crate::api::etag_matches(expected, &current.etag()) {
            return Err(DirectoryError::PreconditionFailed(current.etag()));
        }
    }
    let mut errors = check_org(&mut input);
    let parent_id = match &input.parent {
        Some(p) => match resolve_org_tx(&mut tx, p).await? {
            Some((id, _)) => {
                let row = sqlx::query("SELECT kind FROM orgs WHERE id = $1")
                    .bind(&id)
                    .fetch_one(&mut *tx)
                    .await?;
                let parent_kind: String = store::get(&row, "kind")?;
                if !allowed_parents(&input.kind).contains(&parent_kind.as_str()) {
                    errors.push(FieldError::new(
                        "parent",
                        format!(
                            "a {} cannot sit under a {parent_kind}; allowed parents: {}",
                            input.kind,
                            allowed_parents(&input.kind).join(", ")
                        ),
                    ));
                }
                Some(id)
            }
            None => {
                errors.push(FieldError::new(
                    "parent",
                    format!("no org with id or sourcedId {p:?}"),
                ));
                None
            }
        },
        None => None,
    };
    if !errors.is_empty() {
        return Err(DirectoryError::Invalid(errors));
    }
    let status = input.status.clone().unwrap_or_else(|| {
        existing
            .as_ref()
            .map_or("active".into(), |o| o.status.clone())
    });
    if let (Some(old), Some(p)) = (&existing, &parent_id) {
        if ancestry(&mut tx, p).await?.contains(&old.id) {
            return Err(DirectoryError::field(
                "parent",
                "an org cannot sit under itself or one of the orgs below it",
            ));
        }
    }
    if let Some(old) = existing.as_ref().filter(|o| o.kind != input.kind) {
        let children = sqlx::query("SELECT sourced_id, kind FROM orgs WHERE parent_id = $1")
            .bind(&old.id)
            .fetch_all(&mut *tx)
            .await?;
        for c in &children {
            let kind: String = store::get(c, "kind")?;
            if !allowed_parents(&kind).contains(&input.kind.as_str()) {
                let child: String = store::get(c, "sourced_id")?;
                return Err(DirectoryError::field(
                    "kind",
                    format!(
                        "its child {child} (a {kind}) cannot sit under a {}",
                        input.kind
                    ),
                ));
            }
        }
    }
    let (id, created, changes) = match &existing {
        Some(old) => {
            let mut changes = serde_json::Map::new();
            let mut diff = |name: &str, a: serde_json::Value, b: serde_json::Value| {
                if a != b {
                    changes.insert(name.into(), serde_json::json!({ "from": a, "to": b }));
                }
            };
            diff(
                "sourcedId",
                old.sourced_id.clone().into(),
                input.sourced_id.clone().into(),
            );
            diff("kind", old.kind.clone().into(), input.kind.clone().into());
            diff("name", old.name.clone().into(), input.name.clone().into());
            diff(
                "identifier",
                old.identifier.clone().into(),
                input.identifier.clone().into(),
            );
            diff(
                "parentId",
                old.parent_id.clone().into(),
                parent_id.clone().into(),
            );
            diff("status", old.status.clone().into(), status.clone().into());
            if changes.is_empty() {
                return Ok(Upserted {
                    record: get_org(store, &old.id).await?,
                    created: false,
                    changed: false,
                });
            }
            if !may_update {
                return Err(DirectoryError::Conflict(format!(
                    "{} was created by another request just now; read it and retry",
                    old.sourced_id
                )));
            }
            // Optimistic concurrency, as for people.
            let done = sqlx::query("UPDATE orgs SET sourced_id = $1, kind = $2, name = $3, identifier = $4, parent_id = $5, status = $6, updated_at = $7 WHERE id = $8 AND updated_at = $9")
                .bind(&input.sourced_id)
                .bind(&input.kind)
                .bind(&input.name)
                .bind(&input.identifier)
                .bind(&parent_id)
                .bind(&status)
                .bind(now.as_millis().max(old.updated_at_ms + 1))
                .bind(&old.id)
                .bind(old.updated_at_ms)
                .execute(&mut *tx)
                .await?;
            if done.rows_affected() != 1 {
                return Err(DirectoryError::Conflict(
                    "the org changed while this request ran; read it again and retry".into(),
                ));
            }
            (old.id.clone(), false, serde_json::Value::Object(changes))
        }
        None => {
            let id = store::new_id();
            sqlx::query("INSERT INTO orgs (id, sourced_id, kind, name, identifier, parent_id, status, created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $8)")
                .bind(&id)
                .bind(&input.sourced_id)
                .bind(&input.kind)
                .bind(&input.name)
                .bind(&input.identifier)
                .bind(&parent_id)
                .bind(&status)
                .bind(now)
                .execute(&mut *tx)
                .await?;
            (id, true, serde_json::to_value(&input).unwrap_or_default())
        }
    };
    // The outbox event, in this transaction: the org as the API returns it (issue 16).
    let row = sqlx::query(&format!("SELECT {COLUMNS} FROM orgs WHERE id = $1"))
        .bind(&id)
        .fetch_one(&mut *tx)
        .await?;
    let event = NewEvent {
        kind: if created {
            EventType::OrgCreated
        } else {
            EventType::OrgUpdated
        },
        subject: format!("orgs/{id}"),
        data: serde_json::to_value(from_row(&row)?).unwrap_or_default(),
    };
    outbox::append(&mut tx, now, event).await?;
    audit::record(
        &mut tx,
        audit_key,
        now.as_millis(),
        origin,
        Entry {
            action: if created { "org.create" } else { "org.update" },
            outcome: Outcome::Success,
            target_kind: "org",
            target_id: &id,
            details: changes,
        },
    )
    .await?;
    tx.commit().await.map_err(store::StoreError::from)?;
    Ok(Upserted {
        record: get_org(store, &id).await?,
        created,
        changed: true,
    })
}
