//! The self-submitting form that carries an answer back to an app by POST: OAuth 2.0
//! Form Post Response Mode (§2) and the SAML HTTP-POST binding (bindings §3.5.4).
//! Its one script runs under a nonce, and the form may post only to the app's origin.

use axum::http::{header, HeaderValue};
use axum::response::{IntoResponse, Response};

use super::PageError;
use crate::AppState;

/// A page that posts `params` to `action` as soon as it loads (a button does it
/// without script).
pub(crate) fn form_post_page(
    app: &AppState,
    action: &str,
    params: &[(&'static str, String)],
) -> Result<Response, PageError> {
    let nonce = crate::crypto::random_token(16);
    let params: Vec<(String, String)> = params
        .iter()
        .map(|(k, v)| (k.to_string(), v.clone()))
        .collect();
    let ctx =
        minijinja::context! { lang => "en", action => action, params => params, nonce => nonce };
    let html = app
        .web()
        .render("form_post.html", ctx)
        .map_err(PageError::request_unavailable)?;
    let mut resp = axum::response::Html(html).into_response();
    let csp = format!(
        "default-src 'none'; script-src 'nonce-{nonce}'; form-action {}; base-uri 'none'; frame-ancestors 'none'",
        origin_of(action)
    );
    if let Ok(v) = HeaderValue::from_str(&csp) {
        resp.headers_mut()
            .insert(header::CONTENT_SECURITY_POLICY, v);
    }
    Ok(resp)
}

fn origin_of(uri: &str) -> String {
    url::Url::parse(uri)
        .map(|u| u.origin().ascii_serialization())
        .unwrap_or_else(|_| "'none'".into())
}
