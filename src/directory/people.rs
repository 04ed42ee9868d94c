//! People: create-or-update by sourcedId (idempotent), merge-patch, lifecycle.

use super::model::{Person, PersonInput, PersonStatus};
use super::patch::merge_patch;
use super::validate::check_person;
use super::{people_repo as repo, DirectoryError};
use crate::audit::{self, Entry, Origin, Outcome};
use crate::clock::Timestamp;
use crate::crypto::AuditKey;
use crate::error::FieldError;
use crate::outbox::{self, EventType, NewEvent};
use crate::store::{self, Store, StoreError, Tx};

/// The result of a create-or-update.
#[derive(Debug)]
pub struct Upserted<T> {
    pub record: T,
    pub created: bool,
    /// False when the request matched what was stored: nothing was written.
    pub changed: bool,
}

pub async fn get_person(store: &Store, id_or_sourced: &str) -> Result<Person, DirectoryError> {
    let mut conn = store.reader().acquire().await?;
    let mut found = repo::load(
        &mut conn,
        "p.id = $1 OR p.sourced_id = $1 ORDER BY CASE WHEN p.id = $1 THEN 0 ELSE 1 END LIMIT 1",
        &[id_or_sourced.to_string()],
    )
    .await?;
    found.pop().ok_or_else(|| DirectoryError::NotFound {
        kind: "user",
        id: id_or_sourced.to_string(),
    })
}

/// A person by id, without kinds, identifiers and affiliations (one query instead
/// of four): for hot paths that need only the person's own fields, such as the
/// token endpoint's status check and the `profile` and `email` claims.
pub async fn get_person_core(store: &Store, id: &str) -> Result<Person, DirectoryError> {
    let mut conn = store.reader().acquire().await?;
    let mut found = repo::load_core(&mut conn, "p.id = $1", &[id.to_string()]).await?;
    found.pop().ok_or_else(|| DirectoryError::NotFound {
        kind: "user",
        id: id.to_string(),
    })
}

/// The person with this sourcedId (not id): what `POST /users` updates.
pub async fn find_person_by_sourced_id(
    store: &Store,
    sourced_id: &str,
) -> Result<Option<Person>, DirectoryError> {
    let mut conn = store.reader().acquire().await?;
    Ok(
        repo::load(&mut conn, "p.sourced_id = $1", &[sourced_id.to_string()])
            .await?
            .pop(),
    )
}

/// The person a sign-in name refers to: a username, or an email address that
/// belongs to exactly one person (usernames and emails are stored lower-cased).
pub async fn find_person_by_login(
    store: &Store,
    login: &str,
) -> Result<Option<Person>, DirectoryError> {
    // RFC 8265 §3.3: the name is prepared as the stored usernames were.
    let name = crate::input::prepare_username(login);
    if crate::input::find_control(&name, false).is_some() {
        return Ok(None);
    }
    let mut conn = store.reader().acquire().await?;
    let mut found = repo::load(&mut conn, "p.username = $1", std::slice::from_ref(&name)).await?;
    if found.is_empty() && name.contains('@') {
        found = repo::load(&mut conn, "p.email = $1", &[name]).await?;
        if found.len() != 1 {
            return Ok(None);
        }
    }
    Ok(found.pop())
}

/// People whose `field` (`username`, `email`, `sourced_id` or `identifier:TYPE`) is
/// `value`: how a federated sign-in finds its person. Usernames and emails are
/// compared lower-cased, as stored.
pub async fn find_people_by_field(
    store: &Store,
    field: &str,
    value: &str,
) -> Result<Vec<Person>, DirectoryError> {
    let mut conn = store.reader().acquire().await?;
    if crate::input::find_control(value, false).is_some() {
        // No stored value holds one; asking the database would only fail on PostgreSQL.
        return Ok(Vec::new());
    }
    let lower = value.trim().to_lowercase();
    match field {
        "username" => {
            let name = crate::input::prepare_username(value);
            repo::load_core(&mut conn, "p.username = $1", &[name]).await
        }
        "email" => repo::load_core(&mut conn, "p.email = $1", &[lower]).await,
        "sourced_id" => repo::load_core(&mut conn, "p.sourced_id = $1", &[value.trim().to_string()]).await,
        other => match other.strip_prefix("identifier:") {
            Some(kind) => {
                repo::load_core(
                    &mut conn,
                    "p.id IN (SELECT person_id FROM person_identifiers WHERE id_type = $1 AND value = $2)",
                    &[kind.to_string(), value.trim().to_string()],
                )
                .await
            }
            None => Err(DirectoryError::field("field", format!("{other} cannot find a person"))),
        },
    }
}

