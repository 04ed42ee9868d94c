//! The less common paths: DPoP-bound tokens (RFC 9449), private_key_jwt client
//! authentication (RFC 7523), pushed authorization requests (RFC 9126), the
//! form_post response mode, and key rotation on the clock.

use super::browser::{urlencode, Rp, CHALLENGE, PASSWORD, REDIRECT};
use super::sso::{exchange, refresh};
use super::*;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use base64::Engine;
use ring::signature::{EcdsaKeyPair, KeyPair, ECDSA_P256_SHA256_FIXED_SIGNING};

/// A client-held P-256 key, as a relying party would make one.
struct ClientKey {
    pair: EcdsaKeyPair,
    rng: ring::rand::SystemRandom,
}

impl ClientKey {
    fn new() -> ClientKey {
        let rng = ring::rand::SystemRandom::new();
        let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng).unwrap();
        ClientKey {
            pair: EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8.as_ref(), &rng)
                .unwrap(),
            rng,
        }
    }
    fn jwk(&self) -> Value {
        let p = self.pair.public_key().as_ref();
        serde_json::json!({ "kty": "EC", "crv": "P-256", "x": B64.encode(&p[1..33]), "y": B64.encode(&p[33..65]) })
    }
    fn sign(&self, header: Value, claims: Value) -> String {
        let input = format!(
            "{}.{}",
            B64.encode(header.to_string()),
            B64.encode(claims.to_string())
        );
        let sig = self.pair.sign(&self.rng, input.as_bytes()).unwrap();
        format!("{input}.{}", B64.encode(sig.as_ref()))
    }
    /// Registers a `private_key_jwt` client (RFC 7523 §2.2) holding this key, for
    /// `users.read` client credentials, with `role` if given.
    async fn register(&self, t: &TestApp, role: Option<&str>) -> crate::oidc::Client {
        let new = crate::oidc::NewClient {
            name: "Reporting service".into(),
            grants: vec!["client_credentials".into()],
            scopes: vec!["users.read".into()],
            role: role.map(str::to_string),
            org: None,
            access_token_ttl_seconds: None,
            settings: crate::oidc::ClientSettings {
                token_endpoint_auth_method: "private_key_jwt".into(),
                jwks: Some(serde_json::json!({ "keys": [self.jwk()] })),
                ..Default::default()
            },
        };
        t.register(new).await.0
    }
    fn dpop(&self, t: &TestApp, method: &str, url: &str, ath: Option<&str>) -> String {
        let mut claims = serde_json::json!({ "jti": uuid::Uuid::new_v4().to_string(), "htm": method, "htu": url, "iat": t.clock.now_secs() });
        if let Some(a) = ath {
            claims["ath"] = B64
                .encode(ring::digest::digest(&ring::digest::SHA256, a.as_bytes()).as_ref())
                .into();
        }
        self.sign(
            serde_json::json!({ "typ": "dpop+jwt", "alg": "ES256", "jwk": self.jwk() }),
            claims,
        )
    }
}

