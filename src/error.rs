//! The one place where capability errors become HTTP responses.
//!
//! The admin API answers `application/problem+json` (RFC 9457) with a stable `type`
//! per kind of error; OAuth endpoints answer RFC 6749 JSON themselves
//! (`oidc::OidcError`, shaped once in `oidc/error_response.rs`). Internal errors are
//! logged (inside the request's span, which carries the request id) and never leak
//! details to the caller.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

use crate::audit::AuditError;
use crate::authz::AuthzError;
use crate::directory::DirectoryError;
use crate::jobs::JobError;
use crate::mail::MailError;
use crate::oidc::ClientError;
use crate::outbox::OutboxError;
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

/// The field a serde or axum message is about: `missing field `sourcedId``, `unknown
/// field `x``, or the path before the first `: ` of a `serde_path_to_error` message
/// ("…target type: affiliations[0].role: invalid type…"). `None` when it names none.
pub fn field_of_message(message: &str) -> Option<String> {
    for marker in ["missing field `", "unknown field `", "duplicate field `"] {
        if let Some(rest) = message.split(marker).nth(1) {
            let name = rest.split('`').next().unwrap_or("");
            if !name.is_empty() {
                // A nested field's path precedes the message: "affiliations[0]: missing field `role`".
                let before = message.split(marker).next().unwrap_or("");
                let parent = before
                    .trim_end()
                    .strip_suffix(':')
                    .and_then(|b| b.rsplit(": ").next())
                    .filter(|p| !p.is_empty() && !p.contains(' ') && *p != ".");
                return Some(match parent {
                    Some(p) => format!("{p}.{name}"),
                    None => name.to_string(),
                });
            }
        }
    }
    let rest = message
        .split_once("target type: ")
        .map_or(message, |(_, r)| r);
    match rest.split_once(": ") {
        Some((path, _)) if !path.is_empty() && !path.contains(' ') && path != "." => {
            Some(path.to_string())
        }
        _ => None,
    }
}

