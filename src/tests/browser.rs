//! A minimal browser for in-process SSO tests: keeps cookies, reads forms, follows
//! the hub's redirects until they leave for the client.

use axum::body::Body;
use axum::http::{header, HeaderMap, Method, Request, StatusCode};
use base64::Engine;
use http_body_util::BodyExt;
use std::collections::HashMap;
use tower::ServiceExt;

use super::TestApp;
use crate::clock::Clock;
use crate::oidc::ClientSettings;

pub const PASSWORD: &str = "correct horse battery";
pub const REDIRECT: &str = "https://rp.example/cb";

pub struct Rp {
    pub id: String,
    pub secret: Option<String>,
}

impl Rp {
    pub fn basic(&self) -> String {
        let raw = format!("{}:{}", self.id, self.secret.clone().unwrap_or_default());
        format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(raw)
        )
    }
}

impl TestApp {
    /// A relying party: code + refresh, the OIDC scopes, redirect `REDIRECT`.
    pub async fn rp(&self, public: bool, first_party: bool) -> Rp {
        let settings = ClientSettings {
            client_type: if public { "public" } else { "confidential" }.into(),
            token_endpoint_auth_method: if public {
                "none"
            } else {
                "client_secret_basic"
            }
            .into(),
            redirect_uris: vec![REDIRECT.into()],
            post_logout_redirect_uris: vec!["https://rp.example/bye".into()],
            first_party,
            ..Default::default()
        };
        let new = crate::oidc::NewClient {
            name: "Test RP".into(),
            grants: vec!["authorization_code".into(), "refresh_token".into()],
            scopes: ["openid", "profile", "email", "offline_access", "roles"]
                .map(String::from)
                .to_vec(),
            role: None,
            org: None,
            access_token_ttl_seconds: None,
            settings,
        };
        let (c, secret) = self.register(new).await;
        Rp { id: c.id, secret }
    }

    /// A person `username` with password `PASSWORD`; returns the person id.
    pub async fn account(&self, username: &str) -> String {
        let input: crate::directory::PersonInput = serde_json::from_value(serde_json::json!({
            "sourcedId": format!("src-{username}"), "kinds": ["teacher"], "givenName": "Tess", "familyName": "Tanaka",
            "username": username, "email": format!("{username}@district.example"),
        }))
        .unwrap();
        let origin = crate::audit::Origin::system("test");
        let up = crate::directory::upsert_person(
            self.store(),
            self.app.audit_key(),
            self.clock.now(),
            &origin,
            None,
            input,
        )
        .await
        .unwrap();
        crate::authn::set_password(&self.app, &up.record, PASSWORD, false, &origin)
            .await
            .unwrap();
        up.record.id
    }

    pub fn agent(&self) -> Agent<'_> {
        Agent {
            t: self,
            cookies: HashMap::new(),
            origin: Some("http://hub.test".into()),
            forwarded_for: None,
        }
    }
}

pub struct Agent<'a> {
    t: &'a TestApp,
    pub cookies: HashMap<String, String>,
    /// The Origin header sent with POSTs (what a browser sends).
    pub origin: Option<String>,
    /// The address a trusted proxy reports for this browser (`X-Forwarded-For`; the
    /// hub reads it only with `server.trust_forwarded_for`).
    pub forwarded_for: Option<String>,
}

pub struct Page {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: String,
}

impl Page {
    /// The text of the page's `role="alert"` message (empty when there is none):
    /// what the person is told went wrong.
    pub fn alert(&self) -> String {
        self.body
            .split("role=\"alert\">")
            .nth(1)
            .unwrap_or("")
            .split('<')
            .next()
            .unwrap_or("")
            .to_string()
    }

    pub fn location(&self) -> String {
        self.headers
            .get(header::LOCATION)
            .map(|v| v.to_str().unwrap().to_string())
            .unwrap_or_default()
    }
    /// A hidden input's value.
    pub fn hidden(&self, name: &str) -> String {
        let marker = format!("name=\"{name}\" value=\"");
        let start = self
            .body
            .find(&marker)
            .unwrap_or_else(|| panic!("no {name} in {}", self.body))
            + marker.len();
        let end = self.body[start..].find('"').unwrap() + start;
        self.body[start..end]
            .replace("&#x2f;", "/")
            .replace("&amp;", "&")
    }
}

/// Query parameters of a redirect to the client.
pub fn query(location: &str) -> HashMap<String, String> {
    let url = url::Url::parse(location).unwrap();
    url.query_pairs().into_owned().collect()
}

