//! Refresh-token rotation writes, committed in groups.
//!
//! Every refresh spends one token and stores its successor (RFC 9700 §4.14.2). On
//! SQLite all writes go through one connection, so a transaction per request caps
//! the endpoint at one rotation per round of statements. Requests therefore do their
//! reads and signing first and hand only the write to this task, which takes every
//! rotation waiting and commits them together in four statements: BEGIN, one
//! conditional `UPDATE … RETURNING` that spends the tokens still live, one multi-row
//! `INSERT` of the successors, COMMIT (group commit; on PostgreSQL it saves one WAL
//! flush per rotation).
//!
//! The conditional update is what makes this safe: a token spent, expired or revoked
//! since the request read it (another request, a sign-out, a revocation) is not in
//! `RETURNING`, its request gets `false` and takes the slow path, which says why and
//! treats a second use as reuse. Of two rotations of the same token in one batch only
//! the first wins.

use std::collections::HashSet;
use std::sync::Arc;

use super::OidcError;
use crate::clock::Clock;
use crate::store::{params, Batcher, Store, StoreError};

/// At most this many rotations per transaction (the update binds 1 + n
/// parameters, the insert 4n; SQLite allows 32 766 per statement).
const MAX_BATCH: usize = 256;

/// One rotation: spend `old_digest`, and store its successor if there is one (a
/// client that lost the refresh_token grant gets none).
pub struct Rotation {
    pub old_digest: String,
    pub successor: Option<Successor>,
}

pub struct Successor {
    pub digest: String,
    pub grant_id: String,
    pub created_at_ms: i64,
    pub expires_at_ms: i64,
}

/// The handle requests use (a [`Batcher`] on a thread of its own).
#[derive(Clone, Debug)]
pub struct RefreshWriter(Batcher<Rotation, bool>);

impl RefreshWriter {
    pub fn start(store: Store, clock: Arc<dyn Clock>) -> std::io::Result<RefreshWriter> {
        let batcher = Batcher::start("refresh-writer", MAX_BATCH, move |rotations| {
            let (store, now) = (store.clone(), clock.now_ms());
            async move {
                let started = std::time::Instant::now();
                let won = write_batch(&store, now, &rotations).await;
                crate::ops::metrics::refresh_batch(
                    rotations.len(),
                    started.elapsed().as_secs_f64(),
                );
                won
            }
        })?;
        Ok(RefreshWriter(batcher))
    }

    /// Spends the old token and stores the new one; `false` when the old token was
    /// no longer live at commit time (nothing was written for this rotation).
    pub async fn rotate(&self, rotation: Rotation) -> Result<bool, OidcError> {
        self.0.call(rotation).await.map_err(OidcError::server_error)
    }
}

async fn write_batch(store: &Store, now: i64, jobs: &[Rotation]) -> Result<Vec<bool>, StoreError> {
    let mut digests: Vec<&str> = jobs.iter().map(|r| r.old_digest.as_str()).collect();
    digests.sort_unstable();
    digests.dedup();
    // The grant must still stand at commit time (not revoked, not expired, its
    // session alive unless offline): a sign-out between the request's read and this
    // write must not yield a new token.
    let spend = format!(
        "UPDATE refresh_tokens SET used_at = $1 \
         WHERE used_at IS NULL AND expires_at > $1 AND token_digest IN ({}) \
         AND EXISTS (SELECT 1 FROM grants g WHERE g.id = refresh_tokens.grant_id AND {}) \
         RETURNING token_digest",
        params(2, digests.len()),
        super::grants_repo::LIVE_GRANT
    );
    let mut tx = store.begin().await?;
    let mut q = sqlx::query_scalar::<_, String>(&spend)
        .persistent(false)
        .bind(now);
    for d in &digests {
        q = q.bind(*d);
    }
    let spent: HashSet<String> = q.fetch_all(&mut *tx).await?.into_iter().collect();
    let mut taken: HashSet<&str> = HashSet::with_capacity(spent.len());
    let won: Vec<bool> = jobs
        .iter()
        .map(|r| spent.contains(&r.old_digest) && taken.insert(r.old_digest.as_str()))
        .collect();
    let successors: Vec<&Successor> = jobs
        .iter()
        .zip(&won)
        .filter(|(_, w)| **w)
        .filter_map(|(r, _)| r.successor.as_ref())
        .collect();
    if !successors.is_empty() {
        let rows = (0..successors.len())
            .map(|i| format!("({})", params(1 + 4 * i, 4)))
            .collect::<Vec<_>>()
            .join(", ");
        let insert = format!(
            "INSERT INTO refresh_tokens (token_digest, grant_id, created_at, expires_at) VALUES {rows}"
        );
        let mut q = sqlx::query(&insert).persistent(false);
        for s in &successors {
            q = q
                .bind(&s.digest)
                .bind(&s.grant_id)
                .bind(s.created_at_ms)
                .bind(s.expires_at_ms);
        }
        q.execute(&mut *tx).await?;
    }
    tx.commit().await?;
    Ok(won)
}
