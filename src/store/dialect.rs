//! Everything that differs between SQLite and PostgreSQL, in one place.

use sqlx::{AnyConnection, Executor};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

impl Backend {
    pub fn from_url(url: &str) -> Backend {
        if url.starts_with("postgres") {
            Backend::Postgres
        } else {
            Backend::Sqlite
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Backend::Sqlite => "sqlite",
            Backend::Postgres => "postgres",
        }
    }

    /// SQLite files are created on first start (`mode=rwc`).
    pub(super) fn normalize_url(self, url: &str) -> String {
        match self {
            Backend::Sqlite if !url.contains("mode=") && !url.contains(":memory:") => {
                let sep = if url.contains('?') { '&' } else { '?' };
                format!("{url}{sep}mode=rwc")
            }
            _ => url.to_string(),
        }
    }

    pub(super) fn unreachable_hint(self) -> &'static str {
        match self {
            Backend::Sqlite => "Check that the directory exists and is writable, or pass --database-url sqlite://PATH.",
            Backend::Postgres => "Check that PostgreSQL is running and accepts connections at that host and port, that the database exists, and that the user may log in.",
        }
    }
}

/// Per-connection settings. SQLite: WAL so readers never block the writer, a busy
/// timeout, foreign keys on (they are off by default in SQLite).
pub(super) async fn prepare_connection(
    backend: Backend,
    conn: &mut AnyConnection,
    writer: bool,
) -> Result<(), sqlx::Error> {
    if backend == Backend::Sqlite {
        conn.execute("PRAGMA journal_mode = WAL").await?;
        conn.execute("PRAGMA synchronous = NORMAL").await?;
        conn.execute("PRAGMA busy_timeout = 5000").await?;
        conn.execute("PRAGMA foreign_keys = ON").await?;
        if writer {
            // Checkpoints run in the background instead (`checkpoint_wal`).
            conn.execute("PRAGMA wal_autocheckpoint = 0").await?;
        }
    }
    Ok(())
}

/// How a write transaction starts (see `Store::begin`).
pub(super) fn begin_write(backend: Backend) -> &'static str {
    match backend {
        Backend::Sqlite => "BEGIN IMMEDIATE",
        Backend::Postgres => "BEGIN",
    }
}

/// A statement that locks one row for the rest of the transaction, where one is
/// needed (see `Store::lock_row`).
pub(super) fn lock_row_sql(backend: Backend, table: &str, column: &str) -> Option<String> {
    match backend {
        Backend::Sqlite => None,
        Backend::Postgres => Some(format!(
            "SELECT 1 FROM {table} WHERE {column} = $1 FOR UPDATE"
        )),
    }
}

/// The readiness probe's committed write (portable upsert: SQLite ≥ 3.24).
pub(super) const PROBE_UPSERT: &str =
    "INSERT INTO store_probe (id, checked_at, pad) VALUES ('readyz', $1, $2) \
     ON CONFLICT (id) DO UPDATE SET checked_at = excluded.checked_at, pad = excluded.pad";

/// The size of the probe's rows. The committed one is rewritten each time, so the
/// write-ahead log must take that much more (a full disk fails it even while small
/// writes still fit in the log's old space); the rolled-back one needs new pages, so
/// a database without a free page left is found.
pub(super) const PROBE_PAD_BYTES: usize = 64 * 1024;

/// SQLite's largest `max_page_count` (its default).
pub(super) const SQLITE_MAX_PAGES: u64 = 4_294_967_294;

pub(super) async fn set_page_limit(
    conn: &mut AnyConnection,
    pages: u64,
) -> Result<(), sqlx::Error> {
    // A number from code, not input: PRAGMA takes no bound parameters.
    conn.execute(format!("PRAGMA max_page_count = {pages}").as_str())
        .await?;
    Ok(())
}

pub(super) fn schema_query(backend: Backend) -> &'static str {
    match backend {
        Backend::Sqlite => {
            "SELECT m.name AS table_name, p.name AS column_name \
             FROM sqlite_master m JOIN pragma_table_info(m.name) p \
             WHERE m.type = 'table' AND m.name NOT LIKE 'sqlite_%' AND m.name NOT LIKE '_sqlx%'"
        }
        Backend::Postgres => {
            "SELECT CAST(table_name AS TEXT) AS table_name, CAST(column_name AS TEXT) AS column_name \
             FROM information_schema.columns \
             WHERE table_schema = current_schema() AND table_name NOT LIKE '_sqlx%'"
        }
    }
}
