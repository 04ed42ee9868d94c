//! The server-rendered web UI: one layout, one stylesheet, templates embedded in the
//! binary (minijinja, HTML auto-escaped), every string from a message catalog.
//! Pages: authorize (browser side), sign-in, account choice, consent, sign-out, errors,
//! and the self-service portal (profile, sessions, connected apps, password).

pub(crate) mod address;
mod authorize;
mod cookies;
mod federated;
mod federated_oidc;
mod logout;
mod mfa;
mod mfa_enroll;
mod passwordless;
mod portal;
mod saml_idp;
mod security;
mod signin;
mod template_check;

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use std::collections::HashMap;

use crate::AppState;

pub use cookies::Browser;

/// Every page template, with the context its handlers pass (checked at start-up by
/// [`template_check`]: a variable outside it, or an unknown filter, stops the hub
/// from starting instead of reaching a person). Pages that extend `layout.html` may
/// also use [`LAYOUT_CONTEXT`].
const TEMPLATES: &[(&str, &str, &[&str])] = &[
    (
        "layout.html",
        include_str!("templates/layout.html"),
        LAYOUT_CONTEXT,
    ),
    (
        "login.html",
        include_str!("templates/login.html"),
        &[
            "client_name",
            "csrf",
            "idps",
            "passkeys_on",
            "request",
            "username",
        ],
    ),
    (
        "select_account.html",
        include_str!("templates/select_account.html"),
        &["csrf", "request"],
    ),
    (
        "consent.html",
        include_str!("templates/consent.html"),
        &["client_name", "csrf", "request", "scopes"],
    ),
    (
        "error.html",
        include_str!("templates/error.html"),
        &["message", "link", "link_label"],
    ),
    (
        "logout.html",
        include_str!("templates/logout.html"),
        &["carry", "csrf", "done"],
    ),
    (
        "form_post.html",
        include_str!("templates/form_post.html"),
        &["action", "lang", "nonce", "params"],
    ),
    (
        "profile.html",
        include_str!("templates/profile.html"),
        &["affiliations", "person", "roles"],
    ),
    (
        "sessions.html",
        include_str!("templates/sessions.html"),
        &["csrf", "sessions"],
    ),
    (
        "apps.html",
        include_str!("templates/apps.html"),
        &["consents", "csrf", "tiles"],
    ),
    (
        "password.html",
        include_str!("templates/password.html"),
        &["csrf", "min_length", "request"],
    ),
    (
        "mfa.html",
        include_str!("templates/mfa.html"),
        &[
            "can",
            "csrf",
            "enroll",
            "has_passkey",
            "has_recovery",
            "has_totp",
            "passkey_only",
            "passkeys_on",
            "proven",
            "upgrade",
            "via_portal",
        ],
    ),
    (
        "security.html",
        include_str!("templates/security.html"),
        &[
            "csrf",
            "has_factor",
            "needs_mfa",
            "needs_passkey",
            "passkeys",
            "passkeys_on",
            "recovery_left",
            "totp",
        ],
    ),
    (
        "totp_setup.html",
        include_str!("templates/totp_setup.html"),
        &["action", "csrf", "qr_svg", "secret", "uri"],
    ),
    (
        "recovery_codes.html",
        include_str!("templates/recovery_codes.html"),
        &["codes"],
    ),
];
/// What `layout.html` reads: every page may pass these.
const LAYOUT_CONTEXT: &[&str] = &["alert", "lang", "nav", "notice", "person_name"];
const CSS: &str = include_str!("static/hms.css");
const PASSKEY_JS: &str = include_str!("static/passkey.js");
const MESSAGES_EN: &str = include_str!("messages.en.toml");

/// The compiled templates and the message catalog.
pub struct Web {
    env: minijinja::Environment<'static>,
}

