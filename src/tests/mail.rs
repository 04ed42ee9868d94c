//! Email (issue 16): notices are queued in the transaction of the change they tell
//! about, once per notice; the worker sends each once (also when two race), marks it
//! sent only when the sender accepted it, retries temporary failures later and keeps
//! permanent ones with the server's reply for the admins. Each notice type is queued
//! by the real change. (A real SMTP server: integration-tests/tests/mail.rs.)

use super::browser::PASSWORD;
use super::mfa::base32_decode;
use super::*;
use crate::audit::Origin;
use crate::mail::{self, MemorySender, Notice, QueuedMail, Renderer, SendError, Template};

const BRANDED: &[(&str, &str)] = &[
    ("HMS_ACH__DISTRICT__NAME", "Riverside Unified"),
    ("HMS_ACH__DISTRICT__SUPPORT_EMAIL", "help@riverside.example"),
    ("HMS_ACH__DISTRICT__TIME_ZONE", "America/Chicago"),
    (
        "HMS_ACH__MAIL__FROM",
        "Riverside Accounts <accounts@riverside.example>",
    ),
    ("HMS_ACH__MAIL__ADMIN_DIGEST_TO", "it@riverside.example"),
    ("HMS_ACH__MAIL__RETRY_BASE_SECONDS", "60"),
    ("HMS_ACH__MAIL__MAX_ATTEMPTS", "3"),
];

async fn rows(t: &TestApp) -> Vec<QueuedMail> {
    let filter = mail::MailFilter {
        limit: 1000,
        ..Default::default()
    };
    mail::list(t.store(), &filter).await.unwrap()
}

async fn rows_of(t: &TestApp, template: Template) -> Vec<QueuedMail> {
    rows(t)
        .await
        .into_iter()
        .filter(|r| r.template == template.name())
        .collect()
}

async fn deliver(t: &TestApp, sender: &MemorySender, owner: &str) -> mail::Round {
    let renderer = Renderer::new().unwrap();
    mail::deliver_due(&t.app, &renderer, sender, owner)
        .await
        .unwrap()
}

fn notice(key: &str) -> Notice {
    Notice {
        key: key.into(),
        template: Template::MfaReset,
        recipient: "ana@riverside.example".into(),
        data: serde_json::json!({ "person_name": "Ana", "at": 1_780_000_000_000_i64 }),
    }
}

async fn enqueue(t: &TestApp, n: Notice, commit: bool) -> bool {
    let mut tx = t.store().begin().await.unwrap();
    let queued = mail::enqueue(&mut tx, t.clock.now(), n).await.unwrap();
    if commit {
        tx.commit().await.unwrap();
    } else {
        tx.rollback().await.unwrap();
    }
    queued
}

store_test!(
    a_notice_is_queued_with_its_change_and_only_once,
    BRANDED,
    |t: TestApp| async move {
        // A rolled-back change queues nothing.
        assert!(enqueue(&t, notice("k-1"), false).await);
        assert!(rows(&t).await.is_empty());
        // The same notice twice is queued once.
        assert!(enqueue(&t, notice("k-1"), true).await);
        assert!(!enqueue(&t, notice("k-1"), true).await);
        assert_eq!(rows(&t).await.len(), 1);

        // A real change: the password set for a new account is told, once, to the
        // person's address, keyed by the change's audit event.
        let id = t.account("ana.ruiz").await;
        let told = rows_of(&t, Template::PasswordChanged).await;
        assert_eq!(told.len(), 1, "{told:?}");
        assert_eq!(told[0].recipient, "ana.ruiz@district.example");
        assert_eq!(told[0].state, "pending");
        let seq = t.audit_rows("auth.password.set").await[0].seq;
        assert_eq!(told[0].notice_key, format!("password-changed:{id}:{seq}"));
        assert_eq!(
            told[0].data["by_admin"], true,
            "set by the test, not by Ana"
        );

        // Nobody to tell without an address: the change still happens.
        let input: crate::directory::PersonInput = serde_json::from_value(serde_json::json!({
            "sourcedId": "no-mail", "kinds": ["teacher"], "givenName": "No", "familyName": "Mail",
            "username": "no.mail",
        }))
        .unwrap();
        let origin = Origin::system("test");
        let up = crate::directory::upsert_person(
            t.store(),
            t.app.audit_key(),
            t.clock.now(),
            &origin,
            None,
            input,
        )
        .await
        .unwrap();
        crate::authn::set_password(&t.app, &up.record, PASSWORD, false, &origin)
            .await
            .unwrap();
        assert_eq!(rows_of(&t, Template::PasswordChanged).await.len(), 1);
    }
);

