//! The hub's pages live at one address: its issuer. A browser that opened them at
//! another name for the same server (`127.0.0.1` for `localhost`, say) gets cookies
//! for the wrong host and an `Origin` that the CSRF check refuses, so every form
//! answered "this form expired". Now such a request gets a page that names the
//! address to use, with a link to the same page there (issue 14, defect 8).
//!
//! What counts as "the same server at another address", so a cross-site form post
//! is still the CSRF check's to refuse:
//! - a form post whose `Origin` is this request's own `Host` (the browser is on the
//!   hub, only under another name), and differs from the issuer's origin;
//! - a page opened by a loopback name (`localhost`, `127.0.0.1`, `[::1]`) when the
//!   issuer is on loopback under another name or port: the demo's case. Other host
//!   names are left alone on GET, since a reverse proxy may rewrite `Host`.

use axum::extract::{Request, State};
use axum::http::{header, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::ops::audience::Audience;
use crate::AppState;

/// `scheme://host[:port]` of a URL, as browsers write `Origin`.
fn origin_of(url: &str) -> Option<String> {
    let u = url::Url::parse(url).ok()?;
    match u.origin() {
        o @ url::Origin::Tuple(..) => Some(o.ascii_serialization()),
        url::Origin::Opaque(_) => None,
    }
}

fn is_loopback_host(host: &str) -> bool {
    let name = host
        .rsplit_once(':')
        .filter(|(h, port)| !h.is_empty() && port.bytes().all(|b| b.is_ascii_digit()))
        .map_or(host, |(h, _)| h);
    matches!(name, "localhost" | "127.0.0.1" | "[::1]")
}

/// The address this request should have used, when it came to the hub by another.
fn misdirected(issuer_origin: &str, method: &Method, headers: &axum::http::HeaderMap) -> bool {
    let Some(host) = headers
        .get(header::HOST)
        .and_then(|v| v.to_str().ok())
        .map(str::to_ascii_lowercase)
    else {
        return false;
    };
    let scheme = issuer_origin.split("://").next().unwrap_or("http");
    let here = format!("{scheme}://{host}");
    if here == issuer_origin {
        return false;
    }
    if method == Method::POST {
        return headers
            .get(header::ORIGIN)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|o| o.eq_ignore_ascii_case(&here));
    }
    let issuer_host = issuer_origin.split("://").nth(1).unwrap_or("");
    is_loopback_host(&host) && is_loopback_host(issuer_host)
}

pub async fn enforce(State(app): State<AppState>, req: Request, next: Next) -> Response {
    // The stylesheet and script load at any address (the page that says where to go
    // is styled too).
    let path = req.uri().path();
    if !crate::ops::audience::is_page_path(path) || path.starts_with("/static/") {
        return next.run(req).await;
    }
    let audience = Audience::of(req.uri().path(), req.headers());
    let Some(issuer_origin) = origin_of(app.issuer()) else {
        return next.run(req).await;
    };
    if !misdirected(&issuer_origin, req.method(), req.headers()) {
        return next.run(req).await;
    }
    // The same page at the right address (a GET keeps its path and query; a form
    // post cannot be replayed there, so it points at the page that holds the form).
    let target = if req.method() == Method::GET {
        let pq = req.uri().path_and_query().map_or("/", |p| p.as_str());
        format!("{issuer_origin}{pq}")
    } else {
        format!("{issuer_origin}/login")
    };
    crate::ops::metrics::oidc_event("misdirected_address");
    let message = format!(
        "This page was opened at another address than the hub's. The hub's address is {issuer_origin}: open it there (sign in again if asked)."
    );
    match audience {
        Audience::Page | Audience::OAuth => super::page(
            &app,
            StatusCode::MISDIRECTED_REQUEST,
            "error.html",
            minijinja::context! {
                lang => "en", message => message, link => target,
                link_label => app.web().message("error.right_address"),
            },
        ),
        _ => crate::error::status_problem(StatusCode::MISDIRECTED_REQUEST, Some(message), &[])
            .into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderMap;

    fn headers(host: &str, origin: Option<&str>) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(header::HOST, host.parse().unwrap());
        if let Some(o) = origin {
            h.insert(header::ORIGIN, o.parse().unwrap());
        }
        h
    }

    #[test]
    fn only_the_same_server_under_another_name_is_misdirected() {
        let iss = "http://localhost:8080";
        // The right address.
        assert!(!misdirected(
            iss,
            &Method::GET,
            &headers("localhost:8080", None)
        ));
        assert!(!misdirected(
            iss,
            &Method::POST,
            &headers("localhost:8080", Some("http://localhost:8080"))
        ));
        // 127.0.0.1 for localhost: GET and POST.
        assert!(misdirected(
            iss,
            &Method::GET,
            &headers("127.0.0.1:8080", None)
        ));
        assert!(misdirected(
            iss,
            &Method::POST,
            &headers("127.0.0.1:8080", Some("http://127.0.0.1:8080"))
        ));
        // A cross-site post stays the CSRF check's to refuse.
        assert!(!misdirected(
            iss,
            &Method::POST,
            &headers("localhost:8080", Some("https://evil.example"))
        ));
        assert!(!misdirected(
            iss,
            &Method::POST,
            &headers("127.0.0.1:8080", Some("https://evil.example"))
        ));
        // Behind a proxy that rewrites Host, a GET is left alone.
        let public = "https://sso.district.example";
        assert!(!misdirected(
            public,
            &Method::GET,
            &headers("hms-ach:8080", None)
        ));
        assert!(misdirected(
            public,
            &Method::POST,
            &headers("hub.internal", Some("https://hub.internal"))
        ));
    }

    #[test]
    fn origins_are_written_as_browsers_write_them() {
        assert_eq!(
            origin_of("https://sso.example/realm/").as_deref(),
            Some("https://sso.example")
        );
        assert_eq!(
            origin_of("http://localhost:8080").as_deref(),
            Some("http://localhost:8080")
        );
        assert!(is_loopback_host("[::1]:3000"));
        assert!(!is_loopback_host("localhost.evil.example"));
    }
}
