//! The database: one code path for SQLite (default, embedded) and PostgreSQL
//! (production, several replicas) through sqlx's `Any` driver.
//!
//! Portable SQL only: `$1` placeholders, ids as text UUIDs, times as integer Unix
//! milliseconds, JSON as text, flags as integers 0/1. The few dialect differences
//! live in [`dialect`] and nowhere else.

mod batcher;
mod constraint;
mod dialect;
mod fault;

pub use batcher::Batcher;
pub use constraint::unique_violation;
pub use dialect::Backend;

use sqlx::any::{AnyPoolOptions, AnyRow};
use sqlx::{AnyPool, Connection as _};
use std::time::Duration;

use crate::clock::Timestamp;

pub type Tx = sqlx::Transaction<'static, sqlx::Any>;
pub type Row = AnyRow;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("cannot open database {url}: {reason}. {hint}")]
    Unreachable {
        url: String,
        reason: String,
        hint: &'static str,
    },
    #[error("database migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("a row with the same {0} already exists")]
    Duplicate(String),
    #[error("database error: {0}")]
    Database(sqlx::Error),
    /// The database cannot take the request now (disk full, unreachable, locked,
    /// read-only after a failover…): nothing was written, and the same request may
    /// succeed later. Answered 503 with `Retry-After`, never 500.
    #[error("the database cannot take this request now ({reason}): {detail}")]
    Unavailable {
        reason: &'static str,
        detail: String,
    },
    #[error("stored data is corrupt: {0}")]
    Corrupt(String),
    #[error("{0}")]
    Worker(String),
}

impl From<sqlx::Error> for StoreError {
    fn from(e: sqlx::Error) -> Self {
        if let Some(name) = unique_violation(&e) {
            return StoreError::Duplicate(name.to_string());
        }
        match fault::transient(&e) {
            Some(reason) => StoreError::Unavailable {
                reason,
                detail: e.to_string(),
            },
            None => StoreError::Database(e),
        }
    }
}

/// Why `e` is transient (see [`StoreError::Unavailable`]), if it is.
pub fn transient_reason(e: &sqlx::Error) -> Option<&'static str> {
    fault::transient(e)
}

impl StoreError {
    /// Whether the failure is the database's state, not the request: answer 503 and
    /// let the client retry.
    pub fn is_unavailable(&self) -> bool {
        matches!(self, StoreError::Unavailable { .. })
    }
}

/// Pools for one database. On PostgreSQL reads and writes share one pool. SQLite
/// allows one writer at a time, so writes go through a single-connection pool
/// (no `SQLITE_BUSY` from two transactions upgrading to write locks at once)
/// while reads use several connections on the WAL snapshot.
#[derive(Clone, Debug)]
pub struct Store {
    write: AnyPool,
    read: AnyPool,
    backend: Backend,
    /// SQLite only: a cap on the database's pages (see `limit_sqlite_pages`).
    page_limit: std::sync::Arc<std::sync::atomic::AtomicU64>,
    /// The last write probe: when, and why it failed (`None`: it succeeded).
    last_probe: std::sync::Arc<std::sync::Mutex<Option<(Timestamp, ProbeVerdict)>>>,
}

