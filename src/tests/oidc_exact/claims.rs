//! What a client is given: scopes dropped rather than fatal (RFC 6749 §3.3), phone
//! and address claims for their scopes, and the `claims` request parameter
//! (OpenID Connect Core §5.4–5.5).

use super::*;

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
        let (s, refreshed) = refresh(&t, &rp, tokens["refresh_token"].as_str().unwrap()).await;
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