store_test!(
    the_worker_sends_once_with_headers_both_parts_and_the_link,
    BRANDED,
    |t: TestApp| async move {
        t.account("ana.ruiz").await;
        let sender = MemorySender::new();
        let round = deliver(&t, &sender, "w1").await;
        assert_eq!(round.sent, 1);
        assert_eq!(
            deliver(&t, &sender, "w1").await,
            mail::Round::default(),
            "nothing twice"
        );
        let sent = sender.sent();
        assert_eq!(sent.len(), 1);
        let row = &rows(&t).await[0];
        assert_eq!(row.state, "sent");
        assert_eq!(row.attempts, 1);
        assert_eq!(row.sent_at, Some(t.clock.now()));
        let raw = &sent[0].raw;
        assert!(
            raw.contains("From: \"Riverside Accounts\" <accounts@riverside.example>"),
            "{raw}"
        );
        assert!(raw.contains("To: ana.ruiz@district.example"), "{raw}");
        assert!(raw.contains("Reply-To: help@riverside.example"), "{raw}");
        assert!(
            raw.contains("Subject: Your Riverside Unified password was changed"),
            "{raw}"
        );
        let mid = mail::message_id(
            &row.notice_key,
            &"accounts@riverside.example".parse().unwrap(),
        );
        assert_eq!(sent[0].message_id, mid);
        assert!(raw.contains(&format!("Message-ID: {mid}")), "{raw}");
        assert!(raw.contains("Date: "), "{raw}");
        assert!(raw.contains("multipart/alternative"), "{raw}");
        assert!(
            raw.contains("text/plain; charset=utf-8") && raw.contains("text/html; charset=utf-8"),
            "{raw}"
        );

        // Both parts say who, what, when (Chicago time) and where to look.
        let r = Renderer::new().unwrap();
        let rendered = r
            .render(t.app.config(), Template::PasswordChanged, &row.data)
            .unwrap();
        for part in [&rendered.html, &rendered.text] {
            assert!(part.contains("Riverside Unified"), "{part}");
            assert!(part.contains("http://hub.test/portal/security"), "{part}");
            assert!(part.contains("Hello Tess,"), "{part}");
            assert!(
                part.contains("An administrator set a new password"),
                "{part}"
            );
            assert!(part.contains("CST") || part.contains("CDT"), "{part}");
        }
        assert!(rendered
            .html
            .contains("href=\"http://hub.test/portal/security\""));
    }
);