impl Agent<'_> {
    async fn send(&mut self, req: axum::http::request::Builder, body: Body) -> Page {
        let mut req = req;
        if let Some(ip) = &self.forwarded_for {
            req = req.header("x-forwarded-for", ip.as_str());
        }
        if !self.cookies.is_empty() {
            let c: Vec<String> = self
                .cookies
                .iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect();
            req = req.header(header::COOKIE, c.join("; "));
        }
        let resp = self
            .t
            .router
            .clone()
            .oneshot(req.body(body).unwrap())
            .await
            .unwrap();
        for v in resp.headers().get_all(header::SET_COOKIE) {
            let first = v.to_str().unwrap().split(';').next().unwrap().to_string();
            let (k, val) = first.split_once('=').unwrap();
            if val.is_empty() {
                self.cookies.remove(k);
            } else {
                self.cookies.insert(k.to_string(), val.to_string());
            }
        }
        let status = resp.status();
        let headers = resp.headers().clone();
        let bytes = resp.into_body().collect().await.unwrap().to_bytes();
        Page {
            status,
            headers,
            body: String::from_utf8_lossy(&bytes).into(),
        }
    }

    pub async fn get(&mut self, path: &str) -> Page {
        self.send(
            Request::builder().method(Method::GET).uri(path),
            Body::empty(),
        )
        .await
    }

    pub async fn post(&mut self, path: &str, form: &[(&str, &str)]) -> Page {
        let body = url::form_urlencoded::Serializer::new(String::new())
            .extend_pairs(form)
            .finish();
        let mut req = Request::builder()
            .method(Method::POST)
            .uri(path)
            .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded");
        if let Some(o) = &self.origin {
            req = req.header(header::ORIGIN, o.as_str());
        }
        self.send(req, Body::from(body)).await
    }

    /// A JSON POST, as `static/passkey.js` sends one (same-origin fetch).
    pub async fn post_json(&mut self, path: &str, body: &serde_json::Value) -> Page {
        let mut req = Request::builder()
            .method(Method::POST)
            .uri(path)
            .header(header::CONTENT_TYPE, "application/json");
        if let Some(o) = &self.origin {
            req = req.header(header::ORIGIN, o.as_str());
        }
        self.send(req, Body::from(body.to_string())).await
    }

    /// Follows redirects inside the hub; stops at a page or a redirect elsewhere.
    pub async fn follow(&mut self, mut page: Page) -> Page {
        while page.status.is_redirection() && page.location().starts_with('/') {
            let to = page.location();
            page = self.get(&to).await;
        }
        page
    }

    /// Signs in on a login page (already fetched) and follows on.
    pub async fn sign_in(&mut self, login: &Page, username: &str, password: &str) -> Page {
        let csrf = login.hidden("csrf");
        let request = if login.body.contains("name=\"request\"") {
            login.hidden("request")
        } else {
            String::new()
        };
        let page = self
            .post(
                "/login",
                &[
                    ("csrf", &csrf),
                    ("request", &request),
                    ("username", username),
                    ("password", password),
                ],
            )
            .await;
        self.follow(page).await
    }

    /// Allows on a consent page and follows on.
    pub async fn consent(&mut self, page: &Page, decision: &str) -> Page {
        let (csrf, request) = (page.hidden("csrf"), page.hidden("request"));
        let page = self
            .post(
                "/consent",
                &[
                    ("csrf", &csrf),
                    ("request", &request),
                    ("decision", decision),
                ],
            )
            .await;
        self.follow(page).await
    }

    /// The whole front channel: authorize → sign in → consent (if shown) → the
    /// redirect back to the client; returns its query parameters.
    pub async fn authorize(
        &mut self,
        rp: &Rp,
        extra: &str,
        username: &str,
    ) -> HashMap<String, String> {
        self.authorize_scoped(
            rp,
            "openid profile email offline_access roles",
            extra,
            username,
        )
        .await
    }

    pub async fn authorize_scoped(
        &mut self,
        rp: &Rp,
        scope: &str,
        extra: &str,
        username: &str,
    ) -> HashMap<String, String> {
        let path = format!("/oauth2/authorize?response_type=code&client_id={}&redirect_uri={}&scope={}&state=st-1&nonce=n-1&code_challenge={}&code_challenge_method=S256{extra}", rp.id, urlencode(REDIRECT), urlencode(scope), CHALLENGE);
        let first = self.get(&path).await;
        let mut page = self.follow(first).await;
        if page.body.contains("action=\"/login\"") {
            page = self.sign_in(&page, username, PASSWORD).await;
        }
        if page.body.contains("action=\"/consent\"") {
            page = self.consent(&page, "allow").await;
        }
        assert!(
            page.location().starts_with(REDIRECT),
            "expected a redirect to the client, got {} {}",
            page.status,
            page.body
        );
        query(&page.location())
    }
}

pub fn urlencode(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

/// RFC 7636 Appendix B.
pub const VERIFIER: &str = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
pub const CHALLENGE: &str = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";
