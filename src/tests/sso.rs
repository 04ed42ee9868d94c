//! Single sign-on through the real pages and endpoints, in process, on both
//! databases: the code flow with PKCE, the ID token checked by `jsonwebtoken`
//! against the JWKS, UserInfo, refresh rotation, introspection, revocation, consent
//! remembered and withdrawn, logout, key rotation.

use super::browser::{Rp, REDIRECT, VERIFIER};
use super::*;

pub async fn exchange(t: &TestApp, rp: &Rp, code: &str) -> (StatusCode, Value) {
    let mut body = format!(
        "grant_type=authorization_code&code={code}&redirect_uri={}&code_verifier={VERIFIER}",
        super::browser::urlencode(REDIRECT)
    );
    let auth = if rp.secret.is_some() {
        Some(rp.basic())
    } else {
        body.push_str(&format!("&client_id={}", rp.id));
        None
    };
    let (s, _, b) = t.form("/oauth2/token", &body, auth.as_deref()).await;
    (s, b)
}

pub async fn refresh(t: &TestApp, rp: &Rp, token: &str) -> (StatusCode, Value) {
    let (s, _, b) = t
        .form(
            "/oauth2/token",
            &format!("grant_type=refresh_token&refresh_token={token}"),
            Some(&rp.basic()),
        )
        .await;
    (s, b)
}

/// The status UserInfo answers for the access token `token` (RFC 6750 §2.1).
pub async fn userinfo_status(t: &TestApp, token: &str) -> StatusCode {
    t.call(Method::GET, "/oauth2/userinfo", Some(token), None)
        .await
        .0
}

pub async fn introspect(t: &TestApp, rp: &Rp, token: &str) -> Value {
    let (s, _, b) = t
        .form(
            "/oauth2/introspect",
            &format!("token={token}"),
            Some(&rp.basic()),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{b}");
    b
}

fn verify_id_token(t: &TestApp, jwks: Value, token: &str, aud: &str) -> Value {
    let set: jsonwebtoken::jwk::JwkSet = serde_json::from_value(jwks).unwrap();
    let header = jsonwebtoken::decode_header(token).unwrap();
    assert_eq!(
        header.alg,
        jsonwebtoken::Algorithm::RS256,
        "OIDC Core §15.1: RS256 by default"
    );
    let jwk = set
        .find(header.kid.as_deref().unwrap())
        .expect("kid in the JWKS");
    let key = jsonwebtoken::DecodingKey::from_jwk(jwk).unwrap();
    let mut v = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::RS256);
    v.set_audience(&[aud]);
    v.set_issuer(&["http://hub.test"]);
    v.leeway = 0;
    let _ = t;
    jsonwebtoken::decode::<Value>(token, &key, &v)
        .unwrap()
        .claims
}

