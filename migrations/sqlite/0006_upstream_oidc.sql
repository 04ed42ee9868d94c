-- Upstream OpenID Connect providers (SQLite): the hub as a relying party. Forward-only.

-- Authorization requests sent to an upstream OpenID Provider and not yet answered.
-- Keyed by a digest of the state (RFC 6749 §10.12), so the store never holds the
-- value the browser presents. The nonce (OpenID Connect Core §3.1.2.1) and the PKCE
-- code verifier (RFC 7636 §4.1) are sealed under the master key. The browser digest
-- binds the answer to the browser that asked (no login CSRF); max_age is what was
-- sent, for the auth_time check; the auth request is the OpenID Connect request of a
-- downstream app waiting for this sign-in, if any. Used once: taken with DELETE.
CREATE TABLE oidc_rp_requests (
    state_digest   TEXT PRIMARY KEY,
    idp_id         TEXT NOT NULL,
    browser_digest TEXT NOT NULL,
    sealed         TEXT NOT NULL,
    max_age        INTEGER,
    auth_request   TEXT,
    created_at     INTEGER NOT NULL,
    expires_at     INTEGER NOT NULL
);
CREATE INDEX oidc_rp_requests_expires ON oidc_rp_requests(expires_at);