#[derive(Debug, Default)]
pub struct PersonFilter {
    pub kind: Option<String>,
    /// An org id: people affiliated with it or any org below it.
    pub org: Option<String>,
    pub status: Option<String>,
    pub updated_since: Option<Timestamp>,
    pub after: Option<(i64, String)>,
    pub limit: i64,
}

pub async fn list_people(store: &Store, f: &PersonFilter) -> Result<Vec<Person>, DirectoryError> {
    let (after_at, after_id) = f.after.clone().unwrap_or((i64::MIN, String::new()));
    let binds = [
        f.status.clone().unwrap_or_default(),
        f.kind.clone().unwrap_or_default(),
        f.org.clone().unwrap_or_default(),
        f.updated_since
            .map_or(i64::MIN, Timestamp::as_millis)
            .to_string(),
        after_at.to_string(),
        after_id,
        f.limit.to_string(),
    ];
    // Numbers travel as text and are cast, so one bind list serves both databases.
    let filter = "($1 = '' OR p.status = $1) \
        AND ($2 = '' OR EXISTS (SELECT 1 FROM person_kinds k WHERE k.person_id = p.id AND k.kind = $2)) \
        AND ($3 = '' OR EXISTS (SELECT 1 FROM affiliations a WHERE a.person_id = p.id AND a.org_id IN ( \
             WITH RECURSIVE sub(id) AS (SELECT id FROM orgs WHERE id = $3 UNION SELECT o.id FROM orgs o JOIN sub ON o.parent_id = sub.id) \
             SELECT id FROM sub))) \
        AND p.updated_at >= CAST($4 AS BIGINT) \
        AND (p.updated_at > CAST($5 AS BIGINT) OR (p.updated_at = CAST($5 AS BIGINT) AND p.id > $6)) \
        ORDER BY p.updated_at, p.id LIMIT CAST($7 AS BIGINT)";
    let mut conn = store.reader().acquire().await?;
    repo::load(&mut conn, filter, &binds).await
}

/// Org ids that an input's affiliations name (for authorizing the request first).
pub async fn orgs_of_input(
    store: &Store,
    input: &PersonInput,
) -> Result<Vec<String>, DirectoryError> {
    let mut out = Vec::new();
    for a in &input.affiliations {
        if let Some(id) = super::resolve_org(store, &a.org).await? {
            out.push(id);
        }
    }
    out.sort();
    out.dedup();
    Ok(out)
}

/// Resolves affiliation orgs to ids in place; reports unknown orgs and repeats.
async fn resolve_affiliations(
    tx: &mut Tx,
    input: &mut PersonInput,
    errors: &mut Vec<FieldError>,
) -> Result<(), DirectoryError> {
    for (i, a) in input.affiliations.iter_mut().enumerate() {
        match super::orgs::resolve_org_tx(tx, &a.org).await? {
            Some((id, _)) => a.org = id,
            None => errors.push(FieldError::new(
                format!("affiliations[{i}].org"),
                format!("no org with id or sourcedId {:?}", a.org),
            )),
        }
    }
    input
        .affiliations
        .sort_by(|a, b| (&a.org, &a.role).cmp(&(&b.org, &b.role)));
    if input
        .affiliations
        .windows(2)
        .any(|w| w[0].org == w[1].org && w[0].role == w[1].role)
    {
        errors.push(FieldError::new(
            "affiliations",
            "the same org and role appear twice",
        ));
    }
    Ok(())
}

