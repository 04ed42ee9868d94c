//! TOTP (RFC 6238) as a second factor: the codes of Google Authenticator, Microsoft
//! Authenticator, FreeOTP and every other authenticator app. SHA-1, 6 digits and 30 s
//! steps, the parameters every app supports (RFC 6238 §1.2 and the Key Uri Format).

use ring::hmac;

use super::factors_repo::{self, TotpChallenge};
use super::AuthnError;
use crate::audit::{Origin, Outcome};
use crate::store::{self, StoreError};
use crate::AppState;

const STEP_SECONDS: i64 = 30;
const DIGITS: u32 = 6;
/// One step either side: a phone clock a little off, or a code typed as it changed
/// (RFC 6238 §5.2 recommends at most one step of network delay).
const WINDOW: i64 = 1;
const SECRET_BYTES: usize = 20;

/// HOTP (RFC 4226 §5.3): HMAC-SHA-1 of the counter, dynamically truncated.
pub fn hotp(secret: &[u8], counter: u64) -> u32 {
    // SHA-1 is what the authenticator apps compute; HMAC-SHA-1 is not affected by
    // SHA-1's collision weakness (RFC 6238 §1.2 allows SHA-256, few apps honour it).
    let key = hmac::Key::new(hmac::HMAC_SHA1_FOR_LEGACY_USE_ONLY, secret);
    let mac = hmac::sign(&key, &counter.to_be_bytes());
    let h = mac.as_ref();
    let offset = usize::from(h[h.len() - 1] & 0x0f);
    let bin = (u32::from(h[offset] & 0x7f) << 24)
        | (u32::from(h[offset + 1]) << 16)
        | (u32::from(h[offset + 2]) << 8)
        | u32::from(h[offset + 3]);
    bin % 10u32.pow(DIGITS)
}

/// The time step a code for `now_secs` belongs to (RFC 6238 §4.2, T0 = 0).
pub fn step_at(now_secs: i64) -> i64 {
    now_secs.div_euclid(STEP_SECONDS)
}

/// The step within the window whose code is `code`, compared in constant time.
pub fn matching_step(secret: &[u8], code: &str, now_secs: i64) -> Option<i64> {
    let code = code.trim().replace([' ', '-'], "");
    if code.len() != DIGITS as usize || !code.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let now = step_at(now_secs);
    let mut found = None;
    // Every step in the window is computed, so the time taken says nothing.
    for step in (now - WINDOW)..=(now + WINDOW) {
        let Ok(counter) = u64::try_from(step) else {
            continue;
        };
        let want = format!("{:0width$}", hotp(secret, counter), width = DIGITS as usize);
        if crate::crypto::constant_time_eq(want.as_bytes(), code.as_bytes()) && found.is_none() {
            found = Some(step);
        }
    }
    found
}

/// RFC 4648 §6 base32 without padding: how the Key Uri Format carries the secret.
pub(crate) fn base32(data: &[u8]) -> String {
    const ALPHABET: &[u8; 32] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
    let mut out = String::with_capacity(data.len().div_ceil(5) * 8);
    let (mut buffer, mut bits) = (0u32, 0u32);
    for &b in data {
        buffer = (buffer << 8) | u32::from(b);
        bits += 8;
        while bits >= 5 {
            bits -= 5;
            out.push(char::from(ALPHABET[((buffer >> bits) & 31) as usize]));
        }
    }
    if bits > 0 {
        out.push(char::from(ALPHABET[((buffer << (5 - bits)) & 31) as usize]));
    }
    out
}

/// A TOTP authenticator being set up: shown once, confirmed by a first code.
pub struct Enrollment {
    pub secret_base32: String,
    /// `otpauth://totp/…` (the Key Uri Format): what the QR code holds.
    pub uri: String,
}

fn label_of(app: &AppState, account: &str) -> (String, String) {
    let issuer = app.config().mfa.totp_issuer.clone();
    let enc = |s: &str| url::form_urlencoded::byte_serialize(s.as_bytes()).collect::<String>();
    (enc(&issuer), enc(account))
}

fn seal_label(person_id: &str) -> String {
    // The person id is the AEAD's associated data: a sealed secret copied to another
    // person's row does not open.
    format!("totp:{person_id}")
}

/// Starts (or restarts) setting up an authenticator app; a confirmed one is kept
/// until the new one is confirmed.
pub async fn start_enrollment(
    app: &AppState,
    person_id: &str,
    account: &str,
) -> Result<Enrollment, AuthnError> {
    let secret: [u8; SECRET_BYTES] = crate::crypto::random_bytes();
    let sealed = crate::crypto::seal(app.master_key(), &seal_label(person_id), &secret)
        .map_err(|e| AuthnError::Hash(e.to_string()))?;
    // An unconfirmed secret replaces an earlier unconfirmed one; a confirmed factor
    // stays in force until the new one is confirmed (then `confirm` swaps them).
    super::mfa::replace_challenge(app, "totp", person_id, &sealed).await?;
    let secret_base32 = base32(&secret);
    let (issuer, account) = label_of(app, account);
    let uri = format!(
        "otpauth://totp/{issuer}:{account}?secret={secret_base32}&issuer={issuer}&algorithm=SHA1&digits={DIGITS}&period={STEP_SECONDS}"
    );
    Ok(Enrollment { secret_base32, uri })
}

