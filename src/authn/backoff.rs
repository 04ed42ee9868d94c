//! Password guessing at sign-in is slowed, never locked (issue 14): someone else's
//! failures must not keep the account holder out. Three counts, in the store (all
//! replicas share them), each under a keyed digest:
//!
//! - per (account, source address): after `free_failures_per_account_and_address`
//!   failures, each further attempt from there waits `first_delay`, doubling per
//!   failure up to `max_delay`. The holder elsewhere (home, phone, another school)
//!   is not affected;
//! - per source address, any accounts (password spraying): the same, after
//!   `free_failures_per_address`;
//! - per account, from all addresses within `account_window`: it never delays by
//!   itself. At `account_alert_failures` it raises an alert (audit event, metric,
//!   warning) and takes the free attempts away: every address is delayed after its
//!   first failure for that account.
//!
//! Each attempt is counted as a failure before the password is checked (one
//! transaction, rows locked in a fixed order), so a burst of concurrent guesses
//! cannot all slip under a limit; a success takes its count back. The answer never
//! depends on whether the account exists. Passkeys and upstream IdPs do not pass here.

use std::net::IpAddr;

use super::AuthnError;
use crate::audit::{self, Entry, Origin, Outcome};
use crate::config::SigninThrottleConfig;
use crate::store::{StoreError, Tx};
use crate::AppState;

/// The three counts one sign-in attempt touches.
pub(super) struct Attempt {
    pair: String,
    address: String,
    account: String,
}

/// A source address as counted: IPv6 by its /64 (one subscriber's usual share, which
/// an attacker can rotate through freely), IPv4-mapped IPv6 as IPv4. A proxy's
/// `ip:port` or `[v6]:port` is read as its address; anything else still unreadable
/// is counted as itself (never in one bucket shared by everyone, which would let
/// anyone slow a person everywhere); `-` only when there is no address at all.
fn counted_address(source_ip: Option<&str>) -> String {
    let Some(raw) = source_ip.map(str::trim).filter(|s| !s.is_empty()) else {
        return "-".into();
    };
    let ip = raw
        .parse::<IpAddr>()
        .ok()
        .or_else(|| raw.parse::<std::net::SocketAddr>().ok().map(|a| a.ip()))
        .or_else(|| {
            raw.strip_prefix('[')
                .and_then(|r| r.strip_suffix(']'))
                .and_then(|r| r.parse().ok())
        });
    match ip {
        Some(IpAddr::V4(v4)) => v4.to_string(),
        Some(IpAddr::V6(v6)) => match v6.to_ipv4_mapped() {
            Some(v4) => v4.to_string(),
            None => {
                let s = v6.segments();
                format!("{:x}:{:x}:{:x}:{:x}::/64", s[0], s[1], s[2], s[3])
            }
        },
        None => format!("raw:{}", raw.chars().take(64).collect::<String>()),
    }
}

impl Attempt {
    pub(super) fn new(app: &AppState, login: &str, source_ip: Option<&str>) -> Attempt {
        // Spelled as the account lookup spells it (RFC 8265 preparation), so
        // fullwidth or accented variants of one name share its counts.
        let name = crate::input::prepare_username(login);
        let addr = counted_address(source_ip);
        let key = |k: String| app.master_key().digest_secret(&k);
        Attempt {
            pair: key(format!("signin-pair:{name}\n{addr}")),
            address: key(format!("signin-addr:{addr}")),
            account: key(format!("signin-acct:{name}")),
        }
    }
}

struct Count {
    failures: i64,
    last_failed: i64,
    alerted: bool,
}

/// Reads a count for update, forgetting it when `stale` (its last failure, or for an
/// account its first, is older than `forget_before`).
async fn read_count(
    tx: &mut Tx,
    key: &str,
    now: i64,
    forget_before: i64,
    by_first: bool,
) -> Result<Count, AuthnError> {
    let age = if by_first {
        "signin_backoff.first_failed"
    } else {
        "signin_backoff.last_failed"
    };
    // The upsert takes the row lock (PostgreSQL) for the rest of the transaction.
    let sql = format!(
        "INSERT INTO signin_backoff (key, failures, first_failed, last_failed, alerted_at) VALUES ($1, 0, $2, $2, NULL) \
         ON CONFLICT (key) DO UPDATE SET \
           failures = CASE WHEN {age} < $3 THEN 0 ELSE signin_backoff.failures END, \
           first_failed = CASE WHEN {age} < $3 THEN $2 ELSE signin_backoff.first_failed END, \
           alerted_at = CASE WHEN {age} < $3 THEN NULL ELSE signin_backoff.alerted_at END \
         RETURNING failures, last_failed, alerted_at"
    );
    let (failures, last_failed, alerted_at): (i64, i64, Option<i64>) = sqlx::query_as(&sql)
        .bind(key)
        .bind(now)
        .bind(forget_before)
        .fetch_one(&mut **tx)
        .await?;
    Ok(Count {
        failures,
        last_failed,
        alerted: alerted_at.is_some(),
    })
}

