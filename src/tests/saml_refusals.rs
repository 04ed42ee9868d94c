//! Refusals at the SAML ACS that say what went wrong (issue 14, defect 7): a Response
//! to a request that timed out, one posted again, one answering a request the hub never
//! sent, and an assertion past its NotOnOrAfter each have their own outcome code (they
//! were all `expired` before, or `in_response_to` for none of them); and a sign-in
//! finished in another browser names its IdP. The Response is the xmlsec1-signed
//! fixture of `bench/saml/fixture` (see `federation::saml_fixture`), posted to the
//! real router; the hub's issuer is the fixture's.

use axum::http::{Method, StatusCode};

use super::TestApp;
use crate::federation::saml_fixture::{ASSERTION_SIGNED, NOW_MS, REQUEST_ID};

const ACS: &str = "/saml/sp/district/acs";

/// The hub at the fixture's issuer, with the fixture IdP configured as "district",
/// on SQLite or PostgreSQL.
async fn hub(postgres: bool) -> (TestApp, tempfile::TempDir) {
    let (dir, file) = super::config_file(&super::district_idp_toml(
        "email_domains = [\"riverside.edu\"]\nlink = { attribute = \"eduPersonPrincipalName\", person_field = \"email\" }\n",
    ));
    let t = TestApp::with_config_file_at(postgres, &file, "https://hub.riverside.example", NOW_MS)
        .await;
    (t, dir)
}

/// The AuthnRequest the fixture answers, as `begin_signin` stores it.
async fn pending_request(t: &TestApp, expires_at_ms: i64) {
    sqlx::query(
        "INSERT INTO saml_requests (id, idp_id, browser_digest, auth_request, created_at, expires_at)
         VALUES ($1, 'district', $2, NULL, $3, $4)",
    )
    .bind(REQUEST_ID)
    .bind(crate::crypto::sha256_hex("the-browser-that-began"))
    .bind(NOW_MS - 60_000)
    .bind(expires_at_ms)
    .execute(t.store().writer())
    .await
    .unwrap();
}

fn posted() -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(ASSERTION_SIGNED)
}

/// The reason of the last audited federated sign-in refusal.
async fn last_reason(t: &TestApp) -> String {
    let rows = t.audit_rows("federation.signin").await;
    let last = rows
        .iter()
        .max_by_key(|r| r.seq)
        .expect("a refusal was audited");
    last.details["reason"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

async fn refusals(t: TestApp) {
    let admin = t.admin_token().await;
    let (s, _, body) = t
        .call(
            Method::POST,
            "/api/v1/users",
            Some(&admin),
            Some(serde_json::json!({
                "sourcedId": "stu-ana", "kinds": ["student"], "givenName": "Ana",
                "familyName": "Diallo", "email": "ana.diallo0@riverside.edu"
            })),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{body}");
    let mut idp = t.agent();
    // The IdP's page posts cross-site: no Origin of the hub's.
    idp.origin = None;

    // 1. No request of ours has this id: it answers a request the hub never sent.
    let r = idp.post(ACS, &[("SAMLResponse", &posted())]).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.body);
    assert!(r.body.contains("in_response_to"), "{}", r.body);
    assert_eq!(last_reason(&t).await, "in_response_to");

    // 2. Sent, but answered after request_ttl_seconds: timed out, not "used up".
    pending_request(&t, NOW_MS - 1).await;
    let r = idp.post(ACS, &[("SAMLResponse", &posted())]).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.body);
    assert!(
        r.body.contains("took longer than the hub waits"),
        "{}",
        r.body
    );
    assert!(r.body.contains("District SSO"), "{}", r.body);
    assert_eq!(last_reason(&t).await, "request_timed_out");
    sqlx::query("DELETE FROM saml_requests")
        .execute(t.store().writer())
        .await
        .unwrap();

    // 3. Live: accepted, and the browser is sent to finish the sign-in. Finished in
    // another browser (this one never began it), the page names the IdP.
    pending_request(&t, NOW_MS + 600_000).await;
    let r = idp.post(ACS, &[("SAMLResponse", &posted())]).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.body);
    let mut elsewhere = t.agent();
    let page = elsewhere.get(&r.location()).await;
    assert_eq!(page.status, StatusCode::BAD_REQUEST, "{}", page.body);
    assert!(page.body.contains("another browser"), "{}", page.body);
    assert!(
        page.body.contains("Signing in with District SSO failed"),
        "the page names the IdP: {}",
        page.body
    );
    assert_eq!(last_reason(&t).await, "other_browser");

    // 4. The same Response again: a replay, named as such.
    let r = idp.post(ACS, &[("SAMLResponse", &posted())]).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.body);
    assert!(r.body.contains("replayed"), "{}", r.body);
    assert_eq!(last_reason(&t).await, "replayed");

    // 5. An assertion past its NotOnOrAfter (2099-01-01T00:05Z) to a live request.
    sqlx::query("DELETE FROM saml_requests")
        .execute(t.store().writer())
        .await
        .unwrap();
    pending_request(&t, i64::MAX / 2).await;
    // To 2099-01-01T00:10:00Z.
    t.clock.advance_secs((4_070_909_400_000 - NOW_MS) / 1000);
    let r = idp.post(ACS, &[("SAMLResponse", &posted())]).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.body);
    assert!(r.body.contains("assertion_expired"), "{}", r.body);
    assert_eq!(last_reason(&t).await, "assertion_expired");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_saml_refusal_has_its_own_code_sqlite() {
    let (t, _dir) = hub(false).await;
    refusals(t).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_saml_refusal_has_its_own_code_postgres() {
    let (t, _dir) = hub(true).await;
    refusals(t).await;
}
