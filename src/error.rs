//! The one place where capability errors become HTTP responses.
//!
//! The admin API answers `application/problem+json` (RFC 9457) with a stable `type`
//! per kind of error; OAuth endpoints answer RFC 6749 JSON themselves
//! (`oidc::OAuthError`). Internal errors are logged (inside the request's span, which
//! carries the request id) and never leak details to the caller.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

use crate::audit::AuditError;
use crate::authz::AuthzError;
use crate::directory::DirectoryError;
use crate::oidc::ClientError;
use crate::store::StoreError;

/// One field that failed validation and why, e.g. `{"field":"email","reason":"…"}`.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct FieldError {
    pub field: String,
    pub reason: String,
}

impl FieldError {
    pub fn new(field: impl Into<String>, reason: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            reason: reason.into(),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum AppError {
    #[error("malformed request: {0}")]
    BadRequest(String),
    #[error("validation failed")]
    Validation(Vec<FieldError>),
    #[error("authentication required: {0}")]
    Unauthenticated(String),
    #[error("forbidden: {0}")]
    Forbidden(String),
    #[error("{0} not found")]
    NotFound(String),
    #[error("conflict: {0}")]
    Conflict(String),
    #[error("internal error: {0}")]
    Internal(String),
    #[error("service unavailable: {0}")]
    Unavailable(String),
    #[error("request too large: {0}")]
    TooLarge(String),
    #[error("unsupported media type: {0}")]
    UnsupportedMediaType(String),
}

#[derive(Serialize)]
struct Problem<'a> {
    #[serde(rename = "type")]
    kind: String,
    title: &'a str,
    status: u16,
    #[serde(skip_serializing_if = "Option::is_none")]
    detail: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    errors: Option<&'a [FieldError]>,
}

impl AppError {
    fn parts(&self) -> (StatusCode, &'static str, &'static str) {
        match self {
            AppError::BadRequest(_) => {
                (StatusCode::BAD_REQUEST, "bad-request", "Malformed request")
            }
            AppError::Validation(_) => (
                StatusCode::UNPROCESSABLE_ENTITY,
                "validation",
                "Some fields are invalid",
            ),
            AppError::Unauthenticated(_) => (
                StatusCode::UNAUTHORIZED,
                "unauthenticated",
                "Authentication required",
            ),
            AppError::Forbidden(_) => (StatusCode::FORBIDDEN, "forbidden", "Not allowed"),
            AppError::NotFound(_) => (StatusCode::NOT_FOUND, "not-found", "Not found"),
            AppError::Conflict(_) => (StatusCode::CONFLICT, "conflict", "Conflict"),
            AppError::Internal(_) => (
                StatusCode::INTERNAL_SERVER_ERROR,
                "internal",
                "Internal error",
            ),
            AppError::Unavailable(_) => (
                StatusCode::SERVICE_UNAVAILABLE,
                "unavailable",
                "Service unavailable",
            ),
            AppError::UnsupportedMediaType(_) => (
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported-media-type",
                "Unsupported media type",
            ),
            AppError::TooLarge(_) => (
                StatusCode::PAYLOAD_TOO_LARGE,
                "too-large",
                "Request too large",
            ),
        }
    }
}

impl IntoResponse for AppError {
    fn into_response(self) -> Response {
        let (status, code, title) = self.parts();
        let detail = match &self {
            AppError::Internal(msg) | AppError::Unavailable(msg) => {
                tracing::error!(error = %msg, "request failed");
                None
            }
            AppError::Validation(_) => {
                Some("Fix the fields listed in `errors` and send the request again.".into())
            }
            AppError::BadRequest(m)
            | AppError::Unauthenticated(m)
            | AppError::Forbidden(m)
            | AppError::NotFound(m)
            | AppError::Conflict(m)
            | AppError::TooLarge(m)
            | AppError::UnsupportedMediaType(m) => Some(m.clone()),
        };
        let errors = match &self {
            AppError::Validation(list) => Some(list.as_slice()),
            _ => None,
        };
        let body = Problem {
            kind: format!("urn:hms-ach:problem:{code}"),
            title,
            status: status.as_u16(),
            detail,
            errors,
        };
        let json = serde_json::to_vec(&body).unwrap_or_default();
        let mut resp = (status, json).into_response();
        resp.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/problem+json"),
        );
        if let AppError::Unauthenticated(_) = self {
            // RFC 6750 §3: a protected resource names the scheme it expects.
            resp.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer realm=\"hms-ach\", error=\"invalid_token\""),
            );
        }
        resp
    }
}

impl From<StoreError> for AppError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Duplicate(what) => {
                AppError::Conflict(format!("a record with the same {what} already exists"))
            }
            other => AppError::Internal(other.to_string()),
        }
    }
}

impl From<DirectoryError> for AppError {
    fn from(e: DirectoryError) -> Self {
        match e {
            DirectoryError::Invalid(errors) => AppError::Validation(errors),
            DirectoryError::NotFound { kind, id } => AppError::NotFound(format!("{kind} {id}")),
            DirectoryError::Conflict(m) => AppError::Conflict(m),
            DirectoryError::Store(s) => s.into(),
            DirectoryError::Audit(a) => a.into(),
        }
    }
}

impl From<AuditError> for AppError {
    fn from(e: AuditError) -> Self {
        match e {
            AuditError::BadFilter(m) => AppError::BadRequest(m),
            other => AppError::Internal(other.to_string()),
        }
    }
}

impl From<AuthzError> for AppError {
    fn from(e: AuthzError) -> Self {
        match e {
            AuthzError::Unauthenticated(m) => AppError::Unauthenticated(m),
            AuthzError::Forbidden(m) => AppError::Forbidden(m),
            AuthzError::UnknownRole(r) => AppError::Validation(vec![FieldError::new(
                "role",
                format!("no role with code {r:?}"),
            )]),
            AuthzError::UnknownOrg(o) => AppError::Validation(vec![FieldError::new(
                "org",
                format!("no org with id or sourcedId {o:?}"),
            )]),
            AuthzError::Store(s) => s.into(),
            AuthzError::Audit(a) => a.into(),
            AuthzError::Policy(m) => AppError::Internal(m),
        }
    }
}

impl From<ClientError> for AppError {
    fn from(e: ClientError) -> Self {
        match e {
            ClientError::Invalid(errors) => AppError::Validation(errors),
            ClientError::NotFound(id) => AppError::NotFound(format!("client {id}")),
            ClientError::Store(s) => s.into(),
            ClientError::Authz(a) => a.into(),
            ClientError::Audit(a) => a.into(),
        }
    }
}

impl From<crate::authn::AuthnError> for AppError {
    fn from(e: crate::authn::AuthnError) -> Self {
        use crate::authn::AuthnError as E;
        match e {
            E::PasswordPolicy(m) => AppError::Validation(vec![FieldError::new("password", m)]),
            E::UnknownPerson(id) => AppError::NotFound(format!("user {id}")),
            E::Store(s) => s.into(),
            E::Audit(a) => a.into(),
            other => AppError::Internal(other.to_string()),
        }
    }
}
