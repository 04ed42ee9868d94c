//! The hash chain: `audit verify` finds edited, deleted and inserted rows.

use super::*;

async fn some_events(t: &TestApp) -> String {
    let admin = t.admin_token().await;
    seed_orgs(t, &admin).await;
    admin
}

store_test!(verify_detects_an_edited_row, |t: TestApp| async move {
    let admin = some_events(&t).await;
    let report = crate::audit::verify_chain(t.store(), t.app.audit_key())
        .await
        .unwrap();
    assert!(report.is_intact(), "{:?}", report.problems);
    assert!(report.checked >= 5);
    sqlx::query("UPDATE audit_events SET actor_id = 'someone-else' WHERE seq = 3")
        .execute(t.store().reader())
        .await
        .unwrap();
    let report = crate::audit::verify_chain(t.store(), t.app.audit_key())
        .await
        .unwrap();
    assert_eq!(report.problems.len(), 1, "{:?}", report.problems);
    assert!(
        report.problems[0].starts_with("event 3:"),
        "{:?}",
        report.problems
    );
    // The API shows the log, filterable, with cursor paging.
    let (s, _, page) = t
        .call(
            Method::GET,
            "/api/v1/audit?action=org.create&limit=2",
            Some(&admin),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{page}");
    assert_eq!(page["items"].as_array().unwrap().len(), 2);
    let next = page["nextCursor"].as_str().unwrap();
    let (_, _, rest) = t
        .call(
            Method::GET,
            &format!("/api/v1/audit?action=org.create&cursor={next}"),
            Some(&admin),
            None,
        )
        .await;
    assert_eq!(rest["items"].as_array().unwrap().len(), 2);
});

store_test!(
    verify_detects_deleted_and_inserted_rows,
    |t: TestApp| async move {
        some_events(&t).await;
        sqlx::query("DELETE FROM audit_events WHERE seq = 2")
            .execute(t.store().reader())
            .await
            .unwrap();
        let report = crate::audit::verify_chain(t.store(), t.app.audit_key())
            .await
            .unwrap();
        assert!(
            report
                .problems
                .iter()
                .any(|p| p.contains("events 2..2 are missing")),
            "{:?}",
            report.problems
        );

        let t2 = TestApp::sqlite().await;
        some_events(&t2).await;
        // Drop the last row: the head disagrees.
        sqlx::query("DELETE FROM audit_events WHERE seq = (SELECT MAX(seq) FROM audit_events)")
            .execute(t2.store().reader())
            .await
            .unwrap();
        let report = crate::audit::verify_chain(t2.store(), t2.app.audit_key())
            .await
            .unwrap();
        assert!(
            report.problems.iter().any(|p| p.contains("chain head")),
            "{:?}",
            report.problems
        );
    }
);