type ProbeVerdict = Option<(&'static str, String)>;

/// How long a write probe's verdict stands (see `check_writable`).
const PROBE_EVERY: Duration = Duration::from_secs(2);

impl Store {
    pub async fn connect(
        url: &str,
        max_connections: u32,
        timeout: Duration,
    ) -> Result<Store, StoreError> {
        sqlx::any::install_default_drivers();
        let backend = Backend::from_url(url);
        let unreachable = |e: sqlx::Error| StoreError::Unreachable {
            url: redact_url(url),
            reason: e.to_string(),
            hint: backend.unreachable_hint(),
        };
        let url = backend.normalize_url(url);
        let page_limit = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
        let open = |max: u32, writer: bool| {
            let page_limit = page_limit.clone();
            AnyPoolOptions::new()
                .max_connections(max)
                .acquire_timeout(timeout)
                // An SQLite connection is a file handle that cannot drop like a network
                // link, and the ping before each use is one more round trip to its
                // worker thread on every query. PostgreSQL keeps it:
                // after a failover a stale connection is found before it fails a request.
                .test_before_acquire(backend == Backend::Postgres)
                .after_connect(move |conn, _| {
                    let pages = page_limit.load(std::sync::atomic::Ordering::Relaxed);
                    Box::pin(async move {
                        dialect::prepare_connection(backend, conn, writer).await?;
                        if writer && pages > 0 {
                            dialect::set_page_limit(conn, pages).await?;
                        }
                        Ok(())
                    })
                })
                // A connection must come back outside any transaction. A transaction
                // dropped without commit queues its rollback; if that rollback fails
                // (SQLite after SQLITE_FULL or an I/O error at COMMIT) the connection
                // would stay inside a transaction that never commits, and every later
                // "transaction" on it would be a savepoint of that one: acknowledged,
                // then lost. Such a connection is closed (closing rolls back) and the
                // pool opens a fresh one.
                .after_release(|conn, _| {
                    Box::pin(async move {
                        if !conn.is_in_transaction() {
                            return Ok(true);
                        }
                        // Runs the queued rollback first.
                        conn.ping().await?;
                        if conn.is_in_transaction() {
                            tracing::warn!("a database connection was left inside a failed transaction; closing it");
                            crate::ops::metrics::store_connection_recycled();
                            return Ok(false);
                        }
                        Ok(true)
                    })
                })
        };
        let (write, read) = match backend {
            Backend::Sqlite => {
                let write = open(1, true).connect(&url).await.map_err(unreachable)?;
                let read = open(max_connections.max(2), false)
                    .connect(&url)
                    .await
                    .map_err(unreachable)?;
                tokio::spawn(checkpoint_wal(read.clone()));
                (write, read)
            }
            Backend::Postgres => {
                let pool = open(max_connections, true)
                    .connect(&url)
                    .await
                    .map_err(unreachable)?;
                (pool.clone(), pool)
            }
        };
        Ok(Store {
            write,
            read,
            backend,
            page_limit,
            last_probe: Default::default(),
        })
    }

    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// Applies the forward-only migrations of this backend's tree.
    pub async fn migrate(&self) -> Result<(), StoreError> {
        match self.backend {
            Backend::Sqlite => {
                sqlx::migrate!("./migrations/sqlite")
                    .run(&self.write)
                    .await?
            }
            Backend::Postgres => {
                sqlx::migrate!("./migrations/postgres")
                    .run(&self.write)
                    .await?
            }
        }
        Ok(())
    }

    /// A write transaction: everything one change does commits together or not at all.
    /// On SQLite it takes the write lock at once (`BEGIN IMMEDIATE`): a deferred
    /// transaction that reads first and writes later fails at once with
    /// SQLITE_BUSY_SNAPSHOT when another process (the CLI) wrote in between, whatever
    /// the busy timeout; an immediate one waits for the lock instead.
    pub async fn begin(&self) -> Result<Tx, StoreError> {
        Ok(self
            .write
            .begin_with(dialect::begin_write(self.backend))
            .await?)
    }

    /// A write transaction that starts by locking `table.column = value` (see
    /// [`Store::lock_row`]): for a read-modify-write of that row's dependants.
    pub async fn begin_locked(
        &self,
        table: &'static str,
        column: &'static str,
        value: &str,
    ) -> Result<Tx, StoreError> {
        let mut tx = self.begin().await?;
        self.lock_row(&mut tx, table, column, value).await?;
        Ok(tx)
    }

    /// SQLite only: caps the database file at `pages` pages (`PRAGMA max_page_count`
    /// on the writing connection, and on any connection that replaces it), or lifts
    /// the cap (`None`). A full disk as SQLite sees it (SQLITE_FULL), made and
    /// unmade at will: the fault tests use it to check that nothing is acknowledged
    /// that was not committed, and that writes resume when space returns.
    #[doc(hidden)]
    pub async fn limit_sqlite_pages(&self, pages: Option<u64>) -> Result<(), StoreError> {
        if self.backend != Backend::Sqlite {
            return Ok(());
        }
        self.page_limit
            .store(pages.unwrap_or(0), std::sync::atomic::Ordering::Relaxed);
        let mut conn = self.write.acquire().await?;
        dialect::set_page_limit(&mut conn, pages.unwrap_or(dialect::SQLITE_MAX_PAGES)).await?;
        Ok(())
    }

    /// The database's size in pages (SQLite; 0 elsewhere).
    #[doc(hidden)]
    pub async fn sqlite_pages(&self) -> Result<u64, StoreError> {
        if self.backend != Backend::Sqlite {
            return Ok(0);
        }
        let n: i64 = sqlx::query_scalar("PRAGMA page_count")
            .fetch_one(&self.write)
            .await?;
        Ok(u64::try_from(n).unwrap_or(0))
    }

    /// Locks the row `table.column = value` until the transaction ends, so that a
    /// read-modify-write inside it cannot interleave with another (PostgreSQL `FOR
    /// UPDATE`; SQLite's write transactions already run one at a time, see `begin`).
    /// `table` and `column` come from code, never from input.
    pub async fn lock_row(
        &self,
        tx: &mut Tx,
        table: &'static str,
        column: &'static str,
        value: &str,
    ) -> Result<(), StoreError> {
        if let Some(sql) = dialect::lock_row_sql(self.backend, table, column) {
            sqlx::query(&sql).bind(value).execute(&mut **tx).await?;
        }
        Ok(())
    }

    /// Whether the database can take writes now: a read, a committed rewrite of a
    /// 64 KiB row, and an insert that is rolled back (see
    /// `dialect::PROBE_PAD_BYTES`). `Err` says why not, for `/readyz`.
    ///
    /// The write is made at most every `PROBE_EVERY` per replica (the verdict is
    /// kept in between): an orchestrator probing often costs no more writes.
    pub async fn check_writable(&self, now: Timestamp) -> Result<(), StoreError> {
        self.ping().await?;
        if let Ok(last) = self.last_probe.lock() {
            if let Some((at, verdict)) = &*last {
                // A clock that went back (another replica's time) never reuses a verdict.
                if *at <= now && now.saturating_sub(*at) < PROBE_EVERY {
                    return match verdict {
                        None => Ok(()),
                        Some((reason, detail)) => Err(StoreError::Unavailable {
                            reason,
                            detail: detail.clone(),
                        }),
                    };
                }
            }
        }
        let result = self.probe_write(now).await;
        let verdict = match &result {
            Ok(()) => Some(None),
            Err(StoreError::Unavailable { reason, detail }) => {
                Some(Some((*reason, detail.clone())))
            }
            Err(_) => None,
        };
        if let (Some(verdict), Ok(mut last)) = (verdict, self.last_probe.lock()) {
            *last = Some((now, verdict));
        }
        result
    }

    async fn probe_write(&self, now: Timestamp) -> Result<(), StoreError> {
        let mut tx = self.begin().await?;
        let digit = char::from(b'0' + u8::try_from(now.as_millis().rem_euclid(10)).unwrap_or(0));
        sqlx::query(dialect::PROBE_UPSERT)
            .bind(now)
            .bind(digit.to_string().repeat(dialect::PROBE_PAD_BYTES))
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        let mut tx = self.begin().await?;
        sqlx::query("INSERT INTO store_probe (id, checked_at, pad) VALUES ($1, $2, $3)")
            .bind(new_id())
            .bind(now)
            .bind("0".repeat(dialect::PROBE_PAD_BYTES))
            .execute(&mut *tx)
            .await?;
        tx.rollback().await?;
        Ok(())
    }

    /// The pool for reads outside a transaction.
    /// The write pool, for a single statement outside a transaction.
    pub fn writer(&self) -> &AnyPool {
        &self.write
    }

    pub fn reader(&self) -> &AnyPool {
        &self.read
    }

    pub async fn ping(&self) -> Result<(), StoreError> {
        sqlx::query("SELECT 1").execute(&self.read).await?;
        Ok(())
    }

    pub async fn close(&self) {
        self.write.close().await;
        self.read.close().await;
    }

    /// Tables and their columns, for the test that both migration trees agree.
    pub async fn schema(&self) -> Result<Vec<(String, String)>, StoreError> {
        let sql = dialect::schema_query(self.backend);
        let rows = sqlx::query(sql).fetch_all(&self.read).await?;
        let mut out = Vec::with_capacity(rows.len());
        for r in rows {
            out.push((
                get::<String>(&r, "table_name")?,
                get::<String>(&r, "column_name")?,
            ));
        }
        out.sort();
        Ok(out)
    }
}

/// SQLite: copies the write-ahead log back into the database file every 100 ms, from
/// a reading connection, while writes go on (a PASSIVE checkpoint takes no write
/// lock). The writing connection does not checkpoint itself (`wal_autocheckpoint =
/// 0`): when it did, every thousandth page made one commit wait for the copy and an
/// fsync, which set the token endpoint's tail latency. Ends when the pool closes.
async fn checkpoint_wal(pool: AnyPool) {
    let mut tick = tokio::time::interval(Duration::from_millis(100));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    while !pool.is_closed() {
        tick.tick().await;
        if let Err(e) = sqlx::query("PRAGMA wal_checkpoint(PASSIVE)")
            .execute(&pool)
            .await
        {
            if !pool.is_closed() {
                tracing::warn!(error = %e, "WAL checkpoint failed; retrying");
            }
        }
    }
}

/// Reads a column, turning a type mismatch into [`StoreError::Corrupt`].
pub fn get<'r, T>(row: &'r Row, col: &str) -> Result<T, StoreError>
where
    T: sqlx::Decode<'r, sqlx::Any> + sqlx::Type<sqlx::Any>,
{
    use sqlx::Row as _;
    row.try_get::<T, _>(col)
        .map_err(|e| StoreError::Corrupt(format!("column {col}: {e}")))
}

/// A database URL with any password replaced, fit for logs and error messages.
pub fn redact_url(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut u) if u.password().is_some() => {
            let _ = u.set_password(Some("***"));
            u.to_string()
        }
        _ => url.to_string(),
    }
}

/// `$first, $first+1, …`: placeholders for `n` parameters (an `IN (…)` list or a
/// multi-row `VALUES`).
pub fn params(first: usize, n: usize) -> String {
    (first..first + n)
        .map(|i| format!("${i}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// A new random id (UUID v4, as text).
pub fn new_id() -> String {
    uuid::Uuid::new_v4().to_string()
}
