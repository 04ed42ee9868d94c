//! What a page handler answers when it cannot show its page: one [`PageError`] (as
//! `AppError` is for the API), so handlers return `Result<Response, PageError>` and use
//! `?`; and [`JsonError`] for the few JSON endpoints the pages' script calls (passkey
//! ceremonies).
//!
//! A `PageError` becomes a response without the app's state (axum's `IntoResponse`
//! has none): it carries what the error page must say as a response extension, and
//! [`render_error_pages`], a layer over the whole router, renders it with the layout
//! and the message catalog. A response that escaped the layer would still be a plain
//! text answer with the right status, never a blank page.

use axum::extract::{Request, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::middleware::Next as NextLayer;
use axum::response::{IntoResponse, Redirect, Response};
use axum::Json;
use serde_json::json;

use crate::AppState;

/// The sentence of a 503 page when signing in cannot go on.
pub(crate) const SIGNIN_UNAVAILABLE: &str =
    "The sign-in service is unavailable; try again shortly.";
/// The sentence of a 503 page when an app's request cannot be finished.
const REQUEST_UNAVAILABLE: &str =
    "The sign-in service could not finish this request; try again shortly.";
/// The sentence of a 503 portal page.
const PAGE_UNAVAILABLE: &str = "This page could not be shown; try again shortly.";

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

/// Why a page could not be shown.
#[derive(Debug)]
pub(crate) enum PageError {
    /// The hub could not do its part (the store, a key, a template): the cause is
    /// logged (with the request's id, never shown) and the page says to try again.
    Unavailable {
        message: &'static str,
        cause: String,
    },
    /// The request cannot be served as asked: a page that says why and where to go.
    Refused {
        status: StatusCode,
        message: String,
        next: Next,
    },
    /// A message from the catalog (`messages.en.toml`), by key.
    Catalog {
        status: StatusCode,
        key: &'static str,
        next: Next,
    },
    /// Too many requests from this address: 429 with `Retry-After` (the limits
    /// count a minute: RFC 6585 §4).
    RateLimited { message: String },
    /// Not a page: somewhere else first (sign in, a step-up).
    Redirect(String),
}

impl PageError {
    /// Signing in cannot go on (the store or a dependency failed).
    pub(crate) fn unavailable(cause: impl std::fmt::Display) -> PageError {
        PageError::unavailable_as(SIGNIN_UNAVAILABLE, cause)
    }

    /// An app's pending request cannot be finished now (the store failed).
    pub(crate) fn request_unavailable(cause: impl std::fmt::Display) -> PageError {
        PageError::unavailable_as(REQUEST_UNAVAILABLE, cause)
    }

    /// A portal page cannot be shown now.
    pub(crate) fn page_unavailable(cause: impl std::fmt::Display) -> PageError {
        PageError::unavailable_as(PAGE_UNAVAILABLE, cause)
    }

    /// The hub failed, and the page says `message` (one of the sentences above).
    pub(crate) fn unavailable_as(
        message: &'static str,
        cause: impl std::fmt::Display,
    ) -> PageError {
        PageError::Unavailable {
            message,
            cause: cause.to_string(),
        }
    }

    /// A 400 page with a sentence for the person.
    pub(crate) fn bad_request(message: impl Into<String>) -> PageError {
        PageError::refused(StatusCode::BAD_REQUEST, message)
    }

    /// A page with this status and sentence; its link goes to the portal.
    pub(crate) fn refused(status: StatusCode, message: impl Into<String>) -> PageError {
        PageError::Refused {
            status,
            message: message.into(),
            next: Next::Portal,
        }
    }

    /// The same page, its link going where the message tells the person to go.
    pub(crate) fn then(self, to: Next) -> PageError {
        match self {
            PageError::Refused {
                status, message, ..
            } => PageError::Refused {
                status,
                message,
                next: to,
            },
            PageError::Catalog { status, key, .. } => PageError::Catalog {
                status,
                key,
                next: to,
            },
            other => other,
        }
    }

    /// A form whose CSRF check failed: 403 and what to do about it.
    pub(crate) fn csrf() -> PageError {
        PageError::Catalog {
            status: StatusCode::FORBIDDEN,
            key: "csrf.failed",
            next: Next::SignIn,
        }
    }

    /// A sign-in request that is gone (expired, finished, or never ours).
    pub(crate) fn request_expired() -> PageError {
        PageError::bad_request(
            "This sign-in request has expired; go back to the app and start again.",
        )
        .then(Next::Apps)
    }

    /// A sign-in request that is live but belongs to another browser (issue 14):
    /// refused, and left for the browser that started it. 403: resending will not
    /// help, starting again from the app will.
    pub(crate) fn other_browser() -> PageError {
        crate::ops::metrics::oidc_event("request_other_browser");
        tracing::warn!("a pending sign-in request was presented by another browser; refused");
        PageError::Catalog {
            status: StatusCode::FORBIDDEN,
            key: "request.other_browser",
            next: Next::Portal,
        }
    }

    /// A second-factor step whose sign-in is gone: start again from the beginning.
    pub(crate) fn start_again() -> PageError {
        PageError::bad_request(
            "This sign-in has expired or was already finished; sign in again from the start.",
        )
        .then(Next::SignIn)
    }

    /// Sign in first.
    pub(crate) fn to_login() -> PageError {
        PageError::Redirect("/login".into())
    }
}

/// What the render layer reads off a `PageError`'s response.
#[derive(Clone, Debug)]
struct ErrorPage {
    message: Message,
    next: Next,
}

#[derive(Clone, Debug)]
enum Message {
    Text(String),
    Key(&'static str),
}

impl IntoResponse for PageError {
    fn into_response(self) -> Response {
        let mut retry_after = None;
        let (status, message, next) = match self {
            PageError::Redirect(to) => return Redirect::to(&to).into_response(),
            PageError::RateLimited { message } => {
                retry_after = Some(HeaderValue::from_static("60"));
                (
                    StatusCode::TOO_MANY_REQUESTS,
                    Message::Text(message),
                    Next::Portal,
                )
            }
            PageError::Unavailable { message, cause } => {
                tracing::error!(error = %cause, "a page could not be served");
                (
                    StatusCode::SERVICE_UNAVAILABLE,
                    Message::Text(message.into()),
                    Next::Portal,
                )
            }
            PageError::Refused {
                status,
                message,
                next,
            } => (status, Message::Text(message), next),
            PageError::Catalog { status, key, next } => (status, Message::Key(key), next),
        };
        let fallback = match &message {
            Message::Text(t) => t.clone(),
            Message::Key(k) => (*k).to_string(),
        };
        let mut resp = (status, fallback).into_response();
        if let Some(v) = retry_after {
            resp.headers_mut().insert(header::RETRY_AFTER, v);
        }
        resp.extensions_mut().insert(ErrorPage { message, next });
        resp
    }
}

/// Renders the error page of every `PageError` with the layout (and `Retry-After` on
/// a 503), keeping the headers its handler set (cookies, `Retry-After`).
pub(crate) async fn render_error_pages(
    State(app): State<AppState>,
    req: Request,
    next: NextLayer,
) -> Response {
    let resp = next.run(req).await;
    let Some(err) = resp.extensions().get::<ErrorPage>().cloned() else {
        return resp;
    };
    let message = match err.message {
        Message::Text(t) => t,
        Message::Key(k) => app.web().message(k),
    };
    let (parts, _) = resp.into_parts();
    let mut page = error_page_to(&app, parts.status, &message, err.next);
    for (name, value) in parts.headers.iter() {
        if name != header::CONTENT_TYPE && name != header::CONTENT_LENGTH {
            page.headers_mut().append(name.clone(), value.clone());
        }
    }
    page
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
    super::page(
        app,
        status,
        "error.html",
        minijinja::context! {
            lang => "en", message => message, link => link,
            link_label => app.web().message(label),
        },
    )
}

/// An error's text as a sentence on a page ("invalid code" → "Invalid code").
pub(crate) fn sentence(s: &str) -> String {
    let mut c = s.chars();
    c.next()
        .map(|f| f.to_uppercase().collect::<String>() + c.as_str())
        .unwrap_or_default()
}

/// The answer of a JSON endpoint the pages' script calls: `{"error": "…"}`, which the
/// script shows as it is.
#[derive(Debug)]
pub(crate) struct JsonError {
    status: StatusCode,
    message: String,
}

impl JsonError {
    pub(crate) fn new(status: StatusCode, message: impl Into<String>) -> JsonError {
        JsonError {
            status,
            message: message.into(),
        }
    }

    /// The hub failed: logged, and the script says to try again.
    pub(crate) fn unavailable(cause: impl std::fmt::Display) -> JsonError {
        JsonError::unavailable_as(SIGNIN_UNAVAILABLE, cause)
    }

    pub(crate) fn unavailable_as(message: &str, cause: impl std::fmt::Display) -> JsonError {
        tracing::error!(error = %cause, "a passkey step failed");
        JsonError::new(StatusCode::SERVICE_UNAVAILABLE, message)
    }

    /// A form whose CSRF check failed.
    pub(crate) fn csrf(app: &AppState) -> JsonError {
        JsonError::new(StatusCode::FORBIDDEN, app.web().message("csrf.failed"))
    }
}

impl IntoResponse for JsonError {
    fn into_response(self) -> Response {
        let mut resp = (self.status, Json(json!({ "error": self.message }))).into_response();
        if self.status == StatusCode::SERVICE_UNAVAILABLE {
            resp.headers_mut().insert(
                header::RETRY_AFTER,
                HeaderValue::from_static(crate::error::RETRY_AFTER_SECONDS),
            );
        }
        resp
    }
}

/// Where the browser goes after a JSON step that signed the person in: the redirect
/// of the page flow, as JSON, with its cookies.
pub(crate) fn json_redirect(resp: Response) -> Response {
    let location = resp
        .headers()
        .get(header::LOCATION)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("/portal")
        .to_string();
    let mut out = Json(json!({ "redirect": location })).into_response();
    for c in resp.headers().get_all(header::SET_COOKIE).iter() {
        out.headers_mut().append(header::SET_COOKIE, c.clone());
    }
    out
}
