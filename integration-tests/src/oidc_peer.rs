//! panva's `oidc-provider` (npm) as an upstream OpenID Provider, run by
//! `peers/oidc_idp.mjs` (see its header for the accounts and the control switches),
//! and the browser's way through it to the hub's OpenID Connect callback.

use std::process::{Child, Command, Stdio};

use crate::browser::{absolute, Browser};
use crate::{workspace, Hub};

/// oidc-provider on its own port; killed on drop.
pub struct Idp {
    pub base: String,
    child: Child,
}

impl Idp {
    /// Starts the peer with a client `client_id`/`secret` for the hub.
    pub async fn start(client_id: &str, secret: &str) -> Idp {
        let port = crate::free_port();
        let child = Command::new("node")
            .arg(workspace().join("target/peers/node/oidc_idp.mjs"))
            .args([&port.to_string(), client_id, secret])
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start the oidc-provider peer");
        let idp = Idp {
            base: format!("http://127.0.0.1:{port}"),
            child,
        };
        for _ in 0..100 {
            let url = format!("{}/.well-known/openid-configuration", idp.base);
            if let Ok(r) = reqwest::get(url).await {
                if r.status() == 200 {
                    return idp;
                }
            }
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
        panic!("the oidc-provider peer did not start");
    }

    pub async fn control(&self, body: serde_json::Value) {
        let r = reqwest::Client::new()
            .post(format!("{}/control", self.base))
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
    }

    /// Who signs in next and how (a mode of the peer script).
    pub async fn next(&self, user: &str, mode: &str) {
        self.control(serde_json::json!({ "user": user, "mode": mode }))
            .await;
    }

    /// The parameters of the last authorization request the provider received.
    pub async fn last_request(&self) -> serde_json::Value {
        reqwest::get(format!("{}/last", self.base))
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    }
}

impl Drop for Idp {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// From the hub's IdP button through the provider's scripted login: returns the
/// provider's redirect to the hub's callback (not yet followed, so a test can choose
/// which browser follows it).
pub async fn to_callback(
    b: &mut Browser,
    hub: &Hub,
    idp: &Idp,
    idp_id: &str,
    request: Option<&str>,
    user: &str,
    mode: &str,
) -> String {
    idp.next(user, mode).await;
    let start = match request {
        Some(r) => format!("{}/login/idp/{idp_id}?request={r}", hub.base),
        None => format!("{}/login/idp/{idp_id}", hub.base),
    };
    let begin = b.get(&start).await;
    assert_eq!(begin.status, 303, "{}", begin.body);
    assert!(
        b.cookies.contains_key("hms_fed"),
        "the binding cookie is set"
    );
    let mut next = begin.location.expect("to the provider");
    assert!(next.starts_with(&format!("{}/auth?", idp.base)), "{next}");
    for _ in 0..6 {
        let at = b.get(&absolute(&idp.base, &next)).await;
        assert_eq!(at.status, 303, "provider: {}", at.body);
        next = at.location.expect("a redirect");
        if next.starts_with(&hub.base) {
            let path = format!("{}/login/oidc/{idp_id}/callback?", hub.base);
            assert!(next.starts_with(&path), "{next}");
            return next;
        }
    }
    panic!("the provider never sent the browser back");
}