/// Creates the person or, when `target` or the sourcedId names an existing one,
/// replaces its record. The same request twice writes nothing the second time.
/// Everything, audit event included, commits in one transaction.
pub async fn upsert_person(
    store: &Store,
    audit_key: &AuditKey,
    now: Timestamp,
    origin: &Origin,
    target: Option<&str>,
    input: PersonInput,
) -> Result<Upserted<Person>, DirectoryError> {
    let change = Change::Replace(Box::new(input));
    match upsert_once(
        store,
        audit_key,
        now,
        origin,
        target,
        change.clone(),
        true,
        Preconditions::NONE,
    )
    .await
    {
        // Two first-time requests for one sourcedId raced. If the winner stored the
        // same record this one is a no-op (200); if not, this caller was authorized
        // against orgs that are no longer the record's, so it must read and retry.
        Err(DirectoryError::Store(StoreError::Duplicate(_))) if target.is_none() => {
            upsert_once(
                store,
                audit_key,
                now,
                origin,
                None,
                change,
                false,
                Preconditions::NONE,
            )
            .await
        }
        other => other,
    }
}

/// What a write asks for: a whole record (POST), or an RFC 7396 merge patch applied
/// to the record as it is inside the write transaction (PATCH), so that two patches
/// of different fields both stand.
#[derive(Clone)]
enum Change {
    Replace(Box<PersonInput>),
    Patch(serde_json::Value),
}