store_test!(
    code_flow_id_token_userinfo_refresh_and_revocation,
    |t: TestApp| async move {
        let person = t.account("tess.t").await;
        let rp = t.rp(false, false).await;
        let mut browser = t.agent();
        let q = browser.authorize(&rp, "", "tess.t").await;
        assert_eq!(q["state"], "st-1");
        assert_eq!(q["iss"], "http://hub.test", "RFC 9207 iss in the response");
        let (s, tokens) = exchange(&t, &rp, &q["code"]).await;
        assert_eq!(s, StatusCode::OK, "{tokens}");
        assert_eq!(tokens["token_type"], "Bearer");
        let (_, _, jwks) = t.call(Method::GET, "/oauth2/jwks", None, None).await;
        let id = verify_id_token(
            &t,
            jwks.clone(),
            tokens["id_token"].as_str().unwrap(),
            &rp.id,
        );
        assert_eq!(id["sub"], person);
        assert_eq!(id["nonce"], "n-1");
        assert_eq!(id["amr"], serde_json::json!(["pwd"]));
        assert_eq!(id["acr"], crate::authn::ACR_PASSWORD);
        assert!(id["auth_time"].is_i64() && id["sid"].is_string());
        assert_eq!(id["email"], "tess.t@district.example");
        assert_eq!(
            id["at_hash"],
            crate::oidc::at_hash(tokens["access_token"].as_str().unwrap())
        );
        assert_eq!(id["roles"], serde_json::json!([]));

        // UserInfo with the access token; the admin API refuses it (another audience).
        let at = tokens["access_token"].as_str().unwrap();
        let (s, _, info) = t
            .call(Method::GET, "/oauth2/userinfo", Some(at), None)
            .await;
        assert_eq!(s, StatusCode::OK, "{info}");
        assert_eq!(info["sub"], person);
        assert_eq!(info["preferred_username"], "tess.t");
        let (s, _, _) = t.call(Method::GET, "/api/v1/users", Some(at), None).await;
        assert_eq!(
            s,
            StatusCode::UNAUTHORIZED,
            "a person's token must not open the admin API"
        );

        // Refresh: rotated; the old one is spent; reuse revokes the family.
        let r1 = tokens["refresh_token"].as_str().unwrap().to_string();
        let (s, second) = refresh(&t, &rp, &r1).await;
        assert_eq!(s, StatusCode::OK, "{second}");
        let r2 = second["refresh_token"].as_str().unwrap().to_string();
        assert_ne!(r1, r2);
        let id2 = verify_id_token(&t, jwks, second["id_token"].as_str().unwrap(), &rp.id);
        assert_eq!(id2["auth_time"], id["auth_time"]);
        assert!(id2.get("nonce").is_none(), "no nonce on refresh");
        assert_eq!(introspect(&t, &rp, &r2).await["active"], true);
        let (s, err) = refresh(&t, &rp, &r1).await;
        assert_eq!(
            (s, err["error"].as_str()),
            (StatusCode::BAD_REQUEST, Some("invalid_grant"))
        );
        let (s, _) = refresh(&t, &rp, &r2).await;
        assert_eq!(
            s,
            StatusCode::BAD_REQUEST,
            "the whole family is revoked after reuse"
        );
        assert_eq!(
            introspect(&t, &rp, second["access_token"].as_str().unwrap()).await["active"],
            false
        );

        // Consent was remembered: a second authorization goes straight back.
        let q = browser.authorize(&rp, "", "tess.t").await;
        let (s, third) = exchange(&t, &rp, &q["code"]).await;
        assert_eq!(s, StatusCode::OK);
        // RFC 7009: revoking the refresh token revokes the grant's access token too.
        let (s, _, _) = t
            .form(
                "/oauth2/revoke",
                &format!(
                    "token={}&token_type_hint=refresh_token",
                    third["refresh_token"].as_str().unwrap()
                ),
                Some(&rp.basic()),
            )
            .await;
        assert_eq!(s, StatusCode::OK);
        assert_eq!(
            introspect(&t, &rp, third["access_token"].as_str().unwrap()).await["active"],
            false
        );
        let s = userinfo_status(&t, third["access_token"].as_str().unwrap()).await;
        assert_eq!(s, StatusCode::UNAUTHORIZED);

        // Withdrawing consent in the portal brings the consent page back.
        let apps = browser.get("/portal/apps").await;
        assert!(apps.body.contains("Test RP"), "{}", apps.body);
        let csrf = apps.hidden("csrf");
        let p = browser
            .post(
                "/portal/apps/revoke",
                &[("csrf", &csrf), ("client_id", &rp.id)],
            )
            .await;
        assert_eq!(p.status, StatusCode::SEE_OTHER);
        let first = browser.get(&format!("/oauth2/authorize?response_type=code&client_id={}&redirect_uri={}&scope=openid&code_challenge={}&code_challenge_method=S256", rp.id, super::browser::urlencode(REDIRECT), super::browser::CHALLENGE)).await;
        let page = browser.follow(first).await;
        assert!(
            page.body.contains("action=\"/consent\""),
            "consent again after withdrawal"
        );
        assert_eq!(t.audit_rows("consent.revoke").await.len(), 1);
    }
);

store_test!(
    first_party_skips_consent_prompt_none_and_logout,
    |t: TestApp| async move {
        t.account("ben.b").await;
        let rp = t.rp(true, true).await;
        let mut browser = t.agent();
        // prompt=none before signing in: login_required goes back to the client.
        let page = browser.get(&format!("/oauth2/authorize?response_type=code&client_id={}&redirect_uri={}&scope=openid&state=s&prompt=none&code_challenge={}&code_challenge_method=S256", rp.id, super::browser::urlencode(REDIRECT), super::browser::CHALLENGE)).await;
        let q = super::browser::query(&page.location());
        assert_eq!(
            (q["error"].as_str(), q["state"].as_str(), q["iss"].as_str()),
            ("login_required", "s", "http://hub.test")
        );
        // First-party public client: no consent page, PKCE with no secret. Without
        // offline_access the grant is bound to the browser session.
        let q = browser
            .authorize_scoped(&rp, "openid profile", "", "ben.b")
            .await;
        let (s, tokens) = exchange(&t, &rp, &q["code"]).await;
        assert_eq!(s, StatusCode::OK, "{tokens}");
        // RP-initiated logout with id_token_hint: signed out, sent to the registered URI.
        let hint = tokens["id_token"].as_str().unwrap();
        let page = browser
            .get(&format!(
                "/oauth2/logout?id_token_hint={hint}&post_logout_redirect_uri={}&state=bye",
                super::browser::urlencode("https://rp.example/bye")
            ))
            .await;
        assert_eq!(page.status, StatusCode::SEE_OTHER, "{}", page.body);
        assert_eq!(page.location(), "https://rp.example/bye?state=bye");
        let s = userinfo_status(&t, tokens["access_token"].as_str().unwrap()).await;
        assert_eq!(
            s,
            StatusCode::UNAUTHORIZED,
            "a session-bound grant ends with the session"
        );
        let portal = browser.get("/portal").await;
        assert_eq!(portal.location(), "/login");
        assert_eq!(t.audit_rows("auth.signout").await.len(), 1);
    }
);

