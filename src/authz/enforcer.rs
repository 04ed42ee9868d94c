//! The casbin enforcer, built from the policies and role assignments in the store.
//!
//! Each replica keeps one in memory and rebuilds it when the `authz_version` row
//! moves (any replica's change bumps it in the same transaction) or when the
//! earliest time-bound assignment expires. Checking the version costs one indexed
//! read per guarded request; in exchange a revoked role stops working at once on
//! every replica.

use casbin::{CoreApi, DefaultModel, Enforcer, MemoryAdapter, MgmtApi};
use tokio::sync::RwLock;

use super::catalog::MODEL;
use super::repo;
use super::AuthzError;
use crate::store::Store;

struct Loaded {
    version: i64,
    /// When the next time-bound assignment expires: rebuild then.
    next_expiry: Option<i64>,
    enforcer: Enforcer,
}

#[derive(Default)]
pub struct Authorizer {
    loaded: RwLock<Option<Loaded>>,
}

impl std::fmt::Debug for Authorizer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Authorizer")
    }
}

impl Authorizer {
    /// True when `subject` may do `act` on `obj` in any of `domains`.
    pub async fn allows(
        &self,
        store: &Store,
        now_ms: i64,
        subject: &str,
        domains: &[String],
        obj: &str,
        act: &str,
    ) -> Result<bool, AuthzError> {
        let version = repo::policy_version(store).await?;
        {
            let guard = self.loaded.read().await;
            if let Some(l) = guard.as_ref() {
                if l.version == version && l.next_expiry.is_none_or(|t| now_ms < t) {
                    return decide(&l.enforcer, subject, domains, obj, act);
                }
            }
        }
        let mut guard = self.loaded.write().await;
        let fresh = match guard.as_ref() {
            Some(l) => l.version == version && l.next_expiry.is_none_or(|t| now_ms < t),
            None => false,
        };
        if !fresh {
            *guard = Some(load(store, now_ms, version).await?);
        }
        match guard.as_ref() {
            Some(l) => decide(&l.enforcer, subject, domains, obj, act),
            None => Err(AuthzError::Policy("enforcer missing after load".into())),
        }
    }
}

fn decide(
    e: &Enforcer,
    subject: &str,
    domains: &[String],
    obj: &str,
    act: &str,
) -> Result<bool, AuthzError> {
    for dom in domains {
        if e.enforce((subject, dom.as_str(), obj, act))? {
            return Ok(true);
        }
    }
    Ok(false)
}

async fn load(store: &Store, now_ms: i64, version: i64) -> Result<Loaded, AuthzError> {
    let model = DefaultModel::from_str(MODEL).await?;
    let mut enforcer = Enforcer::new(model, MemoryAdapter::default()).await?;
    let policies: Vec<Vec<String>> = repo::all_policies(store)
        .await?
        .into_iter()
        .map(Vec::from)
        .collect();
    if !policies.is_empty() {
        enforcer.add_policies(policies).await?;
    }
    let rows = repo::live_groupings(store, now_ms).await?;
    let mut groupings = Vec::with_capacity(rows.len());
    let mut next_expiry: Option<i64> = None;
    for g in rows {
        if let Some(exp) = g.expires_at_ms {
            next_expiry = Some(next_expiry.map_or(exp, |n| n.min(exp)));
        }
        groupings.push(vec![g.subject, g.role, g.scope]);
    }
    if !groupings.is_empty() {
        enforcer.add_grouping_policies(groupings).await?;
    }
    tracing::debug!(version, "authorization policies loaded");
    Ok(Loaded {
        version,
        next_expiry,
        enforcer,
    })
}
