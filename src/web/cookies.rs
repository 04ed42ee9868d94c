//! The browser's side of a request: its session (from the session cookie), its CSRF
//! cookie, and the cookies we set. Cookies are HttpOnly and SameSite=Lax; under an
//! https issuer they are Secure with the `__Host-` prefix (RFC 6265bis §4.1.3.2).

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{header, HeaderMap, HeaderValue};
use axum::response::Response;

use crate::api::RequestMeta;
use crate::audit::Origin;
use crate::authn::Session;
use crate::AppState;

pub struct Browser {
    pub session: Option<Session>,
    pub csrf_cookie: Option<String>,
    /// A fresh CSRF cookie value to set, when the browser had none.
    pub new_csrf: Option<String>,
    pub meta: RequestMeta,
    /// Binds an upstream (federated) sign-in to the browser that began it.
    pub federation_binding: Option<String>,
    /// Binds the pending authorization requests (OIDC and SAML) this browser started
    /// to it (`authn::load_bound_pending`): one random value per browser, so any
    /// number of requests (tabs, apps) can be in flight at once.
    pub request_binding: Option<String>,
    /// A fresh binding to set, when the browser had none (used only if a request is
    /// bound to it: see `binding` and `keep_binding`).
    new_binding: String,
    /// A sign-in waiting for its second factor (`authn::mfa::Pending`).
    pub mfa_handle: Option<String>,
    /// A passwordless (passkey) sign-in between its two requests.
    pub passkey_handle: Option<String>,
    pub user_agent: Option<String>,
    pub origin_header: Option<String>,
}

fn names(app: &AppState) -> (&'static str, &'static str, bool) {
    if app.issuer().starts_with("https://") {
        ("__Host-hms_session", "__Host-hms_csrf", true)
    } else {
        ("hms_session", "hms_csrf", false)
    }
}

fn binding_name(app: &AppState) -> &'static str {
    if app.issuer().starts_with("https://") {
        "__Host-hms_req"
    } else {
        "hms_req"
    }
}

fn federation_name(app: &AppState) -> &'static str {
    if app.issuer().starts_with("https://") {
        "__Host-hms_fed"
    } else {
        "hms_fed"
    }
}

/// The cookies of a sign-in in progress (second factor, passkey): `__Host-` under https.
#[derive(Clone, Copy)]
pub enum Flow {
    Mfa,
    Passkey,
}

fn flow_name(app: &AppState, flow: Flow) -> &'static str {
    let https = app.issuer().starts_with("https://");
    match (flow, https) {
        (Flow::Mfa, true) => "__Host-hms_mfa",
        (Flow::Mfa, false) => "hms_mfa",
        (Flow::Passkey, true) => "__Host-hms_pk",
        (Flow::Passkey, false) => "hms_pk",
    }
}

fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}

impl FromRequestParts<AppState> for Browser {
    type Rejection = Response;

    async fn from_request_parts(
        parts: &mut Parts,
        app: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let (session_name, csrf_name, _) = names(app);
        let session = match cookie(&parts.headers, session_name) {
            Some(token) => crate::authn::find_session(
                app.store(),
                app.master_key(),
                app.clock().now_ms(),
                app.config().auth.session_idle_seconds * 1000,
                token,
            )
            .await
            .map_err(|e| {
                tracing::error!(error = %e, "reading the session failed");
                super::error_page(
                    app,
                    axum::http::StatusCode::SERVICE_UNAVAILABLE,
                    "The sign-in service is unavailable; try again shortly.",
                )
            })?,
            None => None,
        };
        let csrf_cookie = cookie(&parts.headers, csrf_name)
            .filter(|c| c.len() >= 20 && c.len() <= 100)
            .map(str::to_string);
        let new_csrf = csrf_cookie
            .is_none()
            .then(|| crate::crypto::random_token(24));
        Ok(Browser {
            session,
            csrf_cookie,
            new_csrf,
            meta: crate::api::extract::request_meta(parts, app),
            federation_binding: cookie(&parts.headers, federation_name(app))
                .filter(|c| c.len() <= 100)
                .map(str::to_string),
            request_binding: cookie(&parts.headers, binding_name(app))
                .filter(|c| (32..=100).contains(&c.len()))
                .map(str::to_string),
            new_binding: crate::crypto::random_token(32),
            mfa_handle: cookie(&parts.headers, flow_name(app, Flow::Mfa))
                .filter(|c| c.len() <= 100)
                .map(str::to_string),
            passkey_handle: cookie(&parts.headers, flow_name(app, Flow::Passkey))
                .filter(|c| c.len() <= 100)
                .map(str::to_string),
            user_agent: parts
                .headers
                .get(header::USER_AGENT)
                .and_then(|v| v.to_str().ok())
                .map(str::to_string),
            origin_header: parts
                .headers
                .get(header::ORIGIN)
                .and_then(|v| v.to_str().ok())
                .map(str::to_string),
        })
    }
}

impl Browser {
    /// The token to put in forms (for the cookie the browser has or is about to get).
    pub fn csrf(&self, app: &AppState) -> String {
        let c = self
            .csrf_cookie
            .as_deref()
            .or(self.new_csrf.as_deref())
            .unwrap_or("");
        crate::authn::csrf_token(app.master_key(), c)
    }

