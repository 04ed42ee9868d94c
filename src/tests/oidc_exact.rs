//! The OpenID Connect details certified clients expect (issue 14, defects 3 and 5):
//! `id_token_hint` checked at authorization and logout, scopes dropped rather than
//! fatal, the `claims` parameter, UserInfo with a form body and a bare challenge,
//! `request_uri` not from PAR, `error_description` characters, the registered client
//! authentication method enforced, no secret for `private_key_jwt` clients, phone
//! and address claims. On both databases.

use super::browser::{query, urlencode, Agent, Rp, CHALLENGE, PASSWORD, REDIRECT};
use super::sso::exchange;
use super::*;
use crate::clock::Clock;

/// A confidential relying party (client_secret_basic) registered for `scopes`.
async fn rp_with(t: &TestApp, scopes: &[&str], first_party: bool) -> Rp {
    let new = crate::oidc::NewClient {
        name: "Exact RP".into(),
        grants: vec!["authorization_code".into(), "refresh_token".into()],
        scopes: scopes.iter().map(|s| s.to_string()).collect(),
        role: None,
        org: None,
        access_token_ttl_seconds: None,
        settings: crate::oidc::ClientSettings {
            redirect_uris: vec![REDIRECT.into()],
            post_logout_redirect_uris: vec!["https://rp.example/bye".into()],
            first_party,
            ..Default::default()
        },
    };
    let (c, secret) = crate::oidc::create_client(
        t.store(),
        t.app.master_key(),
        t.clock.now_ms(),
        &crate::audit::Origin::system("test"),
        new,
    )
    .await
    .unwrap();
    Rp { id: c.id, secret }
}

fn authorize_path(rp: &Rp, scope: &str, extra: &str) -> String {
    format!("/oauth2/authorize?response_type=code&client_id={}&redirect_uri={}&scope={}&state=st-1&nonce=n-1&code_challenge={CHALLENGE}&code_challenge_method=S256{extra}", rp.id, urlencode(REDIRECT), urlencode(scope))
}

/// Where the browser ends up: a page of the hub, or the query sent to the client.
async fn go(b: &mut Agent<'_>, path: &str) -> super::browser::Page {
    let first = b.get(path).await;
    b.follow(first).await
}

fn claims_of(jwt: &str) -> Value {
    use base64::Engine;
    let payload = jwt.split('.').nth(1).unwrap();
    serde_json::from_slice(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(payload)
            .unwrap(),
    )
    .unwrap()
}

/// The token with one character of its signature changed (not the last, whose low
/// bits may be padding).
fn forge(token: &str) -> String {
    let mut chars: Vec<char> = token.chars().collect();
    let i = chars.len() - 10;
    chars[i] = if chars[i] == 'A' { 'B' } else { 'A' };
    chars.into_iter().collect()
}

/// Signs `username` in through the app and returns the token response.
async fn tokens_for(t: &TestApp, b: &mut Agent<'_>, rp: &Rp, username: &str) -> Value {
    let q = b.authorize_scoped(rp, "openid profile", "", username).await;
    let (s, tokens) = exchange(t, rp, &q["code"]).await;
    assert_eq!(s, StatusCode::OK, "{tokens}");
    tokens
}

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

store_test!(
    unknown_and_unregistered_scopes_are_dropped_not_fatal,
    |t: TestApp| async move {
        t.account("ed.s").await;
        let rp = rp_with(&t, &["openid", "profile"], true).await;
        let mut b = t.agent();
        let q = b
            .authorize_scoped(&rp, "openid email profile users.write made-up", "", "ed.s")
            .await;
        assert!(q.contains_key("code"), "{q:?}");
        let (s, tokens) = exchange(&t, &rp, &q["code"]).await;
        assert_eq!(s, StatusCode::OK, "{tokens}");
        assert_eq!(
            tokens["scope"], "openid profile",
            "RFC 6749 §3.3: what was granted"
        );
        let id = claims_of(tokens["id_token"].as_str().unwrap());
        assert!(id.get("email").is_none() && id["given_name"] == "Tess");
        // openid is never dropped silently: a client without it is refused.
        let plain = rp_with(&t, &["profile"], true).await;
        let page = go(&mut b, &authorize_path(&plain, "openid profile", "")).await;
        assert_eq!(
            query(&page.location()).get("error").map(String::as_str),
            Some("invalid_scope")
        );
        // Nothing the client may have: invalid_scope.
        let page = go(&mut b, &authorize_path(&rp, "users.write", "")).await;
        assert_eq!(
            query(&page.location()).get("error").map(String::as_str),
            Some("invalid_scope")
        );
    }
);

