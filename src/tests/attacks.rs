//! Attempts to step outside one's org or role, one test each.

use super::*;

store_test!(
    school_registrar_cannot_take_over_another_school,
    |t: TestApp| async move {
        let admin = t.admin_token().await;
        seed_orgs(&t, &admin).await;
        let reg = t
            .token(Some("registrar"), Some("s1"), &["orgs.write", "orgs.read"])
            .await;
        // Re-parent school s2 under s1 by "creating" it as a program of s1.
        let body = serde_json::json!({"sourcedId": "s2", "kind": "program", "name": "mine now", "parent": "s1"});
        let (s, _, _) = t
            .call(Method::POST, "/api/v1/orgs", Some(&reg), Some(body))
            .await;
        assert_eq!(s, StatusCode::FORBIDDEN);
        let (_, _, s2) = t
            .call(Method::GET, "/api/v1/orgs/s2", Some(&admin), None)
            .await;
        assert_eq!(s2["kind"], "school", "s2 is untouched");
        // Nor make its own school a root, out of the district's reach.
        let (s, _, _) = t
            .call(
                Method::PATCH,
                "/api/v1/orgs/s1",
                Some(&reg),
                Some(serde_json::json!({"kind": "district", "parent": null})),
            )
            .await;
        assert_eq!(s, StatusCode::FORBIDDEN);
        // But it may rename its own school (parent unchanged).
        let (s, _, b) = t
            .call(
                Method::PATCH,
                "/api/v1/orgs/s1",
                Some(&reg),
                Some(serde_json::json!({"name": "Renamed"})),
            )
            .await;
        assert_eq!(s, StatusCode::OK, "{b}");
    }
);

store_test!(
    org_cycles_and_orphaned_children_are_refused,
    |t: TestApp| async move {
        let admin = t.admin_token().await;
        seed_orgs(&t, &admin).await;
        let body =
            serde_json::json!({"sourcedId": "p1", "kind": "program", "name": "P", "parent": "s1"});
        assert_eq!(
            t.call(Method::POST, "/api/v1/orgs", Some(&admin), Some(body))
                .await
                .0,
            StatusCode::CREATED
        );
        // s1 → department under its own program p1 would be a loop.
        let (s, _, p) = t
            .call(
                Method::PATCH,
                "/api/v1/orgs/s1",
                Some(&admin),
                Some(serde_json::json!({"kind": "department", "parent": "p1"})),
            )
            .await;
        assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{p}");
        // A school with a department cannot become a clinical site (departments cannot sit under one).
        let (s, _, p) = t
            .call(
                Method::PATCH,
                "/api/v1/orgs/s1",
                Some(&admin),
                Some(serde_json::json!({"kind": "clinical_site"})),
            )
            .await;
        assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{p}");
        assert!(
            p["errors"][0]["reason"].as_str().unwrap().contains("dep1"),
            "{p}"
        );
    }
);

store_test!(
    scoped_approver_cannot_grant_privileged_roles,
    |t: TestApp| async move {
        let admin = t.admin_token().await;
        seed_orgs(&t, &admin).await;
        let body = serde_json::json!({"sourcedId": "t1", "kinds": ["teacher"], "givenName": "T", "familyName": "One", "affiliations": [{"org": "dep1", "role": "teacher"}]});
        assert_eq!(
            t.call(Method::POST, "/api/v1/users", Some(&admin), Some(body))
                .await
                .0,
            StatusCode::CREATED
        );
        let approver = t
            .token(
                Some("approver"),
                Some("dep1"),
                &["roles.write", "roles.read"],
            )
            .await;
        let grant = |role: &str| serde_json::json!({"role": role, "org": "dep1"});
        let (s, _, _) = t
            .call(
                Method::POST,
                "/api/v1/users/t1/roles",
                Some(&approver),
                Some(grant("hub-admin")),
            )
            .await;
        assert_eq!(
            s,
            StatusCode::FORBIDDEN,
            "privileged roles need a hub-wide grant"
        );
        let (s, _, b) = t
            .call(
                Method::POST,
                "/api/v1/users/t1/roles",
                Some(&approver),
                Some(grant("compliance-officer")),
            )
            .await;
        assert_eq!(s, StatusCode::CREATED, "{b}");
        let (s, _, _) = t
            .call(
                Method::POST,
                "/api/v1/users/t1/roles",
                Some(&approver),
                Some(grant("no-such-role")),
            )
            .await;
        assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY);
    }
);

store_test!(
    records_outside_ones_orgs_cannot_be_probed,
    |t: TestApp| async move {
        let admin = t.admin_token().await;
        seed_orgs(&t, &admin).await;
        let body = serde_json::json!({"sourcedId": "x2", "kinds": ["student"], "givenName": "X", "familyName": "Two", "affiliations": [{"org": "s2", "role": "student"}]});
        assert_eq!(
            t.call(Method::POST, "/api/v1/users", Some(&admin), Some(body))
                .await
                .0,
            StatusCode::CREATED
        );
        let reg = t
            .token(
                Some("registrar"),
                Some("s1"),
                &["users.read", "users.write"],
            )
            .await;
        let (exists, _, a) = t
            .call(Method::GET, "/api/v1/users/x2", Some(&reg), None)
            .await;
        let (missing, _, b) = t
            .call(Method::GET, "/api/v1/users/nobody-here", Some(&reg), None)
            .await;
        assert_eq!(
            (exists, missing),
            (StatusCode::FORBIDDEN, StatusCode::FORBIDDEN),
            "the same answer whether or not the person exists"
        );
        assert_eq!(a, b, "and the same body");
        assert_eq!(
            t.call(Method::GET, "/api/v1/users/nobody-here", Some(&admin), None)
                .await
                .0,
            StatusCode::NOT_FOUND
        );
    }
);

store_test!(
    status_moves_only_through_lifecycle_and_bodies_must_be_json,
    |t: TestApp| async move {
        let admin = t.admin_token().await;
        let body = serde_json::json!({"sourcedId": "s-1", "kinds": ["staff"], "givenName": "S", "familyName": "One"});
        assert_eq!(
            t.call(
                Method::POST,
                "/api/v1/users",
                Some(&admin),
                Some(body.clone())
            )
            .await
            .0,
            StatusCode::CREATED
        );
        let mut again = body;
        again["status"] = "graduated".into();
        let (s, _, p) = t
            .call(Method::POST, "/api/v1/users", Some(&admin), Some(again))
            .await;
        assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{p}");
        assert!(p.to_string().contains("lifecycle"));
        let req = Request::builder()
            .method(Method::POST)
            .uri("/api/v1/users")
            .header(header::AUTHORIZATION, format!("Bearer {admin}"))
            .header(header::CONTENT_TYPE, "text/plain")
            .body(Body::from("{}"))
            .unwrap();
        assert_eq!(t.send(req).await.0, StatusCode::UNSUPPORTED_MEDIA_TYPE);
        let req = Request::builder()
            .method(Method::PATCH)
            .uri("/api/v1/users/s-1")
            .header(header::AUTHORIZATION, format!("Bearer {admin}"))
            .header(header::CONTENT_TYPE, "text/plain")
            .body(Body::from("{}"))
            .unwrap();
        assert_eq!(t.send(req).await.0, StatusCode::UNSUPPORTED_MEDIA_TYPE);
    }
);
