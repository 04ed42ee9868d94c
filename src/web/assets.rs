//! The pages' two static files: the stylesheet and the passkey ceremonies' script
//! (no inline script anywhere: the CSP allows only these).

use axum::http::{header, HeaderValue};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;

use crate::AppState;

const CSS: &str = include_str!("static/hms.css");
const PASSKEY_JS: &str = include_str!("static/passkey.js");

pub(super) fn router() -> Router<AppState> {
    Router::new()
        .route("/static/hms.css", get(css))
        .route("/static/passkey.js", get(passkey_js))
}

fn asset(content_type: &'static str, body: &'static str) -> Response {
    (
        [
            (header::CONTENT_TYPE, HeaderValue::from_static(content_type)),
            (
                header::CACHE_CONTROL,
                HeaderValue::from_static("public, max-age=3600"),
            ),
        ],
        body,
    )
        .into_response()
}

async fn css() -> Response {
    asset("text/css; charset=utf-8", CSS)
}

async fn passkey_js() -> Response {
    asset("text/javascript; charset=utf-8", PASSKEY_JS)
}
