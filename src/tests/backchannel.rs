//! Back-channel logout (OIDC Back-Channel Logout 1.0): signing out posts a logout
//! token to every client of the session that registered a URI; failures are retried
//! with backoff. The receiver is a real HTTP server on 127.0.0.1.

use super::browser::REDIRECT;
use super::sso::exchange;
use super::*;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

#[derive(Default)]
struct Receiver {
    calls: AtomicUsize,
    tokens: Mutex<Vec<String>>,
}

async fn receiver() -> (String, Arc<Receiver>) {
    let state = Arc::new(Receiver::default());
    let s = state.clone();
    let app = axum::Router::new().route(
        "/logout",
        axum::routing::post(move |body: String| {
            let s = s.clone();
            async move {
                // The first delivery fails: the hub must retry.
                if s.calls.fetch_add(1, Ordering::SeqCst) == 0 {
                    return StatusCode::INTERNAL_SERVER_ERROR;
                }
                let token = url::form_urlencoded::parse(body.as_bytes())
                    .find(|(k, _)| k == "logout_token")
                    .map(|(_, v)| v.into_owned())
                    .unwrap_or_default();
                s.tokens.lock().unwrap().push(token);
                StatusCode::OK
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (format!("http://{addr}/logout"), state)
}

store_test!(
    logout_tokens_are_delivered_with_retries,
    |t: TestApp| async move {
        let (uri, rx) = receiver().await;
        t.account("bc.l").await;
        let rp = t.rp(false, true).await;
        // Register the back-channel URI on the client.
        sqlx::query("UPDATE clients SET settings = $1 WHERE id = $2")
        .bind(serde_json::json!({ "redirect_uris": [REDIRECT], "first_party": true, "backchannel_logout_uri": uri }).to_string())
        .bind(&rp.id)
        .execute(t.store().writer())
        .await
        .unwrap();
        t.app.clients().invalidate(&rp.id);
        let mut b = t.agent();
        let q = b.authorize_scoped(&rp, "openid", "", "bc.l").await;
        let (s, tokens) = exchange(&t, &rp, &q["code"]).await;
        assert_eq!(s, StatusCode::OK, "{tokens}");
        let hint = tokens["id_token"].as_str().unwrap();
        let page = b.get(&format!("/oauth2/logout?id_token_hint={hint}")).await;
        assert_eq!(page.status, StatusCode::OK, "signed out, no redirect asked");
        let http = reqwest::Client::new();
        assert_eq!(
            crate::oidc::deliver_logouts(&t.app, &http).await.unwrap(),
            0,
            "the receiver failed once"
        );
        assert_eq!(
            crate::oidc::deliver_logouts(&t.app, &http).await.unwrap(),
            0,
            "not due again yet"
        );
        t.clock.advance_secs(61);
        assert_eq!(
            crate::oidc::deliver_logouts(&t.app, &http).await.unwrap(),
            1
        );
        assert_eq!(rx.calls.load(Ordering::SeqCst), 2);
        let token = rx.tokens.lock().unwrap()[0].clone();
        // Verify it as a relying party would (§2.6), with an independent library.
        let (_, _, jwks) = t.call(Method::GET, "/oauth2/jwks", None, None).await;
        let set: jsonwebtoken::jwk::JwkSet = serde_json::from_value(jwks).unwrap();
        let header = jsonwebtoken::decode_header(&token).unwrap();
        assert_eq!(header.typ.as_deref(), Some("logout+jwt"));
        let key =
            jsonwebtoken::DecodingKey::from_jwk(set.find(header.kid.as_deref().unwrap()).unwrap())
                .unwrap();
        let mut v = jsonwebtoken::Validation::new(header.alg);
        v.set_audience(&[&rp.id]);
        v.set_issuer(&["http://hub.test"]);
        let claims = jsonwebtoken::decode::<Value>(&token, &key, &v)
            .unwrap()
            .claims;
        assert!(claims["events"]["http://schemas.openid.net/event/backchannel-logout"].is_object());
        assert!(
            claims.get("nonce").is_none(),
            "§2.4: a logout token has no nonce"
        );
        let id: Value = serde_json::from_slice(
            &base64::Engine::decode(
                &base64::engine::general_purpose::URL_SAFE_NO_PAD,
                hint.split('.').nth(1).unwrap(),
            )
            .unwrap(),
        )
        .unwrap();
        assert_eq!(claims["sid"], id["sid"]);
        assert_eq!(claims["sub"], id["sub"]);
    }
);
