//! Rate limits per source address on the federated sign-in endpoints (the IdP
//! buttons, home-realm discovery, the SAML ACS): one budget, apart from passwords.

use axum::http::StatusCode;

use super::TestApp;

#[tokio::test]
async fn the_idp_buttons_discovery_and_the_acs_share_one_budget_per_address() {
    let t = TestApp::sqlite_with(&[("HMS_ACH__FEDERATION__REQUESTS_PER_IP_PER_MINUTE", "3")]).await;
    let mut b = t.agent();
    let csrf = b.get("/login").await.hidden("csrf");
    // Refused for their own reasons while within the budget…
    let first = b.get("/login/idp/nowhere").await;
    assert_eq!(first.status, StatusCode::NOT_FOUND);
    let acs = b
        .post("/saml/sp/nowhere/acs", &[("SAMLResponse", "x")])
        .await;
    assert_eq!(acs.status, StatusCode::NOT_FOUND);
    let discover = b
        .post(
            "/login/discover",
            &[("csrf", &csrf), ("email", "a@b.example")],
        )
        .await;
    assert_eq!(discover.status, StatusCode::UNPROCESSABLE_ENTITY);
    // …then each of them is turned away with a page and Retry-After.
    for (method, path) in [
        ("GET", "/login/idp/nowhere"),
        ("POST", "/saml/sp/nowhere/acs"),
        ("POST", "/login/discover"),
    ] {
        let r = if method == "GET" {
            b.get(path).await
        } else {
            b.post(
                path,
                &[
                    ("csrf", &csrf),
                    ("SAMLResponse", "x"),
                    ("email", "a@b.example"),
                ],
            )
            .await
        };
        assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS, "{path}");
        assert_eq!(r.headers["retry-after"], "60", "{path}");
        assert!(r.body.contains("wait a minute"), "{path}: {}", r.body);
    }
    // Password sign-ins keep their own budget.
    let login = b
        .post(
            "/login",
            &[("csrf", &csrf), ("username", "nobody"), ("password", "x")],
        )
        .await;
    assert_ne!(login.status, StatusCode::TOO_MANY_REQUESTS);
    // A new minute, a new budget.
    t.clock.advance_secs(60);
    assert_eq!(
        b.get("/login/idp/nowhere").await.status,
        StatusCode::NOT_FOUND
    );
}
