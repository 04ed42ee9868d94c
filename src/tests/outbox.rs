//! The transactional outbox (issue 16, first part): each committed change to a person
//! or an org is one CloudEvent, numbered per subject without gaps, carrying the
//! resource exactly as the API returns it; a refused or no-op change writes none.

use super::*;

fn ana() -> Value {
    serde_json::json!({
        "sourcedId": "stu-1", "kinds": ["student"], "givenName": "Ana", "familyName": "Ruiz",
        "affiliations": [{"org": "s1", "role": "student", "primary": true}]
    })
}

/// Moves a person through the lifecycle; the status it answered.
async fn lifecycle(t: &TestApp, token: &str, url: &str, body: Value) -> (StatusCode, Value) {
    let (s, _, b) = t
        .call(
            Method::POST,
            &format!("{url}/lifecycle"),
            Some(token),
            Some(body),
        )
        .await;
    (s, b)
}

async fn events(t: &TestApp, token: &str, query: &str) -> Vec<Value> {
    let (s, _, page) = t
        .call(
            Method::GET,
            &format!("/api/v1/events{query}"),
            Some(token),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{page}");
    page["items"].as_array().unwrap().clone()
}

store_test!(
    each_change_is_one_cloudevent_carrying_the_resource,
    |t: TestApp| async move {
        let admin = t.admin_token().await;
        seed_orgs(&t, &admin).await;
        let orgs = events(&t, &admin, "?type=org.hmsach.org.created").await;
        assert_eq!(orgs.len(), 4, "one event per org created: {orgs:?}");

        let (s, _, created) = t
            .call(Method::POST, "/api/v1/users", Some(&admin), Some(ana()))
            .await;
        assert_eq!(s, StatusCode::CREATED, "{created}");
        let id = created["id"].as_str().unwrap().to_string();
        let url = format!("/api/v1/users/{id}");
        // The same request again is a no-op: no event.
        t.call(Method::POST, "/api/v1/users", Some(&admin), Some(ana()))
            .await;
        let (s, _, patched) = t
            .call(
                Method::PATCH,
                &url,
                Some(&admin),
                Some(serde_json::json!({"preferredName": "Annie"})),
            )
            .await;
        assert_eq!(s, StatusCode::OK, "{patched}");
        // Refused changes write nothing: a bad patch and a forbidden transition.
        let (s, _, _) = t
            .call(
                Method::PATCH,
                &url,
                Some(&admin),
                Some(serde_json::json!({"status": "suspended"})),
            )
            .await;
        assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY);
        let suspend = serde_json::json!({"status": "suspended", "reason": "unpaid fees"});
        let (s, suspended) = lifecycle(&t, &admin, &url, suspend).await;
        assert_eq!(s, StatusCode::OK, "{suspended}");
        let (s, _) = lifecycle(&t, &admin, &url, serde_json::json!({"status": "graduated"})).await;
        assert_eq!(s, StatusCode::OK);
        let (s, _) = lifecycle(&t, &admin, &url, serde_json::json!({"status": "suspended"})).await;
        assert_eq!(s, StatusCode::CONFLICT, "graduated people stay graduated");

        let subject = format!("people/{id}");
        let mine = events(&t, &admin, &format!("?subject={subject}")).await;
        let kinds: Vec<&str> = mine.iter().map(|e| e["type"].as_str().unwrap()).collect();
        assert_eq!(
            kinds,
            [
                "org.hmsach.person.created",
                "org.hmsach.person.updated",
                "org.hmsach.person.lifecycle",
                "org.hmsach.person.lifecycle",
            ]
        );
        let sequence: Vec<&str> = mine
            .iter()
            .map(|e| e["sequence"].as_str().unwrap())
            .collect();
        assert_eq!(
            sequence,
            ["1", "2", "3", "4"],
            "numbered per subject, no gap"
        );
        for e in &mine {
            assert_eq!(e["specversion"], "1.0");
            assert_eq!(e["source"], t.app.issuer());
            assert_eq!(e["subject"], subject.as_str());
            assert_eq!(e["datacontenttype"], "application/json");
            assert!(e["time"].as_str().unwrap().ends_with('Z'));
            assert_eq!(e["id"].as_str().unwrap().len(), 36);
        }
        // `data` is the resource as the API returned it at that moment.
        assert_eq!(mine[0]["data"], created);
        assert_eq!(mine[1]["data"], patched);
        assert_eq!(mine[2]["data"], suspended);
        let (_, _, now) = t.call(Method::GET, &url, Some(&admin), None).await;
        assert_eq!(mine[3]["data"], now);
        assert_eq!(now["status"], "graduated");
    }
);