// The audit key is an explicit argument since it left `Store` (issue 15); bundling
// store, key, clock and origin into one write context is left to the directory's
// storage rework rather than done piecemeal here.
#[allow(clippy::too_many_arguments)]
async fn upsert_once(
    store: &Store,
    audit_key: &AuditKey,
    now: Timestamp,
    origin: &Origin,
    target: Option<&str>,
    change: Change,
    may_update: bool,
    pre: Preconditions<'_>,
) -> Result<Upserted<Person>, DirectoryError> {
    let mut tx = store.begin().await?;
    let (existing, mut input, mut errors) = match change {
        Change::Replace(input) => {
            let mut input = *input;
            let errors = check_person(&mut input);
            let existing = match target {
                Some(id) => Some(load_locked(store, &mut tx, "id", id).await?),
                None => {
                    store
                        .lock_row(&mut tx, "people", "sourced_id", &input.sourced_id)
                        .await?;
                    repo::load(&mut tx, "p.sourced_id = $1", &[input.sourced_id.clone()])
                        .await?
                        .pop()
                }
            };
            (existing, input, errors)
        }
        Change::Patch(patch) => {
            let id = target.unwrap_or_default();
            let current = load_locked(store, &mut tx, "id", id).await?;
            orgs_unchanged(&current, pre.authorized_orgs)?;
            let mut input: PersonInput = merge_patch(&current.to_input(), patch)?;
            let errors = check_person(&mut input);
            (Some(current), input, errors)
        }
    };
    if let (Some(expected), Some(current)) = (pre.if_match, &existing) {
        if !crate::api::etag_matches(expected, &current.etag()) {
            return Err(DirectoryError::PreconditionFailed(current.etag()));
        }
    }
    resolve_affiliations(&mut tx, &mut input, &mut errors).await?;
    if !errors.is_empty() {
        return Err(DirectoryError::Invalid(errors));
    }
    let org_ids: Vec<String> = input.affiliations.iter().map(|a| a.org.clone()).collect();
    let (id, created, details) = match existing {
        Some(old) => {
            let mut before = old.to_input();
            before
                .affiliations
                .sort_by(|a, b| (&a.org, &a.role).cmp(&(&b.org, &b.role)));
            if input.status.as_deref().is_some_and(|s| s != old.status) {
                return Err(DirectoryError::field(
                    "status",
                    format!(
                        "{} is {}; change status with POST /api/v1/users/{}/lifecycle",
                        old.sourced_id, old.status, old.id
                    ),
                ));
            }
            let changes = diff(&before, &input);
            if changes.is_empty() {
                drop(tx);
                return Ok(Upserted {
                    record: old,
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
            if let Some(clash) = repo::find_clash(&mut tx, &old.id, &input).await? {
                return Err(DirectoryError::Conflict(clash));
            }
            repo::write(
                &mut tx,
                &old.id,
                &input,
                &org_ids,
                now,
                repo::Write::Update {
                    expected_updated_at: old.updated_at_ms,
                },
            )
            .await?;
            let details = serde_json::Map::from_iter(changes);
            (old.id, false, serde_json::Value::Object(details))
        }
        None => {
            let id = store::new_id();
            if let Some(clash) = repo::find_clash(&mut tx, &id, &input).await? {
                // The clash may be with this very record, committed by a racing
                // request since it was looked up: then take the retry path.
                if repo::load(&mut tx, "p.sourced_id = $1", &[input.sourced_id.clone()])
                    .await?
                    .is_empty()
                {
                    return Err(DirectoryError::Conflict(clash));
                }
                return Err(DirectoryError::Store(StoreError::Duplicate(
                    "people.sourced_id".into(),
                )));
            }
            let status = input.status.clone().unwrap_or_else(|| "active".into());
            repo::write(
                &mut tx,
                &id,
                &input,
                &org_ids,
                now,
                repo::Write::Insert { status: &status },
            )
            .await?;
            (id, true, serde_json::to_value(&input).unwrap_or_default())
        }
    };
    let action = if created {
        "user.create"
    } else {
        "user.update"
    };
    let kind = if created {
        EventType::PersonCreated
    } else {
        EventType::PersonUpdated
    };
    announce(&mut tx, now, kind, &id).await?;
    audit::record(
        &mut tx,
        audit_key,
        now.as_millis(),
        origin,
        Entry {
            action,
            outcome: Outcome::Success,
            target_kind: "user",
            target_id: &id,
            details,
        },
    )
    .await?;
    tx.commit().await.map_err(StoreError::from)?;
    Ok(Upserted {
        record: get_person(store, &id).await?,
        created,
        changed: true,
    })
}

/// The outbox event of a change to person `id`, in the change's transaction: the
/// person as the API returns it, read back inside the transaction (issue 16).
async fn announce(
    tx: &mut Tx,
    now: Timestamp,
    kind: EventType,
    id: &str,
) -> Result<(), DirectoryError> {
    let person = repo::load(tx, "p.id = $1", &[id.to_string()])
        .await?
        .pop()
        .ok_or_else(|| DirectoryError::NotFound {
            kind: "user",
            id: id.to_string(),
        })?;
    let event = NewEvent {
        kind,
        subject: format!("people/{id}"),
        data: serde_json::to_value(&person).unwrap_or_default(),
    };
    outbox::append(tx, now, event).await?;
    Ok(())
}

/// Field-by-field differences, as `{field: {from, to}}`.
fn diff(before: &PersonInput, after: &PersonInput) -> Vec<(String, serde_json::Value)> {
    let (serde_json::Value::Object(a), serde_json::Value::Object(b)) = (
        serde_json::to_value(before).unwrap_or_default(),
        serde_json::to_value(after).unwrap_or_default(),
    ) else {
        return Vec::new();
    };
    b.iter()
        .filter(|(k, v)| a.get(*k) != Some(*v))
        .map(|(k, v)| (k.clone(), serde_json::json!({ "from": a.get(k), "to": v })))
        .collect()
}

/// Applies an RFC 7396 merge patch to the person's record, read and written in one
/// transaction. `status` moves only through the lifecycle endpoint; `id` and
/// timestamps are the server's. `if_match` (an `ETag` the caller read) makes the
/// write conditional (RFC 9110 §13.1.1): 412 when the record has changed since.
// The audit key is an explicit argument since it left `Store` (issue 15); bundling
// store, key, clock and origin into one write context is left to the directory's
// storage rework rather than done piecemeal here.
#[allow(clippy::too_many_arguments)]
pub async fn patch_person(
    store: &Store,
    audit_key: &AuditKey,
    now: Timestamp,
    origin: &Origin,
    id: &str,
    patch: serde_json::Value,
    if_match: Option<&str>,
    authorized_orgs: Option<&[String]>,
) -> Result<Upserted<Person>, DirectoryError> {
    if let Some(obj) = patch.as_object() {
        for key in [
            "id",
            "status",
            "createdAt",
            "updatedAt",
            "statusChangedAt",
            "statusReason",
        ] {
            if obj.contains_key(key) {
                let why = if key == "status" {
                    "change status with POST /api/v1/users/{id}/lifecycle"
                } else {
                    "set by the server; leave it out"
                };
                return Err(DirectoryError::field(key, why));
            }
        }
    }
    upsert_once(
        store,
        audit_key,
        now,
        origin,
        Some(id),
        Change::Patch(patch),
        true,
        Preconditions {
            if_match,
            authorized_orgs,
        },
    )
    .await
}

/// What must still hold when a write reads the record inside its transaction.
#[derive(Clone, Copy)]
struct Preconditions<'a> {
    /// The `ETag` the caller read (`If-Match`).
    if_match: Option<&'a str>,
    /// The orgs the caller was authorized in (see [`orgs_unchanged`]).
    authorized_orgs: Option<&'a [String]>,
}

impl Preconditions<'_> {
    const NONE: Preconditions<'static> = Preconditions {
        if_match: None,
        authorized_orgs: None,
    };
}

