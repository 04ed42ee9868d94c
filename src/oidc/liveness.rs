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

use super::OidcError;
use crate::clock::Clock;
use crate::store::{self, params, Batcher, Store, StoreError};

const MAX_BATCH: usize = 256;

/// The revocation key of an access token's `jti` (RFC 7009), and its grant for
/// person tokens.
struct Check {
    revoked_key: String,
    grant_id: Option<String>,
}

/// The handle requests use (a [`Batcher`] on a thread of its own).
#[derive(Clone, Debug)]
pub struct LivenessChecker(Batcher<Check, bool>);

impl LivenessChecker {
    pub fn start(store: Store, clock: Arc<dyn Clock>) -> std::io::Result<LivenessChecker> {
        let batcher = Batcher::start("token-liveness", MAX_BATCH, move |checks: Vec<Check>| {
            let (store, now) = (store.clone(), clock.now_ms());
            async move {
                let (revoked, live) = check_batch(&store, now, &checks).await?;
                Ok(checks
                    .iter()
                    .map(|c| {
                        !revoked.contains(&c.revoked_key)
                            && c.grant_id.as_ref().is_none_or(|g| live.contains(g))
                    })
                    .collect())
            }
        })?;
        Ok(LivenessChecker(batcher))
    }

    /// The token's `jti` is not revoked and its grant, if any, still stands.
    pub async fn is_live(&self, jti: &str, grant_id: Option<&str>) -> Result<bool, OidcError> {
        let check = Check {
            revoked_key: format!("revoked:{jti}"),
            grant_id: grant_id.map(str::to_string),
        };
        self.0.call(check).await.map_err(OidcError::server_error)
    }
}

/// The revoked `jti` keys and the live grants among those asked about, in one query.
async fn check_batch(
    store: &Store,
    now: i64,
    checks: &[Check],
) -> Result<(HashSet<String>, HashSet<String>), StoreError> {
    let mut keys: Vec<&str> = checks.iter().map(|c| c.revoked_key.as_str()).collect();
    keys.sort_unstable();
    keys.dedup();
    let mut grants: Vec<&str> = checks
        .iter()
        .filter_map(|c| c.grant_id.as_deref())
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
            super::grants_repo::LIVE_GRANT
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
