//! The input rule at the edge: before any handler runs, every percent-decoded path
//! segment, query parameter (name and value), form field and JSON string or member
//! name must be UTF-8 without control characters. A refusal is a 400 that names the
//! field, in the form the route's callers read (`ops::audience`). Nothing refused
//! here reaches a handler, a log line or the database.

use axum::body::{Body, Bytes};
use axum::extract::{MatchedPath, Request, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::middleware::Next;
use axum::response::Response;
use percent_encoding::percent_decode;
use serde_json::Value;
use std::borrow::Cow;

use super::rule::{code_point, find_control};
use crate::error::FieldError;
use crate::ops::audience::Audience;
use crate::AppState;

/// Longer request targets are refused with 414 (hyper's own limit, 64 KiB, answers
/// without a body). 16 KiB holds any SAML Redirect-binding request and any OAuth
/// authorization request; larger ones belong in PAR (RFC 9126) or the POST binding.
pub const MAX_URI_BYTES: usize = 16 * 1024;
/// All header names and values together; larger requests get 431 (RFC 6585 §5).
pub const MAX_HEADER_BYTES: usize = 64 * 1024;
/// Faults reported in one answer; the rest are found on the next try.
const MAX_REPORTED: usize = 10;

/// Fields that carry base64 which senders may wrap into lines (RFC 2045 §6.8): the
/// SAML messages of the POST and Redirect bindings (SAML Bindings §3.4.4, §3.5.4).
/// Only they may hold TAB, LF and CR.
const MULTILINE_FIELDS: &[&str] = &["SAMLResponse", "SAMLRequest"];

#[derive(Clone, Copy, PartialEq, Eq)]
enum BodyKind {
    Form,
    Json,
}

fn body_kind(headers: &HeaderMap) -> Option<BodyKind> {
    let ct = headers.get(header::CONTENT_TYPE)?.to_str().ok()?;
    let essence = ct.split(';').next()?.trim().to_ascii_lowercase();
    if essence == "application/x-www-form-urlencoded" {
        Some(BodyKind::Form)
    } else if essence == "application/json" || essence.ends_with("+json") {
        Some(BodyKind::Json)
    } else {
        None
    }
}

/// The faults found so far.
#[derive(Default)]
struct Faults(Vec<FieldError>);

impl Faults {
    fn push(&mut self, field: impl Into<String>, reason: impl Into<String>) {
        if self.0.len() < MAX_REPORTED {
            self.0.push(FieldError::new(field, reason));
        }
    }
    /// A text that must be UTF-8 without controls (whitespace too when `multiline`).
    fn check_text(&mut self, field: &str, text: Result<&str, ()>, multiline: bool) {
        match text {
            Err(()) => self.push(field, "is not UTF-8 text"),
            Ok(s) => {
                if let Some(c) = find_control(s, multiline) {
                    self.push(field, control_reason(c));
                }
            }
        }
    }
}

fn control_reason(c: char) -> String {
    format!(
        "contains a control character ({}); text may not hold NUL, C0 or C1 controls or DEL",
        code_point(c)
    )
}

/// A name as it can be shown back: controls and invalid bytes written as code points.
fn shown(raw: &[u8]) -> String {
    String::from_utf8_lossy(raw)
        .chars()
        .map(|c| {
            if c.is_control() || c == '\u{FFFD}' {
                code_point(c)
            } else {
                c.to_string()
            }
        })
        .collect()
}

/// One component of `application/x-www-form-urlencoded` (`+` is a space), decoded
/// without the lossy UTF-8 step of `form_urlencoded::parse`.
fn decode_component(raw: &[u8]) -> Cow<'_, [u8]> {
    if raw.contains(&b'+') {
        let spaced: Vec<u8> = raw
            .iter()
            .map(|&b| if b == b'+' { b' ' } else { b })
            .collect();
        Cow::Owned(percent_decode(&spaced).collect())
    } else {
        percent_decode(raw).into()
    }
}