/// How long after the last failure the next attempt may come: nothing before `free`
/// failures (at least one), then `first_delay` doubling per failure, capped at
/// `max_delay`.
pub(super) fn delay_ms(cfg: &SigninThrottleConfig, failures: i64, free: u32) -> i64 {
    let over = failures - i64::from(free.max(1));
    if over < 0 {
        return 0;
    }
    let first = i64::try_from(cfg.first_delay.as_millis()).unwrap_or(i64::MAX);
    let max = i64::try_from(cfg.max_delay.as_millis()).unwrap_or(i64::MAX);
    let doubled = u32::try_from(over)
        .ok()
        .and_then(|n| 1i64.checked_shl(n))
        .and_then(|f| first.checked_mul(f))
        .unwrap_or(max);
    doubled.min(max)
}

fn wait_ms(now: i64, c: &Count, cfg: &SigninThrottleConfig, free: u32) -> i64 {
    if c.failures == 0 {
        return 0;
    }
    (c.last_failed + delay_ms(cfg, c.failures, free) - now).max(0)
}

/// Before the password is checked: refused (`Slowed`) while a delay runs, else the
/// attempt is counted as a failure until `succeeded` takes it back.
pub(super) async fn begin(
    app: &AppState,
    attempt: &Attempt,
    now: i64,
) -> Result<Counted, AuthnError> {
    let cfg = &app.config().auth.throttle;
    let forget_before = now - ms(cfg.forget_after);
    let window_start = now - ms(cfg.account_window);
    let mut tx = app.store().begin().await?;
    // Always pair, then address, then account: no two attempts wait on each other
    // in opposite orders.
    let pair = read_count(&mut tx, &attempt.pair, now, forget_before, false).await?;
    // An address's count ages by its first failure (a fixed window): a busy shared
    // address (a school behind one NAT) always has a recent attempt, and must not
    // carry its typos all day.
    let address = read_count(&mut tx, &attempt.address, now, forget_before, true).await?;
    let account = read_count(&mut tx, &attempt.account, now, window_start, true).await?;
    // Under a spread-out attack on this account each address is delayed after its
    // first failure for it.
    let pair_free = if account.alerted {
        1
    } else {
        cfg.free_failures_per_account_and_address
    };
    let wait = wait_ms(now, &pair, cfg, pair_free).max(wait_ms(
        now,
        &address,
        cfg,
        cfg.free_failures_per_address,
    ));
    if wait > 0 {
        tx.commit().await.map_err(StoreError::from)?;
        crate::ops::metrics::signin("slowed");
        return Err(AuthnError::Slowed {
            seconds: (wait + 999) / 1000,
        });
    }
    for key in [&attempt.pair, &attempt.address, &attempt.account] {
        sqlx::query(
            "UPDATE signin_backoff SET failures = failures + 1, last_failed = $1 WHERE key = $2",
        )
        .bind(now)
        .bind(key)
        .execute(&mut *tx)
        .await?;
    }
    tx.commit().await.map_err(StoreError::from)?;
    Ok(Counted {
        at: now,
        address_last: address.last_failed,
        account_last: account.last_failed,
    })
}

/// An attempt counted in advance: when, and the last failures it replaced, so a
/// success can undo it exactly.
pub(super) struct Counted {
    at: i64,
    address_last: i64,
    account_last: i64,
}

/// The right password: this (account, address) starts afresh; the address and the
/// account get back the failure counted in advance, and their last failure as it
/// was (a success must not restart anybody's delay).
pub(super) async fn succeeded(
    app: &AppState,
    attempt: &Attempt,
    counted: &Counted,
) -> Result<(), AuthnError> {
    let mut tx = app.store().begin().await?;
    sqlx::query("DELETE FROM signin_backoff WHERE key = $1")
        .bind(&attempt.pair)
        .execute(&mut *tx)
        .await?;
    for (key, previous) in [
        (&attempt.address, counted.address_last),
        (&attempt.account, counted.account_last),
    ] {
        sqlx::query(
            "UPDATE signin_backoff SET failures = failures - 1, \
               last_failed = CASE WHEN last_failed = $2 THEN $3 ELSE last_failed END \
             WHERE key = $1 AND failures > 0",
        )
        .bind(key)
        .bind(counted.at)
        .bind(previous)
        .execute(&mut *tx)
        .await?;
    }
    tx.commit().await.map_err(StoreError::from)?;
    Ok(())
}

