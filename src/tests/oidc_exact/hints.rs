//! `id_token_hint` (OpenID Connect Core §3.1.2.1, RP-Initiated Logout §2): verified,
//! and naming who may continue or be signed out.

use super::*;

store_test!(
    id_token_hint_is_verified_and_names_who_may_continue,
    |t: TestApp| async move {
        let ana = t.account("ana.h").await;
        let bo = t.account("bo.h").await;
        let rp = rp_with(&t, &["openid", "profile"], true).await;
        let mut ana_browser = t.agent();
        let mut bo_browser = t.agent();
        let ana_tokens = tokens_for(&t, &mut ana_browser, &rp, "ana.h").await;
        let bo_tokens = tokens_for(&t, &mut bo_browser, &rp, "bo.h").await;
        let ana_hint = ana_tokens["id_token"].as_str().unwrap().to_string();
        let bo_hint = bo_tokens["id_token"].as_str().unwrap().to_string();

        // Bo's hint in Ana's browser with prompt=none: login_required, no code.
        let page = go(
            &mut ana_browser,
            &authorize_path(
                &rp,
                "openid",
                &format!("&prompt=none&id_token_hint={bo_hint}"),
            ),
        )
        .await;
        let q = query(&page.location());
        assert_eq!(
            q.get("error").map(String::as_str),
            Some("login_required"),
            "{q:?}"
        );
        assert!(!q.contains_key("code"));
        assert_eq!(q["state"], "st-1");

        // Ana's own hint, expired (the ID token lived an hour) but still hers: a code.
        t.clock.advance_secs(3700);
        let page = go(
            &mut ana_browser,
            &authorize_path(
                &rp,
                "openid",
                &format!("&prompt=none&id_token_hint={ana_hint}"),
            ),
        )
        .await;
        let q = query(&page.location());
        let (s, tokens) = exchange(&t, &rp, &q["code"]).await;
        assert_eq!(s, StatusCode::OK, "{tokens}");
        assert_eq!(claims_of(tokens["id_token"].as_str().unwrap())["sub"], ana);

        // Garbage, a forged signature, an access token, a token of another client:
        // invalid_request at the redirect URI.
        let forged = forge(&ana_hint);
        let other_rp = rp_with(&t, &["openid"], true).await;
        let access = ana_tokens["access_token"].as_str().unwrap().to_string();
        for (what, hint, client) in [
            ("garbage", "not.a.token".to_string(), &rp),
            ("forged", forged, &rp),
            ("access token", access, &rp),
            ("another client's", ana_hint.clone(), &other_rp),
        ] {
            let page = go(
                &mut ana_browser,
                &authorize_path(
                    client,
                    "openid",
                    &format!("&prompt=none&id_token_hint={hint}"),
                ),
            )
            .await;
            let q = query(&page.location());
            assert_eq!(
                q.get("error").map(String::as_str),
                Some("invalid_request"),
                "{what}: {q:?}"
            );
            assert!(!q.contains_key("code"), "{what}");
        }

        // Without prompt=none, Bo's hint in Ana's browser asks for a sign-in; whoever
        // signs in then continues (here Bo).
        let page = go(
            &mut ana_browser,
            &authorize_path(&rp, "openid", &format!("&id_token_hint={bo_hint}")),
        )
        .await;
        assert!(
            page.body.contains("action=\"/login\""),
            "expected the sign-in page, got {} {}",
            page.status,
            page.location()
        );
        let page = ana_browser.sign_in(&page, "bo.h", PASSWORD).await;
        let q = query(&page.location());
        let (s, tokens) = exchange(&t, &rp, &q["code"]).await;
        assert_eq!(s, StatusCode::OK, "{tokens}");
        assert_eq!(claims_of(tokens["id_token"].as_str().unwrap())["sub"], bo);

        // `sub` asked for by value in `claims` works as a hint does.
        let claims = urlencode(&format!(r#"{{"id_token":{{"sub":{{"value":"{ana}"}}}}}}"#));
        let page = go(
            &mut ana_browser,
            &authorize_path(&rp, "openid", &format!("&prompt=none&claims={claims}")),
        )
        .await;
        assert_eq!(
            query(&page.location()).get("error").map(String::as_str),
            Some("login_required"),
            "the browser is now Bo's"
        );
    }
);

store_test!(
    logout_refuses_hints_it_cannot_verify_and_asks_for_another_persons,
    |t: TestApp| async move {
        t.account("cy.l").await;
        t.account("di.l").await;
        let rp = rp_with(&t, &["openid", "profile"], true).await;
        let mut cy = t.agent();
        let mut di = t.agent();
        let _cy_tokens = tokens_for(&t, &mut cy, &rp, "cy.l").await;
        let di_tokens = tokens_for(&t, &mut di, &rp, "di.l").await;
        let bye = urlencode("https://rp.example/bye");
        let di_hint = di_tokens["id_token"].as_str().unwrap();

        // A hint that does not verify: refused, nobody signed out, no redirect.
        let forged = forge(di_hint);
        for hint in ["garbage", forged.as_str()] {
            let page = cy
                .get(&format!(
                    "/oauth2/logout?id_token_hint={hint}&post_logout_redirect_uri={bye}"
                ))
                .await;
            assert_eq!(page.status, StatusCode::BAD_REQUEST, "{}", page.body);
            assert!(page.location().is_empty(), "no redirection to the app");
        }
        assert_eq!(
            cy.get("/portal").await.status,
            StatusCode::OK,
            "still signed in"
        );

        // Di's hint in Cy's browser: Cy is asked, not signed out silently.
        let page = cy
            .get(&format!(
                "/oauth2/logout?id_token_hint={di_hint}&post_logout_redirect_uri={bye}"
            ))
            .await;
        assert_eq!(page.status, StatusCode::OK);
        assert!(page.body.contains("name=\"confirm\""), "{}", page.body);
        assert_eq!(
            cy.get("/portal").await.status,
            StatusCode::OK,
            "still signed in"
        );
        assert_eq!(di.get("/portal").await.status, StatusCode::OK);

        // Di's own hint signs Di out and goes back to the app.
        let page = di
            .get(&format!(
                "/oauth2/logout?id_token_hint={di_hint}&post_logout_redirect_uri={bye}"
            ))
            .await;
        assert_eq!(page.location(), "https://rp.example/bye");
        assert_eq!(di.get("/portal").await.location(), "/login");
    }
);
