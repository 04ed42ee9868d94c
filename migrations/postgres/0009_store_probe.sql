-- The readiness probe's row (`Store::check_writable`): /readyz says "not ready"
-- when the database cannot take a write (disk full, read-only standby).
CREATE TABLE store_probe (
    id TEXT PRIMARY KEY,
    checked_at BIGINT NOT NULL,
    pad TEXT NOT NULL
);
