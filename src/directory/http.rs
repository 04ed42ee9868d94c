use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;

use super::{OrgFilter, OrgInput, PersonFilter, PersonInput, Upserted};
use crate::api::{
    decode_cursor, encode_cursor, if_match, page_limit, with_etag, ApiJson, ApiQuery, MergePatch,
    Page,
};
use crate::authz::{Action, Actor, Object};
use crate::clock::Timestamp;
use crate::error::{AppError, FieldError};
use crate::AppState;

pub(super) fn router() -> Router<AppState> {
    Router::new()
        .route("/api/v1/users", post(upsert_user).get(list_users))
        .route("/api/v1/users/{id}", get(get_user).patch(patch_user))
        .route("/api/v1/users/{id}/lifecycle", post(lifecycle_user))
        .route("/api/v1/orgs", post(upsert_org).get(list_orgs))
        .route("/api/v1/orgs/{id}", get(get_org).patch(patch_org))
}

/// 201 with Location for a new record, 200 otherwise.
fn upserted<T: serde::Serialize>(u: Upserted<T>, location: String) -> Response {
    let resp = if u.created {
        (
            StatusCode::CREATED,
            [(header::LOCATION, location)],
            Json(&u.record),
        )
            .into_response()
    } else {
        Json(&u.record).into_response()
    };
    with_etag(&u.record, resp)
}

fn since(v: &Option<String>) -> Result<Option<Timestamp>, AppError> {
    v.as_deref()
        .map(|t| {
            Timestamp::parse_rfc3339(t).ok_or_else(|| {
                AppError::Validation(vec![FieldError::new(
                    "updatedSince",
                    "must be an RFC 3339 time, e.g. 2026-09-01T00:00:00Z",
                )])
            })
        })
        .transpose()
}

fn query<T>(q: Result<ApiQuery<T>, AppError>) -> Result<T, AppError> {
    q.map(|ApiQuery(v)| v)
}

/// The person, or — when there is none — a 404 only for callers allowed to see the
/// whole directory; others get the same 403 as for someone else's record, so ids
/// and sourcedIds cannot be probed.
pub(crate) async fn find_person_for(
    app: &AppState,
    actor: &Actor,
    id: &str,
    obj: Object,
    act: Action,
) -> Result<super::Person, AppError> {
    match super::get_person(app.store(), id).await {
        Ok(p) => Ok(p),
        Err(super::DirectoryError::NotFound { kind, id }) => {
            actor.require(app, obj, act, None).await?;
            Err(AppError::NotFound(format!("{kind} {id}")))
        }
        Err(e) => Err(e.into()),
    }
}

/// Writes need the right in every org the person is or will be affiliated with
/// (hub-wide when none).
async fn require_each(
    app: &AppState,
    actor: &Actor,
    obj: Object,
    orgs: &[String],
) -> Result<(), AppError> {
    if orgs.is_empty() {
        actor.require(app, obj, Action::Write, None).await?;
    }
    for org in orgs {
        actor.require(app, obj, Action::Write, Some(org)).await?;
    }
    Ok(())
}

async fn upsert_user(
    State(app): State<AppState>,
    actor: Actor,
    ApiJson(input): ApiJson<PersonInput>,
) -> Result<Response, AppError> {
    let mut orgs = super::people::orgs_of_input(app.store(), &input).await?;
    if let Some(existing) =
        super::people::find_person_by_sourced_id(app.store(), &input.sourced_id).await?
    {
        orgs.extend(existing.org_ids());
    }
    orgs.sort();
    orgs.dedup();
    require_each(&app, &actor, Object::Users, &orgs).await?;
    let done = super::upsert_person(
        app.store(),
        app.audit_key(),
        app.clock().now(),
        &actor.origin,
        None,
        input,
    )
    .await?;
    let location = format!("/api/v1/users/{}", done.record.id);
    Ok(upserted(done, location))
}

async fn get_user(
    State(app): State<AppState>,
    actor: Actor,
    Path(id): Path<String>,
) -> Result<Response, AppError> {
    let person = find_person_for(&app, &actor, &id, Object::Users, Action::Read).await?;
    actor
        .require_in_any(&app, Object::Users, Action::Read, &person.org_ids())
        .await?;
    Ok(with_etag(&person, Json(&person).into_response()))
}