store_test!(
    temporary_failures_retry_later_and_permanent_ones_keep_the_reply,
    BRANDED,
    |t: TestApp| async move {
        t.account("ana.ruiz").await;
        let sender = MemorySender::new();
        sender.fail_next(SendError::Temporary(
            "transient error (421): 4.3.2 try later".into(),
        ));
        let round = deliver(&t, &sender, "w1").await;
        assert_eq!(round.retried, 1);
        let row = rows(&t).await.remove(0);
        assert_eq!((row.state.as_str(), row.attempts), ("pending", 1));
        assert_eq!(
            row.last_error.as_deref(),
            Some("transient error (421): 4.3.2 try later")
        );
        // Backoff: the first retry waits between half and all of retry_base (60 s).
        let wait = row.next_attempt_at.as_millis() - t.clock.now_ms();
        assert!((30_000..=60_000).contains(&wait), "{wait}");
        assert_eq!(deliver(&t, &sender, "w1").await.sent, 0, "not due yet");
        t.clock.advance_secs(61);
        assert_eq!(deliver(&t, &sender, "w1").await.sent, 1);
        assert_eq!(rows(&t).await[0].state, "sent");
        assert_eq!(sender.sent().len(), 1);

        // A permanent failure ends it, with the server's words, for the admins.
        t.account("bo.bad").await;
        sender.fail_next(SendError::Permanent(
            "permanent error (550): 5.1.1 no such user".into(),
        ));
        assert_eq!(deliver(&t, &sender, "w1").await.failed, 1);
        t.clock.advance_secs(7200);
        assert_eq!(
            deliver(&t, &sender, "w1").await,
            mail::Round::default(),
            "never again"
        );
        let failed: Vec<_> = rows(&t)
            .await
            .into_iter()
            .filter(|r| r.state == "failed")
            .collect();
        assert_eq!(failed.len(), 1);
        assert_eq!(failed[0].recipient, "bo.bad@district.example");

        // Temporary failures past max_attempts (3) give up too.
        t.account("cy.flaky").await;
        for _ in 0..3 {
            sender.fail_next(SendError::Temporary(
                "network error: connection refused".into(),
            ));
            deliver(&t, &sender, "w1").await;
            t.clock.advance_secs(3600);
        }
        let flaky = rows(&t)
            .await
            .into_iter()
            .find(|r| r.recipient.starts_with("cy."))
            .unwrap();
        assert_eq!((flaky.state.as_str(), flaky.attempts), ("failed", 3));

        // Admins see the failures (never a message body), auditors too; others not.
        let admin = t.admin_token().await;
        let (s, _, page) = t
            .call(Method::GET, "/api/v1/mail?state=failed", Some(&admin), None)
            .await;
        assert_eq!(s, StatusCode::OK, "{page}");
        let items = page["items"].as_array().unwrap();
        assert_eq!(items.len(), 2, "{page}");
        assert_eq!(
            items[0]["lastError"],
            "permanent error (550): 5.1.1 no such user"
        );
        assert_eq!(items[0]["template"], "password-changed");
        assert!(
            items[0].get("data").is_none() && !page.to_string().contains("administrator"),
            "{page}"
        );
        let (s, _, page) = t
            .call(Method::GET, "/api/v1/mail?limit=1", Some(&admin), None)
            .await;
        assert_eq!(s, StatusCode::OK);
        let next = page["nextCursor"].as_str().unwrap().to_string();
        let (_, _, second) = t
            .call(
                Method::GET,
                &format!("/api/v1/mail?limit=1&cursor={next}"),
                Some(&admin),
                None,
            )
            .await;
        assert_ne!(second["items"][0]["id"], page["items"][0]["id"]);
        let (s, _, _) = t
            .call(Method::GET, "/api/v1/mail?state=lost", Some(&admin), None)
            .await;
        assert_eq!(s, StatusCode::BAD_REQUEST);
        let auditor = t.token(Some("auditor"), None, &["audit.read"]).await;
        let (s, _, _) = t
            .call(Method::GET, "/api/v1/mail", Some(&auditor), None)
            .await;
        assert_eq!(s, StatusCode::OK);
        let registrar = t.token(Some("registrar"), None, &["users.read"]).await;
        let (s, _, _) = t
            .call(Method::GET, "/api/v1/mail", Some(&registrar), None)
            .await;
        assert_eq!(s, StatusCode::FORBIDDEN);

        // The daily digest lists both failures, once per day however often it runs.
        assert_eq!(
            mail::send_daily_digest(&t.app, t.clock.now())
                .await
                .unwrap(),
            1
        );
        assert_eq!(
            mail::send_daily_digest(&t.app, t.clock.now())
                .await
                .unwrap(),
            0
        );
        let digest = rows_of(&t, Template::AdminDigest).await;
        assert_eq!(digest.len(), 1);
        assert_eq!(digest[0].recipient, "it@riverside.example");
        assert_eq!(digest[0].data["failed_count"], 2);
        deliver(&t, &sender, "w1").await;
        let last = sender.sent().pop().unwrap();
        assert_eq!(last.recipient, "it@riverside.example");
        let out = Renderer::new()
            .unwrap()
            .render(t.app.config(), Template::AdminDigest, &digest[0].data)
            .unwrap();
        for part in [&out.text, &out.html] {
            assert!(part.contains("5.1.1 no such user"), "{part}");
            assert!(part.contains("bo.bad@district.example"), "{part}");
        }
    }
);

