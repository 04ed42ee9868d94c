//! What every `/api/v1` handler shares: a JSON extractor whose rejections are
//! problem+json, the request's origin (request id, client address) and cursor paging.

mod etag;
pub(crate) mod extract;
mod merge;
mod paging;

pub use etag::{etag_matches, etag_of, if_match, with_etag};
pub use extract::{from_json_value, ApiJson, ApiQuery, MergePatch, RequestMeta};
pub use merge::apply_merge_patch;
pub use paging::{decode_cursor, encode_cursor, page_limit, seq_cursor, Page};