store_test!(
    dpop_binds_tokens_to_the_clients_key,
    |t: TestApp| async move {
        t.account("dp.op").await;
        let rp = t.rp(false, false).await;
        let q = t.agent().authorize(&rp, "", "dp.op").await;
        let key = ClientKey::new();
        let body = format!(
            "grant_type=authorization_code&code={}&redirect_uri={}&code_verifier={}",
            q["code"],
            urlencode(REDIRECT),
            super::browser::VERIFIER
        );
        let proof = key.dpop(&t, "POST", "http://hub.test/oauth2/token", None);
        let req = Request::builder()
            .method(Method::POST)
            .uri("/oauth2/token")
            .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
            .header(header::AUTHORIZATION, rp.basic())
            .header("DPoP", &proof)
            .body(Body::from(body))
            .unwrap();
        let (s, _, tokens) = t.send(req).await;
        assert_eq!(s, StatusCode::OK, "{tokens}");
        assert_eq!(tokens["token_type"], "DPoP");
        let at = tokens["access_token"].as_str().unwrap();
        let claims: Value =
            serde_json::from_slice(&B64.decode(at.split('.').nth(1).unwrap()).unwrap()).unwrap();
        assert!(claims["cnf"]["jkt"].is_string(), "{claims}");
        // As a bearer token it is refused (RFC 9449 §7.1); with a fresh proof it works.
        let (s, _, _) = t
            .call(Method::GET, "/oauth2/userinfo", Some(at), None)
            .await;
        assert_eq!(s, StatusCode::UNAUTHORIZED);
        let userinfo = |proof: String| {
            Request::builder()
                .method(Method::GET)
                .uri("/oauth2/userinfo")
                .header(header::AUTHORIZATION, format!("DPoP {at}"))
                .header("DPoP", proof)
                .body(Body::empty())
                .unwrap()
        };
        let good = key.dpop(&t, "GET", "http://hub.test/oauth2/userinfo", Some(at));
        let (s, _, info) = t.send(userinfo(good.clone())).await;
        assert_eq!(s, StatusCode::OK, "{info}");
        // The same proof twice, a proof by another key, a proof for another URL: refused.
        assert_eq!(
            t.send(userinfo(good)).await.0,
            StatusCode::UNAUTHORIZED,
            "proof replay"
        );
        let other = ClientKey::new().dpop(&t, "GET", "http://hub.test/oauth2/userinfo", Some(at));
        assert_eq!(
            t.send(userinfo(other)).await.0,
            StatusCode::UNAUTHORIZED,
            "another key"
        );
        let wrong_url = key.dpop(&t, "GET", "http://hub.test/elsewhere", Some(at));
        assert_eq!(
            t.send(userinfo(wrong_url)).await.0,
            StatusCode::UNAUTHORIZED
        );
        // A confidential client's refresh token is sender-constrained by its client
        // authentication already (RFC 9449 §5); without a proof it gets a Bearer token.
        let (s, r) = refresh(&t, &rp, tokens["refresh_token"].as_str().unwrap()).await;
        assert_eq!(
            (s, r["token_type"].as_str()),
            (StatusCode::OK, Some("Bearer")),
            "{r}"
        );

        // A public client's refresh token is bound to the key: refused without its proof.
        let public = t.rp(true, true).await;
        let q = t.agent().authorize(&public, "", "dp.op").await;
        let body = format!(
            "grant_type=authorization_code&client_id={}&code={}&redirect_uri={}&code_verifier={}",
            public.id,
            q["code"],
            urlencode(REDIRECT),
            super::browser::VERIFIER
        );
        let req = Request::builder()
            .method(Method::POST)
            .uri("/oauth2/token")
            .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
            .header(
                "DPoP",
                key.dpop(&t, "POST", "http://hub.test/oauth2/token", None),
            )
            .body(Body::from(body))
            .unwrap();
        let (s, _, tokens) = t.send(req).await;
        assert_eq!(s, StatusCode::OK, "{tokens}");
        let refresh = format!(
            "grant_type=refresh_token&client_id={}&refresh_token={}",
            public.id,
            tokens["refresh_token"].as_str().unwrap()
        );
        let (s, _, e) = t.form("/oauth2/token", &refresh, None).await;
        assert_eq!(
            (s, e["error"].as_str()),
            (StatusCode::BAD_REQUEST, Some("invalid_grant")),
            "{e}"
        );
        let req = Request::builder()
            .method(Method::POST)
            .uri("/oauth2/token")
            .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
            .header(
                "DPoP",
                key.dpop(&t, "POST", "http://hub.test/oauth2/token", None),
            )
            .body(Body::from(refresh))
            .unwrap();
        let (s, _, r) = t.send(req).await;
        assert_eq!(
            (s, r["token_type"].as_str()),
            (StatusCode::OK, Some("DPoP")),
            "{r}"
        );
    }
);

store_test!(
    private_key_jwt_authenticates_and_refuses_replay,
    |t: TestApp| async move {
        let key = ClientKey::new();
        let c = key.register(&t, Some("auditor")).await;
        let now = t.clock.now_secs();
        let assertion = key.sign(serde_json::json!({ "alg": "ES256", "typ": "JWT" }), serde_json::json!({ "iss": c.id, "sub": c.id, "aud": "http://hub.test/oauth2/token", "exp": now + 60, "iat": now, "jti": "a-1" }));
        let body = format!(
            "grant_type=client_credentials&client_assertion_type={}&client_assertion={assertion}",
            urlencode("urn:ietf:params:oauth:client-assertion-type:jwt-bearer")
        );
        let (s, _, b) = t.form("/oauth2/token", &body, None).await;
        assert_eq!(s, StatusCode::OK, "{b}");
        let (s, _, b) = t.form("/oauth2/token", &body, None).await;
        assert_eq!(
            (s, b["error"].as_str()),
            (StatusCode::UNAUTHORIZED, Some("invalid_client")),
            "jti replay"
        );
        let forged = ClientKey::new().sign(serde_json::json!({ "alg": "ES256" }), serde_json::json!({ "iss": c.id, "sub": c.id, "aud": "http://hub.test", "exp": now + 60, "jti": "a-2" }));
        let (s, _, _) = t.form("/oauth2/token", &format!("grant_type=client_credentials&client_assertion_type={}&client_assertion={forged}", urlencode("urn:ietf:params:oauth:client-assertion-type:jwt-bearer")), None).await;
        assert_eq!(
            s,
            StatusCode::UNAUTHORIZED,
            "signed by a key the client did not register"
        );
    }
);

