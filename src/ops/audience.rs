//! Who a route answers, and so in which form an error produced outside the handlers
//! (the input rule, the body limit, the router) is written: RFC 6749 JSON for the
//! OAuth back channel, an HTML page for the browser, problem+json for the rest.

use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};

use crate::error::{status_problem, FieldError};
use crate::oidc::{OAuthError, OidcError};
use crate::AppState;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Audience {
    /// `/oauth2/*` back-channel endpoints and discovery: RFC 6749 §5.2 JSON.
    OAuth,
    /// A browser navigating or posting a form: the HTML error page.
    Page,
    /// The admin API and everything else (including the JSON calls the pages'
    /// scripts make): `application/problem+json` (RFC 9457).
    Api,
}

/// Pages a browser navigates to or posts forms at.
pub(crate) fn is_page_path(path: &str) -> bool {
    const PAGES: &[&str] = &[
        "/login",
        "/portal",
        "/consent",
        "/select-account",
        "/saml",
        "/static",
        "/oauth2/authorize",
        "/oauth2/logout",
    ];
    path == "/"
        || PAGES.iter().any(|p| {
            path.strip_prefix(p)
                .is_some_and(|rest| rest.is_empty() || rest.starts_with('/'))
        })
}

impl Audience {
    pub fn of(path: &str, headers: &HeaderMap) -> Audience {
        if is_page_path(path) {
            let json = headers
                .get(header::CONTENT_TYPE)
                .and_then(|v| v.to_str().ok())
                .is_some_and(|ct| ct.to_ascii_lowercase().contains("json"));
            if json {
                Audience::Api
            } else {
                Audience::Page
            }
        } else if path.starts_with("/oauth2/") || path.starts_with("/.well-known/") {
            Audience::OAuth
        } else {
            Audience::Api
        }
    }

    /// The error in this audience's form. `detail` is shown to the caller, so it
    /// must say what to fix and nothing internal; each field's reason follows it.
    pub fn error(
        self,
        app: &AppState,
        status: StatusCode,
        detail: Option<String>,
        errors: &[FieldError],
    ) -> Response {
        match self {
            Audience::Api => status_problem(status, detail, errors),
            Audience::OAuth => {
                // An edge refusal (size, method, media type…): `invalid_request`
                // with the status that says which.
                let e = OidcError::invalid_request(oauth_description(&sentence(
                    status, detail, errors,
                )));
                OAuthError {
                    status,
                    ..OAuthError::from(e)
                }
                .into_response()
            }
            Audience::Page => {
                crate::web::error_page(app, status, &sentence(status, detail, errors))
            }
        }
    }
}

/// One line for a person or an OAuth client: the detail, then each field and why.
fn sentence(status: StatusCode, detail: Option<String>, errors: &[FieldError]) -> String {
    let mut parts: Vec<String> = detail.into_iter().collect();
    parts.extend(
        errors
            .iter()
            .map(|e| format!("The field {} {}.", e.field, e.reason)),
    );
    if parts.is_empty() {
        parts.push(
            status
                .canonical_reason()
                .unwrap_or("The request was refused")
                .to_string(),
        );
    }
    parts.join(" ")
}

/// RFC 6749 §5.2: `error_description` is printable ASCII without `"` and `\`.
fn oauth_description(s: &str) -> String {
    s.chars()
        .map(|c| match c {
            ' '..='~' if c != '"' && c != '\\' => c.to_string(),
            '"' => "'".to_string(),
            other => crate::input::code_point(other),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes_are_sorted_by_who_calls_them() {
        let none = HeaderMap::new();
        assert_eq!(Audience::of("/oauth2/token", &none), Audience::OAuth);
        assert_eq!(Audience::of("/oauth2/authorize", &none), Audience::Page);
        assert_eq!(Audience::of("/login", &none), Audience::Page);
        assert_eq!(Audience::of("/loginx", &none), Audience::Api);
        assert_eq!(Audience::of("/api/v1/users", &none), Audience::Api);
        let mut json = HeaderMap::new();
        json.insert(header::CONTENT_TYPE, "application/json".parse().unwrap());
        assert_eq!(Audience::of("/login/passkey", &json), Audience::Api);
    }

    #[test]
    fn oauth_descriptions_stay_printable_ascii() {
        assert_eq!(oauth_description("a \"b\" é\\"), "a 'b' U+00E9U+005C");
    }
}
