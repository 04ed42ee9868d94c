//! The guard on every /api/v1 route: 401 without a valid token, 403 (audited) when
//! casbin or the token's scopes do not allow the request.

use super::*;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use base64::Engine;

store_test!(
    unauthenticated_requests_get_401_with_bearer_challenge,
    |t: TestApp| async move {
        for path in ["/api/v1/users", "/api/v1/orgs", "/api/v1/audit"] {
            let (s, h, body) = t.call(Method::GET, path, None, None).await;
            assert_eq!(s, StatusCode::UNAUTHORIZED, "{path}");
            assert_eq!(h[header::CONTENT_TYPE], "application/problem+json");
            assert!(h[header::WWW_AUTHENTICATE]
                .to_str()
                .unwrap()
                .starts_with("Bearer"));
            assert_eq!(body["type"], "urn:hms-ach:problem:unauthenticated");
        }
        let (s, _, _) = t
            .call(Method::GET, "/api/v1/users", Some("not-a-jwt"), None)
            .await;
        assert_eq!(s, StatusCode::UNAUTHORIZED);
    }
);

store_test!(
    forged_expired_and_foreign_tokens_are_refused,
    |t: TestApp| async move {
        let token = t.token(Some("auditor"), None, &["audit.read"]).await;
        let parts: Vec<&str> = token.split('.').collect();
        let claims: Value = serde_json::from_slice(&B64.decode(parts[1]).unwrap()).unwrap();
        let header: Value = serde_json::from_slice(&B64.decode(parts[0]).unwrap()).unwrap();
        // alg=none with no signature.
        let none = format!(
            "{}.{}.",
            B64.encode(
                serde_json::json!({"alg":"none","typ":"at+jwt","kid":header["kid"]}).to_string()
            ),
            parts[1]
        );
        // HS256 "signed" with the public JWK as the secret (the classic key-confusion attack).
        let (_, _, jwks) = t.call(Method::GET, "/oauth2/jwks", None, None).await;
        let hs_header = B64.encode(
            serde_json::json!({"alg":"HS256","typ":"at+jwt","kid":header["kid"]}).to_string(),
        );
        let signing_input = format!("{hs_header}.{}", parts[1]);
        let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, jwks.to_string().as_bytes());
        let hs = format!(
            "{signing_input}.{}",
            B64.encode(ring::hmac::sign(&key, signing_input.as_bytes()))
        );
        // Claims changed after signing.
        let mut more = claims.clone();
        more["scope"] = "audit.read users.write".into();
        let tampered = format!("{}.{}.{}", parts[0], B64.encode(more.to_string()), parts[2]);
        for bad in [none, hs, tampered] {
            assert_eq!(
                t.call(Method::GET, "/api/v1/audit", Some(&bad), None)
                    .await
                    .0,
                StatusCode::UNAUTHORIZED,
                "{bad}"
            );
        }
        assert_eq!(
            t.call(Method::GET, "/api/v1/audit", Some(&token), None)
                .await
                .0,
            StatusCode::OK
        );
        // A token from another issuer (same key, different iss) is refused.
        let signer = t.app.keys().signer(crate::oidc::Alg::Es256).unwrap();
        let mut foreign = claims.clone();
        foreign["iss"] = "http://evil.test".into();
        let foreign = crate::oidc::sign_jwt(&signer, "at+jwt", &foreign).unwrap();
        let (s, _, body) = t
            .call(Method::GET, "/api/v1/audit", Some(&foreign), None)
            .await;
        assert_eq!(s, StatusCode::UNAUTHORIZED);
        assert!(body["detail"].as_str().unwrap().contains("issuer"));
        // Expiry: 15 minutes later the token is dead.
        t.clock.advance_secs(901);
        let (s, _, body) = t
            .call(Method::GET, "/api/v1/audit", Some(&token), None)
            .await;
        assert_eq!(s, StatusCode::UNAUTHORIZED);
        assert!(body["detail"].as_str().unwrap().contains("expired"));
    }
);

