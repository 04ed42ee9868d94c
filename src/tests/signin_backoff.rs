//! Issue 14, defect 4: password guessing is slowed per (account, address) and per
//! address with doubling delays, and a spread-out attack on one account raises an
//! alert; nobody elsewhere can lock the account holder out. The hub reads each
//! browser's address from `X-Forwarded-For` (`server.trust_forwarded_for`), as behind
//! the district's proxy.

use super::browser::{Agent, Page, PASSWORD};
use super::request_binding::federated_handoff;
use super::*;

const PROXIED: (&str, &str) = ("HMS_ACH__SERVER__TRUST_FORWARDED_FOR", "true");

fn from<'a>(t: &'a TestApp, address: &str) -> Agent<'a> {
    let mut b = t.agent();
    b.forwarded_for = Some(address.to_string());
    b
}

async fn try_password(b: &mut Agent<'_>, username: &str, password: &str) -> Page {
    let csrf = b.get("/login").await.hidden("csrf");
    b.post(
        "/login",
        &[
            ("csrf", &csrf),
            ("username", username),
            ("password", password),
        ],
    )
    .await
}

fn retry_after(p: &Page) -> Option<String> {
    p.headers
        .get(header::RETRY_AFTER)
        .map(|v| v.to_str().unwrap().to_string())
}

/// Tries wrong passwords from `b` until `failures` of them were checked, waiting out
/// each delay the hub asks for (on the test clock).
async fn fail_times(t: &TestApp, b: &mut Agent<'_>, username: &str, failures: usize) {
    let mut checked = 0;
    while checked < failures {
        let p = try_password(b, username, "wrong-guess-1234").await;
        match p.status {
            StatusCode::UNAUTHORIZED => checked += 1,
            StatusCode::TOO_MANY_REQUESTS => {
                let secs: i64 = retry_after(&p).unwrap().parse().unwrap();
                t.clock.advance_secs(secs);
            }
            other => panic!("{other}: {}", p.body),
        }
    }
}

fn guessing_alerts() -> f64 {
    crate::ops::metrics::render()
        .lines()
        .find(|l| l.starts_with("hms_ach_signin_guessing_alerts_total"))
        .and_then(|l| l.split_whitespace().last())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0.0)
}

store_test!(
    an_attacker_elsewhere_cannot_lock_the_holder_out,
    &[PROXIED],
    |t: TestApp| async move {
        t.account("hold.er").await;
        t.account("neigh.bour").await;
        // Ten wrong passwords for the account from the attacker's address (each
        // delay waited out): twice what used to lock the account for 15 minutes.
        let mut attacker = from(&t, "198.51.100.7");
        fail_times(&t, &mut attacker, "hold.er", 10).await;
        let p = try_password(&mut attacker, "hold.er", "one-more-guess-99").await;
        assert_eq!(
            p.status,
            StatusCode::TOO_MANY_REQUESTS,
            "the attacker is slowed"
        );
        // The holder, from home, signs in at once.
        let mut holder = from(&t, "203.0.113.9");
        let p = try_password(&mut holder, "hold.er", PASSWORD).await;
        assert_eq!(p.status, StatusCode::SEE_OTHER, "{}", p.alert());
        assert!(holder.cookies.contains_key("hms_session"));
        // Another account signs in from the attacker's own address (a shared network):
        // only (account, address) pairs and the address's own budget are slowed.
        let mut colleague = from(&t, "198.51.100.7");
        let p = try_password(&mut colleague, "neigh.bour", PASSWORD).await;
        assert_eq!(p.status, StatusCode::SEE_OTHER, "{}", p.alert());
    }
);

