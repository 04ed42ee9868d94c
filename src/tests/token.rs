//! The token endpoint: success with both client authentication methods, every
//! RFC 6749 §5.2 error, and the issued JWT checked by an independent library
//! (`jsonwebtoken`) against the published JWKS.

use super::*;
use base64::Engine;

fn basic(id: &str, secret: &str) -> String {
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{id}:{secret}"))
    )
}

store_test!(
    issues_es256_jwt_verified_against_jwks_by_jsonwebtoken,
    |t: TestApp| async move {
        let (id, secret) = t
            .client_using(
                "client_secret_basic",
                Some("auditor"),
                None,
                &["audit.read", "users.read"],
            )
            .await;
        let (status, headers, body) = t
            .form(
                "/oauth2/token",
                "grant_type=client_credentials&scope=users.read",
                Some(&basic(&id, &secret)),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert_eq!(headers[header::CACHE_CONTROL], "no-store");
        assert_eq!(body["token_type"], "Bearer");
        assert_eq!(body["scope"], "users.read");
        assert_eq!(body["expires_in"], 900);
        let token = body["access_token"].as_str().unwrap();

        let (status, headers, jwks) = t.call(Method::GET, "/oauth2/jwks", None, None).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(headers[header::CONTENT_TYPE], "application/jwk-set+json");
        let set: jsonwebtoken::jwk::JwkSet = serde_json::from_value(jwks).unwrap();
        let header = jsonwebtoken::decode_header(token).unwrap();
        assert_eq!(header.alg, jsonwebtoken::Algorithm::ES256);
        assert_eq!(header.typ.as_deref(), Some("at+jwt"));
        let jwk = set
            .find(header.kid.as_deref().unwrap())
            .expect("kid published in JWKS");
        let key = jsonwebtoken::DecodingKey::from_jwk(jwk).unwrap();
        let mut validation = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::ES256);
        validation.set_issuer(&["http://hub.test"]);
        validation.set_audience(&["http://hub.test/api/v1"]);
        let claims = jsonwebtoken::decode::<Value>(token, &key, &validation)
            .unwrap()
            .claims;
        assert_eq!(claims["client_id"], id.as_str());
        assert_eq!(claims["sub"], id.as_str());
        assert!(claims["jti"].as_str().unwrap().len() >= 32);

        // client_secret_post works too (for a client registered for it), and no
        // scope means the registered scopes.
        let (post_id, post_secret) = t
            .client(Some("auditor"), None, &["audit.read", "users.read"])
            .await;
        let (status, _, body) = t
            .form(
                "/oauth2/token",
                &format!(
                    "grant_type=client_credentials&client_id={post_id}&client_secret={post_secret}"
                ),
                None,
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert_eq!(body["scope"], "audit.read users.read");
    }
);

store_test!(token_errors_follow_rfc6749, |t: TestApp| async move {
    let (id, secret) = t
        .client_using(
            "client_secret_basic",
            Some("auditor"),
            None,
            &["audit.read"],
        )
        .await;
    let cases: Vec<(String, Option<String>, StatusCode, &str)> = vec![
        (
            format!("grant_type=client_credentials&client_id={id}&client_secret=wrong"),
            None,
            StatusCode::UNAUTHORIZED,
            "invalid_client",
        ),
        (
            "grant_type=client_credentials&client_id=hms_nobody&client_secret=x".into(),
            None,
            StatusCode::UNAUTHORIZED,
            "invalid_client",
        ),
        (
            "grant_type=client_credentials".into(),
            None,
            StatusCode::UNAUTHORIZED,
            "invalid_client",
        ),
        (
            "grant_type=password&username=a&password=b".into(),
            Some(basic(&id, &secret)),
            StatusCode::BAD_REQUEST,
            "unsupported_grant_type",
        ),
        (
            "grant_type=client_credentials&scope=users.write".into(),
            Some(basic(&id, &secret)),
            StatusCode::BAD_REQUEST,
            "invalid_scope",
        ),
        (
            "grant_type=client_credentials&scope=audit.read%22".into(),
            Some(basic(&id, &secret)),
            StatusCode::BAD_REQUEST,
            "invalid_scope",
        ),
        (
            "scope=audit.read".into(),
            Some(basic(&id, &secret)),
            StatusCode::BAD_REQUEST,
            "invalid_request",
        ),
        (
            "grant_type=client_credentials&grant_type=client_credentials".into(),
            Some(basic(&id, &secret)),
            StatusCode::BAD_REQUEST,
            "invalid_request",
        ),
        (
            format!("grant_type=client_credentials&client_secret={secret}"),
            Some(basic(&id, &secret)),
            StatusCode::BAD_REQUEST,
            "invalid_request",
        ),
    ];
    for (body, auth, status, error) in cases {
        let (s, headers, json) = t.form("/oauth2/token", &body, auth.as_deref()).await;
        assert_eq!(
            (s, json["error"].as_str().unwrap_or("")),
            (status, error),
            "{body}: {json}"
        );
        assert!(json["error_description"]
            .as_str()
            .is_some_and(|d| !d.is_empty()));
        assert_eq!(headers[header::CACHE_CONTROL], "no-store");
        assert!(
            !json.to_string().contains(&secret),
            "a secret must never be echoed"
        );
    }
    // §5.2: a failed HTTP Basic attempt answers 401 with a Basic challenge.
    let (s, headers, json) = t
        .form(
            "/oauth2/token",
            "grant_type=client_credentials",
            Some(&basic(&id, "nope")),
        )
        .await;
    assert_eq!(
        (s, json["error"].as_str().unwrap()),
        (StatusCode::UNAUTHORIZED, "invalid_client")
    );
    assert!(headers[header::WWW_AUTHENTICATE]
        .to_str()
        .unwrap()
        .starts_with("Basic"));
    // Another scheme at the token endpoint: 401 with a Basic challenge.
    let (s, headers, json) = t
        .form(
            "/oauth2/token",
            "grant_type=client_credentials",
            Some("Bearer abc"),
        )
        .await;
    assert_eq!(
        (s, json["error"].as_str().unwrap()),
        (StatusCode::UNAUTHORIZED, "invalid_client")
    );
    assert!(headers.contains_key(header::WWW_AUTHENTICATE));
    // Wrong content type.
    let req = Request::builder()
        .method(Method::POST)
        .uri("/oauth2/token")
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from("{}"))
        .unwrap();
    let (s, _, json) = t.send(req).await;
    assert_eq!(
        (s, json["error"].as_str().unwrap()),
        (StatusCode::BAD_REQUEST, "invalid_request")
    );
});