store_test!(casbin_denial_is_403_and_audited, |t: TestApp| async move {
    // An auditor may read the audit log but not write users, even with the scope.
    let token = t
        .token(Some("auditor"), None, &["users.write", "audit.read"])
        .await;
    let body = serde_json::json!({"sourcedId": "p1", "kinds": ["student"], "givenName": "A", "familyName": "B"});
    let (s, h, problem) = t
        .call(Method::POST, "/api/v1/users", Some(&token), Some(body))
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN, "{problem}");
    assert_eq!(h[header::CONTENT_TYPE], "application/problem+json");
    assert_eq!(problem["type"], "urn:hms-ach:problem:forbidden");
    let denied = t.audit_rows("authz.denied").await;
    assert_eq!(denied.len(), 1);
    assert_eq!(denied[0].outcome, "denied");
    assert_eq!(denied[0].actor_kind, "client");
    assert_eq!(denied[0].target_kind, "users");
    assert!(
        denied[0].request_id.is_some(),
        "the denial carries the request id"
    );
    // A token without the scope is refused too, whatever the role.
    let admin_ro = t.token(Some("hub-admin"), None, &["users.read"]).await;
    let (s, _, p) = t
        .call(Method::GET, "/api/v1/audit", Some(&admin_ro), None)
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    assert!(p["detail"].as_str().unwrap().contains("audit.read"));
    assert_eq!(t.audit_rows("authz.denied").await.len(), 2);
});

store_test!(
    roles_scoped_to_an_org_cover_its_subtree_only,
    |t: TestApp| async move {
        let admin = t.admin_token().await;
        seed_orgs(&t, &admin).await;
        let registrar = t
            .token(
                Some("registrar"),
                Some("s1"),
                &["users.write", "users.read"],
            )
            .await;
        let person = |sid: &str, org: &str| serde_json::json!({"sourcedId": sid, "kinds": ["teacher"], "givenName": "T", "familyName": sid, "affiliations": [{"org": org, "role": "teacher", "primary": true}]});
        let (s, _, b) = t
            .call(
                Method::POST,
                "/api/v1/users",
                Some(&registrar),
                Some(person("t1", "dep1")),
            )
            .await;
        assert_eq!(
            s,
            StatusCode::CREATED,
            "a school registrar manages its department: {b}"
        );
        let (s, _, _) = t
            .call(
                Method::POST,
                "/api/v1/users",
                Some(&registrar),
                Some(person("t2", "s2")),
            )
            .await;
        assert_eq!(s, StatusCode::FORBIDDEN, "but not another school");
        let (s, _, _) = t
            .call(Method::GET, "/api/v1/users?org=s1", Some(&registrar), None)
            .await;
        assert_eq!(s, StatusCode::OK);
        let (s, _, _) = t
            .call(Method::GET, "/api/v1/users", Some(&registrar), None)
            .await;
        assert_eq!(
            s,
            StatusCode::FORBIDDEN,
            "hub-wide listing needs a hub-wide role"
        );
    }
);