store_test!(
    one_address_is_slowed_with_doubling_delays_alike_for_unknown_names,
    &[PROXIED],
    |t: TestApp| async move {
        t.account("kno.wn").await;
        let mut answers = Vec::new();
        for (username, address) in [("kno.wn", "192.0.2.10"), ("no.body", "192.0.2.11")] {
            let mut b = from(&t, address);
            let mut seen = Vec::new();
            for step in 0..9 {
                // Wait out only every other refusal: each wait is then the one asked.
                let p = try_password(&mut b, username, "wrong-guess-1234").await;
                let after = retry_after(&p);
                seen.push((p.status, after.clone(), p.alert()));
                if step >= 3 && step % 2 == 1 {
                    t.clock.advance_secs(after.unwrap().parse().unwrap());
                }
            }
            answers.push(seen);
        }
        assert_eq!(
            answers[0], answers[1],
            "the same answers for a name that exists and one that does not"
        );
        let statuses: Vec<(u16, Option<&str>)> = answers[0]
            .iter()
            .map(|(s, r, _)| (s.as_u16(), r.as_deref()))
            .collect();
        assert_eq!(
            statuses,
            [
                (401, None),
                (401, None),
                (401, None),
                (429, Some("1")),
                (401, None),
                (429, Some("2")),
                (401, None),
                (429, Some("4")),
                (401, None),
            ],
            "three free failures, then delays that double"
        );
        assert!(
            answers[0][3].2.contains("wait a second"),
            "{}",
            answers[0][3].2
        );
        // The next delay is 8 s after the known name's last failure, 7 of which went
        // by while the unknown name was tried: the right password waits too, then works.
        let mut b = from(&t, "192.0.2.10");
        let p = try_password(&mut b, "kno.wn", PASSWORD).await;
        assert_eq!(p.status, StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(retry_after(&p).as_deref(), Some("1"));
        t.clock.advance_secs(1);
        let p = try_password(&mut b, "kno.wn", PASSWORD).await;
        assert_eq!(p.status, StatusCode::SEE_OTHER, "{}", p.alert());
        // After a success from there, that pair starts afresh.
        let mut b = from(&t, "192.0.2.10");
        for _ in 0..3 {
            let p = try_password(&mut b, "kno.wn", "wrong-again-1234").await;
            assert_eq!(p.status, StatusCode::UNAUTHORIZED);
        }
        // A quiet hour forgets the unknown name's count too.
        t.clock.advance_secs(3601);
        let mut b = from(&t, "192.0.2.11");
        let p = try_password(&mut b, "no.body", "wrong-guess-1234").await;
        assert_eq!(p.status, StatusCode::UNAUTHORIZED);
    }
);

store_test!(
    one_address_guessing_many_accounts_is_slowed,
    &[
        PROXIED,
        ("HMS_ACH__AUTH__THROTTLE__FREE_FAILURES_PER_ADDRESS", "5")
    ],
    |t: TestApp| async move {
        t.account("spr.ay").await;
        let mut sprayer = from(&t, "198.51.100.99");
        for i in 0..5 {
            let p = try_password(&mut sprayer, &format!("user{i}"), "Spring2026!!").await;
            assert_eq!(p.status, StatusCode::UNAUTHORIZED);
        }
        // A sixth account from the same address: a delay, though that pair is new.
        let p = try_password(&mut sprayer, "user5", "Spring2026!!").await;
        assert_eq!(p.status, StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(retry_after(&p).as_deref(), Some("1"));
        // Elsewhere nobody notices.
        let p = try_password(&mut from(&t, "203.0.113.1"), "spr.ay", PASSWORD).await;
        assert_eq!(p.status, StatusCode::SEE_OTHER);
    }
);

store_test!(
    a_spread_out_attack_raises_an_alert_and_loses_its_free_guesses,
    &[
        PROXIED,
        ("HMS_ACH__AUTH__THROTTLE__ACCOUNT_ALERT_FAILURES", "5")
    ],
    |t: TestApp| async move {
        let person = t.account("tar.get").await;
        let before = guessing_alerts();
        // One guess each from five addresses: nobody is delayed…
        for i in 1..=5 {
            let p = try_password(
                &mut from(&t, &format!("192.0.2.{i}")),
                "tar.get",
                "guess-1234-x",
            )
            .await;
            assert_eq!(p.status, StatusCode::UNAUTHORIZED, "address {i}");
            if i < 5 {
                assert!(t.audit_rows("auth.signin.guessing").await.is_empty());
            }
        }
        // …but the fifth failure raised the alert: audit event, metric, warning.
        let rows = t.audit_rows("auth.signin.guessing").await;
        assert_eq!(rows.len(), 1);
        let row = serde_json::to_value(&rows[0]).unwrap();
        assert_eq!(row["targetId"], person.as_str(), "{row}");
        assert_eq!(row["details"]["failures"], 5, "{row}");
        assert!(
            !row.to_string().contains("guess-1234-x"),
            "no password in the log"
        );
        assert!(guessing_alerts() > before, "the Prometheus counter");
        // From now on each address is delayed from its first failure for this account.
        let mut sixth = from(&t, "192.0.2.6");
        let p = try_password(&mut sixth, "tar.get", "guess-1234-y").await;
        assert_eq!(p.status, StatusCode::UNAUTHORIZED);
        let p = try_password(&mut sixth, "tar.get", "guess-1234-z").await;
        assert_eq!(p.status, StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(retry_after(&p).as_deref(), Some("1"));
        // One alert per window, however long the attack goes on.
        try_password(&mut from(&t, "192.0.2.7"), "tar.get", "guess-1234-w").await;
        assert_eq!(t.audit_rows("auth.signin.guessing").await.len(), 1);
        // The holder's first attempt from their own address is never delayed.
        let p = try_password(&mut from(&t, "203.0.113.50"), "tar.get", PASSWORD).await;
        assert_eq!(p.status, StatusCode::SEE_OTHER, "{}", p.alert());
    }
);

store_test!(
    the_district_idp_still_signs_the_holder_in_while_passwords_are_slowed,
    &[
        PROXIED,
        ("HMS_ACH__AUTH__THROTTLE__ACCOUNT_ALERT_FAILURES", "3")
    ],
    |t: TestApp| async move {
        let person = t.account("fed.holder").await;
        let mut b = from(&t, "198.51.100.20");
        fail_times(&t, &mut b, "fed.holder", 6).await;
        let p = try_password(&mut b, "fed.holder", PASSWORD).await;
        assert_eq!(
            p.status,
            StatusCode::TOO_MANY_REQUESTS,
            "passwords are slowed here"
        );
        assert_eq!(t.audit_rows("auth.signin.guessing").await.len(), 1);
        // The same browser, the same address, through the district IdP: signed in.
        // (Passkeys open their session the same way, without any password check.)
        let path = federated_handoff(&t, &person, None).await;
        let p = b.get(&path).await;
        assert_eq!(p.status, StatusCode::SEE_OTHER, "{}", p.body);
        assert!(b.cookies.contains_key("hms_session"));
        assert_eq!(b.get("/portal").await.status, StatusCode::OK);
    }
);

store_test!(
    spelling_variants_share_their_names_counts_and_a_success_restarts_no_delay,
    // The per-minute flood limit raised: this test is about the backoff alone.
    &[
        PROXIED,
        ("HMS_ACH__AUTH__ATTEMPTS_PER_IP_PER_MINUTE", "1000")
    ],
    |t: TestApp| async move {
        t.account("alice.w").await;
        // Three free failures, each under another spelling the lookup reads as the
        // same name (fullwidth, upper case): the fourth is slowed all the same.
        let mut guesser = from(&t, "198.51.100.20");
        for spelling in ["alice.w", "ＡＬＩＣＥ.W", "Alice.ｗ"] {
            let p = try_password(&mut guesser, spelling, "wrong-guess-1234").await;
            assert_eq!(p.status, StatusCode::UNAUTHORIZED, "{spelling}: {}", p.body);
        }
        let p = try_password(&mut guesser, "ａｌｉｃｅ.ｗ", "wrong-guess-1234").await;
        assert_eq!(
            p.status,
            StatusCode::TOO_MANY_REQUESTS,
            "a respelled name is the same name: {}",
            p.body
        );

        // A shared address over its free failures: a colleague's right password
        // there does not restart the address's delay for everyone.
        for i in 0..40 {
            t.account(&format!("pupil.{i}")).await;
        }
        let mut school = from(&t, "203.0.113.50");
        for i in 0..31 {
            fail_times(&t, &mut school, &format!("pupil.{i}"), 1).await;
        }
        let slowed = try_password(&mut school, "pupil.35", PASSWORD).await;
        assert_eq!(slowed.status, StatusCode::TOO_MANY_REQUESTS);
        let wait: i64 = retry_after(&slowed).unwrap().parse().unwrap();
        t.clock.advance_secs(wait);
        let ok = try_password(&mut school, "pupil.36", PASSWORD).await;
        assert!(ok.status.is_redirection(), "{} {}", ok.status, ok.body);
        // Another browser at the same address, right after.
        let mut classmate = from(&t, "203.0.113.50");
        let next = try_password(&mut classmate, "pupil.37", PASSWORD).await;
        assert!(
            next.status.is_redirection(),
            "the success restarted the wait: {} {}",
            next.status,
            retry_after(&next).unwrap_or_default()
        );
    }
);

store_test!(
    the_per_minute_flood_limit_says_how_long_to_wait,
    &[PROXIED, ("HMS_ACH__AUTH__ATTEMPTS_PER_IP_PER_MINUTE", "2")],
    |t: TestApp| async move {
        t.account("flo.od").await;
        let mut b = from(&t, "198.51.100.77");
        for _ in 0..2 {
            let p = try_password(&mut b, "flo.od", "wrong-guess-1234").await;
            assert_eq!(p.status, StatusCode::UNAUTHORIZED, "{}", p.body);
        }
        let p = try_password(&mut b, "flo.od", "wrong-guess-1234").await;
        assert_eq!(p.status, StatusCode::TOO_MANY_REQUESTS, "{}", p.body);
        assert_eq!(retry_after(&p).as_deref(), Some("60"));
        assert!(!p.alert().is_empty(), "the page says why: {}", p.body);
    }
);
