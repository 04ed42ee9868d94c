-- Scheduled jobs (issue 16): each run is a row keyed by (job, kind, slot), where the
-- slot is the scheduled time the run belongs to (Unix ms; for a manual run, the time
-- it was asked for). The replica whose INSERT takes the row runs the job; another
-- replica's INSERT for the same slot conflicts and it skips, so a slot runs once
-- across replicas on either database. A run holds a lease (`lease_until`, renewed
-- while it works); a `running` row whose lease has passed is a run that died with
-- its process, and the next claim marks it failed.
CREATE TABLE job_runs (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    kind TEXT NOT NULL,
    slot BIGINT NOT NULL,
    replica TEXT NOT NULL,
    started_at BIGINT NOT NULL,
    lease_until BIGINT NOT NULL,
    ended_at BIGINT,
    outcome TEXT NOT NULL,
    items BIGINT,
    detail TEXT,
    error TEXT,
    CONSTRAINT job_runs_name_kind_slot_key UNIQUE (name, kind, slot)
);
CREATE INDEX job_runs_name_started_idx ON job_runs (name, started_at, id);
CREATE INDEX job_runs_outcome_idx ON job_runs (outcome, name);

-- The last scheduled slot taken per job: a slot at or before it is never run again,
-- and the slots between it and the next due one are the ones a downtime missed.
CREATE TABLE job_state (
    name TEXT PRIMARY KEY,
    last_slot BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);
