//! Entity tags (RFC 9110 §8.8.3) for resources, and `If-Match` (§13.1.1).
//!
//! The tag is a digest of the representation the API returns, so it changes
//! exactly when what a client sees changes (including, say, the sourcedId of an
//! org a person is affiliated with), and it is strong: `If-Match` compares it
//! byte for byte.

use axum::http::{header, HeaderMap, HeaderValue};
use serde::Serialize;

/// `"<32 hex digits>"`: the first 128 bits of SHA-256 over the JSON form.
pub fn etag_of<T: Serialize>(value: &T) -> String {
    let json = serde_json::to_vec(value).unwrap_or_default();
    let digest = ring::digest::digest(&ring::digest::SHA256, &json);
    format!("\"{}\"", hex::encode(&digest.as_ref()[..16]))
}

/// Whether an `If-Match` value (`*` or a list of entity tags) matches `etag`.
/// Weak tags (`W/"…"`) never match: §13.1.1 asks for the strong comparison.
pub fn etag_matches(if_match: &str, etag: &str) -> bool {
    if_match
        .split(',')
        .map(str::trim)
        .any(|t| t == "*" || t == etag)
}

/// The request's `If-Match`, if any (a value that is not visible ASCII matches
/// nothing, so the write is refused rather than made unconditional).
pub fn if_match(headers: &HeaderMap) -> Option<String> {
    headers
        .get(header::IF_MATCH)
        .map(|v| v.to_str().unwrap_or("\u{0}invalid").to_string())
}

/// A JSON response with its `ETag`.
pub fn with_etag<T: Serialize>(
    value: &T,
    mut resp: axum::response::Response,
) -> axum::response::Response {
    if let Ok(v) = HeaderValue::from_str(&etag_of(value)) {
        resp.headers_mut().insert(header::ETAG, v);
    }
    resp
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn if_match_lists_star_and_weak_tags() {
        let tag = etag_of(&serde_json::json!({"a": 1}));
        assert_eq!(tag.len(), 34);
        assert!(etag_matches(&tag, &tag));
        assert!(etag_matches("*", &tag));
        assert!(etag_matches(&format!("\"x\", {tag}"), &tag));
        assert!(!etag_matches(&format!("W/{tag}"), &tag));
        assert_ne!(tag, etag_of(&serde_json::json!({"a": 2})));
    }
}
