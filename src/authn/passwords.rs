//! Local passwords: argon2id (RFC 9106) with parameters from config, checked off the
//! async runtime; sign-in that answers the same for unknown names and wrong passwords.

use argon2::password_hash::PasswordHash;
use argon2::{Algorithm, Argon2, Block, Params, Version};
use base64::Engine;
use std::sync::{Arc, Mutex};

use super::throttle;
use super::{backoff, AuthnError};
use crate::audit::{self, Entry, Origin, Outcome};
use crate::config::AuthConfig;
use crate::directory::Person;
use crate::store::StoreError;
use crate::AppState;

/// argon2id with the configured cost, and a hash of a random password to verify
/// against when the name is unknown, so that such a sign-in costs the same time.
/// At most one hash per core runs at a time: each takes `argon2_memory_kib` of
/// memory, so a burst of sign-ins must queue, not exhaust the machine's memory. The
/// working memory is reused from a pool: allocating 19 MiB per hash on whichever
/// blocking thread runs it leaves the allocator holding that much per thread.
#[derive(Clone)]
pub struct PasswordHasher {
    params: Params,
    dummy: String,
    min_length: usize,
    slots: Arc<tokio::sync::Semaphore>,
    memory: Arc<Mutex<Vec<Vec<Block>>>>,
}

/// PHC strings use standard base64 without padding.
const PHC_B64: base64::engine::GeneralPurpose = base64::engine::general_purpose::STANDARD_NO_PAD;

impl PasswordHasher {
    pub fn new(config: &AuthConfig) -> Result<PasswordHasher, AuthnError> {
        let params = Params::new(
            config.argon2_memory_kib,
            config.argon2_iterations,
            config.argon2_parallelism,
            None,
        )
        .map_err(|e| AuthnError::Hash(e.to_string()))?;
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        let mut h = PasswordHasher {
            params,
            dummy: String::new(),
            min_length: config.min_password_length,
            slots: Arc::new(tokio::sync::Semaphore::new(cores)),
            memory: Arc::new(Mutex::new(Vec::new())),
        };
        h.dummy = h.hash_blocking(&crate::crypto::random_token(16))?;
        Ok(h)
    }

    /// Runs argon2id with `params`, in pooled memory when they are the configured ones.
    fn compute(
        &self,
        params: &Params,
        version: Version,
        pwd: &[u8],
        salt: &[u8],
        out: &mut [u8],
    ) -> Result<(), argon2::Error> {
        let argon = Argon2::new(Algorithm::Argon2id, version, params.clone());
        if !self.same_cost(params) {
            return argon.hash_password_into(pwd, salt, out);
        }
        let taken = self.memory.lock().ok().and_then(|mut pool| pool.pop());
        let mut blocks = taken.unwrap_or_else(|| vec![Block::default(); params.block_count()]);
        let result = argon.hash_password_into_with_memory(pwd, salt, out, &mut blocks);
        if let Ok(mut pool) = self.memory.lock() {
            pool.push(blocks);
        }
        result
    }

    /// The PHC string (`$argon2id$v=19$m=…,t=…,p=…$salt$hash`).
    pub fn hash_blocking(&self, password: &str) -> Result<String, AuthnError> {
        let salt: [u8; 16] = crate::crypto::random_bytes();
        let mut out = [0u8; 32];
        self.compute(
            &self.params,
            Version::V0x13,
            password.as_bytes(),
            &salt,
            &mut out,
        )
        .map_err(|e| AuthnError::Hash(e.to_string()))?;
        let p = &self.params;
        Ok(format!(
            "$argon2id$v=19$m={},t={},p={}${}${}",
            p.m_cost(),
            p.t_cost(),
            p.p_cost(),
            PHC_B64.encode(salt),
            PHC_B64.encode(out)
        ))
    }

