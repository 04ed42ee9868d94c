//! The HTTP edge of [`OidcError`]: the one place that decides the status, headers
//! and JSON body of an OAuth error (RFC 6749 §5.2).

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};

use super::error::{error_description, OAuthCode, OidcError};

/// An RFC 6749 §5.2 error response, as sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OAuthError {
    pub error: &'static str,
    pub description: String,
    pub status: StatusCode,
    /// Set when the client tried HTTP Basic: §5.2 then requires 401 with a
    /// `WWW-Authenticate` header for the same scheme.
    pub basic_challenge: bool,
}

/// §5.2: 400 for every code but `invalid_client` (401); a failure of the server's
/// own is 500, and a database that cannot answer now 503.
fn status_of(code: OAuthCode) -> StatusCode {
    match code {
        OAuthCode::InvalidClient => StatusCode::UNAUTHORIZED,
        OAuthCode::ServerError => StatusCode::INTERNAL_SERVER_ERROR,
        OAuthCode::TemporarilyUnavailable => StatusCode::SERVICE_UNAVAILABLE,
        OAuthCode::InvalidRequest
        | OAuthCode::UnauthorizedClient
        | OAuthCode::UnsupportedGrantType
        | OAuthCode::UnsupportedResponseType
        | OAuthCode::UnsupportedTokenType
        | OAuthCode::InvalidGrant
        | OAuthCode::InvalidDpopProof
        | OAuthCode::InvalidScope => StatusCode::BAD_REQUEST,
    }
}

impl From<OidcError> for OAuthError {
    fn from(e: OidcError) -> Self {
        OAuthError {
            error: e.code.as_str(),
            status: status_of(e.code),
            description: e.description,
            basic_challenge: e.basic_challenge,
        }
    }
}

impl IntoResponse for OidcError {
    fn into_response(self) -> Response {
        OAuthError::from(self).into_response()
    }
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::oidc::error::is_rfc6749_description;

    #[tokio::test]
    async fn every_oauth_error_response_is_sanitised() {
        let e = OidcError::invalid_request("bad \"value\" §4 \u{202E}evil");
        let resp = e.into_response();
        let bytes = http_body_util::BodyExt::collect(resp.into_body())
            .await
            .unwrap()
            .to_bytes();
        let v: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
        let d = v["error_description"].as_str().unwrap();
        assert!(is_rfc6749_description(d), "{d:?}");
    }

    /// The statuses as they were when the error carried its own.
    #[test]
    fn each_code_keeps_its_status() {
        let s = |e: OidcError| OAuthError::from(e).status;
        assert_eq!(s(OidcError::invalid_request("")), StatusCode::BAD_REQUEST);
        assert_eq!(
            s(OidcError::invalid_client("", true)),
            StatusCode::UNAUTHORIZED
        );
        assert_eq!(s(OidcError::invalid_grant("")), StatusCode::BAD_REQUEST);
        assert_eq!(
            s(OidcError::unsupported_token_type("")),
            StatusCode::BAD_REQUEST
        );
        assert_eq!(
            s(OidcError::temporarily_unavailable("disk full")),
            StatusCode::SERVICE_UNAVAILABLE
        );
        assert_eq!(
            s(OidcError::server_error("boom")),
            StatusCode::INTERNAL_SERVER_ERROR
        );
    }
}
