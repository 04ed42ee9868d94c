-- Federation (PostgreSQL): upstream SAML identity providers. Forward-only.

-- A person's identity at an upstream IdP: the value of the IdP's configured link
-- attribute (e.g. eduPersonPrincipalName) → one directory person. Once linked, the
-- link wins over a directory search, so a later change of e-mail keeps the person.
CREATE TABLE federated_identities (
    idp_id       TEXT NOT NULL,
    subject      TEXT NOT NULL,
    person_id    TEXT NOT NULL REFERENCES people(id) ON DELETE CASCADE,
    created_at   BIGINT NOT NULL,
    last_used_at BIGINT NOT NULL,
    PRIMARY KEY (idp_id, subject)
);
CREATE INDEX federated_identities_person ON federated_identities(person_id);

-- AuthnRequests sent and not yet answered (SAML core §3.2.2: InResponseTo). The
-- browser digest binds the answer to the browser that asked (no login CSRF); the
-- auth request is the OpenID Connect request waiting for this sign-in, if any.
CREATE TABLE saml_requests (
    id             TEXT PRIMARY KEY,
    idp_id         TEXT NOT NULL,
    browser_digest TEXT NOT NULL,
    auth_request   TEXT,
    created_at     BIGINT NOT NULL,
    expires_at     BIGINT NOT NULL
);
CREATE INDEX saml_requests_expires ON saml_requests(expires_at);

-- Assertion ids seen, until the assertion could no longer be accepted anyway
-- (SAML profiles §4.1.4.5: one-time use of bearer assertions).
CREATE TABLE saml_assertions_seen (
    idp_id       TEXT NOT NULL,
    assertion_id TEXT NOT NULL,
    expires_at   BIGINT NOT NULL,
    PRIMARY KEY (idp_id, assertion_id)
);
CREATE INDEX saml_assertions_seen_expires ON saml_assertions_seen(expires_at);

-- A verified upstream sign-in waiting for its browser to come back to the hub (the
-- ACS is reached by a cross-site POST, which carries no SameSite=Lax cookie).
CREATE TABLE federated_signins (
    handle_digest  TEXT PRIMARY KEY,
    idp_id         TEXT NOT NULL,
    person_id      TEXT NOT NULL REFERENCES people(id) ON DELETE CASCADE,
    browser_digest TEXT,
    amr            TEXT NOT NULL,
    acr            TEXT NOT NULL,
    auth_request   TEXT,
    expires_at     BIGINT NOT NULL
);

-- Last good copy of each IdP's metadata, so a restart while the IdP's metadata URL
-- is down still knows its keys.
CREATE TABLE saml_idp_metadata (
    idp_id     TEXT PRIMARY KEY,
    xml        TEXT NOT NULL,
    fetched_at BIGINT NOT NULL
);

-- The key and certificate the hub signs AuthnRequests with and receives encrypted
-- assertions under, when not given as files (key sealed under the master key).
CREATE TABLE saml_sp_credentials (
    id         TEXT PRIMARY KEY,
    key_sealed TEXT NOT NULL,
    cert_pem   TEXT NOT NULL,
    created_at BIGINT NOT NULL
);