#[derive(Debug, thiserror::Error)]
pub enum WebError {
    #[error("template error: {0}")]
    Template(#[from] minijinja::Error),
    #[error("message catalog: {0}")]
    Messages(String),
    #[error("page templates: {0}")]
    Check(String),
}

impl Web {
    pub fn new() -> Result<Web, WebError> {
        let messages: HashMap<String, String> =
            toml::from_str(MESSAGES_EN).map_err(|e| WebError::Messages(e.to_string()))?;
        let mut problems = Vec::new();
        for (name, source, _) in TEMPLATES {
            for key in template_check::message_keys(source) {
                if !messages.contains_key(&key) {
                    problems.push(format!("{name}: message `{key}` is not in the catalog"));
                }
            }
        }
        let mut env = minijinja::Environment::new();
        for (name, source, _) in TEMPLATES {
            env.add_template(name, source)?;
        }
        env.add_function("t", move |key: &str| -> String {
            messages
                .get(key)
                .cloned()
                .unwrap_or_else(|| key.to_string())
        });
        for (name, source, context) in TEMPLATES {
            let mut declared: std::collections::BTreeSet<&str> = context.iter().copied().collect();
            if source.contains("{% extends \"layout.html\" %}") {
                declared.extend(LAYOUT_CONTEXT);
            }
            problems.extend(template_check::check(&env, name, source, &declared));
        }
        if !problems.is_empty() {
            return Err(WebError::Check(problems.join("; ")));
        }
        Ok(Web { env })
    }

    pub fn message(&self, key: &str) -> String {
        self.env
            .render_str(&format!("{{{{ t({key:?}) }}}}"), ())
            .unwrap_or_else(|_| key.to_string())
    }

    pub fn render(&self, name: &str, ctx: minijinja::Value) -> Result<String, WebError> {
        Ok(self.env.get_template(name)?.render(ctx)?)
    }
}

/// The Content-Security-Policy of every page: own stylesheet and script file (the
/// passkey ceremonies need `navigator.credentials`), no inline script, no framing.
const PAGE_CSP: &str = "default-src 'none'; style-src 'self'; img-src 'self'; script-src 'self'; connect-src 'self'; base-uri 'none'; frame-ancestors 'none'";

/// Renders a page; a template failure becomes the styled 500 page (logged).
pub fn page(app: &AppState, status: StatusCode, name: &str, ctx: minijinja::Value) -> Response {
    match app.web().render(name, ctx) {
        Ok(html) => with_page_headers((status, axum::response::Html(html)).into_response()),
        Err(e) => {
            tracing::error!(error = %e, template = name, "rendering a page failed");
            internal_error_page()
        }
    }
}

/// The headers of every page: its CSP, its referrer policy, and `Retry-After` on 503.
fn with_page_headers(mut resp: Response) -> Response {
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(PAGE_CSP),
    );
    // Not no-referrer: under it browsers send `Origin: null` with our own forms,
    // and the CSRF check compares the Origin. same-origin leaks nothing to others.
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("same-origin"),
    );
    if resp.status() == StatusCode::SERVICE_UNAVAILABLE {
        resp.headers_mut().insert(
            header::RETRY_AFTER,
            HeaderValue::from_static(crate::error::RETRY_AFTER_SECONDS),
        );
    }
    resp
}

/// The 500 page when a template itself cannot be rendered: static HTML with the same
/// stylesheet and structure as the other pages, so it still looks like the hub.
const INTERNAL_ERROR_HTML: &str = include_str!("static/500.html");

pub(crate) fn internal_error_page() -> Response {
    with_page_headers(
        (
            StatusCode::INTERNAL_SERVER_ERROR,
            axum::response::Html(INTERNAL_ERROR_HTML),
        )
            .into_response(),
    )
}

/// Where an error page sends the person next: the link matches what the message says.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Next {
    /// The portal (the default: the person's profile, or the sign-in page first).
    Portal,
    /// The sign-in page, for "sign in again".
    SignIn,
    /// The person's apps, for "go back to the app and start again".
    Apps,
}

impl Next {
    fn link(self) -> (&'static str, &'static str) {
        match self {
            Next::Portal => ("/portal", "error.back"),
            Next::SignIn => ("/login", "error.signin"),
            Next::Apps => ("/portal/apps", "error.apps"),
        }
    }
}