/// A wrong password (already counted): raises the alert, once per window, when the
/// account's failures from all addresses reach `account_alert_failures`.
pub(super) async fn failed(
    app: &AppState,
    attempt: &Attempt,
    person_id: Option<&str>,
    origin: &Origin,
    now: i64,
) -> Result<(), AuthnError> {
    let cfg = &app.config().auth.throttle;
    let mut tx = app.store().begin().await?;
    let failures: Option<i64> = sqlx::query_scalar(
        "UPDATE signin_backoff SET alerted_at = $1 WHERE key = $2 AND alerted_at IS NULL AND failures >= $3 RETURNING failures",
    )
    .bind(now)
    .bind(&attempt.account)
    .bind(i64::from(cfg.account_alert_failures))
    .fetch_optional(&mut *tx)
    .await?;
    let Some(failures) = failures else {
        return Ok(());
    };
    // Who is targeted (the person, or the digest of a name that is nobody's), how
    // hard: never the name typed or any password.
    let target = person_id.map_or_else(
        || {
            (
                "login",
                attempt.account.chars().take(16).collect::<String>(),
            )
        },
        |p| ("person", p.to_string()),
    );
    let seq = audit::record(
        &mut tx,
        app.audit_key(),
        now,
        origin,
        Entry {
            action: "auth.signin.guessing",
            outcome: Outcome::Denied,
            target_kind: target.0,
            target_id: &target.1,
            details: serde_json::json!({
                "failures": failures,
                "windowSeconds": cfg.account_window.as_secs(),
            }),
        },
    )
    .await?;
    if let Some(person) = person_id {
        let event = crate::outbox::NewEvent {
            kind: crate::outbox::EventType::PersonSigninGuessing,
            subject: format!("people/{person}/signin"),
            data: serde_json::json!({
                "person": person,
                "failures": failures,
                "windowSeconds": cfg.account_window.as_secs(),
            }),
        };
        crate::outbox::append(&mut tx, crate::clock::Timestamp::from_millis(now), event).await?;
    }
    // The account holder is told (issue 16), in this transaction: once per alert.
    if let Some(person_id) = person_id {
        let notice = crate::mail::SecurityNotice {
            template: crate::mail::Template::AccountLocked,
            person_id,
            change_id: seq,
            source_ip: origin.meta.source_ip.as_deref(),
            details: serde_json::json!({ "reason": "guessing" }),
        };
        crate::mail::notify_person(&mut tx, crate::clock::Timestamp::from_millis(now), notice)
            .await?;
    }
    tx.commit().await.map_err(StoreError::from)?;
    crate::ops::metrics::signin_guessing_alert();
    tracing::warn!(
        target_kind = target.0,
        target_id = %target.1,
        failures,
        window_seconds = cfg.account_window.as_secs(),
        "password guessing against one account from many addresses: every address is now delayed from its first failure"
    );
    Ok(())
}

fn ms(d: std::time::Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX / 2)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn delays_double_after_the_free_failures_up_to_the_cap() {
        let cfg = SigninThrottleConfig {
            first_delay: Duration::from_secs(1),
            max_delay: Duration::from_secs(60),
            ..Default::default()
        };
        let d: Vec<i64> = (0..10).map(|n| delay_ms(&cfg, n, 3)).collect();
        assert_eq!(d, [0, 0, 0, 1000, 2000, 4000, 8000, 16_000, 32_000, 60_000]);
        assert_eq!(delay_ms(&cfg, i64::MAX, 1), 60_000, "no overflow");
        assert_eq!(delay_ms(&cfg, 0, 1), 0);
        assert_eq!(delay_ms(&cfg, 1, 1), 1000);
    }

    #[test]
    fn addresses_are_counted_by_host_or_ipv6_64() {
        assert_eq!(counted_address(Some("203.0.113.7")), "203.0.113.7");
        assert_eq!(
            counted_address(Some("2001:db8:1:2:aaaa::1")),
            counted_address(Some("2001:db8:1:2:bbbb::9"))
        );
        assert_ne!(
            counted_address(Some("2001:db8:1:2::1")),
            counted_address(Some("2001:db8:1:3::1"))
        );
        assert_eq!(counted_address(Some("::ffff:203.0.113.7")), "203.0.113.7");
        assert_eq!(counted_address(None), "-");
        assert_eq!(
            counted_address(Some("not an address")),
            "raw:not an address"
        );
        // A proxy that appends the port: the address is what is counted.
        assert_eq!(counted_address(Some("203.0.113.7:51234")), "203.0.113.7");
        assert_eq!(
            counted_address(Some("[2001:db8:1:2::1]:443")),
            counted_address(Some("2001:db8:1:2::9"))
        );
        assert_eq!(
            counted_address(Some("[2001:db8:1:2::1]")),
            counted_address(Some("2001:db8:1:2::9"))
        );
    }
}
