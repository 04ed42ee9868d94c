-- Dispatch of the outbox (issue 16): each subscriber (a NATS JetStream stream, a
-- RabbitMQ exchange, a webhook endpoint) reads the one ordered event log with its own
-- cursor, so one slow or broken receiver never holds up another.
--
-- `cursor` is the last event position the subscriber is done with (delivered, skipped
-- by its type filter, or dead-lettered). Events go out in position order, so one
-- subject's events arrive in their `subject_seq` order. `attempts` counts failed tries
-- of the event just after the cursor; `next_attempt_at` is when to try again
-- (exponential backoff with jitter). `lease_owner`/`lease_until`: the replica
-- dispatching for this subscriber now; another takes over when the lease runs out.
-- Broker URLs and their passwords stay in the configuration, never here; a webhook
-- made through the API keeps its URL here and its signing secret sealed with the
-- master key.
CREATE TABLE outbox_subscribers (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    kind TEXT NOT NULL,
    source TEXT NOT NULL,
    url TEXT,
    secret_sealed TEXT,
    types TEXT NOT NULL,
    owner_email TEXT,
    state TEXT NOT NULL,
    state_reason TEXT,
    cursor BIGINT NOT NULL,
    attempts BIGINT NOT NULL,
    next_attempt_at BIGINT NOT NULL,
    last_error TEXT,
    last_success_at BIGINT,
    last_failure_at BIGINT,
    dead_in_a_row BIGINT NOT NULL,
    lease_owner TEXT,
    lease_until BIGINT,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    CONSTRAINT outbox_subscribers_name_key UNIQUE (name)
);

-- Events a subscriber gave up on after the configured number of attempts. The event
-- is copied (CloudEvent JSON), so it can be replayed after retention removed it from
-- outbox_events. `state`: dead, or requeued (an admin asked for another try; the
-- dispatcher sends it before going on, and deletes the row once delivered).
CREATE TABLE outbox_dead_letters (
    subscriber_id TEXT NOT NULL,
    seq BIGINT NOT NULL,
    event_id TEXT NOT NULL,
    type TEXT NOT NULL,
    subject TEXT NOT NULL,
    event TEXT NOT NULL,
    attempts BIGINT NOT NULL,
    last_error TEXT NOT NULL,
    state TEXT NOT NULL,
    dead_at BIGINT NOT NULL,
    requeued_at BIGINT,
    PRIMARY KEY (subscriber_id, seq)
);
CREATE INDEX outbox_dead_letters_state_idx ON outbox_dead_letters (state, subscriber_id, seq);
