-- Single sign-on (PostgreSQL): relying parties, local passwords, browser sessions,
-- consent, authorization requests and codes, grants, refresh tokens, revocation,
-- key rotation, back-channel logout. Forward-only: never edit once landed.

-- Relying-party registration (RFC 7591 client metadata) as one JSON document:
-- redirect URIs, auth method, PKCE, first-party, ID token alg, logout URIs.
ALTER TABLE clients ADD COLUMN settings TEXT NOT NULL DEFAULT '{}';

-- Key rotation: a `next` key is published in the JWKS before it signs anything; a
-- `retired` key stays published until every token it signed has expired.
ALTER TABLE signing_keys ADD COLUMN activate_at BIGINT;
ALTER TABLE signing_keys ADD COLUMN retired_at BIGINT;
ALTER TABLE signing_keys ADD COLUMN drop_after BIGINT;
CREATE UNIQUE INDEX signing_keys_one_next ON signing_keys(alg) WHERE status = 'next';

CREATE TABLE passwords (
    person_id   TEXT PRIMARY KEY REFERENCES people(id) ON DELETE CASCADE,
    hash        TEXT NOT NULL,
    must_change BIGINT NOT NULL,
    changed_at  BIGINT NOT NULL
);

-- Failed sign-ins per username key (an HMAC of the lower-cased name), kept for
-- names that exist and names that do not alike, so lockout reveals nothing.
CREATE TABLE login_throttle (
    key          TEXT PRIMARY KEY,
    failures     BIGINT NOT NULL,
    first_failed BIGINT NOT NULL,
    locked_until BIGINT
);

CREATE TABLE sessions (
    id           TEXT PRIMARY KEY,
    token_digest TEXT NOT NULL UNIQUE,
    person_id    TEXT NOT NULL REFERENCES people(id) ON DELETE CASCADE,
    auth_time    BIGINT NOT NULL,
    amr          TEXT NOT NULL,
    acr          TEXT NOT NULL,
    created_at   BIGINT NOT NULL,
    last_seen_at BIGINT NOT NULL,
    expires_at   BIGINT NOT NULL,
    ended_at     BIGINT,
    user_agent   TEXT,
    source_ip    TEXT
);
CREATE INDEX sessions_person ON sessions(person_id);

CREATE TABLE consents (
    person_id  TEXT NOT NULL REFERENCES people(id) ON DELETE CASCADE,
    client_id  TEXT NOT NULL REFERENCES clients(id) ON DELETE CASCADE,
    scopes     TEXT NOT NULL,
    granted_at BIGINT NOT NULL,
    PRIMARY KEY (person_id, client_id)
);

-- Validated authorization requests waiting for sign-in or consent, and pushed
-- authorization requests (RFC 9126). The id is a digest of the handle given out.
CREATE TABLE auth_requests (
    id         TEXT PRIMARY KEY,
    client_id  TEXT NOT NULL,
    params     TEXT NOT NULL,
    pushed     BIGINT NOT NULL,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL
);
CREATE INDEX auth_requests_expires ON auth_requests(expires_at);

-- One grant per authorization: its code, refresh tokens and access tokens hang off
-- it, so a replayed code or a reused refresh token revokes them all at once.
CREATE TABLE grants (
    id             TEXT PRIMARY KEY,
    client_id      TEXT NOT NULL,
    person_id      TEXT NOT NULL,
    session_id     TEXT,
    scopes         TEXT NOT NULL,
    auth_time      BIGINT NOT NULL,
    acr            TEXT NOT NULL,
    amr            TEXT NOT NULL,
    dpop_jkt       TEXT,
    offline        BIGINT NOT NULL,
    created_at     BIGINT NOT NULL,
    expires_at     BIGINT NOT NULL,
    revoked_at     BIGINT,
    revoked_reason TEXT
);
CREATE INDEX grants_session ON grants(session_id);
CREATE INDEX grants_person ON grants(person_id);

CREATE TABLE auth_codes (
    code_digest    TEXT PRIMARY KEY,
    grant_id       TEXT NOT NULL REFERENCES grants(id) ON DELETE CASCADE,
    client_id      TEXT NOT NULL,
    redirect_uri   TEXT NOT NULL,
    nonce          TEXT,
    code_challenge TEXT,
    created_at     BIGINT NOT NULL,
    expires_at     BIGINT NOT NULL,
    used_at        BIGINT
);

CREATE TABLE refresh_tokens (
    token_digest TEXT PRIMARY KEY,
    grant_id     TEXT NOT NULL REFERENCES grants(id) ON DELETE CASCADE,
    created_at   BIGINT NOT NULL,
    expires_at   BIGINT NOT NULL,
    used_at      BIGINT
);
CREATE INDEX refresh_tokens_grant ON refresh_tokens(grant_id);

-- Access tokens revoked one by one (RFC 7009), until they would have expired anyway;
-- also single-use JWT ids (client assertions, DPoP proofs).
CREATE TABLE used_jtis (
    jti        TEXT PRIMARY KEY,
    expires_at BIGINT NOT NULL
);
CREATE INDEX used_jtis_expires ON used_jtis(expires_at);

CREATE TABLE logout_deliveries (
    id              TEXT PRIMARY KEY,
    client_id       TEXT NOT NULL,
    uri             TEXT NOT NULL,
    logout_token    TEXT NOT NULL,
    attempts        BIGINT NOT NULL,
    next_attempt_at BIGINT NOT NULL,
    delivered_at    BIGINT,
    failed_at       BIGINT,
    last_error      TEXT,
    created_at      BIGINT NOT NULL
);
CREATE INDEX logout_deliveries_due ON logout_deliveries(next_attempt_at);
