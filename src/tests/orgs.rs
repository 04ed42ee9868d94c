//! /api/v1/orgs: the tree's shape rules, idempotent upsert, merge patch.

use super::*;

store_test!(org_tree_rules_and_idempotence, |t: TestApp| async move {
    let admin = t.admin_token().await;
    seed_orgs(&t, &admin).await;
    let bad = [
        (
            serde_json::json!({"sourcedId": "x", "kind": "school", "name": "No parent"}),
            "parent",
        ),
        (
            serde_json::json!({"sourcedId": "x", "kind": "district", "name": "D", "parent": "d1"}),
            "parent",
        ),
        (
            serde_json::json!({"sourcedId": "x", "kind": "school", "name": "S", "parent": "s1"}),
            "parent",
        ),
        (
            serde_json::json!({"sourcedId": "x", "kind": "campus", "name": "C", "parent": "d1"}),
            "kind",
        ),
        (
            serde_json::json!({"sourcedId": "x", "kind": "school", "name": "", "parent": "d1"}),
            "name",
        ),
    ];
    for (body, field) in bad {
        let (s, _, p) = t
            .call(Method::POST, "/api/v1/orgs", Some(&admin), Some(body))
            .await;
        assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{p}");
        assert!(
            p["errors"]
                .as_array()
                .unwrap()
                .iter()
                .any(|e| e["field"] == field),
            "{p}"
        );
    }
    let body =
        serde_json::json!({"sourcedId": "s1", "kind": "school", "name": "Org s1", "parent": "d1"});
    let (s, _, again) = t
        .call(Method::POST, "/api/v1/orgs", Some(&admin), Some(body))
        .await;
    assert_eq!(s, StatusCode::OK, "re-sending an org changes nothing");
    let (s, _, patched) = t
        .call(
            Method::PATCH,
            "/api/v1/orgs/s1",
            Some(&admin),
            Some(serde_json::json!({"name": "Riverside High"})),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{patched}");
    assert_eq!(patched["name"], "Riverside High");
    assert_eq!(patched["id"], again["id"]);
    let (s, _, page) = t
        .call(Method::GET, "/api/v1/orgs?kind=school", Some(&admin), None)
        .await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(page["items"].as_array().unwrap().len(), 2);
    let ancestry = crate::directory::org_ancestry(
        t.store(),
        &crate::directory::resolve_org(t.store(), "dep1")
            .await
            .unwrap()
            .unwrap(),
    )
    .await
    .unwrap();
    assert_eq!(ancestry.len(), 3, "department → school → district");
});