#[derive(Debug, thiserror::Error)]
pub enum AppError {
    #[error("malformed request: {0}")]
    BadRequest(String),
    /// A malformed request whose faults are in named fields (a parameter with a
    /// control character, a query value of the wrong type).
    #[error("malformed fields")]
    BadFields(Vec<FieldError>),
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
    /// RFC 9110 §15.5.13: `If-Match` did not match the current `ETag` (carried).
    #[error("precondition failed")]
    PreconditionFailed { etag: String },
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
            AppError::BadRequest(_) | AppError::BadFields(_) => {
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
            AppError::PreconditionFailed { .. } => (
                StatusCode::PRECONDITION_FAILED,
                "precondition-failed",
                "The record has changed",
            ),
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
            AppError::Internal(msg) => {
                tracing::error!(error = %msg, "request failed");
                None
            }
            AppError::Unavailable(msg) => Some(msg.clone()),
            AppError::Validation(_) | AppError::BadFields(_) => {
                Some("Fix the fields listed in `errors` and send the request again.".into())
            }
            AppError::PreconditionFailed { .. } => Some(
                "The record changed since you read it (If-Match): read it again, apply your change and send it with the new ETag.".into(),
            ),
            AppError::BadRequest(m)
            | AppError::Unauthenticated(m)
            | AppError::Forbidden(m)
            | AppError::NotFound(m)
            | AppError::Conflict(m)
            | AppError::TooLarge(m)
            | AppError::UnsupportedMediaType(m) => Some(m.clone()),
        };
        let errors = match &self {
            AppError::Validation(list) | AppError::BadFields(list) => Some(list.as_slice()),
            _ => None,
        };
        let mut resp = problem_response(status, code, title, detail, errors);
        if let AppError::PreconditionFailed { etag } = &self {
            if let Ok(v) = HeaderValue::from_str(etag) {
                resp.headers_mut().insert(header::ETAG, v);
            }
        }
        if let AppError::Unavailable(_) = self {
            resp.headers_mut().insert(
                header::RETRY_AFTER,
                HeaderValue::from_static(RETRY_AFTER_SECONDS),
            );
        }
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

/// What a 503 asks the client to wait (RFC 9110 §10.2.3), in seconds.
pub const RETRY_AFTER_SECONDS: &str = "5";

fn problem_response(
    status: StatusCode,
    code: &str,
    title: &str,
    detail: Option<String>,
    errors: Option<&[FieldError]>,
) -> Response {
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
    resp
}

/// A problem+json answer for a status the middleware or the router produced
/// (405, 408, 413, 414, 431, …), with the stable `type` of that status. `detail`
/// is what the caller can act on; 500 never carries one.
pub fn status_problem(
    status: StatusCode,
    detail: Option<String>,
    errors: &[FieldError],
) -> Response {
    let (code, title) = match status {
        StatusCode::BAD_REQUEST => ("bad-request", "Malformed request"),
        StatusCode::UNAUTHORIZED => ("unauthenticated", "Authentication required"),
        StatusCode::FORBIDDEN => ("forbidden", "Not allowed"),
        StatusCode::NOT_FOUND => ("not-found", "Not found"),
        StatusCode::METHOD_NOT_ALLOWED => ("method-not-allowed", "Method not allowed"),
        StatusCode::NOT_ACCEPTABLE => ("not-acceptable", "Not acceptable"),
        StatusCode::REQUEST_TIMEOUT => ("timeout", "Request timed out"),
        StatusCode::CONFLICT => ("conflict", "Conflict"),
        StatusCode::LENGTH_REQUIRED => ("length-required", "Length required"),
        StatusCode::PRECONDITION_FAILED => ("precondition-failed", "Precondition failed"),
        StatusCode::PAYLOAD_TOO_LARGE => ("too-large", "Request too large"),
        StatusCode::URI_TOO_LONG => ("uri-too-long", "URI too long"),
        StatusCode::UNSUPPORTED_MEDIA_TYPE => ("unsupported-media-type", "Unsupported media type"),
        StatusCode::UNPROCESSABLE_ENTITY => ("validation", "Some fields are invalid"),
        StatusCode::PRECONDITION_REQUIRED => ("precondition-required", "Precondition required"),
        StatusCode::TOO_MANY_REQUESTS => ("rate-limited", "Too many requests"),
        StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE => {
            ("headers-too-large", "Request header fields too large")
        }
        StatusCode::SERVICE_UNAVAILABLE => ("unavailable", "Service unavailable"),
        StatusCode::GATEWAY_TIMEOUT => ("timeout", "Timed out"),
        s if s.is_client_error() => ("client-error", "Request refused"),
        _ => ("internal", "Internal error"),
    };
    let detail = detail.filter(|_| status != StatusCode::INTERNAL_SERVER_ERROR);
    let errors = (!errors.is_empty()).then_some(errors);
    problem_response(status, code, title, detail, errors)
}

impl From<StoreError> for AppError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Duplicate(what) => {
                AppError::Conflict(format!("a record with the same {what} already exists"))
            }
            StoreError::Unavailable { reason, detail } => {
                unavailable_logged(reason, &detail);
                AppError::Unavailable(format!(
                    "The hub cannot use its database now ({reason}). Nothing was changed; send the request again in a few seconds."
                ))
            }
            other => AppError::Internal(other.to_string()),
        }
    }
}

/// Logs (warn, not error: it is the database's state, and the request id is in
/// the span) and counts a request refused because the database could not take it.
pub fn unavailable_logged(reason: &'static str, detail: &str) {
    tracing::warn!(reason, error = %detail, "database unavailable; answering 503");
    crate::ops::metrics::store_unavailable(reason);
}

impl From<DirectoryError> for AppError {
    fn from(e: DirectoryError) -> Self {
        match e {
            DirectoryError::Invalid(errors) => AppError::Validation(errors),
            DirectoryError::NotFound { kind, id } => AppError::NotFound(format!("{kind} {id}")),
            DirectoryError::Conflict(m) => AppError::Conflict(m),
            DirectoryError::PreconditionFailed(etag) => AppError::PreconditionFailed { etag },
            DirectoryError::Store(s) => s.into(),
            DirectoryError::Audit(a) => a.into(),
        }
    }
}

impl From<AuditError> for AppError {
    fn from(e: AuditError) -> Self {
        match e {
            AuditError::BadFilter(m) => AppError::BadRequest(m),
            AuditError::Store(s) => s.into(),
        }
    }
}

impl From<OutboxError> for AppError {
    fn from(e: OutboxError) -> Self {
        match e {
            OutboxError::BadFilter(m) => AppError::BadRequest(m),
            OutboxError::Invalid(fields) => AppError::Validation(fields),
            OutboxError::NotFound(what) => AppError::NotFound(format!("subscriber {what}")),
            OutboxError::ReadOnly(m) => AppError::Conflict(m),
            OutboxError::Duplicate(name) => {
                AppError::Conflict(format!("a subscriber named {name} exists"))
            }
            OutboxError::Sink(m) => AppError::Internal(m),
            OutboxError::Store(s) => s.into(),
        }
    }
}

