//! Nothing acknowledged is lost (issue 13): concurrent edits of different fields,
//! conditional writes (`ETag`/`If-Match`), identical grants at once, and a full disk
//! (SQLite's own SQLITE_FULL, made with `max_page_count`) with every kind of write.

use super::*;
use futures_util::future::join_all;

fn person(sourced_id: &str) -> Value {
    serde_json::json!({
        "sourcedId": sourced_id, "kinds": ["student"], "givenName": "Ana", "familyName": "Ruiz",
        "affiliations": [{"org": "s1", "role": "student"}]
    })
}

/// POSTs `person(sourced_id)` as `token`: the person every test here starts from.
async fn create_person(
    t: &TestApp,
    token: &str,
    sourced_id: &str,
) -> (StatusCode, HeaderMap, Value) {
    t.call(
        Method::POST,
        "/api/v1/users",
        Some(token),
        Some(person(sourced_id)),
    )
    .await
}

async fn patch(
    t: &TestApp,
    token: &str,
    path: &str,
    body: Value,
    if_match: Option<&str>,
) -> (StatusCode, HeaderMap, Value) {
    let mut req = Request::builder()
        .method(Method::PATCH)
        .uri(path)
        .header(header::AUTHORIZATION, format!("Bearer {token}"))
        .header(header::CONTENT_TYPE, "application/merge-patch+json");
    if let Some(tag) = if_match {
        req = req.header(header::IF_MATCH, tag);
    }
    t.send(req.body(Body::from(body.to_string())).unwrap())
        .await
}

store_test!(
    concurrent_patches_of_different_fields_all_stand,
    |t: TestApp| async move {
        let admin = t.admin_token().await;
        seed_orgs(&t, &admin).await;
        let (s, _, p) = create_person(&t, &admin, "race-1").await;
        assert_eq!(s, StatusCode::CREATED, "{p}");
        let path = format!("/api/v1/users/{}", p["id"].as_str().unwrap());
        // Nine different fields patched at once, five rounds with new values each.
        for round in 0..5 {
            let fields: Vec<(&str, Value)> = vec![
                ("givenName", format!("Given{round}").into()),
                ("familyName", format!("Family{round}").into()),
                ("middleName", format!("Middle{round}").into()),
                ("preferredName", format!("Pref{round}").into()),
                ("email", format!("ana{round}@district.example").into()),
                ("username", format!("ana.r{round}").into()),
                (
                    "identifiers",
                    serde_json::json!({ "sis": format!("S{round}") }),
                ),
                (
                    "identifiers",
                    serde_json::json!({ "state": format!("ST{round}") }),
                ),
                (
                    "identifiers",
                    serde_json::json!({ "employee": format!("E{round}") }),
                ),
            ];
            let answers = join_all(fields.iter().map(|(k, v)| {
                patch(
                    &t,
                    &admin,
                    &path,
                    serde_json::json!({ *k: v.clone() }),
                    None,
                )
            }))
            .await;
            for (s, _, b) in &answers {
                assert_eq!(*s, StatusCode::OK, "{b}");
            }
            let (_, _, now) = t.call(Method::GET, &path, Some(&admin), None).await;
            for (k, v) in &fields {
                match v {
                    Value::Object(m) => {
                        for (id_type, value) in m {
                            assert_eq!(
                                &now[k][id_type], value,
                                "round {round}: {k}.{id_type} was acknowledged and lost: {now}"
                            );
                        }
                    }
                    v => assert_eq!(
                        &now[k], v,
                        "round {round}: {k} was acknowledged and lost: {now}"
                    ),
                }
            }
        }
        // The audit log records exactly what each patch changed: one field each.
        let updates = t.audit_rows("user.update").await;
        assert_eq!(updates.len(), 45);
        for u in &updates {
            let fields: Vec<&String> = u.details.as_object().unwrap().keys().collect();
            assert_eq!(fields.len(), 1, "one field per patch: {}", u.details);
            if let Some(ids) = u.details.get("identifiers") {
                let (from, to) = (
                    ids["from"].as_object().unwrap(),
                    ids["to"].as_object().unwrap(),
                );
                let moved = to.iter().filter(|(k, v)| from.get(*k) != Some(*v)).count();
                assert_eq!(moved, 1, "one identifier changed: {ids}");
            }
        }
    }
);

