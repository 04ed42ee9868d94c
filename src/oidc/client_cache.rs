//! Client registrations cached per replica. The token endpoint is the hottest path
//! of an identity provider; reading the client row on every request would make the
//! database its bottleneck. Entries live `oauth.client_cache_seconds`; changes made
//! through this replica invalidate them at once, other replicas see them within the TTL.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use super::clients::Client;
use super::clients_repo::find_client;
use super::ClientError;
use crate::store::Store;

/// Bounds memory if someone sends many distinct client ids.
const MAX_ENTRIES: usize = 10_000;

#[derive(Debug)]
pub struct ClientCache {
    ttl_ms: i64,
    entries: RwLock<HashMap<String, (Arc<Client>, i64)>>,
}

impl ClientCache {
    pub fn new(ttl_seconds: i64) -> Self {
        Self {
            ttl_ms: ttl_seconds * 1000,
            entries: RwLock::new(HashMap::new()),
        }
    }

    /// The registered client, from the cache when fresh. Unknown ids are not cached.
    pub async fn get(
        &self,
        store: &Store,
        client_id: &str,
        now_ms: i64,
    ) -> Result<Option<Arc<Client>>, ClientError> {
        if let Ok(map) = self.entries.read() {
            if let Some((c, at)) = map.get(client_id) {
                if now_ms - at < self.ttl_ms {
                    return Ok(Some(c.clone()));
                }
            }
        }
        let Some(client) = find_client(store.reader(), client_id).await? else {
            self.invalidate(client_id);
            return Ok(None);
        };
        let client = Arc::new(client);
        if self.ttl_ms > 0 {
            if let Ok(mut map) = self.entries.write() {
                if map.len() >= MAX_ENTRIES {
                    map.clear();
                }
                map.insert(client_id.to_string(), (client.clone(), now_ms));
            }
        }
        Ok(Some(client))
    }

    pub fn invalidate(&self, client_id: &str) {
        if let Ok(mut map) = self.entries.write() {
            map.remove(client_id);
        }
    }
}
