use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};

use crate::audit::AuditError;
use crate::authz::AuthzError;
use crate::error::FieldError;
use crate::store::StoreError;

/// An RFC 6749 §5.2 error response from the token endpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OAuthError {
    pub error: &'static str,
    pub description: String,
    pub status: StatusCode,
    /// Set when the client tried HTTP Basic: §5.2 then requires 401 with a
    /// `WWW-Authenticate` header for the same scheme.
    pub basic_challenge: bool,
}

impl OAuthError {
    fn new(error: &'static str, status: StatusCode, description: impl Into<String>) -> Self {
        Self {
            error,
            description: description.into(),
            status,
            basic_challenge: false,
        }
    }
    pub fn invalid_request(d: impl Into<String>) -> Self {
        Self::new("invalid_request", StatusCode::BAD_REQUEST, d)
    }
    pub fn invalid_client(d: impl Into<String>, basic: bool) -> Self {
        Self {
            basic_challenge: basic,
            ..Self::new("invalid_client", StatusCode::UNAUTHORIZED, d)
        }
    }
    pub fn unauthorized_client(d: impl Into<String>) -> Self {
        Self::new("unauthorized_client", StatusCode::BAD_REQUEST, d)
    }
    pub fn unsupported_grant_type(d: impl Into<String>) -> Self {
        Self::new("unsupported_grant_type", StatusCode::BAD_REQUEST, d)
    }
    /// Another RFC-defined code answered with 400.
    pub fn new_public(error: &'static str, d: impl Into<String>) -> Self {
        Self::new(error, StatusCode::BAD_REQUEST, d)
    }
    pub fn invalid_grant(d: impl Into<String>) -> Self {
        Self::new("invalid_grant", StatusCode::BAD_REQUEST, d)
    }
    /// RFC 9449 §5.
    pub fn invalid_dpop_proof(d: impl Into<String>) -> Self {
        Self::new("invalid_dpop_proof", StatusCode::BAD_REQUEST, d)
    }
    pub fn invalid_scope(d: impl Into<String>) -> Self {
        Self::new("invalid_scope", StatusCode::BAD_REQUEST, d)
    }
    /// Not an RFC 6749 code for this endpoint, but what servers answer on a failure
    /// of their own (RFC 6749 §4.1.2.1 defines `server_error` for the same purpose).
    ///
    /// When the database cannot take the request now (disk full, down, frozen) the
    /// answer is 503 `temporarily_unavailable` with `Retry-After` (RFC 6749
    /// §4.1.2.1 names that code for the same condition): a client retries it, and
    /// nothing about a token's validity is implied.
    pub fn server_error<E: std::fmt::Display + 'static>(internal: E) -> Self {
        if let Some(reason) = crate::error::transient_reason(&internal) {
            crate::error::unavailable_logged(reason, &internal.to_string());
            return Self::temporarily_unavailable(reason);
        }
        tracing::error!(error = %internal, "token endpoint failed");
        Self::new(
            "server_error",
            StatusCode::INTERNAL_SERVER_ERROR,
            "the server could not issue a token; try again later",
        )
    }
    pub fn temporarily_unavailable(reason: &str) -> Self {
        Self::new(
            "temporarily_unavailable",
            StatusCode::SERVICE_UNAVAILABLE,
            format!("the server cannot answer now ({reason}); try again in a few seconds"),
        )
    }
}

impl IntoResponse for OAuthError {
    fn into_response(self) -> Response {
        let body =
            serde_json::json!({ "error": self.error, "error_description": self.description });
        let mut resp = (self.status, axum::Json(body)).into_response();
        let h = resp.headers_mut();
        h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        h.insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
        if self.status == StatusCode::SERVICE_UNAVAILABLE {
            h.insert(
                header::RETRY_AFTER,
                HeaderValue::from_static(crate::error::RETRY_AFTER_SECONDS),
            );
        }
        if self.basic_challenge {
            h.insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Basic realm=\"hms-ach\", charset=\"UTF-8\""),
            );
        }
        resp
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("invalid client registration")]
    Invalid(Vec<FieldError>),
    #[error("no client {0}")]
    NotFound(String),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Authz(#[from] AuthzError),
    #[error(transparent)]
    Audit(#[from] AuditError),
}

impl From<sqlx::Error> for ClientError {
    fn from(e: sqlx::Error) -> Self {
        ClientError::Store(e.into())
    }
}

#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("cannot decrypt signing key {kid}: the database was set up with a different master key. Set keys.master_key (or HMS_ACH__KEYS__MASTER_KEY) to the key used when it was created")]
    WrongMasterKey { kid: String },
    #[error("cryptography failure: {0}")]
    Crypto(String),
    #[error("no active {0} signing key")]
    NoKey(&'static str),
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<sqlx::Error> for KeyError {
    fn from(e: sqlx::Error) -> Self {
        KeyError::Store(e.into())
    }
}
