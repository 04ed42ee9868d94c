-- The mail outbox (issue 16): every email the hub sends is first a row here, written
-- in the transaction of the change it tells about, keyed by `notice_key` so that the
-- same notice is never queued twice. A sender worker on any replica claims due rows
-- with a lease (`lease_owner`, `lease_until`: a conditional UPDATE, portable), sends,
-- and marks the row `sent` only after the SMTP server accepted the message.
-- Temporary failures come back at `next_attempt_at` (exponential backoff with
-- jitter); permanent ones end in `failed` with the server's reply in `last_error`.
-- `seq` orders the rows for the admin listing's cursor. `data` is JSON text.
CREATE TABLE mail_outbox (
    seq BIGINT PRIMARY KEY,
    id TEXT NOT NULL,
    notice_key TEXT NOT NULL,
    template TEXT NOT NULL,
    recipient TEXT NOT NULL,
    data TEXT NOT NULL,
    state TEXT NOT NULL,
    attempts BIGINT NOT NULL,
    next_attempt_at BIGINT NOT NULL,
    last_error TEXT,
    lease_owner TEXT,
    lease_until BIGINT,
    created_at BIGINT NOT NULL,
    sent_at BIGINT,
    CONSTRAINT mail_outbox_notice_key_key UNIQUE (notice_key),
    CONSTRAINT mail_outbox_id_key UNIQUE (id)
);
CREATE INDEX mail_outbox_due_idx ON mail_outbox (state, next_attempt_at);
CREATE INDEX mail_outbox_state_seq_idx ON mail_outbox (state, seq);

-- The last `seq` given (taken inside the writing transaction, like the outbox head).
CREATE TABLE mail_outbox_head (
    id BIGINT PRIMARY KEY,
    seq BIGINT NOT NULL
);
INSERT INTO mail_outbox_head (id, seq) VALUES (1, 0);
