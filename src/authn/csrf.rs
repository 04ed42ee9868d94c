//! CSRF protection for every form (OWASP "signed double-submit cookie"): the form
//! carries a keyed digest of a random value the browser holds in a cookie. A page on
//! another site can make the browser send the cookie, but cannot read it, so it
//! cannot produce the matching form value.

use crate::crypto::MasterKey;

/// The form value for a CSRF cookie value.
pub fn csrf_token(master: &MasterKey, cookie: &str) -> String {
    master.digest_secret(&format!("csrf:{cookie}"))
}

/// Constant-time check of a submitted form value against the cookie.
pub fn csrf_valid(master: &MasterKey, cookie: Option<&str>, submitted: Option<&str>) -> bool {
    match (cookie, submitted) {
        (Some(c), Some(s)) if c.len() >= 20 => master.secret_matches(&format!("csrf:{c}"), s),
        _ => false,
    }
}