/// Confirms the authenticator being set up with its first code; it replaces any
/// earlier one. False for a wrong code or an expired set-up.
pub async fn confirm_enrollment(
    app: &AppState,
    person_id: &str,
    code: &str,
    origin: &Origin,
) -> Result<bool, AuthnError> {
    let now = app.clock().now_ms();
    let mut tx = app.store().begin().await?;
    let Some(TotpChallenge {
        id,
        sealed_secret: sealed,
    }) = factors_repo::find_totp_challenge(&mut tx, person_id, now).await?
    else {
        return Ok(false);
    };
    let secret = crate::crypto::open(app.master_key(), &seal_label(person_id), &sealed)
        .map_err(|e| AuthnError::Hash(e.to_string()))?;
    let Some(step) = matching_step(&secret, code, now.div_euclid(1000)) else {
        return Ok(false);
    };
    factors_repo::delete_challenge(&mut tx, &id).await?;
    factors_repo::replace_totp(&mut tx, person_id, &sealed, step, now).await?;
    // Audited with the change, as a passkey's (`passkeys::finish_registration`).
    super::factor_record::audit_factor(
        &mut tx,
        app,
        origin,
        "auth.totp.add",
        Outcome::Success,
        person_id,
        "totp",
    )
    .await?;
    tx.commit().await.map_err(StoreError::from)?;
    Ok(true)
}

/// Checks a code at sign-in. A code is accepted once: its step must be later than
/// the last accepted one, recorded in the same statement (no race between replicas).
pub async fn verify(app: &AppState, person_id: &str, code: &str) -> Result<bool, AuthnError> {
    let Some(factor) = factors_repo::find_confirmed_totp(app.store(), person_id).await? else {
        return Ok(false);
    };
    let sealed = factor.sealed_secret;
    let secret = crate::crypto::open(app.master_key(), &seal_label(person_id), &sealed)
        .map_err(|e| AuthnError::Hash(e.to_string()))?;
    let Some(step) = matching_step(&secret, code, app.clock().now_secs()) else {
        return Ok(false);
    };
    Ok(factors_repo::use_totp_step(app.store(), person_id, step).await?)
}

pub async fn has_totp(app: &AppState, person_id: &str) -> Result<bool, AuthnError> {
    Ok(factors_repo::has_confirmed_totp(app.store(), person_id).await?)
}

pub async fn remove(tx: &mut store::Tx, person_id: &str) -> Result<bool, AuthnError> {
    Ok(factors_repo::delete_totp(tx, person_id).await?)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 6238 Appendix B, SHA-1 rows (8 digits there; the last 6 are ours).
    #[test]
    fn rfc6238_test_vectors() {
        let secret = b"12345678901234567890";
        for (t, code8) in [
            (59i64, 94287082u32),
            (1111111109, 7081804),
            (1111111111, 14050471),
            (1234567890, 89005924),
            (2000000000, 69279037),
            (20000000000, 65353130),
        ] {
            let counter = u64::try_from(step_at(t)).unwrap_or_default();
            assert_eq!(hotp(secret, counter), code8 % 1_000_000, "T = {t}");
        }
    }

    #[test]
    fn window_and_format() {
        let secret = b"12345678901234567890";
        let now = 1_111_111_111;
        let code = format!("{:06}", hotp(secret, 37037037));
        assert_eq!(matching_step(secret, &code, now), Some(37037037));
        let spaced = format!("{} {}", &code[..3], &code[3..]);
        assert_eq!(matching_step(secret, &spaced, now), Some(37037037));
        assert_eq!(matching_step(secret, &code, now + 30), Some(37037037));
        assert_eq!(matching_step(secret, &code, now + 90), None);
        assert_eq!(matching_step(secret, "12345", now), None);
        assert_eq!(matching_step(secret, "abcdef", now), None);
    }

    #[test]
    fn base32_matches_rfc4648() {
        // RFC 4648 §10 (padding dropped, as in otpauth URIs).
        assert_eq!(base32(b""), "");
        assert_eq!(base32(b"f"), "MY");
        assert_eq!(base32(b"fo"), "MZXQ");
        assert_eq!(base32(b"foo"), "MZXW6");
        assert_eq!(base32(b"foob"), "MZXW6YQ");
        assert_eq!(base32(b"fooba"), "MZXW6YTB");
        assert_eq!(base32(b"foobar"), "MZXW6YTBOI");
    }
}
