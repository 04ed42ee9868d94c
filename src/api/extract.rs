use axum::extract::{ConnectInfo, FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use serde::de::DeserializeOwned;
use std::net::SocketAddr;

use crate::error::AppError;
use crate::AppState;

/// `Json<T>` whose failures say, as problem+json, what to fix: 415 without the JSON
/// content type, 400 for malformed JSON, 422 naming the field for a wrong shape.
pub struct ApiJson<T>(pub T);

impl<T: DeserializeOwned> FromRequest<AppState> for ApiJson<T> {
    type Rejection = AppError;

    async fn from_request(req: Request, state: &AppState) -> Result<Self, Self::Rejection> {
        use axum::extract::rejection::JsonRejection;
        match axum::Json::<T>::from_request(req, state).await {
            Ok(axum::Json(v)) => Ok(ApiJson(v)),
            Err(JsonRejection::JsonDataError(e)) => {
                Err(AppError::Validation(vec![crate::error::FieldError::new(
                    data_error_path(&e.body_text()),
                    e.body_text(),
                )]))
            }
            Err(JsonRejection::MissingJsonContentType(_)) => Err(AppError::UnsupportedMediaType(
                "send the body as JSON with Content-Type: application/json".into(),
            )),
            Err(e) if e.status() == axum::http::StatusCode::PAYLOAD_TOO_LARGE => {
                Err(AppError::TooLarge(format!(
                    "the body is larger than server.request_body_limit_bytes ({} bytes)",
                    state.config().server.request_body_limit_bytes
                )))
            }
            Err(e) => Err(AppError::BadRequest(e.body_text())),
        }
    }
}

/// serde's messages look like "Failed to deserialize the JSON body into the target
/// type: email: invalid type: …"; the text before the first ": " after the prefix is
/// the field path.
fn data_error_path(text: &str) -> String {
    let rest = text
        .strip_prefix("Failed to deserialize the JSON body into the target type: ")
        .unwrap_or(text);
    match rest.split_once(": ") {
        Some((path, _)) if !path.contains(' ') => path.to_string(),
        _ => "body".to_string(),
    }
}

/// An RFC 7396 merge patch body (`application/merge-patch+json`, or plain JSON).
pub struct MergePatch(pub serde_json::Value);

impl FromRequest<AppState> for MergePatch {
    type Rejection = AppError;

    async fn from_request(req: Request, state: &AppState) -> Result<Self, Self::Rejection> {
        let ct = req
            .headers()
            .get(axum::http::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_ascii_lowercase();
        if !(ct.starts_with("application/merge-patch+json") || ct.starts_with("application/json")) {
            return Err(AppError::UnsupportedMediaType(
                "send the patch with Content-Type: application/merge-patch+json (RFC 7396)".into(),
            ));
        }
        let body = axum::body::Bytes::from_request(req, state)
            .await
            .map_err(|e| {
                if e.status() == axum::http::StatusCode::PAYLOAD_TOO_LARGE {
                    AppError::TooLarge(
                        "the body is larger than server.request_body_limit_bytes".into(),
                    )
                } else {
                    AppError::BadRequest(e.body_text())
                }
            })?;
        let value = serde_json::from_slice(&body)
            .map_err(|e| AppError::BadRequest(format!("the body is not JSON: {e}")))?;
        Ok(MergePatch(value))
    }
}

/// Where a request came from, for the audit log.
#[derive(Clone, Debug, Default)]
pub struct RequestMeta {
    pub request_id: Option<String>,
    pub source_ip: Option<String>,
}

impl FromRequestParts<AppState> for RequestMeta {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        Ok(request_meta(parts, state))
    }
}

pub(crate) fn request_meta(parts: &Parts, state: &AppState) -> RequestMeta {
    let request_id = parts
        .headers
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    // Behind one trusted proxy the last X-Forwarded-For entry is the address that
    // proxy saw; entries before it are whatever the client sent.
    let forwarded = if state.config().server.trust_forwarded_for {
        parts
            .headers
            .get("x-forwarded-for")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.rsplit(',').next())
            .map(|s| s.trim().to_string())
    } else {
        None
    };
    let source_ip = forwarded.or_else(|| {
        parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map(|ci| ci.0.ip().to_string())
    });
    RequestMeta {
        request_id,
        source_ip,
    }
}