store_test!(
    time_bound_and_revoked_roles_stop_working,
    |t: TestApp| async move {
        let admin = t.admin_token().await;
        seed_orgs(&t, &admin).await;
        let body = serde_json::json!({"sourcedId": "chair", "kinds": ["teacher"], "givenName": "C", "familyName": "D", "affiliations": [{"org": "dep1", "role": "Department Chair"}]});
        let (_, _, person) = t
            .call(Method::POST, "/api/v1/users", Some(&admin), Some(body))
            .await;
        let pid = person["id"].as_str().unwrap();
        let expires = crate::clock::format_rfc3339(t.clock.now_ms() + 3_600_000);
        let (s, _, a) = t
            .call(
                Method::POST,
                &format!("/api/v1/users/{pid}/roles"),
                Some(&admin),
                Some(serde_json::json!({"role": "approver", "org": "dep1", "expiresAt": expires})),
            )
            .await;
        assert_eq!(s, StatusCode::CREATED, "{a}");
        let subject = format!("person:{pid}");
        let dep1 = crate::directory::resolve_org(t.store(), "dep1")
            .await
            .unwrap()
            .unwrap();
        let allows = |at: i64| {
            let (t, subject, dep1) = (&t, subject.clone(), dep1.clone());
            async move {
                t.app
                    .authorizer()
                    .allows(
                        t.store(),
                        at,
                        &subject,
                        &[dep1, "*".into()],
                        "roles",
                        "write",
                    )
                    .await
                    .unwrap()
            }
        };
        assert!(allows(t.clock.now_ms()).await);
        assert!(
            !allows(t.clock.now_ms() + 3_600_001).await,
            "expired grants stop"
        );
        let (s, _, list) = t
            .call(
                Method::GET,
                &format!("/api/v1/users/{pid}/roles"),
                Some(&admin),
                None,
            )
            .await;
        assert_eq!(s, StatusCode::OK);
        assert_eq!(list["items"][0]["role"], "approver");
        let aid = a["id"].as_str().unwrap();
        let (s, _, _) = t
            .call(
                Method::DELETE,
                &format!("/api/v1/users/{pid}/roles/{aid}"),
                Some(&admin),
                None,
            )
            .await;
        assert_eq!(s, StatusCode::NO_CONTENT);
        assert!(
            !allows(t.clock.now_ms()).await,
            "a revoked role stops at once"
        );
        assert_eq!(t.audit_rows("role.revoke").await.len(), 1);
    }
);

store_test!(
    responses_carry_security_headers_and_request_ids,
    |t: TestApp| async move {
        let (s, h, _) = t.call(Method::GET, "/healthz", None, None).await;
        assert_eq!(s, StatusCode::OK);
        assert_eq!(h["x-frame-options"], "DENY");
        assert_eq!(h["x-content-type-options"], "nosniff");
        assert!(h["content-security-policy"]
            .to_str()
            .unwrap()
            .contains("frame-ancestors 'none'"));
        assert!(h.contains_key("x-request-id"));
        assert_eq!(
            t.call(Method::GET, "/readyz", None, None).await.0,
            StatusCode::OK
        );
        let (_, _, metrics) = t.call(Method::GET, "/metrics", None, None).await;
        assert!(metrics
            .as_str()
            .unwrap()
            .contains("hms_ach_http_requests_total"));
    }
);

store_test!(oversized_bodies_are_refused, |t: TestApp| async move {
    let admin = t.admin_token().await;
    let huge = "x".repeat(2 * 1024 * 1024);
    let body = serde_json::json!({"sourcedId": "x", "kinds": ["student"], "givenName": huge, "familyName": "B"});
    let (s, _, _) = t
        .call(Method::POST, "/api/v1/users", Some(&admin), Some(body))
        .await;
    assert_eq!(s, StatusCode::PAYLOAD_TOO_LARGE);
});

store_test!(
    client_request_ids_are_kept_only_when_sane,
    |t: TestApp| async move {
        let with_id = |id: &str| {
            Request::builder()
                .uri("/healthz")
                .header("x-request-id", id)
                .body(Body::empty())
                .unwrap()
        };
        let (_, h, _) = t.send(with_id("lms-7f3a.42")).await;
        assert_eq!(
            h["x-request-id"], "lms-7f3a.42",
            "a caller's id is kept for tracing across systems"
        );
        let (_, h, _) = t.send(with_id("<script>alert(1)</script>")).await;
        let replaced = h["x-request-id"].to_str().unwrap();
        assert!(
            !replaced.contains('<') && replaced.len() == 36,
            "replaced by a UUID: {replaced}"
        );
    }
);