    /// Verifies in constant time. Also says whether the stored hash used other
    /// parameters (so it can be re-hashed with the configured ones).
    pub fn verify_blocking(&self, password: &str, stored: Option<&str>) -> (bool, bool) {
        let phc = stored.unwrap_or(&self.dummy);
        let Ok(parsed) = PasswordHash::new(phc) else {
            return (false, false);
        };
        let (Ok(params), Some(salt), Some(expected)) =
            (Params::try_from(&parsed), parsed.salt, parsed.hash)
        else {
            return (false, false);
        };
        let version = parsed
            .version
            .and_then(|v| Version::try_from(v).ok())
            .unwrap_or(Version::V0x13);
        let mut salt_buf = [0u8; 64];
        let Ok(salt) = salt.decode_b64(&mut salt_buf) else {
            return (false, false);
        };
        let mut out = vec![0u8; expected.len()];
        let computed = parsed.algorithm.as_str() == "argon2id"
            && self
                .compute(&params, version, password.as_bytes(), salt, &mut out)
                .is_ok();
        let ok = computed
            && crate::crypto::constant_time_eq(&out, expected.as_bytes())
            && stored.is_some();
        (ok, !self.same_cost(&params))
    }

    /// Same memory, time and lanes (the output length is not a cost parameter).
    fn same_cost(&self, p: &Params) -> bool {
        (p.m_cost(), p.t_cost(), p.p_cost())
            == (
                self.params.m_cost(),
                self.params.t_cost(),
                self.params.p_cost(),
            )
    }

    /// Length and simple-pattern checks (NIST SP 800-63B §5.1.1.2: length over
    /// composition rules; no truncation).
    pub fn check_policy(&self, password: &str, username: Option<&str>) -> Result<(), AuthnError> {
        let n = password.chars().count();
        if n < self.min_length {
            return Err(AuthnError::PasswordPolicy(format!(
                "the password must be at least {} characters long",
                self.min_length
            )));
        }
        if n > 256 {
            return Err(AuthnError::PasswordPolicy(
                "the password must be at most 256 characters long".into(),
            ));
        }
        if username.is_some_and(|u| password.to_lowercase().contains(&u.to_lowercase())) {
            return Err(AuthnError::PasswordPolicy(
                "the password must not contain the username".into(),
            ));
        }
        if password.chars().all(|c| password.starts_with(c)) {
            return Err(AuthnError::PasswordPolicy(
                "the password must not be one character repeated".into(),
            ));
        }
        Ok(())
    }
}

pub async fn hash_password(app: &AppState, password: &str) -> Result<String, AuthnError> {
    let hasher = app.passwords().clone();
    let slot = hasher
        .slots
        .clone()
        .acquire_owned()
        .await
        .map_err(|e| AuthnError::Hash(e.to_string()))?;
    let pw = password.to_string();
    tokio::task::spawn_blocking(move || {
        let _slot = slot;
        hasher.hash_blocking(&pw)
    })
    .await
    .map_err(|e| AuthnError::Hash(e.to_string()))?
}

async fn verify(app: &AppState, password: &str, stored: Option<String>) -> (bool, bool) {
    let hasher = app.passwords().clone();
    let Ok(slot) = hasher.slots.clone().acquire_owned().await else {
        return (false, false);
    };
    let pw = password.to_string();
    // The slot moves into the blocking task: it is freed when the hash is done, even
    // if the request was abandoned meanwhile.
    tokio::task::spawn_blocking(move || {
        let _slot = slot;
        hasher.verify_blocking(&pw, stored.as_deref())
    })
    .await
    .unwrap_or((false, false))
}

async fn stored_hash(app: &AppState, person_id: &str) -> Result<Option<String>, AuthnError> {
    Ok(
        sqlx::query_scalar::<_, String>("SELECT hash FROM passwords WHERE person_id = $1")
            .bind(person_id)
            .fetch_optional(app.store().reader())
            .await?,
    )
}

