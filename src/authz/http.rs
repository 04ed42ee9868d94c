use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::{delete, get};
use axum::{Json, Router};
use serde::Deserialize;

use super::{Action, Actor, NewAssignment, Object, Subject};
use crate::api::ApiJson;
use crate::clock::Timestamp;
use crate::error::{AppError, FieldError};
use crate::store::StoreError;
use crate::AppState;

pub(super) fn router() -> Router<AppState> {
    Router::new()
        .route(
            "/api/v1/users/{id}/roles",
            get(list_handler).post(assign_handler),
        )
        .route(
            "/api/v1/users/{id}/roles/{assignment}",
            delete(revoke_handler),
        )
}

async fn list_handler(
    State(app): State<AppState>,
    actor: Actor,
    Path(id): Path<String>,
) -> Result<Json<serde_json::Value>, AppError> {
    let person =
        crate::directory::find_person_for(&app, &actor, &id, Object::Roles, Action::Read).await?;
    actor
        .require_in_any(&app, Object::Roles, Action::Read, &person.org_ids())
        .await?;
    let items = super::list_assignments(app.store(), &Subject::Person(person.id.clone())).await?;
    Ok(Json(
        serde_json::json!({ "userId": person.id, "items": items }),
    ))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct AssignRequest {
    role: String,
    /// Org id or sourcedId; absent for a hub-wide role.
    org: Option<String>,
    expires_at: Option<String>,
}

async fn assign_handler(
    State(app): State<AppState>,
    actor: Actor,
    Path(id): Path<String>,
    ApiJson(req): ApiJson<AssignRequest>,
) -> Result<(StatusCode, Json<super::Assignment>), AppError> {
    let person =
        crate::directory::find_person_for(&app, &actor, &id, Object::Roles, Action::Write).await?;
    let org_id = match &req.org {
        Some(o) => Some(
            crate::directory::resolve_org(app.store(), o)
                .await?
                .ok_or_else(|| super::AuthzError::UnknownOrg(o.clone()))?,
        ),
        None => None,
    };
    let privileged = super::role_is_privileged(app.store(), &req.role)
        .await?
        .ok_or_else(|| super::AuthzError::UnknownRole(req.role.clone()))?;
    let scope = if privileged { None } else { org_id.as_deref() };
    actor
        .require(&app, Object::Roles, Action::Write, scope)
        .await?;
    let now = app.clock().now();
    let expires_at = match &req.expires_at {
        Some(t) => match Timestamp::parse_rfc3339(t) {
            Some(at) if at > now => Some(at),
            Some(_) => {
                return Err(AppError::Validation(vec![FieldError::new(
                    "expiresAt",
                    "must be in the future",
                )]))
            }
            None => {
                return Err(AppError::Validation(vec![FieldError::new(
                    "expiresAt",
                    "must be an RFC 3339 time, e.g. 2027-06-30T23:59:59Z",
                )]))
            }
        },
        None => None,
    };
    let mut tx = app.store().begin().await?;
    let assignment = super::assign_role(
        &mut tx,
        app.audit_key(),
        now,
        &actor.origin,
        NewAssignment {
            subject: Subject::Person(person.id),
            role: req.role,
            org_id,
            expires_at,
        },
    )
    .await?;
    tx.commit().await.map_err(StoreError::from)?;
    Ok((StatusCode::CREATED, Json(assignment)))
}

async fn revoke_handler(
    State(app): State<AppState>,
    actor: Actor,
    Path((id, assignment)): Path<(String, String)>,
) -> Result<StatusCode, AppError> {
    let person =
        crate::directory::find_person_for(&app, &actor, &id, Object::Roles, Action::Write).await?;
    let subject = Subject::Person(person.id.clone());
    let held = super::list_assignments(app.store(), &subject).await?;
    let target = held
        .iter()
        .find(|a| a.id == assignment)
        .ok_or_else(|| AppError::NotFound(format!("role assignment {assignment}")))?;
    actor
        .require(&app, Object::Roles, Action::Write, target.org_id.as_deref())
        .await?;
    let mut tx = app.store().begin().await?;
    let removed = super::revoke_assignment(
        &mut tx,
        app.audit_key(),
        app.clock().now(),
        &actor.origin,
        &subject,
        &assignment,
    )
    .await?;
    tx.commit().await.map_err(StoreError::from)?;
    if removed {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(AppError::NotFound(format!("role assignment {assignment}")))
    }
}
