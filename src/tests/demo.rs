//! `serve --demo`: a realistic district, and running it again adds nothing.

use super::*;

store_test!(demo_seed_is_idempotent, |t: TestApp| async move {
    let first = crate::demo::seed(&t.app).await.unwrap();
    assert_eq!(first.created, first.orgs + first.people);
    let events = crate::audit::verify_chain(t.store(), t.app.audit_key())
        .await
        .unwrap()
        .checked;
    let second = crate::demo::seed(&t.app).await.unwrap();
    assert_eq!(second.created, 0, "nothing new on a re-run");
    assert_eq!(
        second.client_id, first.client_id,
        "the same demo client, with a new secret"
    );
    assert_ne!(second.client_secret, first.client_secret);
    // Only the two secret rotations (admin API client, demo web app) were recorded
    // the second time; demo passwords already set are left alone.
    let after = crate::audit::verify_chain(t.store(), t.app.audit_key())
        .await
        .unwrap();
    assert!(after.is_intact());
    assert_eq!(after.checked, events + 2);
    assert_eq!(second.accounts.len(), 6, "one sign-in account per persona");
    // The printed client works, and every kind of person is there.
    let (s, _, body) = t
        .form(
            "/oauth2/token",
            "grant_type=client_credentials",
            Some(&super::basic_auth(&second.client_id, &second.client_secret)),
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    let token = body["access_token"].as_str().unwrap();
    for kind in crate::directory::PERSON_KINDS {
        let (s, _, page) = t
            .call(
                Method::GET,
                &format!("/api/v1/users?kind={kind}"),
                Some(token),
                None,
            )
            .await;
        assert_eq!(s, StatusCode::OK);
        assert!(
            !page["items"].as_array().unwrap().is_empty(),
            "no {kind} in the demo"
        );
    }
    let (_, _, roles) = t
        .call(
            Method::GET,
            "/api/v1/users/tch-001/roles",
            Some(token),
            None,
        )
        .await;
    assert_eq!(roles["items"][0]["role"], "approver");
});