// The input rule inside signed JWTs the edge cannot read: a control character in
// a DPoP proof's jti or a client assertion's sub is refused, never sent to the
// database (where PostgreSQL would fail on NUL).
store_test!(
    control_characters_inside_proofs_and_assertions_are_refused,
    |t: TestApp| async move {
        let (id, secret) = t.client(None, None, &["users.read"]).await;
        let key = ClientKey::new();
        let now = t.clock.now_secs();
        let proof = key.sign(
            serde_json::json!({ "typ": "dpop+jwt", "alg": "ES256", "jwk": key.jwk() }),
            serde_json::json!({ "jti": "a\u{0}b", "htm": "POST", "htu": "http://hub.test/oauth2/token", "iat": now }),
        );
        let req = Request::builder()
            .method(Method::POST)
            .uri("/oauth2/token")
            .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
            .header("DPoP", proof)
            .body(Body::from(format!(
                "grant_type=client_credentials&client_id={id}&client_secret={secret}"
            )))
            .unwrap();
        let (s, _, b) = t.send(req).await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{b}");
        assert_eq!(b["error"], "invalid_dpop_proof");
        let c = key.register(&t, None).await;
        for claims in [
            serde_json::json!({ "iss": "x\u{0}", "sub": "x\u{0}", "aud": "http://hub.test/oauth2/token", "exp": now + 60, "jti": "j-1" }),
            serde_json::json!({ "iss": c.id, "sub": c.id, "aud": "http://hub.test/oauth2/token", "exp": now + 60, "jti": "j\u{0}" }),
        ] {
            let assertion = key.sign(serde_json::json!({ "alg": "ES256", "typ": "JWT" }), claims);
            let body = format!(
                "grant_type=client_credentials&client_assertion_type={}&client_assertion={assertion}",
                urlencode("urn:ietf:params:oauth:client-assertion-type:jwt-bearer")
            );
            let (s, _, b) = t.form("/oauth2/token", &body, None).await;
            assert_eq!(s, StatusCode::UNAUTHORIZED, "{b}");
            assert_eq!(b["error"], "invalid_client");
        }
    }
);

store_test!(pushed_requests_and_form_post, |t: TestApp| async move {
    t.account("pa.r").await;
    let rp: Rp = t.rp(false, true).await;
    let body = format!("response_type=code&client_id={}&redirect_uri={}&scope=openid&state=p1&code_challenge={CHALLENGE}&code_challenge_method=S256&response_mode=form_post", rp.id, urlencode(REDIRECT));
    let (s, _, par) = t.form("/oauth2/par", &body, Some(&rp.basic())).await;
    assert_eq!(s, StatusCode::CREATED, "{par}");
    let uri = par["request_uri"].as_str().unwrap().to_string();
    assert!(uri.starts_with("urn:ietf:params:oauth:request_uri:"));
    let mut b = t.agent();
    let first = b
        .get(&format!(
            "/oauth2/authorize?client_id={}&request_uri={}",
            rp.id,
            urlencode(&uri)
        ))
        .await;
    let login = b.follow(first).await;
    let page = b.sign_in(&login, "pa.r", PASSWORD).await;
    // form_post: a page that posts code, state and iss to the redirect URI.
    assert_eq!(page.status, StatusCode::OK, "{}", page.body);
    assert!(
        page.body
            .contains("action=\"https:&#x2f;&#x2f;rp.example&#x2f;cb\"")
            || page.body.contains("action=\"https://rp.example/cb\""),
        "{}",
        page.body
    );
    let code = page.hidden("code");
    assert_eq!(page.hidden("state"), "p1");
    let csp = page.headers[header::CONTENT_SECURITY_POLICY]
        .to_str()
        .unwrap();
    assert!(
        csp.contains("script-src 'nonce-") && csp.contains("form-action https://rp.example"),
        "{csp}"
    );
    let (s, _) = exchange(&t, &rp, &code).await;
    assert_eq!(s, StatusCode::OK);
    // A request_uri is single use (RFC 9126 §4).
    let again = b
        .get(&format!(
            "/oauth2/authorize?client_id={}&request_uri={}",
            rp.id,
            urlencode(&uri)
        ))
        .await;
    assert_eq!(again.status, StatusCode::BAD_REQUEST);
    // PAR needs client authentication.
    let (s, _, _) = t.form("/oauth2/par", &body, None).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
});

