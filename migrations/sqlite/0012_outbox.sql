-- The transactional outbox (issue 16): every audited change to a person or an org
-- also writes one event here, in the same transaction, so what the hub tells other
-- systems is exactly what it committed. `seq` orders all events (taken from
-- outbox_head inside the writing transaction, like the audit chain's head);
-- `subject_seq` numbers one subject's events 1, 2, 3… so a consumer can order them and
-- see a gap. `data` is the resource as the API returns it (JSON text).
CREATE TABLE outbox_events (
    seq BIGINT PRIMARY KEY,
    id TEXT NOT NULL,
    type TEXT NOT NULL,
    subject TEXT NOT NULL,
    subject_seq BIGINT NOT NULL,
    created_at BIGINT NOT NULL,
    data TEXT NOT NULL,
    CONSTRAINT outbox_events_id_key UNIQUE (id),
    CONSTRAINT outbox_events_subject_seq_key UNIQUE (subject, subject_seq)
);
CREATE INDEX outbox_events_type_idx ON outbox_events (type, seq);
CREATE INDEX outbox_events_created_idx ON outbox_events (created_at);

CREATE TABLE outbox_head (
    id BIGINT PRIMARY KEY,
    seq BIGINT NOT NULL
);
INSERT INTO outbox_head (id, seq) VALUES (1, 0);

-- The last number given to each subject's events.
CREATE TABLE outbox_subjects (
    subject TEXT PRIMARY KEY,
    seq BIGINT NOT NULL
);
