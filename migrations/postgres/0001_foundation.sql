-- HMS-ACH foundation schema (PostgreSQL). Forward-only: never edit once landed.
-- Times are Unix milliseconds (BIGINT); ids are text UUIDs; JSON is text; flags 0/1.

CREATE TABLE orgs (
    id          TEXT PRIMARY KEY,
    sourced_id  TEXT NOT NULL UNIQUE,
    kind        TEXT NOT NULL,
    name        TEXT NOT NULL,
    identifier  TEXT,
    parent_id   TEXT REFERENCES orgs(id),
    status      TEXT NOT NULL,
    created_at  BIGINT NOT NULL,
    updated_at  BIGINT NOT NULL
);
CREATE INDEX orgs_parent ON orgs(parent_id);
CREATE INDEX orgs_updated ON orgs(updated_at, id);

CREATE TABLE people (
    id                TEXT PRIMARY KEY,
    sourced_id        TEXT NOT NULL UNIQUE,
    status            TEXT NOT NULL,
    given_name        TEXT NOT NULL,
    family_name       TEXT NOT NULL,
    middle_name       TEXT,
    preferred_name    TEXT,
    email             TEXT,
    username          TEXT UNIQUE,
    status_changed_at BIGINT NOT NULL,
    status_reason     TEXT,
    created_at        BIGINT NOT NULL,
    updated_at        BIGINT NOT NULL
);
CREATE INDEX people_updated ON people(updated_at, id);
CREATE INDEX people_status ON people(status);
CREATE INDEX people_email ON people(email);

CREATE TABLE person_kinds (
    person_id TEXT NOT NULL REFERENCES people(id) ON DELETE CASCADE,
    kind      TEXT NOT NULL,
    PRIMARY KEY (person_id, kind)
);
CREATE INDEX person_kinds_kind ON person_kinds(kind);

CREATE TABLE person_identifiers (
    person_id TEXT NOT NULL REFERENCES people(id) ON DELETE CASCADE,
    id_type   TEXT NOT NULL,
    value     TEXT NOT NULL,
    PRIMARY KEY (person_id, id_type),
    UNIQUE (id_type, value)
);

CREATE TABLE affiliations (
    id         TEXT PRIMARY KEY,
    person_id  TEXT NOT NULL REFERENCES people(id) ON DELETE CASCADE,
    org_id     TEXT NOT NULL REFERENCES orgs(id),
    role       TEXT NOT NULL,
    is_primary BIGINT NOT NULL,
    begin_date TEXT,
    end_date   TEXT,
    UNIQUE (person_id, org_id, role)
);
CREATE INDEX affiliations_org ON affiliations(org_id);

CREATE TABLE clients (
    id                       TEXT PRIMARY KEY,
    name                     TEXT NOT NULL,
    secret_digest            TEXT NOT NULL,
    grant_types              TEXT NOT NULL,
    scopes                   TEXT NOT NULL,
    access_token_ttl_seconds BIGINT,
    enabled                  BIGINT NOT NULL,
    created_at               BIGINT NOT NULL,
    updated_at               BIGINT NOT NULL,
    secret_rotated_at        BIGINT NOT NULL
);

CREATE TABLE signing_keys (
    kid             TEXT PRIMARY KEY,
    alg             TEXT NOT NULL,
    status          TEXT NOT NULL,
    private_key_enc TEXT NOT NULL,
    public_jwk      TEXT NOT NULL,
    created_at      BIGINT NOT NULL
);

CREATE TABLE roles (
    code        TEXT PRIMARY KEY,
    name        TEXT NOT NULL,
    description TEXT NOT NULL,
    privileged  BIGINT NOT NULL,
    builtin     BIGINT NOT NULL
);

CREATE TABLE authz_policies (
    id      TEXT PRIMARY KEY,
    ptype   TEXT NOT NULL,
    v0      TEXT NOT NULL,
    v1      TEXT NOT NULL,
    v2      TEXT NOT NULL,
    v3      TEXT NOT NULL,
    builtin BIGINT NOT NULL,
    UNIQUE (ptype, v0, v1, v2, v3)
);

CREATE TABLE role_assignments (
    id         TEXT PRIMARY KEY,
    subject    TEXT NOT NULL,
    role       TEXT NOT NULL REFERENCES roles(code),
    scope      TEXT NOT NULL,
    granted_by TEXT NOT NULL,
    granted_at BIGINT NOT NULL,
    expires_at BIGINT,
    UNIQUE (subject, role, scope)
);
CREATE INDEX role_assignments_subject ON role_assignments(subject);

-- Bumped by every change to policies or assignments; replicas reload casbin when it moves.
CREATE TABLE authz_version (
    id      BIGINT PRIMARY KEY,
    version BIGINT NOT NULL
);
INSERT INTO authz_version (id, version) VALUES (1, 0);

CREATE TABLE audit_events (
    seq         BIGINT PRIMARY KEY,
    id          TEXT NOT NULL UNIQUE,
    at          BIGINT NOT NULL,
    actor_kind  TEXT NOT NULL,
    actor_id    TEXT NOT NULL,
    action      TEXT NOT NULL,
    outcome     TEXT NOT NULL,
    target_kind TEXT NOT NULL,
    target_id   TEXT NOT NULL,
    request_id  TEXT,
    source_ip   TEXT,
    details     TEXT NOT NULL,
    prev_hash   TEXT NOT NULL,
    hash        TEXT NOT NULL
);
CREATE INDEX audit_events_at ON audit_events(at);
CREATE INDEX audit_events_target ON audit_events(target_kind, target_id);
CREATE INDEX audit_events_actor ON audit_events(actor_kind, actor_id);

-- The chain head: the last sequence number and hash. Appending locks this row, so
-- concurrent writers (and replicas) extend one chain in order.
CREATE TABLE audit_head (
    id   BIGINT PRIMARY KEY,
    seq  BIGINT NOT NULL,
    hash TEXT NOT NULL
);
INSERT INTO audit_head (id, seq, hash) VALUES (1, 0, '0000000000000000000000000000000000000000000000000000000000000000');
