//! `/api/v1/clients`: register, read, patch, rotate and delete relying parties.

use super::*;

store_test!(
    admins_manage_relying_parties_through_the_api,
    |t: TestApp| async move {
        let admin = t.admin_token().await;
        let body = serde_json::json!({
            "name": "District LMS", "grant_types": ["authorization_code", "refresh_token"],
            "scopes": ["openid", "profile", "email"], "redirect_uris": ["https://lms.example/cb"],
            "post_logout_redirect_uris": ["https://lms.example/"], "first_party": true,
            "id_token_signed_response_alg": "ES256", "backchannel_logout_uri": "https://lms.example/bcl",
        });
        let (s, _, c) = t
            .call(Method::POST, "/api/v1/clients", Some(&admin), Some(body))
            .await;
        assert_eq!(s, StatusCode::CREATED, "{c}");
        let id = c["client_id"].as_str().unwrap().to_string();
        assert!(c["client_secret"].as_str().unwrap().len() >= 43);
        assert_eq!(c["require_pkce"], true);

        // Every problem named, none written.
        let bad = serde_json::json!({ "name": "", "grant_types": ["implicit"], "scopes": ["openid"], "redirect_uris": ["http://lms.example/cb"], "colour": "red" });
        let (s, _, e) = t
            .call(Method::POST, "/api/v1/clients", Some(&admin), Some(bad))
            .await;
        assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{e}");
        assert!(e.to_string().contains("colour"), "{e}");
        let bad = serde_json::json!({ "name": "", "grant_types": ["implicit"], "scopes": ["openid"], "redirect_uris": ["http://lms.example/cb"] });
        let (s, _, e) = t
            .call(Method::POST, "/api/v1/clients", Some(&admin), Some(bad))
            .await;
        assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{e}");
        let text = e.to_string();
        for field in ["name", "grant", "redirect_uris"] {
            assert!(text.contains(field), "{field} in {text}");
        }

        // Patch: a new redirect URI; the change is audited with before/after.
        let (s, _, c) = t.send(Request::builder().method(Method::PATCH).uri(format!("/api/v1/clients/{id}")).header(header::AUTHORIZATION, format!("Bearer {admin}")).header(header::CONTENT_TYPE, "application/merge-patch+json").body(Body::from(r#"{"redirect_uris":["https://lms.example/cb2"],"backchannel_logout_uri":null}"#)).unwrap()).await;
        assert_eq!(s, StatusCode::OK, "{c}");
        assert_eq!(
            c["redirect_uris"],
            serde_json::json!(["https://lms.example/cb2"])
        );
        assert!(c["backchannel_logout_uri"].is_null());
        let rows = t.audit_rows("client.update").await;
        assert_eq!(rows.len(), 1);
        assert!(rows[0].details.to_string().contains("cb2"));

        let (s, _, r) = t
            .call(
                Method::POST,
                &format!("/api/v1/clients/{id}/rotate-secret"),
                Some(&admin),
                None,
            )
            .await;
        assert_eq!(s, StatusCode::OK, "{r}");
        assert!(r["client_secret"].is_string());

        // Only hub admins: an auditor token cannot write.
        let reader = t.token(Some("auditor"), None, &["clients.read"]).await;
        let (s, _, _) = t
            .call(
                Method::GET,
                &format!("/api/v1/clients/{id}"),
                Some(&reader),
                None,
            )
            .await;
        assert_eq!(
            s,
            StatusCode::FORBIDDEN,
            "auditors hold no clients permission"
        );
        let (s, _, _) = t
            .call(
                Method::DELETE,
                &format!("/api/v1/clients/{id}"),
                Some(&admin),
                None,
            )
            .await;
        assert_eq!(s, StatusCode::NO_CONTENT);
        let (s, _, _) = t
            .call(
                Method::GET,
                &format!("/api/v1/clients/{id}"),
                Some(&admin),
                None,
            )
            .await;
        assert_eq!(s, StatusCode::NOT_FOUND);
    }
);
