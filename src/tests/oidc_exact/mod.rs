//! The OpenID Connect details certified clients expect (issue 14, defects 3 and 5):
//! `id_token_hint` checked at authorization and logout, scopes dropped rather than
//! fatal, the `claims` parameter, UserInfo with a form body and a bare challenge,
//! `request_uri` not from PAR, `error_description` characters, the registered client
//! authentication method enforced, no secret for `private_key_jwt` clients, phone
//! and address claims. On both databases.
//!
//! One file a topic: `hints` (id_token_hint at authorization and logout), `claims`
//! (scopes, the claims parameter, phone and address), `userinfo`, `errors`
//! (request_uri, error_description) and `client_auth`. The helpers below are theirs.

mod claims;
mod client_auth;
mod errors;
mod hints;
mod userinfo;

use super::browser::{query, urlencode, Agent, Rp, CHALLENGE, PASSWORD, REDIRECT};
use super::sso::{exchange, refresh};
use super::*;
use crate::clock::Clock;

/// A confidential relying party (client_secret_basic) registered for `scopes`.
async fn rp_with(t: &TestApp, scopes: &[&str], first_party: bool) -> Rp {
    let new = crate::oidc::NewClient {
        name: "Exact RP".into(),
        grants: vec!["authorization_code".into(), "refresh_token".into()],
        scopes: scopes.iter().map(|s| s.to_string()).collect(),
        role: None,
        org: None,
        access_token_ttl_seconds: None,
        settings: crate::oidc::ClientSettings {
            redirect_uris: vec![REDIRECT.into()],
            post_logout_redirect_uris: vec!["https://rp.example/bye".into()],
            first_party,
            ..Default::default()
        },
    };
    let (c, secret) = t.register(new).await;
    Rp { id: c.id, secret }
}

fn authorize_path(rp: &Rp, scope: &str, extra: &str) -> String {
    format!("/oauth2/authorize?response_type=code&client_id={}&redirect_uri={}&scope={}&state=st-1&nonce=n-1&code_challenge={CHALLENGE}&code_challenge_method=S256{extra}", rp.id, urlencode(REDIRECT), urlencode(scope))
}

/// Where the browser ends up: a page of the hub, or the query sent to the client.
async fn go(b: &mut Agent<'_>, path: &str) -> super::browser::Page {
    let first = b.get(path).await;
    b.follow(first).await
}

fn claims_of(jwt: &str) -> Value {
    use base64::Engine;
    let payload = jwt.split('.').nth(1).unwrap();
    serde_json::from_slice(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(payload)
            .unwrap(),
    )
    .unwrap()
}

/// The token with one character of its signature changed (not the last, whose low
/// bits may be padding).
fn forge(token: &str) -> String {
    let mut chars: Vec<char> = token.chars().collect();
    let i = chars.len() - 10;
    chars[i] = if chars[i] == 'A' { 'B' } else { 'A' };
    chars.into_iter().collect()
}

/// Signs `username` in through the app and returns the token response.
async fn tokens_for(t: &TestApp, b: &mut Agent<'_>, rp: &Rp, username: &str) -> Value {
    let q = b.authorize_scoped(rp, "openid profile", "", username).await;
    let (s, tokens) = exchange(t, rp, &q["code"]).await;
    assert_eq!(s, StatusCode::OK, "{tokens}");
    tokens
}