store_test!(
    two_workers_racing_send_each_message_once,
    BRANDED,
    |t: TestApp| async move {
        for i in 0..30 {
            assert!(enqueue(&t, notice(&format!("race-{i}")), true).await);
        }
        let sender = MemorySender::new();
        let (a, b) = tokio::join!(deliver(&t, &sender, "wa"), deliver(&t, &sender, "wb"));
        let (a2, b2) = tokio::join!(deliver(&t, &sender, "wa"), deliver(&t, &sender, "wb"));
        assert_eq!(
            a.sent + b.sent + a2.sent + b2.sent,
            30,
            "{a:?} {b:?} {a2:?} {b2:?}"
        );
        let mut ids: Vec<String> = sender.sent().into_iter().map(|c| c.message_id).collect();
        assert_eq!(ids.len(), 30);
        ids.sort();
        ids.dedup();
        assert_eq!(ids.len(), 30, "each message sent once");
        assert!(rows(&t)
            .await
            .iter()
            .all(|r| r.state == "sent" && r.attempts == 1));
    }
);

store_test!(
    a_worker_that_died_holding_a_lease_is_taken_over_after_it,
    BRANDED,
    |t: TestApp| async move {
        assert!(enqueue(&t, notice("lease-1"), true).await);
        // A worker claims the row and dies before sending: its lease keeps others off
        // until it runs out, then another worker sends it.
        let dead = MemorySender::new();
        dead.fail_next(SendError::Temporary("never recorded".into()));
        sqlx::query("UPDATE mail_outbox SET lease_owner = 'dead', lease_until = $1")
            .bind(t.clock.now().plus_secs(40))
            .execute(t.store().writer())
            .await
            .unwrap();
        let alive = MemorySender::new();
        assert_eq!(deliver(&t, &alive, "alive").await.sent, 0);
        t.clock.advance_secs(41);
        assert_eq!(deliver(&t, &alive, "alive").await.sent, 1);
        assert_eq!(rows(&t).await[0].state, "sent");
    }
);

/// A TOTP set up for `person` through the real set-up and confirmation.
async fn set_up_totp(t: &TestApp, person: &str) -> Vec<u8> {
    let enrollment = crate::authn::totp::start_enrollment(&t.app, person, "x")
        .await
        .unwrap();
    let secret = base32_decode(&enrollment.secret_base32);
    let step = t.clock.now_ms().div_euclid(30_000);
    let code = format!("{:06}", crate::authn::totp::hotp(&secret, step as u64));
    let origin = Origin::system("test");
    assert!(
        crate::authn::totp::confirm_enrollment(&t.app, person, &code, &origin)
            .await
            .unwrap()
    );
    secret
}

