//! /api/v1/users: idempotent create-or-update, validation, conflicts, merge patch,
//! lifecycle, filters and cursor paging.

use super::*;

fn ana() -> Value {
    serde_json::json!({
        "sourcedId": "stu-1", "kinds": ["student"], "givenName": "Ana", "familyName": "Ruiz",
        "email": "ana.ruiz@District.Example", "username": "Ana.Ruiz",
        "identifiers": {"sis": "S100", "state": "CA123"},
        "affiliations": [{"org": "s1", "role": "student", "primary": true, "beginDate": "2026-08-15"}]
    })
}

store_test!(post_users_is_idempotent, |t: TestApp| async move {
    let admin = t.admin_token().await;
    seed_orgs(&t, &admin).await;
    let (s, h, first) = t
        .call(Method::POST, "/api/v1/users", Some(&admin), Some(ana()))
        .await;
    assert_eq!(s, StatusCode::CREATED, "{first}");
    assert_eq!(
        h[header::LOCATION],
        format!("/api/v1/users/{}", first["id"].as_str().unwrap())
    );
    assert_eq!(first["email"], "ana.ruiz@district.example");
    assert_eq!(first["username"], "ana.ruiz");
    assert_eq!(first["status"], "active");
    assert_eq!(first["affiliations"][0]["orgSourcedId"], "s1");
    let creates = t.audit_rows("user.create").await.len();
    t.clock.advance_secs(5);
    let (s, _, second) = t
        .call(Method::POST, "/api/v1/users", Some(&admin), Some(ana()))
        .await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(second, first, "the same request twice changes nothing");
    assert_eq!(t.audit_rows("user.create").await.len(), creates);
    assert!(
        t.audit_rows("user.update").await.is_empty(),
        "no audit event for a no-op"
    );
    // A real change updates in place and audits what moved.
    let mut changed = ana();
    changed["familyName"] = "Ruiz-Lopez".into();
    let (s, _, third) = t
        .call(Method::POST, "/api/v1/users", Some(&admin), Some(changed))
        .await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(third["id"], first["id"]);
    assert_ne!(third["updatedAt"], first["updatedAt"]);
    let updates = t.audit_rows("user.update").await;
    assert_eq!(updates.len(), 1);
    assert_eq!(updates[0].details["familyName"]["from"], "Ruiz");
    assert_eq!(updates[0].details["familyName"]["to"], "Ruiz-Lopez");
});

store_test!(validation_errors_name_each_field, |t: TestApp| async move {
    let admin = t.admin_token().await;
    seed_orgs(&t, &admin).await;
    let cases: Vec<(Value, &str)> = vec![
        (
            serde_json::json!({"sourcedId": "", "kinds": ["student"], "givenName": "A", "familyName": "B"}),
            "sourcedId",
        ),
        (
            serde_json::json!({"sourcedId": "x", "kinds": [], "givenName": "A", "familyName": "B"}),
            "kinds",
        ),
        (
            serde_json::json!({"sourcedId": "x", "kinds": ["wizard"], "givenName": "A", "familyName": "B"}),
            "kinds",
        ),
        (
            serde_json::json!({"sourcedId": "x", "kinds": ["student"], "givenName": " ", "familyName": "B"}),
            "givenName",
        ),
        (
            serde_json::json!({"sourcedId": "x", "kinds": ["student"], "givenName": "A", "familyName": ""}),
            "familyName",
        ),
        (
            serde_json::json!({"sourcedId": "x", "kinds": ["student"], "givenName": "A", "familyName": "B", "email": "nope"}),
            "email",
        ),
        (
            serde_json::json!({"sourcedId": "x", "kinds": ["student"], "givenName": "A", "familyName": "B", "username": "a b"}),
            "username",
        ),
        (
            serde_json::json!({"sourcedId": "x", "kinds": ["student"], "givenName": "A", "familyName": "B", "status": "retired"}),
            "status",
        ),
        (
            serde_json::json!({"sourcedId": "x", "kinds": ["staff"], "givenName": "A", "familyName": "B", "identifiers": {"npi": "1234567890"}}),
            "identifiers.npi",
        ),
        (
            serde_json::json!({"sourcedId": "x", "kinds": ["staff"], "givenName": "A", "familyName": "B", "identifiers": {"ssn": "1"}}),
            "identifiers.ssn",
        ),
        (
            serde_json::json!({"sourcedId": "x", "kinds": ["staff"], "givenName": "A", "familyName": "B", "affiliations": [{"org": "nowhere", "role": "x"}]}),
            "affiliations[0].org",
        ),
        (
            serde_json::json!({"sourcedId": "x", "kinds": ["staff"], "givenName": "A", "familyName": "B", "affiliations": [{"org": "s1", "role": "x", "beginDate": "2026-13-01"}]}),
            "affiliations[0].beginDate",
        ),
        (
            serde_json::json!({"sourcedId": "x", "kinds": ["staff"], "givenName": "A", "familyName": "B", "affiliations": [{"org": "s1", "role": "x", "beginDate": "2026-09-01", "endDate": "2026-08-01"}]}),
            "affiliations[0].endDate",
        ),
        (
            serde_json::json!({"sourcedId": "x", "kinds": ["staff"], "givenName": "A", "familyName": "B", "affiliations": [{"org": "s1", "role": "x", "primary": true}, {"org": "s2", "role": "x", "primary": true}]}),
            "affiliations",
        ),
        (
            serde_json::json!({"sourcedId": "x", "kinds": ["staff"], "givenName": "A", "familyName": "B", "shoeSize": 9}),
            "shoeSize",
        ),
        (
            serde_json::json!({"sourcedId": "x", "kinds": "student", "givenName": "A", "familyName": "B"}),
            "kinds",
        ),
    ];
    for (body, field) in cases {
        let (s, h, problem) = t
            .call(
                Method::POST,
                "/api/v1/users",
                Some(&admin),
                Some(body.clone()),
            )
            .await;
        assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{body} → {problem}");
        assert_eq!(h[header::CONTENT_TYPE], "application/problem+json");
        let fields: Vec<&str> = problem["errors"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["field"].as_str().unwrap())
            .collect();
        assert!(
            fields.iter().any(|f| f.contains(field)),
            "expected {field} in {problem}"
        );
    }
    // Malformed JSON is a 400.
    let req = Request::builder()
        .method(Method::POST)
        .uri("/api/v1/users")
        .header(header::AUTHORIZATION, format!("Bearer {admin}"))
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from("{\"sourcedId\":"))
        .unwrap();
    assert_eq!(t.send(req).await.0, StatusCode::BAD_REQUEST);
    // Nothing was half-written.
    let (_, _, page) = t
        .call(Method::GET, "/api/v1/users", Some(&admin), None)
        .await;
    assert_eq!(page["items"].as_array().unwrap().len(), 0);
});