store_test!(
    rotated_or_deleted_client_loses_access,
    |t: TestApp| async move {
        let (id, secret) = t
            .client_using(
                "client_secret_basic",
                Some("auditor"),
                None,
                &["audit.read"],
            )
            .await;
        let origin = crate::audit::Origin::system("test");
        let (_, new_secret) = crate::oidc::rotate_secret(
            t.store(),
            t.app.master_key(),
            t.clock.now_ms(),
            &origin,
            &id,
        )
        .await
        .unwrap();
        t.app.clients().invalidate(&id);
        let (s, _, _) = t
            .form(
                "/oauth2/token",
                "grant_type=client_credentials",
                Some(&basic(&id, &secret)),
            )
            .await;
        assert_eq!(
            s,
            StatusCode::UNAUTHORIZED,
            "the old secret must stop working"
        );
        let (s, _, body) = t
            .form(
                "/oauth2/token",
                "grant_type=client_credentials",
                Some(&basic(&id, &new_secret)),
            )
            .await;
        assert_eq!(s, StatusCode::OK);
        let token = body["access_token"].as_str().unwrap().to_string();
        assert_eq!(
            t.call(Method::GET, "/api/v1/audit", Some(&token), None)
                .await
                .0,
            StatusCode::OK
        );
        crate::oidc::delete_client(t.store(), t.app.audit_key(), t.clock.now_ms(), &origin, &id)
            .await
            .unwrap();
        t.app.clients().invalidate(&id);
        assert_eq!(
            t.call(Method::GET, "/api/v1/audit", Some(&token), None)
                .await
                .0,
            StatusCode::UNAUTHORIZED,
            "a deleted client's tokens stop working"
        );
    }
);

store_test!(
    rs256_tokens_verify_with_jsonwebtoken,
    &[("HMS_ACH__KEYS__ACCESS_TOKEN_ALG", "RS256")],
    |t: TestApp| async move {
        let token = t.token(Some("auditor"), None, &["audit.read"]).await;
        let (_, _, jwks) = t.call(Method::GET, "/oauth2/jwks", None, None).await;
        let set: jsonwebtoken::jwk::JwkSet = serde_json::from_value(jwks).unwrap();
        let header = jsonwebtoken::decode_header(&token).unwrap();
        assert_eq!(header.alg, jsonwebtoken::Algorithm::RS256);
        let key =
            jsonwebtoken::DecodingKey::from_jwk(set.find(header.kid.as_deref().unwrap()).unwrap())
                .unwrap();
        let mut v = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::RS256);
        v.set_audience(&["http://hub.test/api/v1"]);
        jsonwebtoken::decode::<Value>(&token, &key, &v).unwrap();
        assert_eq!(
            t.call(Method::GET, "/api/v1/audit", Some(&token), None)
                .await
                .0,
            StatusCode::OK
        );
    }
);