store_test!(
    keys_rotate_published_first_signing_later_retired_last,
    |t: TestApp| async move {
        let origin = crate::audit::Origin::system("test");
        let kids = |ring: &crate::oidc::KeyRing| -> Vec<String> {
            let v: Value = serde_json::from_str(&ring.jwks_json()).unwrap();
            v["keys"]
                .as_array()
                .unwrap()
                .iter()
                .map(|k| k["kid"].as_str().unwrap().to_string())
                .collect()
        };
        let old = t
            .app
            .keys()
            .signer(crate::oidc::Alg::Rs256)
            .unwrap()
            .kid
            .clone();
        let made = crate::oidc::rotate_keys(
            t.store(),
            t.app.master_key(),
            t.clock.now_ms(),
            600,
            &origin,
        )
        .await
        .unwrap();
        assert_eq!(made.len(), 2);
        let new_rs = made.iter().find(|m| m.1 == "RS256").unwrap().0.clone();
        t.app.reload_keys().await.unwrap();
        assert!(kids(&t.app.keys()).contains(&new_rs), "published at once");
        assert_eq!(
            t.app.keys().signer(crate::oidc::Alg::Rs256).unwrap().kid,
            old,
            "but not signing yet"
        );
        let config = t.app.config().clone();
        assert!(!crate::oidc::maintain_keys(
            t.store(),
            t.app.master_key(),
            t.clock.now_ms(),
            &config
        )
        .await
        .unwrap());
        t.clock.advance_secs(601);
        assert!(crate::oidc::maintain_keys(
            t.store(),
            t.app.master_key(),
            t.clock.now_ms(),
            &config
        )
        .await
        .unwrap());
        t.app.reload_keys().await.unwrap();
        assert_eq!(
            t.app.keys().signer(crate::oidc::Alg::Rs256).unwrap().kid,
            new_rs,
            "the new key signs"
        );
        assert!(
            kids(&t.app.keys()).contains(&old),
            "the old one still verifies"
        );
        t.clock.advance_secs(43_200 + 301);
        crate::oidc::maintain_keys(t.store(), t.app.master_key(), t.clock.now_ms(), &config)
            .await
            .unwrap();
        t.app.reload_keys().await.unwrap();
        assert!(
            !kids(&t.app.keys()).contains(&old),
            "dropped once every token it signed has expired"
        );
        // Scheduled rotation: after rotate_after_days a new key is prepared by itself.
        t.clock.advance_secs(91 * 86_400);
        crate::oidc::maintain_keys(t.store(), t.app.master_key(), t.clock.now_ms(), &config)
            .await
            .unwrap();
        let pending = crate::oidc::list_keys(t.store())
            .await
            .unwrap()
            .iter()
            .filter(|k| k.2 == "next")
            .count();
        assert_eq!(pending, 2);
    }
);

async fn count(t: &TestApp, table: &str) -> i64 {
    sqlx::query_scalar::<_, i64>(&format!("SELECT COUNT(*) FROM {table}"))
        .fetch_one(t.store().reader())
        .await
        .unwrap()
}

store_test!(expired_records_are_swept, |t: TestApp| async move {
    t.account("sw.ep").await;
    let rp = t.rp(false, true).await;
    let q = t.agent().authorize_scoped(&rp, "openid", "", "sw.ep").await;
    let (s, _) = exchange(&t, &rp, &q["code"]).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(
        crate::oidc::sweep_expired(&t.app).await.unwrap(),
        0,
        "nothing is expired yet"
    );
    assert_eq!(count(&t, "grants").await, 1);
    t.clock.advance_secs(10 * 86_400);
    assert!(crate::oidc::sweep_expired(&t.app).await.unwrap() >= 4);
    for table in ["grants", "auth_codes", "refresh_tokens", "sessions"] {
        assert_eq!(count(&t, table).await, 0, "{table}");
    }
});
