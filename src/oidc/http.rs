use axum::body::Bytes;
use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;

use super::{OAuthError, TokenRequest};
use crate::AppState;

pub(super) fn router() -> Router<AppState> {
    Router::new()
        .route("/oauth2/token", post(token_handler))
        .route("/oauth2/jwks", get(jwks_handler))
}

async fn token_handler(State(app): State<AppState>, headers: HeaderMap, body: Bytes) -> Response {
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if !content_type
        .to_ascii_lowercase()
        .starts_with("application/x-www-form-urlencoded")
    {
        return OAuthError::invalid_request(
            "send the parameters as application/x-www-form-urlencoded (RFC 6749 §3.2)",
        )
        .into_response();
    }
    let authorization = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok());
    match super::issue_token(
        &app,
        TokenRequest {
            form: &body,
            authorization,
        },
    )
    .await
    {
        Ok(token) => {
            let mut resp = axum::Json(token).into_response();
            // RFC 6749 §5.1: token responses must not be cached.
            resp.headers_mut()
                .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
            resp.headers_mut()
                .insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
            resp
        }
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
