//! The jobs' SQL: claiming a slot, the lease, finishing a run, and the history.

use super::model::{JobRun, OUTCOME_FAILED, OUTCOME_RUNNING};
use super::JobError;
use crate::clock::Timestamp;
use crate::store::{self, Row, Store, StoreError, Tx};

const RUN_COLUMNS: &str =
    "id, name, kind, slot, replica, started_at, ended_at, outcome, items, detail, error";

/// A run about to be claimed.
pub(super) struct NewRun<'a> {
    pub id: &'a str,
    pub name: &'a str,
    pub kind: &'a str,
    pub slot: Timestamp,
    pub replica: &'a str,
    pub now: Timestamp,
    pub lease_until: Timestamp,
}

/// Marks `name`'s runs whose lease passed as failed: their process died or hung
/// (a live run renews its lease every third of it). Returns how many.
pub(super) async fn fail_expired(
    tx: &mut Tx,
    name: &str,
    now: Timestamp,
) -> Result<u64, StoreError> {
    let done = sqlx::query(
        "UPDATE job_runs SET outcome = $1, ended_at = $2, error = $3 \
         WHERE name = $4 AND outcome = $5 AND lease_until < $2",
    )
    .bind(OUTCOME_FAILED)
    .bind(now)
    .bind("the run stopped renewing its lease (its process died or hung); the next claim marked it failed")
    .bind(name)
    .bind(OUTCOME_RUNNING)
    .execute(&mut **tx)
    .await?;
    Ok(done.rows_affected())
}

/// Whether a run of `name` holds a live lease (call after [`fail_expired`]).
pub(super) async fn is_running(tx: &mut Tx, name: &str) -> Result<bool, StoreError> {
    let n: i64 =
        sqlx::query_scalar("SELECT COUNT(*) FROM job_runs WHERE name = $1 AND outcome = $2")
            .bind(name)
            .bind(OUTCOME_RUNNING)
            .fetch_one(&mut **tx)
            .await?;
    Ok(n > 0)
}

/// The last scheduled slot taken for `name`, if the job ever ran here.
pub(super) async fn last_slot(tx: &mut Tx, name: &str) -> Result<Option<Timestamp>, StoreError> {
    Ok(
        sqlx::query_scalar("SELECT last_slot FROM job_state WHERE name = $1")
            .bind(name)
            .fetch_optional(&mut **tx)
            .await?,
    )
}

/// Records `slot` as taken for `name` (never moving back: a replica whose clock is
/// behind cannot make an older slot run after a newer one).
pub(super) async fn advance_state(
    tx: &mut Tx,
    name: &str,
    slot: Timestamp,
    now: Timestamp,
) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO job_state (name, last_slot, updated_at) VALUES ($1, $2, $3) \
         ON CONFLICT (name) DO UPDATE SET \
         last_slot = CASE WHEN excluded.last_slot > job_state.last_slot \
                          THEN excluded.last_slot ELSE job_state.last_slot END, \
         updated_at = excluded.updated_at",
    )
    .bind(name)
    .bind(slot)
    .bind(now)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// Inserts the run's row; `false` when another claim holds the same (job, kind,
/// slot) — that replica runs it.
pub(super) async fn insert_run(tx: &mut Tx, run: &NewRun<'_>) -> Result<bool, StoreError> {
    let inserted: Option<String> = sqlx::query_scalar(
        "INSERT INTO job_runs (id, name, kind, slot, replica, started_at, lease_until, outcome) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8) \
         ON CONFLICT (name, kind, slot) DO NOTHING RETURNING id",
    )
    .bind(run.id)
    .bind(run.name)
    .bind(run.kind)
    .bind(run.slot)
    .bind(run.replica)
    .bind(run.now)
    .bind(run.lease_until)
    .bind(OUTCOME_RUNNING)
    .fetch_optional(&mut **tx)
    .await?;
    Ok(inserted.is_some())
}

/// Extends a live run's lease; `false` when the row is no longer running (another
/// replica took it for dead).
pub(super) async fn renew_lease(
    store: &Store,
    id: &str,
    until: Timestamp,
) -> Result<bool, StoreError> {
    let done = sqlx::query("UPDATE job_runs SET lease_until = $1 WHERE id = $2 AND outcome = $3")
        .bind(until)
        .bind(id)
        .bind(OUTCOME_RUNNING)
        .execute(store.writer())
        .await?;
    Ok(done.rows_affected() == 1)
}