store_test!(
    sessions_listed_and_signed_out_everywhere,
    |t: TestApp| async move {
        t.account("ana.a").await;
        let mut laptop = t.agent();
        let mut phone = t.agent();
        for b in [&mut laptop, &mut phone] {
            let login = b.get("/login").await;
            let page = b.sign_in(&login, "ana.a", super::browser::PASSWORD).await;
            assert!(page.body.contains("My profile"), "{}", page.body);
        }
        let sessions = laptop.get("/portal/sessions").await;
        assert_eq!(sessions.body.matches("name=\"session\"").count(), 2);
        let csrf = sessions.hidden("csrf");
        let out = laptop
            .post("/portal/sessions/end-all", &[("csrf", &csrf)])
            .await;
        assert_eq!(out.location(), "/login?signed_out=1");
        assert_eq!(
            phone.get("/portal").await.location(),
            "/login",
            "the other device is signed out too"
        );
    }
);

store_test!(
    admin_password_reset_forces_a_new_password,
    |t: TestApp| async move {
        let person = t.account("re.set").await;
        let registrar = t
            .token(Some("registrar"), None, &["users.write", "roles.write"])
            .await;
        let body = serde_json::json!({ "password": "temporary-pass-123" });
        let (s, _, _) = t
            .call(
                Method::POST,
                &format!("/api/v1/users/{person}/password"),
                Some(&registrar),
                Some(body.clone()),
            )
            .await;
        assert_eq!(
            s,
            StatusCode::FORBIDDEN,
            "a registrar could otherwise take over an admin's account"
        );
        let admin = t.admin_token().await;
        let (s, _, e) = t
            .call(
                Method::POST,
                &format!("/api/v1/users/{person}/password"),
                Some(&admin),
                Some(serde_json::json!({ "password": "short" })),
            )
            .await;
        assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{e}");
        let (s, _, _) = t
            .call(
                Method::POST,
                &format!("/api/v1/users/{person}/password"),
                Some(&admin),
                Some(body),
            )
            .await;
        assert_eq!(s, StatusCode::NO_CONTENT);
        let mut b = t.agent();
        let login = b.get("/login").await;
        let csrf = login.hidden("csrf");
        let p = b
            .post(
                "/login",
                &[
                    ("csrf", &csrf),
                    ("username", "re.set"),
                    ("password", "temporary-pass-123"),
                ],
            )
            .await;
        assert_eq!(p.location(), "/portal/password?required=1");
        let page = b.get("/portal/password?required=1").await;
        assert!(page.body.contains("Choose your own now"));
        let csrf = page.hidden("csrf");
        let p = b
            .post(
                "/portal/password",
                &[
                    ("csrf", &csrf),
                    ("current", "temporary-pass-123"),
                    ("new", "my own long passphrase"),
                    ("confirm", "my own long passphrase"),
                ],
            )
            .await;
        assert!(p.body.contains("Your password was changed"), "{}", p.body);
        assert!(!crate::authn::must_change_password(&t.app, &person)
            .await
            .unwrap());
        assert_eq!(
            t.audit_rows("auth.password.set").await.len(),
            3,
            "demo set, admin reset, own change"
        );
    }
);

store_test!(
    must_change_password_is_enforced_before_any_app,
    |t: TestApp| async move {
        let person = t.account("mu.st").await;
        let p = crate::directory::get_person(t.store(), &person)
            .await
            .unwrap();
        crate::authn::set_password(
            &t.app,
            &p,
            "temporary-pass-456",
            true,
            &crate::audit::Origin::system("test"),
        )
        .await
        .unwrap();
        let rp = t.rp(false, true).await;
        let mut b = t.agent();
        let first = b.get(&format!("/oauth2/authorize?response_type=code&client_id={}&redirect_uri={}&scope=openid&state=m&code_challenge={}&code_challenge_method=S256", rp.id, super::browser::urlencode(REDIRECT), super::browser::CHALLENGE)).await;
        let login = b.follow(first).await;
        let csrf = login.hidden("csrf");
        let p = b
            .post(
                "/login",
                &[
                    ("csrf", &csrf),
                    ("request", &login.hidden("request")),
                    ("username", "mu.st"),
                    ("password", "temporary-pass-456"),
                ],
            )
            .await;
        let page = b.follow(p).await;
        assert!(
            page.body.contains("Choose your own now"),
            "no code before a new password: {}",
            page.body
        );
        let csrf = page.hidden("csrf");
        let request = page.hidden("request");
        let p = b
            .post(
                "/portal/password",
                &[
                    ("csrf", &csrf),
                    ("request", &request),
                    ("current", "temporary-pass-456"),
                    ("new", "a phrase of my own"),
                    ("confirm", "a phrase of my own"),
                ],
            )
            .await;
        let q = super::browser::query(&p.location());
        assert_eq!(
            q["state"], "m",
            "the sign-in continued to the app: {}",
            p.body
        );
        assert!(q.contains_key("code"));
    }
);