store_test!(
    each_security_change_queues_its_notice,
    &[
        ("HMS_ACH__SERVER__TRUST_FORWARDED_FOR", "true"),
        ("HMS_ACH__AUTH__THROTTLE__ACCOUNT_ALERT_FAILURES", "3")
    ],
    |t: TestApp| async move {
        let id = t.account("ana.ruiz").await;
        let person = crate::directory::get_person(t.store(), &id).await.unwrap();
        let origin = Origin {
            actor_kind: "person",
            actor_id: id.clone(),
            meta: crate::api::RequestMeta {
                request_id: None,
                source_ip: Some("198.51.100.23".into()),
            },
        };
        // The person changes their own password.
        crate::authn::change_password(&t.app, &person, PASSWORD, "a new long passphrase", &origin)
            .await
            .unwrap();
        let pw = rows_of(&t, Template::PasswordChanged).await;
        assert_eq!(pw.len(), 2, "set by the test, then changed by Ana");
        assert_eq!(pw[1].data["by_admin"], false);
        assert_eq!(pw[1].data["where"], "198.51.100.23");

        // An authenticator app added, then removed.
        set_up_totp(&t, &id).await;
        let added = rows_of(&t, Template::FactorAdded).await;
        assert_eq!(added.len(), 1);
        assert_eq!(added[0].data["factor"], "authenticator app");
        crate::authn::factors::remove_totp(&t.app, &origin, &id, None)
            .await
            .unwrap();
        assert_eq!(rows_of(&t, Template::FactorRemoved).await.len(), 1);

        // Recovery codes issued, then one used to sign in.
        set_up_totp(&t, &id).await;
        let codes = crate::authn::factors::issue_recovery_codes(&t.app, &origin, &id)
            .await
            .unwrap();
        assert_eq!(rows_of(&t, Template::RecoveryCodesIssued).await.len(), 1);
        let mut b = t.agent();
        let login = b.get("/login").await;
        let mfa = b.sign_in(&login, "ana.ruiz", "a new long passphrase").await;
        let r = b
            .post(
                "/login/mfa/code",
                &[
                    ("csrf", &mfa.hidden("csrf")),
                    ("kind", "recovery"),
                    ("code", &codes[0]),
                ],
            )
            .await;
        assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.body);
        let used = rows_of(&t, Template::RecoveryCodeUsed).await;
        assert_eq!(used.len(), 1, "{used:?}");
        assert_eq!(used[0].data["codes_left"], 9);

        // The help desk resets every factor.
        crate::authn::factors::reset(&t.app, &id, &Origin::system("help desk"))
            .await
            .unwrap();
        assert_eq!(rows_of(&t, Template::MfaReset).await.len(), 1);

        // Password guessing from several addresses: told once per alert.
        for i in 1..=4 {
            let guess = Origin {
                actor_kind: "anonymous",
                actor_id: String::new(),
                meta: crate::api::RequestMeta {
                    request_id: None,
                    source_ip: Some(format!("192.0.2.{i}")),
                },
            };
            let _ = crate::authn::sign_in(&t.app, "ana.ruiz", "wrong-guess-123", &guess).await;
        }
        let locked = rows_of(&t, Template::AccountLocked).await;
        assert_eq!(locked.len(), 1, "{locked:?}");
        assert_eq!(locked[0].data["reason"], "guessing");

        // Wrong current passwords on the change-password page lock it: told once.
        let person = crate::directory::get_person(t.store(), &id).await.unwrap();
        for _ in 0..7 {
            let _ = crate::authn::change_password(
                &t.app,
                &person,
                "not it at all",
                "whatever long one",
                &origin,
            )
            .await;
        }
        let locked = rows_of(&t, Template::AccountLocked).await;
        assert_eq!(locked.len(), 2, "{locked:?}");
        assert_eq!(locked[1].data["reason"], "codes");

        // Every one of them renders, and all went to Ana.
        let sender = MemorySender::new();
        let round = deliver(&t, &sender, "w").await;
        assert_eq!(round.failed, 0, "{round:?}");
        assert!(sender
            .sent()
            .iter()
            .all(|m| m.recipient == "ana.ruiz@district.example"));
        assert_eq!(sender.sent().len(), rows(&t).await.len());
    }
);
