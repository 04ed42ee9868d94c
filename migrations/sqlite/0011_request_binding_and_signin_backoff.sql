-- Issue 14. A pending authorization request (OIDC or SAML) belongs to the browser
-- that started it: the keyed digest of that browser's binding cookie. NULL only
-- between a cross-site POST (which carries no SameSite=Lax cookie) and the same-site
-- GET that claims it. Forward-only.
ALTER TABLE auth_requests ADD COLUMN browser_digest TEXT;

-- Password guessing is slowed, never locked (`authn::backoff`): failures per
-- (account, address), per address and per account, each under a keyed digest (no
-- usernames or addresses in the table).
CREATE TABLE signin_backoff (
    key          TEXT PRIMARY KEY,
    failures     INTEGER NOT NULL,
    first_failed INTEGER NOT NULL,
    last_failed  INTEGER NOT NULL,
    alerted_at   INTEGER
);
CREATE INDEX signin_backoff_last_failed ON signin_backoff(last_failed);
