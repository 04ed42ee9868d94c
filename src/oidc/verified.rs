//! Access tokens whose signature this replica has already checked.
//!
//! Introspection and UserInfo see the same token many times in its short life
//! (RFC 7662 §4 expects resource servers to ask on every request). Checking an
//! ES256 or RS256 signature costs far more than the rest of the request, so the
//! claims of a verified token are kept, keyed by the SHA-256 of the whole token:
//! only the exact bytes that were verified ever hit. Revocation is not cached:
//! callers still check the token's `jti` and grant against the store.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use super::jwt::AccessClaims;

/// Entries kept at most; the map is emptied when full (tokens live minutes, and a
/// miss only costs one signature check).
const MAX_ENTRIES: usize = 20_000;

type Digest = [u8; 32];

#[derive(Default)]
pub struct VerifiedTokens {
    entries: RwLock<HashMap<Digest, Arc<AccessClaims>>>,
}

impl std::fmt::Debug for VerifiedTokens {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("VerifiedTokens(…)")
    }
}

pub fn digest(token: &str) -> Digest {
    let d = ring::digest::digest(&ring::digest::SHA256, token.as_bytes());
    let mut out = [0u8; 32];
    out.copy_from_slice(d.as_ref());
    out
}

impl VerifiedTokens {
    /// The claims of this exact token if it was verified before and has not expired.
    pub fn get(&self, key: &Digest, now_secs: i64) -> Option<Arc<AccessClaims>> {
        let map = self.entries.read().ok()?;
        map.get(key).filter(|c| c.exp > now_secs).cloned()
    }

    pub fn insert(&self, key: Digest, claims: Arc<AccessClaims>) {
        if let Ok(mut map) = self.entries.write() {
            if map.len() >= MAX_ENTRIES {
                map.clear();
            }
            map.insert(key, claims);
        }
    }
}