async fn patch_user(
    State(app): State<AppState>,
    actor: Actor,
    Path(id): Path<String>,
    headers: HeaderMap,
    MergePatch(patch): MergePatch,
) -> Result<Response, AppError> {
    let person = find_person_for(&app, &actor, &id, Object::Users, Action::Write).await?;
    let mut orgs = person.org_ids();
    if let Some(list) = patch.get("affiliations").and_then(|v| v.as_array()) {
        for org in list
            .iter()
            .filter_map(|a| a.get("org").and_then(|o| o.as_str()))
        {
            if let Some(id) = super::resolve_org(app.store(), org).await? {
                orgs.push(id);
            }
        }
    }
    orgs.sort();
    orgs.dedup();
    require_each(&app, &actor, Object::Users, &orgs).await?;
    let done = super::patch_person(
        app.store(),
        app.audit_key(),
        app.clock().now(),
        &actor.origin,
        &person.id,
        patch,
        if_match(&headers).as_deref(),
        Some(&orgs),
    )
    .await?;
    Ok(with_etag(&done.record, Json(&done.record).into_response()))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct LifecycleRequest {
    status: String,
    reason: Option<String>,
}

async fn lifecycle_user(
    State(app): State<AppState>,
    actor: Actor,
    Path(id): Path<String>,
    ApiJson(req): ApiJson<LifecycleRequest>,
) -> Result<Response, AppError> {
    let person = find_person_for(&app, &actor, &id, Object::Users, Action::Write).await?;
    let orgs = person.org_ids();
    require_each(&app, &actor, Object::Users, &orgs).await?;
    let person = super::transition_person(
        app.store(),
        app.audit_key(),
        app.clock().now(),
        &actor.origin,
        &person.id,
        &req.status,
        req.reason,
        Some(&orgs),
    )
    .await?;
    Ok(with_etag(&person, Json(&person).into_response()))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct UserQuery {
    kind: Option<String>,
    org: Option<String>,
    status: Option<String>,
    updated_since: Option<String>,
    cursor: Option<String>,
    limit: Option<i64>,
}

async fn list_users(
    State(app): State<AppState>,
    actor: Actor,
    q: Result<ApiQuery<UserQuery>, AppError>,
) -> Result<Json<Page<super::Person>>, AppError> {
    let q = query(q)?;
    let org = match &q.org {
        Some(o) => Some(super::resolve_org(app.store(), o).await?.ok_or_else(|| {
            AppError::Validation(vec![FieldError::new("org", format!("no org {o:?}"))])
        })?),
        None => None,
    };
    actor
        .require(&app, Object::Users, Action::Read, org.as_deref())
        .await?;
    let limit = page_limit(q.limit)?;
    let filter = PersonFilter {
        kind: q.kind,
        org,
        status: q.status,
        updated_since: since(&q.updated_since)?,
        after: q.cursor.as_deref().map(decode_cursor).transpose()?,
        limit,
    };
    let items = super::list_people(app.store(), &filter).await?;
    let next_cursor = (items.len() as i64 == limit)
        .then(|| items.last().map(|p| encode_cursor(p.updated_at_ms, &p.id)))
        .flatten();
    Ok(Json(Page { items, next_cursor }))
}

/// Writing an org needs the right in the org itself (when it exists) and, when it
/// moves or is new, in its new parent; a new root (district) needs hub-wide rights.
async fn authorize_org_write(
    app: &AppState,
    actor: &Actor,
    existing: Option<&super::Org>,
    parent: Option<&str>,
) -> Result<(), AppError> {
    if let Some(org) = existing {
        actor
            .require(app, Object::Orgs, Action::Write, Some(&org.id))
            .await?;
    }
    let parent_id = match parent {
        Some(p) => super::resolve_org(app.store(), p).await?,
        None => None,
    };
    let moves = existing.is_none_or(|o| o.parent_id != parent_id);
    if moves && (parent_id.is_some() || parent.is_none()) {
        actor
            .require(app, Object::Orgs, Action::Write, parent_id.as_deref())
            .await?;
    }
    Ok(())
}

async fn upsert_org(
    State(app): State<AppState>,
    actor: Actor,
    ApiJson(input): ApiJson<OrgInput>,
) -> Result<Response, AppError> {
    let existing = super::find_org_by_sourced_id(app.store(), &input.sourced_id).await?;
    authorize_org_write(&app, &actor, existing.as_ref(), input.parent.as_deref()).await?;
    let done = super::upsert_org(
        app.store(),
        app.audit_key(),
        app.clock().now(),
        &actor.origin,
        None,
        input,
    )
    .await?;
    let location = format!("/api/v1/orgs/{}", done.record.id);
    Ok(upserted(done, location))
}

async fn get_org(
    State(app): State<AppState>,
    actor: Actor,
    Path(id): Path<String>,
) -> Result<Response, AppError> {
    let org = super::get_org(app.store(), &id).await?;
    actor
        .require(&app, Object::Orgs, Action::Read, Some(&org.id))
        .await?;
    Ok(with_etag(&org, Json(&org).into_response()))
}

async fn patch_org(
    State(app): State<AppState>,
    actor: Actor,
    Path(id): Path<String>,
    headers: HeaderMap,
    MergePatch(patch): MergePatch,
) -> Result<Response, AppError> {
    let org = super::get_org(app.store(), &id).await?;
    // Authorized against the org as read now; the patch itself is applied to the
    // org as it is inside the write transaction.
    let input: OrgInput = super::patch::merge_patch(&org.to_input(), patch.clone())?;
    authorize_org_write(&app, &actor, Some(&org), input.parent.as_deref()).await?;
    let done = super::patch_org(
        app.store(),
        app.audit_key(),
        app.clock().now(),
        &actor.origin,
        &org.id,
        patch,
        if_match(&headers).as_deref(),
    )
    .await?;
    Ok(with_etag(&done.record, Json(&done.record).into_response()))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct OrgQuery {
    kind: Option<String>,
    parent: Option<String>,
    updated_since: Option<String>,
    cursor: Option<String>,
    limit: Option<i64>,
}

async fn list_orgs(
    State(app): State<AppState>,
    actor: Actor,
    q: Result<ApiQuery<OrgQuery>, AppError>,
) -> Result<Json<Page<super::Org>>, AppError> {
    let q = query(q)?;
    let parent = match &q.parent {
        Some(p) => Some(super::resolve_org(app.store(), p).await?.ok_or_else(|| {
            AppError::Validation(vec![FieldError::new("parent", format!("no org {p:?}"))])
        })?),
        None => None,
    };
    actor
        .require(&app, Object::Orgs, Action::Read, parent.as_deref())
        .await?;
    let limit = page_limit(q.limit)?;
    let filter = OrgFilter {
        kind: q.kind,
        parent,
        updated_since: since(&q.updated_since)?,
        after: q.cursor.as_deref().map(decode_cursor).transpose()?,
        limit,
    };
    let items = super::list_orgs(app.store(), &filter).await?;
    let next_cursor = (items.len() as i64 == limit)
        .then(|| items.last().map(|o| encode_cursor(o.updated_at_ms, &o.id)))
        .flatten();
    Ok(Json(Page { items, next_cursor }))
}
