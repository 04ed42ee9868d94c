//! The sign-in page in the configurations a district runs (issue 14, defect 1): with a
//! district SAML IdP configured, an app's request sent to `/login?request=…` rendered
//! a 500 (`unknown filter: urlencode`), so nobody could sign in to any app.

use axum::http::StatusCode;

use super::TestApp;

#[tokio::test]
async fn the_sign_in_page_renders_for_an_app_request_with_a_district_idp() {
    let (_dir, file) = super::config_file(&super::district_idp_toml(""));
    let t = TestApp::with_config_file(false, &file).await;
    let mut b = t.agent();
    // Without a request, and with one (what an app's authorize redirect sends).
    let plain = b.get("/login").await;
    assert_eq!(plain.status, StatusCode::OK, "{}", plain.body);
    assert!(plain.body.contains("District SSO"), "{}", plain.body);
    let with_request = b.get("/login?request=abc%20def").await;
    assert_eq!(with_request.status, StatusCode::OK, "{}", with_request.body);
    assert!(
        with_request
            .body
            .contains("/login/idp/district?request=abc%20def\""),
        "the IdP button carries the request, percent-encoded: {}",
        with_request.body
    );
}
