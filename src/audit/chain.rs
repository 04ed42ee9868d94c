use serde::Serialize;

use super::AuditError;
use crate::api::RequestMeta;
use crate::crypto::AuditKey;
use crate::store::{self, Tx};

/// Who acted and from where: a person, an API client, or the system (CLI, jobs).
#[derive(Clone, Debug)]
pub struct Origin {
    pub actor_kind: &'static str,
    pub actor_id: String,
    pub meta: RequestMeta,
}

impl Origin {
    pub fn system(what: &str) -> Origin {
        Origin {
            actor_kind: "system",
            actor_id: what.to_string(),
            meta: RequestMeta::default(),
        }
    }

    /// The operator running a CLI command (their login name when known).
    pub fn cli() -> Origin {
        let user = std::env::var("USER").unwrap_or_else(|_| "unknown".into());
        Origin {
            actor_kind: "cli",
            actor_id: user,
            meta: RequestMeta::default(),
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    Success,
    Denied,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Success => "success",
            Outcome::Denied => "denied",
        }
    }
}

/// One event to append.
pub struct Entry<'a> {
    pub action: &'a str,
    pub outcome: Outcome,
    pub target_kind: &'a str,
    pub target_id: &'a str,
    /// What changed (before/after of the fields that moved), or why it was denied.
    pub details: serde_json::Value,
}

/// The fields that the hash covers, in a fixed order. Changing this is a
/// migration of the chain: never do it in place.
pub(super) struct Hashed<'a> {
    pub seq: i64,
    pub id: &'a str,
    pub at: i64,
    pub actor_kind: &'a str,
    pub actor_id: &'a str,
    pub action: &'a str,
    pub outcome: &'a str,
    pub target_kind: &'a str,
    pub target_id: &'a str,
    pub request_id: &'a str,
    pub source_ip: &'a str,
    pub details: &'a str,
    pub prev_hash: &'a str,
}

impl Hashed<'_> {
    /// HMAC-SHA256 (keyed by the master key) over length-prefixed fields, so no two
    /// different events serialize alike and nobody without the key can forge one.
    pub fn hash(&self, key: &AuditKey) -> String {
        let mut buf = Vec::with_capacity(256 + self.details.len());
        let seq = self.seq.to_string();
        let at = self.at.to_string();
        for part in [
            seq.as_str(),
            self.id,
            at.as_str(),
            self.actor_kind,
            self.actor_id,
            self.action,
            self.outcome,
            self.target_kind,
            self.target_id,
            self.request_id,
            self.source_ip,
            self.details,
            self.prev_hash,
        ] {
            buf.extend_from_slice(&(part.len() as u64).to_be_bytes());
            buf.extend_from_slice(part.as_bytes());
        }
        key.seal(&buf)
    }
}

/// Appends one event inside `tx`. The `UPDATE … RETURNING` on the chain head takes
/// its row lock (PostgreSQL) or the write lock (SQLite) first, so concurrent
/// transactions and replicas append strictly one after another.
pub async fn record(
    tx: &mut Tx,
    key: &AuditKey,
    now_ms: i64,
    origin: &Origin,
    entry: Entry<'_>,
) -> Result<i64, AuditError> {
    let head = sqlx::query("UPDATE audit_head SET seq = seq + 1 WHERE id = 1 RETURNING seq, hash")
        .fetch_one(&mut **tx)
        .await?;
    let seq: i64 = store::get(&head, "seq")?;
    let prev_hash: String = store::get(&head, "hash")?;
    let id = store::new_id();
    let details = entry.details.to_string();
    let request_id = origin.meta.request_id.clone().unwrap_or_default();
    let source_ip = origin.meta.source_ip.clone().unwrap_or_default();
    let hash = Hashed {
        seq,
        id: &id,
        at: now_ms,
        actor_kind: origin.actor_kind,
        actor_id: &origin.actor_id,
        action: entry.action,
        outcome: entry.outcome.as_str(),
        target_kind: entry.target_kind,
        target_id: entry.target_id,
        request_id: &request_id,
        source_ip: &source_ip,
        details: &details,
        prev_hash: &prev_hash,
    }
    .hash(key);
    sqlx::query(
        "INSERT INTO audit_events (seq, id, at, actor_kind, actor_id, action, outcome, target_kind, \
         target_id, request_id, source_ip, details, prev_hash, hash) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)",
    )
    .bind(seq)
    .bind(&id)
    .bind(now_ms)
    .bind(origin.actor_kind)
    .bind(&origin.actor_id)
    .bind(entry.action)
    .bind(entry.outcome.as_str())
    .bind(entry.target_kind)
    .bind(entry.target_id)
    .bind(origin.meta.request_id.as_deref())
    .bind(origin.meta.source_ip.as_deref())
    .bind(&details)
    .bind(&prev_hash)
    .bind(&hash)
    .execute(&mut **tx)
    .await?;
    sqlx::query("UPDATE audit_head SET hash = $1 WHERE id = 1")
        .bind(&hash)
        .execute(&mut **tx)
        .await?;
    Ok(seq)
}
