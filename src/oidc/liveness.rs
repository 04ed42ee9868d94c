//! Whether access tokens still stand, checked in groups.
//!
//! Every introspection and UserInfo call must see a revocation made a moment ago,
//! on any replica, so the check reads the store each time. One round trip per
//! request to the database's worker thread cost more than the rest of the request,
//! so concurrent checks are gathered and answered by one query: every check is
//! answered by a query that started after the check was asked (nothing is cached),
//! and under load one query serves many requests.

use std::collections::HashSet;
use std::sync::Arc;

use tokio::sync::{mpsc, oneshot};

use super::refresh_writer::{params, spawn_dedicated};
use super::OAuthError;
use crate::clock::Clock;
use crate::store::{self, Store, StoreError};

const MAX_BATCH: usize = 256;

/// The revocation key of an access token's `jti` (RFC 7009), and its grant for
/// person tokens.
struct Check {
    revoked_key: String,
    grant_id: Option<String>,
}

type Job = (Check, oneshot::Sender<Result<bool, String>>);

#[derive(Clone)]
pub struct LivenessChecker {
    queue: mpsc::Sender<Job>,
}

impl std::fmt::Debug for LivenessChecker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("LivenessChecker")
    }
}

impl LivenessChecker {
    /// On a thread of its own, for the same reason as the refresh writer: on the
    /// shared runtime its wake-ups would wait behind the requests it serves.
    pub fn start(store: Store, clock: Arc<dyn Clock>) -> std::io::Result<LivenessChecker> {
        let (queue, jobs) = mpsc::channel(4 * MAX_BATCH);
        spawn_dedicated("token-liveness", run(store, clock, jobs))?;
        Ok(LivenessChecker { queue })
    }

    /// The token's `jti` is not revoked and its grant, if any, still stands.
    pub async fn is_live(&self, jti: &str, grant_id: Option<&str>) -> Result<bool, OAuthError> {
        let (done, wait) = oneshot::channel();
        let check = Check {
            revoked_key: format!("revoked:{jti}"),
            grant_id: grant_id.map(str::to_string),
        };
        let stopped = |_| OAuthError::server_error("the token liveness checker has stopped");
        self.queue.send((check, done)).await.map_err(stopped)?;
        wait.await
            .map_err(|_| OAuthError::server_error("the token liveness checker has stopped"))?
            .map_err(OAuthError::server_error)
    }
}

async fn run(store: Store, clock: Arc<dyn Clock>, mut queue: mpsc::Receiver<Job>) {
    let mut jobs: Vec<Job> = Vec::with_capacity(MAX_BATCH);
    while queue.recv_many(&mut jobs, MAX_BATCH).await > 0 {
        match check_batch(&store, clock.now_ms(), &jobs).await {
            Ok((revoked, live)) => {
                for (c, done) in jobs.drain(..) {
                    let ok = !revoked.contains(&c.revoked_key)
                        && c.grant_id.as_ref().is_none_or(|g| live.contains(g));
                    let _ = done.send(Ok(ok));
                }
            }
            Err(e) => {
                tracing::error!(error = %e, "token liveness check failed");
                let msg = e.to_string();
                for (_, done) in jobs.drain(..) {
                    let _ = done.send(Err(msg.clone()));
                }
            }
        }
    }
}

/// The revoked `jti` keys and the live grants among those asked about, in one query.
async fn check_batch(
    store: &Store,
    now: i64,
    jobs: &[Job],
) -> Result<(HashSet<String>, HashSet<String>), StoreError> {
    let mut keys: Vec<&str> = jobs.iter().map(|(c, _)| c.revoked_key.as_str()).collect();
    keys.sort_unstable();
    keys.dedup();
    let mut grants: Vec<&str> = jobs
        .iter()
        .filter_map(|(c, _)| c.grant_id.as_deref())
        .collect();
    grants.sort_unstable();
    grants.dedup();
    let mut sql = format!(
        "SELECT 'j' AS kind, jti AS id FROM used_jtis WHERE jti IN ({})",
        params(2, keys.len())
    );
    if !grants.is_empty() {
        sql.push_str(&format!(
            " UNION ALL SELECT 'g' AS kind, g.id AS id FROM grants g WHERE g.id IN ({}) AND {}",
            params(2 + keys.len(), grants.len()),
            super::grants::LIVE_GRANT
        ));
    }
    let mut q = sqlx::query(&sql).persistent(false).bind(now);
    for k in keys.iter().chain(grants.iter()) {
        q = q.bind(*k);
    }
    let (mut revoked, mut live) = (HashSet::new(), HashSet::new());
    for row in q.fetch_all(store.reader()).await? {
        let id: String = store::get(&row, "id")?;
        if store::get::<String>(&row, "kind")? == "j" {
            revoked.insert(id);
        } else {
            live.insert(id);
        }
    }
    Ok((revoked, live))
}
