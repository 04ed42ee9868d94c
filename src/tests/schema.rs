//! Both migration trees must yield the same tables and columns.

use super::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_and_postgres_migrations_agree() {
    let sqlite = TestApp::sqlite().await;
    let pg = TestApp::postgres().await;
    let a = sqlite.store().schema().await.unwrap();
    let b = pg.store().schema().await.unwrap();
    assert!(a.len() > 40, "schema query found too few columns: {a:?}");
    let only_sqlite: Vec<_> = a.iter().filter(|c| !b.contains(c)).collect();
    let only_pg: Vec<_> = b.iter().filter(|c| !a.contains(c)).collect();
    assert!(
        only_sqlite.is_empty() && only_pg.is_empty(),
        "only in SQLite: {only_sqlite:?}; only in PostgreSQL: {only_pg:?}"
    );
}

// A duplicate is named alike on both databases (`store::unique_violation`): a
// single-column primary key, a composite unique constraint and a partial unique
// index each give the stable name of the constraint they hit.
store_test!(
    duplicates_name_the_same_constraint,
    |t: TestApp| async move {
        let name = |sql: &'static str, binds: Vec<String>| {
            let store = t.store().clone();
            async move {
                let mut q = sqlx::query(sql);
                for b in binds {
                    q = q.bind(b);
                }
                let e = q.execute(store.writer()).await.unwrap_err();
                crate::store::unique_violation(&e).map(str::to_string)
            }
        };
        let jti = || vec!["jti-1".to_string()];
        sqlx::query("INSERT INTO used_jtis (jti, expires_at) VALUES ($1, 0)")
            .bind("jti-1")
            .execute(t.store().writer())
            .await
            .unwrap();
        assert_eq!(
            name(
                "INSERT INTO used_jtis (jti, expires_at) VALUES ($1, 0)",
                jti()
            )
            .await,
            Some("used_jtis.jti".into())
        );
        let kid = |k: &str| vec![k.to_string()];
        assert_eq!(
        name(
            "INSERT INTO signing_keys (kid, alg, status, private_key_enc, public_jwk, created_at) VALUES ($1, 'ES256', 'active', '', '{}', 0)",
            kid("another-kid"),
        )
        .await,
        Some("signing_keys.alg".into()),
        "a second active ES256 key"
    );
        let rule = || vec!["p".to_string(), "r".to_string()];
        sqlx::query("INSERT INTO authz_policies (id, ptype, v0, v1, v2, v3, builtin) VALUES ('x1', $1, $2, 'a', 'b', 'c', 0)")
        .bind("p")
        .bind("r")
        .execute(t.store().writer())
        .await
        .unwrap();
        assert_eq!(
        name(
            "INSERT INTO authz_policies (id, ptype, v0, v1, v2, v3, builtin) VALUES ('x2', $1, $2, 'a', 'b', 'c', 0)",
            rule(),
        )
        .await,
        Some("authz_policies.rule".into())
    );
    }
);