/// Query strings and form bodies: each name and each value.
fn check_pairs(raw: &[u8], faults: &mut Faults) {
    for pair in raw.split(|&b| b == b'&').filter(|p| !p.is_empty()) {
        let (name, value) = match pair.iter().position(|&b| b == b'=') {
            Some(i) => (&pair[..i], &pair[i + 1..]),
            None => (pair, &[][..]),
        };
        let name = decode_component(name);
        let clean_name = std::str::from_utf8(&name)
            .ok()
            .filter(|n| find_control(n, false).is_none());
        let Some(field) = clean_name else {
            let text = std::str::from_utf8(&name).map_err(|_| ());
            faults.check_text(&shown(&name), text, false);
            continue;
        };
        let value = decode_component(value);
        let multiline = MULTILINE_FIELDS.contains(&field);
        faults.check_text(
            field,
            std::str::from_utf8(&value).map_err(|_| ()),
            multiline,
        );
    }
}

/// Each path segment, named after the route's parameter where it is one (`id` in
/// `/api/v1/users/{id}`), `path` otherwise.
fn check_path(path: &str, template: Option<&str>, faults: &mut Faults) {
    let segments: Vec<&str> = path.split('/').collect();
    let names: Option<Vec<&str>> = template
        .map(|t| t.split('/').collect::<Vec<_>>())
        .filter(|t| t.len() == segments.len());
    for (i, segment) in segments.iter().enumerate() {
        let plain = segment.bytes().all(|b| b.is_ascii_graphic() && b != b'%');
        if plain {
            continue;
        }
        let field = names
            .as_ref()
            .and_then(|n| n.get(i))
            .and_then(|n| n.strip_prefix('{'))
            .and_then(|n| n.strip_suffix('}'))
            .map(|n| n.trim_start_matches('*'))
            .unwrap_or("path");
        let decoded: Cow<[u8]> = percent_decode(segment.as_bytes()).into();
        faults.check_text(field, std::str::from_utf8(&decoded).map_err(|_| ()), false);
    }
}

/// `identifiers.sis`, `affiliations[0].role`: the notation of the validation errors
/// (and of serde's paths), so a field has one name whichever check refuses it.
fn join(parent: &str, key: &str) -> String {
    if parent.is_empty() {
        key.to_string()
    } else {
        format!("{parent}.{key}")
    }
}

fn check_json(value: &Value, path: &str, faults: &mut Faults) {
    match value {
        Value::String(s) => {
            if let Some(c) = find_control(s, false) {
                let field = if path.is_empty() { "body" } else { path };
                faults.push(field, control_reason(c));
            }
        }
        Value::Array(items) => {
            for (i, item) in items.iter().enumerate() {
                check_json(item, &format!("{path}[{i}]"), faults);
            }
        }
        Value::Object(members) => {
            for (key, item) in members {
                if let Some(c) = find_control(key, false) {
                    faults.push(
                        join(path, &shown(key.as_bytes())),
                        format!("is a member name that {}", control_reason(c)),
                    );
                    continue;
                }
                check_json(item, &join(path, key), faults);
            }
        }
        _ => {}
    }
}

fn header_bytes(headers: &HeaderMap) -> usize {
    headers
        .iter()
        .map(|(k, v)| k.as_str().len() + v.len() + 4)
        .sum()
}

/// Whether an error (of buffering a body) came from the body limit.
fn is_length_limit(e: &axum::Error) -> bool {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(s) = source {
        if s.is::<http_body_util::LengthLimitError>() {
            return true;
        }
        source = s.source();
    }
    false
}

