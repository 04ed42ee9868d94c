//! Cursor paging in a stable order (`updated_at`, `id`): a client that syncs with
//! `updatedSince` and follows `nextCursor` sees every row once, even while rows change.

use base64::Engine;
use serde::Serialize;

use crate::error::{AppError, FieldError};

pub const DEFAULT_LIMIT: i64 = 50;
pub const MAX_LIMIT: i64 = 200;

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Page<T> {
    pub items: Vec<T>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_cursor: Option<String>,
}

pub fn page_limit(limit: Option<i64>) -> Result<i64, AppError> {
    match limit {
        None => Ok(DEFAULT_LIMIT),
        Some(n) if (1..=MAX_LIMIT).contains(&n) => Ok(n),
        Some(_) => Err(AppError::Validation(vec![FieldError::new(
            "limit",
            format!("must be between 1 and {MAX_LIMIT}"),
        )])),
    }
}

/// The cursor of a listing in sequence order (the audit log, the outbox): the last
/// position returned, as `nextCursor` gave it.
pub fn seq_cursor(cursor: Option<&str>) -> Result<Option<i64>, AppError> {
    cursor
        .map(|c| {
            c.parse::<i64>().map_err(|_| {
                AppError::Validation(vec![FieldError::new(
                    "cursor",
                    "pass nextCursor from the previous page unchanged",
                )])
            })
        })
        .transpose()
}

/// An opaque cursor: the position (`updated_at`, `id`) of the last row returned.
pub fn encode_cursor(at: i64, id: &str) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(format!("{at}:{id}"))
}

pub fn decode_cursor(cursor: &str) -> Result<(i64, String), AppError> {
    let bad = || {
        AppError::Validation(vec![FieldError::new(
            "cursor",
            "not a cursor this server issued; pass nextCursor from the previous page unchanged",
        )])
    };
    let raw = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(cursor)
        .map_err(|_| bad())?;
    let text = String::from_utf8(raw).map_err(|_| bad())?;
    let (at, id) = text.split_once(':').ok_or_else(bad)?;
    Ok((at.parse().map_err(|_| bad())?, id.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursor_round_trips_and_rejects_garbage() {
        let c = encode_cursor(1_700_000_000_000, "abc");
        assert_eq!(
            decode_cursor(&c).unwrap(),
            (1_700_000_000_000, "abc".to_string())
        );
        assert!(decode_cursor("!!").is_err());
        assert!(page_limit(Some(0)).is_err());
        assert_eq!(page_limit(None).unwrap(), DEFAULT_LIMIT);
    }
}
