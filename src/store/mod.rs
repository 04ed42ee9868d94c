//! The database: one code path for SQLite (default, embedded) and PostgreSQL
//! (production, several replicas) through sqlx's `Any` driver.
//!
//! Portable SQL only: `$1` placeholders, ids as text UUIDs, times as integer Unix
//! milliseconds, JSON as text, flags as integers 0/1. The few dialect differences
//! live in [`dialect`] and nowhere else.

mod batcher;
mod dialect;

pub use batcher::Batcher;
pub use dialect::Backend;

use sqlx::any::{AnyPoolOptions, AnyRow};
use sqlx::AnyPool;
use std::time::Duration;

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
    #[error("stored data is corrupt: {0}")]
    Corrupt(String),
}

impl From<sqlx::Error> for StoreError {
    fn from(e: sqlx::Error) -> Self {
        if let sqlx::Error::Database(db) = &e {
            if db.is_unique_violation() {
                return StoreError::Duplicate(db.constraint().unwrap_or("key").to_string());
            }
        }
        StoreError::Database(e)
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
    audit_key: std::sync::Arc<AuditKey>,
}

/// The key that seals the audit chain (HMAC-SHA256). Someone who can write to the
/// database but does not hold the master key cannot recompute the chain after
/// editing it. Derived from the master key by the caller (`with_audit_key`).
pub struct AuditKey(ring::hmac::Key);

impl AuditKey {
    pub fn new(bytes: &[u8; 32]) -> AuditKey {
        AuditKey(ring::hmac::Key::new(ring::hmac::HMAC_SHA256, bytes))
    }
    pub fn seal(&self, data: &[u8]) -> String {
        hex::encode(ring::hmac::sign(&self.0, data))
    }
}

impl std::fmt::Debug for AuditKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("AuditKey(…)")
    }
}

/// Used only until `with_audit_key` is called (e.g. by `check-config`, which writes nothing).
const UNCONFIGURED_AUDIT_KEY: [u8; 32] = *b"hms-ach-unconfigured-audit-key!!";

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
        let open = |max: u32, writer: bool| {
            AnyPoolOptions::new()
                .max_connections(max)
                .acquire_timeout(timeout)
                // An SQLite connection is a file handle that cannot drop like a network
                // link, and the ping before each use is one more round trip to its
                // worker thread on every query. PostgreSQL keeps it:
                // after a failover a stale connection is found before it fails a request.
                .test_before_acquire(backend == Backend::Postgres)
                .after_connect(move |conn, _| {
                    Box::pin(
                        async move { dialect::prepare_connection(backend, conn, writer).await },
                    )
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
            audit_key: std::sync::Arc::new(AuditKey::new(&UNCONFIGURED_AUDIT_KEY)),
        })
    }

    /// This store with the audit chain sealed under `key` (from the master key).
    pub fn with_audit_key(mut self, key: &[u8; 32]) -> Store {
        self.audit_key = std::sync::Arc::new(AuditKey::new(key));
        self
    }

    pub fn audit_key(&self) -> &AuditKey {
        &self.audit_key
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
    pub async fn begin(&self) -> Result<Tx, StoreError> {
        Ok(self.write.begin().await?)
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
