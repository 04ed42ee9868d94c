use futures_util::TryStreamExt;
use serde::Serialize;

use super::chain::Hashed;
use super::AuditError;
use crate::crypto::AuditKey;
use crate::store::{self, Store};

/// What `audit verify` found: the number of events checked and every break in the chain.
#[derive(Debug, Serialize)]
pub struct VerifyReport {
    pub checked: i64,
    pub head_seq: i64,
    pub problems: Vec<String>,
}

impl VerifyReport {
    pub fn is_intact(&self) -> bool {
        self.problems.is_empty()
    }
}

/// Walks the chain in order. An edited row fails its own hash; a deleted row leaves a
/// gap in `seq` and a `prev_hash` that no longer matches; an inserted row breaks the
/// link of the row after it; a truncated tail disagrees with the head.
pub async fn verify_chain(store: &Store, audit_key: &AuditKey) -> Result<VerifyReport, AuditError> {
    // The head first: events appended after it (the hub is live) are not checked
    // this time, rather than reported as a break.
    let head = sqlx::query("SELECT seq, hash FROM audit_head WHERE id = 1")
        .fetch_one(store.reader())
        .await?;
    let head_seq: i64 = store::get(&head, "seq")?;
    let head_hash: String = store::get(&head, "hash")?;
    let mut rows = sqlx::query(
        "SELECT seq, id, at, actor_kind, actor_id, action, outcome, target_kind, target_id, \
         request_id, source_ip, details, prev_hash, hash FROM audit_events WHERE seq <= $1 ORDER BY seq",
    )
    .bind(head_seq)
    .fetch(store.reader());
    let mut problems = Vec::new();
    let mut expected_seq = 1i64;
    let mut prev = "0".repeat(64);
    let mut checked = 0i64;
    while let Some(row) = rows.try_next().await? {
        checked += 1;
        let seq: i64 = store::get(&row, "seq")?;
        let stored_hash: String = store::get(&row, "hash")?;
        let prev_hash: String = store::get(&row, "prev_hash")?;
        if seq != expected_seq {
            problems.push(format!(
                "events {expected_seq}..{} are missing (deleted rows?)",
                seq - 1
            ));
        }
        if prev_hash != prev {
            problems.push(format!(
                "event {seq}: prev_hash does not match the hash of the event before it (a row was deleted or inserted before it)"
            ));
        }
        let opt = |c: &str| -> Result<String, AuditError> {
            Ok(store::get::<Option<String>>(&row, c)?.unwrap_or_default())
        };
        let computed = Hashed {
            seq,
            id: &store::get::<String>(&row, "id")?,
            at: store::get(&row, "at")?,
            actor_kind: &store::get::<String>(&row, "actor_kind")?,
            actor_id: &store::get::<String>(&row, "actor_id")?,
            action: &store::get::<String>(&row, "action")?,
            outcome: &store::get::<String>(&row, "outcome")?,
            target_kind: &store::get::<String>(&row, "target_kind")?,
            target_id: &store::get::<String>(&row, "target_id")?,
            request_id: &opt("request_id")?,
            source_ip: &opt("source_ip")?,
            details: &store::get::<String>(&row, "details")?,
            prev_hash: &prev_hash,
        }
        .hash(audit_key);
        if computed != stored_hash {
            problems.push(format!(
                "event {seq}: content does not match its hash (the row was edited)"
            ));
        }
        prev = stored_hash;
        expected_seq = seq + 1;
    }
    drop(rows);
    if head_seq != expected_seq - 1 || head_hash != prev {
        problems.push(format!(
            "the chain head says the last event is {head_seq}, but the log ends at {} (rows removed from the end, or the head was edited)",
            expected_seq - 1
        ));
    }
    Ok(VerifyReport {
        checked,
        head_seq,
        problems,
    })
}