    /// A form's CSRF check: the token matches the cookie, and a browser-sent Origin
    /// (when present) is ours.
    pub fn csrf_ok(&self, app: &AppState, submitted: Option<&str>) -> bool {
        let iss = app.issuer();
        let origin_ok = self.origin_header.as_deref().is_none_or(|o| {
            iss == o
                || iss
                    .strip_prefix(o)
                    .is_some_and(|rest| rest.starts_with('/'))
        });
        let token_ok =
            crate::authn::csrf_valid(app.master_key(), self.csrf_cookie.as_deref(), submitted);
        if !(origin_ok && token_ok) {
            crate::ops::metrics::oidc_event("csrf_rejected");
            tracing::warn!(
                origin = ?self.origin_header.as_deref().map(|o| o.chars().take(100).collect::<String>()),
                has_cookie = self.csrf_cookie.is_some(),
                has_token = submitted.is_some(),
                "form rejected: CSRF check failed"
            );
        }
        origin_ok && token_ok
    }

    pub fn origin(&self) -> Origin {
        Origin {
            actor_kind: if self.session.is_some() {
                "person"
            } else {
                "anonymous"
            },
            actor_id: self
                .session
                .as_ref()
                .map(|s| s.person_id.clone())
                .unwrap_or_else(|| "-".into()),
            meta: self.meta.clone(),
        }
    }

    /// The value this browser's pending requests are bound to: its cookie, or the new
    /// one `keep_binding` sets (which then matches only requests bound just now).
    pub fn binding(&self) -> &str {
        self.request_binding.as_deref().unwrap_or(&self.new_binding)
    }

    /// After binding a request to `binding()`: sets the cookie if the browser had none.
    /// A browser session cookie (no Max-Age), HttpOnly, SameSite=Lax (a top-level GET
    /// from the app brings it), Secure with the `__Host-` prefix under https.
    pub fn keep_binding(&self, app: &AppState, resp: &mut Response) {
        if self.request_binding.is_some() {
            return;
        }
        let (_, _, secure) = names(app);
        let name = binding_name(app);
        set(
            resp,
            &format!(
                "{name}={}; Path=/; HttpOnly; SameSite=Lax{}",
                self.new_binding,
                if secure { "; Secure" } else { "" }
            ),
        );
    }

    /// After a sign-in: a new CSRF cookie, whatever the browser had, so a token
    /// planted or read before the sign-in is worthless after it. Forms rendered
    /// before it (other tabs) must be reloaded.
    pub fn rotate_csrf(&self, app: &AppState, mut resp: Response) -> Response {
        let (_, name, secure) = names(app);
        let fresh = crate::crypto::random_token(24);
        set(
            &mut resp,
            &format!(
                "{name}={fresh}; Path=/; HttpOnly; SameSite=Lax{}",
                if secure { "; Secure" } else { "" }
            ),
        );
        resp
    }

    /// Sets the CSRF cookie on a response if the browser did not have one.
    pub fn finish(&self, app: &AppState, mut resp: Response) -> Response {
        if let Some(v) = &self.new_csrf {
            let (_, name, secure) = names(app);
            set(
                &mut resp,
                &format!(
                    "{name}={v}; Path=/; HttpOnly; SameSite=Lax{}",
                    if secure { "; Secure" } else { "" }
                ),
            );
        }
        resp
    }
}

fn set(resp: &mut Response, cookie: &str) {
    if let Ok(v) = HeaderValue::from_str(cookie) {
        resp.headers_mut().append(header::SET_COOKIE, v);
    }
}

/// Sets the session cookie (a session cookie in the browser's sense: no Max-Age; the
/// server ends the session on its own schedule).
pub fn set_session(app: &AppState, resp: &mut Response, token: &str) {
    let (name, _, secure) = names(app);
    set(
        resp,
        &format!(
            "{name}={token}; Path=/; HttpOnly; SameSite=Lax{}",
            if secure { "; Secure" } else { "" }
        ),
    );
}

pub fn clear_session(app: &AppState, resp: &mut Response) {
    let (name, _, secure) = names(app);
    set(
        resp,
        &format!(
            "{name}=; Path=/; Max-Age=0; HttpOnly; SameSite=Lax{}",
            if secure { "; Secure" } else { "" }
        ),
    );
}

/// The federated sign-in's browser binding: SameSite=Lax is enough, because the
/// browser brings it back on a same-site top-level GET after the IdP's POST.
pub fn set_federation_binding(app: &AppState, resp: &mut Response, value: &str, max_age: i64) {
    let (_, _, secure) = names(app);
    let name = federation_name(app);
    set(
        resp,
        &format!(
            "{name}={value}; Path=/; Max-Age={max_age}; HttpOnly; SameSite=Lax{}",
            if secure { "; Secure" } else { "" }
        ),
    );
}

pub fn clear_federation_binding(app: &AppState, resp: &mut Response) {
    set_federation_binding(app, resp, "", 0);
}

/// Sets (or, with an empty value and max_age 0, clears) a sign-in flow's cookie.
pub fn set_flow(app: &AppState, resp: &mut Response, flow: Flow, value: &str, max_age: i64) {
    let (_, _, secure) = names(app);
    let name = flow_name(app, flow);
    set(
        resp,
        &format!(
            "{name}={value}; Path=/; Max-Age={max_age}; HttpOnly; SameSite=Lax{}",
            if secure { "; Secure" } else { "" }
        ),
    );
}