/// An error page that says what went wrong (never internals).
pub fn error_page(app: &AppState, status: StatusCode, message: &str) -> Response {
    error_page_to(app, status, message, Next::Portal)
}

/// An error page whose link goes where its message tells the person to go.
pub(crate) fn error_page_to(
    app: &AppState,
    status: StatusCode,
    message: &str,
    next: Next,
) -> Response {
    let (link, label) = next.link();
    page(
        app,
        status,
        "error.html",
        minijinja::context! {
            lang => "en", message => message, link => link,
            link_label => app.web().message(label),
        },
    )
}

/// A form whose CSRF check failed: 403 and what to do about it.
pub(crate) fn csrf_failed(app: &AppState) -> Response {
    error_page_to(
        app,
        StatusCode::FORBIDDEN,
        &app.web().message("csrf.failed"),
        Next::SignIn,
    )
}

/// A sign-in request that is gone (expired, finished, or never ours).
pub(crate) fn request_expired(app: &AppState) -> Response {
    error_page_to(
        app,
        StatusCode::BAD_REQUEST,
        "This sign-in request has expired; go back to the app and start again.",
        Next::Apps,
    )
}

/// A sign-in request that is live but belongs to another browser (issue 14): refused,
/// and left for the browser that started it. 403: resending will not help, starting
/// again from the app will.
pub(crate) fn request_other_browser(app: &AppState) -> Response {
    crate::ops::metrics::oidc_event("request_other_browser");
    tracing::warn!("a pending sign-in request was presented by another browser; refused");
    error_page(
        app,
        StatusCode::FORBIDDEN,
        &app.web().message("request.other_browser"),
    )
}

/// The parameters of a request that may come as a GET query or a POST form (the
/// authorization and end-session endpoints accept both: OIDC Core §3.1.2.1,
/// RP-Initiated Logout §2). `None` for a POST that is not form-encoded.
pub(crate) fn query_or_form(
    method: &axum::http::Method,
    uri: &axum::http::Uri,
    headers: &axum::http::HeaderMap,
    body: &[u8],
) -> Option<Vec<(String, String)>> {
    let raw: &[u8] = if method == axum::http::Method::POST {
        let ct = headers
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        if !ct.starts_with("application/x-www-form-urlencoded") {
            return None;
        }
        body
    } else {
        uri.query().unwrap_or("").as_bytes()
    };
    Some(url::form_urlencoded::parse(raw).into_owned().collect())
}

/// The CSRF check of a portal form: the signed-in session, or the response to send.
fn checked_session<'b>(
    app: &AppState,
    browser: &'b Browser,
    csrf: Option<&str>,
) -> Result<&'b crate::authn::Session, Box<Response>> {
    let Some(session) = browser.session.as_ref() else {
        return Err(Box::new(
            axum::response::Redirect::to("/login").into_response(),
        ));
    };
    if !browser.csrf_ok(app, csrf) {
        return Err(Box::new(csrf_failed(app)));
    }
    Ok(session)
}

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/static/hms.css", get(css))
        .route("/static/passkey.js", get(passkey_js))
        .route(
            "/",
            get(|| async { axum::response::Redirect::to("/portal") }),
        )
        .merge(authorize::router())
        .merge(signin::router())
        .merge(federated::router())
        .merge(saml_idp::router())
        .merge(portal::router())
        .merge(mfa::router())
        .merge(passwordless::router())
        .merge(security::router())
        .merge(logout::router())
}

async fn passkey_js() -> Response {
    (
        [
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/javascript; charset=utf-8"),
            ),
            (
                header::CACHE_CONTROL,
                HeaderValue::from_static("public, max-age=3600"),
            ),
        ],
        PASSKEY_JS,
    )
        .into_response()
}

async fn css() -> Response {
    (
        [
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/css; charset=utf-8"),
            ),
            (
                header::CACHE_CONTROL,
                HeaderValue::from_static("public, max-age=3600"),
            ),
        ],
        CSS,
    )
        .into_response()
}