/// A person with a phone number and an address, set through the API.
async fn person_with_contact(t: &TestApp, username: &str) -> String {
    let id = t.account(username).await;
    let admin = t.admin_token().await;
    let (s, _, bad) = t
        .call(
            Method::PATCH,
            &format!("/api/v1/users/{id}"),
            Some(&admin),
            Some(serde_json::json!({"phoneNumber": "call me"})),
        )
        .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{bad}");
    assert!(bad.to_string().contains("phoneNumber"), "{bad}");
    let (s, _, p) = t
        .call(
            Method::PATCH,
            &format!("/api/v1/users/{id}"),
            Some(&admin),
            Some(serde_json::json!({
                "phoneNumber": "+1 (312) 555-0123", "phoneNumberVerified": true,
                "address": {"streetAddress": "1 School St", "locality": "Riverside", "region": "IL",
                            "postalCode": "60546", "country": "US"}
            })),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{p}");
    assert_eq!(p["phoneNumber"], "+13125550123");
    assert_eq!(p["address"]["postalCode"], "60546");
    let (_, _, again) = t
        .call(
            Method::GET,
            &format!("/api/v1/users/{id}"),
            Some(&admin),
            None,
        )
        .await;
    assert_eq!(again["phoneNumberVerified"], true);
    id
}

store_test!(
    phone_and_address_claims_are_released_for_their_scopes,
    |t: TestApp| async move {
        person_with_contact(&t, "fay.p").await;
        let rp = rp_with(&t, &["openid", "phone", "address"], true).await;
        let mut b = t.agent();
        let q = b
            .authorize_scoped(&rp, "openid phone address", "", "fay.p")
            .await;
        let (s, tokens) = exchange(&t, &rp, &q["code"]).await;
        assert_eq!(s, StatusCode::OK, "{tokens}");
        let id = claims_of(tokens["id_token"].as_str().unwrap());
        assert_eq!(id["phone_number"], "+13125550123");
        assert_eq!(id["phone_number_verified"], true);
        assert_eq!(id["address"]["locality"], "Riverside");
        assert_eq!(
            id["address"]["formatted"],
            "1 School St\nRiverside IL 60546\nUS"
        );
        let at = tokens["access_token"].as_str().unwrap();
        let (s, _, info) = t
            .call(Method::GET, "/oauth2/userinfo", Some(at), None)
            .await;
        assert_eq!(s, StatusCode::OK, "{info}");
        assert_eq!(info["phone_number"], "+13125550123");
        assert_eq!(info["address"]["country"], "US");
        // Only openid: neither.
        let q = b.authorize_scoped(&rp, "openid", "", "fay.p").await;
        let (_, tokens) = exchange(&t, &rp, &q["code"]).await;
        let id = claims_of(tokens["id_token"].as_str().unwrap());
        assert!(id.get("phone_number").is_none() && id.get("address").is_none());
        // Discovery says so.
        let (_, _, d) = t
            .call(Method::GET, "/.well-known/openid-configuration", None, None)
            .await;
        for scope in ["phone", "address"] {
            assert!(d["scopes_supported"]
                .as_array()
                .unwrap()
                .iter()
                .any(|s| s == scope));
        }
        for claim in ["phone_number", "phone_number_verified", "address"] {
            assert!(d["claims_supported"]
                .as_array()
                .unwrap()
                .iter()
                .any(|s| s == claim));
        }
    }
);

store_test!(
    claims_parameter_releases_the_claims_named_where_asked,
    |t: TestApp| async move {
        person_with_contact(&t, "gus.c").await;
        // Not first-party: the consent page must cover the claims' scopes.
        let rp = rp_with(&t, &["openid", "profile", "email", "phone"], false).await;
        let mut b = t.agent();
        let claims = concat!(
            r#"{"id_token":{"email":{"essential":true},"address":null},"#,
            r#""userinfo":{"phone_number":null,"given_name":{"essential":true}}}"#
        );
        let path = authorize_path(&rp, "openid", &format!("&claims={}", urlencode(claims)));
        let mut page = go(&mut b, &path).await;
        page = b.sign_in(&page, "gus.c", PASSWORD).await;
        assert!(page.body.contains("action=\"/consent\""), "{}", page.body);
        for what in ["email address", "phone number", "name and username"] {
            assert!(
                page.body.contains(what),
                "the consent page names {what}: {}",
                page.body
            );
        }
        let page = b.consent(&page, "allow").await;
        let q = query(&page.location());
        let (s, tokens) = exchange(&t, &rp, &q["code"]).await;
        assert_eq!(s, StatusCode::OK, "{tokens}");
        assert_eq!(tokens["scope"], "openid");
        let id = claims_of(tokens["id_token"].as_str().unwrap());
        assert_eq!(id["email"], "gus.c@district.example");
        assert!(id.get("email_verified").is_none(), "only the claims named");
        assert!(
            id.get("address").is_none(),
            "address: the client is not registered for it"
        );
        assert!(id.get("given_name").is_none() && id.get("phone_number").is_none());
        let at = tokens["access_token"].as_str().unwrap();
        let (_, _, info) = t
            .call(Method::GET, "/oauth2/userinfo", Some(at), None)
            .await;
        assert_eq!(info["phone_number"], "+13125550123");
        assert_eq!(info["given_name"], "Tess");
        assert!(
            info.get("family_name").is_none() && info.get("email").is_none(),
            "{info}"
        );
        // After a refresh, UserInfo still honours the request (kept with the grant).
        let (s, _, refreshed) = t
            .form(
                "/oauth2/token",
                &format!(
                    "grant_type=refresh_token&refresh_token={}",
                    tokens["refresh_token"].as_str().unwrap()
                ),
                Some(&rp.basic()),
            )
            .await;
        assert_eq!(s, StatusCode::OK, "{refreshed}");
        let at = refreshed["access_token"].as_str().unwrap();
        let (_, _, info) = t
            .call(Method::GET, "/oauth2/userinfo", Some(at), None)
            .await;
        assert_eq!(info["phone_number"], "+13125550123");
        assert_eq!(
            claims_of(refreshed["id_token"].as_str().unwrap())["email"],
            "gus.c@district.example"
        );
        // A malformed claims parameter: invalid_request at the redirect URI.
        let page = go(
            &mut b,
            &authorize_path(&rp, "openid", "&claims=%7B%22id_token%22%3A5%7D"),
        )
        .await;
        assert_eq!(
            query(&page.location()).get("error").map(String::as_str),
            Some("invalid_request")
        );
        let (_, _, d) = t
            .call(Method::GET, "/.well-known/openid-configuration", None, None)
            .await;
        assert_eq!(d["claims_parameter_supported"], true);
    }
);

store_test!(
    userinfo_takes_a_form_body_and_challenges_without_a_token,
    |t: TestApp| async move {
        let person = t.account("hal.u").await;
        let rp = rp_with(&t, &["openid", "profile"], true).await;
        let mut b = t.agent();
        let tokens = tokens_for(&t, &mut b, &rp, "hal.u").await;
        let at = tokens["access_token"].as_str().unwrap();
        // RFC 6750 §2.2: the token in a form-encoded POST body.
        let (s, _, info) = t
            .form("/oauth2/userinfo", &format!("access_token={at}"), None)
            .await;
        assert_eq!(s, StatusCode::OK, "{info}");
        assert_eq!(info["sub"], person);
        // Both ways at once: invalid_request.
        let (s, _, e) = t
            .form(
                "/oauth2/userinfo",
                &format!("access_token={at}"),
                Some(&format!("Bearer {at}")),
            )
            .await;
        assert_eq!(
            (s, e["error"].as_str()),
            (StatusCode::BAD_REQUEST, Some("invalid_request"))
        );
        // RFC 6750 §3.1: no token at all: 401 and a challenge without an error code.
        for method in [Method::GET, Method::POST] {
            let (s, h, _) = t.call(method.clone(), "/oauth2/userinfo", None, None).await;
            assert_eq!(s, StatusCode::UNAUTHORIZED, "{method}");
            let challenge = h[header::WWW_AUTHENTICATE].to_str().unwrap();
            assert!(challenge.starts_with("Bearer"), "{challenge}");
            assert!(!challenge.contains("error"), "{challenge}");
        }
        // A bad token still names the error.
        let (s, h, _) = t
            .call(Method::GET, "/oauth2/userinfo", Some("nope"), None)
            .await;
        assert_eq!(s, StatusCode::UNAUTHORIZED);
        assert!(h[header::WWW_AUTHENTICATE]
            .to_str()
            .unwrap()
            .contains("error=\"invalid_token\""));
    }
);

store_test!(
    a_request_uri_not_from_par_is_answered_at_the_redirect_uri,
    |t: TestApp| async move {
        let rp = rp_with(&t, &["openid"], true).await;
        let mut b = t.agent();
        let extra = format!(
            "&request_uri={}",
            urlencode("https://rp.example/request.jwt")
        );
        let page = b.get(&authorize_path(&rp, "openid", &extra)).await;
        let q = query(&page.location());
        assert!(page.location().starts_with(REDIRECT), "{}", page.body);
        assert_eq!(q["error"], "request_uri_not_supported");
        assert_eq!(q["state"], "st-1");
        // With only client_id and the request_uri (a Request Object holding the
        // rest), the redirect URI is unknown: the person is told.
        let page = b
            .get(&format!(
                "/oauth2/authorize?client_id={}&request_uri=https%3A%2F%2Frp.example%2Fr",
                rp.id
            ))
            .await;
        assert_eq!(page.status, StatusCode::BAD_REQUEST);
    }
);

store_test!(
    every_error_description_uses_rfc6749_characters,
    |t: TestApp| async move {
        let rp = rp_with(&t, &["openid"], true).await;
        let (id, secret) = t.client(None, None, &["users.read"]).await;
        let mut descriptions: Vec<(String, String)> = Vec::new();
        // Token, introspection, revocation and PAR errors (JSON bodies).
        let json_cases: Vec<(&str, String, Option<String>)> = vec![
            ("/oauth2/token", format!("grant_type=%22x%5Cy%22&client_id={id}&client_secret={secret}"), None),
            ("/oauth2/token", format!("grant_type=client_credentials&scope=a%22b&client_id={id}&client_secret={secret}"), None),
            ("/oauth2/token", "grant_type=authorization_code&code=x&redirect_uri=y&code_verifier=short".into(), None),
            ("/oauth2/token", "grant_type=client_credentials&grant_type=x".into(), None),
            ("/oauth2/introspect", String::new(), None),
            ("/oauth2/revoke", format!("token=x&token_type_hint=%C2%A7&client_id={id}&client_secret={secret}"), None),
            ("/oauth2/par", format!("client_id={id}&client_secret={secret}&request_uri=x"), None),
        ];
        for (path, body, auth) in json_cases {
            let (_, _, b) = t.form(path, &body, auth.as_deref()).await;
            descriptions.push((
                format!("{path} {body}"),
                b["error_description"]
                    .as_str()
                    .unwrap_or_default()
                    .to_string(),
            ));
        }
        // The wrong content type: the description cites "RFC 6749 §3.2".
        let req = Request::builder()
            .method(Method::POST)
            .uri("/oauth2/token")
            .header(header::CONTENT_TYPE, "application/json")
            .body(Body::from("{}"))
            .unwrap();
        let (_, _, b) = t.send(req).await;
        descriptions.push((
            "token as JSON".into(),
            b["error_description"].as_str().unwrap().to_string(),
        ));
        // Authorization errors sent back to the client (quotes, backslashes, §).
        let mut browser = t.agent();
        for extra in [
            "&response_type=%22x%5Cy%22",
            "&response_type=code&code_challenge_method=S256&prompt=%22odd%22",
            "&response_type=code&code_challenge_method=plain",
            "&response_type=code&response_mode=%C2%A7",
        ] {
            let path = format!(
                "/oauth2/authorize?client_id={}&redirect_uri={}&scope=openid&state=s&code_challenge={CHALLENGE}{extra}",
                rp.id,
                urlencode(REDIRECT)
            );
            let page = browser.get(&path).await;
            let q = query(&page.location());
            descriptions.push((
                extra.into(),
                q.get("error_description").cloned().unwrap_or_default(),
            ));
        }
        // UserInfo: the JSON and the challenge.
        let (_, h, b) = t
            .call(Method::GET, "/oauth2/userinfo", Some("x\"y"), None)
            .await;
        descriptions.push((
            "userinfo".into(),
            b["error_description"]
                .as_str()
                .unwrap_or_default()
                .to_string(),
        ));
        let challenge = h[header::WWW_AUTHENTICATE].to_str().unwrap();
        let in_challenge = challenge
            .split_once("error_description=\"")
            .map(|(_, rest)| rest.trim_end_matches('"').to_string())
            .unwrap_or_default();
        descriptions.push(("challenge".into(), in_challenge));
        let mut checked = 0;
        for (what, d) in &descriptions {
            assert!(!d.is_empty(), "{what}: no description");
            assert!(
                d.bytes().all(|c| c == 0x20
                    || c == 0x21
                    || (0x23..=0x5B).contains(&c)
                    || (0x5D..=0x7E).contains(&c)),
                "{what}: {d:?}"
            );
            checked += 1;
        }
        assert_eq!(checked, 14);
    }
);

store_test!(
    the_registered_client_authentication_method_is_enforced,
    |t: TestApp| async move {
        let (basic_id, basic_secret) = t
            .client_using(
                "client_secret_basic",
                Some("auditor"),
                None,
                &["audit.read"],
            )
            .await;
        let (post_id, post_secret) = t
            .client_using("client_secret_post", Some("auditor"), None, &["audit.read"])
            .await;
        // Each the way it registered: tokens.
        let (s, _, b) = t
            .form(
                "/oauth2/token",
                "grant_type=client_credentials",
                Some(&basic_auth(&basic_id, &basic_secret)),
            )
            .await;
        assert_eq!(s, StatusCode::OK, "{b}");
        let (s, _, b) = t
            .form(
                "/oauth2/token",
                &format!(
                    "grant_type=client_credentials&client_id={post_id}&client_secret={post_secret}"
                ),
                None,
            )
            .await;
        assert_eq!(s, StatusCode::OK, "{b}");
        // The other way, with the right secret: invalid_client.
        let (s, _, b) = t
            .form(
                "/oauth2/token",
                &format!("grant_type=client_credentials&client_id={basic_id}&client_secret={basic_secret}"),
                None,
            )
            .await;
        assert_eq!(
            (s, b["error"].as_str()),
            (StatusCode::UNAUTHORIZED, Some("invalid_client")),
            "{b}"
        );
        let (s, h, b) = t
            .form(
                "/oauth2/token",
                "grant_type=client_credentials",
                Some(&basic_auth(&post_id, &post_secret)),
            )
            .await;
        assert_eq!(
            (s, b["error"].as_str()),
            (StatusCode::UNAUTHORIZED, Some("invalid_client")),
            "{b}"
        );
        assert!(h[header::WWW_AUTHENTICATE]
            .to_str()
            .unwrap()
            .starts_with("Basic"));
        // The same at introspection.
        let (s, _, _) = t
            .form(
                "/oauth2/introspect",
                &format!("token=x&client_id={basic_id}&client_secret={basic_secret}"),
                None,
            )
            .await;
        assert_eq!(s, StatusCode::UNAUTHORIZED);
    }
);

store_test!(
    private_key_jwt_and_public_clients_get_no_secret,
    |t: TestApp| async move {
        let admin = t.admin_token().await;
        let jwks = serde_json::json!({"keys": [{"kty": "EC", "crv": "P-256", "x": "f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU", "y": "x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0"}]});
        let (s, _, c) = t
            .call(
                Method::POST,
                "/api/v1/clients",
                Some(&admin),
                Some(serde_json::json!({"name": "Key app", "grant_types": ["client_credentials"], "scopes": ["users.read"],
                    "token_endpoint_auth_method": "private_key_jwt", "jwks": jwks})),
            )
            .await;
        assert_eq!(s, StatusCode::CREATED, "{c}");
        assert!(c.get("client_secret").is_none(), "{c}");
        let id = c["client_id"].as_str().unwrap();
        // No secret to rotate either.
        let rotated = crate::oidc::rotate_secret(
            t.store(),
            t.app.master_key(),
            t.clock.now_ms(),
            &crate::audit::Origin::system("test"),
            id,
        )
        .await;
        assert!(rotated.is_err());
        let public = t.rp(true, false).await;
        assert!(public.secret.is_none());
    }
);
