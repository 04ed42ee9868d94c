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
