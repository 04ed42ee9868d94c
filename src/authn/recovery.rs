//! Recovery codes: the way back in when the phone or the security key is lost. Each
//! works once; only keyed digests are stored, so a copy of the database yields none.
//! A code has 49 random bits (10 characters of a 31-letter alphabet), so a keyed
//! SHA-256 is enough (no slow hash: guessing is throttled like every sign-in).

use rand::Rng;

use super::factors_repo;
use super::AuthnError;
use crate::store;
use crate::AppState;

/// No 0/O, 1/I/L: codes are read off paper and typed by people.
const ALPHABET: &[u8; 31] = b"ABCDEFGHJKMNPQRSTUVWXYZ23456789";
const CODE_LEN: usize = 10;

fn new_code() -> String {
    let mut rng = rand::rngs::OsRng;
    let raw: String = (0..CODE_LEN)
        .map(|_| char::from(ALPHABET[rng.gen_range(0..ALPHABET.len())]))
        .collect();
    format!("{}-{}", &raw[..5], &raw[5..])
}

/// Upper case, no spaces or dashes: what people type varies, the code does not.
fn normalise(code: &str) -> String {
    code.chars()
        .filter(|c| c.is_ascii_alphanumeric())
        .map(|c| c.to_ascii_uppercase())
        .collect()
}

fn digest(app: &AppState, person_id: &str, code: &str) -> String {
    // The person id is part of the input: the same code for two people (possible,
    // if unlikely) gives two digests.
    app.master_key()
        .digest_secret(&format!("recovery:{person_id}:{}", normalise(code)))
}

/// Issues a new set of codes (the old set stops working) and returns them, the only
/// time they are ever shown.
pub async fn issue(
    tx: &mut store::Tx,
    app: &AppState,
    person_id: &str,
) -> Result<Vec<String>, AuthnError> {
    let now = app.clock().now_ms();
    // Two issues at once: the second waits, then replaces the first's set.
    app.store().lock_row(tx, "people", "id", person_id).await?;
    factors_repo::delete_recovery_codes(tx, person_id).await?;
    let mut codes = Vec::new();
    while codes.len() < app.config().mfa.recovery_codes {
        let code = new_code();
        if codes.contains(&code) {
            continue;
        }
        factors_repo::insert_recovery_code(tx, person_id, &digest(app, person_id, &code), now)
            .await?;
        codes.push(code);
    }
    Ok(codes)
}

/// Uses up a code: true once for each issued code, false otherwise. The digest is
/// looked up by the database (an index, not a comparison in our code).
pub async fn consume(app: &AppState, person_id: &str, code: &str) -> Result<bool, AuthnError> {
    let normal = normalise(code);
    if normal.len() != CODE_LEN {
        return Ok(false);
    }
    let digest = digest(app, person_id, &normal);
    let now = app.clock().now_ms();
    Ok(factors_repo::use_recovery_code(app.store(), person_id, &digest, now).await?)
}

/// Codes not yet used.
pub async fn remaining(app: &AppState, person_id: &str) -> Result<i64, AuthnError> {
    Ok(factors_repo::unused_recovery_codes(app.store(), person_id).await?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_readable_and_normalise() {
        let c = new_code();
        assert_eq!(c.len(), CODE_LEN + 1);
        assert_eq!(normalise(&c).len(), CODE_LEN);
        assert!(!c.contains(['0', 'O', '1', 'I', 'L']));
        assert_eq!(normalise(" abcde-fghjk "), "ABCDEFGHJK");
    }
}