/// The middleware. It runs after routing (so it knows the route's parameter
/// names) and inside the body limit (so it never buffers more than it allows).
pub async fn enforce(State(app): State<AppState>, req: Request, next: Next) -> Response {
    let audience = Audience::of(req.uri().path(), req.headers());
    let target_len = req.uri().path_and_query().map_or(0, |p| p.as_str().len());
    if target_len > MAX_URI_BYTES {
        let detail = format!("the request target is longer than {MAX_URI_BYTES} bytes; send large requests in the body (for OAuth, PAR: RFC 9126)");
        return audience.error(&app, StatusCode::URI_TOO_LONG, Some(detail), &[]);
    }
    if header_bytes(req.headers()) > MAX_HEADER_BYTES {
        let detail = format!("the request headers are larger than {MAX_HEADER_BYTES} bytes");
        return audience.error(
            &app,
            StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
            Some(detail),
            &[],
        );
    }
    let mut faults = Faults::default();
    let template = req.extensions().get::<MatchedPath>().map(|m| m.as_str());
    check_path(req.uri().path(), template, &mut faults);
    if let Some(q) = req.uri().query() {
        check_pairs(q.as_bytes(), &mut faults);
    }
    let req = match body_kind(req.headers()) {
        None => req,
        Some(kind) => {
            let (parts, body) = req.into_parts();
            let bytes: Bytes = match axum::body::to_bytes(body, usize::MAX).await {
                Ok(b) => b,
                Err(e) if is_length_limit(&e) => {
                    let limit = app.config().server.request_body_limit_bytes;
                    let detail = format!(
                        "the body is larger than server.request_body_limit_bytes ({limit} bytes)"
                    );
                    return audience.error(&app, StatusCode::PAYLOAD_TOO_LARGE, Some(detail), &[]);
                }
                Err(_) => {
                    let detail = "the body could not be read to its end".to_string();
                    return audience.error(&app, StatusCode::BAD_REQUEST, Some(detail), &[]);
                }
            };
            match kind {
                BodyKind::Form => check_pairs(&bytes, &mut faults),
                // A body that is not JSON is the handler's to refuse (400, malformed).
                BodyKind::Json => {
                    if let Ok(v) = serde_json::from_slice::<Value>(&bytes) {
                        check_json(&v, "", &mut faults);
                    }
                }
            }
            Request::from_parts(parts, Body::from(bytes))
        }
    };
    if !faults.0.is_empty() {
        // The caller's mistake, not the hub's: no ERROR line (the access log has the 400).
        tracing::info!(fields = ?faults.0.iter().map(|f| f.field.as_str()).collect::<Vec<_>>(), "request refused by the input rule");
        return audience.error(&app, StatusCode::BAD_REQUEST, None, &faults.0);
    }
    next.run(req).await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn faults_of(f: impl FnOnce(&mut Faults)) -> Vec<(String, String)> {
        let mut faults = Faults::default();
        f(&mut faults);
        faults.0.into_iter().map(|e| (e.field, e.reason)).collect()
    }

    #[test]
    fn pairs_are_decoded_strictly_and_named() {
        let found = faults_of(|f| check_pairs(b"grant_type=x&client_id=%00&a=%FF&b=c+d", f));
        let fields: Vec<&str> = found.iter().map(|(f, _)| f.as_str()).collect();
        assert_eq!(fields, ["client_id", "a"]);
        assert!(found[0].1.contains("U+0000"), "{found:?}");
        assert!(found[1].1.contains("UTF-8"), "{found:?}");
        let found = faults_of(|f| check_pairs(b"x%01y=1", f));
        assert_eq!(found[0].0, "xU+0001y");
        assert!(faults_of(|f| check_pairs(b"SAMLResponse=PHNh%0D%0AbWw%2B", f)).is_empty());
        assert_eq!(
            faults_of(|f| check_pairs(b"RelayState=a%0Ab", f))[0].0,
            "RelayState"
        );
        assert_eq!(faults_of(|f| check_pairs(b"q=%C2%85", f))[0].0, "q");
        assert_eq!(faults_of(|f| check_pairs(b"q=%7F", f))[0].0, "q");
    }

    #[test]
    fn path_segments_are_named_after_route_parameters() {
        let found = faults_of(|f| {
            check_path(
                "/api/v1/users/%FF/roles/a%00",
                Some("/api/v1/users/{id}/roles/{assignment}"),
                f,
            )
        });
        let fields: Vec<&str> = found.iter().map(|(f, _)| f.as_str()).collect();
        assert_eq!(fields, ["id", "assignment"]);
        let found = faults_of(|f| check_path("/nowhere/%01", None, f));
        assert_eq!(found[0].0, "path");
        assert!(faults_of(|f| check_path("/api/v1/users/caf%C3%A9", None, f)).is_empty());
    }

    #[test]
    fn json_strings_and_member_names_are_named_by_path() {
        let v = serde_json::json!({
            "givenName": "A\u{0}",
            "identifiers": {"sis": "1\u{1}"},
            "affiliations": [{"role": "x\u{85}"}],
            "ok": ["fine", 1, null],
            "bad\u{7f}": 1
        });
        let found = faults_of(|f| check_json(&v, "", f));
        let mut fields: Vec<&str> = found.iter().map(|(f, _)| f.as_str()).collect();
        fields.sort();
        assert_eq!(
            fields,
            [
                "affiliations[0].role",
                "badU+007F",
                "givenName",
                "identifiers.sis"
            ]
        );
        assert_eq!(
            faults_of(|f| check_json(&Value::String("\n".into()), "", f))[0].0,
            "body"
        );
    }
}
