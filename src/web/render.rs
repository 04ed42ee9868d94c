//! Pages are rendered here: the templates embedded in the binary (minijinja, HTML
//! auto-escaped), every string from the message catalog, and the headers every page
//! carries (its CSP, its referrer policy, `Retry-After` on 503).

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use std::collections::HashMap;

use super::template_check;
use crate::AppState;

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
pub(crate) fn page(
    app: &AppState,
    status: StatusCode,
    name: &str,
    ctx: minijinja::Value,
) -> Response {
    match app.web().render(name, ctx) {
        Ok(html) => with_page_headers((status, axum::response::Html(html)).into_response()),
        Err(e) => {
            tracing::error!(error = %e, template = name, "rendering a page failed");
            internal_error_page()
        }
    }
}

/// The headers of every page: its CSP, its referrer policy, and `Retry-After` on 503.
pub(crate) fn with_page_headers(mut resp: Response) -> Response {
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
