//! Every error in the route's own form and naming its field (issue 13, defect 7):
//! what no handler wrote (405, 413, 414, 431, a path id that is not UTF-8) is
//! problem+json; a missing field, a wrong type in a PATCH and a bad query parameter
//! are named by field, never by value.

use super::input_rule::seed_person;
use super::*;

store_test!(
    a_path_id_that_is_not_utf8_is_a_problem_naming_it,
    |t: TestApp| async move {
        let admin = t.admin_token().await;
        for path in [
            "/api/v1/users/%FF",
            "/api/v1/orgs/%C3%28",
            "/api/v1/users/%FF/roles",
        ] {
            let (s, h, b) = t.call(Method::GET, path, Some(&admin), None).await;
            assert_eq!(s, StatusCode::BAD_REQUEST, "{path}: {b}");
            assert_eq!(h[header::CONTENT_TYPE], "application/problem+json");
            assert_eq!(b["errors"][0]["field"], "id", "{b}");
        }
        let (s, _, b) = t
            .form(
                "/oauth2/token",
                "grant_type=client_credentials&client_id=%FF",
                None,
            )
            .await;
        assert_eq!(s, StatusCode::BAD_REQUEST);
        assert_eq!(b["error"], "invalid_request");
    }
);

store_test!(
    errors_no_handler_wrote_are_problem_json,
    |t: TestApp| async move {
        let admin = t.admin_token().await;
        seed_person(&t, &admin).await;
        let problem = |s: StatusCode, h: &HeaderMap, b: &Value, want: StatusCode| {
            assert_eq!(s, want, "{b}");
            assert_eq!(h[header::CONTENT_TYPE], "application/problem+json", "{b}");
            assert_eq!(b["status"], want.as_u16(), "{b}");
            assert!(b["type"]
                .as_str()
                .unwrap()
                .starts_with("urn:hms-ach:problem:"));
        };
        // 405 keeps Allow.
        let (s, h, b) = t
            .call(Method::DELETE, "/api/v1/users", Some(&admin), None)
            .await;
        problem(s, &h, &b, StatusCode::METHOD_NOT_ALLOWED);
        let allow = h[header::ALLOW].to_str().unwrap();
        assert!(allow.contains("GET") && allow.contains("POST"), "{allow}");
        // The token endpoint answers in its own JSON.
        let (s, h, b) = t.call(Method::GET, "/oauth2/token", None, None).await;
        assert_eq!(s, StatusCode::METHOD_NOT_ALLOWED);
        assert!(h.contains_key(header::ALLOW));
        assert_eq!(b["error"], "invalid_request");
        // 413 from Content-Length, before the body is read.
        let limit = t.app.config().server.request_body_limit_bytes;
        let req = Request::builder()
            .method(Method::POST)
            .uri("/api/v1/users")
            .header(header::AUTHORIZATION, format!("Bearer {admin}"))
            .header(header::CONTENT_TYPE, "application/json")
            .header(header::CONTENT_LENGTH, limit + 1)
            .body(Body::from(vec![b' '; limit + 1]))
            .unwrap();
        let (s, h, b) = t.send(req).await;
        problem(s, &h, &b, StatusCode::PAYLOAD_TOO_LARGE);
        // 414 and 431.
        let long = format!("/api/v1/users?org={}", "a".repeat(20 * 1024));
        let (s, h, b) = t.call(Method::GET, &long, Some(&admin), None).await;
        problem(s, &h, &b, StatusCode::URI_TOO_LONG);
        let req = Request::builder()
            .uri("/api/v1/users")
            .header(header::AUTHORIZATION, format!("Bearer {admin}"))
            .header("x-filler", "a".repeat(70 * 1024))
            .body(Body::empty())
            .unwrap();
        let (s, h, b) = t.send(req).await;
        problem(s, &h, &b, StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE);
        // The unknown route stays problem+json.
        let (s, h, b) = t.call(Method::GET, "/nowhere", None, None).await;
        problem(s, &h, &b, StatusCode::NOT_FOUND);
        // A browser gets the HTML error page for a form the page cannot read.
        let (s, h, _) = t.form("/login/discover", "x=1", None).await;
        assert!(s.is_client_error(), "{s}");
        assert!(
            h[header::CONTENT_TYPE]
                .to_str()
                .unwrap()
                .starts_with("text/html"),
            "{h:?}"
        );
    }
);

store_test!(
    validation_errors_name_the_field_not_the_value,
    |t: TestApp| async move {
        let admin = t.admin_token().await;
        seed_person(&t, &admin).await;
        let field_of = |b: &Value| b["errors"][0]["field"].as_str().unwrap_or("").to_string();
        // A missing field is named.
        let (s, _, b) = t
            .call(
                Method::POST,
                "/api/v1/users",
                Some(&admin),
                Some(
                    serde_json::json!({"kinds": ["student"], "givenName": "A", "familyName": "B"}),
                ),
            )
            .await;
        assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{b}");
        assert_eq!(field_of(&b), "sourcedId", "{b}");
        assert!(!b["errors"][0]["reason"]
            .as_str()
            .unwrap()
            .contains(" at line "));
        let (s, _, b) = t
            .call(
                Method::POST,
                "/api/v1/users",
                Some(&admin),
                Some(serde_json::json!({
                    "sourcedId": "u9", "kinds": ["student"], "givenName": "A", "familyName": "B",
                    "affiliations": [{"org": "s1"}]
                })),
            )
            .await;
        assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{b}");
        assert_eq!(field_of(&b), "affiliations[0].role", "{b}");
        let (s, _, b) = t
            .call(
                Method::POST,
                "/api/v1/users/u1/lifecycle",
                Some(&admin),
                Some(serde_json::json!({"reason": "x"})),
            )
            .await;
        assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{b}");
        assert_eq!(field_of(&b), "status", "{b}");
        // A wrong type in a PATCH names the field, not the value.
        for (path, patch, field) in [
            (
                "/api/v1/users/u1",
                serde_json::json!({"givenName": 5}),
                "givenName",
            ),
            (
                "/api/v1/users/u1",
                serde_json::json!({"affiliations": [{"org": "s1", "role": 7}]}),
                "affiliations[0].role",
            ),
            (
                "/api/v1/orgs/s1",
                serde_json::json!({"name": 12345}),
                "name",
            ),
            (
                "/api/v1/orgs/s1",
                serde_json::json!({"colour": "red"}),
                "colour",
            ),
        ] {
            let (s, _, b) = t.call(Method::PATCH, path, Some(&admin), Some(patch)).await;
            assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{b}");
            assert_eq!(field_of(&b), field, "{b}");
        }
        let (id, _) = t.client(None, None, &["users.read"]).await;
        let (s, _, b) = t
            .call(
                Method::PATCH,
                &format!("/api/v1/clients/{id}"),
                Some(&admin),
                Some(serde_json::json!({"redirect_uris": 5})),
            )
            .await;
        assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{b}");
        assert_eq!(field_of(&b), "redirect_uris", "{b}");
        // A query parameter of the wrong type or unknown is named.
        let (s, _, b) = t
            .call(Method::GET, "/api/v1/users?limit=many", Some(&admin), None)
            .await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{b}");
        assert_eq!(field_of(&b), "limit", "{b}");
        let (s, _, b) = t
            .call(Method::GET, "/api/v1/audit?colour=red", Some(&admin), None)
            .await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{b}");
        assert_eq!(field_of(&b), "colour", "{b}");
    }
);
