//! Which database failures are the database's state rather than the request's:
//! the disk is full, the server is down or frozen, the file is locked by another
//! process, a failover left a read-only standby. Those become
//! [`StoreError::Unavailable`](super::StoreError::Unavailable), answered 503 with
//! `Retry-After`; everything else stays an internal error.

/// A short reason (for `/readyz`, metrics and logs) when `e` is transient.
pub(super) fn transient(e: &sqlx::Error) -> Option<&'static str> {
    match e {
        sqlx::Error::Io(_) | sqlx::Error::Tls(_) | sqlx::Error::Protocol(_) => {
            Some("database unreachable")
        }
        sqlx::Error::PoolTimedOut => Some("no database connection free in time"),
        sqlx::Error::PoolClosed | sqlx::Error::WorkerCrashed => Some("database connection lost"),
        // A custom BEGIN refused because the connection is still inside a transaction:
        // the connection is recycled on release (see `Store::connect`).
        sqlx::Error::InvalidSavePointStatement | sqlx::Error::BeginFailed => {
            Some("database connection in an unknown state")
        }
        sqlx::Error::Database(db) => {
            if db.try_downcast_ref::<sqlx::sqlite::SqliteError>().is_some() {
                db.code().and_then(|c| sqlite_reason(&c))
            } else {
                db.code().and_then(|c| postgres_reason(&c))
            }
        }
        _ => None,
    }
}

/// SQLite result codes (<https://www.sqlite.org/rescode.html>): the primary code is
/// the low byte of the extended one.
fn sqlite_reason(code: &str) -> Option<&'static str> {
    let primary = code.parse::<i32>().ok()? & 0xff;
    match primary {
        5 | 6 => Some("database locked by another writer"), // SQLITE_BUSY, SQLITE_LOCKED
        7 => Some("database out of memory"),                // SQLITE_NOMEM
        8 => Some("database is read-only"),                 // SQLITE_READONLY
        10 => Some("database disk I/O error"),              // SQLITE_IOERR (EFBIG, EIO…)
        13 => Some("database disk full"),                   // SQLITE_FULL
        14 => Some("database file cannot be opened"),       // SQLITE_CANTOPEN
        15 => Some("database lock protocol error"),         // SQLITE_PROTOCOL
        _ => None,
    }
}

/// PostgreSQL SQLSTATEs (Appendix A of its manual).
fn postgres_reason(sqlstate: &str) -> Option<&'static str> {
    match sqlstate {
        "53100" => Some("database disk full"),
        s if s.starts_with("53") => Some("database out of resources"),
        s if s.starts_with("08") => Some("database unreachable"),
        "57P01" | "57P02" | "57P03" => Some("database shutting down or starting"),
        "25006" => Some("database is read-only"), // a standby after failover
        "40001" | "40P01" => Some("database conflict between concurrent writes"),
        "55P03" => Some("database locked by another writer"),
        "58030" => Some("database disk I/O error"),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sqlite_extended_codes_reduce_to_their_primary_code() {
        assert_eq!(sqlite_reason("13"), Some("database disk full"));
        // SQLITE_IOERR_WRITE = 10 | (3 << 8): a write refused with EFBIG.
        assert_eq!(sqlite_reason("778"), Some("database disk I/O error"));
        // SQLITE_BUSY_SNAPSHOT = 5 | (2 << 8).
        assert_eq!(
            sqlite_reason("517"),
            Some("database locked by another writer")
        );
        assert_eq!(
            sqlite_reason("19"),
            None,
            "a constraint is the request's fault"
        );
        assert_eq!(sqlite_reason("11"), None, "corruption is not transient");
    }

    #[test]
    fn sqlstate_classes_are_read() {
        assert_eq!(postgres_reason("53100"), Some("database disk full"));
        assert_eq!(postgres_reason("08006"), Some("database unreachable"));
        assert_eq!(
            postgres_reason("57P01"),
            Some("database shutting down or starting")
        );
        assert_eq!(postgres_reason("23505"), None);
        assert_eq!(
            postgres_reason("22021"),
            None,
            "bad bytes are the request's fault"
        );
    }

    #[test]
    fn pool_and_io_failures_are_transient() {
        assert!(transient(&sqlx::Error::PoolTimedOut).is_some());
        assert!(transient(&sqlx::Error::Io(std::io::Error::other("reset"))).is_some());
        assert!(transient(&sqlx::Error::RowNotFound).is_none());
    }
}