store_test!(
    identifier_and_username_clashes_are_409,
    |t: TestApp| async move {
        let admin = t.admin_token().await;
        seed_orgs(&t, &admin).await;
        assert_eq!(
            t.call(Method::POST, "/api/v1/users", Some(&admin), Some(ana()))
                .await
                .0,
            StatusCode::CREATED
        );
        let mut other = ana();
        other["sourcedId"] = "stu-2".into();
        other["username"] = "someone".into();
        let (s, _, p) = t
            .call(
                Method::POST,
                "/api/v1/users",
                Some(&admin),
                Some(other.clone()),
            )
            .await;
        assert_eq!(s, StatusCode::CONFLICT, "{p}");
        assert!(
            p["detail"].as_str().unwrap().contains("another person"),
            "{p}"
        );
        assert!(
            !p["detail"].as_str().unwrap().contains("stu-1"),
            "the holder is not named"
        );
        other["identifiers"] = serde_json::json!({"sis": "S200"});
        other["username"] = "ana.ruiz".into();
        assert_eq!(
            t.call(Method::POST, "/api/v1/users", Some(&admin), Some(other))
                .await
                .0,
            StatusCode::CONFLICT
        );
    }
);

store_test!(
    patch_merges_and_lifecycle_transitions,
    |t: TestApp| async move {
        let admin = t.admin_token().await;
        seed_orgs(&t, &admin).await;
        let (_, _, p) = t
            .call(Method::POST, "/api/v1/users", Some(&admin), Some(ana()))
            .await;
        let id = p["id"].as_str().unwrap().to_string();
        let url = format!("/api/v1/users/{id}");
        let (s, _, p2) = t
            .call(
                Method::PATCH,
                &url,
                Some(&admin),
                Some(serde_json::json!({"preferredName": "Annie", "identifiers": {"state": null}})),
            )
            .await;
        assert_eq!(s, StatusCode::OK, "{p2}");
        assert_eq!(p2["preferredName"], "Annie");
        assert_eq!(p2["identifiers"], serde_json::json!({"sis": "S100"}));
        assert_eq!(p2["givenName"], "Ana");
        let (s, _, e) = t
            .call(
                Method::PATCH,
                &url,
                Some(&admin),
                Some(serde_json::json!({"status": "suspended"})),
            )
            .await;
        assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY);
        assert!(e.to_string().contains("lifecycle"));
        let life = format!("{url}/lifecycle");
        let (s, _, p3) = t
            .call(
                Method::POST,
                &life,
                Some(&admin),
                Some(serde_json::json!({"status": "suspended", "reason": "unpaid fees"})),
            )
            .await;
        assert_eq!(
            (s, p3["status"].as_str().unwrap()),
            (StatusCode::OK, "suspended")
        );
        assert_eq!(p3["statusReason"], "unpaid fees");
        let (s, _, p4) = t
            .call(
                Method::POST,
                &life,
                Some(&admin),
                Some(serde_json::json!({"status": "graduated"})),
            )
            .await;
        assert_eq!(
            (s, p4["status"].as_str().unwrap()),
            (StatusCode::OK, "graduated")
        );
        let (s, _, c) = t
            .call(
                Method::POST,
                &life,
                Some(&admin),
                Some(serde_json::json!({"status": "suspended"})),
            )
            .await;
        assert_eq!(
            s,
            StatusCode::CONFLICT,
            "graduated people cannot be suspended: {c}"
        );
        assert_eq!(t.audit_rows("user.lifecycle").await.len(), 2);
        let (s, _, _) = t
            .call(
                Method::GET,
                "/api/v1/users/does-not-exist",
                Some(&admin),
                None,
            )
            .await;
        assert_eq!(s, StatusCode::NOT_FOUND);
        let (s, _, by_sourced) = t
            .call(Method::GET, "/api/v1/users/stu-1", Some(&admin), None)
            .await;
        assert_eq!(
            (s, by_sourced["id"].as_str().unwrap()),
            (StatusCode::OK, id.as_str())
        );
    }
);