store_test!(if_match_makes_writes_conditional, |t: TestApp| async move {
    let admin = t.admin_token().await;
    seed_orgs(&t, &admin).await;
    let (_, created_headers, p) = create_person(&t, &admin, "cond-1").await;
    let path = format!("/api/v1/users/{}", p["id"].as_str().unwrap());
    let (s, h, _) = t.call(Method::GET, &path, Some(&admin), None).await;
    assert_eq!(s, StatusCode::OK);
    let tag = h[header::ETAG].to_str().unwrap().to_string();
    assert_eq!(created_headers[header::ETAG].to_str().unwrap(), tag);
    // The tag that was read: the write goes through and the tag moves.
    let (s, h, b) = patch(
        &t,
        &admin,
        &path,
        serde_json::json!({"givenName": "Ann"}),
        Some(&tag),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{b}");
    let new_tag = h[header::ETAG].to_str().unwrap().to_string();
    assert_ne!(new_tag, tag);
    // A stale tag: 412, the current tag in the answer, nothing written.
    let (s, h, b) = patch(
        &t,
        &admin,
        &path,
        serde_json::json!({"givenName": "Lost"}),
        Some(&tag),
    )
    .await;
    assert_eq!(s, StatusCode::PRECONDITION_FAILED, "{b}");
    assert_eq!(b["type"], "urn:hms-ach:problem:precondition-failed");
    assert_eq!(h[header::ETAG].to_str().unwrap(), new_tag);
    let (_, _, now) = t.call(Method::GET, &path, Some(&admin), None).await;
    assert_eq!(now["givenName"], "Ann");
    // `*` matches any current version; a weak tag never does (RFC 9110 §13.1.1).
    let (s, _, _) = patch(
        &t,
        &admin,
        &path,
        serde_json::json!({"givenName": "Star"}),
        Some("*"),
    )
    .await;
    assert_eq!(s, StatusCode::OK);
    let (s, _, _) = patch(
        &t,
        &admin,
        &path,
        serde_json::json!({"givenName": "Weak"}),
        Some(&format!("W/{new_tag}")),
    )
    .await;
    assert_eq!(s, StatusCode::PRECONDITION_FAILED);
    // A lifecycle change moves the tag too.
    let (_, h, _) = t.call(Method::GET, &path, Some(&admin), None).await;
    let before = h[header::ETAG].to_str().unwrap().to_string();
    let (s, h, _) = t
        .call(
            Method::POST,
            &format!("{path}/lifecycle"),
            Some(&admin),
            Some(serde_json::json!({"status": "suspended"})),
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    assert_ne!(h[header::ETAG].to_str().unwrap(), before);

    // Orgs: the same contract.
    let (s, h, org) = t
        .call(Method::GET, "/api/v1/orgs/s1", Some(&admin), None)
        .await;
    assert_eq!(s, StatusCode::OK, "{org}");
    let tag = h[header::ETAG].to_str().unwrap().to_string();
    let org_path = format!("/api/v1/orgs/{}", org["id"].as_str().unwrap());
    let (s, _, b) = patch(
        &t,
        &admin,
        &org_path,
        serde_json::json!({"name": "North High"}),
        Some(&tag),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{b}");
    let (s, _, _) = patch(
        &t,
        &admin,
        &org_path,
        serde_json::json!({"name": "Lost"}),
        Some(&tag),
    )
    .await;
    assert_eq!(s, StatusCode::PRECONDITION_FAILED);
    let (_, _, org) = t.call(Method::GET, &org_path, Some(&admin), None).await;
    assert_eq!(org["name"], "North High");
});

store_test!(
    concurrent_org_patches_of_different_fields_all_stand,
    |t: TestApp| async move {
        let admin = t.admin_token().await;
        seed_orgs(&t, &admin).await;
        let (_, _, org) = t
            .call(Method::GET, "/api/v1/orgs/s2", Some(&admin), None)
            .await;
        let path = format!("/api/v1/orgs/{}", org["id"].as_str().unwrap());
        let bodies = [
            serde_json::json!({"name": "South High"}),
            serde_json::json!({"identifier": "NCES-0042"}),
        ];
        for _ in 0..5 {
            let answers = join_all(
                bodies
                    .iter()
                    .map(|b| patch(&t, &admin, &path, b.clone(), None)),
            )
            .await;
            for (s, _, b) in &answers {
                assert_eq!(*s, StatusCode::OK, "{b}");
            }
        }
        let (_, _, org) = t.call(Method::GET, &path, Some(&admin), None).await;
        assert_eq!(org["name"], "South High");
        assert_eq!(org["identifier"], "NCES-0042");
    }
);

store_test!(
    identical_role_grants_at_once_give_one_assignment,
    |t: TestApp| async move {
        let admin = t.admin_token().await;
        seed_orgs(&t, &admin).await;
        let (_, _, p) = create_person(&t, &admin, "grant-1").await;
        let path = format!("/api/v1/users/{}/roles", p["id"].as_str().unwrap());
        let grant = serde_json::json!({"role": "approver", "org": "s1"});
        let assigned_before = t.audit_rows("role.assign").await.len();
        let answers = join_all(
            (0..30).map(|_| t.call(Method::POST, &path, Some(&admin), Some(grant.clone()))),
        )
        .await;
        let ids: std::collections::BTreeSet<String> = answers
            .iter()
            .map(|(s, _, b)| {
                assert_eq!(
                    *s,
                    StatusCode::CREATED,
                    "the same answer on both databases: {b}"
                );
                b["id"].as_str().unwrap().to_string()
            })
            .collect();
        assert_eq!(ids.len(), 1, "one assignment for 30 identical grants");
        let (_, _, list) = t.call(Method::GET, &path, Some(&admin), None).await;
        let approver = list["items"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|a| a["role"] == "approver")
            .count();
        assert_eq!(approver, 1, "{list} {answers:?}");
        assert_eq!(t.audit_rows("role.assign").await.len(), assigned_before + 1);
    }
);

/// What a write answered while the disk was full: 2xx (it must survive a restart),
/// or 503 problem+json with `Retry-After` (it must not). Anything else fails.
fn acknowledged(what: &str, s: StatusCode, h: &HeaderMap, b: &Value) -> bool {
    if s.is_success() {
        return true;
    }
    assert_eq!(s, StatusCode::SERVICE_UNAVAILABLE, "{what}: {b}");
    assert_eq!(
        h[header::CONTENT_TYPE],
        "application/problem+json",
        "{what}"
    );
    assert!(h.contains_key(header::RETRY_AFTER), "{what}");
    assert_eq!(b["type"], "urn:hms-ach:problem:unavailable", "{what}: {b}");
    false
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn disk_full_on_sqlite_acknowledges_only_what_it_keeps() {
    let t = TestApp::sqlite().await;
    let admin = t.admin_token().await;
    seed_orgs(&t, &admin).await;
    let (_, _, p) = create_person(&t, &admin, "keeper").await;
    let pid = p["id"].as_str().unwrap().to_string();
    let user_path = format!("/api/v1/users/{pid}");
    let origin = crate::audit::Origin::system("test");
    let up = crate::directory::get_person(t.store(), &pid).await.unwrap();
    crate::authn::set_password(&t.app, &up, "correct horse battery staple", false, &origin)
        .await
        .unwrap();

    // The disk fills up: a few pages more than the database has now.
    let pages = t.store().sqlite_pages().await.unwrap();
    t.store().limit_sqlite_pages(Some(pages + 4)).await.unwrap();
    let mut created = Vec::new();
    let mut refused = Vec::new();
    for i in 0..2000 {
        let sid = format!("fill-{i}");
        let mut body = person(&sid);
        body["givenName"] = "x".repeat(100).into();
        let (s, h, b) = t
            .call(Method::POST, "/api/v1/users", Some(&admin), Some(body))
            .await;
        if acknowledged("create", s, &h, &b) {
            created.push(sid);
        } else {
            refused.push(sid);
            break;
        }
    }
    assert!(!refused.is_empty(), "the database never filled up");

    // Every kind of write, while full: acknowledged only if kept.
    let (s, h, b) = create_person(&t, &admin, "while-full").await;
    if acknowledged("create", s, &h, &b) {
        created.push("while-full".into())
    } else {
        refused.push("while-full".into())
    }
    let (s, h, b) = patch(
        &t,
        &admin,
        &user_path,
        serde_json::json!({"identifiers": {"sis": "L-1"}, "preferredName": "x".repeat(100)}),
        None,
    )
    .await;
    let patched = acknowledged("patch", s, &h, &b);
    let (s, h, b) = t
        .call(
            Method::POST,
            &format!("{user_path}/roles"),
            Some(&admin),
            Some(serde_json::json!({"role": "approver", "org": "s1"})),
        )
        .await;
    let granted = acknowledged("role grant", s, &h, &b);
    let (s, h, b) = t.call(Method::POST, "/api/v1/clients", Some(&admin), Some(serde_json::json!({"name": "Full disk app", "grant_types": ["client_credentials"], "scopes": ["users.read"]}))).await;
    let client = acknowledged("client create", s, &h, &b).then(|| {
        (
            b["client_id"].as_str().unwrap().to_string(),
            b["client_secret"].as_str().unwrap().to_string(),
        )
    });
    let (s, h, b) = t
        .call(
            Method::POST,
            &format!("{user_path}/lifecycle"),
            Some(&admin),
            Some(serde_json::json!({"status": "suspended", "reason": "x".repeat(400)})),
        )
        .await;
    let suspended = acknowledged("lifecycle", s, &h, &b);
    let rotated = match crate::oidc::rotate_keys(
        t.store(),
        t.app.master_key(),
        t.clock.now_ms(),
        3600,
        &origin,
    )
    .await
    {
        Ok(keys) => !keys.is_empty(),
        Err(e) => {
            assert!(
                crate::error::transient_reason(&e).is_some(),
                "key rotation: {e}"
            );
            false
        }
    };
    let signin = crate::authn::sign_in(&t.app, "not-a-user", "wrong", &origin).await;
    match &signin {
        Err(crate::authn::AuthnError::InvalidCredentials) => {}
        Err(e) => assert!(crate::error::transient_reason(e).is_some(), "sign-in: {e}"),
        Ok(_) => panic!("a wrong password signed in"),
    }
    let (s, _, body) = t
        .send(Request::get("/readyz").body(Body::empty()).unwrap())
        .await;
    assert_eq!(s, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    // problem+json (as every error), the reason in `detail`.
    assert!(
        body["detail"].as_str().unwrap().contains("disk full"),
        "{body}"
    );

    // Space comes back: writes succeed again by themselves.
    t.store().limit_sqlite_pages(None).await.unwrap();
    let (s, _, b) = create_person(&t, &admin, "after").await;
    assert_eq!(s, StatusCode::CREATED, "{b}");
    created.push("after".into());
    // The probe's verdict stands two seconds; then it writes again.
    t.clock.advance_secs(3);
    let (s, _, _) = t
        .send(Request::get("/readyz").body(Body::empty()).unwrap())
        .await;
    assert_eq!(s, StatusCode::OK);

    // After a restart, exactly what was acknowledged is there.
    let t = t.restart().await;
    let admin = t.admin_token().await;
    for sid in &created {
        let (s, _, b) = t
            .call(
                Method::GET,
                &format!("/api/v1/users/{sid}"),
                Some(&admin),
                None,
            )
            .await;
        assert_eq!(s, StatusCode::OK, "acknowledged {sid} lost: {b}");
    }
    for sid in &refused {
        let (s, _, _) = t
            .call(
                Method::GET,
                &format!("/api/v1/users/{sid}"),
                Some(&admin),
                None,
            )
            .await;
        assert_eq!(s, StatusCode::NOT_FOUND, "refused {sid} was stored anyway");
    }
    let (_, _, now) = t.call(Method::GET, &user_path, Some(&admin), None).await;
    assert_eq!(now["identifiers"].get("sis").is_some(), patched, "{now}");
    assert_eq!(now["status"] == "suspended", suspended, "{now}");
    let (_, _, roles) = t
        .call(
            Method::GET,
            &format!("{user_path}/roles"),
            Some(&admin),
            None,
        )
        .await;
    let approver = roles["items"]
        .as_array()
        .unwrap()
        .iter()
        .any(|a| a["role"] == "approver");
    assert_eq!(approver, granted, "{roles}");
    if let Some((id, secret)) = client {
        let (s, _, b) = t
            .form(
                "/oauth2/token",
                "grant_type=client_credentials",
                Some(&super::basic_auth(&id, &secret)),
            )
            .await;
        assert_eq!(
            s,
            StatusCode::OK,
            "an acknowledged client must work after a restart: {b}"
        );
    }
    let keys = crate::oidc::list_keys(t.store()).await.unwrap();
    assert_eq!(keys.iter().any(|k| k.2 == "next"), rotated);
    let report = crate::audit::verify_chain(t.store(), t.app.audit_key())
        .await
        .unwrap();
    assert!(report.is_intact(), "{:?}", report.problems);
}