impl From<JobError> for AppError {
    fn from(e: JobError) -> Self {
        match e {
            JobError::UnknownJob(name) => AppError::NotFound(format!("job {name}")),
            JobError::Busy(_) => AppError::Conflict(e.to_string()),
            JobError::Config(m) | JobError::Scheduler(m) => AppError::Internal(m),
            JobError::Audit(a) => a.into(),
            JobError::Store(s) => s.into(),
        }
    }
}

impl From<MailError> for AppError {
    fn from(e: MailError) -> Self {
        match e {
            MailError::BadFilter(m) => AppError::BadRequest(m),
            MailError::Store(s) => s.into(),
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
            E::LastFactor => AppError::Conflict(E::LastFactor.to_string()),
            E::UnknownPerson(id) => AppError::NotFound(format!("user {id}")),
            E::Store(s) => s.into(),
            E::Audit(a) => a.into(),
            other => AppError::Internal(other.to_string()),
        }
    }
}

/// Why a failure is the database's state (disk full, unreachable…) rather than a
/// fault, when it is: for the places that receive "some error" (the OAuth
/// endpoints' `server_error`, the pages) and must still answer 503, not 500.
pub fn transient_reason(e: &dyn std::any::Any) -> Option<&'static str> {
    fn store(e: &StoreError) -> Option<&'static str> {
        match e {
            StoreError::Unavailable { reason, .. } => Some(reason),
            _ => None,
        }
    }
    fn audit(e: &AuditError) -> Option<&'static str> {
        match e {
            AuditError::Store(s) => store(s),
            AuditError::BadFilter(_) => None,
        }
    }
    fn authz(e: &AuthzError) -> Option<&'static str> {
        match e {
            AuthzError::Store(s) => store(s),
            AuthzError::Audit(a) => audit(a),
            _ => None,
        }
    }
    fn directory(e: &DirectoryError) -> Option<&'static str> {
        match e {
            DirectoryError::Store(s) => store(s),
            DirectoryError::Audit(a) => audit(a),
            _ => None,
        }
    }
    if let Some(e) = e.downcast_ref::<StoreError>() {
        return store(e);
    }
    if let Some(e) = e.downcast_ref::<sqlx::Error>() {
        return crate::store::transient_reason(e);
    }
    if let Some(e) = e.downcast_ref::<AuditError>() {
        return audit(e);
    }
    if let Some(e) = e.downcast_ref::<AuthzError>() {
        return authz(e);
    }
    if let Some(e) = e.downcast_ref::<DirectoryError>() {
        return directory(e);
    }
    if let Some(e) = e.downcast_ref::<ClientError>() {
        return match e {
            ClientError::Store(s) => store(s),
            ClientError::Authz(a) => authz(a),
            ClientError::Audit(a) => audit(a),
            _ => None,
        };
    }
    if let Some(crate::oidc::KeyError::Store(s)) = e.downcast_ref::<crate::oidc::KeyError>() {
        return store(s);
    }
    if let Some(e) = e.downcast_ref::<crate::authn::AuthnError>() {
        use crate::authn::AuthnError as E;
        return match e {
            E::Store(s) => store(s),
            E::Audit(a) => audit(a),
            _ => None,
        };
    }
    if let Some(e) = e.downcast_ref::<crate::federation::FederationError>() {
        use crate::federation::FederationError as E;
        return match e {
            E::Store(s) => store(s),
            E::Audit(a) => audit(a),
            E::Directory(d) => directory(d),
            _ => None,
        };
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_are_found_in_serde_messages() {
        let f = |m: &str| field_of_message(m);
        assert_eq!(
            f("Failed to deserialize the JSON body into the target type: missing field `sourcedId` at line 1 column 2").as_deref(),
            Some("sourcedId")
        );
        assert_eq!(
            f("Failed to deserialize the JSON body into the target type: affiliations[0]: missing field `role` at line 1 column 9").as_deref(),
            Some("affiliations[0].role")
        );
        assert_eq!(
            f("Failed to deserialize the JSON body into the target type: email: invalid type: integer `5`, expected a string").as_deref(),
            Some("email")
        );
        assert_eq!(
            f("Failed to deserialize query string: unknown field `x`, expected `a`").as_deref(),
            Some("x")
        );
        assert_eq!(f("length limit exceeded"), None);
        assert_eq!(f("Invalid URL: Cannot parse `abc` to a `u64`"), None);
    }
}
