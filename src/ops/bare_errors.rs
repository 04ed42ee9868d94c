//! Errors that no handler wrote — the router's 405, the body limit's 413, the
//! timeout's 408, the panic guard's 500, axum's plain-text extractor rejections —
//! rewritten into the route's error form (`audience`): problem+json, RFC 6749 JSON
//! or the HTML error page. Responses that already are JSON, HTML or XML pass as
//! they are; so do the headers (`Allow` on 405, `Retry-After`, `WWW-Authenticate`).

use axum::extract::{Request, State};
use axum::http::{header, StatusCode};
use axum::middleware::Next;
use axum::response::Response;

use super::audience::Audience;
use crate::error::{field_of_message, FieldError};
use crate::AppState;

/// Text bodies longer than this are not shown back.
const MAX_TEXT: usize = 2048;

fn is_bare(resp: &Response) -> bool {
    let ct = resp
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_ascii_lowercase();
    ct.is_empty() || ct.starts_with("text/plain")
}

pub async fn shape(State(app): State<AppState>, req: Request, next: Next) -> Response {
    let audience = Audience::of(req.uri().path(), req.headers());
    let resp = next.run(req).await;
    let status = resp.status();
    if !(status.is_client_error() || status.is_server_error()) || !is_bare(&resp) {
        return resp;
    }
    let (parts, body) = resp.into_parts();
    let text = axum::body::to_bytes(body, MAX_TEXT)
        .await
        .ok()
        .map(|b| String::from_utf8_lossy(&b).trim().to_string())
        .filter(|t| !t.is_empty());
    let errors: Vec<FieldError> = text
        .as_deref()
        .and_then(field_of_message)
        .map(|f| vec![FieldError::new(f, text.clone().unwrap_or_default())])
        .unwrap_or_default();
    let detail = match status {
        StatusCode::METHOD_NOT_ALLOWED => Some(
            "this route does not answer this method; the Allow header lists those it does"
                .to_string(),
        ),
        StatusCode::REQUEST_TIMEOUT => Some("the request took too long; try again".to_string()),
        StatusCode::PAYLOAD_TOO_LARGE => Some(format!(
            "the body is larger than server.request_body_limit_bytes ({} bytes)",
            app.config().server.request_body_limit_bytes
        )),
        _ => text.filter(|_| errors.is_empty()),
    };
    let shaped = audience.error(&app, status, detail, &errors);
    let (mut new_parts, new_body) = shaped.into_parts();
    let mut headers = parts.headers;
    headers.remove(header::CONTENT_TYPE);
    headers.remove(header::CONTENT_LENGTH);
    for (name, value) in new_parts.headers.drain() {
        if let Some(name) = name {
            headers.insert(name, value);
        }
    }
    new_parts.headers = headers;
    Response::from_parts(new_parts, new_body)
}