store_test!(
    the_listing_pages_in_commit_order_for_auditors_only,
    |t: TestApp| async move {
        let admin = t.admin_token().await;
        seed_orgs(&t, &admin).await;
        let all = events(&t, &admin, "").await;
        // The first signing keys (ES256, RS256), the admin's API client and its role,
        // then the four orgs.
        let kinds: Vec<&str> = all.iter().map(|e| e["type"].as_str().unwrap()).collect();
        assert_eq!(kinds.len(), 8, "{kinds:?}");
        assert_eq!(
            kinds[..4],
            [
                "org.hmsach.key.created",
                "org.hmsach.key.created",
                "org.hmsach.client.created",
                "org.hmsach.role.granted"
            ]
        );
        assert!(all[..2].iter().all(|k| k["data"]["state"] == "active"
            && k["data"].get("privateKey").is_none()
            && k["subject"].as_str().unwrap().starts_with("keys/")));
        assert_eq!(
            kinds
                .iter()
                .filter(|k| **k == "org.hmsach.org.created")
                .count(),
            4
        );
        assert_eq!(
            kinds
                .iter()
                .filter(|k| **k == "org.hmsach.role.granted")
                .count(),
            1
        );
        // Two at a time, following nextCursor, gives the same events in the same order.
        let mut paged = Vec::new();
        let mut query = "?limit=2".to_string();
        loop {
            let (s, _, page) = t
                .call(
                    Method::GET,
                    &format!("/api/v1/events{query}"),
                    Some(&admin),
                    None,
                )
                .await;
            assert_eq!(s, StatusCode::OK, "{page}");
            paged.extend(page["items"].as_array().unwrap().iter().cloned());
            match page["nextCursor"].as_str() {
                Some(c) => query = format!("?limit=2&cursor={c}"),
                None => break,
            }
        }
        assert_eq!(paged, all);
        let positions: Vec<i64> = all
            .iter()
            .map(|e| e["hmsachseq"].as_i64().unwrap())
            .collect();
        assert!(positions.windows(2).all(|w| w[0] < w[1]), "{positions:?}");
        // Filters are checked; a reader without the audit permission sees nothing.
        let (s, _, e) = t
            .call(
                Method::GET,
                "/api/v1/events?type=person.made",
                Some(&admin),
                None,
            )
            .await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{e}");
        let (s, _, _) = t
            .call(Method::GET, "/api/v1/events?cursor=x", Some(&admin), None)
            .await;
        assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY);
        let auditor = t.token(Some("auditor"), None, &["audit.read"]).await;
        // (Each token's client got a role: compare what was there before them.)
        let before: Vec<Value> = events(&t, &auditor, "")
            .await
            .into_iter()
            .take(all.len())
            .collect();
        assert_eq!(before, all);
        let officer = t
            .token(
                Some("compliance-officer"),
                None,
                &["users.read", "audit.read"],
            )
            .await;
        let (s, _, _) = t
            .call(Method::GET, "/api/v1/events", Some(&officer), None)
            .await;
        assert_eq!(s, StatusCode::FORBIDDEN);
        let (s, _, _) = t.call(Method::GET, "/api/v1/events", None, None).await;
        assert_eq!(s, StatusCode::UNAUTHORIZED);
    }
);