/// How a run ended.
pub(super) struct Ending<'a> {
    pub outcome: &'a str,
    pub items: Option<i64>,
    pub detail: Option<&'a str>,
    pub error: Option<&'a str>,
}

/// Records how the run ended. What the run did is the truth even when another
/// replica already marked it failed for a lapsed lease.
pub(super) async fn finish_run(
    store: &Store,
    id: &str,
    now: Timestamp,
    end: &Ending<'_>,
) -> Result<(), StoreError> {
    sqlx::query(
        "UPDATE job_runs SET outcome = $1, ended_at = $2, lease_until = $2, items = $3, \
         detail = $4, error = $5 WHERE id = $6",
    )
    .bind(end.outcome)
    .bind(now)
    .bind(end.items)
    .bind(end.detail)
    .bind(end.error)
    .bind(id)
    .execute(store.writer())
    .await?;
    Ok(())
}

/// At shutdown: this process's runs that did not finish in the grace period.
pub(super) async fn fail_unfinished(
    store: &Store,
    replica: &str,
    now: Timestamp,
) -> Result<u64, StoreError> {
    let done = sqlx::query(
        "UPDATE job_runs SET outcome = $1, ended_at = $2, error = $3 \
         WHERE replica = $4 AND outcome = $5",
    )
    .bind(OUTCOME_FAILED)
    .bind(now)
    .bind("the hub stopped before the run finished")
    .bind(replica)
    .bind(OUTCOME_RUNNING)
    .execute(store.writer())
    .await?;
    Ok(done.rows_affected())
}

fn read_run(r: &Row) -> Result<JobRun, StoreError> {
    Ok(JobRun {
        id: store::get(r, "id")?,
        job: store::get(r, "name")?,
        kind: store::get(r, "kind")?,
        slot: store::get(r, "slot")?,
        replica: store::get(r, "replica")?,
        started_at: store::get(r, "started_at")?,
        ended_at: store::get(r, "ended_at")?,
        outcome: store::get(r, "outcome")?,
        items: store::get(r, "items")?,
        detail: store::get(r, "detail")?,
        error: store::get(r, "error")?,
    })
}

/// One run, read from the writer (just after this process changed it).
pub(super) async fn get_run(store: &Store, id: &str) -> Result<Option<JobRun>, StoreError> {
    let row = sqlx::query(&format!("SELECT {RUN_COLUMNS} FROM job_runs WHERE id = $1"))
        .bind(id)
        .fetch_optional(store.writer())
        .await?;
    row.as_ref().map(read_run).transpose()
}

/// Which runs to list: one job's, newest first, after a cursor.
#[derive(Debug, Clone)]
pub struct RunFilter {
    pub name: String,
    /// The position (`started_at`, `id`) of the last run of the previous page.
    pub before: Option<(i64, String)>,
    pub limit: i64,
}

/// A job's runs, newest first.
pub async fn list_runs(store: &Store, f: &RunFilter) -> Result<Vec<JobRun>, JobError> {
    // No cursor: every run started before the end of time.
    let (at, id) = f.before.clone().unwrap_or((i64::MAX, String::new()));
    let rows = sqlx::query(&format!(
        "SELECT {RUN_COLUMNS} FROM job_runs WHERE name = $1 \
         AND (started_at < $2 OR (started_at = $2 AND id < $3)) \
         ORDER BY started_at DESC, id DESC LIMIT $4"
    ))
    .bind(&f.name)
    .bind(at)
    .bind(id)
    .bind(f.limit)
    .fetch_all(store.reader())
    .await?;
    Ok(rows.iter().map(read_run).collect::<Result<_, _>>()?)
}

/// The latest run of `name`.
pub(super) async fn last_run(store: &Store, name: &str) -> Result<Option<JobRun>, StoreError> {
    let row = sqlx::query(&format!(
        "SELECT {RUN_COLUMNS} FROM job_runs WHERE name = $1 \
         ORDER BY started_at DESC, id DESC LIMIT 1"
    ))
    .bind(name)
    .fetch_optional(store.reader())
    .await?;
    row.as_ref().map(read_run).transpose()
}

/// Deletes finished runs that started before `before`; never a running one.
pub(super) async fn delete_finished_before(
    store: &Store,
    before: Timestamp,
) -> Result<u64, StoreError> {
    let done = sqlx::query("DELETE FROM job_runs WHERE started_at < $1 AND outcome <> $2")
        .bind(before)
        .bind(OUTCOME_RUNNING)
        .execute(store.writer())
        .await?;
    Ok(done.rows_affected())
}