/// Checks a sign-in. Unknown names, people without a password and wrong passwords
/// all answer `InvalidCredentials` after the same argon2 work; failures count per
/// name (existing or not) and source address, and slow further guesses
/// (`authn::backoff`, never a lockout).
pub async fn sign_in(
    app: &AppState,
    login: &str,
    password: &str,
    origin: &Origin,
) -> Result<Person, AuthnError> {
    let now = app.clock().now_ms();
    let attempt = backoff::Attempt::new(app, login, origin.meta.source_ip.as_deref());
    let counted = backoff::begin(app, &attempt, now).await?;
    let person = crate::directory::find_person_by_login(app.store(), login)
        .await
        .map_err(|e| match e {
            crate::directory::DirectoryError::Store(s) => AuthnError::Store(s),
            other => AuthnError::Store(StoreError::Corrupt(other.to_string())),
        })?;
    let stored = match &person {
        Some(p) => stored_hash(app, &p.id).await?,
        None => None,
    };
    let (ok, outdated) = verify(app, password, stored.clone()).await;
    let person = match person {
        Some(p) if ok => p,
        other => {
            backoff::failed(
                app,
                &attempt,
                other.as_ref().map(|p| p.id.as_str()),
                origin,
                now,
            )
            .await?;
            crate::ops::metrics::signin("failed");
            if let Some(p) = other {
                let mut tx = app.store().begin().await?;
                audit::record(
                    &mut tx,
                    app.audit_key(),
                    now,
                    origin,
                    Entry {
                        action: "auth.signin",
                        outcome: Outcome::Denied,
                        target_kind: "person",
                        target_id: &p.id,
                        details: serde_json::json!({ "reason": "invalid_credentials" }),
                    },
                )
                .await?;
                tx.commit().await.map_err(StoreError::from)?;
            }
            return Err(AuthnError::InvalidCredentials);
        }
    };
    backoff::succeeded(app, &attempt, &counted).await?;
    if person.status != "active" {
        crate::ops::metrics::signin("inactive");
        return Err(AuthnError::Inactive(person.status.clone()));
    }
    if outdated {
        // The configured cost changed since this hash was made: re-hash now, while
        // the plain password is at hand (RFC 9106 §4 "tuning").
        if let Ok(h) = hash_password(app, password).await {
            // Only over the hash that was checked: a reset made meanwhile stands.
            let _ =
                sqlx::query("UPDATE passwords SET hash = $1 WHERE person_id = $2 AND hash = $3")
                    .bind(h)
                    .bind(&person.id)
                    .bind(stored.as_deref())
                    .execute(app.store().writer())
                    .await;
        }
    }
    crate::ops::metrics::signin("success");
    Ok(person)
}

/// Whether the person must choose a new password (set by an admin reset).
pub async fn must_change_password(app: &AppState, person_id: &str) -> Result<bool, AuthnError> {
    let flag: Option<i64> =
        sqlx::query_scalar("SELECT must_change FROM passwords WHERE person_id = $1")
            .bind(person_id)
            .fetch_optional(app.store().reader())
            .await?;
    Ok(flag == Some(1))
}

pub async fn has_password(app: &AppState, person_id: &str) -> Result<bool, AuthnError> {
    Ok(stored_hash(app, person_id).await?.is_some())
}

/// Sets (or resets) a person's password: admin reset, the CLI, the demo.
pub async fn set_password(
    app: &AppState,
    person: &Person,
    password: &str,
    must_change: bool,
    origin: &Origin,
) -> Result<(), AuthnError> {
    app.passwords()
        .check_policy(password, person.username.as_deref())?;
    store_password(app, person, password, must_change, origin, None).await
}

