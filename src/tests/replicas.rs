//! Two hub replicas on one database: what one changes, the other honours.

use super::*;

/// A second replica: its own AppState (caches, enforcer, keyring) on the same store.
async fn second_replica(t: &TestApp) -> (AppState, Router) {
    let app = AppState::build(t.app.config().clone(), t.store().clone(), t.clock.clone())
        .await
        .unwrap();
    let router = crate::build_router(app.clone());
    (app, router)
}

async fn get_audit(router: &Router, token: &str) -> StatusCode {
    let req = Request::builder()
        .uri("/api/v1/audit")
        .header(header::AUTHORIZATION, format!("Bearer {token}"))
        .body(Body::empty())
        .unwrap();
    router.clone().oneshot(req).await.unwrap().status()
}

store_test!(
    a_key_made_by_another_replica_is_picked_up,
    |t: TestApp| async move {
        // Replica B starts after the ES256 key was retired, so it makes a new one that A has never loaded.
        sqlx::query("UPDATE signing_keys SET status = 'retired' WHERE alg = 'ES256'")
            .execute(t.store().reader())
            .await
            .unwrap();
        let (_b, b_router) = second_replica(&t).await;
        let (id, secret) = t.client(Some("auditor"), None, &["audit.read"]).await;
        let req = Request::builder()
            .method(Method::POST)
            .uri("/oauth2/token")
            .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
            .body(Body::from(format!(
                "grant_type=client_credentials&client_id={id}&client_secret={secret}"
            )))
            .unwrap();
        let resp = b_router.clone().oneshot(req).await.unwrap();
        let body: Value =
            serde_json::from_slice(&resp.into_body().collect().await.unwrap().to_bytes()).unwrap();
        let token = body["access_token"].as_str().unwrap();
        // A reloads its keys (at most every 10 s) when it meets an unknown key id.
        t.clock.advance_secs(11);
        assert_eq!(get_audit(&t.router, token).await, StatusCode::OK);
        let (_, _, jwks) = t.call(Method::GET, "/oauth2/jwks", None, None).await;
        assert_eq!(
            jwks["keys"].as_array().unwrap().len(),
            3,
            "old ES256, new ES256, RS256 all published"
        );
    }
);

store_test!(
    a_role_revoked_on_one_replica_stops_on_the_other,
    |t: TestApp| async move {
        let (b, b_router) = second_replica(&t).await;
        let (id, secret) = t.client(Some("auditor"), None, &["audit.read"]).await;
        let (_, _, body) = t
            .form(
                "/oauth2/token",
                &format!("grant_type=client_credentials&client_id={id}&client_secret={secret}"),
                None,
            )
            .await;
        let token = body["access_token"].as_str().unwrap().to_string();
        assert_eq!(
            get_audit(&b_router, &token).await,
            StatusCode::OK,
            "B loaded its enforcer with the role"
        );
        // A revokes the client's role.
        let subject = crate::authz::Subject::Client(id.clone());
        let held = crate::authz::list_assignments(t.store(), &subject)
            .await
            .unwrap();
        let mut tx = t.store().begin().await.unwrap();
        crate::authz::revoke_assignment(
            &mut tx,
            t.app.audit_key(),
            t.clock.now(),
            &crate::audit::Origin::system("test"),
            &subject,
            &held[0].id,
        )
        .await
        .unwrap();
        tx.commit().await.unwrap();
        assert_eq!(
            get_audit(&b_router, &token).await,
            StatusCode::FORBIDDEN,
            "B honours it at once"
        );
        drop(b);
    }
);