store_test!(
    concurrent_changes_to_one_person_number_their_events_without_gaps,
    |t: TestApp| async move {
        let admin = t.admin_token().await;
        seed_orgs(&t, &admin).await;
        let (_, _, created) = t
            .call(Method::POST, "/api/v1/users", Some(&admin), Some(ana()))
            .await;
        let url = format!("/api/v1/users/{}", created["id"].as_str().unwrap());
        // Eight patches of different fields at once: every one that commits is one event.
        let fields = [
            ("preferredName", "A1"),
            ("email", "ana@district.example"),
            ("username", "ana.r"),
            ("middleName", "M"),
            ("preferredName", "A2"),
            ("familyName", "Ruiz-L"),
            ("givenName", "Anna"),
            ("preferredName", "A3"),
        ];
        let calls = fields.iter().map(|(k, v)| {
            let body = serde_json::json!({ *k: v });
            let t = &t;
            let admin = &admin;
            let url = &url;
            async move { t.call(Method::PATCH, url, Some(admin), Some(body)).await.0 }
        });
        let statuses = futures_util::future::join_all(calls).await;
        let ok = statuses.iter().filter(|s| **s == StatusCode::OK).count();
        assert!(ok >= 1, "{statuses:?}");
        let subject = format!("people/{}", created["id"].as_str().unwrap());
        let mine = events(&t, &admin, &format!("?subject={subject}")).await;
        let sequence: Vec<String> = mine
            .iter()
            .map(|e| e["sequence"].as_str().unwrap().to_string())
            .collect();
        let expected: Vec<String> = (1..=mine.len()).map(|n| n.to_string()).collect();
        assert_eq!(sequence, expected);
        assert_eq!(
            mine.len(),
            1 + ok,
            "one event per committed change: {statuses:?}"
        );
    }
);

store_test!(
    role_grants_extensions_and_revocations_are_events,
    |t: TestApp| async move {
        let admin = t.admin_token().await;
        seed_orgs(&t, &admin).await;
        let (_, _, person) = t
            .call(Method::POST, "/api/v1/users", Some(&admin), Some(ana()))
            .await;
        let roles = format!("/api/v1/users/{}/roles", person["id"].as_str().unwrap());
        let grant = |expires: Option<&str>| {
            let mut b = serde_json::json!({"role": "compliance-officer", "org": "s1"});
            if let Some(e) = expires {
                b["expiresAt"] = e.into();
            }
            b
        };
        let (s, _, granted) = t
            .call(Method::POST, &roles, Some(&admin), Some(grant(None)))
            .await;
        assert_eq!(s, StatusCode::CREATED, "{granted}");
        let (s, _, extended) = t
            .call(
                Method::POST,
                &roles,
                Some(&admin),
                Some(grant(Some("2031-06-30T00:00:00Z"))),
            )
            .await;
        assert!(s.is_success(), "{extended}");
        let id = granted["id"].as_str().unwrap();
        let (s, _, _) = t
            .call(Method::DELETE, &format!("{roles}/{id}"), Some(&admin), None)
            .await;
        assert!(s.is_success());
        // Revoking what is gone changes nothing and tells nobody.
        let (s, _, _) = t
            .call(Method::DELETE, &format!("{roles}/{id}"), Some(&admin), None)
            .await;
        assert_eq!(s, StatusCode::NOT_FOUND);

        let mine = events(&t, &admin, &format!("?subject=role-assignments/{id}")).await;
        let kinds: Vec<&str> = mine.iter().map(|e| e["type"].as_str().unwrap()).collect();
        assert_eq!(
            kinds,
            [
                "org.hmsach.role.granted",
                "org.hmsach.role.extended",
                "org.hmsach.role.revoked"
            ]
        );
        let holder = format!("person:{}", person["id"].as_str().unwrap());
        for (n, e) in mine.iter().enumerate() {
            assert_eq!(e["sequence"], (n + 1).to_string());
            assert_eq!(e["data"]["holder"], holder.as_str());
            assert_eq!(e["data"]["role"], "compliance-officer");
            assert_eq!(e["data"]["id"], id);
        }
        let mut api = granted.clone();
        api["holder"] = holder.as_str().into();
        assert_eq!(
            mine[0]["data"], api,
            "the assignment as the API returned it"
        );
        assert_eq!(mine[1]["data"]["expiresAt"], extended["expiresAt"]);
        assert_eq!(mine[2]["data"]["expiresAt"], extended["expiresAt"]);
    }
);