store_test!(list_filters_and_cursor_paging, |t: TestApp| async move {
    let admin = t.admin_token().await;
    seed_orgs(&t, &admin).await;
    for i in 0..7 {
        let (kind, org) = if i % 2 == 0 {
            ("student", "s1")
        } else {
            ("teacher", "dep1")
        };
        let body = serde_json::json!({"sourcedId": format!("p{i}"), "kinds": [kind], "givenName": "P", "familyName": format!("N{i}"), "affiliations": [{"org": org, "role": kind}]});
        assert_eq!(
            t.call(Method::POST, "/api/v1/users", Some(&admin), Some(body))
                .await
                .0,
            StatusCode::CREATED
        );
        t.clock.advance_secs(1);
    }
    let mut seen = Vec::new();
    let mut url = "/api/v1/users?limit=3".to_string();
    loop {
        let (s, _, page) = t.call(Method::GET, &url, Some(&admin), None).await;
        assert_eq!(s, StatusCode::OK, "{page}");
        for p in page["items"].as_array().unwrap() {
            seen.push(p["sourcedId"].as_str().unwrap().to_string());
        }
        match page["nextCursor"].as_str() {
            Some(c) => url = format!("/api/v1/users?limit=3&cursor={c}"),
            None => break,
        }
    }
    assert_eq!(
        seen,
        (0..7).map(|i| format!("p{i}")).collect::<Vec<_>>(),
        "every person once, in update order"
    );
    let count = |v: &Value| v["items"].as_array().unwrap().len();
    assert_eq!(
        count(
            &t.call(
                Method::GET,
                "/api/v1/users?kind=teacher",
                Some(&admin),
                None
            )
            .await
            .2
        ),
        3
    );
    assert_eq!(
        count(
            &t.call(Method::GET, "/api/v1/users?org=s1", Some(&admin), None)
                .await
                .2
        ),
        7,
        "org includes the orgs below it"
    );
    assert_eq!(
        count(
            &t.call(Method::GET, "/api/v1/users?org=dep1", Some(&admin), None)
                .await
                .2
        ),
        3
    );
    assert_eq!(
        count(
            &t.call(
                Method::GET,
                "/api/v1/users?status=suspended",
                Some(&admin),
                None
            )
            .await
            .2
        ),
        0
    );
    let (s, _, _) = t
        .call(Method::GET, "/api/v1/users?limit=1000", Some(&admin), None)
        .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY);
    let (s, _, _) = t
        .call(
            Method::GET,
            "/api/v1/users?updatedSince=yesterday",
            Some(&admin),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY);
    let (s, _, _) = t
        .call(
            Method::GET,
            "/api/v1/users?cursor=garbage",
            Some(&admin),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY);
});

store_test!(
    concurrent_identical_posts_create_one_person,
    |t: TestApp| async move {
        let admin = t.admin_token().await;
        seed_orgs(&t, &admin).await;
        let calls =
            (0..6).map(|_| t.call(Method::POST, "/api/v1/users", Some(&admin), Some(ana())));
        let results = futures_util::future::join_all(calls).await;
        let statuses: Vec<StatusCode> = results.iter().map(|r| r.0).collect();
        assert_eq!(
            statuses
                .iter()
                .filter(|s| **s == StatusCode::CREATED)
                .count(),
            1,
            "{statuses:?}"
        );
        assert!(
            statuses
                .iter()
                .all(|s| *s == StatusCode::CREATED || *s == StatusCode::OK),
            "{statuses:?}"
        );
        let ids: std::collections::HashSet<String> = results
            .iter()
            .map(|r| r.2["id"].as_str().unwrap().to_string())
            .collect();
        assert_eq!(ids.len(), 1, "one person");
        assert_eq!(t.audit_rows("user.create").await.len(), 1);
    }
);
