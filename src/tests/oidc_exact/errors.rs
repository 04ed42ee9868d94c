//! Errors a client reads: a `request_uri` not from PAR answered at the redirect URI,
//! and every `error_description` within RFC 6749's characters (§5.2).

use super::*;

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
