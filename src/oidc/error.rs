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

/// An `error_description` as RFC 6749 §5.2 (and §4.1.2.1, RFC 6750 §3) allows it:
/// only `%x20-21 / %x23-5B / %x5D-7E`. Every description the hub sends goes through
/// here: the sign that names a section becomes "Sec. ", quotes become
/// apostrophes, a backslash a slash, typographic dashes and ellipses their ASCII
/// forms, line breaks spaces, anything else a `?` (never dropped silently, so a
/// value cannot be made to look like another by removing characters).
pub fn error_description(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '\x20'..='\x21' | '\x23'..='\x5B' | '\x5D'..='\x7E' => out.push(c),
            '"' | '\u{2018}' | '\u{2019}' | '\u{201C}' | '\u{201D}' => out.push('\''),
            '\\' => out.push('/'),
            '\u{A7}' => out.push_str("Sec. "),
            '\u{2013}' | '\u{2014}' | '\u{2010}' | '\u{2011}' => out.push('-'),
            '\u{2026}' => out.push_str("..."),
            '\n' | '\r' | '\t' | '\u{A0}' => out.push(' '),
            _ => out.push('?'),
        }
    }
    // "Sec. " before a space or at the end leaves a doubled or trailing space.
    out.replace("Sec.  ", "Sec. ").trim_end().to_string()
}

/// True when every character is one RFC 6749 §5.2 allows in `error_description`.
#[cfg(test)]
fn is_rfc6749_description(text: &str) -> bool {
    text.bytes().all(|b| {
        (0x20..=0x21).contains(&b) || (0x23..=0x5B).contains(&b) || (0x5D..=0x7E).contains(&b)
    })
}

impl IntoResponse for OAuthError {
    fn into_response(self) -> Response {
        let body = serde_json::json!({ "error": self.error, "error_description": error_description(&self.description) });
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_descriptions_use_only_rfc6749_characters() {
        // Every Unicode scalar value, alone and inside text, comes out allowed.
        for c in (0u32..=0x10FFFF).filter_map(char::from_u32) {
            let d = error_description(&format!("a{c}b"));
            assert!(is_rfc6749_description(&d), "U+{:04X} gave {d:?}", c as u32);
        }
        assert_eq!(
            error_description("send it as form data (RFC 6749 §3.2)"),
            "send it as form data (RFC 6749 Sec. 3.2)"
        );
        assert_eq!(
            error_description("response_type \"x\" \\ y"),
            "response_type 'x' / y"
        );
        assert_eq!(error_description("line\nbreak\u{0}"), "line break?");
        assert_eq!(error_description("plain text stays"), "plain text stays");
    }

    #[tokio::test]
    async fn every_oauth_error_response_is_sanitised() {
        let e = OAuthError::invalid_request("bad \"value\" §4 \u{202E}evil");
        let resp = e.into_response();
        let bytes = http_body_util::BodyExt::collect(resp.into_body())
            .await
            .unwrap()
            .to_bytes();
        let v: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
        let d = v["error_description"].as_str().unwrap();
        assert!(is_rfc6749_description(d), "{d:?}");
    }
}
