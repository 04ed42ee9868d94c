//! The guard: who is calling (from the bearer token) and whether casbin lets them.

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use std::collections::HashSet;

use super::AuthzError;
use crate::audit::{self, Entry, Origin, Outcome};
use crate::AppState;

/// What a request may act on. The scope of an access token names one pair
/// (`users.read`); casbin decides whether the subject's roles allow it where it acts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Object {
    Users,
    Orgs,
    Roles,
    Audit,
    Clients,
    /// Scheduled jobs: `read` their schedules and history, `write` runs one now.
    Jobs,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Action {
    Read,
    Write,
}

impl Object {
    pub const ALL: [Object; 6] = [
        Object::Users,
        Object::Orgs,
        Object::Roles,
        Object::Audit,
        Object::Clients,
        Object::Jobs,
    ];
    pub fn as_str(self) -> &'static str {
        match self {
            Object::Users => "users",
            Object::Orgs => "orgs",
            Object::Roles => "roles",
            Object::Audit => "audit",
            Object::Clients => "clients",
            Object::Jobs => "jobs",
        }
    }
}

impl Action {
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Read => "read",
            Action::Write => "write",
        }
    }
}

/// Every scope the admin API understands, e.g. `users.read`.
pub fn known_scopes() -> Vec<String> {
    Object::ALL
        .iter()
        .flat_map(|o| {
            [Action::Read, Action::Write].map(move |a| format!("{}.{}", o.as_str(), a.as_str()))
        })
        .collect()
}

/// A casbin subject: `person:<id>` or `client:<client_id>`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Subject {
    Person(String),
    Client(String),
}

impl Subject {
    pub fn key(&self) -> String {
        match self {
            Subject::Person(id) => format!("person:{id}"),
            Subject::Client(id) => format!("client:{id}"),
        }
    }
}

/// The authenticated caller of an API request.
#[derive(Clone, Debug)]
pub struct Actor {
    pub subject: Subject,
    pub scopes: HashSet<String>,
    pub origin: Origin,
}

impl FromRequestParts<AppState> for Actor {
    type Rejection = crate::error::AppError;

    async fn from_request_parts(
        parts: &mut Parts,
        app: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let header = parts
            .headers
            .get(axum::http::header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .ok_or_else(|| AuthzError::Unauthenticated("send an access token: Authorization: Bearer TOKEN (get one from POST /oauth2/token)".into()))?;
        let token = header
            .strip_prefix("Bearer ")
            .or_else(|| header.strip_prefix("bearer "))
            .ok_or_else(|| {
                AuthzError::Unauthenticated(
                    "the Authorization header must use the Bearer scheme (RFC 6750)".into(),
                )
            })?;
        let claims = match crate::oidc::verify_access_token(app, token.trim()).await {
            Ok(c) => c,
            Err(crate::oidc::TokenRejection::Invalid(why)) => {
                return Err(AuthzError::Unauthenticated(format!(
                    "the access token is not valid: {why}"
                ))
                .into())
            }
            // A valid token is never called invalid because the database is down.
            Err(crate::oidc::TokenRejection::Unchecked(e)) => return Err(e.into()),
        };
        let subject = Subject::Client(claims.client_id.clone());
        let meta = crate::api::extract::request_meta(parts, app);
        Ok(Actor {
            origin: Origin {
                actor_kind: "client",
                actor_id: claims.client_id,
                meta,
            },
            subject,
            scopes: claims
                .scope
                .split(' ')
                .filter(|s| !s.is_empty())
                .map(str::to_string)
                .collect(),
        })
    }
}

impl Actor {
    /// Allows the request or answers 403, writing the denial to the audit log.
    /// `org` is the org the request acts in (an id); `None` means hub-wide.
    pub async fn require(
        &self,
        app: &AppState,
        obj: Object,
        act: Action,
        org: Option<&str>,
    ) -> Result<(), AuthzError> {
        let orgs: Vec<String> = org.map(str::to_string).into_iter().collect();
        self.require_in_any(app, obj, act, &orgs).await
    }

    /// Allows the request when a role permits it in any of `orgs` (or hub-wide): a
    /// person affiliated with two schools may be read by either school's registrar.
    pub async fn require_in_any(
        &self,
        app: &AppState,
        obj: Object,
        act: Action,
        orgs: &[String],
    ) -> Result<(), AuthzError> {
        let scope = format!("{}.{}", obj.as_str(), act.as_str());
        let org_label = if orgs.is_empty() {
            "*".to_string()
        } else {
            orgs.join(",")
        };
        let reason = if !self.scopes.contains(&scope) {
            Some(format!("the access token lacks the scope {scope}"))
        } else {
            let mut domains = Vec::new();
            for id in orgs {
                let chain = crate::directory::org_ancestry(app.store(), id)
                    .await
                    .map_err(|e| AuthzError::Policy(e.to_string()))?;
                domains.extend(chain);
            }
            domains.sort();
            domains.dedup();
            domains.push("*".to_string());
            let now = app.clock().now_ms();
            let allowed = app
                .authorizer()
                .allows(
                    app.store(),
                    now,
                    &self.subject.key(),
                    &domains,
                    obj.as_str(),
                    act.as_str(),
                )
                .await?;
            (!allowed).then(|| {
                if orgs.is_empty() {
                    format!("no role of {} allows {scope} hub-wide", self.subject.key())
                } else {
                    format!(
                        "no role of {} allows {scope} in org {org_label}",
                        self.subject.key()
                    )
                }
            })
        };
        let Some(reason) = reason else {
            return Ok(());
        };
        let now = app.clock().now_ms();
        let mut tx = app.store().begin().await?;
        audit::record(
            &mut tx,
            app.audit_key(),
            now,
            &self.origin,
            Entry {
                action: "authz.denied",
                outcome: Outcome::Denied,
                target_kind: obj.as_str(),
                target_id: &org_label,
                details: serde_json::json!({ "object": obj.as_str(), "action": act.as_str(), "orgs": orgs, "reason": reason }),
            },
        )
        .await?;
        tx.commit().await.map_err(crate::store::StoreError::from)?;
        crate::ops::metrics::authz_denied(obj.as_str());
        // The caller learns which scope or right is missing, not which orgs the target
        // is in (that would reveal, for instance, where a person is enrolled).
        let shown = if reason.starts_with("the access token") {
            reason
        } else {
            format!("your roles do not allow {scope} here")
        };
        Err(AuthzError::Forbidden(shown))
    }
}
