//! The OAuth/OIDC back-channel endpoints (JSON in, JSON out). The browser-facing
//! ones are `authorize_http.rs` and `end_session.rs`; the pages they send the browser
//! through (sign-in, consent) are in `web::signin`.

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;

use super::resource::{self, BearerError};
use super::{OidcError, TokenRequest};
use crate::AppState;

pub(super) fn router() -> Router<AppState> {
    Router::new()
        .route("/.well-known/openid-configuration", get(discovery_handler))
        .route("/oauth2/token", post(token_handler))
        .route("/oauth2/jwks", get(jwks_handler))
        .route(
            "/oauth2/userinfo",
            get(userinfo_handler).post(userinfo_handler),
        )
        .route("/oauth2/introspect", post(introspect_handler))
        .route("/oauth2/revoke", post(revoke_handler))
        .route("/oauth2/par", post(par_handler))
}

fn header_str(headers: &HeaderMap, name: header::HeaderName) -> Option<&str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

/// RFC 6749 §3.2 and RFC 7662 §2.1: back-channel requests are form-encoded.
fn require_form(headers: &HeaderMap) -> Result<(), OidcError> {
    let ct = header_str(headers, header::CONTENT_TYPE)
        .unwrap_or("")
        .to_ascii_lowercase();
    if ct.starts_with("application/x-www-form-urlencoded") {
        Ok(())
    } else {
        Err(OidcError::invalid_request(
            "send the parameters as application/x-www-form-urlencoded (RFC 6749 §3.2)",
        ))
    }
}

fn no_store(mut resp: Response) -> Response {
    // RFC 6749 §5.1: responses with tokens must not be cached.
    let h = resp.headers_mut();
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
    resp
}

async fn token_handler(State(app): State<AppState>, headers: HeaderMap, body: Bytes) -> Response {
    if let Err(e) = require_form(&headers) {
        return e.into_response();
    }
    let req = TokenRequest {
        form: &body,
        authorization: header_str(&headers, header::AUTHORIZATION),
        dpop: headers.get("dpop").and_then(|v| v.to_str().ok()),
    };
    match super::issue_token(&app, req).await {
        Ok(token) => no_store(axum::Json(token).into_response()),
        Err(e) => e.into_response(),
    }
}

async fn jwks_handler(State(app): State<AppState>) -> Response {
    let body = app.keys().jwks_json();
    (
        [
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/jwk-set+json"),
            ),
            (
                header::CACHE_CONTROL,
                HeaderValue::from_static("public, max-age=300"),
            ),
        ],
        body.to_string(),
    )
        .into_response()
}

async fn discovery_handler(State(app): State<AppState>) -> Response {
    let mut resp = axum::Json(super::discovery::document(&app)).into_response();
    resp.headers_mut().insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=300"),
    );
    resp
}

impl IntoResponse for BearerError {
    fn into_response(self) -> Response {
        if self.error.is_empty() {
            // RFC 6750 §3.1: no authentication at all: 401, a bare challenge.
            let mut resp = StatusCode::UNAUTHORIZED.into_response();
            resp.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer realm=\"hms-ach\""),
            );
            return no_store(resp);
        }
        // RFC 6750 §3: the challenge names the error; the description uses only the
        // characters RFC 6749 §5.2 allows (so no quote can end the parameter).
        let desc = super::error::error_description(&self.description);
        let challenge = format!(
            "{} error=\"{}\", error_description=\"{}\"",
            self.scheme, self.error, desc
        );
        let status = match self.error {
            "insufficient_scope" => StatusCode::FORBIDDEN,
            "invalid_request" => StatusCode::BAD_REQUEST,
            "temporarily_unavailable" => StatusCode::SERVICE_UNAVAILABLE,
            _ => StatusCode::UNAUTHORIZED,
        };
        let mut resp = (
            status,
            axum::Json(serde_json::json!({ "error": self.error, "error_description": desc })),
        )
            .into_response();
        if status == StatusCode::SERVICE_UNAVAILABLE {
            // Not a verdict on the token: no challenge, and a time to retry.
            resp.headers_mut().insert(
                header::RETRY_AFTER,
                HeaderValue::from_static(crate::error::RETRY_AFTER_SECONDS),
            );
        } else if let Ok(v) = HeaderValue::from_str(&challenge) {
            resp.headers_mut().insert(header::WWW_AUTHENTICATE, v);
        }
        no_store(resp)
    }
}

async fn userinfo_handler(
    State(app): State<AppState>,
    method: Method,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let auth = header_str(&headers, header::AUTHORIZATION);
    let dpop = headers.get("dpop").and_then(|v| v.to_str().ok());
    // RFC 6750 §2.2: the token may come as `access_token` in a form-encoded POST body.
    let form = if method == Method::POST && require_form(&headers).is_ok() {
        match super::client_auth::Form::parse(&body) {
            Ok(f) => Some(f),
            Err(e) => {
                return BearerError {
                    scheme: "Bearer",
                    error: "invalid_request",
                    description: e.description,
                }
                .into_response()
            }
        }
    } else {
        None
    };
    let body_token = form.as_ref().and_then(|f| f.get("access_token"));
    match resource::userinfo(&app, auth, body_token, dpop, method.as_str()).await {
        Ok(claims) => no_store(axum::Json(claims).into_response()),
        Err(e) => e.into_response(),
    }
}

async fn introspect_handler(
    State(app): State<AppState>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if let Err(e) = require_form(&headers) {
        return e.into_response();
    }
    match resource::introspect(&app, &body, header_str(&headers, header::AUTHORIZATION)).await {
        Ok(v) => no_store(axum::Json(v).into_response()),
        Err(e) => e.into_response(),
    }
}

async fn revoke_handler(State(app): State<AppState>, headers: HeaderMap, body: Bytes) -> Response {
    if let Err(e) = require_form(&headers) {
        return e.into_response();
    }
    match resource::revoke(&app, &body, header_str(&headers, header::AUTHORIZATION)).await {
        Ok(()) => no_store(StatusCode::OK.into_response()),
        Err(e) => e.into_response(),
    }
}

/// RFC 9126 §2: the client pushes the authorization request (authenticated) and gets
/// a one-time `request_uri` to send the browser with.
async fn par_handler(State(app): State<AppState>, headers: HeaderMap, body: Bytes) -> Response {
    if let Err(e) = require_form(&headers) {
        return e.into_response();
    }
    match super::par::push(&app, &body, header_str(&headers, header::AUTHORIZATION)).await {
        Ok((uri, ttl)) => no_store(
            (
                StatusCode::CREATED,
                axum::Json(serde_json::json!({ "request_uri": uri, "expires_in": ttl })),
            )
                .into_response(),
        ),
        Err(e) => e.into_response(),
    }
}
