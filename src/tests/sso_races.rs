//! Races, bursts and directory changes around sign-in and tokens: concurrent uses of
//! one refresh token (rotations are committed in groups), concurrent introspections
//! (liveness is checked in groups), sign-in bursts to one name, and a person
//! suspended while holding tokens.

use super::sso::{exchange, introspect, refresh, userinfo_status};
use super::*;

store_test!(
    concurrent_uses_of_one_refresh_token_are_a_reuse,
    |t: TestApp| async move {
        // Rotations are committed in groups (oidc::refresh_writer); two requests
        // with the same token in flight together must not both get a successor.
        t.account("r.c").await;
        let rp = t.rp(false, false).await;
        let mut b = t.agent();
        let q = b.authorize(&rp, "", "r.c").await;
        let (s, tokens) = exchange(&t, &rp, &q["code"]).await;
        assert_eq!(s, StatusCode::OK, "{tokens}");
        let r1 = tokens["refresh_token"].as_str().unwrap().to_string();
        let results = futures_util::future::join_all((0..6).map(|_| refresh(&t, &rp, &r1))).await;
        let won: Vec<&Value> = results
            .iter()
            .filter(|(s, _)| *s == StatusCode::OK)
            .map(|(_, b)| b)
            .collect();
        assert_eq!(won.len(), 1, "exactly one rotation wins: {results:?}");
        assert!(results
            .iter()
            .filter(|(s, _)| *s != StatusCode::OK)
            .all(|(s, b)| *s == StatusCode::BAD_REQUEST && b["error"] == "invalid_grant"));
        // The losers were reuses: the family is revoked, the winner's tokens too.
        let (s, _) = refresh(&t, &rp, won[0]["refresh_token"].as_str().unwrap()).await;
        assert_eq!(s, StatusCode::BAD_REQUEST);
        assert_eq!(
            introspect(&t, &rp, won[0]["access_token"].as_str().unwrap()).await["active"],
            false
        );
        // Concurrent introspections of live and revoked tokens (one liveness query
        // answers many) each get their own answer.
        let q = b.authorize(&rp, "", "r.c").await;
        let (_, live) = exchange(&t, &rp, &q["code"]).await;
        let live_at = live["access_token"].as_str().unwrap().to_string();
        let dead_at = won[0]["access_token"].as_str().unwrap().to_string();
        let (t, rp) = (&t, &rp);
        let answers = futures_util::future::join_all((0..8).map(|i| {
            let token = if i % 2 == 0 {
                live_at.clone()
            } else {
                dead_at.clone()
            };
            async move { (i, introspect(t, rp, &token).await) }
        }))
        .await;
        for (i, a) in answers {
            assert_eq!(a["active"], i % 2 == 0, "{i}: {a}");
        }
    }
);

store_test!(
    a_suspended_person_gets_no_more_tokens,
    |t: TestApp| async move {
        let person = t.account("s.p").await;
        let rp = t.rp(false, false).await;
        let mut b = t.agent();
        let q = b.authorize(&rp, "", "s.p").await;
        let (s, tokens) = exchange(&t, &rp, &q["code"]).await;
        assert_eq!(s, StatusCode::OK, "{tokens}");
        crate::directory::transition_person(
            t.store(),
            t.app.audit_key(),
            t.clock.now(),
            &crate::audit::Origin::system("test"),
            &person,
            "suspended",
            Some("test".into()),
            None,
        )
        .await
        .unwrap();
        // The refresh reads the person with the token (one statement): refused.
        let (s, e) = refresh(&t, &rp, tokens["refresh_token"].as_str().unwrap()).await;
        assert_eq!(
            (s, e["error"].as_str(), e["error_description"].as_str()),
            (
                StatusCode::BAD_REQUEST,
                Some("invalid_grant"),
                Some("the account is no longer active")
            )
        );
        let s = userinfo_status(&t, tokens["access_token"].as_str().unwrap()).await;
        assert_eq!(s, StatusCode::UNAUTHORIZED);
    }
);

store_test!(
    sign_in_bursts_are_bounded_but_do_not_lock_out,
    |t: TestApp| async move {
        use crate::authn::AuthnError;
        let origin = crate::audit::Origin::system("test");
        // Eight correct sign-ins to one (shared) account at once from one address: a
        // few are checked, the rest are told to wait, and nobody is locked out.
        t.account("sha.red").await;
        let burst = (0..8)
            .map(|_| crate::authn::sign_in(&t.app, "sha.red", super::browser::PASSWORD, &origin));
        let results = futures_util::future::join_all(burst).await;
        let ok = results.iter().filter(|r| r.is_ok()).count();
        assert!(ok >= 1, "{results:?}");
        assert!(
            results
                .iter()
                .all(|r| matches!(r, Ok(_) | Err(AuthnError::Slowed { .. }))),
            "{results:?}"
        );
        crate::authn::sign_in(&t.app, "sha.red", super::browser::PASSWORD, &origin)
            .await
            .expect("a burst of correct sign-ins must not lock the account");
        // Twenty wrong guesses at once: no more than the three free ones are checked,
        // and this address then waits, for the right password too (never a lockout).
        t.account("gue.ss").await;
        let burst =
            (0..20).map(|_| crate::authn::sign_in(&t.app, "gue.ss", "wrong-guess-123", &origin));
        let results = futures_util::future::join_all(burst).await;
        let checked = results
            .iter()
            .filter(|r| matches!(r, Err(AuthnError::InvalidCredentials)))
            .count();
        assert!(
            (1..=3).contains(&checked),
            "{checked} guesses checked: {results:?}"
        );
        assert!(results.iter().all(|r| matches!(
            r,
            Err(AuthnError::InvalidCredentials | AuthnError::Slowed { .. })
        )));
        let Err(AuthnError::Slowed { seconds }) =
            crate::authn::sign_in(&t.app, "gue.ss", super::browser::PASSWORD, &origin).await
        else {
            panic!("the right password waits too");
        };
        t.clock.advance_secs(seconds);
        crate::authn::sign_in(&t.app, "gue.ss", super::browser::PASSWORD, &origin)
            .await
            .expect("after the delay the right password works");
    }
);