/// The caller was authorized against the person's orgs as it read them; if the
/// person has moved to other orgs since (a concurrent change), the write is refused
/// rather than made on the strength of a check that no longer holds.
fn orgs_unchanged(current: &Person, authorized: Option<&[String]>) -> Result<(), DirectoryError> {
    match authorized {
        Some(orgs) if !current.org_ids().iter().all(|o| orgs.contains(o)) => {
            Err(DirectoryError::Conflict(
                "the person's orgs changed while this request ran; read the record again and retry"
                    .into(),
            ))
        }
        _ => Ok(()),
    }
}

/// The person `column = value`, locked for the rest of the transaction.
async fn load_locked(
    store: &Store,
    tx: &mut Tx,
    column: &'static str,
    value: &str,
) -> Result<Person, DirectoryError> {
    store.lock_row(tx, "people", column, value).await?;
    repo::load(tx, &format!("p.{column} = $1"), &[value.to_string()])
        .await?
        .pop()
        .ok_or_else(|| DirectoryError::NotFound {
            kind: "user",
            id: value.to_string(),
        })
}

/// Moves a person through the lifecycle (suspend, reinstate, graduate, separate).
// The audit key is an explicit argument since it left `Store` (issue 15); bundling
// store, key, clock and origin into one write context is left to the directory's
// storage rework rather than done piecemeal here.
#[allow(clippy::too_many_arguments)]
pub async fn transition_person(
    store: &Store,
    audit_key: &AuditKey,
    now: Timestamp,
    origin: &Origin,
    id: &str,
    status: &str,
    reason: Option<String>,
    authorized_orgs: Option<&[String]>,
) -> Result<Person, DirectoryError> {
    let next = PersonStatus::parse(status).ok_or_else(|| {
        let all: Vec<&str> = PersonStatus::ALL.iter().map(|s| s.as_str()).collect();
        DirectoryError::field("status", format!("must be one of {}", all.join(", ")))
    })?;
    if let Some(r) = &reason {
        if r.chars().count() > 500 {
            return Err(DirectoryError::field(
                "reason",
                "must be at most 500 characters",
            ));
        }
        if let Some(c) = crate::input::find_control(r, false) {
            return Err(DirectoryError::field(
                "reason",
                format!(
                    "contains a control character ({}); write the reason on one line",
                    crate::input::code_point(c)
                ),
            ));
        }
    }
    let mut tx = store.begin().await?;
    let current = load_locked(store, &mut tx, "id", id).await?;
    orgs_unchanged(&current, authorized_orgs)?;
    let from = PersonStatus::parse(&current.status).unwrap_or(PersonStatus::Active);
    if from == next {
        return Ok(current);
    }
    if !from.may_become(next) {
        return Err(DirectoryError::Conflict(format!(
            "a {} person cannot become {}; allowed from {}: {}",
            from.as_str(),
            next.as_str(),
            from.as_str(),
            PersonStatus::ALL
                .iter()
                .filter(|s| from.may_become(**s))
                .map(|s| s.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        )));
    }
    if next == PersonStatus::Graduated && !current.kinds.iter().any(|k| k == "student") {
        return Err(DirectoryError::Conflict(
            "only students graduate; use separated for staff who leave".into(),
        ));
    }
    repo::set_status(
        &mut tx,
        &current.id,
        from.as_str(),
        next.as_str(),
        reason.as_deref(),
        now,
    )
    .await?;
    announce(&mut tx, now, EventType::PersonLifecycle, &current.id).await?;
    audit::record(
        &mut tx,
        audit_key,
        now.as_millis(),
        origin,
        Entry {
            action: "user.lifecycle",
            outcome: Outcome::Success,
            target_kind: "user",
            target_id: &current.id,
            details: serde_json::json!({ "status": { "from": from.as_str(), "to": next.as_str() }, "reason": reason }),
        },
    )
    .await?;
    tx.commit().await.map_err(StoreError::from)?;
    get_person(store, &current.id).await
}