/// Writes a new password hash in one transaction. `replaces`: the hash the caller
/// checked the current password against (a person changing their own); when the
/// stored one differs by now (an admin reset in between), nothing is written and
/// the answer is `InvalidCredentials`, so the older password never wins.
async fn store_password(
    app: &AppState,
    person: &Person,
    password: &str,
    must_change: bool,
    origin: &Origin,
    replaces: Option<Option<String>>,
) -> Result<(), AuthnError> {
    let hash = hash_password(app, password).await?;
    let now = app.clock().now_ms();
    let by_self = replaces.is_some();
    let mut tx = app.store().begin_locked("people", "id", &person.id).await?;
    if let Some(expected) = replaces {
        let current: Option<String> =
            sqlx::query_scalar("SELECT hash FROM passwords WHERE person_id = $1")
                .bind(&person.id)
                .fetch_optional(&mut *tx)
                .await?;
        if current != expected {
            return Err(AuthnError::InvalidCredentials);
        }
    }
    // An upsert: two resets at once both succeed (the later one stands).
    sqlx::query(
        "INSERT INTO passwords (person_id, hash, must_change, changed_at) VALUES ($1, $2, $3, $4) \
         ON CONFLICT (person_id) DO UPDATE SET hash = excluded.hash, must_change = excluded.must_change, changed_at = excluded.changed_at",
    )
    .bind(&person.id)
    .bind(&hash)
    .bind(i64::from(must_change))
    .bind(now)
    .execute(&mut *tx)
    .await?;
    let seq = audit::record(
        &mut tx,
        app.audit_key(),
        now,
        origin,
        Entry {
            action: "auth.password.set",
            outcome: Outcome::Success,
            target_kind: "person",
            target_id: &person.id,
            details: serde_json::json!({ "mustChange": must_change }),
        },
    )
    .await?;
    // The outbox hears it too (issue 16), in this transaction: who changed it (the
    // person, an admin, the CLI), never the password or its hash.
    let event = crate::outbox::NewEvent {
        kind: crate::outbox::EventType::PersonPasswordChanged,
        subject: format!("people/{}/password", person.id),
        data: serde_json::json!({
            "person": person.id,
            "mustChange": must_change,
            "by": if by_self { "self" } else { origin.actor_kind },
        }),
    };
    crate::outbox::append(&mut tx, app.clock().now(), event).await?;
    // The person hears of it, in this transaction (issue 16): a changed password they
    // did not choose is the first sign of a taken account.
    let by_admin = !by_self && origin.actor_id != person.id;
    let notice = crate::mail::SecurityNotice {
        template: crate::mail::Template::PasswordChanged,
        person_id: &person.id,
        change_id: seq,
        source_ip: origin.meta.source_ip.as_deref(),
        details: serde_json::json!({ "by_admin": by_admin, "must_change": must_change }),
    };
    crate::mail::notify_person(&mut tx, crate::clock::Timestamp::from_millis(now), notice).await?;
    tx.commit().await.map_err(StoreError::from)?;
    Ok(())
}

/// A person changes their own password: the current one must be right.
pub async fn change_password(
    app: &AppState,
    person: &Person,
    current: &str,
    new: &str,
    origin: &Origin,
) -> Result<(), AuthnError> {
    // Guessing the current password from a borrowed session is throttled like sign-in.
    let now = app.clock().now_ms();
    let key = throttle::login_key(app, &format!("change-password:{}", person.id));
    throttle::reserve_attempt(app, &key, now).await?;
    let stored = stored_hash(app, &person.id).await?;
    let (ok, _) = verify(app, current, stored.clone()).await;
    if !ok {
        throttle::record_failure(app, &key, now, Some((&person.id, origin))).await?;
        return Err(AuthnError::InvalidCredentials);
    }
    throttle::clear(app.store(), &key).await?;
    app.passwords()
        .check_policy(new, person.username.as_deref())?;
    store_password(app, person, new, false, origin, Some(stored)).await
}

#[cfg(test)]
mod tests {
    use super::*;
    use argon2::password_hash::PasswordVerifier;

    fn hasher() -> PasswordHasher {
        let cfg = AuthConfig {
            argon2_memory_kib: 8192,
            argon2_iterations: 1,
            ..Default::default()
        };
        PasswordHasher::new(&cfg).unwrap()
    }

    #[test]
    fn phc_strings_interoperate_with_the_argon2_crate() {
        let h = hasher();
        let phc = h.hash_blocking("correct horse").unwrap();
        assert!(phc.starts_with("$argon2id$v=19$m=8192,t=1,p=1$"), "{phc}");
        // The crate's own verifier accepts ours, and ours accepts the crate's.
        let parsed = PasswordHash::new(&phc).unwrap();
        assert!(Argon2::default()
            .verify_password(b"correct horse", &parsed)
            .is_ok());
        assert_eq!(
            h.verify_blocking("correct horse", Some(&phc)),
            (true, false)
        );
        assert_eq!(
            h.verify_blocking("correct horsE", Some(&phc)),
            (false, false)
        );
        use argon2::password_hash::{PasswordHasher as _, SaltString};
        let theirs = Argon2::default()
            .hash_password(
                b"pw-from-elsewhere",
                &SaltString::generate(&mut rand::rngs::OsRng),
            )
            .unwrap()
            .to_string();
        assert_eq!(
            h.verify_blocking("pw-from-elsewhere", Some(&theirs)),
            (true, true),
            "other parameters: valid, and due for a re-hash"
        );
        assert_eq!(
            h.verify_blocking("x", None),
            (false, false),
            "no stored hash never verifies"
        );
    }
}
