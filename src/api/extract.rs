use axum::extract::{ConnectInfo, FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use serde::de::DeserializeOwned;
use std::net::SocketAddr;

use crate::error::{AppError, FieldError};
use crate::AppState;

/// `Json<T>` whose failures say, as problem+json, what to fix: 415 without the JSON
/// content type, 400 for malformed JSON, 422 naming the field for a wrong shape
/// (a missing field by its name, a wrong type by its path, never by its value).
pub struct ApiJson<T>(pub T);

fn is_json_content_type(req: &Request) -> bool {
    req.headers()
        .get(axum::http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|ct| ct.split(';').next())
        .map(|essence| essence.trim().to_ascii_lowercase())
        .is_some_and(|e| e == "application/json" || e.ends_with("+json"))
}

async fn body_bytes(req: Request, state: &AppState) -> Result<axum::body::Bytes, AppError> {
    axum::body::Bytes::from_request(req, state)
        .await
        .map_err(|e| {
            if e.status() == axum::http::StatusCode::PAYLOAD_TOO_LARGE {
                AppError::TooLarge(format!(
                    "the body is larger than server.request_body_limit_bytes ({} bytes)",
                    state.config().server.request_body_limit_bytes
                ))
            } else {
                AppError::BadRequest(e.body_text())
            }
        })
}

impl<T: DeserializeOwned> FromRequest<AppState> for ApiJson<T> {
    type Rejection = AppError;

    async fn from_request(req: Request, state: &AppState) -> Result<Self, Self::Rejection> {
        if !is_json_content_type(&req) {
            return Err(AppError::UnsupportedMediaType(
                "send the body as JSON with Content-Type: application/json".into(),
            ));
        }
        let body = body_bytes(req, state).await?;
        let mut de = serde_json::Deserializer::from_slice(&body);
        let value = serde_path_to_error::deserialize(&mut de).map_err(|e| {
            use serde_json::error::Category;
            match e.inner().classify() {
                Category::Data => AppError::Validation(vec![field_error(&e)]),
                _ => AppError::BadRequest(format!("the body is not JSON: {}", e.inner())),
            }
        })?;
        de.end()
            .map_err(|e| AppError::BadRequest(format!("the body is not JSON: {e}")))?;
        Ok(ApiJson(value))
    }
}

/// The field a deserialization error is about: serde's path to it (`affiliations[0]`)
/// joined with the name a "missing field" or "unknown field" message gives.
pub fn field_error(e: &serde_path_to_error::Error<serde_json::Error>) -> FieldError {
    let path = e.path().to_string();
    let parent = if path == "." { "" } else { path.as_str() };
    let message = e.inner().to_string();
    let named = crate::error::field_of_message(&message).filter(|_| message.contains(" field `"));
    let field = match (named, parent) {
        (Some(n), "") => n,
        (Some(n), p) if p.ends_with(&format!(".{n}")) || p == n => p.to_string(),
        (Some(n), p) => format!("{p}.{n}"),
        (None, "") => "body".to_string(),
        (None, p) => p.to_string(),
    };
    // serde_json appends " at line 1 column 9", which means nothing to the caller.
    let reason = message
        .split(" at line ")
        .next()
        .unwrap_or(&message)
        .to_string();
    FieldError::new(field, reason)
}

/// A value of `T` from a JSON document, a failure naming the field (see `field_error`).
pub fn from_json_value<T: DeserializeOwned>(doc: serde_json::Value) -> Result<T, FieldError> {
    serde_path_to_error::deserialize(doc).map_err(|e| field_error(&e))
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
        let body = body_bytes(req, state).await?;
        let value = serde_json::from_slice(&body)
            .map_err(|e| AppError::BadRequest(format!("the body is not JSON: {e}")))?;
        Ok(MergePatch(value))
    }
}

/// Query parameters as `T`; a failure is a 400 naming the parameter (`limit`), not
/// serde's sentence about the whole query string.
pub struct ApiQuery<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequestParts<S> for ApiQuery<T> {
    type Rejection = AppError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        let raw = parts.uri.query().unwrap_or("");
        let de = serde_urlencoded::Deserializer::new(url::form_urlencoded::parse(raw.as_bytes()));
        serde_path_to_error::deserialize(de)
            .map(ApiQuery)
            .map_err(|e| {
                let path = e.path().to_string();
                let message = e.inner().to_string();
                let field = crate::error::field_of_message(&message)
                    .filter(|_| message.contains(" field `"))
                    .or_else(|| (path != ".").then_some(path))
                    .unwrap_or_else(|| "query".to_string());
                AppError::BadFields(vec![FieldError::new(field, message)])
            })
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
