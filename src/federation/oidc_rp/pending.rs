//! The store's side of an upstream OpenID Connect sign-in in flight: authorization
//! requests waiting for their callback (`oidc_rp_requests`). One code path for SQLite
//! and PostgreSQL.

use crate::federation::FederationError;
use crate::store::{self, Store};

pub struct NewRequest<'a> {
    pub state_digest: &'a str,
    pub idp_id: &'a str,
    pub browser_digest: &'a str,
    /// The nonce and PKCE verifier, sealed under the master key.
    pub sealed: &'a str,
    pub max_age: Option<i64>,
    pub auth_request: Option<&'a str>,
    pub now_ms: i64,
    pub expires_at_ms: i64,
}

pub async fn save(store: &Store, r: &NewRequest<'_>) -> Result<(), FederationError> {
    sqlx::query(
        "INSERT INTO oidc_rp_requests (state_digest, idp_id, browser_digest, sealed, max_age, auth_request, created_at, expires_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
    )
    .bind(r.state_digest)
    .bind(r.idp_id)
    .bind(r.browser_digest)
    .bind(r.sealed)
    .bind(r.max_age)
    .bind(r.auth_request)
    .bind(r.now_ms)
    .bind(r.expires_at_ms)
    .execute(store.writer())
    .await?;
    Ok(())
}

/// A request taken from the store (it is gone now).
#[derive(Debug)]
pub struct Taken {
    pub sealed: String,
    pub max_age: Option<i64>,
    pub auth_request: Option<String>,
}

#[derive(Debug)]
pub enum Take {
    Taken(Taken),
    /// No live request with this state for this IdP: expired, used, or never ours.
    Missing,
    /// The request exists but this browser did not start it (login CSRF, a stolen
    /// callback URL). It stays for its own browser.
    OtherBrowser,
}

/// Takes the live request of this IdP with this state, if this browser started it.
/// The DELETE … RETURNING makes it single-use even when two callbacks race on two
/// replicas: one gets the row, the other nothing.
pub async fn take(
    store: &Store,
    idp_id: &str,
    state_digest: &str,
    browser_digest: &str,
    now_ms: i64,
) -> Result<Take, FederationError> {
    let owner: Option<String> = sqlx::query_scalar(
        "SELECT browser_digest FROM oidc_rp_requests WHERE state_digest = $1 AND idp_id = $2 AND expires_at > $3",
    )
    .bind(state_digest)
    .bind(idp_id)
    .bind(now_ms)
    .fetch_optional(store.writer())
    .await?;
    let Some(owner) = owner else {
        return Ok(Take::Missing);
    };
    if !crate::crypto::constant_time_eq(owner.as_bytes(), browser_digest.as_bytes()) {
        return Ok(Take::OtherBrowser);
    }
    let row = sqlx::query(
        "DELETE FROM oidc_rp_requests WHERE state_digest = $1 AND idp_id = $2 AND browser_digest = $3 AND expires_at > $4
         RETURNING sealed, max_age, auth_request",
    )
    .bind(state_digest)
    .bind(idp_id)
    .bind(browser_digest)
    .bind(now_ms)
    .fetch_optional(store.writer())
    .await?;
    let Some(r) = row else {
        return Ok(Take::Missing);
    };
    Ok(Take::Taken(Taken {
        sealed: store::get(&r, "sealed")?,
        max_age: store::get(&r, "max_age")?,
        auth_request: store::get(&r, "auth_request")?,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tests::TestApp;
    use crate::Clock as _;

    async fn single_use_and_bound_to_its_browser(t: TestApp) {
        let now = t.clock.now_ms();
        let new = |state: &'static str, expires: i64| NewRequest {
            state_digest: state,
            idp_id: "google",
            browser_digest: "browser-a",
            sealed: "sealed-blob",
            max_age: Some(300),
            auth_request: Some("req-1"),
            now_ms: now,
            expires_at_ms: expires,
        };
        save(t.store(), &new("s1", now + 60_000)).await.unwrap();
        save(t.store(), &new("s2", now - 1)).await.unwrap();
        // Another IdP's callback, another browser: refused, and the request stays.
        assert!(matches!(
            take(t.store(), "entra", "s1", "browser-a", now)
                .await
                .unwrap(),
            Take::Missing
        ));
        assert!(matches!(
            take(t.store(), "google", "s1", "browser-b", now)
                .await
                .unwrap(),
            Take::OtherBrowser
        ));
        match take(t.store(), "google", "s1", "browser-a", now)
            .await
            .unwrap()
        {
            Take::Taken(r) => {
                assert_eq!(r.sealed, "sealed-blob");
                assert_eq!(r.max_age, Some(300));
                assert_eq!(r.auth_request.as_deref(), Some("req-1"));
            }
            other => panic!("expected the request, got {other:?}"),
        }
        // Used once; an expired one is never handed out.
        assert!(matches!(
            take(t.store(), "google", "s1", "browser-a", now)
                .await
                .unwrap(),
            Take::Missing
        ));
        assert!(matches!(
            take(t.store(), "google", "s2", "browser-a", now)
                .await
                .unwrap(),
            Take::Missing
        ));
        // The sweep removes the expired one.
        crate::oidc::sweep_expired(&t.app).await.unwrap();
        let left: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM oidc_rp_requests")
            .fetch_one(t.store().reader())
            .await
            .unwrap();
        assert_eq!(left, 0);
    }

    #[tokio::test]
    async fn pending_requests_sqlite() {
        single_use_and_bound_to_its_browser(TestApp::sqlite().await).await;
    }

    #[tokio::test]
    async fn pending_requests_postgres() {
        let t = TestApp::postgres().await;
        single_use_and_bound_to_its_browser(t).await;
    }
}
