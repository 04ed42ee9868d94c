//! Client authentication: the registered method is enforced (RFC 6749 §2.3), and
//! `private_key_jwt` and public clients get no secret.

use super::*;

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
