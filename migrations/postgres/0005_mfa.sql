-- Second factors (PostgreSQL): passkeys, TOTP, recovery codes, and sign-ins waiting for
-- their second factor. Forward-only.

-- WebAuthn credentials (passkeys). `credential` is webauthn-rs's Passkey as JSON (the
-- public key, counter and backup state); `credential_id` (base64url) finds it when a
-- browser presents a discoverable credential.
CREATE TABLE passkeys (
    id            TEXT PRIMARY KEY,
    person_id     TEXT NOT NULL REFERENCES people(id) ON DELETE CASCADE,
    credential_id TEXT NOT NULL UNIQUE,
    name          TEXT NOT NULL,
    credential    TEXT NOT NULL,
    created_at    BIGINT NOT NULL,
    last_used_at  BIGINT
);
CREATE INDEX passkeys_person ON passkeys(person_id);

-- One TOTP authenticator per person (RFC 6238). The shared secret is sealed under the
-- master key; `last_step` is the last time step accepted, so a code works only once
-- (RFC 6238 §5.2). Unconfirmed until the person types a first code.
CREATE TABLE totp_factors (
    person_id    TEXT PRIMARY KEY REFERENCES people(id) ON DELETE CASCADE,
    secret       TEXT NOT NULL,
    confirmed_at BIGINT,
    last_step    BIGINT NOT NULL DEFAULT 0,
    created_at   BIGINT NOT NULL
);

-- Recovery codes: only their keyed digests; each works once.
CREATE TABLE recovery_codes (
    person_id   TEXT NOT NULL REFERENCES people(id) ON DELETE CASCADE,
    code_digest TEXT NOT NULL,
    created_at  BIGINT NOT NULL,
    used_at     BIGINT,
    PRIMARY KEY (person_id, code_digest)
);

-- Short-lived ceremonies: a sign-in that passed its first factor and waits for the
-- second (purpose `signin`), a passkey registration (`register`), a passwordless
-- sign-in (`passkey`). Found by the digest of a random handle held in a cookie; the
-- WebAuthn challenge state sits here, never in the browser.
CREATE TABLE mfa_challenges (
    id           TEXT PRIMARY KEY,
    purpose      TEXT NOT NULL,
    person_id    TEXT REFERENCES people(id) ON DELETE CASCADE,
    first_amr    TEXT NOT NULL DEFAULT '[]',
    first_acr    TEXT,
    auth_request TEXT,
    state        TEXT,
    attempts     BIGINT NOT NULL DEFAULT 0,
    created_at   BIGINT NOT NULL,
    expires_at   BIGINT NOT NULL
);
CREATE INDEX mfa_challenges_expires ON mfa_challenges(expires_at);