store_test!(
    client_changes_are_events_that_never_carry_a_secret,
    |t: TestApp| async move {
        let admin = t.admin_token().await;
        let body = serde_json::json!({
            "name": "District LMS", "grant_types": ["authorization_code", "refresh_token"],
            "scopes": ["openid", "profile"], "redirect_uris": ["https://lms.example/cb"],
            "role": "auditor",
        });
        let (s, _, created) = t
            .call(Method::POST, "/api/v1/clients", Some(&admin), Some(body))
            .await;
        assert_eq!(s, StatusCode::CREATED, "{created}");
        let id = created["client_id"].as_str().unwrap().to_string();
        let secret = created["client_secret"].as_str().unwrap().to_string();
        let url = format!("/api/v1/clients/{id}");
        let patch = Request::builder()
            .method(Method::PATCH)
            .uri(&url)
            .header(header::AUTHORIZATION, format!("Bearer {admin}"))
            .header(header::CONTENT_TYPE, "application/merge-patch+json")
            .body(Body::from(r#"{"name":"District LMS 2"}"#))
            .unwrap();
        let (s, _, patched) = t.send(patch).await;
        assert_eq!(s, StatusCode::OK, "{patched}");
        let (s, _, rotated) = t
            .call(
                Method::POST,
                &format!("{url}/rotate-secret"),
                Some(&admin),
                None,
            )
            .await;
        assert_eq!(s, StatusCode::OK, "{rotated}");
        let new_secret = rotated["client_secret"].as_str().unwrap().to_string();
        let (s, _, _) = t.call(Method::DELETE, &url, Some(&admin), None).await;
        assert!(s.is_success());

        let mine = events(&t, &admin, &format!("?subject=clients/{id}")).await;
        let kinds: Vec<&str> = mine.iter().map(|e| e["type"].as_str().unwrap()).collect();
        assert_eq!(
            kinds,
            [
                "org.hmsach.client.created",
                "org.hmsach.client.updated",
                "org.hmsach.client.secret_rotated",
                "org.hmsach.client.deleted",
            ]
        );
        assert_eq!(mine[0]["data"]["client_id"], id.as_str());
        assert_eq!(mine[1]["data"]["name"], "District LMS 2");
        assert_eq!(mine[3]["data"]["rolesRevoked"], 1);
        // Its role grant is an event of its own, after the client's.
        let grants = events(&t, &admin, "?type=org.hmsach.role.granted").await;
        let holder = format!("client:{id}");
        let grant = grants
            .iter()
            .find(|e| e["data"]["holder"] == holder.as_str())
            .expect("the client's role grant");
        assert!(grant["hmsachseq"].as_i64() > mine[0]["hmsachseq"].as_i64());
        // No secret, and no digest of one, in any event.
        let all = events(&t, &admin, "?limit=200").await.to_vec();
        let text = serde_json::to_string(&all).unwrap();
        for s in [&secret, &new_secret] {
            assert!(!text.contains(s.as_str()), "a client secret is in an event");
        }
        assert!(!text.contains("secret_digest"), "{text}");
        assert!(!text.contains("client_secret\""), "{text}");
        // Deleting the client revoked its role: that is a role.revoked event too.
        let revoked = events(&t, &admin, "?type=org.hmsach.role.revoked").await;
        assert_eq!(revoked.len(), 1, "{revoked:?}");
        assert_eq!(revoked[0]["data"]["holder"], holder.as_str());
        assert_eq!(revoked[0]["subject"], grant["subject"]);
    }
);

store_test!(
    passwords_and_key_rotations_are_events_without_secrets,
    |t: TestApp| async move {
        let admin = t.admin_token().await;
        seed_orgs(&t, &admin).await;
        let (_, _, person) = t
            .call(Method::POST, "/api/v1/users", Some(&admin), Some(ana()))
            .await;
        let id = person["id"].as_str().unwrap().to_string();
        let p = crate::directory::get_person(t.store(), &id).await.unwrap();
        let origin = crate::audit::Origin::cli();
        crate::authn::set_password(&t.app, &p, "correct horse battery", true, &origin)
            .await
            .unwrap();
        crate::authn::change_password(
            &t.app,
            &p,
            "correct horse battery",
            "staple of the district",
            &crate::audit::Origin::system("portal"),
        )
        .await
        .unwrap();
        // A wrong current password changes nothing: no event.
        let _ =
            crate::authn::change_password(&t.app, &p, "wrong", "another one here", &origin).await;
        let mine = events(&t, &admin, &format!("?subject=people/{id}/password")).await;
        assert_eq!(mine.len(), 2, "{mine:?}");
        assert!(mine
            .iter()
            .all(|e| e["type"] == "org.hmsach.person.password_changed"));
        assert_eq!(
            mine[0]["data"],
            serde_json::json!({"person": id, "mustChange": true, "by": "cli"})
        );
        assert_eq!(
            mine[1]["data"],
            serde_json::json!({"person": id, "mustChange": false, "by": "self"})
        );
        let text = serde_json::to_string(&mine).unwrap();
        assert!(
            !text.contains("horse") && !text.contains("argon2"),
            "{text}"
        );

        let now = t.app.clock().now_ms();
        let rotated = crate::oidc::rotate_keys(t.store(), t.app.master_key(), now, 3600, &origin)
            .await
            .unwrap();
        assert_eq!(rotated.len(), 2);
        let keys = events(&t, &admin, "?type=org.hmsach.key.created").await;
        let next: Vec<&Value> = keys
            .iter()
            .filter(|k| k["data"]["state"] == "next")
            .collect();
        assert_eq!(next.len(), 2, "{keys:?}");
        for (kid, _, _) in &rotated {
            assert!(next
                .iter()
                .any(|k| k["subject"] == format!("keys/{kid}").as_str()));
        }
        assert!(next.iter().all(|k| k["data"]["activateAt"].is_string()));
        let text = serde_json::to_string(&keys).unwrap();
        assert!(
            !text.contains("\"d\"") && !text.contains("private"),
            "{text}"
        );
    }
);

store_test!(
    a_change_to_how_someone_signs_in_is_an_event,
    |t: TestApp| async move {
        let admin = t.admin_token().await;
        seed_orgs(&t, &admin).await;
        let (_, _, person) = t
            .call(Method::POST, "/api/v1/users", Some(&admin), Some(ana()))
            .await;
        let id = person["id"].as_str().unwrap().to_string();
        let origin = crate::audit::Origin::system("test");
        let codes = crate::authn::factors::issue_recovery_codes(&t.app, &origin, &id)
            .await
            .unwrap();
        assert!(!codes.is_empty());
        // Using a factor (a failed sign-in here) changes nothing: no event.
        let _ = crate::authn::sign_in(&t.app, "stu-1", "wrong", &origin).await;
        let mine = events(&t, &admin, &format!("?subject=people/{id}/factors")).await;
        assert_eq!(mine.len(), 1, "{mine:?}");
        assert_eq!(mine[0]["type"], "org.hmsach.person.factors_changed");
        assert_eq!(mine[0]["sequence"], "1");
        assert_eq!(
            mine[0]["data"],
            serde_json::json!({"person": id, "change": "recovery_codes_issued", "factor": "recovery_code"})
        );
        // The codes themselves are never in an event.
        let text = serde_json::to_string(&mine).unwrap();
        assert!(codes.iter().all(|c| !text.contains(c.as_str())));
    }
);
